"""The `daq` command line: `demo`, `run`, `sim`.

User mistakes (a bad file, field, unit or range) print one clear line naming the file, the
field and the fix, and exit with status 2; nothing is started and nothing is written.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from daq.bench import load_bench
from daq.errors import ConfigError, DaqError
from procedures.loader import load_procedure
from results.store import RunStore
from runner.certificate_cli import certificate_app
from runner.orders_cli import audit_app, orders_app
from runner.register_cli import register_app
from runner.report import results_table, write_report
from runner.session import SessionOptions, SessionOutcome, packaged, run_session
from runner.uncertainty_cli import uncertainty_app

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Instrument data acquisition and calibration runner.")
app.add_typer(uncertainty_app, name="uncertainty",
              help="Measurement uncertainty: GUM and Monte Carlo models, fits, comparisons.")
app.add_typer(orders_app, name="orders", help="Calibration orders: request to signed certificate and receipt.")
app.add_typer(register_app, name="register", help="The equipment register: standards, certificates, status.")
app.add_typer(certificate_app, name="certificate",
              help="Calibration certificates: verify a PDF or DCC file, preview a draft, the internal report.")
app.add_typer(audit_app, name="audit", help="The audit trail: verify that no record was edited or deleted.")
err = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 140)

DEMO_SCALE = 8.0


def _fail(exc: Exception, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def true_errors(outcome: SessionOutcome) -> dict[tuple[int, str], float] | None:
    """The simulator's own truth for each result (only a simulated world knows it)."""
    truth = outcome.extra.get("truth")
    if truth is None:
        return None
    found = {}
    for r in outcome.results:
        key = (r["point_index"], r.get("channel", ""))
        value = truth.truth_for(*key)
        if value is not None:
            found[key] = value
    return found or None


def procedure_summary(outcome: SessionOutcome) -> list[str] | None:
    """What the procedure says about its results as a whole (e.g. a gauge's hysteresis), if anything."""
    summarise = getattr(outcome.procedure, "summary", None)
    return summarise(outcome.results) if callable(summarise) else None


def summary(outcome: SessionOutcome, report: Path | None) -> dict[str, Any]:
    truth = true_errors(outcome) or {}
    ranges = {p.index: p.range_ for p in outcome.procedure.points} if outcome.procedure else {}
    points = []
    for r in outcome.results:
        points.append({
            "index": r["point_index"], "setpoint": r["nominal"], "unit": r["unit"],
            "range": ranges.get(r["point_index"]), "channel": r.get("channel", ""),
            "ref_mean": r["ref_mean"], "uut_mean": r["uut_mean"], "error": r["error"], "correction": r["correction"],
            "u_c": r["u_c"], "U": r["U"], "k": r["k"], "dof": r["dof_eff"], "tolerance": r["tolerance"],
            "decision": r["decision"]["outcome"], "rule": r["decision"]["rule"],
            "true_error": truth.get((r["point_index"], r.get("channel", ""))), "attempt": r["attempt"],
        })
    return _json_safe({"run_id": outcome.run_id, "status": outcome.status, "time": outcome.clock_note,
                       "report": str(report) if report else None, "points": points})


async def _finish(outcome: SessionOutcome, db: str, report: Path | None, as_json: bool) -> int:
    if outcome.procedure is not None:
        labels = {p.index: p.label for p in outcome.procedure.points}
        for r in outcome.results:
            r.setdefault("label", labels.get(r["point_index"], ""))
    if report is not None:
        store = await RunStore.open(db)
        try:
            attempts = await store.attempts(outcome.run_id)
            events = await store.events(outcome.run_id)
        finally:
            await store.close()
        assert outcome.procedure is not None and outcome.bench is not None
        write_report(report, {"id": outcome.run_id, "procedure": outcome.procedure.name, "bench": outcome.bench.name,
                              "status": outcome.status, "clock": outcome.clock_note},
                     outcome.results, attempts, events, true_errors(outcome), procedure_summary(outcome))
    worksheet = await _write_worksheet(db, outcome.run_id, report.with_suffix(".pdf")) \
        if report is not None and outcome.status == "completed" else None
    if as_json:
        print(json.dumps(summary(outcome, report) | ({"worksheet": str(worksheet)} if worksheet else {}), indent=2))
    else:
        out.print(results_table(outcome.results, true_errors(outcome)))
        if report is not None:
            out.print(f"Report written to [bold]{report}[/]"
                      + (f"; the internal calibration report (worksheet, PDF) to [bold]{worksheet}[/]"
                         if worksheet else ""))
    if outcome.status != "completed":
        why = outcome.extra.get("message", "")
        err.print(f"[bold yellow]Run {outcome.run_id} {outcome.status}[/]{': ' + why if why else ''}",
                  highlight=False, soft_wrap=True)
        err.print("Sources are in their safe state. "
                  f"Continue with: daq run --resume {outcome.run_id} --db {db}")
        return 1
    return 0


async def _write_worksheet(db: str, run_id: int, path: Path) -> Path | None:
    """The reviewer's worksheet of the run as PDF; a missing PDF renderer is a note, not a failed run."""
    from results.certificates.pdf import html_to_pdf
    from results.certificates.worksheet import load_worksheet, worksheet_html

    store = await RunStore.open(db)
    try:
        async with store.sessions() as session:
            data = await load_worksheet(session, run_id)
    finally:
        await store.close()
    try:
        content = html_to_pdf(worksheet_html(data))
    except ConfigError as exc:
        err.print(f"[yellow]note:[/] no PDF worksheet: {exc}", highlight=False, soft_wrap=True)
        return None
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    partial.replace(path)
    return path


def _execute(coro: Any, started: dict[str, Any]) -> SessionOutcome:
    """Run a session; a user mistake or an instrument problem is one clear line, never a traceback.

    `started` is filled with the run id and database once the run exists, so a run stopped by
    an instrument problem ends with the command that continues it."""
    try:
        return asyncio.run(coro)
    except DaqError as exc:
        if not isinstance(exc, ConfigError) and "run_id" in started:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            err.print(f"[bold yellow]Run {started['run_id']} stopped[/]; sources are in their safe state. "
                      f"Continue with: daq run --resume {started['run_id']} --db {started['db']}")
            raise typer.Exit(1) from None
        _fail(exc, 2 if isinstance(exc, ConfigError) else 1)
        raise AssertionError("unreachable") from exc


@app.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of the table.")] = False,
    scale: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = DEMO_SCALE,
    seed: Annotated[int | None, typer.Option(help="Seed of the simulated world (default: the bench's).")] = None,
    db: Annotated[str, typer.Option(help="SQLite file (or database URL) for the run.")] = "daq-demo.sqlite",
    report: Annotated[Path, typer.Option(help="Where to write the readable report.")] = Path("daq-demo-report.md"),
    mqtt: Annotated[str | None, typer.Option(help="Publish live events to this broker, e.g. mqtt://127.0.0.1:1883")]
    = None,
    live: Annotated[bool, typer.Option(help="Show live progress.")] = True,
) -> None:
    """Calibrate a simulated 34465A against a simulated 5522A, end to end, in scaled time."""
    bench = load_bench(packaged("demo-bench.toml"))
    procedure = load_procedure(packaged("dcv-34465a.toml"))
    err.print(f"[bold]daq demo[/]: {procedure.name} on simulated instruments over real TCP sockets.\n"
              f"The simulated world runs in [bold]scaled time, x{scale:g}[/] (about a minute of wall time); "
              f"results go to {db}.")
    opts = SessionOptions(db=db, simulate=True, scale=scale, seed=seed, mqtt_url=mqtt, assume_yes=True,
                          live=live and not as_json)

    started: dict[str, Any] = {"db": db}

    def created(run_id: int) -> None:
        started["run_id"] = run_id
        err.print(f"Run {run_id} started. If it is interrupted, finish it with: daq run --resume {run_id} --db {db}")

    outcome = _execute(run_session(bench, procedure, opts, on_created=created), started)
    raise typer.Exit(asyncio.run(_finish(outcome, db, report, as_json)))


@app.command()
def run(
    bench: Annotated[Path | None, typer.Option(help="Bench file (TOML).")] = None,
    procedure: Annotated[Path | None, typer.Option(help="Procedure file (TOML).")] = None,
    resume: Annotated[int | None, typer.Option(help="Continue this run at its first incomplete point.")] = None,
    db: Annotated[str, typer.Option(help="SQLite file (or database URL).")] = "daq.sqlite",
    simulate: Annotated[bool, typer.Option(help="Start the bench's simulators in this process.")] = False,
    scale: Annotated[float | None, typer.Option(
        help="Scaled time factor, shared with --simulate or with `daq sim --scale` (never with real instruments).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the simulated world.")] = None,
    mqtt: Annotated[str | None, typer.Option(help="MQTT broker URL for live events.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Answer yes to operator prompts (unattended).")] = False,
    report: Annotated[Path | None, typer.Option(help="Write a readable report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    live: Annotated[bool, typer.Option(help="Show live progress.")] = True,
) -> None:
    """Run a procedure over a bench, or resume an interrupted run."""
    if resume is None and (bench is None or procedure is None):
        _fail(ConfigError("(command line)", "--bench/--procedure", "both are needed for a new run",
                          "give --bench FILE --procedure FILE, or --resume RUN_ID"))
    try:
        b = load_bench(bench) if resume is None and bench else None
        p = load_procedure(procedure) if resume is None and procedure else None
    except ConfigError as exc:
        _fail(exc)
    if scale is not None and resume is None and not simulate:
        err.print(f"[yellow]note:[/] time runs x{scale:g}; this is only right against simulators started "
                  f"with the same factor (daq sim --scale {scale:g}), never against real instruments.")
    opts = SessionOptions(db=db, simulate=simulate, scale=scale, seed=seed, mqtt_url=mqtt, assume_yes=yes,
                          live=live and not as_json)

    started: dict[str, Any] = {"db": db}

    def created(run_id: int) -> None:
        started["run_id"] = run_id
        err.print(f"Run {run_id} {'resumed' if resume else 'started'}. "
                  f"If it is interrupted: daq run --resume {run_id} --db {db}")

    outcome = _execute(run_session(b, p, opts, resume=resume, on_created=created), started)
    raise typer.Exit(asyncio.run(_finish(outcome, db, report, as_json)))


@app.command()
def sim(
    bench: Annotated[Path, typer.Option(help="Bench file (TOML) to simulate.")],
    scale: Annotated[float, typer.Option(help="Scaled time factor shared with the runner.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Seed of the simulated world.")] = None,
) -> None:
    """Serve a bench's instruments as simulators on real TCP sockets until interrupted."""
    from daq.clock import ScaledClock
    from simulators import start_bench

    try:
        b = load_bench(bench)
    except ConfigError as exc:
        _fail(exc)

    async def serve() -> None:
        from runner.sim_console import USAGE, show_manual_indications, take_typed_tasks

        clock = ScaledClock(scale)
        running = await start_bench(b, clock, seed=seed)
        helpers = [asyncio.get_running_loop().create_task(show_manual_indications(running.world, b, clock,
                                                                                   sys.stderr))]
        if any(hasattr(m, "perform") for m in running.world.instruments.values()):
            helpers.append(asyncio.get_running_loop().create_task(take_typed_tasks(running.world, sys.stderr)))
            err.print(f"The simulated operator's hands: type {USAGE}")
        try:
            for name, res in running.resources.items():
                print(f"{name} {res}", flush=True)
            err.print(f"Simulating {b.name} in time x{scale:g}; Ctrl+C to stop.")
            await asyncio.Event().wait()
        finally:
            for task in helpers:
                task.cancel()
            await running.close()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    except DaqError as exc:
        _fail(exc)


@app.command()
def validate(
    report: Annotated[Path, typer.Option(help="Where to write the validation report (Markdown).")]
    = Path("validation-report.md"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON record instead of a summary.")] = False,
) -> None:
    """Run every shipped reference example (GUM H.1-H.3, JCGM 101) and write the signed-off validation report."""
    from results.validation import run_validation, validation_report

    checks = run_validation()
    text, record = validation_report(checks)
    tmp = report.with_name(report.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(report)
    report.with_suffix(".json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    if as_json:
        print(json.dumps(record, indent=2))
    else:
        failed = [c for c in checks if not c.passed]
        out.print(f"{len(checks) - len(failed)} of {len(checks)} checks agree with the published values; "
                  f"report written to [bold]{report}[/] (sha256 {record['sha256'][:16]}...)")
        for c in failed:
            err.print(f"[bold red]FAIL[/] {c.example}: {c.quantity} published {c.published}, "
                      f"computed {c.computed:.10g}")
    raise typer.Exit(0 if record["passed"] else 1)


@app.command()
def serve(
    db: Annotated[str, typer.Option(help="The records database (SQLite file or PostgreSQL URL).")] = "daq-lab.sqlite",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the records as a JSON REST API (OpenAPI at /docs and /openapi.json)."""
    import uvicorn

    from runner.web.api import create_app

    uvicorn.run(create_app(db), host=host, port=port)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
