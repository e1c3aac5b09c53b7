"""The one plain-text table printer of the CLI (``finsent sql``, ``alerts list``, the demo summary).

Cells arrive as strings (each command renders its own values); this module only
aligns them.  Two looks: ``psql`` (centered header, ``-+-`` rule, numeric columns
right-aligned, a row count) and plain (left-aligned columns two spaces apart,
optionally with a dashed rule under the header and an indent).
"""

from __future__ import annotations

from collections.abc import Sequence


def format_table(
    columns: Sequence[str],
    cells: Sequence[Sequence[str]],
    *,
    psql: bool = False,
    numeric: Sequence[bool] | None = None,
    rule: bool = False,
    indent: str = "",
    strip: bool = True,
) -> str:
    """Align ``cells`` (rows of strings) under ``columns``.

    ``psql``: the look of PostgreSQL's psql (``numeric`` marks right-aligned columns,
    multi-line cells show ``\\n``, a final ``(N rows)``).  Otherwise: left-aligned,
    ``rule`` adds dashes under the header, ``indent`` prefixes every line,
    ``strip`` drops trailing blanks.
    """
    if psql:
        numeric = list(numeric) if numeric is not None else [False] * len(columns)
        widths = [max([len(c)] + [len(line) for row in cells for line in row[i].splitlines() or [""]])
                  for i, c in enumerate(columns)]
        out = [" | ".join(c.center(w) for c, w in zip(columns, widths)).rstrip(),
               "-+-".join("-" * w for w in widths)]
        for row in cells:
            out.append(" | ".join((v.replace("\n", "\\n").rjust(w) if numeric[i] else v.replace("\n", "\\n").ljust(w))
                                  for i, (v, w) in enumerate(zip(row, widths))).rstrip())
        out.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
        return "\n".join(out)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [list(columns), *cells]]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    if strip:
        lines = [line.rstrip() for line in lines]
    return "\n".join(indent + line for line in lines)
