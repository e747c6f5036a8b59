"""The audit trail detects any edited, deleted or slipped-in record, and any change to the chain itself."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from results.records import audit
from tests.office import ITEM, Office, do_step, happy_path


@pytest.fixture(scope="module")
def closed_order_db(tmp_path_factory) -> Path:
    """A closed external ex-situ order (with its run's stored result) in a SQLite file, made once."""
    path = tmp_path_factory.mktemp("audit") / "lab.sqlite"

    async def build() -> None:
        office = await Office.open(str(path))
        order = (await office.workflow.request(office.users["ext"], service="exsitu", items=[ITEM])).request_number
        for action, user, kw in happy_path("ext", "external", "exsitu"):
            await do_step(office, order, action, user, kw)
        await office.close()

    asyncio.run(build())
    return path


@pytest.fixture
def finished(closed_order_db, tmp_path) -> SimpleNamespace:
    copy = tmp_path / "lab.sqlite"
    shutil.copy(closed_order_db, copy)
    return SimpleNamespace(path=str(copy))


async def verify(office: SimpleNamespace) -> audit.AuditReport:
    from results.records.database import RecordsDB

    db = await RecordsDB.open(office.path)
    try:
        async with db.transaction() as s:
            return await audit.verify(s)
    finally:
        await db.close()


def tamper(office: SimpleNamespace, sql: str) -> None:
    con = sqlite3.connect(office.path)
    con.execute(sql)
    con.commit()
    con.close()


async def test_an_untouched_database_verifies(finished):
    report = await verify(finished)
    assert report.ok, report.problems
    assert report.entries > 60 and len(report.head_hash) == 64


@pytest.mark.parametrize("sql,expect", [
    ("UPDATE point_results SET error = error * 2", "point_results 1: changed"),
    ("UPDATE readings SET value = value + 1e-6", "point_results 1: changed"),  # covered through its result
    ("UPDATE budget_lines SET u = 0", "point_results 1: changed"),
    ("UPDATE orders SET state = 'requested'", "orders 1: changed"),
    ("UPDATE item_results SET content_json = replace(content_json, 'pass', 'fail')", "item_results 1: changed"),
    ("UPDATE signatures SET signature = '00' || substr(signature, 3)", "signatures 1: changed"),
    ("DELETE FROM survey_responses", "survey_responses 1: deleted"),
    ("DELETE FROM payment_checks", "payment_checks 1: deleted"),
    ("INSERT INTO holidays (day, name) VALUES ('2026-12-31', 'slipped in')", "holidays 2026-12-31: written without"),
    ("UPDATE audit_log SET actor = 'somebody else' WHERE seq = 10", "audit entry 10: edited"),
    ("DELETE FROM audit_log WHERE seq = 12", "audit entries 12..12 are missing"),
    ("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)", "entries were removed from the end"),
])
async def test_any_change_behind_the_programs_back_is_named(finished, sql, expect):
    tamper(finished, sql)
    report = await verify(finished)
    assert not report.ok
    assert any(expect in p for p in report.problems), report.problems


async def test_a_swapped_entry_breaks_the_chain(finished):
    con = sqlite3.connect(finished.path)
    a = con.execute("SELECT prev_hash, hash FROM audit_log WHERE seq = 20").fetchone()
    b = con.execute("SELECT prev_hash, hash FROM audit_log WHERE seq = 21").fetchone()
    con.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = 20", b)
    con.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = 21", a)
    con.commit()
    con.close()
    report = await verify(finished)
    assert any("chain broken" in p or "edited" in p for p in report.problems)
