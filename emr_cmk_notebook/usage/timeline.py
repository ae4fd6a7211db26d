"""A timeline of key use per application, drawn as plain SVG (no plotting library needed).

Each application (or session, when sessions were matched) gets a lane; time runs left to right
in equal bins; a bar's height is the number of calls in its bin, coloured by kind of call.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import pandas as pd

from emr_cmk_notebook.usage.views import workload_label

KINDS = ("GenerateDataKey", "Decrypt", "other", "denied")
COLOURS = {
    "GenerateDataKey": "#1f77b4",
    "Decrypt": "#2ca02c",
    "other": "#7f7f7f",
    "denied": "#d62728",
}
_WIDTH = 760
_LABEL_WIDTH = 260
_LANE_HEIGHT = 34
_AXIS_HEIGHT = 40


@dataclass
class Timeline:
    """Calls per lane and time bin, ready to draw or to read as data."""

    counts: pd.DataFrame  # index: (lane, bin start); columns: KINDS
    start: pd.Timestamp
    end: pd.Timestamp
    bins: int

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        bins: int = 60,
    ) -> Timeline:
        """Bin the calls of a usage frame between ``start`` and ``end`` (default: its range)."""
        times = frame["event_time"]
        start = start if start is not None else (times.min() if len(frame) else pd.NaT)
        end = end if end is not None else (times.max() if len(frame) else pd.NaT)
        if frame.empty or pd.isna(start):
            empty = pd.DataFrame(columns=list(KINDS), dtype=int)
            return cls(empty, start, end, bins)
        if end <= start:
            end = start + pd.Timedelta(seconds=1)
        width = (end - start) / bins
        position = ((times - start) / width).clip(0, bins - 1).astype(int)
        sessions = frame["session"] if "session" in frame else pd.Series(None, index=frame.index)
        lanes = [
            workload_label(a, s)
            for a, s in zip(frame["application_id"].astype(object), sessions, strict=True)
        ]
        names = frame["event_name"].astype(object)
        kind = names.where(names.isin(["GenerateDataKey", "Decrypt"]), "other")
        kind = kind.where(frame["error_code"].isna(), "denied")
        data = pd.DataFrame({"lane": lanes, "bin": position, "kind": kind})
        counts = (
            data.groupby(["lane", "bin", "kind"]).size().unstack("kind", fill_value=0)
        ).reindex(columns=list(KINDS), fill_value=0)
        return cls(counts, start, end, bins)

    @property
    def lanes(self) -> list[str]:
        """The lane labels, in drawing order."""
        return sorted(set(self.counts.index.get_level_values(0))) if len(self.counts) else []

    def to_dict(self) -> dict[str, Any]:
        """The bins as plain data: per lane, the bin number and its count per kind."""
        lanes: dict[str, list[dict[str, int]]] = {}
        for (lane, number), row in self.counts.iterrows():
            lanes.setdefault(lane, []).append({"bin": int(number), **row.astype(int).to_dict()})
        return {
            "start": None if pd.isna(self.start) else self.start.isoformat(),
            "end": None if pd.isna(self.end) else self.end.isoformat(),
            "bins": self.bins,
            "lanes": lanes,
        }

    def to_svg(self) -> str:
        """The timeline as an SVG document."""
        lanes = self.lanes
        if not lanes:
            return (
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="30">'
                '<text x="4" y="20" font-family="sans-serif" font-size="12">'
                "no key use in this window</text></svg>"
            )
        plot = _WIDTH - _LABEL_WIDTH
        step = plot / self.bins
        height = len(lanes) * _LANE_HEIGHT + _AXIS_HEIGHT
        peak = max(1, int(self.counts.sum(axis=1).max()))
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
            'font-family="sans-serif" font-size="11">'
        ]
        for number, lane in enumerate(lanes):
            top = number * _LANE_HEIGHT
            base = top + _LANE_HEIGHT - 6
            parts.append(f'<text x="4" y="{base - 8}">{html.escape(_short(lane))}</text>')
            parts.append(
                f'<line x1="{_LABEL_WIDTH}" y1="{base}" x2="{_WIDTH}" y2="{base}" stroke="#ccc"/>'
            )
            for (_, bin_number), row in self.counts.loc[[lane]].iterrows():
                x = _LABEL_WIDTH + bin_number * step
                y = base
                for kind in KINDS:
                    count = int(row[kind])
                    if not count:
                        continue
                    bar = (_LANE_HEIGHT - 10) * count / peak
                    y -= bar
                    parts.append(
                        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" '
                        f'height="{bar:.1f}" fill="{COLOURS[kind]}">'
                        f"<title>{html.escape(lane)}: {count} {kind}</title></rect>"
                    )
        axis = len(lanes) * _LANE_HEIGHT + 14
        parts.append(f'<text x="{_LABEL_WIDTH}" y="{axis}">{_when(self.start)}</text>')
        parts.append(
            f'<text x="{_WIDTH - 4}" y="{axis}" text-anchor="end">{_when(self.end)}</text>'
        )
        legend = _LABEL_WIDTH
        for kind in KINDS:
            parts.append(
                f'<rect x="{legend}" y="{axis + 8}" width="10" height="10" '
                f'fill="{COLOURS[kind]}"/><text x="{legend + 14}" y="{axis + 17}">{kind}</text>'
            )
            legend += 120
        parts.append("</svg>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.to_svg()


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(moment: pd.Timestamp) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
