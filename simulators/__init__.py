"""The other side of the wire: simulated instruments on real transports, in one physical world.

Imports only `daq` (never `drivers`: sharing code with the drivers would hide protocol bugs).
Start a whole bench with `start_bench(bench, clock)`; reach the models through
`running.world.calibrator(name)` / `running.world.dmm(name)` for ground truth.
"""

from simulators.bench_server import RunningBench, serve_pty, start_bench
from simulators.calibrator5522a import Calibrator5522A, DcvUncertainty
from simulators.dmm34465a import Dmm34465A
from simulators.scpi_instrument import ErrorQueue, ScpiError, ScpiInstrument
from simulators.scpi_server import ScpiPtyServer, ScpiTcpServer
from simulators.world import MODELS, SimulatedWorld

__all__ = [
    "MODELS",
    "Calibrator5522A",
    "DcvUncertainty",
    "Dmm34465A",
    "ErrorQueue",
    "RunningBench",
    "ScpiError",
    "ScpiInstrument",
    "ScpiPtyServer",
    "ScpiTcpServer",
    "SimulatedWorld",
    "serve_pty",
    "start_bench",
]
