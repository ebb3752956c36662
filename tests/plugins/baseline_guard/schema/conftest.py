"""A fresh pair of databases (source = "production", target = "baseline") per test, on the session server."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from local_stack.postgres import PG_BIN_DIR, LocalPostgres

_counter = itertools.count()


@dataclass
class DatabasePair:
    server: LocalPostgres
    source_db: str
    target_db: str

    @property
    def source_dsn(self) -> str:
        return self.server.uri(self.source_db)

    @property
    def target_dsn(self) -> str:
        return self.server.uri(self.target_db)

    def source(self, sql: str) -> str:
        return self.server.psql(sql, self.source_db)

    def target(self, sql: str) -> str:
        return self.server.psql(sql, self.target_db)

    def both(self, sql: str) -> None:
        self.source(sql)
        self.target(sql)

    def dump(self, database: str) -> str:
        """``pg_dump --schema-only``, without the per-run random ``\\restrict`` key lines."""
        out = subprocess.run(
            [str(PG_BIN_DIR / "pg_dump"), "--schema-only", "--no-owner", "-d", database],
            capture_output=True,
            text=True,
            env=self.server.env(),
            check=True,
            timeout=60,
        ).stdout
        return "\n".join(
            line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
        )

    def dump_source(self) -> str:
        return self.dump(self.source_db)

    def dump_target(self) -> str:
        return self.dump(self.target_db)


@pytest.fixture
def dbs(postgres: LocalPostgres) -> Iterator[DatabasePair]:
    n = next(_counter)
    pair = DatabasePair(postgres, f"schema_src_{n}", f"schema_tgt_{n}")
    postgres.create_database(pair.source_db, drop_existing=True)
    postgres.create_database(pair.target_db, drop_existing=True)
    yield pair
    postgres.psql(f'DROP DATABASE IF EXISTS "{pair.source_db}" WITH (FORCE);')
    postgres.psql(f'DROP DATABASE IF EXISTS "{pair.target_db}" WITH (FORCE);')
