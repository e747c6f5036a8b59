"""The record store: runs, points, every raw reading, point results and their budgets."""

from results.store.run_store import RunRecord, RunStore, database_url, this_process

__all__ = ["RunRecord", "RunStore", "database_url", "this_process"]
