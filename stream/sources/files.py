"""Archive files (JSON lines plain or gzip, CSV, Parquet) as a source: ``finsent replay PATH``.

Reading, column mapping and validation are ``stream.messages.replay``'s; rows that do not validate are
still handed on (raw, with their reason) so the worker dead-letters them: nothing is dropped
silently.  Rows outside ``--from``/``--to`` are skipped and counted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from stream.base.errors import UserError
from stream.core.ingest import Record
from stream.core.pipeline import RawRecord
from stream.messages.raw_message import TickerExtractor
from stream.messages.replay import ColumnMap, ReplayStats, count_rows, prepare, read_rows


class ArchiveSource:
    name = "replay"
    progress = True

    def __init__(self, path: Path, fmt: str = "auto", columns: ColumnMap | None = None,
                 extractor: TickerExtractor | None = None, since: datetime | None = None,
                 until: datetime | None = None, limit: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():  # before a sink connects anywhere
            raise UserError(f"archive not found: {self.path}")
        self.fmt = fmt
        self.columns = columns or ColumnMap()
        self.extractor = extractor
        self.since, self.until = since, until
        self.limit = limit
        self.stats = ReplayStats()  # rows read and rows outside --from/--to
        total = count_rows(self.path, fmt)
        if limit:
            total = min(total or limit, limit)
        self.total = total

    def __iter__(self) -> Iterator[Record]:
        rows = read_rows(self.path, self.fmt)
        if self.limit:
            rows = itertools.islice(rows, self.limit)
        for p in prepare(rows, self.columns, self.extractor, self.stats, self.since, self.until):
            if p.item is not None:
                yield Record(item=p.item)
            else:
                yield Record(raw=RawRecord(value=p.raw), reason=p.reason)

    def close(self) -> None:
        pass
