"""The resource usage figures the emulated service reports for job runs and sessions
(``totalResourceUtilization``, ``billedResourceUtilization``): elapsed time times the workers'
configured size. The local backend runs one Spark driver, so only the sizes are AWS-like."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# EMR Serverless's default worker: 4 vCPU, 16 GB of memory, 20 GB of disk.
DEFAULT_WORKER = (4.0, 16.0, 20.0)
# What AWS bills at least for a run or session, in seconds.
BILLED_MINIMUM_SECONDS = 60
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)b?", re.IGNORECASE)
_GB = {"k": 1 / 1024**2, "m": 1 / 1024, "g": 1.0, "t": 1024.0, "": 1 / 1024**3}


def figures(seconds: float, properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``totalExecutionDurationSeconds`` and both utilization objects for ``seconds`` of work by
    the driver and ``spark.executor.instances`` executors sized by the Spark properties."""
    seconds = int(seconds)
    return {
        "totalExecutionDurationSeconds": seconds,
        "totalResourceUtilization": _used(seconds, properties or {}),
        "billedResourceUtilization": _used(max(seconds, BILLED_MINIMUM_SECONDS), properties or {}),
    }


def _used(seconds: int, properties: Mapping[str, Any]) -> dict[str, float]:
    vcpu = memory = disk = 0.0
    executors = _number(properties.get("spark.executor.instances"), 0.0)
    for role, count in (("driver", 1.0), ("executor", executors)):
        vcpu += count * _number(properties.get(f"spark.{role}.cores"), DEFAULT_WORKER[0])
        memory += count * _gigabytes(properties.get(f"spark.{role}.memory"), DEFAULT_WORKER[1])
        disk += count * _gigabytes(
            properties.get(f"spark.emr-serverless.{role}.disk"), DEFAULT_WORKER[2]
        )
    hours = seconds / 3600
    return {
        "vCPUHour": round(vcpu * hours, 6),
        "memoryGBHour": round(memory * hours, 6),
        "storageGBHour": round(disk * hours, 6),
    }


def _number(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


def _gigabytes(value: Any, default: float) -> float:
    found = _SIZE.fullmatch(str(value).strip()) if value is not None else None
    if found is None:
        return default
    return float(found[1]) * _GB[found[2].lower()]
