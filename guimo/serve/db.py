"""The ledger database: SQLAlchemy 2.0 engine over SQLite (WAL, the default) or PostgreSQL.

SQLite lives in the user's data directory (platformdirs), so `guimo keys`, `guimo usage` and
`guimo serve` share it without flags. Its transactions that must serialise (the quota check and
the usage insert) use ``BEGIN IMMEDIATE``; PostgreSQL gets row locks on the key families' month
totals instead (see ``ledger.record_many``). ``postgresql://`` URLs are routed to psycopg 3.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from guimo.errors import GuimoError


def default_url() -> str:
    from platformdirs import user_data_dir

    path = Path(user_data_dir("guimo", appauthor=False)) / "ledger.sqlite"
    return f"sqlite:///{path}"


def normalise_url(url: str | None) -> str:
    """Accept a bare path, ``sqlite:///...`` or ``postgresql://...``; pick psycopg 3 for PostgreSQL."""
    url = url or default_url()
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if not url.startswith(("sqlite", "postgresql+")):
        raise GuimoError(f"unsupported database URL '{url}': use sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    return url


def make_engine(url: str | None = None) -> Engine:
    """An engine with the tables created; SQLite files get WAL, a busy timeout and FULL-safe syncs."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        db_path = url.split("sqlite:///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=8, max_overflow=16)
        _sqlite_pragmas(engine)
    else:
        try:
            engine = create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)
        except ModuleNotFoundError as e:
            raise GuimoError(f"PostgreSQL needs psycopg: pip install 'guimo[postgres]' ({e})") from None
    from guimo.serve.models import Base

    try:
        Base.metadata.create_all(engine)
    except Exception as e:  # bad host, refused connection, wrong password: say so in one line
        raise GuimoError(f"cannot open the ledger database {engine.url.render_as_string(hide_password=True)}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    return engine


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below start transactions
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill (not a power cut)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-insert cannot deadlock on upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


_sqlite_write_locks: dict[int, threading.Lock] = {}


@contextmanager
def _serialised(engine: Engine) -> Iterator[Connection]:
    """A connection whose next transaction serialises with every other writer.

    SQLite: threads of this process also queue on a lock first, because SQLite's own busy handler
    sleeps in steps of up to 100 ms, which under load costs far more than the writes.
    """
    lock = _sqlite_write_locks.setdefault(id(engine), threading.Lock()) if is_sqlite(engine) else nullcontext()
    with lock, engine.connect() as conn:
        yield conn.execution_options(immediate=True)


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A serialised transaction on a Core connection (commit on success): the ledger's hot path, where the
    ORM session's bookkeeping cost more than the SQL."""
    with _serialised(engine) as conn, conn.begin():
        yield conn


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A serialised transaction as an ORM session (commit on success), for writes of mapped objects (keys)."""
    with _serialised(engine) as conn, Session(bind=conn, expire_on_commit=False) as session, session.begin():
        yield session


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def checkpoint(engine: Engine) -> None:
    """Flush SQLite's write-ahead log into the main file (graceful shutdown); a no-op elsewhere."""
    if is_sqlite(engine):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
