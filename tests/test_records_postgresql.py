"""The records on the real PostgreSQL server: schema from empty to head, a whole order, and a race."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from results.records import audit
from results.records.database import RecordsDB
from results.records.errors import Refused
from results.records.workflow import Workflow
from results.store.schema import head_revision
from tests.office import ITEM, Office, do_step, happy_path


async def test_the_schema_is_built_from_empty_to_head_by_migrations(postgres_url):
    db = await RecordsDB.open(postgres_url)
    try:
        async with db.transaction() as s:
            assert (await s.execute(text("SELECT version_num FROM alembic_version"))).scalar() == head_revision()
            tables = set((await s.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars())
    finally:
        await db.close()
    assert {"runs", "readings", "orders", "order_items", "audit_log", "equipment", "signatures"} <= tables
    db = await RecordsDB.open(postgres_url)  # and opening it again changes nothing
    await db.close()


async def test_an_external_ex_situ_order_lives_its_whole_life_on_postgresql(postgres_url):
    office = await Office.open(postgres_url)
    try:
        order = (await office.workflow.request(office.users["ext"], service="exsitu", items=[ITEM])).request_number
        for action, user, kw in happy_path("ext", "external", "exsitu"):
            await do_step(office, order, action, user, kw)
        async with office.db.transaction() as s:
            report = await audit.verify(s)
            assert report.ok, report.problems
            await s.execute(text("UPDATE payments SET amount = amount - 1"))
            tampered = await audit.verify(s)
            await s.rollback()
        assert not tampered.ok and any("payments" in p and "changed" in p for p in tampered.problems)
    finally:
        await office.close()


@pytest.mark.parametrize("where", ["postgresql", "sqlite"])
async def test_two_clients_racing_for_the_same_step_exactly_one_wins(postgres_url, tmp_path, where):
    url = postgres_url if where == "postgresql" else str(tmp_path / "race.sqlite")
    office = await Office.open(url)
    other = await RecordsDB.open(url)  # a second client: its own engine and connections
    try:
        wf2 = Workflow(other, now=office.clock)
        for round_ in range(5):
            order = (await office.workflow.request(office.users["ext"], service="exsitu",
                                                   items=[ITEM | {"serial": f"RACE-{round_}"}])).request_number
            await office.workflow.act(office.users["cs"], order, "confirm_scope", data={"tariffs": {"1": "K-DMM"}})
            outcomes = await asyncio.gather(
                office.workflow.act(office.users["lead"], order, "approve_tariff"),
                wf2.act(office.users["lead"], order, "approve_tariff"), return_exceptions=True)
            wins = [o for o in outcomes if isinstance(o, dict)]
            losses = [o for o in outcomes if isinstance(o, Exception)]
            assert len(wins) == 1 and len(losses) == 1, outcomes
            assert isinstance(losses[0], Refused) and losses[0].rule == "R-STATE", losses[0]
        async with office.db.transaction() as s:
            events = (await s.execute(text(
                "SELECT count(*) FROM order_events WHERE action = 'approve_tariff'"))).scalar()
            assert events == 5
            report = await audit.verify(s)
            assert report.ok, report.problems
    finally:
        await other.close()
        await office.close()
