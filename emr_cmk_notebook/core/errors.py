"""The error types every layer raises.

Two families: ``UserError`` means the caller has something to change and is shown as one line
with no traceback; ``ServiceFault`` means AWS (or the local backend) failed or refused, and keeps
the service's error code.
"""

from __future__ import annotations

# The error codes AWS answers with when a caller is throttled: wait and call again.
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "Throttling", "RequestLimitExceeded"}
)


def one_line(message: str, hint: str | None = None) -> str:
    """``message`` on one line, with the hint in parentheses after it."""
    text = " ".join(message.split())
    return f"{text} ({' '.join(hint.split())})" if hint else text


class EmrCmkError(Exception):
    """Base class of every error raised by emr-cmk-notebook."""


class UserError(EmrCmkError):
    """Input the user has to change; the message says what to change, in one line."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None):
        self.field = field
        self.hint = hint
        super().__init__(one_line(message, hint))


class CheckFailed(UserError):
    """Well-formed input that a check refuses: a key or permission not ready for the work.

    Shown as one line like every ``UserError``; ``emr-cmk`` exits 1 for it (a failed check),
    not 2 (bad input).
    """


class InvalidEncryptionConfig(UserError):
    """A key ARN or encryption context that AWS would refuse."""


class ServiceFault(EmrCmkError):
    """AWS or the local backend answered with an error or could not be reached."""

    def __init__(self, message: str, *, code: str | None = None, operation: str | None = None):
        self.code = code
        self.operation = operation
        super().__init__(one_line(str(message)))


class BackendNotRunning(UserError):
    """The embedded local backend was asked for but is not running."""


class SkippedCheckWarning(UserWarning):
    """Work was started without the readiness check (``--skip-check``)."""


def warn_skipped_check(key_arn: str, what: str) -> None:
    """Say loudly that ``what`` starts on ``key_arn`` without the readiness check."""
    import warnings

    warnings.warn(
        f"WARNING: the key check was skipped for {key_arn}; if EMR Serverless cannot use it "
        f"the {what} fails",
        SkippedCheckWarning,
        stacklevel=3,
    )
