"""The life of a calibration order as a state machine: states, transitions, who may take each.

Written as data so the rules can be read, printed (`daq orders rules`) and tested exhaustively:
every (state, action) pair that is not listed here is refused. The steps follow seed 000
(service standard, in-situ and ex-situ, internal and external customers) and seed 001 (the
SIPPT order module: CS -> team lead -> customer -> treasurer -> CS -> supervisor -> technical
manager -> analyst -> supervisor -> technical manager -> team lead -> CS -> head -> CS ->
customer). Internal customers are free of charge and skip tariff, billing and payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from results.records.accounts import Role


class State(StrEnum):
    REQUESTED = "requested"
    SCOPE_CONFIRMED = "scope_confirmed"
    TARIFF_APPROVED = "tariff_approved"
    TARIFF_REJECTED = "tariff_rejected"
    BILLING_REQUESTED = "billing_requested"
    BILLED = "billed"
    PAYMENT_SUBMITTED = "payment_submitted"
    PAID = "paid"
    SCHEDULE_PROPOSED = "schedule_proposed"
    SCHEDULE_DECLINED = "schedule_declined"
    SCHEDULED = "scheduled"
    WORK_ORDER_ISSUED = "work_order_issued"
    ITEMS_RECEIVED = "items_received"
    ANALYST_ASSIGNED = "analyst_assigned"
    ASSIGNMENT_REJECTED = "assignment_rejected"
    ASSIGNMENT_VALIDATED = "assignment_validated"
    IN_CALIBRATION = "in_calibration"
    RESULTS_SUBMITTED = "results_submitted"
    RETURNED_TO_ANALYST = "returned_to_analyst"
    VERIFIED = "verified"
    VALIDATED = "validated"
    NUMBERED = "numbered"
    AWAITING_SIGNATURE = "awaiting_signature"
    SIGNED = "signed"
    RELEASED = "released"
    SURVEYED = "surveyed"
    ACKNOWLEDGED = "acknowledged"
    ARCHIVED = "archived"
    CLOSED = "closed"
    CANCELLED = "cancelled"


S = State
BOTH_CUSTOMERS = frozenset({"internal", "external"})
EXTERNAL = frozenset({"external"})
INTERNAL = frozenset({"internal"})
BOTH_SERVICES = frozenset({"insitu", "exsitu"})
EXSITU = frozenset({"exsitu"})
INSITU = frozenset({"insitu"})


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[State]
    target: State | None  # None: the order stays where it is (a recorded act, e.g. a download)
    roles: frozenset[Role]
    what: str
    customers: frozenset[str] = BOTH_CUSTOMERS
    services: frozenset[str] = BOTH_SERVICES
    needs_reason: bool = False

    def applies_to(self, customer_kind: str, service: str) -> bool:
        return customer_kind in self.customers and service in self.services


def _t(action: str, sources: set[State], target: State | None, roles: set[Role], what: str, **kw: object) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(roles), what, **kw)  # type: ignore[arg-type]


CS, TL, TR, SUP, TM, AN, HEAD, CUST = (Role.CUSTOMER_SERVICE, Role.TEAM_LEAD, Role.TREASURER, Role.SUPERVISOR,
                                       Role.TECHNICAL_MANAGER, Role.ANALYST, Role.HEAD, Role.CUSTOMER)
_CANCELLABLE = {S.REQUESTED, S.SCOPE_CONFIRMED, S.TARIFF_APPROVED, S.TARIFF_REJECTED, S.BILLING_REQUESTED, S.BILLED,
                S.SCHEDULE_PROPOSED, S.SCHEDULE_DECLINED}
_ISSUED = {S.RELEASED, S.SURVEYED, S.ACKNOWLEDGED, S.ARCHIVED, S.CLOSED}

TRANSITIONS: tuple[Transition, ...] = (
    _t("confirm_scope", {S.REQUESTED}, S.SCOPE_CONFIRMED, {CS},
       "confirm the scope and points, check the items, set each item's tariff line"),
    _t("approve_tariff", {S.SCOPE_CONFIRMED}, S.TARIFF_APPROVED, {TL}, "approve the tariff", customers=EXTERNAL),
    _t("accept_tariff", {S.TARIFF_APPROVED}, S.BILLING_REQUESTED, {CUST},
       "accept the order and tariff and request the billing", customers=EXTERNAL),
    _t("reject_tariff", {S.TARIFF_APPROVED}, S.TARIFF_REJECTED, {CUST}, "reject the tariff",
       customers=EXTERNAL, needs_reason=True),
    _t("revise_scope", {S.TARIFF_REJECTED}, S.SCOPE_CONFIRMED, {CS}, "revise the scope or tariff after a rejection",
       customers=EXTERNAL, needs_reason=True),
    _t("issue_billing", {S.BILLING_REQUESTED}, S.BILLED, {TR}, "generate the billing code", customers=EXTERNAL),
    _t("pay", {S.BILLED}, S.PAYMENT_SUBMITTED, {CUST},
       "pay (a payment against the billing code settles itself; a transfer's proof waits for the treasurer)",
       customers=EXTERNAL),
    _t("verify_payment", {S.PAYMENT_SUBMITTED}, S.PAID, {TR}, "check the proof of payment", customers=EXTERNAL),
    _t("reject_payment", {S.PAYMENT_SUBMITTED}, S.BILLED, {TR}, "reject the proof of payment",
       customers=EXTERNAL, needs_reason=True),
    _t("propose_schedule", {S.PAID, S.SCHEDULE_DECLINED}, S.SCHEDULE_PROPOSED, {CS}, "propose the calibration date",
       customers=EXTERNAL),
    _t("propose_schedule", {S.SCOPE_CONFIRMED, S.SCHEDULE_DECLINED}, S.SCHEDULE_PROPOSED, {CS},
       "propose the calibration date", customers=INTERNAL),
    _t("accept_schedule", {S.SCHEDULE_PROPOSED}, S.SCHEDULED, {CUST}, "accept the date; the order number is given"),
    _t("decline_schedule", {S.SCHEDULE_PROPOSED}, S.SCHEDULE_DECLINED, {CUST}, "decline the proposed date",
       needs_reason=True),
    _t("issue_work_order", {S.SCHEDULED}, S.WORK_ORDER_ISSUED, {TL}, "issue the work order (Surat Perintah Kerja)"),
    _t("receive_items", {S.WORK_ORDER_ISSUED}, S.ITEMS_RECEIVED, {CS},
       "receive the items, issue sample IDs, record their condition", services=EXSITU),
    _t("assign_analyst", {S.WORK_ORDER_ISSUED, S.ASSIGNMENT_REJECTED}, S.ANALYST_ASSIGNED, {SUP},
       "assign an analyst to each item", services=INSITU),
    _t("assign_analyst", {S.ITEMS_RECEIVED, S.ASSIGNMENT_REJECTED}, S.ANALYST_ASSIGNED, {SUP},
       "check the items and assign an analyst to each", services=EXSITU),
    _t("validate_assignment", {S.ANALYST_ASSIGNED}, S.ASSIGNMENT_VALIDATED, {TM}, "validate the assignment"),
    _t("reject_assignment", {S.ANALYST_ASSIGNED}, S.ASSIGNMENT_REJECTED, {TM}, "send the assignment back",
       needs_reason=True),
    _t("start_calibration", {S.ASSIGNMENT_VALIDATED, S.IN_CALIBRATION, S.RETURNED_TO_ANALYST}, S.IN_CALIBRATION, {AN},
       "launch a calibration run from an item"),
    _t("submit_results", {S.IN_CALIBRATION, S.RETURNED_TO_ANALYST}, S.RESULTS_SUBMITTED, {AN},
       "submit every item's results for verification"),
    _t("verify", {S.RESULTS_SUBMITTED}, S.VERIFIED, {SUP}, "verify the results"),
    _t("return_from_verification", {S.RESULTS_SUBMITTED}, S.RETURNED_TO_ANALYST, {SUP},
       "send the results back to the analyst", needs_reason=True),
    _t("validate", {S.VERIFIED}, S.VALIDATED, {TM}, "validate the verified results"),
    _t("return_from_validation", {S.VERIFIED}, S.RETURNED_TO_ANALYST, {TM}, "send the results back to the analyst",
       needs_reason=True),
    _t("assign_numbers", {S.VALIDATED}, S.NUMBERED, {TL}, "generate the certificate numbers"),
    _t("request_signature", {S.NUMBERED}, S.AWAITING_SIGNATURE, {CS}, "print the certificates, ask the head to sign"),
    _t("sign", {S.AWAITING_SIGNATURE}, S.SIGNED, {HEAD}, "sign electronically with the passphrase"),
    _t("release", {S.SIGNED}, S.RELEASED, {CS}, "check the signed certificates and send them to the customer"),
    _t("submit_survey", {S.RELEASED}, S.SURVEYED, {CUST}, "fill the satisfaction survey (U1..U9)"),
    _t("download_certificate", {S.SURVEYED, S.ACKNOWLEDGED, S.ARCHIVED, S.CLOSED}, None, {CUST},
       "download the signed certificates"),
    _t("return_items", {S.SIGNED, S.RELEASED, S.SURVEYED}, None, {CS}, "return the items to the customer",
       services=EXSITU),
    _t("acknowledge_receipt", {S.SURVEYED}, S.ACKNOWLEDGED, {CUST},
       "evaluate the certificate and acknowledge receipt (and of the items, ex-situ)"),
    _t("archive_acknowledgement", {S.ACKNOWLEDGED}, S.ARCHIVED, {CS}, "archive the acknowledgement of receipt"),
    _t("close", {S.ARCHIVED}, S.CLOSED, {CUST}, "close the order"),
    _t("cancel", _CANCELLABLE, S.CANCELLED, {CUST, CS}, "cancel before payment and scheduling", needs_reason=True),
    _t("reopen_for_amendment", _ISSUED, S.RETURNED_TO_ANALYST, {TM},
       "reopen an issued certificate for amendment: the new one gets a new number that names the old",
       needs_reason=True),
)

ACTIONS = tuple(dict.fromkeys(t.action for t in TRANSITIONS))

# What each named rule says, for refusals and for `daq orders rules`.
RULES: dict[str, str] = {
    "R-LOGIN": "only a known user with the right password or a valid token may act",
    "R-ACTIVE": "an account acts only after an administrator has activated it",
    "R-ROLE": "each step is taken by the role the procedure gives it",
    "R-STATE": "a step is taken only from the states the life cycle allows",
    "R-KIND": "some steps exist only for external customers (billing) or for ex-situ orders (item receipt, return)",
    "R-ORG": "a customer sees and acts on their own organisation's orders only",
    "R-REASON": "rejections, returns, cancellations and amendments say why",
    "R-PAY": "an external customer's item is not calibrated before the payment is verified",
    "R-ASSIGN": "only the analyst assigned to an item runs its calibration and submits its results",
    "R-RESULTS": "results are submitted only when every item has a completed run",
    "R-SOD-1": "whoever ran a calibration of the order does not verify, validate or sign it",
    "R-SOD-2": "whoever verified the results does not also validate them",
    "R-SOD-3": "whoever assigned the analyst does not also validate the assignment",
    "R-PASSPHRASE": "the head signs with the signing passphrase",
    "R-LAB": "a certificate is issued only once the laboratory's identity (name, address, country) is on record",
    "R-SURVEY": "the certificate is downloaded only after the satisfaction survey",
    "R-DOWNLOAD": "receipt is acknowledged only after the certificate was downloaded",
    "R-RETURN": "an ex-situ order's receipt is acknowledged only after the items were returned",
    "R-VERSION": "an action based on an out-of-date view of the order is refused",
}


def transition_for(action: str, customer_kind: str, service: str) -> Transition | None:
    for t in TRANSITIONS:
        if t.action == action and t.applies_to(customer_kind, service):
            return t
    return None


def allowed_actions(state: State, customer_kind: str, service: str) -> list[str]:
    return list(dict.fromkeys(t.action for t in TRANSITIONS
                              if state in t.sources and t.applies_to(customer_kind, service)))
