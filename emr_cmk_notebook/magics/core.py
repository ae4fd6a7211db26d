"""The ``EmrCmk`` magics: thin parse-then-call wrappers over the Python API.

Settings are traitlets, so ``%config EmrCmk.default_role = "arn:..."`` works, and so does an IPython
profile's config file. Each magic's handling lives in its own module under ``magics/``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Enum, Float, Int, List, TraitError, Unicode, observe, validate

from emr_cmk_notebook.core.errors import EmrCmkError
from emr_cmk_notebook.magics.args import HelpShown


@magics_class
class EmrCmk(Magics):
    """EMR Serverless sessions encrypted with your KMS key, and the checks and audits around it."""

    region = Unicode(
        None, allow_none=True, config=True, help="AWS region (default: the usual chain)"
    )
    profile = Unicode(None, allow_none=True, config=True, help="AWS profile name")
    endpoint_url = Unicode(
        None, allow_none=True, config=True, help="one endpoint for every service (tests, emulators)"
    )
    default_application = Unicode(
        None,
        allow_none=True,
        config=True,
        help="application id used when --application-id is omitted",
    )
    default_role = Unicode(
        None, allow_none=True, config=True, help="execution role ARN used when --role is omitted"
    )
    default_key = Unicode(
        None, allow_none=True, config=True, help="KMS key (ARN or alias) used when --key is omitted"
    )
    default_context = List(
        Unicode(), default_value=[], config=True, help="encryption context pairs, as K=V strings"
    )
    default_transport = Enum(
        ["livy", "connect"], default_value="livy", config=True, help="interactive transport"
    )
    wait_timeout = Int(900, config=True, help="seconds to wait for an application or session")
    idle_notice_minutes = Float(
        30.0,
        config=True,
        help="say so (one line, before a cell runs) when a session this kernel started has been "
        "idle longer than this; 0: never",
    )
    debug = Bool(
        False, config=True, help="show emr-cmk errors with their full traceback, not one line"
    )
    max_result_bytes = Int(
        256 * 1024 * 1024,
        config=True,
        help="largest result (Arrow bytes) %%emr_spark -o brings into this kernel",
    )
    # Far under Livy's limit on one message from the session (livy.rsc.rpc.max.size, 50 MiB).
    result_chunk_bytes = Int(
        8 * 1024 * 1024,
        config=True,
        help="characters of a -o result per Livy statement output (Livy's limit: 50 MiB)",
    )
    progress = Enum(
        ["auto", "widget", "text", "off"],
        default_value="auto",
        config=True,
        help="a running statement's progress: a widget bar, a text line, or none (auto: the bar "
        "in a kernel, with the line for frontends without widgets)",
    )
    _kernel: Any = None

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self._idle_said: set[tuple[Any, Any]] = set()

    @validate("max_result_bytes", "result_chunk_bytes")
    def _positive(self, proposal: dict[str, Any]) -> int:
        name = proposal["trait"].name
        if proposal["value"] < 1:
            raise TraitError(f"EmrCmk.{name} must be at least 1 byte")
        return proposal["value"]

    @observe(
        "region",
        "profile",
        "endpoint_url",
        "default_application",
        "default_role",
        "default_key",
        "default_context",
        "default_transport",
        "wait_timeout",
        "idle_notice_minutes",
        "debug",
        "max_result_bytes",
        "result_chunk_bytes",
        "progress",
    )
    def _echo_change(self, change: dict[str, Any]) -> None:
        print(f"EmrCmk.{change['name']}: {change['old']!r} -> {change['new']!r}")

    def target(self) -> Any:
        """Where AWS calls go, from these settings."""
        from emr_cmk_notebook.clients import AwsTarget

        return AwsTarget(profile=self.profile, region=self.region, endpoint_url=self.endpoint_url)

    def kernel(self) -> Any:
        """This kernel's sessions and what they exposed (one per EmrCmk), at the current target."""
        from emr_cmk_notebook.kernel import KernelSessions

        if self._kernel is None:
            self._kernel = KernelSessions(
                target=self.target(),
                namespace=self.shell.user_ns if self.shell is not None else None,
                shell=self.shell,
                on_spark=self._watch_spark,
            )
        else:
            self._kernel.manager.target = self.target()
        return self._kernel

    def _watch_spark(self, spark: Any, info: Any) -> None:
        from emr_cmk_notebook.widgets.spark_progress import watch_connect

        manager = self.kernel().manager
        watch_connect(spark, self.shell, lambda: self.progress, lambda: manager.dashboard_url(info))

    @validate("idle_notice_minutes")
    def _check_idle_notice(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] < 0:
            raise TraitError("EmrCmk.idle_notice_minutes must be 0 (no notice) or more minutes")
        return proposal["value"]

    def notify_idle(self, *_: Any) -> None:
        """Before a cell runs: one line per session this kernel started that has been idle too
        long (once per idle stretch; no AWS call unless a session may be idle that long)."""
        if self._kernel is None or self.idle_notice_minutes <= 0:
            return
        from emr_cmk_notebook.sessions.lifetime import idle_notice

        for info in self._kernel.manager.idle_too_long(self.idle_notice_minutes):
            said = (info.id, info.idle_since)
            if said not in self._idle_said:
                self._idle_said.add(said)
                print(idle_notice(info), file=sys.stderr)

    def _run(self, module: str, line: str, cell: str | None = None) -> Any:
        handler = importlib.import_module(f"emr_cmk_notebook.magics.{module}")
        try:
            return handler.run(self, line, cell) if cell is not None else handler.run(self, line)
        except HelpShown:
            return None
        except EmrCmkError as error:
            # A refusal that carries a readiness report shows it, fixes included, above the error.
            report = getattr(error, "report", None)
            if report is not None:
                from IPython.display import display

                display(report)
            raise

    @line_magic
    def emr_local(self, line: str) -> Any:
        """%emr_local start [--seed demo] [--port N] | stop | status: the embedded local backend."""
        return self._run("local_magic", line)

    @line_magic
    def emr_app(self, line: str) -> Any:
        """%emr_app show|create|update: an application's disk encryption and endpoints."""
        return self._run("app_magic", line)

    @line_magic
    def emr_job(self, line: str) -> Any:
        """%emr_job submit|status|list|cancel|logs: job runs with a job-level key."""
        return self._run("job_magic", line)

    @line_magic
    def emr_key_check(self, line: str) -> Any:
        """%emr_key_check --key K --application-id ID --role ARN: readiness, with the fixes."""
        return self._run("keycheck_magic", line)

    @line_magic
    def emr_key_usage(self, line: str) -> Any:
        """%emr_key_usage --key K [--since 7d]: the key's use from CloudTrail, as a frame."""
        return self._run("usage_magic", line)

    @line_magic
    def emr_session(self, line: str) -> Any:
        """%emr_session start|status|list|use|logs|stop: sessions encrypted with your KMS key."""
        return self._run("session_magic", line)

    @cell_magic
    def emr_spark(self, line: str, cell: str) -> Any:
        """%%emr_spark [-o VAR] [--sql]: run the cell in the active session."""
        return self._run("spark_magic", line, cell)
