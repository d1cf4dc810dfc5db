"""The databases the harness writes to (a sweep's study, the history index), through SQLAlchemy: SQLite
files on one machine, PostgreSQL shared by many. What they have in common lives here: a URL shown with its
password hidden, and every failure as one line naming the database and the fix.

- down, unreachable, a wrong URL or name: ``DatabaseError`` (a ``UserError``, exit 2);
- read-only: ``DatabaseError`` saying so;
- full (the disk under it, or a quota): ``DatabaseFull`` (a ``MachineLimit``, exit 1), finished work kept;
- a schema written by a newer (or another) release: the caller raises ``DatabaseError`` naming both.

Writes go through transactions, so a failure leaves every row already committed as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from ..errors import MachineLimit, UserError

URL_FIX = "sqlite:///path/file.db or postgresql://user@host:port/db"


class DatabaseError(UserError, RuntimeError):
    """A database that cannot be used as given: one line naming it (password hidden) and the fix."""


class DatabaseFull(MachineLimit, RuntimeError):
    """A database that ran out of space: the machine's limit, exit 1; what was committed is kept."""


def redacted(url: str) -> str:
    """The URL with its password hidden, as lines and rows show it."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return url


def sqlite_folder(url: str) -> None:
    """An SQLite URL's folder, created (the file itself SQLite creates); other databases are left alone."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def connect_args(url: str) -> dict[str, int]:
    """Wait up to a minute for another writer's lock on an SQLite file; give up on a PostgreSQL server
    that does not answer in 5 s."""
    return {"timeout": 60} if make_url(url).get_backend_name() == "sqlite" else {"connect_timeout": 5}


def reason_of(raised: BaseException) -> tuple[BaseException, str]:
    """The SQLAlchemy error behind ``raised`` (a wrapper, e.g. Optuna's, keeps it as its cause) and its first
    line, as the driver said it."""
    exc = raised.__cause__ if isinstance(raised.__cause__, sa_exc.SQLAlchemyError) else raised
    return exc, str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] or type(exc).__name__


def one_line(raised: BaseException, what: str, url: str, resume: str) -> Exception:
    """``raised`` (a database failure) as the one line the command prints: ``what`` names the database
    ("the study database"), ``resume`` what running again does."""
    exc, reason = reason_of(raised)
    where, said = redacted(url), reason.lower().replace(" ", "")
    if "full" in said or "nospace" in said:
        return DatabaseFull(f"{what} {where} is full ({reason}); every row already written is kept; fix: free space "
                            f"on its disk, then {resume}")
    if "readonly" in said or "read-only" in said:
        return DatabaseError(f"{what} {where} is read-only ({reason}); fix: make it writable, or pass another "
                             "database you can write")
    if isinstance(exc, sa_exc.OperationalError):
        return DatabaseError(f"cannot use {what} {where}: {reason}; fix: check the server is running and the URL "
                             f"({URL_FIX})")
    return DatabaseError(f"{what} {where} failed: {reason}; fix: check the URL ({URL_FIX})")


@contextmanager
def database_errors(what: str, url: str, resume: str, wrapped: tuple[type[BaseException], ...] = ()
                    ) -> Iterator[None]:
    """SQLAlchemy's failures (and ``wrapped``: a library's wrappers of them) as one line each."""
    try:
        yield
    except (sa_exc.SQLAlchemyError, *wrapped) as raised:
        raise one_line(raised, what, url, resume) from None
