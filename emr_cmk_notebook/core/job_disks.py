"""Which disk encryption a job run gets: its own ``configurationOverrides`` or its application's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emr_cmk_notebook.core.encryption_rules import API_FIELD


def job_run_disk(
    overrides: Mapping[str, Any] | None, application: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, bool]:
    """The ``diskEncryptionConfiguration`` a job run's disks use (None: the AWS owned key), and
    whether the run's own ``configurationOverrides`` decided it.

    A job's configuration replaces the application's as a whole, and an empty one (``{}``)
    removes the application's key for that run: AWS's reading of an empty configuration in
    UpdateApplication and in a job's other overrides (AWS does not say it for this one).
    """
    own = (overrides or {}).get(API_FIELD)
    config = own if own is not None else application
    key = dict(config) if config and config.get("encryptionKeyArn") else None
    return key, own is not None
