import pytest

from daq.bench import parse_bench
from daq.errors import ConfigError

GOOD = """
[bench]
name = "b"
[instruments.cal]
driver = "fluke5522a"
resource = "TCPIP::127.0.0.1::0::SOCKET"
[instruments.dmm]
driver = "keysight34465a"
resource = "GPIB0::22::INSTR"
[[wiring]]
from = "cal.output"
to = "dmm.input"
"""


def test_good_bench_parses_with_wiring():
    b = parse_bench(GOOD, source="bench.toml")
    assert set(b.instruments) == {"cal", "dmm"}
    assert b.wired_to("dmm.input") == "cal.output"
    assert b.instruments["dmm"].address.kind == "visa"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (GOOD.replace('resource = "GPIB0::22::INSTR"', 'resource = "dmm.local"'), "instruments.dmm.resource",
         "not a VISA resource"),
        (GOOD.replace('driver = "keysight34465a"\n', ""), "instruments.dmm.driver", "missing"),
        (GOOD.replace('to = "dmm.input"', 'to = "dvm.input"'), "wiring[0].to", "no instrument named"),
        (GOOD.replace("[bench]", "[bench"), "(syntax)", ""),
        (GOOD + "\n[instruments.dmm2]\ndriver = 'x'\nresource = 'GPIB0::1::INSTR'\nspeed = 3\n",
         "instruments.dmm2.speed", "unknown field"),
    ],
)
def test_bad_bench_names_file_field_and_fix(text, field, words):
    with pytest.raises(ConfigError) as info:
        parse_bench(text, source="bench.toml")
    msg = str(info.value)
    assert msg.startswith("bench.toml: ")
    assert info.value.field == field
    assert words in msg
