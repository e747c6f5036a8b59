"""The equipment register: file checks, the run gate, budgets from the register's certificate, audit, CLI.

Expected uncertainties are worked by hand from runner/data/register-demo.toml (comments show the sums).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from daq.bench import load_bench
from daq.certificate import CorrectionTable
from daq.errors import ConfigError
from procedures.loader import load_procedure
from results.point import REFERENCE_STANDARD
from results.records import audit
from results.records.accounts import Role, add_user
from results.records.database import RecordsDB
from results.records.errors import Refused
from results.records.register import (
    add_certificate,
    count_rows,
    import_register,
    load_register,
    match_item,
    parse_certificate,
    parse_register,
    register_listing,
    set_status,
    standards_for_run,
)
from runner.engine import validate_before_start
from runner.register_cli import register_app
from runner.session import packaged

DEMO_REGISTER = str(packaged("register-demo.toml"))
DAY = date(2026, 11, 21)


def demo_data() -> dict[str, Any]:
    return tomllib.loads(Path(DEMO_REGISTER).read_text(encoding="utf-8"))


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = await RecordsDB.open(tmp_path / "records.sqlite")
    yield database
    await database.close()


async def imported(db: RecordsDB, data: dict[str, Any] | None = None) -> None:
    register = parse_register(data, "reg.toml") if data is not None else load_register(DEMO_REGISTER)
    async with db.transaction() as s:
        await import_register(s, register, actor="qa1")


async def counts(db: RecordsDB) -> dict[str, int]:
    async with db.transaction() as s:
        return await count_rows(s)


# -- the file -------------------------------------------------------------------------------------

def test_demo_register_parses() -> None:
    register = load_register(DEMO_REGISTER)
    serials = [e.serial for e in register.equipment]
    assert serials == ["SIM5522A-0001", "R1529-0007", "B7341-0001", "P-0001"]
    dcv = register.equipment[0].certificates[0].quantities[0]
    assert (dcv.quantity, dcv.unit, dcv.table.k) == ("dcv", "V", 2.0)


@pytest.mark.parametrize(("edit", "field", "words"), [
    (lambda d: d["equipment"][1]["certificate"][0].update(due_on=date(2024, 1, 1)),
     "equipment[1].certificate[0].due_on", "before issued_on"),
    (lambda d: d["equipment"][2].update(category="spare"), "equipment[2].category", "reference, check"),
    (lambda d: d["equipment"][0].pop("serial"), "equipment[0].serial", "non-empty string"),
    (lambda d: d["equipment"][0].update(serial=12345), "equipment[0].serial", "non-empty string"),
    (lambda d: d["equipment"][0].update(interval_months=0), "equipment[0].interval_months", "months > 0"),
    (lambda d: d["equipment"][0]["certificate"][0].update(issued_on="2026-13-02"),
     "equipment[0].certificate[0].issued_on", "expected a date"),
    (lambda d: d["equipment"][0]["certificate"][0]["dcv"].pop("unit"),
     "equipment[0].certificate[0].dcv.unit", "non-empty string"),
    (lambda d: d["equipment"][0]["certificate"][0]["dcv"].update(unit="volts-ish"),
     "equipment[0].certificate[0].dcv.unit", ""),
    (lambda d: d["equipment"][0]["certificate"][0]["dcv"]["points"][3].update(U="big"),
     "equipment[0].certificate[0].dcv.points[3].U", "expected a number"),
    (lambda d: d["equipment"][0]["certificate"][0]["dcv"].update(ranges=[]),
     "equipment[0].certificate[0].dcv.ranges", "unknown field"),
    (lambda d: d["equipment"][0]["certificate"][0].update(lab="x"), "equipment[0].certificate[0].lab",
     "unknown field"),
    (lambda d: d["equipment"][3].update(serial="SIM5522A-0001"), "equipment[3].serial", "also equipment[0]"),
    (lambda d: d["equipment"][0]["certificate"].append(dict(d["equipment"][0]["certificate"][0])),
     "equipment[0].certificate[1].number", "listed twice"),
])
def test_mistakes_name_the_file_and_field(edit: Any, field: str, words: str) -> None:
    data = demo_data()
    edit(data)
    with pytest.raises(ConfigError) as info:
        parse_register(data, "reg.toml")
    assert info.value.source == "reg.toml"
    assert info.value.field == field
    assert words in info.value.problem
    assert info.value.fix


def test_load_register_reports_syntax_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[equipment]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="syntax"):
        load_register(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_register(tmp_path / "none.toml")


# -- writing ---------------------------------------------------------------------------------------

async def test_import_is_audited_and_an_edited_value_is_found(db: RecordsDB) -> None:
    await imported(db)
    # 4 standards, 4 certificates, 10 + 4 + 3 + 9 values
    assert await counts(db) == {"equipment": 4, "equipment_certificates": 4, "certificate_values": 26}
    async with db.transaction() as s:
        report = await audit.verify(s)
    assert report.ok, report.problems
    assert report.entries == 34
    async with db.transaction() as s:
        assert (await match_item(s, "P-0001")).model == "PACE"  # type: ignore[union-attr]
        assert await match_item(s, "NOT-REGISTERED") is None
    async with db.transaction() as s:
        await s.execute(text("UPDATE certificate_values SET correction = 0.5 WHERE id = 3"))
    async with db.transaction() as s:
        report = await audit.verify(s)
    assert not report.ok
    assert any(p.startswith("certificate_values 3: changed") for p in report.problems), report.problems


async def test_duplicate_serial_in_the_database_writes_nothing(db: RecordsDB) -> None:
    await imported(db)
    before = await counts(db)
    data = demo_data()
    data["equipment"] = [data["equipment"][3] | {"serial": "NEW-1"}, data["equipment"][0]]
    register = parse_register(data, "second.toml")
    with pytest.raises(ConfigError) as info:
        async with db.transaction() as s:
            await import_register(s, register, actor="qa1")
    assert info.value.field == "equipment[1].serial"
    assert "already registered" in info.value.problem
    assert await counts(db) == before


async def test_recalibration_is_a_new_certificate_and_status_is_audited(db: RecordsDB) -> None:
    await imported(db)
    cert = parse_certificate({"number": "KAL-2027-0101", "issuing_lab": "Demo NMI", "issued_on": date(2027, 2, 20),
                              "due_on": date(2028, 2, 20),
                              "pressure": {"unit": "bar", "k": 2.0,
                                           "points": [{"at": 0, "correction": 0.0, "U": 0.001},
                                                      {"at": 16, "correction": -0.001, "U": 0.001}]}},
                             "new.toml", "certificate")
    async with db.transaction() as s:
        await add_certificate(s, "P-0001", cert, actor="qa1")
        await set_status(s, "B7341-0001", "out_of_service", "heater fault", actor="qa1")
    with pytest.raises(ConfigError, match="already has certificate"):
        async with db.transaction() as s:
            await add_certificate(s, "P-0001", cert, actor="qa1")
    async with db.transaction() as s:
        assert (await audit.verify(s)).ok
        before = {i["serial"]: i for i in await register_listing(s, date(2027, 2, 1))}
        after = {i["serial"]: i for i in await register_listing(s, date(2027, 3, 1))}
    assert before["P-0001"]["certificate"] == "KAL-2026-0233"
    assert before["P-0001"]["days_left"] == 9
    assert before["P-0001"]["flags"] == ["due within 30 days"]
    assert after["P-0001"]["certificate"] == "KAL-2027-0101"
    assert after["P-0001"]["flags"] == []
    assert after["SIM5522A-0001"]["flags"] == ["due within 30 days"]  # due 2027-03-02
    assert "out of service" in after["B7341-0001"]["flags"] and "expired" in after["B7341-0001"]["flags"]


# -- the run gate ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("setup", "rule"), [
    ("expired", "R-REG-EXPIRED"),
    ("out_of_service", "R-REG-STATUS"),
    ("unknown", "R-REG-UNKNOWN"),
    ("no_quantity", "R-REG-QUANTITY"),
    ("no_certificate", "R-REG-NOCERT"),
    ("no_serial", "R-REG-SERIAL"),
])
async def test_the_gate_refuses_with_its_rule(db: RecordsDB, setup: str, rule: str) -> None:
    data = demo_data()
    bench = load_bench(packaged("demo-bench.toml"))
    on = DAY
    if setup == "expired":
        on = date(2027, 3, 3)  # due 2027-03-02
    elif setup == "unknown":
        data["equipment"][0]["serial"] = "OTHER"
    elif setup == "no_quantity":
        del data["equipment"][0]["certificate"][0]["dcv"]
    elif setup == "no_certificate":
        on = date(2026, 3, 1)  # issued 2026-03-02
    elif setup == "no_serial":
        calibrator = dataclasses.replace(bench.instruments["calibrator"], serial=None)
        bench = dataclasses.replace(bench, instruments=bench.instruments | {"calibrator": calibrator})
    await imported(db, data)
    if setup == "out_of_service":
        async with db.transaction() as s:
            await set_status(s, "SIM5522A-0001", "out_of_service", "failed its check", actor="qa1")
    with pytest.raises(Refused) as info:
        async with db.transaction() as s:
            await standards_for_run(s, bench, on)
    assert info.value.rule == rule
    assert "calibrator" in info.value.problem


async def test_on_the_due_date_the_standard_is_still_in_force(db: RecordsDB) -> None:
    await imported(db)
    async with db.transaction() as s:
        _, used = await standards_for_run(s, load_bench(packaged("demo-bench.toml")), date(2027, 3, 2))
    assert used[0].certificate_number == "KAL-2026-0412"


async def test_the_bench_carries_the_register_values_and_the_budget_uses_them(db: RecordsDB) -> None:
    await imported(db)
    bench = load_bench(packaged("demo-bench.toml"))
    async with db.transaction() as s:
        run_bench, used = await standards_for_run(s, bench, DAY)
    assert [(u.instrument, u.serial, u.certificate_number, u.issuing_lab, u.issued_on, u.due_on) for u in used] == [
        ("calibrator", "SIM5522A-0001", "KAL-2026-0412", "Demo national metrology institute", date(2026, 3, 2),
         date(2027, 3, 2))]
    dcv = run_bench.instruments["calibrator"].certificate["dcv"]
    assert "ranges" not in dcv and dcv["k"] == 2.0 and len(dcv["points"]) == 10
    assert dcv["points"][6] == {"at": 1.0, "correction": 2e-6, "U": 1.1e-5}
    assert "ranges" in bench.instruments["calibrator"].certificate["dcv"]  # the bench given is untouched

    procedure = load_procedure(packaged("dcv-34465a.toml"))
    validate_before_start(run_bench, procedure)
    five_volts = next(p for p in procedure.points if p.nominal == 5.0)
    result = procedure.evaluate(five_volts, [5.0001, 5.0001, 5.0001], [5.0, 5.0, 5.0], 1e-6)  # type: ignore[attr-defined]
    reference = next(c for c in result.budget.components if c.name == REFERENCE_STANDARD)
    # 5 V is a certified point: its own U over k = 7.0e-5 / 2 = 3.5e-5 V, its own correction 1.5e-5 V
    assert reference.u == pytest.approx(3.5e-5)
    assert result.ref_mean == pytest.approx(5.0 + 1.5e-5)
    assert result.error == pytest.approx(1e-4 - 1.5e-5)
    # between certified points: the larger neighbour's U (1 V: 1.1e-5, 5 V: 7e-5) and the correction
    # interpolated, 2e-6 + (1.5e-5 - 2e-6) x (3 - 1) / (5 - 1) = 8.5e-6 V
    table = CorrectionTable.parse(dcv, source="register", where="dcv")
    assert table.standard_uncertainty(3.0) == pytest.approx(3.5e-5)
    assert table.correction(3.0) == pytest.approx(8.5e-6)
    assert "correction" in reference.note


async def test_a_register_certificate_short_of_a_demo_point_is_refused_before_energising(db: RecordsDB) -> None:
    data = demo_data()
    points = data["equipment"][0]["certificate"][0]["dcv"]["points"]
    data["equipment"][0]["certificate"][0]["dcv"]["points"] = [p for p in points if abs(p["at"]) < 100]
    await imported(db, data)
    async with db.transaction() as s:
        run_bench, _ = await standards_for_run(s, load_bench(packaged("demo-bench.toml")), DAY)
    with pytest.raises(ConfigError) as info:
        validate_before_start(run_bench, load_procedure(packaged("dcv-34465a.toml")))
    assert info.value.field == "instruments.calibrator.certificate.dcv"
    assert "does not cover 100 V" in info.value.problem


async def test_other_packaged_benches_pass_the_gate(db: RecordsDB) -> None:
    await imported(db)
    async with db.transaction() as s:
        pressure, _ = await standards_for_run(s, load_bench(packaged("pressure-bench.toml")), DAY)
        thermometry, used = await standards_for_run(s, load_bench(packaged("thermometry-bench.toml")), DAY)
    assert pressure.instruments["pace"].certificate["pressure"]["points"][1]["correction"] == -0.0005
    reference = thermometry.instruments["reference"].certificate
    assert reference["temperature"]["channel"] == 1  # the bench's own keys are kept
    assert thermometry.instruments["bath"].certificate["characterisation"]["stability"] == 0.004
    assert sorted(u.serial for u in used) == ["B7341-0001", "R1529-0007"]
    validate_before_start(pressure, load_procedure(packaged("pressure-gauge.toml")))
    validate_before_start(thermometry, load_procedure(packaged("thermometer-comparison.toml")))


# -- the command line --------------------------------------------------------------------------------

async def _users(path: Path) -> None:
    database = await RecordsDB.open(path)
    try:
        async with database.transaction() as s:
            await add_user(s, username="qa1", full_name="Quality", roles=[Role.QA], password="secret-pw",
                           actor="test")
            await add_user(s, username="ana", full_name="Analyst", roles=[Role.ANALYST], password="secret-pw",
                           actor="test")
    finally:
        await database.close()


def test_cli_import_list_status_and_role(tmp_path: Path) -> None:
    """Synchronous like a shell: each command runs its own event loop (asyncio.run)."""
    path = tmp_path / "records.sqlite"
    asyncio.run(_users(path))
    runner = CliRunner()
    env = {"DAQ_PASSWORD": "secret-pw"}

    refused = runner.invoke(register_app, ["import", DEMO_REGISTER, "--db", str(path), "--user", "ana"], env=env)
    assert refused.exit_code == 2
    assert "R-ROLE" in refused.output

    done = runner.invoke(register_app, ["import", DEMO_REGISTER, "--db", str(path), "--user", "qa1"], env=env)
    assert done.exit_code == 0, done.output
    assert "registered 4" in done.output

    again = runner.invoke(register_app, ["import", DEMO_REGISTER, "--db", str(path), "--user", "qa1"], env=env)
    assert again.exit_code == 2
    assert "error:" in again.output and "already registered" in again.output

    status = runner.invoke(register_app, ["status", "P-0001", "out_of_service", "--note", "dropped",
                                          "--db", str(path), "--user", "qa1"], env=env)
    assert status.exit_code == 0, status.output
    wrong = runner.invoke(register_app, ["status", "P-0001", "broken", "--note", "x", "--db", str(path),
                                         "--user", "qa1"], env=env)
    assert wrong.exit_code == 2 and "unknown status" in wrong.output

    listing = runner.invoke(register_app, ["list", "--db", str(path), "--on", "2027-02-01", "--json"])
    assert listing.exit_code == 0, listing.output
    items = {i["serial"]: i for i in json.loads(listing.output)}
    assert items["P-0001"]["status"] == "out_of_service"
    assert items["P-0001"]["flags"] == ["out of service", "due within 30 days"]
    assert items["SIM5522A-0001"]["days_left"] == 29

    table = runner.invoke(register_app, ["list", "--db", str(path), "--on", "2027-02-01"])
    assert table.exit_code == 0 and "KAL-2026-0412" in table.output
    bad_day = runner.invoke(register_app, ["list", "--db", str(path), "--on", "tomorrow"])
    assert bad_day.exit_code == 2 and "--on" in bad_day.output

    assert asyncio.run(_audit_ok(path))


async def _audit_ok(path: Path) -> bool:
    database = await RecordsDB.open(path)
    try:
        async with database.transaction() as s:
            return (await audit.verify(s)).ok
    finally:
        await database.close()
