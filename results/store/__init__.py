"""The record store: runs, points, every raw reading, point results and their budgets."""

from results.store.connection import database_url
from results.store.run_store import RunRecord, RunStore, this_process

__all__ = ["RunRecord", "RunStore", "database_url", "this_process"]
