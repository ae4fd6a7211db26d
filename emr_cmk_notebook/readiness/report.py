"""``ReadinessReport``: the verdict of every check, as text, HTML, a dict and a DataFrame."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.readiness.checks import Check
from emr_cmk_notebook.readiness.fixes import Fix

# Without these the rest of the report says nothing: the key, the application, the role.
_MUST_BE_SEEN = ("key_found", "application_found", "role_found")
_MARKS = {"pass": "✔", "fail": "✘", "warn": "!", "unknown": "?"}
_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "warn": "#9a6700", "unknown": "#6e7781"}


@dataclass
class ReadinessReport:
    """Whether a key, an application, an execution role and the caller let encrypted work start."""

    key: str
    key_arn: str | None
    application_id: str
    role_arn: str
    caller_arn: str | None
    region: str
    checks: list[Check]
    transport: str = "livy"
    elapsed_s: float = 0.0
    target: AwsTarget | None = field(default=None, repr=False, compare=False)

    @property
    def ready(self) -> bool:
        """True when no check failed and the key, application and role were all seen."""
        seen = all(c.status == "pass" for c in self.checks if c.id in _MUST_BE_SEEN)
        return seen and not self.failures

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "fail"]

    @property
    def unknowns(self) -> list[Check]:
        """The checks that could not be decided (each says how to check by hand)."""
        return [c for c in self.checks if c.status == "unknown"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    @property
    def fixes(self) -> list[Fix]:
        """Every fix of every failing or undecided check."""
        return [fix for check in self.checks for fix in check.fixes]

    def check(self, check_id: str) -> Check:
        """One check by id, e.g. ``report.check("service_access")``."""
        return next(c for c in self.checks if c.id == check_id)

    @property
    def verdict(self) -> str:
        """``ready``, ``ready (N unverified)`` or ``not ready``, for one-line summaries."""
        if not self.ready:
            return "not ready"
        if self.unknowns:
            return f"ready ({len(self.unknowns)} check(s) could not be verified)"
        return "ready"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (the ``--json`` output of ``emr-cmk key-check``)."""
        return {
            "ready": self.ready,
            "verdict": self.verdict,
            "key": self.key,
            "key_arn": self.key_arn,
            "application_id": self.application_id,
            "role_arn": self.role_arn,
            "caller_arn": self.caller_arn,
            "region": self.region,
            "transport": self.transport,
            "elapsed_s": round(self.elapsed_s, 3),
            "checks": [check.to_dict() for check in self.checks],
        }

    def to_frame(self) -> Any:
        """One row per check: id, title, status, reason, source, how_to_check, fixes, detail."""
        import pandas as pd

        rows = [
            {
                "id": c.id,
                "title": c.title,
                "status": c.status,
                "reason": c.reason,
                "source": c.source,
                "how_to_check": c.how_to_check,
                "fixes": len(c.fixes),
                "detail": c.detail,
            }
            for c in self.checks
        ]
        return pd.DataFrame(rows)

    def to_text(self) -> str:
        """The report as plain text, fixes under each failing check."""
        lines = [
            f"Key readiness for {self.key} on application {self.application_id} "
            f"with role {self.role_arn}: {self.verdict.upper()}"
        ]
        if self.key_arn and self.key_arn != self.key:
            lines.append(f"  key ARN: {self.key_arn}")
        for c in self.checks:
            lines.append(f"  [{c.status.upper():7}] {c.title}: {c.reason}")
            if c.status in ("fail", "unknown") and c.how_to_check:
                lines.append(f"            how to check: {c.how_to_check}")
            if c.detail:
                lines.append(f"            AWS said: {' '.join(c.detail.split())}")
            for fix in c.fixes:
                lines.append(f"            fix: {_fix_title(fix)}; add:")
                statements = json.dumps(list(fix.statements), indent=2).splitlines()
                lines.extend(f"              {line}" for line in statements)
                lines.append("            apply with:")
                lines.extend(f"              {line}" for line in fix.command.splitlines())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = _COLOURS["pass" if self.ready else "fail"]
        rows = []
        for c in self.checks:
            mark = f'<b style="color:{_COLOURS[c.status]}">{_MARKS[c.status]} {c.status}</b>'
            detail = esc(c.reason)
            if c.how_to_check and c.status in ("fail", "unknown"):
                detail += f"<br><i>How to check:</i> {esc(c.how_to_check)}"
            if c.detail:
                detail += folded("What AWS said", c.detail)
            for fix in c.fixes:
                statements = esc(json.dumps(list(fix.statements), indent=2))
                detail += (
                    f"<details><summary>Fix: {esc(_fix_title(fix))}</summary>"
                    f"<pre>{statements}</pre><pre>{esc(fix.command)}</pre></details>"
                )
            rows.append(
                f"<tr><td>{mark}</td><td>{esc(c.title)}</td>"
                f'<td style="text-align:left">{detail}</td></tr>'
            )
        return (
            f'<div><p><b style="color:{colour}">{esc(self.verdict)}</b>: {esc(self.key)} on '
            f"application {esc(self.application_id)} with role {esc(self.role_arn)} "
            f"({esc(self.transport)})</p>"
            "<table><thead><tr><th>status</th><th>check</th><th>reason</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )


_PLACES = {
    "key_policy": "the key policy",
    "user_policy": "the user's identity policy",
    "role_policy": "the role's identity policy",
    "trust_policy": "the role's trust policy",
}


def _fix_title(fix: Fix) -> str:
    """``add to the user's identity policy of alice, applied by ...`` in one line."""
    where = f"add to {_PLACES[fix.kind]}"
    if fix.kind != "key_policy" and fix.target:
        where += f" of {fix.target}"
    who = f", applied by {fix.who}" if fix.who else ""
    note = f" ({fix.note})" if fix.note else ""
    return f"{where}{who}{note}"


def folded(summary: str, text: str) -> str:
    """HTML that shows ``summary`` and folds ``text`` (raw AWS messages) under it."""
    return (
        f"<details><summary>{html.escape(summary)}</summary>"
        f'<pre style="white-space:pre-wrap">{html.escape(text)}</pre></details>'
    )
