"""Story novelty: near-duplicate articles are one story.

Retweets ("rt AT_USER ..."), syndicated wire copies with small edits and the
same headline from several feeds get the same ``story_id``; only the first
article of a story is *first-seen* (``story_first``).  Spike detection counts
first-seen articles (unique stories), the trends keep both counts.

How: the text is normalised (lower case, retweet prefix, user mentions, URLs,
cashtag spacing and punctuation removed), cut into shingles (its words and
pairs of neighbouring words), and a MinHash of the shingles
(:mod:`datasketch`, fixed seed, so the same text always gives the same
signature) is looked up in an LSH index of the stories seen within
``horizon_s`` of event time.  A match whose estimated Jaccard similarity is at
least ``threshold`` is a copy of that story; the oldest matching story wins
(ties: the smaller story id), so the answer does not depend on the LSH's
bucket order.  ``story_id`` is the id of the story's first article.

Determinism and scale-out (the trade-off)
-----------------------------------------
The index lives in the worker's memory and is rebuilt on start (:func:`storage.novelty.warm_start`) from the
articles PostgreSQL already holds for the last ``horizon_s`` (their stored
``story_id`` is reused, so a restart continues the same stories).  Given the
same arrival order, the same ids come out; a replay of stored articles changes
nothing (their ids are already stored and skipped).  What it does not do is
share the index between workers: two copies of a story that land on partitions
of *different* workers within the same seconds are both first-seen.  That errs
towards counting a story twice (as without novelty), never towards hiding
one.  A shared index (band keys in a PostgreSQL table, looked up per batch)
would close that gap at the cost of a query and ~16 rows per article in the
write transaction; with one worker per few partitions the in-memory index is
the better trade.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from datasketch import MinHash, MinHashLSH
from datasketch.minhash import _fmix  # the pre-mix of the affine schemes (pinned datasketch; see signatures())

NUM_PERM = 64
DEFAULT_THRESHOLD = 0.5
DEFAULT_HORIZON_S = 86400

_RT = re.compile(r"^\s*(rt\s+)?(@\w+|at_user)\s*:?\s*", re.I)
_URL = re.compile(r"https?://\S+|www\.\S+|\burl\b", re.I)
_USER = re.compile(r"@\w+|\bat_user\b", re.I)
_CASHTAG = re.compile(r"\$\s+([a-z]{1,6})\b")
_PERCENT = re.compile(r"(\d)\s*(%|pct\b|per\s?cent\b)")
_NONWORD = re.compile(r"[^\w$%.]+|(?<!\d)\.|\.(?!\d)")


def normalise(text: str) -> str:
    """Text reduced to what makes two copies of a story look alike."""
    t = text.lower()
    while True:
        u = _RT.sub("", t, count=1)
        if u == t:
            break
        t = u
    t = _URL.sub(" ", t)
    t = _USER.sub(" ", t)
    t = _CASHTAG.sub(r"$\1", t)
    t = re.sub(r"\brt\b", " ", t)
    t = _PERCENT.sub(r"\1%", t)
    t = _NONWORD.sub(" ", t)
    return " ".join(t.split())


def shingles(text: str) -> set[str]:
    """Words and pairs of neighbouring words: edits and re-wordings keep most words, while
    opposite news that shares the words ("rise"/"fall") differs in the pairs."""
    words = normalise(text).split() or [text.strip().lower()]
    return set(words) | {f"{a} {b}" for a, b in pairwise(words)}


# One MinHash's permutations, generated once: building them for every article cost ~150 us an item,
# and hashing the shingles one at a time another ~200 us (update_batch gives the same values).
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=1)
if _TEMPLATE.scheme != "affine32":  # signatures() below reproduces this scheme's update (datasketch 2.x)
    raise ImportError(f"stream.messages.novelty expects datasketch's affine32 MinHash scheme, not {_TEMPLATE.scheme!r}")
_WIDTH = 32


# The 32-bit hash of a shingle (datasketch's sha1_hash32), remembered: StockNet tweets repeat their
# shingles (536,717 in 20,000 tweets, 130,338 distinct), so a lookup replaces most SHA-1s (41 -> 9-22 us
# per tweet, measured).  Bounded: emptied when it reaches _HASH_CACHE_MAX entries (~30 MB).
_HASHES: dict[str, int] = {}
_HASH_CACHE_MAX = 200_000


def _shingle_hash(shingle: str) -> int:
    h = _HASHES.get(shingle)
    if h is None:
        if len(_HASHES) >= _HASH_CACHE_MAX:
            _HASHES.clear()
        h = _HASHES[shingle] = _TEMPLATE.hashfunc(shingle.encode("utf-8"))
    return h


def signature(text: str) -> MinHash:
    m = MinHash(num_perm=NUM_PERM, seed=1, permutations=_TEMPLATE.permutations, scheme=_TEMPLATE.scheme)
    m.update_batch([s.encode("utf-8") for s in sorted(shingles(text))])
    return m


def signatures(texts: Sequence[str]) -> np.ndarray:
    """The MinHash values of ``texts``, one row each: row ``i`` equals ``signature(texts[i]).hashvalues``.

    What ``MinHash.update_batch`` does per text (hash each shingle, MurmurHash3 pre-mix, affine
    permutations, column minimum) runs here over the whole batch's shingles in one numpy expression,
    and ``np.minimum.reduceat`` takes each text's minimum (every text has at least one shingle).
    """
    groups = [sorted(shingles(t)) for t in texts]
    if not groups:
        return np.empty((0, NUM_PERM), dtype=_TEMPLATE.hashvalues.dtype)
    hv = np.array([_shingle_hash(s) for g in groups for s in g], dtype=_TEMPLATE.hashvalues.dtype)
    hv = _fmix(hv.reshape(-1, 1), _WIDTH)
    a, b = _TEMPLATE.permutations
    phv = hv * a + b  # (shingles, NUM_PERM), wrapping modulo 2**32 as in datasketch's affine32 scheme
    starts = np.cumsum([0] + [len(g) for g in groups[:-1]])
    return np.minimum(np.minimum.reduceat(phv, starts, axis=0), _TEMPLATE.hashvalues)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures (``MinHash.jaccard``: the share of equal values)."""
    return float(np.count_nonzero(a == b)) / float(len(a))


def band_ranges(threshold: float, num_perm: int = NUM_PERM) -> list[tuple[int, int]]:
    """:class:`datasketch.MinHashLSH`'s bands for ``threshold``.  Above about 0.96 (64 permutations) its
    optimiser wants a single band, which it refuses; two bands of half the signature then find the
    candidates (each is still checked against the threshold, so only recall at the margin can differ)."""
    try:
        return list(MinHashLSH(threshold=threshold, num_perm=num_perm).hashranges)
    except ValueError:
        return list(MinHashLSH(num_perm=num_perm, params=(2, num_perm // 2)).hashranges)


class BandIndex:
    """The LSH band tables of :class:`datasketch.MinHashLSH`, for signatures kept as numpy rows.

    Same bands (``MinHashLSH``'s own choice of band count and width for the threshold: 14 bands of 4
    values for 0.5 and 64 permutations) and so the same candidates (unit test against ``MinHashLSH``);
    what it saves is the library's per-call work on ``MinHash`` objects (byte-swapping each band,
    scheme checks, storage layers), about 10% of a null-model worker's CPU (py-spy)."""

    def __init__(self, threshold: float, num_perm: int = NUM_PERM) -> None:
        self.ranges = band_ranges(threshold, num_perm)
        self._tables: list[dict[bytes, set[str]]] = [{} for _ in self.ranges]
        self._keys: dict[str, list[bytes]] = {}

    def _band_keys(self, sig: np.ndarray) -> list[bytes]:
        return [sig[start:end].tobytes() for start, end in self.ranges]

    def query(self, sig: np.ndarray) -> set[str]:
        out: set[str] = set()
        for table, key in zip(self._tables, self._band_keys(sig)):
            hit = table.get(key)
            if hit:
                out |= hit
        return out

    def insert(self, key: str, sig: np.ndarray) -> None:
        keys = self._keys[key] = self._band_keys(sig)
        for table, k in zip(self._tables, keys):
            table.setdefault(k, set()).add(key)

    def remove(self, key: str) -> None:
        for table, k in zip(self._tables, self._keys.pop(key)):
            members = table[k]
            members.discard(key)
            if not members:
                del table[k]

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(frozen=True)
class StoryMark:
    story_id: str
    first: bool


class StoryIndex:
    """Assigns ``story_id`` / first-seen to articles in arrival order (see module docstring)."""

    def __init__(self, horizon_s: int = DEFAULT_HORIZON_S, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.horizon_s = horizon_s
        self.threshold = threshold
        self._lsh = BandIndex(threshold, NUM_PERM)
        self._stories: dict[str, tuple[float, np.ndarray]] = {}  # story id -> (first event time, signature)
        self._order: list[tuple[float, str]] = []  # heap of (first event time, story id)
        self._latest = float("-inf")

    def __len__(self) -> int:
        return len(self._stories)

    def _expire(self, now: float) -> None:
        while self._order and self._order[0][0] < now - self.horizon_s:
            _t, sid = heapq.heappop(self._order)
            if sid in self._stories:
                del self._stories[sid]
                self._lsh.remove(sid)

    def assign(self, article_id: str, event_time: float, text: str) -> StoryMark:
        """The story of one article; a new story (first-seen) when nothing near enough is indexed."""
        return self._assign(article_id, event_time, text, None)

    def assign_batch(self, rows: Sequence[tuple[str, float, str]]) -> list[StoryMark]:
        """``[assign(id, t, text) for id, t, text in rows]``, same marks, signatures computed per batch."""
        todo = [i for i, (aid, _t, _x) in enumerate(rows) if aid not in self._stories]
        sigs = dict(zip(todo, signatures([rows[i][2] for i in todo])))
        return [self._assign(aid, t, text, sigs.get(i)) for i, (aid, t, text) in enumerate(rows)]

    def _assign(self, article_id: str, event_time: float, text: str, sig: np.ndarray | None) -> StoryMark:
        if article_id in self._stories:
            return StoryMark(article_id, True)
        self._latest = max(self._latest, event_time)
        self._expire(self._latest)
        sig = sig if sig is not None else signature(text).hashvalues
        best: tuple[float, str] | None = None
        for sid in self._lsh.query(sig):
            t0, other = self._stories[sid]
            if abs(event_time - t0) > self.horizon_s:
                continue
            if jaccard(other, sig) >= self.threshold and (best is None or (t0, sid) < best):
                best = (t0, sid)
        if best is not None:
            return StoryMark(best[1], False)
        self.remember(article_id, event_time, sig)
        return StoryMark(article_id, True)

    def remember(self, story_id: str, event_time: float, sig: np.ndarray | None = None, text: str = "") -> None:
        """Index a story (a first-seen article; also used to rebuild the index from storage)."""
        if story_id in self._stories:
            return
        sig = sig if sig is not None else signature(text).hashvalues
        self._stories[story_id] = (event_time, sig)
        self._lsh.insert(story_id, sig)
        heapq.heappush(self._order, (event_time, story_id))
