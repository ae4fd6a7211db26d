"""EMR release labels in both of AWS's forms, the Spark each runs, and where features begin.

``emr-X.Y.Z`` are the Amazon EMR releases (emr-7.x runs Spark 3.5). ``emr-spark-X.Y.Z`` is AWS's
runtime for Apache Spark (emr-spark-8.0.0 runs Spark 4.0.2); it counts as later than every
emr-7.x, so it has every feature emr-7.x has. The client and the local backend read labels here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FORMS = "emr-X.Y.Z or emr-spark-X.Y.Z"
_LABEL = re.compile(r"emr-(spark-)?(\d+)\.(\d+)\.(\d+)")
# The Spark major.minor of each release line: (runtime for Apache Spark?, major) -> Spark.
_SPARK = {(False, 7): "3.5", (True, 8): "4.0"}


@dataclass(frozen=True, order=True)
class Release:
    """One release label; releases compare by version, whichever form they are written in."""

    version: tuple[int, int, int]
    label: str = field(compare=False)
    spark_runtime: bool = field(compare=False, default=False)

    @property
    def spark(self) -> str | None:
        """The Spark ``major.minor`` this release runs, when known."""
        return _SPARK.get((self.spark_runtime, self.version[0]))

    def __str__(self) -> str:
        return self.label


def parse_release(label: str) -> Release | None:
    """The release a label names, or None when it is in neither form."""
    match = _LABEL.fullmatch(label.strip()) if isinstance(label, str) else None
    if match is None:
        return None
    version = (int(match[2]), int(match[3]), int(match[4]))
    return Release(version, label.strip(), spark_runtime=bool(match[1]))


# The first release of each thing EMR Serverless gates on the release label.
SERVERLESS = Release((6, 6, 0), "emr-6.6.0")
LIVY_ENDPOINT = Release((6, 14, 0), "emr-6.14.0")
LIVY_TTL = Release((7, 8, 0), "emr-7.8.0")
SESSIONS = Release((7, 13, 0), "emr-7.13.0")


def supports(label: str, floor: Release) -> bool | None:
    """Whether a release is ``floor`` or later; None when the label is in neither form."""
    release = parse_release(label)
    return None if release is None else release >= floor


def spark_of(label: str) -> str | None:
    """The Spark ``major.minor`` of a release label, when known."""
    release = parse_release(label)
    return None if release is None else release.spark
