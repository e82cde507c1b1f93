"""Persistence: SQLModel tables, engine/session helpers and Alembic migrations."""
