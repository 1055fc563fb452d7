"""What a database error means for the caller: retry the transaction, or the server is
unavailable (not a bug in the statement)."""

from __future__ import annotations

import asyncpg

# serialization_failure and deadlock_detected: the transaction did nothing and may be rerun.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# admin_shutdown, crash_shutdown, cannot_connect_now: the server is stopping or starting.
SERVER_GOING_OR_COMING_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def database_unavailable(code: str | None) -> bool:
    """An error that says the server cannot serve us now, not that the statement is wrong:
    it is stopping or starting (57P01-57P03), the connection failed (class 08), or it is
    out of resources (class 53: too many connections, out of memory, disk full)."""
    return code is not None and (
        code in SERVER_GOING_OR_COMING_SQLSTATES or code.startswith(("08", "53"))
    )



def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, raised through SQLAlchemy or by asyncpg itself."""
    own = getattr(exc, "sqlstate", None)
    if isinstance(own, str):
        return own
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)



# asyncpg's errors that mean the connection (or the server) is gone, not the statement.
# InternalClientError is what a statement gets when it is sent on a connection whose
# server-side end was terminated an instant earlier: asyncpg has read the FATAL message
# but not yet the close, and its protocol refuses to start ("another operation is in
# progress"). The connection is as unusable as a closed one.
CONNECTION_LOST = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)
