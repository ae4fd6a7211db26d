"""The embedded local backend: KMS, IAM, STS, S3, EMR Serverless and CloudTrail on loopback.

    from emr_cmk_notebook import local
    with local.start() as backend:          # a fresh backend with the demo seed
        kms = backend.client("kms")

``start()`` runs the backend in a child process and returns a handle; ``attach()`` finds one that
``emr-cmk local start --detach`` left running. Importing this module stays light: moto is only
imported by the child process.
"""

from __future__ import annotations

from emr_cmk_notebook.local.process import (
    ANALYTICS_ACCOUNT,
    SECURITY_ACCOUNT,
    LocalBackend,
    attach,
    ensure,
    start,
    stop,
)

__all__ = [
    "ANALYTICS_ACCOUNT",
    "SECURITY_ACCOUNT",
    "LocalBackend",
    "attach",
    "ensure",
    "start",
    "stop",
]
