"""An encryption context as users type it (a mapping, ``K=V`` items or ``"K=V K=V"`` text),
read into a mapping that cannot change once validated."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator, Mapping

from emr_cmk_notebook.core.arns import quoted
from emr_cmk_notebook.core.encryption_rules import API_FIELD
from emr_cmk_notebook.core.errors import InvalidEncryptionConfig


class FrozenContext(Mapping[str, str]):
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


def split_items(text: str, what: str) -> list[str]:
    """``text`` split like a shell line; an unclosed quote is a one-line error naming ``what``."""
    try:
        return shlex.split(text)
    except ValueError as error:
        raise InvalidEncryptionConfig(
            f"cannot read {what} ({error}); close the quote or escape it with a backslash",
            field=API_FIELD,
        ) from None


def context_from(context: object) -> object:
    """A context given as a mapping, K=V items or K=V text, as a dict (other types pass through
    for validation to name)."""
    if context is None:
        return {}
    if isinstance(context, Mapping):
        return dict(context)
    if isinstance(context, str):
        return pairs_from_items(split_items(context, "encryptionContext"))
    if isinstance(context, Iterable) and not isinstance(context, bytes | bytearray):
        return pairs_from_items(context)
    # Anything else is left for validation to name its type.
    return context


def pairs_from_items(items: Iterable[object]) -> dict[str, str]:
    """``["K=V", ...]`` as a dict; a malformed or repeated item is a one-line error."""
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
