"""Schema migrations: empty to head, a database from before migrations, and one from the future."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from alembic import command

from daq.errors import ConfigError
from results.store import RunStore
from results.store.schema import alembic_config, head_revision


async def test_an_empty_file_is_migrated_to_head(tmp_path):
    store = await RunStore.open(tmp_path / "new.sqlite")
    await store.close()
    con = sqlite3.connect(tmp_path / "new.sqlite")
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "readings", "orders", "audit_log", "equipment_certificates"} <= tables


async def test_a_database_from_before_migrations_keeps_its_runs_and_is_upgraded(tmp_path):
    path = tmp_path / "old.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:  # the run tables exactly as the previous release wrote them
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(sa.text("DROP TABLE alembic_version"))
        conn.execute(sa.text("INSERT INTO runs (created_at, status, message, procedure_name, bench_name, bench_source,"
                             " bench_toml, procedure_source, procedure_toml, options_json, operator) VALUES "
                             "('2026-11-01', 'completed', '', 'DC', 'b', 'b.toml', '', 'p.toml', '', '{}', 'ana')"))
    engine.dispose()
    store = await RunStore.open(path)
    try:
        run = await store.load_run(1)
        assert run is not None and run.status == "completed"
    finally:
        await store.close()
    con = sqlite3.connect(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
    assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 0


async def test_a_database_from_a_newer_program_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "future.sqlite"
    await (await RunStore.open(path)).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = '0999'")
    con.commit()
    with pytest.raises(ConfigError, match="newer version"):
        await RunStore.open(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0999"


async def test_a_migration_cut_short_leaves_no_half_schema(tmp_path):
    """A process killed mid-migration must not leave tables without their version (the next start would
    take them for a pre-migration database and fail): the whole upgrade is one transaction."""
    from results.store.connection import open_engine
    from results.store.schema import _upgrade

    path = tmp_path / "cut.sqlite"
    engine = open_engine(path, pooled=False, write_lock_first=True)
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, str(path))
            raise RuntimeError("killed")
    await engine.dispose()
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] == 0
    con.close()
    await (await RunStore.open(path)).close()  # and it starts cleanly afterwards


async def test_the_models_and_the_migrations_agree(tmp_path):
    """A model changed without a migration would be caught here, not on a lab's database."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import results.records.models  # noqa: F401
    from results.store.models import Base

    store = await RunStore.open(tmp_path / "head.sqlite")
    try:
        async with store.engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
    finally:
        await store.close()
    assert diff == []
