"""A reference standard's certificate read from the bench, for a procedure's corrections and budget.

The table itself (`daq.certificate.CorrectionTable`) is the bench file's format; this adds
where it is found and what it is called, so a mistake names the instrument and quantity.
"""

from __future__ import annotations

from daq.bench import Bench
from daq.certificate import CorrectionTable
from daq.errors import ConfigError

CertificateTable = CorrectionTable


def certificate_of(bench: Bench, instrument: str, quantity: str) -> CorrectionTable:
    where = f"instruments.{instrument}.certificate.{quantity}"
    table = bench.instruments[instrument].certificate.get(quantity)
    if table is None:
        raise ConfigError(bench.source, where, f"the reference has no {quantity} certificate",
                          "add k = 2.0 and points = [{ at = 0.0, correction = 0.0, U = 0.001 }, ...] from its "
                          "certificate")
    return CorrectionTable.parse(table, source=bench.source, where=where)
