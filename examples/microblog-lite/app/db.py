"""SQLite access and migrations: `flask db upgrade` applies migrations/NNNN_*.sql in order,
once each, recording them in a schema_version table (each in its own transaction)."""
import os
import sqlite3

import click
from flask import current_app, g
from flask.cli import AppGroup

from . import ROOT

MIGRATIONS = os.path.join(ROOT, "migrations")


def database_path(url):
    if not url.startswith("sqlite:///"):
        raise ValueError("only sqlite:/// URLs are supported, got %r" % url)
    return url[len("sqlite:///"):]


def connect():
    if "db" not in g:
        g.db = sqlite3.connect(database_path(current_app.config["DATABASE_URL"]), timeout=5)
        g.db.row_factory = sqlite3.Row
    return g.db


def close(_exc=None):
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def upgrade(conn):
    """Applies every migration not applied yet; returns their names."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM schema_version")}
    applied = []
    for name in sorted(os.listdir(MIGRATIONS)):
        if not name.endswith(".sql") or name in done:
            continue
        with open(os.path.join(MIGRATIONS, name), encoding="utf-8") as f:
            sql = f.read()
        with conn:
            conn.executescript("BEGIN;" + sql)
            conn.execute("INSERT INTO schema_version VALUES (?, datetime('now'))", (name,))
        applied.append(name)
    return applied


db_cli = AppGroup("db", help="Database migrations.")


@db_cli.command("upgrade")
def upgrade_command():
    """Apply pending migrations."""
    applied = upgrade(connect())
    click.echo("applied: %s" % (", ".join(applied) if applied else "nothing (up to date)"))


def init_app(app):
    app.teardown_appcontext(close)
    app.cli.add_command(db_cli)
