"""The encryption-context editor: up to 8 key/value rows, each with its own message line."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping

from emr_cmk_notebook.core.arns import quoted
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.encryption_rules import CONTEXT_MAX_PAIRS
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.widgets.factory import WidgetFactory

# The checks on one pair do not depend on the key; a well-formed key ARN lets DiskEncryption run
# them (lengths, the Livy separators, the secret heuristics) with its own messages.
_PROBE_KEY = "arn:aws:kms:us-east-1:000000000000:key/context-editor-probe"


def error_line(message: str) -> str:
    """An error shown beside the field that caused it."""
    return f'<span style="color:#b3261e">✖ {html.escape(message, quote=False)}</span>'


def warning_line(message: str) -> str:
    """A warning shown beside the field it is about."""
    return f'<span style="color:#8a5300">⚠ {html.escape(message, quote=False)}</span>'


class ContextRow:
    """One key/value pair with a remove button and the line that says what is wrong with it."""

    def __init__(self, factory: WidgetFactory, key: str, value: str):
        self.key = factory.text(value=key, placeholder="key, e.g. project")
        self.value = factory.text(value=value, placeholder="value (logged in plaintext)")
        self.remove = factory.button(description="remove", icon="trash")
        self.message = factory.html()
        self.error: str | None = None
        self.warning: str | None = None
        self.box = factory.hbox([self.key, self.value, self.remove, self.message])

    def show(self, error: str | None, warning: str | None) -> None:
        self.error, self.warning = error, warning
        if error:
            self.message.value = error_line(error)
        elif warning:
            self.message.value = warning_line(warning)
        else:
            self.message.value = ""


class ContextEditor:
    """Encryption context pairs; ``pairs()`` returns them once every row is valid."""

    def __init__(
        self,
        factory: WidgetFactory | None = None,
        pairs: Mapping[str, str] | Iterable[str] = (),
        on_change: Callable[[], None] | None = None,
    ):
        self.factory = factory or WidgetFactory()
        self.on_change = on_change
        self.rows: list[ContextRow] = []
        self.add_button = self.factory.button(description="add pair", icon="plus")
        self.add_button.on_click(lambda _: self.add_row())
        self.message = self.factory.html()
        self.error: str | None = None
        self.list = self.factory.vbox([])
        label = self.factory.html("<b>encryption context</b> (optional, at most 8 pairs)")
        self.box = self.factory.vbox([self.factory.hbox([label, self.message]), self.list])
        self.set_pairs(pairs)

    def add_row(self, key: str = "", value: str = "") -> ContextRow:
        """Add a pair (the add button stops at 8 rows)."""
        row = self._new_row(key, value)
        self.rows.append(row)
        self._changed()
        return row

    def remove_row(self, row: ContextRow) -> None:
        """Remove a pair."""
        self.rows.remove(row)
        self._changed()

    def set_pairs(self, pairs: Mapping[str, str] | Iterable[str]) -> None:
        """Replace every row, from a mapping or K=V strings (as ``EmrCmk.default_context``)."""
        items = pairs.items() if isinstance(pairs, Mapping) else (_split(p) for p in pairs)
        self.rows = [self._new_row(key, value) for key, value in items]
        self._changed()

    @property
    def valid(self) -> bool:
        """True when the service would accept these pairs."""
        return self.error is None and all(row.error is None for row in self.rows)

    def problems(self) -> list[str]:
        """Every error line the editor shows, in order."""
        found = [self.error] if self.error else []
        return found + [row.error for row in self.rows if row.error]

    def warnings(self) -> list[str]:
        """Every warning line (secret-looking pairs)."""
        return [row.warning for row in self.rows if row.warning]

    def pairs(self) -> dict[str, str]:
        """The context as a dict; refuses while a row is invalid."""
        if not self.valid:
            raise UserError(self.problems()[0], field="context")
        return {row.key.value: row.value.value for row in self.rows}

    def validate(self) -> None:
        """Check every row and the row count, and show each result beside its field."""
        seen: set[str] = set()
        for row in self.rows:
            key, value = row.key.value, row.value.value
            error, warning = _pair_check(key, value)
            if error is None and key in seen:
                error = f"key {quoted(key)} is given twice; give each key once"
            seen.add(key)
            row.show(error, warning)
        extra = len(self.rows) - CONTEXT_MAX_PAIRS
        self.error = (
            f"{len(self.rows)} pairs; at most {CONTEXT_MAX_PAIRS} are allowed, remove {extra}"
            if extra > 0
            else None
        )
        self.message.value = error_line(self.error) if self.error else ""
        self.add_button.disabled = len(self.rows) >= CONTEXT_MAX_PAIRS

    def _new_row(self, key: str, value: str) -> ContextRow:
        row = ContextRow(self.factory, key, value)
        row.key.observe(lambda _: self._changed(), names="value")
        row.value.observe(lambda _: self._changed(), names="value")
        row.remove.on_click(lambda _: self.remove_row(row))
        return row

    def _changed(self) -> None:
        self.list.children = [row.box for row in self.rows] + [self.add_button]
        self.validate()
        if self.on_change is not None:
            self.on_change()


def _pair_check(key: str, value: str) -> tuple[str | None, str | None]:
    try:
        probe = DiskEncryption.from_parts(_PROBE_KEY, {key: value})
        probe.to_livy_conf()
    except UserError as exc:
        return str(exc), None
    found = probe.secret_warnings()
    return None, (found[0] if found else None)


def _split(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    return key, value
