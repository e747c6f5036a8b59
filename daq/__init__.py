"""The core: units, clocks, readings, transports, stabilisation and bench descriptions.

Nothing here imports a sibling package; drivers, simulators, procedures, results and the
runner all build on it.
"""
