"""Persistence: SQLAlchemy 2 async models, the engine, and versioned migrations (Alembic)."""
