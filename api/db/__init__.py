"""Persistence: SQLModel tables, database engines, Alembic migrations, the durable store."""
