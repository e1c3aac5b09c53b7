"""RSS/Atom polling (feedparser): new entries become news.raw messages (``finsent ingest rss``).

:class:`RssSource` polls every feed in turn (forever, or ``once``); after each feed the ingest
loop (``stream/ingest.py``) flushes the sink and only then does the source remember the feed's
new entries as sent.  What was sent is remembered per feed in ``<state_dir>/ingest/rss-state.json``
(entry ids, ETag, Last-Modified), so a restarted poller does not send an
entry twice; the worker's idempotent writes cover the rest.
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import feedparser

from stream.ingest import Checkpoint, Record
from stream.schema import InvalidRecord, NewsItem, TickerExtractor, parse_message

log = logging.getLogger("finsent.rss")

KEEP_IDS_PER_FEED = 5000


def _entry_time(entry: Any) -> datetime:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        st = entry.get(key)
        if st:
            return datetime.fromtimestamp(calendar.timegm(st), tz=timezone.utc)
    return datetime.now(timezone.utc)


def entry_to_message(entry: Any, feed_title: str | None, feed_url: str) -> dict[str, Any]:
    tags = [t.get("term") for t in entry.get("tags", []) if t.get("term")]
    msg: dict[str, Any] = {
        "published_at": _entry_time(entry).isoformat(),
        "title": entry.get("title") or "",
        "source": feed_title or feed_url,
    }
    if entry.get("link"):
        msg["url"] = entry["link"]
    if entry.get("summary"):
        msg["summary"] = entry["summary"]
    if tags:
        msg["tags"] = tags
    return msg


class FeedState:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, dict[str, Any]] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def feed(self, url: str) -> dict[str, Any]:
        return self.data.setdefault(url, {"seen": [], "etag": None, "modified": None})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)  # atomic: a crash never leaves a torn state file


def poll_feed(url: str, state: FeedState, extractor: TickerExtractor | None = None) -> tuple[list[NewsItem], int]:
    """New valid items of one feed (not yet marked as sent) and the count of invalid entries."""
    fs = state.feed(url)
    parsed = feedparser.parse(url, etag=fs.get("etag"), modified=fs.get("modified"))
    if getattr(parsed, "status", None) == 304:
        return [], 0
    if parsed.bozo and not parsed.entries:
        log.warning("feed %s could not be read: %s", url, parsed.get("bozo_exception"))
        return [], 0
    seen = set(fs["seen"])
    title = parsed.feed.get("title")
    items, invalid = [], 0
    for entry in parsed.entries:
        try:
            item = parse_message(entry_to_message(entry, title, url), extractor=extractor)
        except InvalidRecord as exc:
            invalid += 1
            log.warning("feed %s: skipped entry %r: %s", url, entry.get("title", "")[:80], exc)
            continue
        if item.id not in seen:
            items.append(item)
    fs["etag"] = getattr(parsed, "etag", None)
    fs["modified"] = getattr(parsed, "modified", None)
    return items, invalid


def mark_sent(state: FeedState, url: str, items: list[NewsItem]) -> None:
    fs = state.feed(url)
    fs["seen"] = (fs["seen"] + [it.id for it in items])[-KEEP_IDS_PER_FEED:]


class RssSource:
    """New entries of each feed, then a checkpoint that marks them sent and reports the feed."""

    name = "ingest rss"
    total = None
    progress = False  # a line per feed and poll instead

    def __init__(self, urls: Sequence[str], state: FeedState, extractor: TickerExtractor | None = None, *,
                 interval: float = 60.0, once: bool = False, sleep: Callable[[float], None] = time.sleep,
                 poll: Callable[..., tuple[list[NewsItem], int]] = poll_feed) -> None:
        self.urls = list(urls)
        self.state = state
        self.extractor = extractor
        self.interval = interval
        self.once = once
        self.sleep = sleep
        self.poll = poll

    def __iter__(self) -> Iterator[Record | Checkpoint]:
        while True:
            for url in self.urls:
                items, invalid = self.poll(url, self.state, self.extractor)
                for item in items:
                    yield Record(item=item)
                yield Checkpoint(self._committer(url, items, invalid))
            if self.once:
                return
            self.sleep(self.interval)

    def _committer(self, url: str, items: list[NewsItem], invalid: int) -> Callable[[], str]:
        def commit() -> str:  # the broker acknowledged the items: remember them as sent
            mark_sent(self.state, url, items)
            self.state.save()
            return f"{datetime.now(timezone.utc):%H:%M:%S} {url}: {len(items)} new, {invalid} invalid"
        return commit

    def close(self) -> None:
        pass
