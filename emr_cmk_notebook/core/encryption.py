"""Disk encryption for EMR Serverless workers: a customer managed KMS key and encryption context.

``DiskEncryption`` is validated exactly as the service validates ``diskEncryptionConfiguration``
(the rules live in ``encryption_config_problems``) and renders itself for the API, for a Livy
session's ``conf`` and for a Spark Connect session's runtime configuration.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from emr_cmk_notebook.core.arns import KEY_ARN_PATTERN, KeyRef, parse_key_ref, quoted
from emr_cmk_notebook.core.errors import InvalidEncryptionConfig, UserError

KEY_ARN_LENGTH = (20, 2048)
CONTEXT_MAX_PAIRS = 8
CONTEXT_KEY_LENGTH = (1, 128)
CONTEXT_VALUE_LENGTH = (1, 384)

API_FIELD = "diskEncryptionConfiguration"
# The context key EMR Serverless sets itself, to the application id, in every KMS call it makes.
SERVICE_CONTEXT_KEY = "applicationId"
LIVY_KEY_ARN = "spark.emr-serverless.disk.encryptionKeyArn"
LIVY_CONTEXT = "spark.emr-serverless.disk.encryptionContext"
# Characters that split the Livy "k1:v1,k2:v2" form; AWS documents no way to escape them.
_LIVY_SEPARATORS = (":", ",")

_KNOWN_FIELDS = ("encryptionKeyArn", "encryptionContext")
_FRIENDLY_FIELDS = ("key", "context")
_PLAINTEXT_NOTE = (
    "the encryption context is logged in plaintext in CloudTrail, so keep secrets out of it"
)


@dataclass(frozen=True)
class Problem:
    """One reason the service would refuse a ``diskEncryptionConfiguration``."""

    field: str
    message: str


def encryption_config_problems(
    config: Mapping[str, Any], *, path: str = API_FIELD
) -> list[Problem]:
    """Every reason EMR Serverless would refuse this API-shaped configuration; empty when valid."""
    if not isinstance(config, Mapping):
        return [
            Problem(
                path,
                f"{path} must be an object with encryptionKeyArn and encryptionContext, "
                f"not {type(config).__name__}",
            )
        ]
    problems = [
        Problem(
            f"{path}.{name}",
            f"{path} has no field {quoted(name)}; use encryptionKeyArn and encryptionContext",
        )
        for name in config
        if name not in _KNOWN_FIELDS
    ]
    # A JSON null member means "not set" on the wire, so None is treated as absent.
    if config.get("encryptionKeyArn") is not None:
        problems += _key_arn_problems(config["encryptionKeyArn"], f"{path}.encryptionKeyArn")
    if config.get("encryptionContext") is not None:
        problems += _context_problems(config["encryptionContext"], f"{path}.encryptionContext")
    return problems


def _key_arn_problems(arn: object, path: str) -> list[Problem]:
    low, high = KEY_ARN_LENGTH
    if not isinstance(arn, str):
        return [Problem(path, f"encryptionKeyArn has type {type(arn).__name__}; give a key ARN")]
    if not low <= len(arn) <= high:
        return [
            Problem(
                path,
                f"encryptionKeyArn is {len(arn)} characters; a key ARN is {low}-{high} characters",
            )
        ]
    if not KEY_ARN_PATTERN.fullmatch(arn):
        return [
            Problem(
                path,
                f"encryptionKeyArn {quoted(arn, 80)} is not a KMS key ARN; use "
                "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (resolve aliases and key ids with "
                "kms:DescribeKey)",
            )
        ]
    return []


def _context_problems(context: object, path: str) -> list[Problem]:
    if not isinstance(context, Mapping):
        return [
            Problem(
                path,
                "encryptionContext must be a map of string keys to string values, "
                f"not {type(context).__name__}",
            )
        ]
    problems = []
    if len(context) > CONTEXT_MAX_PAIRS:
        extra = len(context) - CONTEXT_MAX_PAIRS
        problems.append(
            Problem(
                path,
                f"encryptionContext has {len(context)} pairs; at most {CONTEXT_MAX_PAIRS} "
                f"are allowed, remove {extra}",
            )
        )
    for key, value in context.items():
        problems += [Problem(path, message) for message in _pair_messages(key, value)]
    return problems


def _pair_messages(key: object, value: object) -> Iterator[str]:
    key_low, key_high = CONTEXT_KEY_LENGTH
    value_low, value_high = CONTEXT_VALUE_LENGTH
    if not isinstance(key, str):
        yield (
            f"encryptionContext key {quoted(key)} has type {type(key).__name__}; "
            "keys must be strings"
        )
    elif not key:
        yield f"encryptionContext has an empty key; keys must be {key_low}-{key_high} characters"
    elif len(key) > key_high:
        yield (
            f"encryptionContext key {quoted(key)} is {len(key)} characters; "
            f"keys must be {key_low}-{key_high} characters"
        )
    # Values are never quoted: they may be exactly the secret we warn about.
    if not isinstance(value, str):
        yield (
            f"encryptionContext value for key {quoted(key)} has type {type(value).__name__}; "
            "values must be strings"
        )
    elif not value:
        yield (
            f"encryptionContext value for key {quoted(key)} is empty; "
            f"values must be {value_low}-{value_high} characters"
        )
    elif len(value) > value_high:
        yield (
            f"encryptionContext value for key {quoted(key)} is {len(value)} characters; "
            f"values must be {value_low}-{value_high} characters"
        )


def _raise_first(problems: list[Problem]) -> None:
    if problems:
        first, more = problems[0], len(problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise InvalidEncryptionConfig(first.message + suffix, field=first.field)


class _FrozenContext(Mapping[str, str]):
    """An encryption context that cannot change once validated; keeps insertion order."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Mapping[str, str]):
        self._pairs = dict(pairs)

    def __getitem__(self, key: str) -> str:
        return self._pairs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __hash__(self) -> int:
        # Order-free, like Mapping equality: KMS treats a context as a set of pairs.
        return hash(frozenset(self._pairs.items()))

    def __repr__(self) -> str:
        return repr(self._pairs)


class SecretInContextWarning(UserWarning):
    """An encryption context pair looks like a secret; CloudTrail logs it in plaintext."""


@dataclass(frozen=True, repr=False)
class DiskEncryption:
    """A KMS key for worker disks plus the encryption context EMR Serverless passes to KMS."""

    key: str
    context: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        context = {} if self.context is None else self.context
        config: dict[str, object] = {"encryptionContext": context}
        if not parse_key_ref(self.key).needs_resolution:
            config["encryptionKeyArn"] = self.key
        _raise_first(encryption_config_problems(config))
        object.__setattr__(self, "context", _FrozenContext(context))

    @classmethod
    def parse(
        cls, value: DiskEncryption | Mapping[str, Any] | str | Iterable[str]
    ) -> DiskEncryption:
        """Read a configuration from a dict, JSON, ``"key=alias/x team=risk"`` or a K=V list."""
        if isinstance(value, DiskEncryption):
            return value
        if isinstance(value, Mapping):
            return cls._from_mapping(value)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith(("{", "[")):
                return cls.parse(_load_json(text))
            return cls._from_items(_split_items(text, "disk encryption configuration"))
        if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
            return cls._from_items(list(value))
        raise InvalidEncryptionConfig(
            f"cannot read a disk encryption configuration from {type(value).__name__}; give a "
            'dict, a JSON object or "key=KEY K=V ..." text'
        )

    @classmethod
    def from_parts(
        cls,
        key: str,
        context: Mapping[str, str] | Iterable[str] | str | None = None,
    ) -> DiskEncryption:
        """Build from a key (ARN, alias or id) and a context given as a mapping or K=V items.

        This is where user input comes in, so it also refuses a pair with the context key the
        service owns (``applicationId``): the service would replace its value in every KMS call.
        """
        if isinstance(key, str):
            key = key.strip()
        encryption = cls(key, _context_from(context))
        if SERVICE_CONTEXT_KEY in encryption.context:
            raise InvalidEncryptionConfig(
                f"encryption context key {SERVICE_CONTEXT_KEY} belongs to EMR Serverless, which "
                "sets it to the application id in every KMS call; remove that pair (key policies "
                f"can match the service's value with kms:EncryptionContext:{SERVICE_CONTEXT_KEY})",
                field=f"{API_FIELD}.encryptionContext",
            )
        return encryption

    @classmethod
    def _from_mapping(cls, mapping: Mapping[str, Any]) -> DiskEncryption:
        names = set(mapping)
        unknown = sorted(str(name) for name in names - {*_KNOWN_FIELDS, *_FRIENDLY_FIELDS})
        if unknown:
            problem = f"has unknown field {quoted(unknown[0])}"
        elif names & set(_KNOWN_FIELDS) and names & set(_FRIENDLY_FIELDS):
            problem = "mixes the two shapes"
        elif "encryptionKeyArn" in names:
            return cls.from_parts(mapping["encryptionKeyArn"], mapping.get("encryptionContext"))
        elif "key" in names:
            return cls.from_parts(mapping["key"], mapping.get("context"))
        else:
            problem = "has no key"
        raise InvalidEncryptionConfig(
            f"disk encryption configuration {problem}; give "
            '{"key": ..., "context": {...}} or '
            '{"encryptionKeyArn": ..., "encryptionContext": {...}}',
            field=API_FIELD,
        )

    @classmethod
    def _from_items(cls, items: list[object]) -> DiskEncryption:
        key: object = None
        pairs: list[object] = []
        for position, item in enumerate(items):
            if not isinstance(item, str):
                pairs.append(item)
                continue
            name, sep, rest = item.partition("=")
            if sep and name == "key":
                if key is not None:
                    raise InvalidEncryptionConfig("key= is given twice; give one key", field="key")
                key = rest
            elif position == 0 and not sep:
                # A leading bare key reference reads naturally: "alias/x team=risk".
                key = item
            else:
                pairs.append(item)
        if key is None:
            raise InvalidEncryptionConfig(
                "no key given; add key=alias/NAME or key=KEY_ARN", field="key"
            )
        return cls.from_parts(key, pairs)

    @classmethod
    def from_livy_conf(cls, conf: Mapping[str, str]) -> DiskEncryption | None:
        """Read the disk encryption properties of a Livy session ``conf``; None when unset."""
        arn, text = conf.get(LIVY_KEY_ARN), conf.get(LIVY_CONTEXT)
        if arn is None and text is None:
            return None
        if arn is None:
            raise InvalidEncryptionConfig(
                f"{LIVY_CONTEXT} is set without {LIVY_KEY_ARN}; add the key ARN",
                field=LIVY_KEY_ARN,
            )
        if text is not None and not isinstance(text, str):
            raise InvalidEncryptionConfig(
                f"{LIVY_CONTEXT} has type {type(text).__name__}; write it as k1:v1,k2:v2",
                field=LIVY_CONTEXT,
            )
        context = _parse_livy_context(text) if text else {}
        config = {"encryptionKeyArn": arn, "encryptionContext": context}
        problems = encryption_config_problems(config, path="conf")
        if problems:
            first = problems[0]
            name = LIVY_KEY_ARN if first.field.endswith("encryptionKeyArn") else LIVY_CONTEXT
            raise InvalidEncryptionConfig(f"{name}: {first.message}", field=name)
        return cls(arn, context)

    @property
    def key_ref(self) -> KeyRef:
        """What kind of key reference ``key`` is (key ARN, alias ARN, alias name or key id)."""
        return parse_key_ref(self.key)

    @property
    def needs_resolution(self) -> bool:
        """True while ``key`` is an alias or key id that DescribeKey must turn into a key ARN."""
        return self.key_ref.needs_resolution

    @property
    def key_arn(self) -> str:
        """The key ARN; raises if ``key`` is still an alias or key id."""
        ref = self.key_ref
        if ref.needs_resolution:
            what = "a key id" if ref.kind == "key_id" else "an alias"
            raise UserError(
                f"key {quoted(self.key, 80)} is {what}; resolve it to a key ARN with "
                "kms:DescribeKey first (EMR Serverless accepts only key ARNs)",
                field="key",
            )
        return self.key

    def with_key_arn(self, arn: str) -> DiskEncryption:
        """The same context with ``key`` replaced by the key ARN it resolved to."""
        resolved = parse_key_ref(arn)
        if resolved.needs_resolution:
            raise InvalidEncryptionConfig(
                f"{quoted(arn, 80)} is not a key ARN; give arn:aws:kms:REGION:ACCOUNT:key/KEY_ID",
                field="key",
            )
        mine = self.key_ref
        for part in ("partition", "region", "account", "key_id"):
            expected = getattr(mine, part)
            if mine.needs_resolution and expected and expected != getattr(resolved, part):
                raise InvalidEncryptionConfig(
                    f"key ARN {quoted(arn, 80)} does not match {quoted(self.key, 80)}: "
                    f"its {part.replace('_', ' ')} differs; resolve the key again",
                    field="key",
                )
        return DiskEncryption(arn, self.context)

    def secret_warnings(self) -> list[str]:
        """One line per context pair that looks like a secret; never includes the value."""
        found = []
        for position, (key, value) in enumerate(self.context.items(), start=1):
            reason = _secret_in_key(key)
            if reason:
                found.append(
                    f"encryptionContext pair {position}: its key {reason}; {_PLAINTEXT_NOTE}"
                )
                continue
            reason = _secret_name_reason(key) or _secret_value_reason(value)
            if reason:
                found.append(f"encryptionContext key {quoted(key)}: {reason}; {_PLAINTEXT_NOTE}")
        return found

    def warn_if_secret(self) -> list[str]:
        """Issue a ``SecretInContextWarning`` per pair that looks like a secret; return them."""
        found = self.secret_warnings()
        for message in found:
            warnings.warn(message, SecretInContextWarning, stacklevel=2)
        return found

    def to_api(self) -> dict[str, Any]:
        """The ``diskEncryptionConfiguration`` object for CreateApplication, StartJobRun, ..."""
        api: dict[str, Any] = {"encryptionKeyArn": self.key_arn}
        if self.context:
            api["encryptionContext"] = dict(self.context)
        return api

    def to_livy_conf(self) -> dict[str, str]:
        """The Spark properties that put this key on a Livy session's worker disks."""
        conf = {LIVY_KEY_ARN: self.key_arn}
        if self.context:
            for key, value in self.context.items():
                for part, text in (("key", key), ("value", value)):
                    bad = [sep for sep in _LIVY_SEPARATORS if sep in text]
                    if bad:
                        raise InvalidEncryptionConfig(
                            f"encryptionContext pair {quoted(key)} cannot go to Livy: its {part} "
                            f"contains {quoted(bad[0])}, which is ambiguous in the k1:v1,k2:v2 "
                            "form; remove ':' and ',' or set the context on the application",
                            field=LIVY_CONTEXT,
                        )
            conf[LIVY_CONTEXT] = ",".join(f"{k}:{v}" for k, v in self.context.items())
        return conf

    def to_runtime_configuration(self) -> dict[str, Any]:
        """A ``spark-defaults`` classification carrying the same properties (for StartSession)."""
        # AWS does not document this route for Spark Connect sessions; callers say so to users.
        return {"classification": "spark-defaults", "properties": self.to_livy_conf()}

    def to_dict(self) -> dict[str, Any]:
        """``{"key": ..., "context": {...}}``, the friendly shape ``parse`` reads back."""
        return {"key": self.key, "context": dict(self.context)}

    def __repr__(self) -> str:
        # Keys only: values may hold something the user should not see echoed back.
        if not self.context:
            return f"DiskEncryption(key={self.key!r})"
        return f"DiskEncryption(key={self.key!r}, context_keys={tuple(self.context)!r})"

    def __str__(self) -> str:
        if not self.context:
            return f"{self.key} (no encryption context)"
        return f"{self.key} with encryption context keys {', '.join(self.context)}"


def job_run_disk(
    overrides: Mapping[str, Any] | None, application: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, bool]:
    """The ``diskEncryptionConfiguration`` a job run's disks use (None: the AWS owned key), and
    whether the run's own ``configurationOverrides`` decided it.

    A job's configuration replaces the application's as a whole, and an empty one (``{}``)
    removes the application's key for that run: AWS's reading of an empty configuration in
    UpdateApplication and in a job's other overrides (AWS does not say it for this one).
    """
    own = (overrides or {}).get(API_FIELD)
    config = own if own is not None else application
    key = dict(config) if config and config.get("encryptionKeyArn") else None
    return key, own is not None


def _load_json(text: str) -> dict[str, Any] | list[Any]:
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidEncryptionConfig(
            f"disk encryption configuration is not valid JSON ({error.msg} at line "
            f"{error.lineno} column {error.colno}); fix the JSON",
            field=API_FIELD,
        ) from None
    return loaded


def _split_items(text: str, what: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as error:
        raise InvalidEncryptionConfig(
            f"cannot read {what} ({error}); close the quote or escape it with a backslash",
            field=API_FIELD,
        ) from None


def _context_from(context: object) -> object:
    if context is None:
        return {}
    if isinstance(context, Mapping):
        return dict(context)
    if isinstance(context, str):
        return _pairs_from_items(_split_items(context, "encryptionContext"))
    if isinstance(context, Iterable) and not isinstance(context, bytes | bytearray):
        return _pairs_from_items(context)
    # Anything else is left for validation to name its type.
    return context


def _pairs_from_items(items: Iterable[object]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str):
            raise InvalidEncryptionConfig(
                f"encryptionContext item {quoted(item)} has type {type(item).__name__}; "
                "write KEY=VALUE strings",
                field=f"{API_FIELD}.encryptionContext",
            )
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidEncryptionConfig(
                f"encryptionContext item {quoted(item)} has no '='; write KEY=VALUE",
                field=f"{API_FIELD}.encryptionContext",
            )
        if not key:
            raise InvalidEncryptionConfig(
                "encryptionContext item '=...' has an empty key; write KEY=VALUE",
                field=f"{API_FIELD}.encryptionContext",
            )
        if key in pairs:
            raise InvalidEncryptionConfig(
                f"encryptionContext key {quoted(key)} is given twice; give each key once",
                field=f"{API_FIELD}.encryptionContext",
            )
        pairs[key] = value
    return pairs


def _parse_livy_context(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition(":")
        if not sep:
            raise InvalidEncryptionConfig(
                f"{LIVY_CONTEXT} item {quoted(key)} has no ':'; write k1:v1,k2:v2",
                field=LIVY_CONTEXT,
            )
        if key in pairs:
            raise InvalidEncryptionConfig(
                f"{LIVY_CONTEXT} key {quoted(key)} is given twice; give each key once",
                field=LIVY_CONTEXT,
            )
        pairs[key] = value
    return pairs


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
