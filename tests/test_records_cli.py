"""`daq orders ...` and `daq audit verify` over a real SQLite file, as a user types them."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from daq.errors import ConfigError
from results.records.lifecycle import ACTIONS, RULES
from results.records.register import import_register, load_register
from runner.orders_cli import audit_app, orders_app, parse_item, parse_sets
from runner.session import packaged
from tests.office import PASSPHRASE, PASSWORD, SURVEY, Office

root = typer.Typer()
root.add_typer(orders_app, name="orders")
root.add_typer(audit_app, name="audit")

ITEM = "make=Keysight;model=34465A;serial=SIM34465A-0001;parameter=DC voltage;scope=DC voltage 10 V;" \
       "requested_points=10 V"

# One point on the 10 V range, few repeats and short integrations: seconds of simulated time.
SHORT_PROCEDURE = """
[procedure]
name = "DMM DC voltage, one point (test)"
kind = "dc_voltage"
repeats = 3
nplc = 1
settle_nplc = 1
decision_rule = "guarded"
coverage = 0.9545

[roles]
source = "calibrator"
uut = "dmm"

[stability]
window = 5
max_std_ppm = 5
max_slope_ppm_per_s = 5
band_ppm = 10000
min_soak = "0.2 s"
timeout = "120 s"
use_instrument_flag = true

[[uut_spec]]
range = "10 V"
ppm_of_reading = 30
ppm_of_range = 5

[[points]]
range = "10 V"
setpoints = ["10 V"]
"""


@pytest.fixture(scope="module")
def office_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test office (tests.office) with the demo equipment register, built once and copied for each test."""
    path = tmp_path_factory.mktemp("office") / "lab.sqlite"

    async def setup() -> None:
        office = await Office.open(str(path))
        try:
            async with office.db.transaction() as s:
                await import_register(s, load_register(packaged("register-demo.toml")), actor="setup")
        finally:
            await office.close()

    asyncio.run(setup())
    return path


@pytest.fixture
def lab(office_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "lab.sqlite"
    shutil.copyfile(office_file, path)
    monkeypatch.setenv("DAQ_PASSWORD", PASSWORD)
    monkeypatch.setenv("DAQ_PASSPHRASE", PASSPHRASE)
    return str(path)


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(root, list(args))
    assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
    if code == 2:
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
        return result.stderr
    return result.stdout


def step(db: str, action: str, ref: str, user: str, *extra: str) -> dict:
    return json.loads(cli("orders", action, ref, "--user", user, "--db", db, "--json", *extra))


def next_working_day() -> date:
    day = date.today() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def request(db: str, user: str = "int", service: str = "insitu", item: str = ITEM) -> str:
    out = json.loads(cli("orders", "request", "--user", user, "--db", db, "--service", service,
                         "--site", "Jl. Industri 5, Surabaya", "--item", item, "--json"))
    assert out["state"] == "requested"
    return str(out["order"])


def test_an_internal_insitu_order_from_request_to_closed_by_the_command_line_with_a_real_run(lab, tmp_path):
    ref = request(lab)
    assert step(lab, "confirm-scope", ref, "cs")["state"] == "scope_confirmed"
    assert step(lab, "propose-schedule", ref, "cs", "--date", next_working_day().isoformat())["state"] == \
        "schedule_proposed"
    accepted = step(lab, "accept-schedule", ref, "int")
    assert accepted["order_number"].startswith("ORD-")
    number = accepted["order_number"]
    assert step(lab, "issue-work-order", number, "lead")["work_order"].startswith("SPK-")
    assert step(lab, "assign-analyst", number, "supervisor", "--analyst", "analyst")["analysts"] == {"1": "analyst"}
    step(lab, "validate-assignment", number, "manager")

    # the analyst launches the item's calibration: simulated bench, register-checked calibrator, one point
    procedure = tmp_path / "short.toml"
    procedure.write_text(SHORT_PROCEDURE, encoding="utf-8")
    ran = json.loads(cli("orders", "run", number, "--item", "1", "--bench", str(packaged("demo-bench.toml")),
                         "--procedure", str(procedure), "--simulate", "--scale", "50", "--seed", "7", "--yes",
                         "--no-live", "--user", "analyst", "--db", lab, "--json"))
    assert ran["status"] == "completed" and ran["results"] == 1
    detail = json.loads(cli("orders", "show", number, "--user", "analyst", "--db", lab, "--json"))
    assert detail["state"] == "in_calibration" and detail["items"][0]["runs"] == [ran["run_id"]]
    assert detail["next_steps"] == ["start_calibration", "submit_results"]
    assert "next steps for you: run (start-calibration), submit-results" in cli("orders", "show", number, "--user",
                                                                                "analyst", "--db", lab)

    assert step(lab, "submit-results", number, "analyst")["result_versions"] == {"1": 1}
    step(lab, "verify", number, "supervisor")
    step(lab, "validate", number, "manager")
    numbers = step(lab, "assign-numbers", number, "lead")["certificates"]
    assert numbers["1"].startswith("CAL-")
    step(lab, "request-signature", number, "cs")
    signed = step(lab, "sign", number, "head")  # the passphrase from DAQ_PASSPHRASE
    assert list(signed["signed"]) == [numbers["1"]]
    assert step(lab, "release", number, "cs")["late"] is False
    answers = ",".join(f"{k}={v}" for k, v in SURVEY.items())
    assert step(lab, "submit-survey", number, "int", "--answers", answers)["state"] == "surveyed"
    text = cli("orders", "download-certificate", number, "--user", "int", "--db", lab, "--out", str(tmp_path / "c"))
    assert f"certificate {numbers['1']}" in text
    cert = json.loads((tmp_path / "c" / f"{numbers['1']}.json").read_text())
    assert cert["signature"]["digest"] and cert["results"]["run"] == ran["run_id"]
    assert cert["results"]["standards"][0]["certificate_number"] == "KAL-2026-0412"
    step(lab, "acknowledge-receipt", number, "int", "--evaluation", "conforming, accepted")
    step(lab, "archive-acknowledgement", number, "cs")
    assert step(lab, "close", number, "int")["state"] == "closed"

    shown = cli("orders", "show", ref, "--user", "int", "--db", lab)
    assert "state: closed" in shown and "next steps for you: download-certificate" in shown and numbers["1"] in shown
    listed = json.loads(cli("orders", "list", "--user", "int", "--db", lab, "--json"))
    assert [o["state"] for o in listed] == ["closed"]
    today = date.today()
    turnaround = json.loads(cli("orders", "report", "turnaround", "--month", f"{today:%Y-%m}", "--user", "supervisor",
                                "--db", lab, "--json"))
    assert {r["service"]: r["completed"] for r in turnaround}["insitu"] == 1
    survey = json.loads(cli("orders", "report", "survey", "--year", str(today.year), "--user", "supervisor",
                            "--db", lab, "--json"))
    assert survey["responses"] == 1 and survey["grade"] == "A"
    assert cli("audit", "verify", "--db", lab).startswith("audit trail intact: ")


def test_a_refused_step_names_its_rule_and_exits_2(lab):
    ref = request(lab)
    assert "R-ROLE" in cli("orders", "confirm-scope", ref, "--user", "int", "--db", lab, code=2)
    assert "R-STATE" in cli("orders", "verify", ref, "--user", "supervisor", "--db", lab, code=2)
    assert "R-KIND" in cli("orders", "approve-tariff", ref, "--user", "lead", "--db", lab, code=2)
    assert "R-REASON" in cli("orders", "cancel", ref, "--user", "int", "--db", lab, code=2)
    assert "R-VERSION" in cli("orders", "confirm-scope", ref, "--user", "cs", "--db", lab, "--expected-version", "7",
                              code=2)
    assert "R-LOGIN" in CliRunner().invoke(root, ["orders", "list", "--user", "int", "--db", lab],
                                           env={"DAQ_PASSWORD": "wrong password"}).stderr
    assert "no order 'REQ-2026-99999'" in cli("orders", "show", "REQ-2026-99999", "--user", "cs", "--db", lab, code=2)
    assert "no order" in cli("orders", "confirm-scope", "REQ-2026-99999", "--user", "cs", "--db", lab, code=2)
    assert "no such records database" in cli("orders", "list", "--user", "cs", "--db", lab + ".typo", code=2)
    # launching a run is the start_calibration step: refused here by state, before any instrument is touched
    assert "R-STATE" in cli("orders", "run", ref, "--item", "1", "--bench", str(packaged("demo-bench.toml")),
                            "--procedure", str(packaged("dcv-34465a.toml")), "--simulate", "--user", "analyst",
                            "--db", lab, code=2)
    assert "no such bench file" in cli("orders", "run", ref, "--item", "1", "--bench", "nope.toml", "--procedure",
                                 "nope.toml", "--user", "analyst", "--db", lab, code=2)
    out = step(lab, "cancel", ref, "int", "--reason", "ordered twice")
    assert out["state"] == "cancelled" and out["version"] == 2


def test_set_builds_nested_data_and_friendly_flags_fill_the_same_fields(lab):
    assert parse_sets(["tariffs.1=K-DMM", "amount=1250000", "answers.U1=4", "answers.U2=3", "note=a=b"]) == \
        {"tariffs": {"1": "K-DMM"}, "amount": 1_250_000, "answers": {"U1": 4, "U2": 3}, "note": "a=b"}
    assert parse_sets(["code=0042", "ref='123'"], text_keys=frozenset({"code"})) == {"code": "0042", "ref": "123"}
    assert parse_item(ITEM)["serial"] == "SIM34465A-0001"
    for bad in (["amount"], ["=5"], ["a..b=1"], ["a=1", "a.b=2"]):
        with pytest.raises(ConfigError):
            parse_sets(bad)
    assert "expected KEY=VALUE" in cli("orders", "confirm-scope", "1", "--user", "cs", "--db", lab, "--set", "oops",
                                       code=2)
    ref = request(lab, "ext", "exsitu", "make=Fluke;model=87V;serial=123;parameter=DC voltage")
    assert "no tariff line 'K-NOPE'" in cli("orders", "confirm-scope", ref, "--user", "cs", "--db", lab,
                                            "--set", "tariffs.1=K-NOPE", code=2)
    assert step(lab, "confirm-scope", ref, "cs", "--set", "tariffs.1=K-DMM")["total"] == 1_250_000
    step(lab, "approve-tariff", ref, "lead")
    step(lab, "accept-tariff", ref, "ext")
    billing = step(lab, "issue-billing", ref, "treasurer")
    paid = step(lab, "pay", ref, "ext", "--data", json.dumps({"method": "transfer", "proof": "p.pdf"}),
                "--set", f"billing_code={billing['billing_code']}", "--set", f"amount={billing['amount']}",
                "--reference", "TRX-1")
    assert paid["state"] == "payment_submitted" and paid["settled"] is False
    step(lab, "reject-payment", ref, "treasurer", "--reason", "the proof is unreadable")
    paid = step(lab, "pay", ref, "ext", "--billing-code", billing["billing_code"], "--amount", str(billing["amount"]),
                "--method", "billing-code", "--reference", "TRX-2")
    assert paid["state"] == "paid" and paid["settled"] is True


def test_rules_lists_every_step_and_rule_and_every_step_has_its_command():
    text = cli("orders", "rules")
    for action in ACTIONS:
        assert f"  {action.replace('_', '-')}" in text, action
    for rule in RULES:
        assert rule in text
    commands = {c.name for c in orders_app.registered_commands}
    assert commands >= {a.replace("_", "-") for a in ACTIONS if a != "start_calibration"} | {"run", "request"}
    assert "start-calibration" not in commands


def test_audit_verify_passes_then_names_the_tampered_table(lab):
    ref = request(lab)
    step(lab, "confirm-scope", ref, "cs")
    assert "audit trail intact" in cli("audit", "verify", "--db", lab)
    with sqlite3.connect(lab) as con:
        con.execute("UPDATE orders SET state='closed' WHERE id=1")
    result = CliRunner().invoke(root, ["audit", "verify", "--db", lab])
    assert result.exit_code == 1
    assert "orders 1: changed since audit entry" in result.stderr


def test_init_creates_the_first_admin_who_then_sets_up_the_lab(tmp_path, monkeypatch):
    db = str(tmp_path / "new.sqlite")
    monkeypatch.setenv("DAQ_PASSWORD", PASSWORD)
    assert "administrator root created" in cli("orders", "init", "--admin", "root", "--db", db)
    assert "account(s) already" in cli("orders", "init", "--admin", "again", "--db", db, code=2)
    cli("orders", "organisation", "add", "PT Baru", "--kind", "external", "--user", "root", "--db", db)
    monkeypatch.setenv("DAQ_NEW_PASSWORD", "another long password")
    cli("orders", "user", "add", "tina", "--name", "Tina T", "--roles", "treasurer", "--user", "root", "--db", db)
    assert "unknown role" in cli("orders", "user", "add", "x", "--name", "X", "--roles", "wizard", "--user", "root",
                                 "--db", db, code=2)
    added = CliRunner().invoke(root, ["orders", "tariff", "add", "K-T", "--description", "Thermometer", "--price",
                                      "900000", "--service", "exsitu", "--user", "tina", "--db", db],
                               env={"DAQ_PASSWORD": "another long password"})
    assert added.exit_code == 0, added.stderr
    assert json.loads(cli("orders", "tariff", "list", "--db", db, "--json"))[0]["price"] == 900_000
    assert "no such records database" in cli("orders", "organisation", "add", "PT X", "--kind", "internal",
                                              "--user", "root", "--db", db + ".typo", code=2)
    refused = CliRunner().invoke(root, ["orders", "organisation", "add", "PT X", "--kind", "internal", "--user",
                                        "tina", "--db", db], env={"DAQ_PASSWORD": "another long password"})
    assert refused.exit_code == 2 and "R-ROLE" in refused.stderr
    cli("orders", "user", "register", "budi", "--name", "Budi", "--organisation", "PT Baru", "--db", db)
    assert "R-ACTIVE" in cli("orders", "list", "--user", "budi", "--db", db, code=2)
    cli("orders", "user", "activate", "budi", "--user", "root", "--db", db)
    assert json.loads(cli("orders", "list", "--user", "budi", "--db", db, "--json")) == []
    holidays = tmp_path / "holidays.toml"
    holidays.write_text('[[holiday]]\ndate = 2026-12-25\nname = "Christmas"\n', encoding="utf-8")
    assert "1 holiday(s) added" in cli("orders", "holidays", "import", str(holidays), "--user", "root", "--db", db)
    assert "2026-12-25  Christmas" in cli("orders", "holidays", "list", "--db", db)
    out = cli("orders", "complaint", "raise", "--text", "slow answer", "--user", "budi", "--db", db)
    assert "complaint 1 raised" in out
    assert "R-ROLE" in cli("orders", "complaint", "answer", "1", "--response", "sorry", "--user", "root", "--db", db,
                           code=2)
    assert "audit trail intact" in cli("audit", "verify", "--db", db)
