"""Every change this package makes to pyspark's Spark Connect client, in one place.

Each is checked against pyspark 3.5 and 4.0 (the clients for emr-7.x and for emr-spark-8.x and
the local backend); pyspark is imported only when a Spark Connect session is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from emr_cmk_notebook.core.errors import UserError

AUTH_HEADER = "x-aws-proxy-auth"


def client_spark() -> str:
    """The installed pyspark's ``major.minor``; a one-line error when Connect cannot load."""
    try:
        import pyspark
        from pyspark.sql.connect.client import core  # noqa: F401 -- needs grpcio, pandas...
    except ImportError as exc:
        raise UserError(
            f"the Spark Connect client cannot load: {exc}",
            hint=(
                "pip install 'pyspark[connect]' (3.5.x for emr-7.x; 4.0.x for emr-spark-8.x and "
                "the local backend)"
            ),
        ) from None
    keep_release_pool()
    return ".".join(pyspark.__version__.split(".")[:2])


def keep_release_pool() -> None:
    """Stop one closed ``SparkSession`` from breaking every other one in the process.

    pyspark 3.5 and 4.0 share one ReleaseExecute thread pool among all Spark Connect clients and
    shut it down whenever any client closes, including from ``SparkSession.__del__`` when an old
    session is garbage collected. A query running on another session then fails with "cannot
    schedule new futures after shutdown". Keeping the pool for the life of the process avoids
    that; its idle threads are joined at exit as usual. Checked against pyspark 3.5 and 4.0.
    """
    from pyspark.sql.connect.client.reattach import ExecutePlanResponseReattachableIterator as It

    if getattr(It.shutdown, "_emr_cmk_kept", False):
        return

    def shutdown(cls: type) -> None:
        return None

    shutdown._emr_cmk_kept = True  # type: ignore[attr-defined]
    It.shutdown = classmethod(shutdown)  # type: ignore[method-assign, assignment]


def watch_operations(spark: Any, operation: Callable[[], AbstractContextManager[None]]) -> None:
    """Run each operation of ``spark`` that executes a plan and reads its results inside
    ``operation()``, which sees how it ended (an error, or KeyboardInterrupt), for a client that
    has no ``registerProgressHandler`` (pyspark 3.5).

    Every such operation (``collect``, ``count``, ``toPandas``, ``show``, SQL commands, writes)
    goes through the client's ``_execute_and_fetch_as_iterator``; only UDF registrations do not.
    Checked against pyspark 3.5.
    """
    client = spark.client
    fetch = client._execute_and_fetch_as_iterator

    def watched(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with operation():
            yield from fetch(*args, **kwargs)

    client._execute_and_fetch_as_iterator = watched


def make_active(spark: Any) -> None:
    """Make ``spark`` the session pyspark's helpers use (``udf``, ``SparkSession.active()``).

    pyspark only makes a new session active when none is, so after a session ends (idle timeout,
    server gone) the old one would stay active and those helpers would retry against it.
    """
    from pyspark.sql.connect.session import SparkSession

    with SparkSession._lock:
        SparkSession._default_session = spark
        SparkSession._active_session.session = spark


def stop_retrying_when(ended: Callable[[], BaseException | None]) -> Any:
    """pyspark's default retries (about ten minutes), cut short by the error ``ended`` returns
    once the session behind the connection has ended."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    class SessionAwarePolicy(DefaultPolicy):
        def can_retry(self, e: BaseException) -> bool:
            if not super().can_retry(e):
                return False
            error = ended()
            if error is not None:
                raise error
            return True

    return SessionAwarePolicy()


class _FreshMetadata(list):  # type: ignore[type-arg]
    """gRPC metadata whose ``x-aws-proxy-auth`` is read when it is sent, not when it was made.

    pyspark keeps the metadata of a running query for its later ReattachExecute and
    ReleaseExecute calls; a plain list would send the token the query started with, which may
    have expired by then.
    """

    def __init__(self, kept: list[tuple[str, str]], token: Callable[[], str]):
        super().__init__([*kept, (AUTH_HEADER, "")])
        self._kept = kept
        self._token = token

    def __iter__(self) -> Any:
        yield from self._kept
        yield (AUTH_HEADER, self._token())

    def __repr__(self) -> str:  # never the token
        return f"{[k for k, _ in self._kept] + [AUTH_HEADER]!r}"


def channel_builder(url: str, token: Callable[[], str]) -> Any:
    """A channel builder whose ``x-aws-proxy-auth`` is read again for every call."""
    try:
        from pyspark.sql.connect.client import DefaultChannelBuilder as Base
    except ImportError:  # pyspark 3.5 names the default builder ChannelBuilder
        from pyspark.sql.connect.client import ChannelBuilder as Base

    class FreshTokenChannelBuilder(Base):
        def metadata(self) -> list[tuple[str, str]]:
            kept = [(k, v) for k, v in super().metadata() if k != AUTH_HEADER]
            return _FreshMetadata(kept, token)

    return FreshTokenChannelBuilder(url)
