"""``%emr_job submit|status|list|cancel|logs``: job runs with a job-level key."""

from __future__ import annotations

import sys
import warnings
from typing import Any

from emr_cmk_notebook.magics.args import MagicParser, MagicUsageError, add_context

PARSER = MagicParser("%emr_job")
_actions = PARSER.add_subparsers(dest="action", metavar="ACTION", parser_class=MagicParser)
_actions.required = True

_submit = _actions.add_parser("submit", help="StartJobRun with an optional job-level key")
_submit.add_argument("--application-id", help="default: EmrCmk.default_application")
_submit.add_argument("--role", help="execution role ARN (default: EmrCmk.default_role)")
_submit.add_argument("--entry-point", required=True, help="script path or s3:// URI")
_submit.add_argument("--args", default="", help="entry point arguments, one quoted string")
_submit.add_argument("--spark-params", help="sparkSubmitParameters, e.g. '--conf spark.x=y'")
_submit.add_argument("--key", help="job-level KMS key (ARN or alias); default: the application's")
add_context(_submit)
_submit.add_argument("--name")
_submit.add_argument("--wait", action="store_true", help="wait until it finishes")
_submit.add_argument("--skip-check", action="store_true", help="skip the readiness gate (loudly)")

for _name, _text in (
    ("status", "a run's state and key"),
    ("cancel", "cancel a run"),
    ("logs", "the run's dashboard URL"),
):
    _p = _actions.add_parser(_name, help=_text)
    _p.add_argument("job_run_id")
    _p.add_argument("--application-id")
_list = _actions.add_parser("list", help="recent runs")
_list.add_argument("--application-id")


def run(magics: Any, line: str) -> Any:
    from emr_cmk_notebook import jobs

    args = PARSER.parse(line)
    target = magics.target()
    app_id = args.application_id or magics.default_application
    if not app_id:
        raise MagicUsageError("%emr_job: no application; pass --application-id or set a default")
    if args.action == "submit":
        return _submit_job(magics, target, app_id, args)
    if args.action == "status":
        return jobs.status(target, app_id, args.job_run_id)
    if args.action == "cancel":
        return jobs.cancel(target, app_id, args.job_run_id)
    if args.action == "logs":
        view = jobs.status(target, app_id, args.job_run_id)
        print(view.state_details or f"{view.id} is {view.state}")
        return jobs.dashboard_url(target, app_id, args.job_run_id)
    return jobs.list_jobs(target, app_id)


def _submit_job(magics: Any, target: Any, app_id: str, args: Any) -> Any:
    from emr_cmk_notebook import jobs
    from emr_cmk_notebook.magics.display import ProgressLine

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            view = jobs.submit_from_options(target, app_id, args.role or magics.default_role, args)
        finally:
            for warning in caught:
                print(f"{warning.message}", file=sys.stderr)
    if not args.wait:
        return view
    return jobs.wait(
        target,
        app_id,
        view.id,
        timeout=magics.wait_timeout,
        progress=ProgressLine(f"job {view.id}"),
    )
