"""Small HTML pieces that result objects use in ``_repr_html_`` (no IPython needed)."""

from __future__ import annotations

import html
from typing import Any


def table_html(rows: list[tuple[str, Any]], title: str | None = None) -> str:
    """A two-column HTML table of (name, value) rows, escaped."""
    head = (
        f"<caption style='text-align:left'><b>{html.escape(title)}</b></caption>" if title else ""
    )
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'><code>{html.escape(str(v))}</code></td></tr>"
        for k, v in rows
    )
    return f"<table>{head}{body}</table>"
