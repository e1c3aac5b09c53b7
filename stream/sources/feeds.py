"""Polling live feeds politely: the source of ``finsent ingest`` (the catalogue) and ``finsent ingest rss URL``.

:class:`FeedSource` polls each feed when it is due (its interval with jitter; after failures the backoff
of :class:`stream.sources.polite.Schedule`, never before a ``Retry-After``), one request at a time and at
most ``feeds.host_rate`` requests per second to one host (:class:`HostLimiter`).  A feed's new items are
followed by a checkpoint: the ingest loop (``stream/core/ingest.py``) flushes the sink, and only then is the
feed's state saved (its items remembered as sent, its ETag / Last-Modified kept) and its health recorded
(:class:`Health`: the ``feeds`` table and the Prometheus metrics).  A failing feed is retried later and
marked unhealthy after ``feeds.unhealthy_after`` failures in a row; it never stops the others.

SEC EDGAR feeds are refused, without a request, while ``feeds.user_agent`` names no contact e-mail.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from stream.core.ingest import Checkpoint, Record
from stream.messages.raw_message import InvalidRecord, NewsItem, TickerExtractor, parse_message
from stream.sources import edgar
from stream.sources.fetch import Fetched, FetchError, fetch
from stream.sources.polite import HostLimiter, Schedule
from stream.sources.rss import FeedState, MalformedFeed, entry_time, entry_to_message, mark_sent, parse_document

log = logging.getLogger("finsent.feeds")


@dataclass(frozen=True)
class Feed:
    name: str
    url: str
    kind: str  # rss, atom, edgar
    interval_s: float
    title: str = ""  # the articles' source ("": the feed's own title)


def catalogue_feeds(catalogue: Mapping[str, Any], names: Sequence[str] = ()) -> list[Feed]:
    """The enabled feeds of the catalogue (``settings.feeds.catalogue``), or the ``names`` given (enabled
    or not; an unknown name is a ValueError)."""
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ValueError(f"no feed {', '.join(unknown)} in the catalogue (finsent ingest --list shows it)")
    chosen = names or [n for n, spec in catalogue.items() if spec.enabled]
    return [Feed(n, catalogue[n].url, catalogue[n].kind, catalogue[n].interval_s, catalogue[n].title)
            for n in chosen]


def url_feeds(urls: Iterable[str], interval_s: float) -> list[Feed]:
    """Feeds given by URL (``finsent ingest rss URL...``), named by their URL; an EDGAR current-filings URL
    is read as EDGAR."""
    return [Feed(u, u, "edgar" if is_edgar_url(u) else "rss", interval_s) for u in dict.fromkeys(urls)]


def is_edgar_url(url: str) -> bool:
    """EDGAR's current-filings page (``.../cgi-bin/browse-edgar?action=getcurrent...``, on sec.gov or a mirror)."""
    parts = urlsplit(url)
    return parts.path.endswith("/browse-edgar") and parse_qs(parts.query).get("action") == ["getcurrent"]


# --------------------------------------------------------------------------- one poll
@dataclass
class PollResult:
    ok: bool
    items: list[NewsItem] = field(default_factory=list)
    invalid: int = 0
    not_modified: bool = False
    reason: str | None = None  # a failure's short code
    error: str | None = None  # a failure's message
    retry_after: float | None = None
    warning: str | None = None  # read, with a complaint (feedparser's "bozo")
    etag: str | None = None
    modified: str | None = None


@dataclass(kw_only=True)
class Poller:
    """Fetch and read one feed: its new valid items (not yet sent), or why it failed."""

    user_agent: str
    timeout_s: float
    max_bytes: int
    limiter: HostLimiter
    extractor: TickerExtractor | None = None
    fetcher: Callable[..., Fetched] = fetch

    def refusal(self, feed: Feed) -> str | None:
        """Why ``feed`` must not be polled at all (EDGAR without a contact in the User-Agent), else None."""
        if feed.kind == "edgar" and not edgar.has_contact(self.user_agent):
            return edgar.NO_CONTACT
        return None

    def poll(self, feed: Feed, fs: Mapping[str, Any]) -> PollResult:
        refused = self.refusal(feed)
        if refused:
            return PollResult(False, reason="no_contact", error=refused)
        self.limiter.wait(feed.url)
        try:
            got = self.fetcher(feed.url, user_agent=self.user_agent, timeout_s=self.timeout_s,
                               max_bytes=self.max_bytes, etag=fs.get("etag"), modified=fs.get("modified"))
        except FetchError as exc:
            return PollResult(False, reason=exc.reason, error=str(exc), retry_after=exc.retry_after)
        if got.status == 304:
            return PollResult(True, not_modified=True, etag=got.etag, modified=got.modified)
        try:
            parsed = parse_document(got.body)
        except MalformedFeed as exc:
            return PollResult(False, reason="malformed", error=str(exc))
        messages, skipped = self._messages(feed, parsed)
        seen = set(fs.get("seen") or ())
        result = PollResult(True, invalid=skipped, etag=got.etag, modified=got.modified)
        if parsed.bozo:
            exc = parsed.get("bozo_exception")
            result.warning = str(exc).splitlines()[0][:200] if exc else "read with a complaint"
        for msg in messages:
            try:
                item = parse_message(msg, extractor=self.extractor)
            except InvalidRecord as exc:
                result.invalid += 1
                log.warning("feed %s: skipped entry %r: %s", feed.name, str(msg.get("title", ""))[:80], exc)
                continue
            if item.id not in seen:
                seen.add(item.id)  # also a repeat inside the document
                result.items.append(item)
        return result

    def _messages(self, feed: Feed, parsed: Any) -> tuple[list[dict[str, Any]], int]:
        """(messages, entries that are no article) of a parsed document."""
        doc_title = parsed.feed.get("title")
        if feed.kind == "edgar":
            filings, skipped = edgar.group_filings(parsed.entries, entry_time)
            name_of = self._company_name
            out = [edgar.filing_message(f, name_of, feed.title or None) for f in filings]
        else:
            skipped = 0
            out = [entry_to_message(e, feed.title or doc_title, feed.url) for e in parsed.entries]
        for msg in out:
            msg["feed"] = feed.name
        return out, skipped

    def _company_name(self, cik: str) -> str | None:
        company = getattr(self.extractor, "company", None)
        found = company(cik) if company is not None else None
        return found[1] if found else None


# --------------------------------------------------------------------------- health
@dataclass(frozen=True)
class Outcome:
    """One poll of one feed, for the health records."""

    feed: Feed
    at: datetime
    ok: bool
    items: int = 0
    not_modified: bool = False
    reason: str | None = None
    error: str | None = None
    failures: int = 0  # consecutive, this one included (0 after a success)
    healthy: bool = True
    next_at: datetime | None = None


class Health(Protocol):
    def record(self, outcome: Outcome) -> None: ...


# --------------------------------------------------------------------------- the source
def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class FeedSource:
    """Each feed when it is due: its new items, then a checkpoint that saves its state and records its
    health; forever, or each feed once (``once``)."""

    name = "ingest"
    total = None
    progress = False  # a line per feed and poll instead

    def __init__(self, feeds: Sequence[Feed], state: FeedState, poller: Poller, *, health: Iterable[Health] = (),
                 jitter: float = 0.1, backoff_max_s: float = 3600.0, unhealthy_after: int = 3, once: bool = False,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], object] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.feeds = list(feeds)
        self.state = state
        self.poller = poller
        self.health = list(health)
        self.unhealthy_after = unhealthy_after
        self.once = once
        self.clock = clock
        self.sleep = sleep
        rng = rng or random.Random()
        self.schedules = {f.name: Schedule(f.interval_s, jitter, backoff_max_s, rng) for f in self.feeds}

    def __iter__(self) -> Iterator[Record | Checkpoint]:
        due: dict[str, float] = {}
        for feed in self.feeds:
            refused = self.poller.refusal(feed)
            if refused:  # never polled: said once, and recorded as unhealthy
                yield Checkpoint(self._refused(feed, refused))
            else:
                due[feed.name] = float(self.state.feed(feed.url).get("not_before") or 0.0)
        by_name = {f.name: f for f in self.feeds}
        if self.once:
            now = self.clock()
            for name, when in list(due.items()):
                if when > now:  # a server asked us to wait, or the feed is backing off: respect it
                    yield Checkpoint(self._waiting(by_name[name], when))
                    del due[name]
        while due:
            now = self.clock()
            ready = sorted((when, name) for name, when in due.items() if when <= now)
            for _, name in ready:
                feed = by_name[name]
                result = self.poller.poll(feed, self.state.feed(feed.url))
                for item in result.items:
                    yield Record(item=item)
                next_due = self._next_due(feed, result)
                yield Checkpoint(self._committer(feed, result, next_due))
                if self.once:
                    del due[name]
                else:
                    due[name] = next_due
            if due and not ready:
                self.sleep(max(0.0, min(due.values()) - self.clock()))

    def _next_due(self, feed: Feed, result: PollResult) -> float:
        now = self.clock()
        schedule = self.schedules[feed.name]
        if result.ok:
            return schedule.after_success(now)
        failures = int(self.state.feed(feed.url).get("failures") or 0) + 1
        return schedule.after_failure(now, failures, result.retry_after)

    def _committer(self, feed: Feed, result: PollResult, next_due: float) -> Callable[[], str]:
        def commit() -> str:  # the sink flushed: everything sent is durable
            fs = self.state.feed(feed.url)
            if result.ok:
                mark_sent(self.state, feed.url, result.items)
                fs["etag"], fs["modified"] = result.etag, result.modified
                fs["failures"], fs["not_before"] = 0, 0.0
            else:
                fs["failures"] = int(fs.get("failures") or 0) + 1
                fs["not_before"] = next_due
            self.state.save()
            failures = int(fs["failures"])
            outcome = Outcome(feed, _utc(self.clock()), result.ok, len(result.items), result.not_modified,
                              result.reason, result.error, failures, failures < self.unhealthy_after,
                              _utc(next_due))
            self._record(outcome)
            return self._line(outcome, result)
        return commit

    def _refused(self, feed: Feed, why: str) -> Callable[[], str]:
        def commit() -> str:
            log.error("feed %s is not polled: %s", feed.name, why)
            self._record(Outcome(feed, _utc(self.clock()), False, reason="no_contact", error=why,
                                 failures=self.unhealthy_after, healthy=False))
            return f"{_utc(self.clock()):%H:%M:%S} {feed.name}: NOT POLLED: {why}"
        return commit

    def _waiting(self, feed: Feed, when: float) -> Callable[[], str]:
        def commit() -> str:
            fs = self.state.feed(feed.url)
            return (f"{_utc(self.clock()):%H:%M:%S} {feed.name}: skipped, waiting until {_utc(when):%H:%M:%S} UTC "
                    f"({fs.get('failures', 0)} failure(s) in a row)")
        return commit

    def _record(self, outcome: Outcome) -> None:
        for h in self.health:
            try:
                h.record(outcome)
            except Exception as exc:  # noqa: BLE001 - health records never stop the polling
                log.warning("feed health not recorded (%s): %s", type(h).__name__, str(exc).splitlines()[0][:200])

    @staticmethod
    def _line(o: Outcome, result: PollResult) -> str:
        head = f"{o.at:%H:%M:%S} {o.feed.name}:"
        if not o.ok:
            state = "UNHEALTHY" if not o.healthy else "failed"
            return (f"{head} {state} ({o.reason}: {o.error}); {o.failures} failure(s) in a row, next try "
                    f"{o.next_at:%H:%M:%S} UTC")
        if o.not_modified:
            return f"{head} not modified"
        line = f"{head} {o.items} new, {result.invalid} invalid"
        return line + (f" (read with a complaint: {result.warning})" if result.warning else "")
