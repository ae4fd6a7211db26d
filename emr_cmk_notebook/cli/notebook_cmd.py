"""``emr-cmk notebook run``: execute a tutorial notebook headless."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    notebook = sub.add_parser("notebook", help="run the tutorial notebooks headless")
    actions = notebook.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser(
        "run", help="execute a notebook top to bottom, failing on any cell error"
    )
    run.add_argument("path", type=Path, help="the .ipynb file")
    run.add_argument(
        "--output",
        type=Path,
        help="where to write the executed copy (default: executed/NAME.ipynb)",
    )
    run.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.tutorials import run_notebook

    written = run_notebook(args.path, args.output, timeout=args.timeout)
    print(f"ran {args.path} top to bottom; executed copy: {written}")
    return 0
