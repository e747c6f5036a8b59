"""How the program connects: one place that knows SQLite's pragmas and locking, for runs and records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


def database_url(path_or_url: str | Path) -> str:
    text = str(path_or_url)
    if "://" in text:
        return text
    return f"sqlite+aiosqlite:///{Path(text).expanduser().resolve()}"


def open_engine(path_or_url: str | Path, *, pooled: bool = True, write_lock_first: bool = False) -> AsyncEngine:
    """`write_lock_first`: on SQLite, every transaction begins IMMEDIATE, so one that reads then writes
    (check a state, then move it) holds the write lock from its first read and cannot act on a stale view.
    PostgreSQL gets the same guarantee from row locks taken by the workflow."""
    url = database_url(path_or_url)
    engine = create_async_engine(url) if pooled else create_async_engine(url, poolclass=NullPool)
    if url.startswith("sqlite"):
        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
            if write_lock_first:
                dbapi_conn.isolation_level = None  # the driver's own BEGIN is replaced by ours

        if write_lock_first:
            @event.listens_for(engine.sync_engine, "begin")
            def _begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
    return engine
