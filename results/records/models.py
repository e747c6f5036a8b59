"""The lab's order records (SQLAlchemy 2), on the same metadata as the run store.

One database holds runs and orders so that an order item's results point at the run that made
them with a real foreign key. Rows that are evidence (events, reviews, payments, results
versions, signatures, answers, acknowledgements) are only ever inserted; the few status columns
that change (an order's state, an account's activation) change through the workflow, which writes
an audit entry in the same transaction. Money is an integer in the currency's smallest unit.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from results.store.models import Base


class OrganisationRow(Base):
    """A customer: internal (the lab's own organisation's units: free of charge) or external (tariff)."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # internal | external
    address: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[str] = mapped_column(String(40))


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(300))  # comma-separated role names
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), default=None)
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    """Customers register themselves and wait for an administrator to activate them (seed 001 step 3)."""
    signing_key: Mapped[str | None] = mapped_column(Text, default=None)
    """The head's Ed25519 private key, PEM, encrypted with the signing passphrase (never stored)."""
    public_key: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[str] = mapped_column(String(40))


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[str] = mapped_column(String(40))


class TariffLineRow(Base):
    """One priced service of the lab's tariff (for a government lab, the regulation's PNBP list)."""

    __tablename__ = "tariff_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str] = mapped_column(Text)
    price: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    service: Mapped[str] = mapped_column(String(10), default="any")  # insitu | exsitu | any


class HolidayRow(Base):
    __tablename__ = "holidays"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO date
    name: Mapped[str] = mapped_column(String(200))


class CounterRow(Base):
    """Number series (orders, samples, certificates, billing) per year; the row lock makes numbers unique."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class OrderRow(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_number: Mapped[str] = mapped_column(String(40), unique=True)
    order_number: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    """Given when the schedule is agreed (seed 000 external step 7)."""
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    service: Mapped[str] = mapped_column(String(10))  # insitu | exsitu
    site: Mapped[str] = mapped_column(Text, default="")  # the customer's site, for in-situ work
    state: Mapped[str] = mapped_column(String(30), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every transition: a second client acting on what it read earlier is refused."""
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    days_off: Mapped[int] = mapped_column(Integer, default=0)
    """Compensation for an earlier late order: working days off this order's promise."""
    scheduled_for: Mapped[str | None] = mapped_column(String(10), default=None)
    calibration_date: Mapped[str | None] = mapped_column(String(10), default=None)
    received_date: Mapped[str | None] = mapped_column(String(10), default=None)
    due_date: Mapped[str | None] = mapped_column(String(10), default=None)
    released_date: Mapped[str | None] = mapped_column(String(10), default=None)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[str] = mapped_column(String(40))


class OrderItemRow(Base):
    """One instrument to calibrate: what it is, what to calibrate, at which points."""

    __tablename__ = "order_items"
    __table_args__ = (UniqueConstraint("order_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    make: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    serial: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    parameter: Mapped[str] = mapped_column(String(100))  # e.g. "DC voltage", "temperature"
    scope: Mapped[str] = mapped_column(Text, default="")
    requested_points: Mapped[str] = mapped_column(Text, default="")
    tariff_code: Mapped[str | None] = mapped_column(String(40), default=None)
    price: Mapped[int] = mapped_column(Integer, default=0)
    sample_id: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)


class OrderEventRow(Base):
    """Every transition: who, in which role, when, why, from which state to which."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(30))
    at: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    payload_json: Mapped[str] = mapped_column(Text, default="{}")


class BillingRow(Base):
    __tablename__ = "billings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    issued_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[str] = mapped_column(String(40))


class PaymentRow(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    billing_id: Mapped[int] = mapped_column(ForeignKey("billings.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(20))  # billing-code (settles itself) | transfer (proof checked)
    reference: Mapped[str] = mapped_column(String(200))
    proof: Mapped[str] = mapped_column(Text, default="")
    paid_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    paid_at: Mapped[str] = mapped_column(String(40))


class PaymentCheckRow(Base):
    """The treasurer's (or the billing system's) verdict on one payment; never edited."""

    __tablename__ = "payment_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    accepted: Mapped[bool] = mapped_column(Boolean)
    checked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)  # None: automatic
    checked_at: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")


class ScheduleRow(Base):
    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    proposed_for: Mapped[str] = mapped_column(String(10))
    proposed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[str] = mapped_column(String(40))
    answer: Mapped[str | None] = mapped_column(String(10), default=None)  # accepted | declined
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    answered_at: Mapped[str | None] = mapped_column(String(40), default=None)


class WorkOrderRow(Base):
    """The "Surat Perintah Kerja": the instruction to do the work, with its own number."""

    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    issued_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[str] = mapped_column(String(40))
    instructions: Mapped[str] = mapped_column(Text, default="")


class SampleMovementRow(Base):
    """An ex-situ item received into or returned from the lab, with its condition."""

    __tablename__ = "sample_movements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id"), index=True)
    direction: Mapped[str] = mapped_column(String(10))  # received | returned
    at: Mapped[str] = mapped_column(String(40))
    by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    condition: Mapped[str] = mapped_column(Text)


class AssignmentRow(Base):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id"), index=True)
    analyst_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assigned_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[str] = mapped_column(String(40))


class ItemRunRow(Base):
    """A calibration run launched from an order item."""

    __tablename__ = "item_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), unique=True)
    launched_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    launched_at: Mapped[str] = mapped_column(String(40))


class ItemResultRow(Base):
    """The results of an item as submitted for review: a frozen, hashed copy of the run's point results.

    Never updated: a correction is a new version whose `supersedes_id` names the one it replaces
    (ISO/IEC 17025 7.5.2, 7.8.8), and the reviews and signatures name the version they saw.
    """

    __tablename__ = "item_results"
    __table_args__ = (UniqueConstraint("item_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("item_results.id"), default=None)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    content_json: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[str] = mapped_column(String(40))


class ReviewRow(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    stage: Mapped[str] = mapped_column(String(20))  # assignment | verification | validation
    outcome: Mapped[str] = mapped_column(String(20))  # approved | returned
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[str] = mapped_column(String(40))
    comment: Mapped[str] = mapped_column(Text, default="")
    result_ids: Mapped[str] = mapped_column(Text, default="")  # the item_results versions reviewed


class CertificateNumberRow(Base):
    __tablename__ = "certificate_numbers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id"), index=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("item_results.id"), unique=True)
    replaces: Mapped[str | None] = mapped_column(String(40), default=None)
    issued_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[str] = mapped_column(String(40))


class SignatureRow(Base):
    """The head's electronic signature over one certificate's content hash (Ed25519)."""

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate_numbers.id"), unique=True)
    signer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[str] = mapped_column(String(40))
    digest: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(100))


class SurveyResponseRow(Base):
    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    respondent_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    service: Mapped[str] = mapped_column(String(10))
    answers_json: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[str] = mapped_column(String(40))


class DownloadRow(Base):
    __tablename__ = "certificate_downloads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate_numbers.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[str] = mapped_column(String(40))


class ReceiptAcknowledgementRow(Base):
    __tablename__ = "receipt_acknowledgements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    acknowledged_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[str] = mapped_column(String(40))
    evaluation: Mapped[str] = mapped_column(Text)
    archived_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    archived_at: Mapped[str | None] = mapped_column(String(40), default=None)


class ComplaintRow(Base):
    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), default=None)
    raised_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    raised_at: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text, default=None)
    responded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    responded_at: Mapped[str | None] = mapped_column(String(40), default=None)


class CompensationRow(Base):
    """What a late order earned its customer (seed 000: priority; seed 002: one day off the next promise)."""

    __tablename__ = "compensations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    late_order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    granted_at: Mapped[str] = mapped_column(String(40))
    used_by_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), default=None)


class AuditEntryRow(Base):
    """Append-only, hash-chained: each entry's hash covers the previous one's."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[str] = mapped_column(String(60))
    record_sha256: Mapped[str] = mapped_column(String(64))
    """Hash of the record as written; `daq audit verify` recomputes it from the row as it is now."""
    detail_json: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """One row: the chain's length and last hash. Updating it first serialises writers on every database."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class EquipmentRow(Base):
    """The equipment register: the lab's reference and check standards, and customers' items by serial."""

    __tablename__ = "equipment"
    __table_args__ = (UniqueConstraint("serial", "make", "model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(20))  # reference | check | customer_item
    make: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    serial: Mapped[str] = mapped_column(String(100), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), default=None)
    interval_months: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(20), default="in_service")  # in_service | out_of_service | retired
    status_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[str] = mapped_column(String(40))


class EquipmentCertificateRow(Base):
    """A standard's calibration certificate as issued; a new calibration is a new row, never an edit."""

    __tablename__ = "equipment_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    number: Mapped[str] = mapped_column(String(80))
    issuing_lab: Mapped[str] = mapped_column(String(200))
    issued_on: Mapped[str] = mapped_column(String(10))
    due_on: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[str] = mapped_column(String(40))


class CertificateValueRow(Base):
    """One certified point: correction (true - indicated) and expanded U with its k, in `unit`."""

    __tablename__ = "certificate_values"
    __table_args__ = (UniqueConstraint("certificate_id", "quantity", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("equipment_certificates.id"), index=True)
    quantity: Mapped[str] = mapped_column(String(40))  # the bench file's certificate key: dcv, temperature, ...
    at: Mapped[float] = mapped_column(Float)
    correction: Mapped[float] = mapped_column(Float)
    expanded_u: Mapped[float] = mapped_column(Float)
    k: Mapped[float] = mapped_column(Float)
    dof: Mapped[float | None] = mapped_column(Float, default=None)
    unit: Mapped[str] = mapped_column(String(20))


class LaboratoryRow(Base):
    """Who issues the certificates: the identity printed on every certificate (one row)."""

    __tablename__ = "laboratory"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text)
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    accreditation: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    verify_url: Mapped[str] = mapped_column(String(300), default="")
    updated_at: Mapped[str] = mapped_column(String(40))


class CertificateDocumentRow(Base):
    """A certificate as issued: the signed PDF or DCC file, byte for byte, as the customer downloads it.

    Written once, when the head signs; an amendment is a new certificate with its own documents.
    """

    __tablename__ = "certificate_documents"
    __table_args__ = (UniqueConstraint("certificate_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate_numbers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # pdf | dcc | report
    file_name: Mapped[str] = mapped_column(String(200))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40))
