"""Alembic migrations of the whole database schema (published and internal tables)."""
