"""Locks held until the current transaction ends."""

from django.db import connection


def transaction_lock(key: str) -> None:
    """Hold a lock on `key` until the transaction ends: on PostgreSQL an advisory lock (another
    transaction taking it waits); SQLite needs none (one writer at a time)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
