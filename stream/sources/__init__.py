"""Where ingested records come from: archive files, news.raw itself, RSS/Atom feeds.

Each source is an iterable of ``stream.ingest.Record`` (and checkpoints) for the one ingest loop
``stream.ingest.run``; the modules are imported one by one (``stream.sources.files`` ...), so a
command pays only for the libraries of its own source.
"""
