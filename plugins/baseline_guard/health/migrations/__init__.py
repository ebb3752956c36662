"""Alembic migrations of the ``baseline_guard`` database (run them with ``python -m baseline_guard.health migrate``)."""
