"""A compliance report an auditor can keep: sessions, keys, contexts, readiness, evidence, usage.

    report = ComplianceReport.build(manager.sessions(), readiness=[check], target=target)
    report.save("evidence/report.html")   # one standalone HTML file, written atomically

The report holds identifiers only (ARNs, ids, event ids, context pairs, verdicts): never a
credential or token, so it can be filed as it is.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.readiness.report import folded
from emr_cmk_notebook.sessions.evidence import SessionEvidence, verify_session
from emr_cmk_notebook.sessions.results import SessionInfo
from emr_cmk_notebook.usage.frame import iso_time
from emr_cmk_notebook.usage.key_usage import KeyUsage
from emr_cmk_notebook.usage.views import KernelSession

_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}"
    "th{background:#f6f8fa}code{font-size:90%}"
)
# Tables fit the page: fixed columns whose cells wrap anywhere (ARNs have no spaces), so an
# auditor sees every value whole. Inline, so the styles hold in a notebook as well.
_TABLE = 'style="table-layout:fixed;width:100%;border-collapse:collapse"'
_CELL = 'style="overflow-wrap:anywhere;word-break:break-word;vertical-align:top;text-align:left"'
# Starting a session takes a moment; usage is read from a little before the first start.
_USAGE_MARGIN = pd.Timedelta(minutes=5)


@dataclass
class ComplianceReport:
    """Sessions with their key, context, readiness at start, CloudTrail evidence and key usage."""

    title: str
    created_at: str
    sessions: list[SessionInfo]
    readiness: list[Any] = field(default_factory=list)
    evidence: list[SessionEvidence] = field(default_factory=list)
    usage: list[KeyUsage] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        sessions: Iterable[SessionInfo],
        *,
        readiness: Iterable[Any] = (),
        target: AwsTarget | None = None,
        title: str = "EMR Serverless disk encryption: compliance evidence",
    ) -> ComplianceReport:
        """Verify each session in CloudTrail and read the usage of every key they used.

        ``readiness`` are the ``ReadinessReport`` objects taken when the sessions started
        (``%emr_key_check`` or ``check_readiness``); each is shown next to the sessions whose
        key and application it checked.
        """
        target = target or AwsTarget()
        sessions = list(sessions)
        if not sessions:
            raise UserError("no sessions to report on", hint="start a session first")
        report = cls(
            title=title,
            created_at=iso_time(pd.Timestamp.now(tz="UTC").floor("s")),
            sessions=sessions,
            readiness=list(readiness),
            evidence=[verify_session(s, target) for s in sessions],
        )
        starts = [s.started_at for s in sessions if s.started_at is not None]
        since = pd.Timestamp(min(starts), unit="s", tz="UTC") if starts else None
        known = [_kernel_session(s) for s in sessions]
        for key_arn in dict.fromkeys(s.key_arn for s in sessions if s.key_arn):
            report.usage.append(
                KeyUsage.fetch(
                    key_arn,
                    since=None if since is not None else "1d",
                    start=(since - _USAGE_MARGIN).floor("s") if since is not None else None,
                    target=target,
                    sessions=known,
                    cache=False,
                )
            )
        return report

    def readiness_for(self, session: SessionInfo) -> Any | None:
        """The readiness report that checked this session's key on its application, if any."""
        for check in self.readiness:
            if check.key_arn == session.key_arn and check.application_id == session.application_id:
                return check
        return None

    def session_rows(self) -> list[dict[str, str]]:
        """One row per session: key, source, context, readiness verdict and evidence."""
        rows = []
        for info, proof in zip(self.sessions, self.evidence, strict=True):
            check = self.readiness_for(info)
            rows.append(
                {
                    "session": str(info.id) + (f" ({info.name})" if info.name else ""),
                    "application": info.application_id,
                    "execution role": info.role_arn or "",
                    "disk key": info.key_text(),
                    "encryption context": _pairs(info.context),
                    "started": proof.started or "(unknown)",
                    "readiness at start": check.verdict if check is not None else "(not recorded)",
                    "CloudTrail evidence": proof.message,
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The whole report as plain data."""
        return {
            "title": self.title,
            "created_at": self.created_at,
            "sessions": [s.to_dict() for s in self.sessions],
            "readiness": [r.to_dict() for r in self.readiness],
            "evidence": [e.to_dict() for e in self.evidence],
            "usage": [
                {"key_arn": u.key_arn, "headline": u.headline(), "notes": list(u.notes)}
                for u in self.usage
            ],
        }

    def __repr__(self) -> str:
        lines = [f"{self.title} (made {self.created_at})"]
        for row in self.session_rows():
            lines.append("; ".join(f"{k}: {v}" for k, v in row.items()))
        lines += [u.headline() for u in self.usage]
        return "\n".join(lines)

    def _body(self) -> str:
        esc = html.escape
        parts = [
            f"<h1>{esc(self.title)}</h1>",
            f"<p>Made {esc(self.created_at)}. Identifiers only: no credential or token.</p>",
            "<h2>Sessions</h2>",
            _table(self.session_rows()),
            "<h2>Readiness at start time</h2>",
        ]
        if not self.readiness:
            parts.append("<p>No readiness check was recorded.</p>")
        for check in self.readiness:
            parts.append(
                f"<h3>{esc(check.key_arn or check.key)} on {esc(check.application_id)}: "
                f"{esc(check.verdict)}</h3>"
            )
            parts.append(_readiness_table(check))
        parts.append("<h2>Key usage from CloudTrail</h2>")
        for usage in self.usage:
            parts.append(f"<h3>{esc(usage.headline())}</h3>")
            parts += [f"<p><i>{esc(note)}</i></p>" for note in usage.notes]
            if not usage.frame.empty:
                parts.append(usage.summary().to_html(index=False))
                found = usage.findings()
                parts.append(f"<p>{len(found)} finding(s)</p>")
                if len(found):
                    parts.append(found.to_html(index=False))
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self._body()

    def to_html(self) -> str:
        """The report as one standalone HTML document."""
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body>{self._body()}</body></html>"
        )

    def save(self, path: str | Path) -> Path:
        """Write the HTML report to ``path`` whole or not at all; returns the absolute path."""
        path = Path(path).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8"
        ) as out:
            out.write(self.to_html())
        os.replace(out.name, path)
        return path


def _kernel_session(info: SessionInfo) -> KernelSession:
    started = None
    if info.started_at is not None:
        started = pd.Timestamp(info.started_at, unit="s", tz="UTC").floor("s")
    return KernelSession(str(info.id), info.application_id, dict(info.context), started=started)


def _pairs(context: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in context.items()) or "(none)"


def _table(rows: list[dict[str, str]]) -> str:
    """An HTML table that fits the page, one column per key of the first row."""
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th {_CELL}>{html.escape(name)}</th>" for name in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td {_CELL}>{html.escape(v)}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _readiness_table(check: Any) -> str:
    """A readiness report's checks: one-line reasons, what AWS said folded under them."""
    esc = html.escape
    rows = []
    for item in check.checks:
        said = folded("What AWS said", item.detail) if item.detail else ""
        rows.append(
            f"<tr><td {_CELL}>{esc(item.title)}</td><td {_CELL}>{esc(item.status)}</td>"
            f"<td {_CELL}>{esc(item.reason)}{said}</td></tr>"
        )
    head = "".join(f"<th {_CELL}>{name}</th>" for name in ("check", "status", "reason"))
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
