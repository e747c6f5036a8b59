"""The records over HTTP: the same rules as the workflow, refusals named, one error shape, an order end to end."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from results.records.accounts import user_named
from results.records.database import RecordsDB
from results.records.workflow import Workflow
from runner.web.api import create_app
from tests.office import ITEM, PASSWORD, SURVEY, Clock, Office, _item_id, happy_path

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The office set up once (hashing a dozen passwords takes a while); each test gets a copy."""
    path = tmp_path_factory.mktemp("office") / "lab.sqlite"

    async def setup() -> None:
        office = await Office.open(str(path))
        await office.close()

    asyncio.run(setup())
    return path


@pytest.fixture
def lab(template, tmp_path) -> str:
    path = tmp_path / "lab.sqlite"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{template}{suffix}").exists():
            shutil.copy(f"{template}{suffix}", f"{path}{suffix}")
    return str(path)


@pytest.fixture
def client(lab):
    with TestClient(create_app(lab, now=lambda: NOW)) as c:
        c.lab = lab  # type: ignore[attr-defined]
        c.tokens = {}  # type: ignore[attr-defined]
        yield c


def auth(c: TestClient, username: str) -> dict[str, str]:
    tokens: dict[str, str] = c.tokens  # type: ignore[attr-defined]
    if username not in tokens:
        r = c.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        tokens[username] = r.json()["token"]
    return {"Authorization": f"Bearer {tokens[username]}"}


def link_completed_run(path: str, ref: str, username: str) -> None:
    """The bench's part ("__run"): a finished run in the store, linked to the order's item by the analyst."""
    async def go() -> None:
        db = await RecordsDB.open(path)
        try:
            clock = Clock(NOW)
            office = Office(db, path, clock, Workflow(db, now=clock), {})
            run = await office.completed_run()
            async with db.transaction() as s:
                user = await user_named(s, username)
            await office.workflow.link_run(user, await _item_id(office, ref), run)
        finally:
            await db.close()

    asyncio.run(go())


def new_order(c: TestClient, customer: str = "ext", service: str = "exsitu", serial: str = "MY-0001") -> str:
    r = c.post("/orders", headers=auth(c, customer),
               json={"service": service, "items": [ITEM | {"serial": serial}],
                     "site": "Jl. Industri 5, Bekasi" if service == "insitu" else ""})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "requested"
    return str(r.json()["request_number"])


def act(c: TestClient, user: str, ref: str, action: str, **body: Any) -> Any:
    return c.post(f"/orders/{ref}/actions/{action}", headers=auth(c, user), json=body)


def walk(c: TestClient, ref: str, *, stop: str | None = None, analyst: str = "analyst",
         customer: str = "ext", kind: str = "external", service: str = "exsitu") -> dict[str, Any]:
    """The happy path over HTTP (the run linked as the bench would), stopping before `stop`."""
    billing: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for action, user, kw in happy_path(customer, kind, service):
        if action == stop:
            break
        if user == "analyst":
            user = analyst
        if action == "assign_analyst":
            kw = {"data": {"analyst": analyst}}
        if action == "__run":
            link_completed_run(c.lab, ref, user)  # type: ignore[attr-defined]
            continue
        if kw.get("data") == "PAY":
            kw = {"data": {"billing_code": billing["billing_code"], "amount": billing["amount"],
                           "method": "transfer", "reference": "TRX-778812", "proof": "bukti-transfer.pdf"}}
        r = act(c, user, ref, action, **kw)
        assert r.status_code == 200, (action, user, r.text)
        last = r.json()
        if action == "issue_billing":
            billing = last
    return last


def assert_refused(r: Any, status: int, rule: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == "refused" and body["rule"] == rule, body
    assert body["problem"] and "Traceback" not in r.text
    return body


# -- logging in ----------------------------------------------------------------------------------------
def test_login_gives_a_token_and_a_wrong_password_is_refused_by_rule_without_telling_which(client):
    r = client.post("/auth/login", json={"username": "cs", "password": PASSWORD})
    assert r.status_code == 200
    assert r.json()["token"] and r.json()["expires_at"] > NOW.isoformat()[:4]
    wrong = client.post("/auth/login", json={"username": "cs", "password": "not the password"})
    body = assert_refused(wrong, 401, "R-LOGIN")
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "not the password" not in wrong.text and PASSWORD not in wrong.text
    unknown = client.post("/auth/login", json={"username": "nobody", "password": "not the password"})
    assert unknown.json() == body  # a wrong name and a wrong password look the same
    me = client.get("/me", headers={"Authorization": f"Bearer {r.json()['token']}"})
    assert me.status_code == 200 and me.json()["roles"] == ["customer_service"]
    assert "password" not in me.text


def test_every_other_endpoint_needs_a_valid_token(client):
    assert_refused(client.get("/orders"), 401, "R-LOGIN")
    assert_refused(client.get("/me", headers={"Authorization": "Bearer forged"}), 401, "R-LOGIN")
    assert_refused(client.post("/orders/REQ-2026-00001/actions/confirm_scope", json={}), 401, "R-LOGIN")
    assert_refused(client.get("/audit/verify", headers={"Authorization": "Basic Y3M6eA=="}), 401, "R-LOGIN")


def test_a_self_registered_customer_waits_for_an_administrator(client):
    r = client.post("/auth/register", json={"username": "budi", "full_name": "Budi Santoso",
                                            "password": "a long enough secret", "organisation": "PT Maju Jaya"})
    assert r.status_code == 201 and r.json()["active"] is False and r.json()["roles"] == ["customer"]
    login = {"username": "budi", "password": "a long enough secret"}
    assert_refused(client.post("/auth/login", json=login), 403, "R-ACTIVE")
    assert_refused(client.post("/users/budi/activate", headers=auth(client, "cs")), 403, "R-ROLE")
    r = client.post("/users/budi/activate", headers=auth(client, "admin"))
    assert r.status_code == 200 and r.json()["active"] is True
    token = client.post("/auth/login", json=login).json()["token"]
    assert client.get("/orders", headers={"Authorization": f"Bearer {token}"}).json() == []
    taken = client.post("/auth/register", json={"username": "budi", "full_name": "B", "password": "x" * 10,
                                                "organisation": "PT Maju Jaya"})
    assert taken.status_code == 422 and taken.json()["field"] == "username"
    nowhere = client.post("/auth/register", json={"username": "sari", "full_name": "S", "password": "x" * 10,
                                                  "organisation": "PT Nowhere"})
    assert nowhere.status_code == 422 and nowhere.json()["field"] == "organisation"
    assert client.post("/users/ghost/activate", headers=auth(client, "admin")).json()["error"] == "not_found"


# -- an order, end to end --------------------------------------------------------------------------------
def test_an_external_exsitu_order_goes_from_request_to_closed_over_http(client):
    ref = new_order(client)
    detail = client.get(f"/orders/{ref}", headers=auth(client, "cs")).json()
    assert detail["next_steps"] == ["confirm_scope", "cancel"]
    assert client.get(f"/orders/{ref}", headers=auth(client, "lead")).json()["next_steps"] == []
    last = walk(client, ref)
    assert last["state"] == "closed"
    detail = client.get(f"/orders/{ref}", headers=auth(client, "ext")).json()
    assert detail["state"] == "closed" and detail["order_number"].startswith("ORD-2026-")
    item = detail["items"][0]
    assert len(item["runs"]) == 1 and item["certificates"][0]["number"].startswith("CAL-2026-")
    assert [h["action"] for h in detail["history"]] == ["request"] + [
        a for a, _, _ in happy_path("ext", "external", "exsitu") if a != "__run"]
    orders = client.get("/orders", headers=auth(client, "ext")).json()
    assert [o["request_number"] for o in orders] == [ref]
    audit = client.get("/audit/verify", headers=auth(client, "head")).json()
    assert audit["ok"] is True and audit["problems"] == [] and audit["entries"] > 30 and len(audit["head_hash"]) == 64
    assert_refused(client.get("/audit/verify", headers=auth(client, "cs")), 403, "R-ROLE")
    survey = client.get("/reports/survey", params={"year": 2026}, headers=auth(client, "supervisor"))
    assert survey.status_code == 200 and survey.json()["responses"] == 1
    turnaround = client.get("/reports/turnaround", params={"year": 2026, "month": 12},
                            headers=auth(client, "manager"))
    assert turnaround.status_code == 200
    assert {r["service"] for r in turnaround.json()["rows"]} == {"insitu", "exsitu"}
    for path, params in (("/reports/turnaround", {"year": 2026, "month": 12}), ("/reports/survey", {"year": 2026})):
        assert_refused(client.get(path, params=params, headers=auth(client, "ext")), 403, "R-ROLE")
        assert_refused(client.get(path, params=params, headers=auth(client, "analyst")), 403, "R-ROLE")
    # the certificate comes with its signature after the survey; a download after closing is still recorded
    cert = act(client, "ext", ref, "download_certificate").json()["certificates"][0]
    assert cert["signature"]["signature"] and cert["number"] == item["certificates"][0]["number"]


def test_a_customer_of_another_organisation_neither_sees_nor_touches_the_order(client):
    ref = new_order(client)
    assert_refused(client.get(f"/orders/{ref}", headers=auth(client, "other")), 403, "R-ORG")
    assert_refused(act(client, "other", ref, "cancel", reason="not mine"), 403, "R-ORG")
    assert client.get("/orders", headers=auth(client, "other")).json() == []
    assert [o["request_number"] for o in client.get("/orders", headers=auth(client, "cs")).json()] == [ref]


def test_the_analyst_who_ran_the_calibration_cannot_verify_it_even_holding_the_supervisor_role(client):
    ref = new_order(client)
    walk(client, ref, stop="verify", analyst="allrounder")
    body = assert_refused(act(client, "allrounder", ref, "verify"), 403, "R-SOD-1")
    assert "allrounder" in body["problem"] and body["fix"]
    assert client.get(f"/orders/{ref}", headers=auth(client, "cs")).json()["state"] == "results_submitted"
    assert act(client, "supervisor", ref, "verify").json()["state"] == "verified"
    assert_refused(act(client, "allrounder", ref, "validate"), 403, "R-SOD-1")


def test_the_certificate_is_downloaded_only_after_the_survey(client):
    ref = new_order(client)
    walk(client, ref, stop="submit_survey")
    body = assert_refused(act(client, "ext", ref, "download_certificate"), 403, "R-SURVEY")
    assert "no satisfaction survey" in body["problem"] and "submit_survey" in body["fix"]
    assert act(client, "ext", ref, "submit_survey", data={"answers": SURVEY}).json()["state"] == "surveyed"
    r = act(client, "ext", ref, "download_certificate")
    assert r.status_code == 200 and len(r.json()["certificates"]) == 1


def test_a_step_out_of_role_or_out_of_turn_is_refused_by_its_rule(client):
    ref = new_order(client)
    assert_refused(act(client, "ext", ref, "confirm_scope", data={"tariffs": {"1": "K-DMM"}}), 403, "R-ROLE")
    assert_refused(act(client, "lead", ref, "approve_tariff"), 403, "R-STATE")
    assert_refused(act(client, "ext", ref, "cancel"), 403, "R-REASON")
    stale = act(client, "cs", ref, "confirm_scope", data={"tariffs": {"1": "K-DMM"}}, expected_version=0)
    assert_refused(stale, 403, "R-VERSION")
    ok = act(client, "cs", ref, "confirm_scope", data={"tariffs": {"1": "K-DMM"}}, expected_version=1)
    assert ok.status_code == 200 and ok.json()["version"] == 2
    unknown = act(client, "cs", ref, "approve_everything")
    assert unknown.status_code == 422 and unknown.json()["field"] == "action"
    missing = client.get("/orders/REQ-2026-99999", headers=auth(client, "cs"))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_a_malformed_payment_is_invalid_naming_the_field_and_changes_nothing(client):
    ref = new_order(client)
    walk(client, ref, stop="pay")
    version = client.get(f"/orders/{ref}", headers=auth(client, "ext")).json()["version"]
    r = act(client, "ext", ref, "pay", data={"billing_code": "x", "amount": "12,5", "method": "transfer",
                                             "reference": "T", "proof": "p.pdf"})
    assert r.status_code == 422 and r.json()["field"] == "billing_code"
    detail = client.get(f"/orders/{ref}", headers=auth(client, "ext")).json()
    billing = next(h for h in detail["history"] if h["action"] == "issue_billing")["details"]
    r = act(client, "ext", ref, "pay", data={"billing_code": billing["billing_code"], "amount": "12,5",
                                             "method": "transfer", "reference": "T", "proof": "p.pdf"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid" and body["field"] == "amount" and "whole positive amount" in body["problem"]
    assert str(billing["amount"]) in body["fix"] and "Traceback" not in r.text
    after = client.get(f"/orders/{ref}", headers=auth(client, "ext")).json()
    assert after["state"] == "billed" and after["version"] == version


def test_a_malformed_body_gets_the_same_error_shape(client):
    r = client.post("/orders", headers=auth(client, "ext"), json={"service": "exsitu"})
    assert r.status_code == 422 and r.json()["error"] == "invalid" and r.json()["field"] == "items"
    r = client.post("/orders", headers=auth(client, "ext"), json={"service": "onsite", "items": [ITEM]})
    assert r.status_code == 422 and r.json()["field"] == "service"
    r = client.post("/orders", headers=auth(client, "ext"), json={"service": "exsitu", "items": []})
    assert r.status_code == 422 and r.json()["field"] == "items"
    r = client.post("/orders", headers=auth(client, "cs"), json={"service": "exsitu", "items": [ITEM]})
    assert r.status_code == 422 and r.json()["field"] == "organisation"
    r = client.post("/orders", headers=auth(client, "cs"),
                    json={"service": "exsitu", "items": [ITEM], "organisation": "PT Lain"})
    assert r.status_code == 201 and r.json()["organisation"] == "PT Lain"
    assert_refused(client.post("/orders", headers=auth(client, "ext"),
                               json={"service": "exsitu", "items": [ITEM], "organisation": "PT Lain"}), 403, "R-ORG")
    assert_refused(client.post("/orders", headers=auth(client, "lead"), json={"service": "exsitu", "items": [ITEM]}),
                   403, "R-ROLE")
    assert client.get("/nowhere").json()["error"] == "not_found"


def test_complaints_are_raised_by_customers_and_answered_once_by_customer_service(client):
    ref = new_order(client)
    r = client.post("/complaints", headers=auth(client, "ext"), json={"text": "nobody called back", "order": ref})
    assert r.status_code == 201
    cid = r.json()["id"]
    assert_refused(client.post("/complaints", headers=auth(client, "other"), json={"text": "x", "order": ref}),
                   403, "R-ORG")
    assert_refused(client.post("/complaints", headers=auth(client, "cs"), json={"text": "x"}), 403, "R-ROLE")
    assert_refused(client.post(f"/complaints/{cid}/answer", headers=auth(client, "ext"), json={"response": "x"}),
                   403, "R-ROLE")
    r = client.post(f"/complaints/{cid}/answer", headers=auth(client, "cs"), json={"response": "called today"})
    assert r.status_code == 200 and r.json()["response"] == "called today"
    assert_refused(client.post(f"/complaints/{cid}/answer", headers=auth(client, "cs"), json={"response": "again"}),
                   403, "R-STATE")
    assert client.post("/complaints/999/answer", headers=auth(client, "cs"),
                       json={"response": "x"}).status_code == 404


def test_the_life_cycle_and_the_schema_are_published(client):
    r = client.get("/actions", headers=auth(client, "ext"))
    steps = r.json()["transitions"]
    pay = next(t for t in steps if t["action"] == "pay")
    assert pay == {"action": "pay", "roles": ["customer"], "sources": ["billed"], "target": "payment_submitted",
                   "customers": ["external"], "services": ["exsitu", "insitu"], "needs_reason": False,
                   "what": pay["what"]}
    assert "R-SOD-1" in r.json()["rules"]
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert paths >= {"/auth/login", "/auth/register", "/users/{username}/activate", "/me", "/orders",
                     "/orders/{ref}", "/orders/{ref}/actions/{action}", "/actions", "/reports/turnaround",
                     "/reports/survey", "/complaints", "/complaints/{complaint_id}/answer", "/audit/verify"}
    assert {"LoginBody", "OrderBody", "ActionBody", "ItemBody"} <= set(schema["components"]["schemas"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
