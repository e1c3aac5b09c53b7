"""Where ingested records come from: archive files, news.raw itself, live feeds.

Live feeds (``finsent ingest``): ``feeds`` (the poller: schedule, checkpoints, health), ``fetch`` (one
polite request), ``polite`` (Retry-After, backoff, per-host rate limit), ``rss`` (RSS/Atom documents and
the poller's state), ``edgar`` (SEC EDGAR filings as news), ``health`` (the feeds table) and ``report``
(feed health as text).

Each source is an iterable of ``stream.core.ingest.Record`` (and checkpoints) for the one ingest loop
``stream.core.ingest.run``; the modules are imported one by one (``stream.sources.files`` ...), so a
command pays only for the libraries of its own source.
"""
