"""Encryption context pairs that look like secrets: CloudTrail logs the context in plaintext."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

from emr_cmk_notebook.core.arns import quoted

_PLAINTEXT_NOTE = (
    "the encryption context is logged in plaintext in CloudTrail, so keep secrets out of it"
)


class SecretInContextWarning(UserWarning):
    """An encryption context pair looks like a secret; CloudTrail logs it in plaintext."""


def secret_warnings(context: Mapping[str, str]) -> list[str]:
    """One line per context pair that looks like a secret; never includes the value."""
    found = []
    for position, (key, value) in enumerate(context.items(), start=1):
        reason = _secret_in_key(key)
        if reason:
            found.append(f"encryptionContext pair {position}: its key {reason}; {_PLAINTEXT_NOTE}")
            continue
        reason = _secret_name_reason(key) or _secret_value_reason(value)
        if reason:
            found.append(f"encryptionContext key {quoted(key)}: {reason}; {_PLAINTEXT_NOTE}")
    return found


# Secret heuristics. A false alarm costs a warning; a miss leaks a secret into CloudTrail,
# so the value patterns lean towards warning, while plain labels and ids stay quiet.

_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "tokens",
        "credential", "credentials", "apikey", "privatekey", "accesskey", "secretkey",
    }
)  # fmt: skip
_SECRET_FRAGMENTS = ("password", "passwd", "passphrase", "secret", "credential", "privatekey")
_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")

_VALUE_PATTERNS = (
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), "an AWS access key id"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "a JSON web token"),
    (re.compile(r"-----BEGIN [A-Z0-9 ]+-----"), "a PEM key or certificate block"),
    (re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
    (
        re.compile(
            r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}"
        ),
        "an API token",
    ),
)
_SECRET_ACCESS_KEY = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_-]{20,}")
_WORD_RUN = re.compile(r"[A-Za-z][a-z]{3,}")


def _secret_name_reason(name: str) -> str | None:
    words = [word.lower() for word in _NAME_WORDS.findall(name)]
    # Joining neighbours makes api_key, apiKey and API-Key all read as "apikey".
    joined = {a + b for a, b in itertools.pairwise(words)}
    compact = "".join(words)
    if _SECRET_WORDS & {*words, *joined} or any(f in compact for f in _SECRET_FRAGMENTS):
        return "its name suggests a password, token or other secret"
    return None


def _secret_value_reason(text: str) -> str | None:
    for pattern, what in _VALUE_PATTERNS:
        if pattern.search(text):
            return f"its value looks like {what}"
    for run in _SECRET_ACCESS_KEY.findall(text):
        if _mixed_case_and_digits(run):
            return "its value looks like an AWS secret access key"
    if any(_looks_random(run) for run in _TOKEN_RUN.findall(text)):
        return "its value looks like a random secret (long, mixed and unpredictable)"
    return None


def _secret_in_key(key: str) -> str | None:
    reason = _secret_value_reason(key)
    return reason.replace("its value ", "", 1) if reason else None


def _mixed_case_and_digits(text: str) -> bool:
    return (
        any(c.islower() for c in text)
        and any(c.isupper() for c in text)
        and any(c.isdigit() for c in text)
    )


def _looks_random(run: str) -> bool:
    """True for a token like base64 key material, false for ids, hashes, paths and names."""
    alnum = [c for c in run if c.isalnum()]
    if len(alnum) < 20 or not _mixed_case_and_digits(run):
        return False
    # Random base62 changes character class (lower/upper/digit) about 60% of the time and has
    # few word-like runs; names like "EMRServerlessRole2024" or "ProjectAlphaV2Run17" are the
    # opposite on both counts.
    classes = ["l" if c.islower() else "u" if c.isupper() else "d" for c in alnum]
    changes = sum(a != b for a, b in itertools.pairwise(classes)) / len(alnum)
    wordlike = sum(len(word) for word in _WORD_RUN.findall(run)) / len(alnum)
    return changes >= 0.35 and wordlike < 0.45
