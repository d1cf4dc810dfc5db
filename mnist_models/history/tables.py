"""The history index's tables, its schema version, and opening it (SQLAlchemy Core, no ORM).

- ``history_sources``: what has been indexed, by a key that names it on its machine (a run folder's run
  id; a ``runs.jsonl`` by host and path), with its fingerprint (sizes and modification times of the files
  read) and, for ``runs.jsonl``, the byte offset read up to; ``problem`` holds the one line of a run that
  could not be read (skipped until its files change);
- ``history_points``: one measurement each: the run it belongs to, the case (a suite row's key, or a
  command's model, device, precision and batch), the metric (``img_per_s``, ``test_acc_pct``,
  ``from_start_s``…), its value and spread (low, high, n), and the run's machine kind, commit and time,
  so that a series is one query;
- ``history_meta``: ``schema_version``, and ``generation``: an id renewed by every write, so an answer
  remembered beside a page (``history.json``) is known to be current. A database written by a newer schema
  is refused (one line), never altered.
"""

from __future__ import annotations

import uuid
import warnings

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    inspect,
    select,
)
from sqlalchemy import exc as sa_exc

from ..results.database import DatabaseError, connect_args, database_errors, redacted, sqlite_folder

SCHEMA_VERSION = 1
WHAT = "the history database"
RESUME = "run the same command again (it goes on from what is indexed)"

metadata = MetaData()
meta = Table("history_meta", metadata, Column("key", String(64), primary_key=True),
             Column("value", String(256), nullable=False))
sources = Table("history_sources", metadata, Column("source", String(512), primary_key=True),
                Column("kind", String(16), nullable=False),  # "folder" or "rows"
                Column("fingerprint", String(128), nullable=False), Column("offset", BigInteger, default=0),
                Column("problem", String(1000)), Column("indexed_utc", String(32), nullable=False))
points = Table("history_points", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
               Column("source", String(512), nullable=False), Column("run_id", String(128), nullable=False),
               Column("kind", String(32), nullable=False),  # suite, train, reproduce, speedup, tta, sweep
               Column("case_name", String(300), nullable=False), Column("metric", String(64), nullable=False),
               Column("value", Float, nullable=False), Column("low", Float), Column("high", Float),
               Column("n", Integer), Column("machine_kind", String(128), nullable=False),
               Column("commit_id", String(64)), Column("time_utc", String(32), nullable=False),
               Column("host", String(256)), Column("dataset", String(256)),
               Index("history_points_series", "machine_kind", "case_name", "metric"),
               Index("history_points_source", "source"))


def open_index(url: str) -> Engine:
    """The index at ``url``, its tables created if new; a DatabaseError (one line) for a database that is
    down, read-only or of a newer schema."""
    sqlite_folder(url)
    with database_errors(WHAT, url, RESUME):
        engine = create_engine(url, connect_args=connect_args(url))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa_exc.SAWarning)
            tables = set(inspect(engine).get_table_names())
        if meta.name in tables:
            with engine.connect() as connection:
                found = connection.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
            if found is not None and int(found) > SCHEMA_VERSION:
                raise DatabaseError(f"{WHAT} {redacted(url)} has schema version {found}, newer than this "
                                    f"mnist-bench's {SCHEMA_VERSION}; fix: use the mnist-bench that wrote it, or "
                                    "pass --db with a new database")
        if not {meta.name, sources.name, points.name} <= tables:
            with engine.begin() as connection:
                metadata.create_all(connection, checkfirst=True)
                if connection.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar() is None:
                    connection.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
    return engine


def renew_generation(connection: Connection) -> None:
    """A new generation id for the index (in the transaction that changes it): an answer remembered with the
    old one is stale."""
    connection.execute(delete(meta).where(meta.c.key == "generation"))
    connection.execute(meta.insert().values(key="generation", value=uuid.uuid4().hex))


def generation(engine: Engine) -> str | None:
    """The index's generation id (None before anything is indexed)."""
    with engine.connect() as connection:
        return connection.execute(select(meta.c.value).where(meta.c.key == "generation")).scalar()
