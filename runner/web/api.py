"""The records as a JSON REST API: the same workflow, the same rules, over HTTP.

Every step goes through `Workflow.act` and every view through `results.records.views`, so the API
enforces exactly what the CLI enforces; it never decides a rule itself. A refusal comes back as
403 naming its rule (401 for R-LOGIN), a missing record as 404, and a malformed field as 422
naming the field, all in one JSON shape:

    {"error": "refused", "rule": "R-STATE", "problem": "...", "fix": "..."}
    {"error": "not_found", "problem": "..."}
    {"error": "invalid", "field": "amount", "problem": "...", "fix": "..."}

Log in with POST /auth/login, then send `Authorization: Bearer <token>` on every other call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from daq.errors import ConfigError
from results.records import accounts, audit, complaints, views
from results.records.accounts import Role, roles_of
from results.records.database import RecordsDB
from results.records.errors import NotFound, Refused
from results.records.lifecycle import RULES, TRANSITIONS
from results.records.models import ApiTokenRow, UserRow
from results.records.passwords import token_digest
from results.records.workflow import Workflow

# Who may read the monthly reports and check the audit chain. The views compute the reports for
# anyone who asks; the API is the door, so the door says who comes in (refused by R-ROLE).
REPORT_ROLES = frozenset({Role.SUPERVISOR, Role.TECHNICAL_MANAGER, Role.HEAD, Role.QA, Role.ADMIN})
AUDIT_ROLES = frozenset({Role.QA, Role.ADMIN, Role.HEAD, Role.TECHNICAL_MANAGER})


# -- request bodies (documented in the OpenAPI schema) --------------------------------------------------
class LoginBody(BaseModel):
    username: str
    password: str


class RegisterBody(BaseModel):
    username: str
    full_name: str
    password: str
    organisation: str


class ItemBody(BaseModel):
    make: str
    model: str
    serial: str
    parameter: str
    description: str = ""
    scope: str = ""
    requested_points: str = ""


class OrderBody(BaseModel):
    service: str = Field(description="insitu (at the customer's site) or exsitu (the item comes to the lab)")
    site: str = ""
    items: list[ItemBody]
    organisation: str | None = Field(None, description="customer service names the customer; a customer may omit it")


class ActionBody(BaseModel):
    reason: str = ""
    data: dict[str, Any] = Field(default_factory=dict, description="the step's data, see GET /actions")
    expected_version: int | None = Field(None, description="refused (R-VERSION) if the order changed since")


class ComplaintBody(BaseModel):
    text: str
    order: str | None = None


class AnswerBody(BaseModel):
    response: str


# -- errors: one shape everywhere ---------------------------------------------------------------------
def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    body = {"error": "refused", "rule": exc.rule, "problem": exc.problem, "fix": exc.fix}
    if exc.rule == "R-LOGIN":
        return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return JSONResponse(body, status_code=403)


def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "not_found", "problem": str(exc)}, status_code=404)


def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConfigError)
    return JSONResponse({"error": "invalid", "field": exc.field, "problem": exc.problem, "fix": exc.fix},
                        status_code=422)


def _malformed(request: Request, exc: Exception) -> JSONResponse:
    """A body that does not fit its model: the first wrong field, in the same shape as a ConfigError."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    return JSONResponse({"error": "invalid", "field": ".".join(loc) or "body", "problem": first.get("msg", "invalid"),
                         "fix": "see the request schema in /docs"}, status_code=422)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = "not_found" if exc.status_code == 404 else "http"
    return JSONResponse({"error": kind, "problem": str(exc.detail)}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


# -- app --------------------------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="the token from POST /auth/login")


def _wf(request: Request) -> Workflow:
    wf: Workflow = request.app.state.workflow
    return wf


async def current_user(request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> UserRow:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Refused("R-LOGIN", "no bearer token", "log in (POST /auth/login) and send Authorization: Bearer <token>")
    async with _wf(request).db.transaction() as s:
        return await accounts.user_for_token(s, credentials.credentials)


User = Annotated[UserRow, Depends(current_user)]
Flow = Annotated[Workflow, Depends(_wf)]


def _require(user: UserRow, allowed: frozenset[Role], what: str) -> None:
    if not roles_of(user) & allowed:
        raise Refused("R-ROLE", f"{user.username} ({', '.join(sorted(roles_of(user)))}) may not {what}",
                      f"{what} is for {' or '.join(sorted(r.value for r in allowed))}")


def _user_view(user: UserRow) -> dict[str, Any]:
    return {"username": user.username, "full_name": user.full_name, "roles": sorted(roles_of(user)),
            "organisation_id": user.organisation_id, "active": user.active}


def create_app(db_url: str, *, now: Callable[[], datetime] | None = None) -> FastAPI:
    """The API over the records database at `db_url` (an SQLite path or a postgresql+asyncpg:// URL).

    `now`: the clock the workflow runs on (tests give a fixed one); the real clock when None.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await RecordsDB.open(db_url)
        app.state.db = db
        app.state.workflow = Workflow(db, now=now)
        try:
            yield
        finally:
            await db.close()

    app = FastAPI(title="Calibration laboratory records", version="1", lifespan=lifespan,
                  description=__doc__ or "")
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(ConfigError, _invalid)
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(StarletteHTTPException, _http)

    # -- accounts ---------------------------------------------------------------------------------
    @app.post("/auth/login", tags=["accounts"])
    async def login(body: LoginBody, wf: Flow) -> dict[str, Any]:
        """A token for the Authorization header (refused by R-LOGIN or R-ACTIVE)."""
        async with wf.db.transaction() as s:
            user = await accounts.authenticate(s, body.username, body.password)
            token = await accounts.issue_token(s, user)
            await s.flush()
            expires = await s.scalar(select(ApiTokenRow.expires_at).where(ApiTokenRow.token_sha256 ==
                                                                          token_digest(token)))
        return {"token": token, "expires_at": expires}

    @app.post("/auth/register", status_code=201, tags=["accounts"])
    async def register(body: RegisterBody, wf: Flow) -> dict[str, Any]:
        """A customer registers themselves; the account acts only after an administrator activates it."""
        async with wf.db.transaction() as s:
            user = await accounts.add_user(s, username=body.username, full_name=body.full_name,
                                           roles=[Role.CUSTOMER], password=body.password,
                                           organisation=body.organisation, active=False, actor=body.username)
            return _user_view(user)

    @app.post("/users/{username}/activate", tags=["accounts"])
    async def activate(username: str, user: User, wf: Flow) -> dict[str, Any]:
        """An administrator activates an account."""
        async with wf.db.transaction() as s:
            return _user_view(await accounts.activate(s, user, username))

    @app.get("/me", tags=["accounts"])
    async def me(user: User) -> dict[str, Any]:
        return _user_view(user)

    # -- orders -----------------------------------------------------------------------------------
    @app.get("/orders", tags=["orders"])
    async def list_orders(user: User, wf: Flow) -> list[dict[str, Any]]:
        """The orders this user may see (a customer: their organisation's)."""
        return await views.list_orders(wf, user)

    @app.post("/orders", status_code=201, tags=["orders"])
    async def request_order(body: OrderBody, user: User, wf: Flow) -> dict[str, Any]:
        """Register a request (a customer for their organisation, customer service for a named one)."""
        order = await wf.request(user, service=body.service, site=body.site, organisation=body.organisation,
                                 items=[i.model_dump() for i in body.items], source="request")
        return await views.order_detail(wf, user, order.request_number)

    @app.get("/orders/{ref}", tags=["orders"])
    async def order_detail(ref: str, user: User, wf: Flow) -> dict[str, Any]:
        """An order with its items, history and the steps this user can take next."""
        return await views.order_detail(wf, user, ref)

    @app.post("/orders/{ref}/actions/{action}", tags=["orders"])
    async def act(ref: str, action: str, body: ActionBody, user: User, wf: Flow) -> dict[str, Any]:
        """Take one step of the order's life cycle (see GET /actions for the steps and their data)."""
        return await wf.act(user, ref, action, reason=body.reason, data=body.data,
                            expected_version=body.expected_version, source=action)

    @app.get("/actions", tags=["orders"])
    async def life_cycle(user: User) -> dict[str, Any]:
        """The life cycle: every step, who takes it, from which states, and the rules that refuse."""
        return {"transitions": [
            {"action": t.action, "roles": sorted(r.value for r in t.roles),
             "sources": sorted(x.value for x in t.sources),
             "target": None if t.target is None else t.target.value, "customers": sorted(t.customers),
             "services": sorted(t.services), "needs_reason": t.needs_reason, "what": t.what} for t in TRANSITIONS],
            "rules": dict(RULES)}

    # -- reports ----------------------------------------------------------------------------------
    @app.get("/reports/turnaround", tags=["reports"])
    async def turnaround(year: int, month: int, user: User, wf: Flow) -> dict[str, Any]:
        """On-time delivery of one month, per service type, against the service standard."""
        _require(user, REPORT_ROLES, "read the turnaround report")
        report = await views.turnaround(wf, year, month)
        return {"year": year, "month": month, "rows": report.rows(), "text": report.render_text()}

    @app.get("/reports/survey", tags=["reports"])
    async def survey(year: int, user: User, wf: Flow, service: str | None = None,
                     month: int | None = None) -> dict[str, Any]:
        """The satisfaction index (IKM) of a year or a month, for one service type or all."""
        _require(user, REPORT_ROLES, "read the survey results")
        index = await views.survey_results(wf, year=year, service=service, month=month)
        grade = index.grade
        return {"year": year, "month": month, "service": service, "responses": index.responses,
                "index": str(index.display), "grade": grade.letter, "quality": grade.quality,
                "elements": [{"code": e.code, "name": e.name, "mean": float(e.mean), "score": str(e.display),
                              "grade": e.grade.letter} for e in index.elements],
                "lowest": [e.code for e in index.lowest()],
                "action_plan": [e.code for e in index.action_plan_elements], "text": index.render_text()}

    # -- complaints -------------------------------------------------------------------------------
    @app.post("/complaints", status_code=201, tags=["complaints"])
    async def raise_complaint(body: ComplaintBody, user: User, wf: Flow) -> dict[str, Any]:
        """A customer complains, about an order of theirs or the service in general."""
        async with wf.db.transaction() as s:
            row = await complaints.raise_complaint(s, user, body.text, body.order)
            return {"id": row.id, "order_id": row.order_id, "raised_at": row.raised_at, "text": row.text}

    @app.post("/complaints/{complaint_id}/answer", tags=["complaints"])
    async def answer_complaint(complaint_id: int, body: AnswerBody, user: User, wf: Flow) -> dict[str, Any]:
        """Customer service answers a complaint (once)."""
        async with wf.db.transaction() as s:
            row = await complaints.answer_complaint(s, user, complaint_id, body.response)
            return {"id": row.id, "response": row.response, "responded_at": row.responded_at}

    # -- audit ------------------------------------------------------------------------------------
    @app.get("/audit/verify", tags=["audit"])
    async def verify_audit(user: User, wf: Flow) -> dict[str, Any]:
        """Recompute the audit chain and every audited record; `problems` names what does not match."""
        _require(user, AUDIT_ROLES, "verify the audit trail")
        async with wf.db.transaction() as s:
            report = await audit.verify(s)
        return {"ok": report.ok, "entries": report.entries, "head_hash": report.head_hash,
                "problems": list(report.problems)}

    return app
