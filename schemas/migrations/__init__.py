"""Alembic migrations of the register (run them with `pipeline.register.database.migrate`)."""
