"""RSS and Atom documents (feedparser): a fetched document -> entries -> news.raw messages (pure), and
the poller's memory of each feed.

What was sent is remembered per feed URL in ``<state_dir>/ingest/rss-state.json`` (entry ids, ETag,
Last-Modified, consecutive failures and the earliest next try), so a restarted poller neither sends an
entry twice nor polls a feed that asked it to wait; the worker's idempotent writes cover the rest.
"""

from __future__ import annotations

import calendar
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser

from stream.messages.raw_message import NewsItem

KEEP_IDS_PER_FEED = 5000


class MalformedFeed(ValueError):
    """A document that is not a readable RSS or Atom feed."""


def parse_document(body: bytes) -> Any:
    """The feedparser result of a fetched document; :class:`MalformedFeed` when nothing could be read
    from it (broken XML with no entry, an HTML page).  A document feedparser read with a complaint but
    with entries (a wrong declared encoding, an undefined entity late in the file) is kept."""
    parsed = feedparser.parse(body)
    if parsed.entries:
        return parsed
    if parsed.bozo:
        exc = parsed.get("bozo_exception")
        raise MalformedFeed(f"malformed feed: {str(exc).splitlines()[0][:200] if exc else 'unreadable'}")
    if not parsed.get("version"):
        raise MalformedFeed("not an RSS or Atom document")
    return parsed  # a well-formed feed with no entries


def entry_time(entry: Any) -> datetime:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        st = entry.get(key)
        if st:
            try:
                return datetime.fromtimestamp(calendar.timegm(st), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return datetime.now(UTC)


def entry_to_message(entry: Any, feed_title: str | None, feed_url: str) -> dict[str, Any]:
    tags = [t.get("term") for t in entry.get("tags", []) if t.get("term")]
    msg: dict[str, Any] = {
        "published_at": entry_time(entry).isoformat(),
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
        fs = self.data.setdefault(url, {"seen": [], "etag": None, "modified": None})
        fs.setdefault("failures", 0)  # consecutive failed polls
        fs.setdefault("not_before", 0.0)  # epoch seconds: no poll before (backoff, Retry-After)
        return fs

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)  # atomic: a crash never leaves a torn state file


def mark_sent(state: FeedState, url: str, items: list[NewsItem]) -> None:
    fs = state.feed(url)
    fs["seen"] = (fs["seen"] + [it.id for it in items])[-KEEP_IDS_PER_FEED:]
