"""``emr-cmk key-check``: will this key, application, role and caller let encrypted work start?"""

from __future__ import annotations

import argparse
import json
import sys

from emr_cmk_notebook.clients import AwsTarget


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``key-check`` to the ``emr-cmk`` parser."""
    run = subparsers.add_parser(
        "key-check",
        help="check a KMS key, its policy and the roles before starting encrypted work",
        description="Check every requirement for EMR Serverless disk encryption with a customer "
        "managed key, and print the fix for each failure. Exit 0 when ready, 1 when not, "
        "2 on bad input.",
    )
    run.add_argument("--key", required=True, help="key ARN, alias ARN, alias/NAME or key id")
    run.add_argument("--application-id", required=True, metavar="ID")
    run.add_argument("--role", required=True, metavar="ARN", help="the job's execution role ARN")
    run.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="K=V",
        help="an encryption context pair; repeat for several",
    )
    run.add_argument(
        "--transport",
        choices=["livy", "connect", "job"],
        default="livy",
        help="what you will start: a Livy session (default), a Spark Connect session or a job",
    )
    run.add_argument("--region")
    run.add_argument("--profile")
    run.add_argument("--json", action="store_true", help="print one JSON document")
    run.add_argument(
        "--apply",
        action="store_true",
        help="merge the key-policy fixes into the key policy (shows a diff), then check again",
    )
    run.set_defaults(handler=run_key_check)


def run_key_check(args: argparse.Namespace) -> int:
    """Check, optionally apply the key-policy fixes and check again; exit 0 only when ready."""
    from emr_cmk_notebook.readiness import ReadinessReport, apply_fix, check_readiness

    target = AwsTarget(profile=args.profile, region=args.region)

    def check() -> ReadinessReport:
        return check_readiness(
            args.key,
            args.application_id,
            args.role,
            args.context,
            target=target,
            transport=args.transport,
        )

    report = check()
    applied = None
    first = report
    if args.apply and not report.ready and any(f.kind == "key_policy" for f in report.fixes):
        applied = apply_fix(report, target=target)
        report = check()
    if args.json:
        document = report.to_dict()
        if applied is not None:
            document["applied"] = applied.to_dict()
            document["before"] = first.to_dict()
        print(json.dumps(document, indent=2))
    else:
        if applied is not None:
            print(first.to_text())
            print()
            print(applied)
            print("Checking again:")
        elif args.apply:
            print("--apply: no key policy fix to apply", file=sys.stderr)
        print(report.to_text())
    return 0 if report.ready else 1
