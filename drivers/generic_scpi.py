r"""A generic SCPI (or any line-command) instrument described by a TOML map: a lab adds one without Python.

In a bench file: `driver = "scpi:maps/my_dmm.toml"` (a path relative to the bench file). The
map says which commands to send; the driver adds the sequencing, the error checks, the
parsing and the limits. A map with `[configure.*]` and `[read]` makes a `Meter`; a map with
`[source]` makes a `Source` (both are allowed).

```toml
[instrument]
name = "Keysight 34465A"         # optional, for messages (default: the file name)
read_termination = "\n"          # optional, default "\n"
write_termination = "\n"         # optional, default "\n"

[identify]
query = "*IDN?"                  # the identification query, sent on connect
serial_field = 2                 # optional: 0-based comma field holding the serial number,
                                 #   checked against the bench file's `serial`
expect = "34465A"                # optional regex the reply must contain (right instrument?)
after = ["*CLS"]                 # optional commands sent after identification

[errors]
query = "SYST:ERR?"              # one error per query
no_error = '^\+?0,'              # regex matching the "no error" reply
max_reads = 32                   # optional bound on draining the queue

[meter]                          # optional: what Meter.resolution and range checks use
ranges = [0.1, 1, 10, 100, 1000] # the ranges configure() accepts (None: autorange)
resolution = 1e-7                # display resolution as a fraction of range

[configure.dcv]                  # one table per function name configure() accepts
commands = ["CONF:VOLT:DC {range}", "VOLT:DC:NPLC {nplc}"]
auto_range = "AUTO"              # what {range} is when configure(range_=None)
check_errors = true              # optional (default true): query the error queue afterwards
count_after = 1                  # optional: the sample count the instrument holds afterwards

[read]
count_command = "SAMP:COUN {count}"  # optional: sent when the wanted count differs from the held one;
                                      #   without it the query is repeated once per reading
query = "READ?"
parse = "list"                   # "float" (one number), "list" (comma-separated), "regex"
pattern = '...'                  # parse = "regex": one capture group per number (all matches taken)
overload = 9.9e37                # optional: |value| >= overload raises MeterOverload

[source]
max_output = 1020.0
unit = "V"                       # the unit {value} is sent in
units = { V = 1.0, mV = 1e-3, uV = 1e-6 }   # units set_output accepts, as factors to `unit`
set_output = ["OUT {value} V"]
check_errors = true              # optional (default true) after set_output
operate = ["OPER"]
operate_check = { query = "OPER?", expect = "1" }   # optional; expect is a regex (full match)
standby = ["STBY"]
safe_state = ["STBY", "OUT 0 V"] # required: what the runner sends on every error or abort path
output_query = "OUT?"            # optional: reply "value[,unit]"
settled = { query = "ISR?", mask = 4097 }  # optional: all mask bits set = settled; or expect = regex
```

Placeholders: `{range}`, `{nplc}` in configure commands, `{count}` in `count_command`, `{value}`
in `set_output`; a command whose placeholder has no value (configure(..., nplc=None)) is
skipped. Numbers are written with `%g` (`{value}` with 9 significant digits). Every mistake is
a `ConfigError` naming the file, the field and the fix, raised when the map is loaded.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daq.errors import ConfigError, InstrumentError
from daq.transports.base import Transport
from daq.transports.resource import open_transport
from drivers.capabilities import MeterOverload
from drivers.scpi import ScpiInstrument

SCPI_MAP_PREFIX = "scpi:"
PARSERS = ("float", "list", "regex")

_TOP = ("instrument", "identify", "errors", "meter", "configure", "read", "source")
_FIELDS: dict[str, tuple[str, ...]] = {
    "instrument": ("name", "read_termination", "write_termination"),
    "identify": ("query", "serial_field", "expect", "after"),
    "errors": ("query", "no_error", "max_reads"),
    "meter": ("ranges", "resolution"),
    "configure.*": ("commands", "auto_range", "check_errors", "count_after"),
    "read": ("count_command", "query", "parse", "pattern", "overload"),
    "source": ("max_output", "unit", "units", "set_output", "check_errors", "operate", "operate_check",
               "standby", "safe_state", "output_query", "settled"),
}


@dataclass(frozen=True)
class FunctionMap:
    commands: tuple[str, ...]
    auto_range: str = "AUTO"
    check_errors: bool = True
    count_after: int | None = None


@dataclass(frozen=True)
class ReadMap:
    query: str
    parse: str = "list"
    pattern: re.Pattern[str] | None = None
    count_command: str | None = None
    overload: float | None = None


@dataclass(frozen=True)
class Check:
    """A query and what its reply must be: a regex (full match) or all bits of an integer mask."""

    query: str
    expect: re.Pattern[str] | None = None
    mask: int | None = None

    def passes(self, reply: str) -> bool:
        if self.mask is not None:
            try:
                return int(float(reply.strip())) & self.mask == self.mask
            except ValueError:
                return False
        assert self.expect is not None
        return self.expect.fullmatch(reply.strip()) is not None


@dataclass(frozen=True)
class SourceMap:
    max_output: float
    unit: str
    units: dict[str, float]
    set_output: tuple[str, ...]
    safe_state: tuple[str, ...]
    check_errors: bool = True
    operate: tuple[str, ...] = ()
    operate_check: Check | None = None
    standby: tuple[str, ...] = ()
    output_query: str | None = None
    settled: Check | None = None


@dataclass(frozen=True)
class ScpiMap:
    source: str
    name: str
    read_termination: str
    write_termination: str
    identify_query: str
    serial_field: int | None
    identify_expect: re.Pattern[str] | None
    after_identify: tuple[str, ...]
    error_query: str
    no_error: re.Pattern[str]
    max_error_reads: int
    ranges: tuple[float, ...] = ()
    resolution: float = 0.0
    functions: dict[str, FunctionMap] = field(default_factory=dict)
    read: ReadMap | None = None
    source_map: SourceMap | None = None


# --- loading ----------------------------------------------------------------------------


def load_scpi_map(path: str | Path) -> ScpiMap:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(str(p), "(file)", "no such SCPI map file",
                          "give the path of a SCPI map TOML file (relative to the bench file)") from exc
    except OSError as exc:
        raise ConfigError(str(p), "(file)", f"cannot read: {exc.strerror}", "check the path and permissions") from exc
    return parse_scpi_map(text, source=str(p))


class _Reader:
    """Typed access to one map file's values, every mistake a ConfigError naming the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(self.source, where, problem, fix)

    def table(self, data: dict[str, Any], key: str, known: tuple[str, ...], *, required: bool = False,
              where: str | None = None) -> dict[str, Any] | None:
        where = where or key
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(where, "missing", f"add a [{where}] table")
            return None
        if not isinstance(value, dict):
            raise self.fail(where, "must be a table", f"write [{where}]")
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", "unknown field", f"use one of {', '.join(known)}")
        return value

    def string(self, table: dict[str, Any], key: str, where: str, fix: str, *, default: str | None = None,
               allow_empty: bool = False) -> str:
        if key not in table:
            if default is not None:
                return default
            raise self.fail(f"{where}.{key}", "missing", fix)
        value = table[key]
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise self.fail(f"{where}.{key}", f"expected a non-empty string, got {value!r}", fix)
        return value

    def commands(self, table: dict[str, Any], key: str, where: str, placeholders: tuple[str, ...], fix: str,
                 *, required: bool = False) -> tuple[str, ...]:
        if key not in table:
            if required:
                raise self.fail(f"{where}.{key}", "missing", fix)
            return ()
        value = table[key]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(c, str) and c.strip() for c in value):
            raise self.fail(f"{where}.{key}", f"expected a list of command strings, got {value!r}", fix)
        if required and not value:
            raise self.fail(f"{where}.{key}", "must name at least one command", fix)
        for i, command in enumerate(value):
            self.placeholders(command, f"{where}.{key}[{i}]", placeholders)
        return tuple(value)

    def placeholders(self, command: str, where: str, allowed: tuple[str, ...]) -> None:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(command) if name is not None]
        except ValueError as exc:
            raise self.fail(where, f"bad placeholder in {command!r}: {exc}",
                            "write placeholders as {name}; a literal brace as {{ or }}") from exc
        for name in names:
            if name not in allowed:
                hint = f"use {', '.join('{' + a + '}' for a in allowed)}" if allowed else "this command takes none"
                raise self.fail(where, f"unknown placeholder {{{name}}} in {command!r}", hint)

    def number(self, table: dict[str, Any], key: str, where: str, fix: str, *, positive: bool = False) -> float:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where}.{key}", f"expected a number, got {value!r}", fix)
        if positive and value <= 0:
            raise self.fail(f"{where}.{key}", f"must be > 0, got {value!r}", fix)
        return float(value)

    def integer(self, table: dict[str, Any], key: str, where: str, fix: str, *, minimum: int = 0) -> int:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"{where}.{key}", f"expected an integer >= {minimum}, got {value!r}", fix)
        return value

    def boolean(self, table: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"expected true or false, got {value!r}", f"write {key} = true")
        return value

    def regex(self, table: dict[str, Any], key: str, where: str, fix: str, *, groups: int | None = None,
              default: str | None = None) -> re.Pattern[str]:
        text = self.string(table, key, where, fix, default=default)
        try:
            pattern = re.compile(text)
        except re.error as exc:
            raise self.fail(f"{where}.{key}", f"not a regular expression: {exc}", fix) from exc
        if groups is not None and pattern.groups != groups:
            raise self.fail(f"{where}.{key}", f"needs exactly {groups} capture group, has {pattern.groups}", fix)
        return pattern

    def check(self, table: dict[str, Any], key: str, where: str) -> Check | None:
        fix = f'write {key} = {{ query = "...?", expect = "1" }} or {{ query = "...?", mask = 4096 }}'
        sub = self.table(table, key, ("query", "expect", "mask"), where=f"{where}.{key}")
        if sub is None:
            return None
        here = f"{where}.{key}"
        query = self.string(sub, "query", here, fix)
        if ("expect" in sub) == ("mask" in sub):
            raise self.fail(here, "give exactly one of expect (a regex) or mask (an integer)", fix)
        if "mask" in sub:
            return Check(query, mask=self.integer(sub, "mask", here, fix, minimum=1))
        return Check(query, expect=self.regex(sub, "expect", here, fix))


def parse_scpi_map(text: str, *, source: str = "<map>") -> ScpiMap:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    r = _Reader(source)
    unknown = sorted(set(data) - set(_TOP))
    if unknown:
        raise r.fail(unknown[0], "unknown table", f"use {', '.join('[' + t + ']' for t in _TOP)}")

    inst = r.table(data, "instrument", _FIELDS["instrument"]) or {}
    name = r.string(inst, "name", "instrument", 'write name = "My DMM"', default=Path(source).stem)
    terminations = {}
    for key in ("read_termination", "write_termination"):
        value = inst.get(key, "\n")
        if not isinstance(value, str) or not value:
            raise r.fail(f"instrument.{key}", f"expected a non-empty string, got {value!r}",
                         f'write {key} = "\\n" (or "\\r\\n")')
        terminations[key] = value

    ident = r.table(data, "identify", _FIELDS["identify"], required=True) or {}
    id_query = r.string(ident, "query", "identify", 'write query = "*IDN?"')
    serial_field = None
    if "serial_field" in ident:
        serial_field = r.integer(ident, "serial_field", "identify",
                                 "write serial_field = 2 (0-based comma field of the reply)")
    expect = r.regex(ident, "expect", "identify", 'write expect = "34465A"') if "expect" in ident else None
    after = r.commands(ident, "after", "identify", (), 'write after = ["*CLS"]')

    errs = r.table(data, "errors", _FIELDS["errors"], required=True) or {}
    error_query = r.string(errs, "query", "errors", 'write query = "SYST:ERR?"')
    no_error = r.regex(errs, "no_error", "errors", "write no_error = '^\\+?0,' (a regex matching the no-error reply)")
    max_reads = 32
    if "max_reads" in errs:
        max_reads = r.integer(errs, "max_reads", "errors", "write max_reads = 32", minimum=1)

    meter = r.table(data, "meter", _FIELDS["meter"]) or {}
    ranges: tuple[float, ...] = ()
    if "ranges" in meter:
        raw = meter["ranges"]
        if not isinstance(raw, list) or not raw or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in raw):
            raise r.fail("meter.ranges", f"expected a list of positive numbers, got {raw!r}",
                         "write ranges = [0.1, 1, 10, 100, 1000]")
        ranges = tuple(sorted(float(v) for v in raw))
    resolution = 0.0
    if "resolution" in meter:
        resolution = r.number(meter, "resolution", "meter", "write resolution = 1e-7 (fraction of range)",
                              positive=True)

    functions: dict[str, FunctionMap] = {}
    configure = data.get("configure")
    if configure is not None:
        if not isinstance(configure, dict) or not configure:
            raise r.fail("configure", "must hold one table per function", 'write [configure.dcv] commands = [...]')
        for fname in configure:
            where = f"configure.{fname}"
            fn = r.table(configure, fname, _FIELDS["configure.*"], where=where) or {}
            commands = r.commands(fn, "commands", where, ("range", "nplc"),
                                  'write commands = ["CONF:VOLT:DC {range}", "VOLT:DC:NPLC {nplc}"]', required=True)
            auto = r.string(fn, "auto_range", where, 'write auto_range = "AUTO"', default="AUTO")
            count_after = None
            if "count_after" in fn:
                count_after = r.integer(fn, "count_after", where, "write count_after = 1", minimum=1)
            functions[fname] = FunctionMap(commands, auto, r.boolean(fn, "check_errors", where, True), count_after)

    read = None
    rd = r.table(data, "read", _FIELDS["read"])
    if rd is not None:
        query = r.string(rd, "query", "read", 'write query = "READ?"')
        r.placeholders(query, "read.query", ())
        parse = r.string(rd, "parse", "read", 'write parse = "list"', default="list")
        if parse not in PARSERS:
            raise r.fail("read.parse", f"unknown parser {parse!r}", f"use one of {', '.join(PARSERS)}")
        pattern = None
        if parse == "regex":
            pattern = r.regex(rd, "pattern", "read", "write pattern = 'V=([-+0-9.E]+)' (one capture group)",
                              groups=1)
        elif "pattern" in rd:
            raise r.fail("read.pattern", f'a pattern is only used with parse = "regex", not {parse!r}',
                         'remove pattern or write parse = "regex"')
        count_command = None
        if "count_command" in rd:
            count_command = r.string(rd, "count_command", "read", 'write count_command = "SAMP:COUN {count}"')
            r.placeholders(count_command, "read.count_command", ("count",))
        overload = None
        if "overload" in rd:
            overload = r.number(rd, "overload", "read", "write overload = 9.9e37", positive=True)
        read = ReadMap(query, parse, pattern, count_command, overload)
    if functions and read is None:
        raise r.fail("read", "missing: [configure.*] needs a [read] table", 'add [read] query = "READ?"')
    if read is not None and not functions:
        raise r.fail("configure", "missing: [read] needs at least one [configure.FUNCTION] table",
                     'add [configure.dcv] commands = ["CONF:VOLT:DC {range}"]')

    source_map = None
    src = r.table(data, "source", _FIELDS["source"])
    if src is not None:
        if "max_output" not in src:
            raise r.fail("source.max_output", "missing", "write max_output = 1020.0 (in the source's unit)")
        max_output = r.number(src, "max_output", "source", "write max_output = 1020.0", positive=True)
        unit = r.string(src, "unit", "source", 'write unit = "V"')
        units_raw = src.get("units", {unit: 1.0})
        if not isinstance(units_raw, dict) or not units_raw or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in units_raw.values()):
            raise r.fail("source.units", f"expected a table of unit = factor, got {units_raw!r}",
                         "write units = { V = 1.0, mV = 1e-3 }")
        safe = r.commands(src, "safe_state", "source", (),
                          'write safe_state = ["STBY", "OUT 0 V"] (output off, then zero)', required=True)
        source_map = SourceMap(
            max_output=max_output, unit=unit, units={k: float(v) for k, v in units_raw.items()},
            set_output=r.commands(src, "set_output", "source", ("value",), 'write set_output = ["OUT {value} V"]',
                                  required=True),
            safe_state=safe,
            check_errors=r.boolean(src, "check_errors", "source", True),
            operate=r.commands(src, "operate", "source", (), 'write operate = ["OPER"]'),
            operate_check=r.check(src, "operate_check", "source"),
            standby=r.commands(src, "standby", "source", (), 'write standby = ["STBY"]'),
            output_query=r.string(src, "output_query", "source", 'write output_query = "OUT?"')
            if "output_query" in src else None,
            settled=r.check(src, "settled", "source"),
        )
    if read is None and source_map is None:
        raise r.fail("(file)", "describes neither a meter nor a source",
                     "add [configure.FUNCTION] and [read] for a meter, or [source] for a source")
    return ScpiMap(
        source, name, terminations["read_termination"], terminations["write_termination"], id_query,
        serial_field, expect, after, error_query, no_error, max_reads, ranges, resolution, functions, read,
        source_map,
    )


# --- the driver -------------------------------------------------------------------------


def _g(value: float) -> str:
    return f"{value:g}"


class GenericScpiInstrument(ScpiInstrument):
    """A `Meter` and/or `Source` whose commands come from a `ScpiMap`."""

    def __init__(self, name: str, transport: Transport, scpi_map: ScpiMap, expected_serial: str | None = None) -> None:
        super().__init__(name, transport, expected_serial)
        self.map = scpi_map
        self.error_query = scpi_map.error_query
        self.ranges = scpi_map.ranges
        self.max_output = scpi_map.source_map.max_output if scpi_map.source_map else 0.0
        self.range_: float | None = None
        self.count: int | None = None

    def _missing(self, table: str) -> InstrumentError:
        return InstrumentError(f"{self.name}: {self.map.source} has no [{table}] table; add it to use this")

    async def _send(self, commands: tuple[str, ...], **values: str | None) -> None:
        for template in commands:
            names = {n for _, n, _, _ in string.Formatter().parse(template) if n}
            if any(values.get(n) is None for n in names):
                continue  # a placeholder with no value: the command is not needed
            await self.transport.write(template.format(**values))

    async def identify(self) -> str:
        self.idn = await self.transport.query(self.map.identify_query)
        return self.idn

    async def connect(self) -> None:
        idn = await self.identify()
        if self.map.identify_expect is not None and not self.map.identify_expect.search(idn):
            raise InstrumentError(f"{self.name}: {self.map.identify_query} answered {idn!r}, which does not match "
                                  f"{self.map.identify_expect.pattern!r} from {self.map.source}; is the right "
                                  f"instrument at {self.transport.resource}?")
        if self.expected_serial is not None and self.map.serial_field is not None:
            fields = [f.strip() for f in idn.split(",")]
            i = self.map.serial_field
            serial = fields[i] if len(fields) > i else ""
            if serial != self.expected_serial:
                raise InstrumentError(
                    f"{self.name}: serial number {serial!r} from {self.map.identify_query} does not match the bench "
                    f"file's {self.expected_serial!r} (reply was {idn!r}); is the right instrument at "
                    f"{self.transport.resource}?")
        await self._send(self.map.after_identify)

    async def errors(self) -> list[str]:
        found: list[str] = []
        for _ in range(self.map.max_error_reads):
            reply = await self.transport.query(self.map.error_query)
            if self.map.no_error.search(reply):
                break
            found.append(reply)
        return found

    # --- Meter ------------------------------------------------------------------------

    async def configure(self, function: str, range_: float | None, nplc: float | None = None) -> None:
        fn = self.map.functions.get(function)
        if fn is None:
            known = ", ".join(sorted(self.map.functions)) or "none"
            raise InstrumentError(f"{self.name}: function {function!r} is not in {self.map.source} "
                                  f"(it configures: {known})")
        if range_ is not None and self.ranges and not any(abs(range_) <= r * (1 + 1e-9) for r in self.ranges):
            raise InstrumentError(f"{self.name}: no range holds {range_:g} (ranges in {self.map.source}: "
                                  f"{', '.join(_g(r) for r in self.ranges)})")
        rng = fn.auto_range if range_ is None else _g(range_)
        await self._send(fn.commands, range=rng, nplc=None if nplc is None else _g(nplc))
        if fn.check_errors:
            await self.check_errors(f"configure {function} {rng}")
        self.range_ = range_
        self.count = fn.count_after

    def _parse(self, reply: str) -> list[float]:
        assert self.map.read is not None
        rd = self.map.read
        try:
            if rd.parse == "float":
                return [float(reply.strip())]
            if rd.parse == "list":
                return [float(v) for v in reply.split(",")]
            assert rd.pattern is not None
            found = rd.pattern.findall(reply)
            if not found:
                raise ValueError("no match")
            return [float(v) for v in found]
        except ValueError as exc:
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to {rd.query} "
                                  f"(parse = {rd.parse!r} in {self.map.source})") from exc

    async def read(self, count: int = 1) -> list[float]:
        rd = self.map.read
        if rd is None:
            raise self._missing("read")
        values: list[float] = []
        if rd.count_command is not None:
            if count != self.count:
                await self.transport.write(rd.count_command.format(count=count))
                self.count = count
            values = self._parse(await self.transport.query(rd.query))
        else:
            for _ in range(count):
                values.extend(self._parse(await self.transport.query(rd.query)))
        if len(values) != count:
            raise InstrumentError(f"{self.name}: asked for {count} readings, got {len(values)}")
        if rd.overload is not None and any(abs(v) >= rd.overload for v in values):
            raise MeterOverload(f"{self.name}: overload on the {self.range_} range")
        return values

    def resolution(self, range_: float) -> float:
        return range_ * self.map.resolution

    # --- Source -----------------------------------------------------------------------

    def _source(self) -> SourceMap:
        if self.map.source_map is None:
            raise self._missing("source")
        return self.map.source_map

    async def set_output(self, value: float, unit: str) -> None:
        src = self._source()
        if unit not in src.units:
            raise InstrumentError(f"{self.name}: output in {unit!r} not supported; {self.map.source} allows "
                                  f"{', '.join(src.units)}")
        scaled = value * src.units[unit]
        if abs(scaled) > src.max_output:
            raise InstrumentError(f"{self.name}: {scaled:g} {src.unit} is beyond the {src.max_output:g} {src.unit} "
                                  f"set in {self.map.source}")
        await self._send(src.set_output, value=f"{scaled:.9g}")
        if src.check_errors:
            await self.check_errors(f"set_output {scaled:.9g} {src.unit}")

    async def operate(self) -> None:
        src = self._source()
        await self._send(src.operate)
        check = src.operate_check
        if check is not None and not check.passes(await self.transport.query(check.query)):
            await self.check_errors("operate")
            raise InstrumentError(f"{self.name}: did not enter operate")

    async def standby(self) -> None:
        await self._send(self._source().standby)

    async def safe_state(self) -> None:
        """A meter-only map has nothing to make safe; the runner calls this on every instrument."""
        if self.map.source_map is None:
            return
        await self._send(self._source().safe_state)

    async def is_settled(self) -> bool | None:
        check = self._source().settled
        if check is None:
            return None
        return check.passes(await self.transport.query(check.query))

    async def output(self) -> tuple[float, str]:
        src = self._source()
        if src.output_query is None:
            raise InstrumentError(f"{self.name}: {self.map.source} has no [source] output_query")
        reply = await self.transport.query(src.output_query)
        fields = [f.strip() for f in reply.split(",")]
        try:
            return float(fields[0]), fields[1] if len(fields) > 1 and fields[1] else src.unit
        except ValueError as exc:
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to {src.output_query}") from exc


def scpi_map_path(entry: Any, bench_source: str = "<bench>") -> Path:
    """The map file a `driver = "scpi:<path>"` names, relative to the bench file when it is a file."""
    path = Path(entry.driver[len(SCPI_MAP_PREFIX):].strip())
    if not path.is_absolute() and not bench_source.startswith("<"):
        path = Path(bench_source).parent / path
    return path


def check_generic_scpi_entry(entry: Any, bench_source: str = "<bench>") -> ScpiMap:
    """Load and validate the map a bench entry names (ConfigError on any mistake); opens nothing."""
    if not entry.driver[len(SCPI_MAP_PREFIX):].strip():
        raise ConfigError(bench_source, f"instruments.{entry.name}.driver", "no map file after 'scpi:'",
                          'write driver = "scpi:maps/my_instrument.toml"')
    return load_scpi_map(scpi_map_path(entry, bench_source))


def build_generic_scpi_driver(entry: Any, bench_source: str = "<bench>") -> GenericScpiInstrument:
    """The driver of a bench entry with `driver = "scpi:<path>"` (not yet connected)."""
    scpi_map = check_generic_scpi_entry(entry, bench_source)
    transport = open_transport(entry.resource, visa=entry.visa, timeout=entry.timeout,
                               read_termination=scpi_map.read_termination,
                               write_termination=scpi_map.write_termination)
    return GenericScpiInstrument(entry.name, transport, scpi_map, entry.serial)
