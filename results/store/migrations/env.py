"""Alembic's entry point, run in-process by `results.store.schema` on the connection it is given."""

from alembic import context

import results.records.models  # noqa: F401  (the order records share the run store's metadata)
from results.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
