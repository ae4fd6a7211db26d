"""Fault injection for tests and benchmarks: added latency, throttling and 5xx answers."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.settings import checked_setting


@dataclass
class Faults:
    """What the backend does to each AWS API call before serving it."""

    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    # Services the faults apply to (signing names such as "kms"); empty means every service.
    services: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("latency_ms", "throttle_rate", "error_rate"):
            setattr(self, name, checked_setting(name, getattr(self, name)))
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        """Faults from a settings document; unknown names are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def apply(self, service: str) -> None:
        """Sleep, or raise the injected error, for one call to ``service``."""
        if self.services and service not in self.services:
            return
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000.0)
        with self._lock:
            draw = self._random.random()
        if draw < self.throttle_rate:
            raise AwsError("ThrottlingException", "Rate exceeded", 400)
        if draw < self.throttle_rate + self.error_rate:
            raise AwsError("InternalFailure", "Injected fault: the service is unavailable", 500)
