"""Versioned table sets inside a shared SQLite file.

The outbox, the session counter and the command store can all live in a component's own database
(lockerd keeps them in locker.db next to its business tables, so one transaction spans both). Each
table set therefore keeps its own version in a one-row ``{name}_schema`` table instead of the
file-wide ``user_version``, which belongs to the file's owner.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

Migrations = Sequence[Sequence[str]]  # version n+1 = the statements at index n


def migrate_in(
    conn: sqlite3.Connection, name: str, migrations: Migrations, error: type[Exception]
) -> None:
    """Bring table set ``name`` to ``len(migrations)`` inside the caller's open transaction.

    Raises ``error`` if the file was written by a newer release (its tables are left alone).
    """
    schema_table = f"{name}_schema"
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {schema_table}"
        " (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
    )
    row = conn.execute(f"SELECT version FROM {schema_table} WHERE id = 1").fetchone()  # noqa: S608
    version = 0 if row is None else int(row[0])
    if version > len(migrations):
        raise error(f"{name} schema {version} is newer than this release ({len(migrations)})")
    for statements in migrations[version:]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(
        f"INSERT INTO {schema_table} (id, version) VALUES (1, ?)"  # noqa: S608
        " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        (len(migrations),),
    )
