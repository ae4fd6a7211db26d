"""``emr-cmk job submit|status|list|cancel``: job runs with a job-level key, from scripts."""

from __future__ import annotations

import argparse
import sys

from emr_cmk_notebook.cli import options
from emr_cmk_notebook.cli.options import add_aws_options, show


def register(sub: argparse._SubParsersAction) -> None:
    job = sub.add_parser("job", help="EMR Serverless job runs with a job-level KMS key")
    actions = job.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    submit = actions.add_parser("submit", help="StartJobRun with an optional job-level key")
    submit.add_argument("--application-id", required=True)
    submit.add_argument("--role", required=True, help="execution role ARN")
    submit.add_argument("--entry-point", required=True, help="script path or s3:// URI")
    submit.add_argument("--args", default="", help="entry point arguments, one quoted string")
    submit.add_argument("--spark-params", help="sparkSubmitParameters")
    submit.add_argument("--key", help="job-level KMS key (ARN or alias)")
    submit.add_argument("--context", action="append", metavar="K=V", help="context pair")
    submit.add_argument("--name")
    submit.add_argument("--wait", action="store_true", help="wait; exit 1 if the run fails")
    submit.add_argument("--skip-check", action="store_true", help="skip the readiness gate")
    add_aws_options(submit)
    submit.set_defaults(handler=_submit)

    for name, handler, text in (
        ("status", _status, "a run's state and key"),
        ("cancel", _cancel, "cancel a run"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument("job_run_id")
        p.add_argument("--application-id", required=True)
        add_aws_options(p)
        p.set_defaults(handler=handler)
    listing = actions.add_parser("list", help="recent runs")
    listing.add_argument("--application-id", required=True)
    add_aws_options(listing)
    listing.set_defaults(handler=_list)


def _submit(args: argparse.Namespace) -> int:
    from emr_cmk_notebook import jobs

    target = options.target(args)
    view = jobs.submit_from_options(target, args.application_id, args.role, args)
    if args.wait:
        steps = options.progress(f"job run {view.id}")
        try:
            view = jobs.wait(
                target,
                args.application_id,
                view.id,
                progress=steps,
            )
        except jobs.JobFailed as failed:
            show(failed.view, args.json)
            print(f"emr-cmk: {failed}", file=sys.stderr)
            return 1
    show(view, args.json)
    return 0


def _status(args: argparse.Namespace) -> int:
    from emr_cmk_notebook import jobs

    show(jobs.status(options.target(args), args.application_id, args.job_run_id), args.json)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from emr_cmk_notebook import jobs

    show(jobs.cancel(options.target(args), args.application_id, args.job_run_id), args.json)
    return 0


def _list(args: argparse.Namespace) -> int:
    from emr_cmk_notebook import jobs

    show(jobs.list_jobs(options.target(args), args.application_id), args.json)
    return 0
