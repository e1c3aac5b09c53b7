"""finsent: storage -- PostgreSQL schema, writer, analyst roles and maintenance.

* :mod:`storage.migrate` -- versioned migrations (``migrations/NNNN_*.sql``),
  the ``finsent_writer`` / ``finsent_analyst`` roles and their grants.
* :mod:`storage.writer` -- :class:`~storage.writer.Writer`: one transaction per
  batch, idempotent on the article id, retried across PostgreSQL restarts.
* :mod:`storage.buckets` -- the one definition of how an article counts in the
  minute / hour / day sentiment buckets.
* :mod:`storage.rescore` -- re-classify stored articles, moving their counts.
* :mod:`storage.maintenance` -- partitions, ``prune``, ``verify``.
* :mod:`storage.cli` -- ``finsent db upgrade|status|prune|verify``, ``finsent sql``,
  ``finsent rescore``.

Every entry point takes a schema name and sets ``search_path`` per connection,
so a replay schema (``--schema NAME``) is built, written and queried exactly
like the live one.
"""
