"""What the benchmarks share: each makes (and drops first) its own database on the server in DATABASE_URL."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse


def bench_database(url: str, suffix: str) -> str:
    """A fresh, empty database `<name><suffix>` beside the one in url; returns its URL."""
    import psycopg2

    parts = urlparse(url)
    name = parts.path.lstrip("/") + suffix
    admin = psycopg2.connect(urlunparse(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return urlunparse(parts._replace(path="/" + name))
