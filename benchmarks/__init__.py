"""Side-by-side measurements against the alternatives a user would pick (see README.md).

Each module is a script: `python -m benchmarks.<name>` prints a short table and writes
`benchmarks/results/<name>.json`. They measure and report; they never assert on timings.
"""
