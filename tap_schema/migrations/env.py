"""Alembic environment: runs on the connection handed over by the caller.

The project never lets Alembic open connections itself; ``vo_service.database.setup``
passes an owner-role connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
