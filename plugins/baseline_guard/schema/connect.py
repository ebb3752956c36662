"""Opening the two databases of a sync: the source read-only, always; errors name the database, never the password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from baseline_guard.errors import DatabaseUnreachable, InvalidInput

APPLICATION_NAME = "baseline_guard_schema_sync"
CONNECT_TIMEOUT_S = 10
READ_LOCK_TIMEOUT_MS = 30_000
_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class Database:
    """A database the engine talks to: its DSN (secret) and a label that is safe to show."""

    role: str  # "source" or "target"
    url: URL

    @classmethod
    def parse(cls, dsn: str, role: str) -> Database:
        """Parse a ``postgresql://user:password@host:port/dbname`` URI."""
        try:
            url = make_url(dsn)
        except ArgumentError:
            raise InvalidInput(
                f"{role} DSN is not a URI; expected postgresql://user:password@host:port/dbname"
            ) from None
        if url.get_backend_name() not in _SCHEMES or not url.database:
            raise InvalidInput(
                f"{role} DSN must be postgresql://user:password@host:port/dbname, "
                f"got scheme {url.drivername!r} and database {url.database!r}"
            )
        return cls(role=role, url=url.set(drivername="postgresql+psycopg2"))

    @property
    def label(self) -> str:
        host = self.url.host or self.url.query.get("host") or "local socket"
        where = f"{host}:{self.url.port}" if self.url.port else str(host)
        return f"{self.role} database {self.url.database!r} at {where}"

    @property
    def identity(self) -> tuple[object, ...]:
        return (self.url.host, self.url.port or 5432, self.url.database, str(self.url.query.get("host")))

    def libpq_dsn(self) -> str:
        """The DSN as libpq/psycopg2 takes it (contains the password: never log it)."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def scrub(self, text: str) -> str:
        """Remove the password from a message, in case a driver echoed it."""
        password = self.url.password
        return text.replace(str(password), "***") if password else text

    @contextmanager
    def connect(self, *, read_only: bool) -> Iterator[Connection]:
        """A connection; with ``read_only`` every transaction of the session is read-only."""
        # Reads wait for locks no longer than this, so a long DDL elsewhere cannot hang the diff.
        options = f"-c lock_timeout={READ_LOCK_TIMEOUT_MS}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        engine = sa.create_engine(
            self.url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": APPLICATION_NAME,
                "options": options,
            },
        )
        try:
            try:
                conn = engine.connect()
            except DBAPIError as exc:
                raise DatabaseUnreachable(f"cannot connect to {self.label}: {self.describe(exc)}") from None
            with conn:
                yield conn
        finally:
            engine.dispose()

    def describe(self, exc: DBAPIError) -> str:
        """The driver's own message (first lines only), without the password."""
        message = str(exc.orig).strip() if exc.orig is not None else type(exc).__name__
        return self.scrub(" ".join(message.splitlines()[:2]))
