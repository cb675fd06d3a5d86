"""What a store's schema is, read from the database itself: columns (name, type, not
null, default) and indexes (columns with their order, unique, partial predicate), so
that tests can compare it with the schema the migrations are meant to give."""

from __future__ import annotations

import sqlite3
from typing import Any

Schema = dict[str, Any]


def _squeeze(text: str | None) -> str | None:
    return None if text is None else " ".join(text.split())


def sqlite_schema(path: str) -> Schema:
    """{"tables": {table: [(column, type, not null, default, pk position)]},
    "indexes": {index: (table, ["column [DESC]"], unique, predicate)},
    "triggers": {trigger: table}}."""
    conn = sqlite3.connect(path)
    try:
        tables: dict[str, list[tuple[Any, ...]]] = {}
        indexes: dict[str, tuple[Any, ...]] = {}
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for table in names:
            tables[table] = [(name, type_, bool(notnull), default, pk)
                             for _, name, type_, notnull, default, pk, _hidden
                             in conn.execute(f"PRAGMA table_xinfo('{table}')")]
            for _, index, unique, _origin, _partial in conn.execute(
                    f"PRAGMA index_list('{table}')"):
                columns = [name + (" DESC" if desc else "") for _, _, name, desc, _, key
                           in conn.execute(f"PRAGMA index_xinfo('{index}')") if key]
                row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                                   (index,)).fetchone()
                sql = row[0] if row else None  # a WITHOUT ROWID table's key: no row
                predicate = None
                if sql and " WHERE " in " ".join(sql.split()):
                    predicate = " ".join(sql.split()).split(" WHERE ", 1)[1]
                indexes[index] = (table, columns, bool(unique), predicate)
        triggers = dict(conn.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'").fetchall())
        return {"tables": tables, "indexes": indexes, "triggers": triggers}
    finally:
        conn.close()


def postgres_schema(url: str) -> Schema:
    """{"tables": {table: [(column, type, not null, default)]},
    "indexes": {index: (table, ["column [DESC]", "INCLUDE column"], unique,
    predicate)}, "triggers": {trigger: table}}."""
    import psycopg

    with psycopg.connect(url) as conn:
        tables: dict[str, list[tuple[Any, ...]]] = {}
        for table, column, type_, nullable, default in conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = 'public' "
                "ORDER BY table_name, ordinal_position"):
            tables.setdefault(table, []).append(
                (column, type_, nullable == "NO", _squeeze(default)))
        indexes: dict[str, tuple[Any, ...]] = {}
        for index, table, unique, predicate, columns in conn.execute("""
                SELECT ic.relname, tc.relname, i.indisunique,
                       pg_get_expr(i.indpred, i.indrelid),
                       ARRAY(SELECT CASE WHEN k > i.indnkeyatts THEN 'INCLUDE ' ELSE ''
                                    END || pg_get_indexdef(i.indexrelid, k, true)
                                    || CASE WHEN k <= i.indnkeyatts
                                                 AND i.indoption[k - 1] & 1 = 1
                                            THEN ' DESC' ELSE '' END
                             FROM generate_series(1, i.indnatts) AS k ORDER BY k)
                FROM pg_index AS i
                JOIN pg_class AS ic ON ic.oid = i.indexrelid
                JOIN pg_class AS tc ON tc.oid = i.indrelid
                JOIN pg_namespace AS n ON n.oid = tc.relnamespace
                WHERE n.nspname = 'public'"""):
            indexes[index] = (table, list(columns), unique, _squeeze(predicate))
        triggers = dict(conn.execute(
            "SELECT t.tgname, c.relname FROM pg_trigger AS t "
            "JOIN pg_class AS c ON c.oid = t.tgrelid "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND NOT t.tgisinternal").fetchall())
        return {"tables": tables, "indexes": indexes, "triggers": triggers}
