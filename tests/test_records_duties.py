"""Segregation of duties and who sees what: each rule refuses, names itself, and writes nothing."""

from __future__ import annotations

import pytest

from results.records.errors import Refused
from results.records.views import list_orders, order_detail
from tests.office import ITEM, PASSPHRASE, Office, do_step, happy_path


@pytest.fixture
async def office(tmp_path):
    o = await Office.open(str(tmp_path / "lab.sqlite"))
    yield o
    await o.close()


async def order_until(office: Office, stop: str, *, analyst: str = "analyst", customer: str = "ext",
                      kind: str = "external", service: str = "exsitu",
                      replace: dict[str, str] | None = None) -> str:
    """A new order taken along the happy path up to (not including) `stop`; `replace` swaps who does a step."""
    serial = f"MY-{await office.audit_entries():05d}"  # a new instrument for every order
    order = (await office.workflow.request(office.users[customer], service=service, items=[ITEM | {"serial": serial}],
                                           site="Site A" if service == "insitu" else "")).request_number
    for action, user, kw in happy_path(customer, kind, service):
        if action == stop:
            break
        if action == "assign_analyst":
            kw = {"data": {"analyst": analyst}}
        if action in ("start_calibration", "__run", "submit_results"):
            user = analyst
        user = (replace or {}).get(action, user)
        await do_step(office, order, action, user, kw)
    return order


async def refused(office: Office, rule: str, user: str, order: str, action: str, **kw) -> None:
    before = await office.audit_entries()
    with pytest.raises(Refused) as err:
        await office.workflow.act(office.users[user], order, action, **kw)
    assert err.value.rule == rule, err.value
    assert rule in str(err.value)
    assert await office.audit_entries() == before


async def test_the_analyst_who_ran_it_cannot_verify_validate_or_sign(office):
    order = await order_until(office, "verify", analyst="allrounder")
    await refused(office, "R-SOD-1", "allrounder", order, "verify")
    await office.workflow.act(office.users["supervisor"], order, "verify")
    await refused(office, "R-SOD-1", "allrounder", order, "validate")
    await office.workflow.act(office.users["manager"], order, "validate")
    for action, user in (("assign_numbers", "lead"), ("request_signature", "cs")):
        await office.workflow.act(office.users[user], order, action)
    await refused(office, "R-SOD-1", "allrounder", order, "sign", data={"passphrase": PASSPHRASE})
    out = await office.workflow.act(office.users["head"], order, "sign", data={"passphrase": PASSPHRASE})
    assert out["state"] == "signed"


async def test_the_verifier_cannot_validate_and_the_assigner_cannot_validate_the_assignment(office):
    order = await order_until(office, "validate_assignment", replace={"assign_analyst": "allrounder"})
    await refused(office, "R-SOD-3", "allrounder", order, "validate_assignment")
    order2 = await order_until(office, "validate", customer="int", kind="internal",
                               replace={"verify": "allrounder"})
    await refused(office, "R-SOD-2", "allrounder", order2, "validate")


async def test_a_wrong_passphrase_signs_nothing(office):
    order = await order_until(office, "sign")
    await refused(office, "R-PASSPHRASE", "head", order, "sign", data={"passphrase": "guess"})
    await refused(office, "R-PASSPHRASE", "head", order, "sign", data={})


async def test_only_the_assigned_analyst_runs_and_submits(office):
    order = await order_until(office, "start_calibration")
    await refused(office, "R-ASSIGN", "analyst2", order, "start_calibration", data={"item": 1})
    await office.workflow.act(office.users["analyst"], order, "start_calibration", data={"item": 1})
    await refused(office, "R-RESULTS", "analyst", order, "submit_results")  # no completed run yet
    await do_step(office, order, "__run", "analyst", {})
    await refused(office, "R-ASSIGN", "analyst2", order, "submit_results")


async def test_wrong_role_is_refused_by_name(office):
    order = await order_until(office, "approve_tariff")
    await refused(office, "R-ROLE", "cs", order, "approve_tariff")
    await refused(office, "R-ROLE", "ext", order, "approve_tariff")


async def test_no_calibration_before_the_payment_is_verified(office):
    """The state machine keeps an unpaid external order away from the bench, and the step checks again."""
    order = await order_until(office, "verify_payment")
    await refused(office, "R-PAY", "analyst", order, "start_calibration", data={"item": 1})


async def test_no_download_before_the_survey_and_no_receipt_before_download_and_return(office):
    order = await order_until(office, "submit_survey")
    await refused(office, "R-SURVEY", "ext", order, "download_certificate")
    await do_step(office, order, "submit_survey", "ext", {"data": {"answers": {f"U{i}": 3 for i in range(1, 10)}}})
    await refused(office, "R-DOWNLOAD", "ext", order, "acknowledge_receipt", data={"evaluation": "ok"})
    out = await office.workflow.act(office.users["ext"], order, "download_certificate")
    assert out["certificates"][0]["number"].startswith("CAL-") and out["state"] == "surveyed"
    await refused(office, "R-RETURN", "ext", order, "acknowledge_receipt", data={"evaluation": "ok"})


async def test_a_customer_sees_and_touches_only_their_own_organisations_orders(office):
    mine = await order_until(office, "confirm_scope")
    await refused(office, "R-ORG", "other", mine, "cancel", reason="not mine anyway")
    with pytest.raises(Refused, match="R-ORG"):
        await order_detail(office.workflow, office.users["other"], mine)
    assert [o["request_number"] for o in await list_orders(office.workflow, office.users["other"])] == []
    assert [o["request_number"] for o in await list_orders(office.workflow, office.users["ext"])] == [mine]
    assert len(await list_orders(office.workflow, office.users["cs"])) == 1
    detail = await order_detail(office.workflow, office.users["cs"], mine)
    assert detail["next_steps"] == ["confirm_scope", "cancel"]


async def test_an_inactive_account_cannot_act(office):
    from results.records.accounts import Role, add_user

    async with office.db.transaction() as s:
        newbie = await add_user(s, username="newbie", full_name="New Customer", roles=[Role.CUSTOMER],
                                password="long enough", organisation="PT Maju Jaya", active=False, actor="newbie")
    with pytest.raises(Refused, match="R-ACTIVE"):
        await office.workflow.request(newbie, service="exsitu", items=[ITEM])


async def test_results_sent_back_are_resubmitted_as_a_new_version_that_names_the_old(office):
    order = await order_until(office, "verify")
    wf, u = office.workflow, office.users
    await refused(office, "R-REASON", "supervisor", order, "return_from_verification")
    await wf.act(u["supervisor"], order, "return_from_verification", reason="point 10 V: readings look clipped")
    await do_step(office, order, "__run", "analyst", {})  # a new run
    await refused(office, "R-REASON", "analyst", order, "submit_results")
    out = await wf.act(u["analyst"], order, "submit_results", reason="re-measured after re-seating the leads")
    assert out["result_versions"] == {1: 2}
    detail = await order_detail(wf, u["cs"], order)
    v1, v2 = detail["items"][0]["result_versions"]
    assert v2["supersedes"] == v1["id"] and v2["reason"].startswith("re-measured")


async def test_an_amended_certificate_gets_a_new_number_that_names_the_one_it_replaces(office):
    order = await order_until(office, "acknowledge_receipt", customer="int", kind="internal", service="insitu")
    wf, u = office.workflow, office.users
    await wf.act(u["manager"], order, "reopen_for_amendment", reason="wrong unit in the remarks")
    await do_step(office, order, "__run", "analyst", {})
    await wf.act(u["analyst"], order, "submit_results", reason="amended remarks")
    for action, user in (("verify", "supervisor"), ("validate", "manager"), ("assign_numbers", "lead"),
                         ("request_signature", "cs")):
        await wf.act(u[user], order, action)
    await wf.act(u["head"], order, "sign", data={"passphrase": PASSPHRASE})
    out = await wf.act(u["cs"], order, "release")
    assert out["amendment"] is True
    certs = (await order_detail(wf, u["cs"], order))["items"][0]["certificates"]
    assert certs[1]["replaces"] == certs[0]["number"] and certs[1]["number"] != certs[0]["number"]
