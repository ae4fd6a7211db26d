"""AWS calls for readiness: run independent ones concurrently and keep refusals as data.

A refused or failed call is not an error here: it becomes an ``Unreadable`` that the checks turn
into an ``unknown`` saying what could not be read and how to check it by hand.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from emr_cmk_notebook.clients import AwsTarget, service_endpoint
from emr_cmk_notebook.core.errors import UserError

if TYPE_CHECKING:
    from emr_cmk_notebook.aws_errors import AwsError

T = TypeVar("T")


@dataclass(frozen=True)
class Unreadable:
    """A call that did not answer: which operation, the error code and the service's message."""

    operation: str
    code: str
    message: str
    #: The boundary's error when the service was never reached (so there was no answer to read).
    unreached: AwsError | None = field(default=None, compare=False, repr=False)

    @property
    def denied(self) -> bool:
        """True when the caller lacks the permission (rather than the thing being absent)."""
        return "AccessDenied" in self.code or self.code in ("UnauthorizedOperation", "Forbidden")

    @property
    def missing(self) -> bool:
        """True when AWS says the thing does not exist."""
        return "NotFound" in self.code or self.code == "NoSuchEntity"

    @property
    def brief(self) -> str:
        """A few words for a reason: ``kms:DescribeKey was refused``; the rest goes in detail."""
        if self.denied:
            return f"{self.operation} was refused"
        if self.missing:
            return f"{self.operation} found nothing"
        return f"{self.operation} failed ({self.code})"

    def __str__(self) -> str:
        return f"{self.operation} failed: {self.code}: {self.message}"


def attempt(operation: str, call: Callable[[], T]) -> T | Unreadable:
    """``call()``, or an ``Unreadable`` when AWS refuses, fails or cannot be reached.

    No credentials, or an AWS setup to fix (profile, region), stops the whole check with the
    boundary's one-line error: no call could be read for the same reason.
    """
    from emr_cmk_notebook.aws_errors import AwsError

    try:
        return call()
    except AwsError as exc:
        if isinstance(exc, UserError) and not exc.answered:
            raise
        return Unreadable(operation, exc.code, exc.detail, None if exc.answered else exc)


def raise_if_nothing_answered(reads: list[Any]) -> None:
    """When none of ``reads`` got an answer, raise why (once) instead of a report of unknowns."""
    causes = [read.unreached for read in reads if isinstance(read, Unreadable)]
    if len(causes) == len(reads) and all(causes):
        raise causes[0]  # type: ignore[misc]


_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def client(target: AwsTarget, service: str, *, max_attempts: int | None = None) -> Any:
    """A boto3 client, reused across checks (clients are thread-safe once created)."""
    chosen = target if max_attempts is None else target.with_changes(max_attempts=max_attempts)
    # The environment decides endpoint and credentials when the target does not, so it is part
    # of the cache key: a restarted local backend must not be reached through a stale client.
    env = (service_endpoint(service), os.environ.get("AWS_ACCESS_KEY_ID"))
    cache_key = (chosen, service, env)
    with _clients_lock:
        if cache_key not in _clients:
            _clients[cache_key] = chosen.client(service)
        return _clients[cache_key]


class Calls:
    """A thread pool whose tasks may wait on earlier tasks, so chains start as soon as they can."""

    def __init__(self, workers: int = 16):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="readiness")

    def __enter__(self) -> Calls:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)

    def run(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Start ``fn(*args)`` now; ``args`` that are futures are replaced by their results."""

        def task() -> T:
            values = [a.result() if isinstance(a, Future) else a for a in args]
            return fn(*values)

        return self._pool.submit(task)
