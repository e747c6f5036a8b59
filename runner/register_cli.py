"""`daq register ...`: the equipment register of reference and check standards.

`import` adds a register file (all of it or, on any mistake, nothing), `list` shows each standard's
current certificate and what is due, `status` takes a standard out of service or back. Changes
need the qa, technical_manager or admin role; the password comes from DAQ_PASSWORD or a prompt.
A user mistake or a refusal prints one line `error: ...` and exits with status 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from daq.errors import ConfigError, DaqError
from results.records.accounts import authenticate
from results.records.database import RecordsDB
from results.records.register import (
    STATUSES,
    import_register,
    load_register,
    register_listing,
    require_register_role,
    set_status,
)

register_app = typer.Typer(add_completion=False, no_args_is_help=True,
                           help="Equipment register: reference and check standards, certificates, status.")

EXIT_USER_ERROR = 2
T = TypeVar("T")

DbOption = Annotated[str, typer.Option("--db", help="Records database (SQLite path or PostgreSQL URL).")]
UserOption = Annotated[str, typer.Option("--user", help="Your username (role qa, technical_manager or admin).")]


def _fail(message: object) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(str(message))}", soft_wrap=True)
    return typer.Exit(EXIT_USER_ERROR)


def _password() -> str:
    return os.environ.get("DAQ_PASSWORD") or typer.prompt("Password", hide_input=True)


def _in_transaction(db_path: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """One transaction: the work and its audit entries are committed together or not at all."""
    async def go() -> T:
        db = await RecordsDB.open(db_path)
        try:
            async with db.transaction() as s:
                return await work(s)
        finally:
            await db.close()

    try:
        return asyncio.run(go())
    except DaqError as exc:
        raise _fail(exc) from None


def _as_writer(username: str, work: Callable[[AsyncSession], Awaitable[T]]) -> Callable[[AsyncSession], Awaitable[T]]:
    password = _password()

    async def checked(s: AsyncSession) -> T:
        user = await authenticate(s, username, password)
        require_register_role(user)
        return await work(s)

    return checked


@register_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="Register TOML file.")],
    db: DbOption,
    user: UserOption,
) -> None:
    """Add the standards of a register file with their certificates."""
    try:
        register = load_register(file)
    except ConfigError as exc:
        raise _fail(exc) from None
    rows = _in_transaction(db, _as_writer(user, lambda s: import_register(s, register, user)))
    typer.echo(f"registered {len(rows)} standard(s) from {file}")


@register_app.command("list")
def list_register(
    db: DbOption,
    on: Annotated[str | None, typer.Option("--on", help="Date to judge due dates on (YYYY-MM-DD; default today).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Each standard with its current certificate, due date, days left and what needs attention."""
    try:
        day = date.fromisoformat(on) if on else date.today()
    except ValueError:
        raise _fail(ConfigError("(command line)", "--on", f"not a date: {on!r}", "write e.g. --on 2026-11-21")) \
            from None
    items = _in_transaction(db, lambda s: register_listing(s, day))
    if as_json:
        print(json.dumps(items, indent=2))
        return
    Console(width=None if sys.stdout.isatty() else 140).print(_table(items, day))


def _table(items: list[dict[str, Any]], day: date) -> Table:
    table = Table(title=f"Equipment register on {day}")
    for column in ("serial", "make", "model", "category", "status", "certificate", "due on", "days left", "flags"):
        table.add_column(column)
    for item in items:
        table.add_row(item["serial"], item["make"], item["model"], item["category"], item["status"],
                      item["certificate"] or "-", item["due_on"] or "-",
                      "-" if item["days_left"] is None else str(item["days_left"]), ", ".join(item["flags"]))
    return table


@register_app.command("status")
def status(
    serial: Annotated[str, typer.Argument(help="The standard's serial number.")],
    new_status: Annotated[str, typer.Argument(metavar="STATUS", help=" | ".join(STATUSES))],
    note: Annotated[str, typer.Option("--note", help="Why (damaged, failed its check, recalibrated...).")],
    db: DbOption,
    user: UserOption,
) -> None:
    """Put a standard in service, out of service or retire it."""
    row = _in_transaction(db, _as_writer(user, lambda s: set_status(s, serial, new_status, note, user)))
    typer.echo(f"{row.serial}: {row.status}")
