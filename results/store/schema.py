"""The database schema moves forward by Alembic migrations, run in-process when a store opens.

Runs and order records share one database and one chain of migrations (results/store/migrations).
A database written before migrations existed (run tables only, no `alembic_version`) is
recognised by its columns and stamped at the first revision, then upgraded like any other;
a database from a newer program is refused rather than guessed at.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from daq.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
FIRST_REVISION = "0001"

# The run tables as the program wrote them before migrations existed (revision 0001's schema).
_PRE_MIGRATION_COLUMNS = {
    "runs": {"id", "created_at", "finished_at", "status", "message", "procedure_name", "bench_name",
             "bench_source", "bench_toml", "procedure_source", "procedure_toml", "options_json", "operator",
             "owner", "heartbeat_at"},
    "points": {"id", "run_id", "point_index", "nominal", "unit", "range", "label"},
    "point_attempts": {"id", "run_id", "point_index", "attempt", "started_at", "status", "stability_json"},
    "readings": {"id", "run_id", "point_index", "attempt", "channel", "seq", "t", "value", "unit", "flag"},
    "point_results": {"id", "channel", "run_id", "point_index", "attempt", "nominal", "unit", "ref_mean",
                      "uut_mean", "error", "correction", "u_c", "dof_eff", "k", "expanded_u", "tolerance",
                      "decision", "rule", "result_json", "created_at"},
    "budget_lines": {"id", "result_id", "position", "name", "kind", "distribution", "u", "sensitivity",
                     "contribution", "dof", "note"},
    "run_events": {"id", "run_id", "at", "kind", "message"},
}


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade_to_head(engine: AsyncEngine, source: str) -> None:
    """Bring the database at `source` to the newest schema, or refuse it with the reason and the fix.

    All in one transaction that takes the write lock first: SQLite's driver would otherwise run the
    DDL outside any transaction, and a process killed mid-migration would leave half a schema; two
    processes opening a new database at once would both try to build it."""
    from results.store.connection import open_engine

    async with engine.connect() as conn:  # the common case, every open of an up-to-date database: one read
        current = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    if current == head_revision():
        return
    url = engine.url.render_as_string(hide_password=False)
    migrator = open_engine(url, pooled=False, write_lock_first=True) if url.startswith("sqlite") else engine
    try:
        async with migrator.begin() as conn:
            await conn.run_sync(_upgrade, source)
    finally:
        if migrator is not engine:
            await migrator.dispose()


def _upgrade(sync_conn: Any, source: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_conn
    script = ScriptDirectory.from_config(config)
    current = MigrationContext.configure(sync_conn).get_current_revision()
    tables = set(inspect(sync_conn).get_table_names())
    if current is None and "runs" in tables:
        _check_pre_migration(sync_conn, source)
        command.stamp(config, FIRST_REVISION)
    elif current is not None and current not in {r.revision for r in script.walk_revisions()}:
        raise ConfigError(source, "(database)", f"written by a newer version of this program (schema {current})",
                          "open it with that version, or give a new --db file")
    command.upgrade(config, "head")


def _check_pre_migration(sync_conn: Any, source: str) -> None:
    inspector = inspect(sync_conn)
    for table, wanted in _PRE_MIGRATION_COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)} if inspector.has_table(table) else set()
        if missing := sorted(wanted - have):
            raise ConfigError(source, "(database)",
                              f"not a database this program wrote (table {table} lacks {', '.join(missing)})",
                              "give a new --db file; this one is left untouched")
