"""Who used a KMS key, from CloudTrail records, as a typed pandas DataFrame.

Importing this package is cheap; pandas and pyarrow load on first use of the names below.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COLUMNS", "UsageFrame", "parse_records", "read_file"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from emr_cmk_notebook.usage import frame

        return getattr(frame, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
