"""Disk encryption for EMR Serverless workers: a customer managed KMS key and encryption context.

``DiskEncryption`` is validated exactly as the service validates ``diskEncryptionConfiguration``
(the rules live in ``core.encryption_rules``) and renders itself for the API, for a Livy
session's ``conf`` and for a Spark Connect session's runtime configuration. Reading a context as
typed lives in ``core.encryption_context``, the secret warnings in ``core.context_secrets``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emr_cmk_notebook.core.arns import KeyRef, parse_key_ref, quoted
from emr_cmk_notebook.core.context_secrets import SecretInContextWarning, secret_warnings
from emr_cmk_notebook.core.encryption_context import FrozenContext, context_from, split_items
from emr_cmk_notebook.core.encryption_rules import (
    API_FIELD,
    API_MEMBERS,
    SERVICE_CONTEXT_KEY,
    encryption_config_problems,
    raise_first,
)
from emr_cmk_notebook.core.errors import InvalidEncryptionConfig, UserError

LIVY_KEY_ARN = "spark.emr-serverless.disk.encryptionKeyArn"
LIVY_CONTEXT = "spark.emr-serverless.disk.encryptionContext"
# Characters that split the Livy "k1:v1,k2:v2" form; AWS documents no way to escape them.
_LIVY_SEPARATORS = (":", ",")
_FRIENDLY_FIELDS = ("key", "context")


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
        raise_first(encryption_config_problems(config))
        object.__setattr__(self, "context", FrozenContext(context))

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
            return cls._from_items(split_items(text, "disk encryption configuration"))
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
        encryption = cls(key, context_from(context))
        if SERVICE_CONTEXT_KEY in encryption.context:
            raise InvalidEncryptionConfig(
                f"encryption context key {SERVICE_CONTEXT_KEY} belongs to EMR Serverless, which "
                "sets it to the application id in every KMS call; remove that pair (key policies "
                f"can match the service's value with kms:EncryptionContext:{SERVICE_CONTEXT_KEY})",
                field=f"{API_FIELD}.encryptionContext",
            )
        return encryption

    @classmethod
    def from_options(
        cls, key: str | None, context: Mapping[str, str] | Iterable[str] | str | None = None
    ) -> DiskEncryption | None:
        """What ``--key`` and ``--context`` ask for, from every CLI command, magic and API call
        that takes them: None without a key (the application's key applies), and a context
        without a key refused, since the context belongs to a key."""
        if key:
            return cls.from_parts(key, context)
        if context:
            raise UserError("--context needs --key: the context belongs to a key")
        return None

    @classmethod
    def _from_mapping(cls, mapping: Mapping[str, Any]) -> DiskEncryption:
        names = set(mapping)
        unknown = sorted(str(name) for name in names - {*API_MEMBERS, *_FRIENDLY_FIELDS})
        if unknown:
            problem = f"has unknown field {quoted(unknown[0])}"
        elif names & set(API_MEMBERS) and names & set(_FRIENDLY_FIELDS):
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
        return secret_warnings(self.context)

    def warn_if_secret(self) -> list[str]:
        """Issue a ``SecretInContextWarning`` per pair that looks like a secret; return them."""
        found = secret_warnings(self.context)
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
