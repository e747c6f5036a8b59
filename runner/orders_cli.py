"""`daq orders ...`: calibration orders from request to closed, one subcommand per step; `daq audit verify`.

Every step of the life cycle (results.records.lifecycle.ACTIONS, underscores as dashes) is a
subcommand `daq orders <step> REF [--reason] [--set KEY=VALUE ...] [--data JSON]`; launching the
calibration of an item is `daq orders run REF --item N --bench ... --procedure ...`, which links
the run's results to the item. Acting commands log in with `--user NAME`; the password comes from
DAQ_PASSWORD or a hidden prompt, the head's signing passphrase from DAQ_PASSPHRASE or a prompt.
A user mistake or a refusal (which names its rule) prints one line `error: ...` and exits with 2.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
import tomllib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# results.store first: results.records.models and results.store import each other, and only this order loads.
import results.store  # noqa: F401  # isort: skip

from daq.errors import ConfigError, DaqError
from results.records import audit
from results.records.accounts import (
    Role,
    activate,
    add_organisation,
    add_user,
    authenticate,
    parse_roles,
    roles_of,
    set_signing_passphrase,
)
from results.records.complaints import answer_complaint, raise_complaint
from results.records.database import RecordsDB
from results.records.errors import Refused
from results.records.lifecycle import ACTIONS, RULES, TRANSITIONS
from results.records.models import HolidayRow, TariffLineRow, UserRow
from results.records.workflow import Workflow

orders_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Calibration orders: request, every step of the life cycle, runs, reports.")
audit_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The audit trail of the records.")
organisation_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Customer organisations.")
user_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Accounts and roles.")
tariff_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The lab's tariff lines.")
holidays_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Public holidays (working-day counts).")
report_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Turnaround and satisfaction reports.")
complaint_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Customer complaints.")
orders_app.add_typer(organisation_app, name="organisation")
orders_app.add_typer(user_app, name="user")
orders_app.add_typer(tariff_app, name="tariff")
orders_app.add_typer(holidays_app, name="holidays")
orders_app.add_typer(report_app, name="report")
orders_app.add_typer(complaint_app, name="complaint")

EXIT_USER_ERROR = 2
DEFAULT_DB = "daq-lab.sqlite"
T = TypeVar("T")

DbOption = Annotated[str, typer.Option("--db", help="Records database (SQLite path or PostgreSQL URL).")]
UserOption = Annotated[str, typer.Option("--user", help="Your username (password: DAQ_PASSWORD or a prompt).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _out() -> Console:
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _say(text: str) -> None:
    _out().print(escape(text), soft_wrap=True)


def _fail(message: object, code: int = EXIT_USER_ERROR) -> typer.Exit:
    _err().print(f"[bold red]error:[/] {escape(str(message))}", soft_wrap=True)
    return typer.Exit(code)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _secret(env: str, prompt: str, confirm: bool = False) -> str:
    value = os.environ.get(env)
    if value:
        return value
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def _password() -> str:
    return _secret("DAQ_PASSWORD", "Password")


def _passphrase(confirm: bool = False) -> str:
    return _secret("DAQ_PASSPHRASE", "Signing passphrase", confirm)


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """One command's database work; a user mistake or a refusal is one line and exit 2, never a traceback."""
    try:
        return asyncio.run(work())
    except DaqError as exc:
        raise _fail(exc) from None


async def _open(db_path: str, *, create: bool = False) -> RecordsDB:
    """Open the records; only `init` makes a new database file (a mistyped --db is an error, not a new lab)."""
    if not create and "://" not in db_path and not Path(db_path).exists():
        raise ConfigError(db_path, "--db", "no such records database",
                          "give the --db of your lab, or create one with: daq orders init --admin NAME")
    return await RecordsDB.open(db_path)


async def _login(db: RecordsDB, username: str, password: str) -> UserRow:
    async with db.transaction() as s:
        return await authenticate(s, username, password)


def _with_user(db_path: str, username: str, work: Callable[[RecordsDB, Workflow, UserRow], Awaitable[T]]) -> T:
    """Log in, then do the work with a workflow over the same database; the database is always closed."""
    password = _password()

    async def go() -> T:
        db = await _open(db_path)
        try:
            user = await _login(db, username, password)
            return await work(db, Workflow(db), user)
        finally:
            await db.close()

    return _run(go)


def _require_admin(user: UserRow, what: str) -> None:
    if Role.ADMIN not in roles_of(user):
        raise Refused("R-ROLE", f"{user.username} is not an administrator", f"an administrator {what}")


def _require_staff(user: UserRow, what: str) -> None:
    if roles_of(user) == {Role.CUSTOMER}:
        raise Refused("R-ROLE", f"{user.username} is a customer", f"{what} is for the lab's staff")


# -- parsing the command line's data ----------------------------------------------------------------
def _scalar(text: str, keep_text: bool = False) -> Any:
    """All digits: a whole number (unless the field is text, e.g. a billing code); quotes keep text as text."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return int(text) if text.isdigit() and not keep_text else text


def set_path(data: dict[str, Any], key: str, value: Any, source: str = "--set") -> None:
    """`a.b.c` = value into nested dicts, making the tables on the way."""
    parts = key.split(".")
    if any(not p.strip() for p in parts):
        raise ConfigError(source, key, "empty part in the key", "write KEY=VALUE, e.g. tariffs.1=K-DMM")
    here = data
    for part in parts[:-1]:
        nxt = here.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(source, key, f"{part!r} is already a value, not a table", "set it once")
        here = nxt
    here[parts[-1]] = value


def parse_sets(pairs: list[str], source: str = "--set", text_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """KEY=VALUE pairs: dotted keys build nested tables; all-digit values are whole numbers, except for the
    keys in `text_keys` (fields that are always text) and values in quotes."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(source, pair, "expected KEY=VALUE", "e.g. --set amount=1250000 or --set tariffs.1=K-DMM")
        set_path(data, key.strip(), _scalar(value.strip(), key.strip() in text_keys), source)
    return data


def parse_mapping(text: str, source: str) -> dict[str, Any]:
    """`U1=4,U2=3` -> {"U1": 4, "U2": 3}."""
    return parse_sets([p for p in (x.strip() for x in text.split(",")) if p], source)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_item(text: str, source: str = "--item") -> dict[str, str]:
    """`make=Fluke;model=87V;serial=123;parameter=DC voltage` -> an item table."""
    item: dict[str, str] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ConfigError(source, part, "expected KEY=VALUE",
                              'e.g. --item "make=Fluke;model=87V;serial=123;parameter=DC voltage"')
        item[key.strip()] = value.strip()
    return item


def _data_option(data_json: str | None, sets: list[str], text_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if data_json:
        try:
            loaded = json.loads(data_json)
        except json.JSONDecodeError as exc:
            raise ConfigError("--data", "(json)", str(exc), 'give a JSON object, e.g. {"date": "2026-12-07"}') from None
        if not isinstance(loaded, dict):
            raise ConfigError("--data", "(json)", "not a JSON object",
                              'give a JSON object, e.g. {"date": "2026-12-07"}')
        data = loaded
    return merge(data, parse_sets(sets, text_keys=text_keys))


# -- setting up ---------------------------------------------------------------------------------------
@orders_app.command("init")
def init(admin: Annotated[str, typer.Option("--admin", help="Username of the first administrator.")],
         name: Annotated[str, typer.Option("--name", help="The administrator's full name.")] = "",
         db: DbOption = DEFAULT_DB) -> None:
    """Create (or upgrade) the records database and its first administrator (password: DAQ_PASSWORD/prompt)."""
    from sqlalchemy import func, select

    async def go() -> None:
        database = await _open(db, create=True)
        try:
            async with database.transaction() as s:
                users = await s.scalar(select(func.count(UserRow.id)))
                if users:
                    raise ConfigError(db, "users", f"the database has {users} account(s) already",
                                      "an administrator adds accounts: daq orders user add")
                password = _secret("DAQ_PASSWORD", "Password for the administrator", confirm=True)
                await add_user(s, username=admin, full_name=name or admin, roles=[Role.ADMIN], password=password,
                               actor=admin)
        finally:
            await database.close()

    _run(go)
    _say(f"records database {db} ready; administrator {admin} created")


@orders_app.command("laboratory")
def laboratory(user: UserOption,
               name: Annotated[str, typer.Option("--name", help="The laboratory's name as certificates print it.")],
               address: Annotated[str, typer.Option("--address", help="Its address.")],
               country: Annotated[str, typer.Option("--country", help="ISO 3166-1 alpha-2 code, e.g. ID.")],
               accreditation: Annotated[str, typer.Option("--accreditation", help="e.g. ISO/IEC 17025, LK-123")] = "",
               email: Annotated[str, typer.Option("--email")] = "",
               verify_url: Annotated[str, typer.Option("--verify-url", help="Page where a certificate's code is "
                                                       "checked (the QR code points there).")] = "",
               db: DbOption = DEFAULT_DB) -> None:
    """Set the laboratory's identity printed on every certificate (administrator)."""
    from results.records.settings import set_laboratory

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> None:
        async with database.transaction() as s:
            await set_laboratory(s, u, name=name, address=address, country=country, accreditation=accreditation,
                                 email=email, verify_url=verify_url, at=wf.stamp())

    _with_user(db, user, work)
    _say(f"laboratory identity set: {name}, {address} ({country.upper()})")


@organisation_app.command("add")
def organisation_add(name: Annotated[str, typer.Argument(help="The organisation's name.")],
                     kind: Annotated[str, typer.Option("--kind", help="internal (free) or external (pays).")],
                     user: UserOption, address: Annotated[str, typer.Option("--address")] = "",
                     db: DbOption = DEFAULT_DB) -> None:
    """Add a customer organisation (administrator)."""
    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> int:
        _require_admin(u, "adds organisations")
        async with database.transaction() as s:
            row = await add_organisation(s, name=name, kind=kind, address=address, actor=u.username)
            return row.id

    row_id = _with_user(db, user, work)
    _say(f"organisation {row_id} {name} ({kind}) added")


@user_app.command("add")
def user_add(username: Annotated[str, typer.Argument(help="The new account's username.")],
             name: Annotated[str, typer.Option("--name", help="Full name.")],
             roles: Annotated[str, typer.Option("--roles", help="Comma-separated roles, e.g. analyst,supervisor.")],
             user: UserOption, organisation: Annotated[str | None, typer.Option("--organisation")] = None,
             db: DbOption = DEFAULT_DB) -> None:
    """Add an active account (administrator); its password comes from DAQ_NEW_PASSWORD or a prompt."""
    try:
        chosen = parse_roles(roles)
    except ConfigError as exc:
        raise _fail(exc) from None
    new_password = _secret("DAQ_NEW_PASSWORD", f"Password for {username}", confirm=True)

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> None:
        _require_admin(u, "adds accounts")
        async with database.transaction() as s:
            await add_user(s, username=username, full_name=name, roles=chosen, password=new_password,
                           organisation=organisation, actor=u.username)

    _with_user(db, user, work)
    _say(f"user {username} added ({', '.join(r.value for r in chosen)})")


@user_app.command("activate")
def user_activate(username: Annotated[str, typer.Argument()], user: UserOption, db: DbOption = DEFAULT_DB) -> None:
    """Activate an account, e.g. a customer's self-registration (administrator)."""
    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> None:
        async with database.transaction() as s:
            await activate(s, u, username)

    _with_user(db, user, work)
    _say(f"user {username} activated")


@user_app.command("register")
def user_register(username: Annotated[str, typer.Argument()],
                  name: Annotated[str, typer.Option("--name", help="Your full name.")],
                  organisation: Annotated[str, typer.Option("--organisation", help="Your organisation.")],
                  db: DbOption = DEFAULT_DB) -> None:
    """A customer registers (inactive until an administrator activates it); password: DAQ_PASSWORD/prompt."""
    password = _secret("DAQ_PASSWORD", "Choose a password", confirm=True)

    async def go() -> None:
        database = await _open(db)
        try:
            async with database.transaction() as s:
                await add_user(s, username=username, full_name=name, roles=[Role.CUSTOMER], password=password,
                               organisation=organisation, active=False, actor=username)
        finally:
            await database.close()

    _run(go)
    _say(f"registered {username} for {organisation}; an administrator activates the account")


@user_app.command("signing-key")
def user_signing_key(user: UserOption, db: DbOption = DEFAULT_DB) -> None:
    """The head of laboratory sets the passphrase of a new signing key (DAQ_PASSPHRASE or a prompt)."""
    passphrase = _passphrase(confirm=True)

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> str:
        async with database.transaction() as s:
            fresh = await s.get(UserRow, u.id)
            assert fresh is not None
            return await set_signing_passphrase(s, fresh, passphrase)

    public = _with_user(db, user, work)
    _say(f"new signing key for {user}; public key {public}")


@tariff_app.command("add")
def tariff_add(code: Annotated[str, typer.Argument()],
               description: Annotated[str, typer.Option("--description")],
               price: Annotated[int, typer.Option("--price", help="Whole units of the currency.")],
               user: UserOption, currency: Annotated[str, typer.Option("--currency")] = "IDR",
               service: Annotated[str, typer.Option("--service", help="any, insitu or exsitu.")] = "any",
               db: DbOption = DEFAULT_DB) -> None:
    """Add a tariff line (treasurer or administrator)."""
    from results.records.settings import add_tariff_line

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> None:
        async with database.transaction() as s:
            await add_tariff_line(s, u, code=code, description=description, price=price, currency=currency,
                                  service=service)

    _with_user(db, user, work)
    _say(f"tariff line {code} added: {price} {currency.upper()} ({service})")


@tariff_app.command("list")
def tariff_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """The tariff lines."""
    from sqlalchemy import select

    async def go() -> list[dict[str, Any]]:
        database = await _open(db)
        try:
            async with database.transaction() as s:
                rows = (await s.scalars(select(TariffLineRow).order_by(TariffLineRow.code))).all()
                return [{"code": r.code, "description": r.description, "price": r.price, "currency": r.currency,
                         "service": r.service} for r in rows]
        finally:
            await database.close()

    lines = _run(go)
    if as_json:
        _print_json(lines)
        return
    table = Table("code", "service", "price", "description", header_style="bold")
    for line in lines:
        table.add_row(escape(line["code"]), line["service"], f"{line['price']:,} {line['currency']}",
                      escape(line["description"]))
    _out().print(table)


@holidays_app.command("import")
def holidays_import(file: Annotated[Path, typer.Argument(help="Holiday file (TOML).")], user: UserOption,
                    db: DbOption = DEFAULT_DB) -> None:
    """Add the public holidays of a file (administrator); days already known are kept."""
    from results.records.calendar import load_holidays
    from results.records.settings import add_holidays

    try:
        days = load_holidays(file)
    except ConfigError as exc:
        raise _fail(exc) from None

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> int:
        async with database.transaction() as s:
            return await add_holidays(s, u, days)

    added = _with_user(db, user, work)
    _say(f"{added} holiday(s) added from {file} ({len(days) - added} known already)")


@holidays_app.command("list")
def holidays_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """The public holidays known to the records."""
    from sqlalchemy import select

    async def go() -> list[dict[str, str]]:
        database = await _open(db)
        try:
            async with database.transaction() as s:
                rows = (await s.scalars(select(HolidayRow).order_by(HolidayRow.day))).all()
                return [{"date": r.day, "name": r.name} for r in rows]
        finally:
            await database.close()

    days = _run(go)
    if as_json:
        _print_json(days)
    else:
        for d in days:
            _say(f"{d['date']}  {d['name']}")


# -- requests and views ---------------------------------------------------------------------------------
@orders_app.command("request")
def request(user: UserOption,
            service: Annotated[str | None, typer.Option("--service", help="insitu or exsitu.")] = None,
            site: Annotated[str | None, typer.Option("--site", help="Where an in-situ calibration is done.")] = None,
            organisation: Annotated[str | None, typer.Option(
                "--organisation", help="The customer (customer service entering a walk-in's request).")] = None,
            item: Annotated[list[str] | None, typer.Option(
                "--item", help='"make=..;model=..;serial=..;parameter=..;scope=..;requested_points=.." (repeatable)')]
            = None,
            items_file: Annotated[Path | None, typer.Option("--items-file", help="TOML: service, site, [[items]].")]
            = None,
            db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Register a calibration request."""
    try:
        spec = _request_spec(service, site, organisation, item or [], items_file)
    except ConfigError as exc:
        raise _fail(exc) from None

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> dict[str, Any]:
        order = await wf.request(u, **spec)
        return {"order": order.request_number, "id": order.id, "state": order.state, "version": order.version,
                "items": len(spec["items"])}

    outcome = _with_user(db, user, work)
    if as_json:
        _print_json(outcome)
    else:
        _say(f"request {outcome['order']} registered ({outcome['items']} item(s)); state {outcome['state']}")


def _request_spec(service: str | None, site: str | None, organisation: str | None, items: list[str],
                  items_file: Path | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"service": None, "site": "", "organisation": None, "items": []}
    source = "request"
    if items_file is not None:
        source = str(items_file)
        try:
            data = tomllib.loads(items_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(source, "(file)", f"cannot read: {exc.strerror or exc}", "check the path") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from None
        for key in data:
            if key not in ("service", "site", "organisation", "items"):
                raise ConfigError(source, key, "unknown field", "use service, site, organisation and [[items]]")
        spec["service"] = data.get("service")
        spec["site"] = data.get("site", "")
        spec["organisation"] = data.get("organisation")
        spec["items"] = list(data.get("items", []))
    spec["items"] += [parse_item(text) for text in items]
    for key, value in (("service", service), ("site", site), ("organisation", organisation)):
        if value is not None:
            spec[key] = value
    if not spec["service"]:
        raise ConfigError(source, "service", "missing", "give --service insitu or --service exsitu")
    if not spec["items"]:
        raise ConfigError(source, "items", "no items", "give --item \"make=..;model=..;serial=..;parameter=..\" "
                          "or --items-file FILE")
    spec["source"] = source
    return spec


@orders_app.command("list")
def list_(user: UserOption, db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """The orders you may see (a customer: their organisation's)."""
    from results.records.views import list_orders

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> list[dict[str, Any]]:
        return await list_orders(wf, u)

    rows = _with_user(db, user, work)
    if as_json:
        _print_json(rows)
        return
    table = Table("request", "order", "organisation", "service", "state", "v", "due", header_style="bold")
    for r in rows:
        due = (r["due_date"] or "") + (" OVERDUE" if r["overdue"] else "")
        table.add_row(r["request_number"], r["order_number"] or "", escape(r["organisation"]), r["service"],
                      r["state"], str(r["version"]), due)
    _out().print(table)


@orders_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="Request number, order number or id.")], user: UserOption,
         db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """One order: its state, due date, items, history and what you can do next."""
    from results.records.views import order_detail

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> dict[str, Any]:
        return await order_detail(wf, u, ref)

    d = _with_user(db, user, work)
    if as_json:
        _print_json(d)
        return
    lines = [f"{d['request_number']}" + (f" / {d['order_number']}" if d["order_number"] else "")
             + f"  {d['organisation']} ({d['customer_kind']}, {d['service']})",
             f"state: {d['state']} (version {d['version']})",
             f"due: {d['due_date'] or '-'}" + ("  OVERDUE" if d["overdue"] else "")
             + (f"  released {d['released_date']}" if d["released_date"] else ""),
             "items:"]
    for i in d["items"]:
        extra = []
        if i["tariff"]:
            extra.append(f"tariff {i['tariff']} {i['price']:,}")
        if i["runs"]:
            extra.append("runs " + ", ".join(str(r) for r in i["runs"]))
        if i["certificates"]:
            extra.append("certificates " + ", ".join(c["number"] for c in i["certificates"]))
        lines.append(f"  {i['position']}. {i['make']} {i['model']} serial {i['serial']}: {i['parameter']}"
                     + (f" ({'; '.join(extra)})" if extra else ""))
    lines.append("history:")
    for e in d["history"]:
        lines.append(f"  {e['at']}  {e['action']} by {e['by']} ({e['role']}): {e['from'] or '-'} -> {e['to']}"
                     + (f"  reason: {e['reason']}" if e["reason"] else ""))
    steps = ["run (start-calibration)" if s == "start_calibration" else s.replace("_", "-") for s in d["next_steps"]]
    lines.append("next steps for you: " + (", ".join(steps) if steps else "none"))
    _say("\n".join(lines))


# -- one subcommand per step of the life cycle ---------------------------------------------------------
# Friendly flags: option name -> (data key, help, parse). parse "text" | "int" | "map" | "analyst" | "tariff".
_FRIENDLY: dict[str, list[tuple[str, str, str, str]]] = {
    "confirm_scope": [("tariff", "tariffs", "POS=CODE, each item's tariff line (external customers).", "map")],
    "revise_scope": [("tariff", "tariffs", "POS=CODE, each item's tariff line.", "map")],
    "pay": [("billing_code", "billing_code", "The billing code.", "text"),
            ("amount", "amount", "The amount paid (whole units).", "int"),
            ("method", "method", "billing-code or transfer.", "text"),
            ("reference", "reference", "The bank or treasury transaction reference.", "text"),
            ("proof", "proof", "The proof of payment (file name or upload reference).", "text")],
    "propose_schedule": [("date", "date", "The proposed calibration date, YYYY-MM-DD.", "text")],
    "issue_work_order": [("instructions", "instructions", "Instructions on the work order.", "text")],
    "receive_items": [("condition", "condition", "The items' condition on receipt.", "text")],
    "return_items": [("condition", "condition", "The items' condition as they leave.", "text")],
    "assign_analyst": [("analyst", "analyst", "The analyst's username, or POS=USER,POS=USER per item.", "analyst")],
    "submit_survey": [("answers", "answers", "U1=4,U2=3,...,U9=4 (1 worst .. 4 best).", "map"),
                      ("comment", "answers.comment", "A comment.", "text")],
    "acknowledge_receipt": [("evaluation", "evaluation", "Your evaluation of the certificate.", "text")],
}


def _friendly_value(kind: str, value: Any, option: str) -> Any:
    source = "--" + option.replace("_", "-")
    if kind == "map" or (kind == "analyst" and "=" in str(value)):
        return parse_mapping(str(value), source)
    return value


def _outcome_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['order']}: {result['state']} (version {result['version']})"]
    for key, value in result.items():
        if key in ("order", "state", "version") or (key == "certificates" and isinstance(value, list)):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
        lines.append(f"  {key.replace('_', ' ')}: {value}")
    return lines


async def _document_files(database: RecordsDB, outcome: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The issued PDF and DCC files, byte for byte as signed."""
    from sqlalchemy import select

    from results.records.models import CertificateDocumentRow

    ids = [d["id"] for cert in outcome.get("certificates", []) for d in cert.get("documents", [])]
    async with database.transaction() as s:
        rows = (await s.execute(select(CertificateDocumentRow.file_name, CertificateDocumentRow.content)
                                .where(CertificateDocumentRow.id.in_(ids)))).all()
    return [(r.file_name, bytes(r.content)) for r in rows]


def _write_certificates(result: dict[str, Any], files: list[tuple[str, bytes]], out: Path) -> list[Path]:
    """Each certificate's signed PDF and DCC, and its record as JSON; each file whole or not at all."""
    from runner.certificate_cli import write_documents

    documents = list(files) + [(f"{cert['number']}.json", (json.dumps(cert, indent=2, ensure_ascii=False,
                                                                      default=str) + "\n").encode())
                               for cert in result.get("certificates", [])]
    return write_documents(documents, out)


def do_action(action: str, ref: str, *, db: str, user: str, reason: str = "", sets: list[str] | None = None,
              data_json: str | None = None, expected_version: int | None = None, as_json: bool = False,
              friendly: dict[str, Any] | None = None, out: Path | None = None) -> dict[str, Any]:
    """Take one step of an order's life cycle from the command line and print what it produced."""
    try:
        text_keys = frozenset(key for _o, key, _h, kind in _FRIENDLY.get(action, []) if kind == "text")
        data = _data_option(data_json, sets or [], text_keys)
        for (option, key, _help, kind) in _FRIENDLY.get(action, []):
            value = (friendly or {}).get(option)
            if value is not None:
                set_path(data, key, _friendly_value(kind, value, option), "--" + option.replace("_", "-"))
    except ConfigError as exc:
        raise _fail(exc) from None
    if action == "sign" and "passphrase" not in data:
        data["passphrase"] = _passphrase()

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> dict[str, Any]:
        outcome = await wf.act(u, ref, action, reason=reason or "", data=data, expected_version=expected_version,
                               source=action.replace("_", "-"))
        if action == "download_certificate":
            outcome["__files"] = await _document_files(database, outcome)
        return outcome

    result = _with_user(db, user, work)
    files = result.pop("__files", [])
    written = _write_certificates(result, files, out) if out is not None and action == "download_certificate" else []
    if as_json:
        _print_json(result | ({"written": [str(p) for p in written]} if written else {}))
    else:
        lines = _outcome_lines(result)
        for cert in result.get("certificates", []) if isinstance(result.get("certificates"), list) else []:
            lines.append(f"  certificate {cert['number']} (results version {cert['result_version']})")
        lines += [f"  written {p}" for p in written]
        _say("\n".join(lines))
    return result


def _action_help(action: str) -> str:
    found = [t for t in TRANSITIONS if t.action == action]
    t = found[0]
    roles = " or ".join(sorted(r.value for r in t.roles))
    text = f"{t.what[0].upper()}{t.what[1:]} ({roles})."
    if t.needs_reason:
        text += " Needs --reason."
    return text


def _make_action_command(action: str) -> Callable[..., None]:
    def command(**kw: Any) -> None:
        friendly = {opt: kw.pop(opt) for opt, *_ in _FRIENDLY.get(action, [])}
        do_action(action, kw["ref"], db=kw["db"], user=kw["user"], reason=kw["reason"], sets=kw["sets"],
                  data_json=kw["data_json"], expected_version=kw["expected_version"], as_json=kw["as_json"],
                  friendly=friendly, out=kw.get("out"))

    P = inspect.Parameter
    params = [
        P("ref", P.KEYWORD_ONLY, annotation=Annotated[str, typer.Argument(help="Request number, order number or id.")]),
        P("user", P.KEYWORD_ONLY, annotation=UserOption),
        P("db", P.KEYWORD_ONLY, annotation=DbOption, default=DEFAULT_DB),
        P("reason", P.KEYWORD_ONLY, annotation=Annotated[str, typer.Option("--reason", help="Why (rejections, "
                                                                           "returns, cancellations).")], default=""),
        P("sets", P.KEYWORD_ONLY, annotation=Annotated[list[str] | None, typer.Option(
            "--set", help="KEY=VALUE into the step's data (dotted keys nest: tariffs.1=K-DMM); repeatable.")],
          default=None),
        P("data_json", P.KEYWORD_ONLY, annotation=Annotated[str | None, typer.Option(
            "--data", help="The step's data as a JSON object.")], default=None),
        P("expected_version", P.KEYWORD_ONLY, annotation=Annotated[int | None, typer.Option(
            "--expected-version", help="Refuse if the order changed since this version.")], default=None),
        P("as_json", P.KEYWORD_ONLY, annotation=JsonOption, default=False),
    ]
    for option, _key, help_text, kind in _FRIENDLY.get(action, []):
        typ: Any = int | None if kind == "int" else str | None
        params.append(P(option, P.KEYWORD_ONLY, annotation=Annotated[typ, typer.Option(  # type: ignore[valid-type]
            "--" + option.replace("_", "-"), help=help_text)], default=None))
    if action == "download_certificate":
        params.append(P("out", P.KEYWORD_ONLY, annotation=Annotated[Path | None, typer.Option(
            "--out", help="Write each certificate into DIR: <number>.pdf, .xml (DCC), .json.")], default=None))
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = action
    command.__doc__ = _action_help(action)
    return command


STEP_COMMANDS = tuple(a for a in ACTIONS if a != "start_calibration")
for _action in STEP_COMMANDS:
    orders_app.command(_action.replace("_", "-"), help=_action_help(_action))(_make_action_command(_action))


# -- launching a calibration run from an order item ------------------------------------------------------
@orders_app.command("run")
def run(ref: Annotated[str, typer.Argument(help="Request number, order number or id.")],
        item: Annotated[int, typer.Option("--item", help="The item's position in the order.")],
        bench: Annotated[Path, typer.Option("--bench", help="Bench file (TOML).")],
        procedure: Annotated[Path, typer.Option("--procedure", help="Procedure file (TOML).")],
        user: UserOption, db: DbOption = DEFAULT_DB,
        simulate: Annotated[bool, typer.Option("--simulate", help="Start the bench's simulators here.")] = False,
        scale: Annotated[float | None, typer.Option("--scale", help="Scaled time (simulators only).")] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Seed of the simulated world.")] = None,
        uut: Annotated[str | None, typer.Option("--uut", help="The bench instrument that is this item.")] = None,
        yes: Annotated[bool, typer.Option("--yes", help="Answer yes to operator prompts (unattended).")] = False,
        live: Annotated[bool, typer.Option(help="Show live progress.")] = True,
        as_json: JsonOption = False) -> None:
    """Launch the calibration of an order item (its assigned analyst); the run's results are linked to it."""
    from daq.bench import load_bench
    from procedures.loader import load_procedure
    from runner.order_run import run_order_item
    from runner.report import results_table
    from runner.session import SessionOptions, SessionOutcome

    try:
        b = load_bench(bench)
        p = load_procedure(procedure)
    except ConfigError as exc:
        raise _fail(exc) from None
    password = _password()
    options = SessionOptions(db=db, simulate=simulate, scale=scale, seed=seed, assume_yes=yes,
                             live=live and not as_json, operator_name=user)

    async def go() -> SessionOutcome:
        database = await _open(db)
        try:
            u = await _login(database, user, password)
        finally:
            await database.close()
        return await run_order_item(db, u, ref, item, b, p, options, uut=uut)

    try:
        outcome = asyncio.run(go())
    except (ConfigError, Refused) as exc:
        raise _fail(exc) from None
    except DaqError as exc:  # an instrument problem during the run: the run is kept to be resumed
        _err().print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        run_id = asyncio.run(_latest_run(db, ref, item))
        if run_id is not None:
            _err().print(f"Run {run_id} stopped; sources are in their safe state. "
                         f"Continue with: daq run --resume {run_id} --db {db}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        _print_json({"order": ref, "item": item, "run_id": outcome.run_id, "status": outcome.status,
                     "results": len(outcome.results)})
    else:
        _out().print(results_table(outcome.results))
        _say(f"run {outcome.run_id} {outcome.status}, linked to {ref} item {item}")
    if outcome.status != "completed":
        why = outcome.extra.get("message", "")
        _err().print(f"Run {outcome.run_id} {outcome.status}{': ' + str(why) if why else ''}. "
                     f"Continue with: daq run --resume {outcome.run_id} --db {db}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


async def _latest_run(db_path: str, ref: str, position: int) -> int | None:
    from sqlalchemy import select

    from results.records.models import ItemRunRow, OrderItemRow, OrderRow

    database = await _open(db_path)
    try:
        async with database.transaction() as s:
            where = OrderRow.id == int(ref) if ref.isdigit() else \
                (OrderRow.order_number == ref) | (OrderRow.request_number == ref)
            return await s.scalar(select(ItemRunRow.run_id).join(OrderItemRow, OrderItemRow.id == ItemRunRow.item_id)
                                  .join(OrderRow, OrderRow.id == OrderItemRow.order_id)
                                  .where(where, OrderItemRow.position == position)
                                  .order_by(ItemRunRow.id.desc()).limit(1))
    finally:
        await database.close()


# -- reports, complaints, rules ----------------------------------------------------------------------
def _year_month(text: str) -> tuple[int, int]:
    year, dash, month = text.partition("-")
    if not (dash and year.isdigit() and month.isdigit() and 1 <= int(month) <= 12):
        raise ConfigError("--month", text, "expected YYYY-MM", "e.g. --month 2026-12")
    return int(year), int(month)


@report_app.command("turnaround")
def report_turnaround(month: Annotated[str, typer.Option("--month", help="YYYY-MM.")], user: UserOption,
                      db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Turnaround against the service promise, per service type, for one month (staff)."""
    from results.records.views import turnaround

    try:
        year, mon = _year_month(month)
    except ConfigError as exc:
        raise _fail(exc) from None

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> Any:
        _require_staff(u, "the turnaround report")
        return await turnaround(wf, year, mon)

    report = _with_user(db, user, work)
    if as_json:
        _print_json(report.rows())
    else:
        _say(report.render_text())


@report_app.command("survey")
def report_survey(year: Annotated[int, typer.Option("--year")], user: UserOption,
                  month: Annotated[int | None, typer.Option("--month", help="1..12; the whole year if left out.")]
                  = None,
                  service: Annotated[str | None, typer.Option("--service", help="insitu or exsitu; both if left out.")]
                  = None,
                  db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """The satisfaction index (IKM) of a year or a month, per service or for all (staff)."""
    from results.records.views import survey_results

    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> Any:
        _require_staff(u, "the survey report")
        if service is not None and service not in ("insitu", "exsitu"):
            raise ConfigError("--service", "service", f"unknown service {service!r}", "insitu or exsitu")
        return await survey_results(wf, year=year, service=service, month=month)

    index = _with_user(db, user, work)
    if as_json:
        if not index.responses:
            _print_json({"year": year, "month": month, "service": service, "responses": 0})
            return
        _print_json({"year": year, "month": month, "service": service, "responses": index.responses,
                     "index": str(index.display), "grade": index.grade.letter,
                     "elements": [{"code": e.code, "name": e.name, "mean": float(e.mean), "score": str(e.display),
                                   "grade": e.grade.letter} for e in index.elements],
                     "lowest": [e.code for e in index.lowest()],
                     "action_plan": [e.code for e in index.action_plan_elements]})
    elif not index.responses:
        _say("no survey responses in this period")
    else:
        _say(index.render_text())


@complaint_app.command("raise")
def complaint_raise(text: Annotated[str, typer.Option("--text", help="What went wrong.")], user: UserOption,
                    order: Annotated[str | None, typer.Option("--order", help="The order it is about.")] = None,
                    db: DbOption = DEFAULT_DB) -> None:
    """A customer raises a complaint."""
    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> int:
        async with database.transaction() as s:
            return (await raise_complaint(s, u, text, order)).id

    cid = _with_user(db, user, work)
    _say(f"complaint {cid} raised")


@complaint_app.command("answer")
def complaint_answer(complaint_id: Annotated[int, typer.Argument(help="The complaint's number.")],
                     response: Annotated[str, typer.Option("--response")], user: UserOption,
                     db: DbOption = DEFAULT_DB) -> None:
    """Customer service answers a complaint."""
    async def work(database: RecordsDB, wf: Workflow, u: UserRow) -> None:
        async with database.transaction() as s:
            await answer_complaint(s, u, complaint_id, response)

    _with_user(db, user, work)
    _say(f"complaint {complaint_id} answered")


def rules_text() -> str:
    lines = ["Life cycle of an order (step: roles; from states -> to state; for which orders)"]
    for t in TRANSITIONS:
        sources = ", ".join(sorted(s.value for s in t.sources))
        target = t.target.value if t.target is not None else "(stays)"
        kinds = "/".join(sorted(t.customers)) + " " + "/".join(sorted(t.services))
        how = " [via daq orders run]" if t.action == "start_calibration" else ""
        lines.append(f"  {t.action.replace('_', '-')}{how}: {', '.join(sorted(r.value for r in t.roles))}; "
                     f"{sources} -> {target}; {kinds}{'; needs a reason' if t.needs_reason else ''}")
        lines.append(f"      {t.what}")
    lines.append("Rules")
    lines += [f"  {name}: {text}" for name, text in RULES.items()]
    return "\n".join(lines)


@orders_app.command("rules")
def rules() -> None:
    """The life cycle (each step: roles, from -> to, which orders) and the named rules."""
    _say(rules_text())


# -- the audit trail ----------------------------------------------------------------------------------
@audit_app.callback()
def audit_group() -> None:
    """The audit trail of the records (a group even with one command, so `audit verify` reads the same anywhere)."""


@audit_app.command("verify")
def audit_verify(db: DbOption = DEFAULT_DB) -> None:
    """Walk the audit chain and hold every audited row against it; exit 1 on any problem."""
    async def go() -> audit.AuditReport:
        database = await _open(db)
        try:
            async with database.transaction() as s:
                return await audit.verify(s)
        finally:
            await database.close()

    report = _run(go)
    if report.ok:
        _say(f"audit trail intact: {report.entries} entries, head {report.head_hash}")
        return
    err = _err()
    for problem in report.problems:
        err.print(f"[bold red]problem:[/] {escape(problem)}", soft_wrap=True)
    err.print(f"audit trail NOT intact: {len(report.problems)} problem(s) in {report.entries} entries",
              soft_wrap=True)
    raise typer.Exit(1)
