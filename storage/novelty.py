"""The SQL of story novelty: the stories a restarted worker reloads into its in-memory index.

The index itself (signatures, LSH bands, first-seen marks) is :mod:`stream.messages.novelty` and touches
no database; :func:`warm_start` fills it from the first-seen articles PostgreSQL holds, so a restarted
worker continues the same stories (their stored ``story_id`` is reused).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import psycopg2

from storage.db import WRITER_ROLE, PgCursor, connect
from stream.messages.novelty import StoryIndex
from stream.messages.raw_message import model_text

if TYPE_CHECKING:
    from stream.base.settings import Settings

log = logging.getLogger("finsent.novelty")


def recent_stories(cur: PgCursor, horizon_s: float, limit: int) -> list[tuple[str, float, str, str | None]]:
    """(id, event time in epoch seconds, title, summary) of the first-seen articles of the last ``horizon_s``
    before the newest stored article, oldest first (at most ``limit``)."""
    cur.execute(
        "SELECT id, extract(epoch FROM published_at), title, extra->>'summary' FROM articles"
        " WHERE story_first AND published_at >= (SELECT max(published_at) FROM articles)"
        " - make_interval(secs => %s) ORDER BY published_at, id LIMIT %s",
        (float(horizon_s), limit),
    )
    rows: list[tuple[str, float, str, str | None]] = cur.fetchall()
    return rows


def warm_start(index: StoryIndex, settings: Settings, limit: int = 200_000) -> int:
    """Rebuild ``index`` from the stories PostgreSQL holds for the last ``horizon_s`` (before the newest
    stored article), so a restarted worker continues the same stories.  Returns the stories loaded."""
    try:
        conn = connect(settings.dsn, settings.schema, role=WRITER_ROLE, application_name="finsent-novelty")
    except psycopg2.Error as exc:
        log.warning("story index starts empty: %s", str(exc).splitlines()[0])
        return 0
    try:
        with conn.cursor() as cur:
            rows = recent_stories(cur, index.horizon_s, limit)
        conn.rollback()
    except psycopg2.Error as exc:
        log.warning("story index starts empty: %s", str(exc).splitlines()[0])
        return 0
    finally:
        conn.close()
    for article_id, t, title, summary in rows:
        index.remember(article_id, float(t), text=model_text(title, summary))
    log.info("story index: %d stories of the last %ds loaded", len(rows), index.horizon_s)
    return len(rows)
