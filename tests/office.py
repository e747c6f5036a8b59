"""A laboratory's office for the records tests: one database, the staff, two customers, a tariff.

Time is injected: `Office.now` is the clock the workflow reads, moved by the tests, so an order
can be walked through weeks of working days in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from results.records.accounts import Role, add_organisation, add_user, set_signing_passphrase
from results.records.calendar import Holiday
from results.records.database import RecordsDB
from results.records.models import AuditEntryRow, UserRow
from results.records.settings import add_holidays, add_tariff_line, set_laboratory
from results.records.workflow import Workflow
from results.store import RunStore

PASSWORD = "correct horse battery"
PASSPHRASE = "head's signing passphrase"
LAB = {"name": "Balai Kalibrasi Contoh", "address": "Jl. Metrologi 17, Bandung 40135, Indonesia",
       "accreditation": "ISO/IEC 17025:2017, KAN LK-000 (demo)", "verify_url": "https://lab.example.org/verify"}
SURVEY = {"U1": 4, "U2": 3, "U3": 4, "U4": 3, "U5": 4, "U6": 4, "U7": 4, "U8": 3, "U9": 4}

STAFF = {
    "admin": [Role.ADMIN],
    "cs": [Role.CUSTOMER_SERVICE],
    "lead": [Role.TEAM_LEAD],
    "treasurer": [Role.TREASURER],
    "supervisor": [Role.SUPERVISOR],
    "manager": [Role.TECHNICAL_MANAGER],
    "analyst": [Role.ANALYST],
    "analyst2": [Role.ANALYST],
    "head": [Role.HEAD],
    # one person of a small lab who holds many roles: the workflow must still segregate duties
    "allrounder": [Role.ANALYST, Role.SUPERVISOR, Role.TECHNICAL_MANAGER, Role.HEAD],
}


@dataclass
class Clock:
    at: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.at

    def move_to(self, day: date) -> None:
        self.at = datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)

    def advance(self, days: int) -> None:
        self.at += timedelta(days=days)


@dataclass
class Office:
    db: RecordsDB
    path: str
    clock: Clock
    workflow: Workflow
    users: dict[str, UserRow]

    @classmethod
    async def open(cls, path: str, holidays: list[Holiday] | None = None) -> Office:
        db = await RecordsDB.open(path)
        clock = Clock()
        users: dict[str, UserRow] = {}
        async with db.transaction() as s:
            await add_organisation(s, name="PT Maju Jaya", kind="external", actor="setup")
            await add_organisation(s, name="PT Lain", kind="external", actor="setup")
            await add_organisation(s, name="Regional Lab Surabaya", kind="internal", actor="setup")
            for name, roles in STAFF.items():
                users[name] = await add_user(s, username=name, full_name=name.title(), roles=roles,
                                             password=PASSWORD, actor="setup")
            for name, org in (("ext", "PT Maju Jaya"), ("other", "PT Lain"), ("int", "Regional Lab Surabaya")):
                users[name] = await add_user(s, username=name, full_name=name.title(), roles=[Role.CUSTOMER],
                                             password=PASSWORD, organisation=org, actor="setup")
            for head in ("head", "allrounder"):
                await set_signing_passphrase(s, users[head], PASSPHRASE)
            await set_laboratory(s, users["admin"], name=LAB["name"], address=LAB["address"], country="ID",
                                 accreditation=LAB["accreditation"], verify_url=LAB["verify_url"])
            await add_tariff_line(s, users["treasurer"], code="K-DMM", description="Digital multimeter, DC voltage",
                                  price=1_250_000, currency="IDR")
            await add_tariff_line(s, users["treasurer"], code="K-DMM-IS", description="DMM on site",
                                  price=1_750_000, currency="IDR", service="insitu")
            if holidays:
                await add_holidays(s, users["admin"], holidays)
        return cls(db, path, clock, Workflow(db, now=clock), users)

    async def close(self) -> None:
        await self.db.close()

    async def audit_entries(self) -> int:
        async with self.db.transaction() as s:
            return int(await s.scalar(select(func.count(AuditEntryRow.seq))) or 0)

    async def completed_run(self, *, error: float = 1.5e-6, expanded_u: float = 4.0e-6) -> int:
        """A finished run in the store with one point result (the lifecycle tests need a run to exist;
        the real bench runs launched from an order item are in test_records_order_run.py)."""
        store = await RunStore.open(self.path)
        try:
            run = await store.create_run(procedure_name="DC voltage", bench_name="bench", bench_source="bench.toml",
                                         bench_toml="", procedure_source="p.toml", procedure_toml="", options={},
                                         points=[{"nominal": 10.0, "unit": "V", "range": 10.0}])
            attempt = await store.begin_attempt(run, 0)
            result = {"nominal": 10.0, "unit": "V", "ref_mean": 10.0, "uut_mean": 10.0 + error, "error": error,
                      "correction": -error, "u_c": expanded_u / 2, "dof_eff": 50.0, "k": 2.0, "U": expanded_u,
                      "tolerance": 3.5e-5, "decision": {"outcome": "pass", "rule": "ILAC-G8 simple acceptance"},
                      "budget": {"components": [{"name": "repeatability", "kind": "A", "distribution": "normal",
                                                 "u": 1e-6, "sensitivity": 1.0, "contribution": 1e-6, "dof": 9}]}}
            await store.complete_point(run_id=run, point_index=0, attempt=attempt, stability={"stable": True},
                                       pending_readings=[{"run_id": run, "point_index": 0, "attempt": attempt,
                                                          "channel": "uut", "seq": 0, "t": 0.0,
                                                          "value": 10.0 + error, "unit": "V"}],
                                       results={"": result})
            await store.set_status(run, "completed")
            return run
        finally:
            await store.close()


ITEM = {"make": "Keysight", "model": "34465A", "serial": "MY-0001", "parameter": "DC voltage",
        "scope": "DC voltage 0 V to 1000 V", "requested_points": "0, 1, 10, 100 V"}


async def walk_to(office: Office, order: str, customer: str, kind: str, service: str, stop: str | None = None,
                  serials: list[str] | None = None) -> list[tuple[str, str]]:
    """Take the order along its happy path, returning (action, user) for each step; stop before `stop`."""
    steps = happy_path(customer, kind, service)
    done = []
    for action, user, kw in steps:
        if action == stop:
            return done
        await do_step(office, order, action, user, kw)
        done.append((action, user))
    return done


async def do_step(office: Office, order: str, action: str, user: str, kw: dict[str, Any]) -> dict[str, Any]:
    wf = office.workflow
    if action == "__run":
        run = await office.completed_run()
        item_id = await _item_id(office, order)
        await wf.link_run(office.users[user], item_id, run)
        return {}
    if kw.get("data") == "PAY":
        code, amount = await billing_of(office, order)
        kw = {"data": {"billing_code": code, "amount": amount, "method": "transfer", "reference": "TRX-778812",
                       "proof": "bukti-transfer.pdf"}}
    return await wf.act(office.users[user], order, action, **kw)


async def billing_of(office: Office, order: str) -> tuple[str, int]:
    from results.records.models import BillingRow, OrderRow

    async with office.db.transaction() as s:
        row = (await s.execute(select(BillingRow.code, BillingRow.amount).join(OrderRow, OrderRow.id ==
                                                                               BillingRow.order_id)
                               .where(OrderRow.request_number == order))).first()
        assert row is not None
        return row[0], row[1]


async def _item_id(office: Office, order: str) -> int:
    from results.records.models import OrderItemRow, OrderRow

    async with office.db.transaction() as s:
        o = await s.scalar(select(OrderRow).where(OrderRow.request_number == order))
        assert o is not None
        return int(await s.scalar(select(OrderItemRow.id).where(OrderItemRow.order_id == o.id)) or 0)


def happy_path(customer: str, kind: str, service: str) -> list[tuple[str, str, dict[str, Any]]]:
    tariff = "K-DMM-IS" if service == "insitu" else "K-DMM"
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("confirm_scope", "cs", {"data": {"tariffs": {"1": tariff}} if kind == "external" else {}})]
    if kind == "external":
        steps += [("approve_tariff", "lead", {}), ("accept_tariff", customer, {}), ("issue_billing", "treasurer", {}),
                  ("pay", customer, {"data": "PAY"}), ("verify_payment", "treasurer", {})]
    steps += [("propose_schedule", "cs", {"data": {"date": "2026-12-07"}}), ("accept_schedule", customer, {}),
              ("issue_work_order", "lead", {})]
    if service == "exsitu":
        steps += [("receive_items", "cs", {"data": {"condition": "good, seals intact"}})]
    steps += [("assign_analyst", "supervisor", {"data": {"analyst": "analyst"}}),
              ("validate_assignment", "manager", {}),
              ("start_calibration", "analyst", {"data": {"item": 1}}),
              ("__run", "analyst", {}),
              ("submit_results", "analyst", {}), ("verify", "supervisor", {}), ("validate", "manager", {}),
              ("assign_numbers", "lead", {}), ("request_signature", "cs", {}),
              ("sign", "head", {"data": {"passphrase": PASSPHRASE}}), ("release", "cs", {}),
              ("submit_survey", customer, {"data": {"answers": SURVEY}}),
              ("download_certificate", customer, {})]
    if service == "exsitu":
        steps += [("return_items", "cs", {"data": {"condition": "good, packed"}})]
    steps += [("acknowledge_receipt", customer, {"data": {"evaluation": "conforming, accepted"}}),
              ("archive_acknowledgement", "cs", {}), ("close", customer, {})]
    return steps
