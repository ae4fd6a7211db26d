"""What EMR Serverless says a session or job run used (``totalResourceUtilization``,
``billedResourceUtilization`` of GetSession and GetJobRun), read and said the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FIGURES = ("vCPUHour", "memoryGBHour", "storageGBHour")


def utilization(view: Mapping[str, Any]) -> dict[str, dict[str, float]] | None:
    """``{"total": ..., "billed": ...}`` from a GetSession or GetJobRun view; None when the API
    gives neither (a summary, a run that has not finished)."""
    found = {}
    for kind in ("total", "billed"):
        used = view.get(f"{kind}ResourceUtilization")
        if isinstance(used, Mapping):
            found[kind] = {k: float(used[k]) for k in FIGURES if k in used}
    return found or None


def usage_rows(used: Mapping[str, Mapping[str, float]] | None) -> list[tuple[str, str]]:
    """``total usage`` and ``billed usage`` rows in vCPU-hours and GB-hours."""
    return [
        (
            f"{kind} usage",
            f"{figures.get('vCPUHour', 0):.3f} vCPU-hours, "
            f"{figures.get('memoryGBHour', 0):.3f} memory GB-hours, "
            f"{figures.get('storageGBHour', 0):.3f} storage GB-hours",
        )
        for kind, figures in (used or {}).items()
        if figures
    ]
