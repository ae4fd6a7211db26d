"""``emr-cmk local``: start, stop and inspect the embedded local backend."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from typing import Any

from emr_cmk_notebook.core.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    local = sub.add_parser("local", help="the embedded local AWS backend (loopback only)")
    actions = local.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    start = actions.add_parser("start", help="start the backend (foreground unless --detach)")
    start.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    start.add_argument("--seed", choices=["demo", "none"], default="demo", help="world to lay")
    start.add_argument("--detach", action="store_true", help="return once the backend answers")
    start.add_argument("--json", action="store_true", help="print the status as JSON")
    start.set_defaults(handler=_start)

    stop = actions.add_parser("stop", help="stop the running backend")
    stop.set_defaults(handler=_stop)

    status = actions.add_parser(
        "status",
        help="show what the running backend holds (accounts, keys, roles, applications with "
        "their release labels)",
    )
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(handler=_status)

    env = actions.add_parser(
        "env", help="print export lines that point boto3 and the AWS CLI at it"
    )
    env.add_argument("--account", default="111122223333", help="act as this account's user")
    env.set_defaults(handler=_env)

    reset = actions.add_parser("reset", help="forget every change and lay the seed anew")
    reset.set_defaults(handler=_reset)

    settings = actions.add_parser("settings", help="fault injection and timing settings")
    settings.add_argument("--latency-ms", type=float, help="added latency per AWS call")
    settings.add_argument("--throttle-rate", type=float, help="share of calls throttled (0-1)")
    settings.add_argument("--error-rate", type=float, help="share of calls answered 500 (0-1)")
    settings.add_argument("--lookup-tps", type=float, help="CloudTrail LookupEvents rate limit")
    settings.add_argument("--state-delay", type=float, help="seconds per application state change")
    settings.add_argument("--job-step-delay", type=float, help="seconds per job run state change")
    settings.add_argument(
        "--session-token-ttl", type=float, help="seconds a Spark Connect auth token lasts"
    )
    settings.add_argument(
        "--session-limit", type=int, help="live Spark Connect sessions per application"
    )
    settings.add_argument(
        "--trail-kms-events",
        choices=("logged", "excluded"),
        help="whether the trail logs KMS events to its files (excluded: as a selector would)",
    )
    settings.add_argument(
        "--trail-logging",
        choices=("on", "off"),
        help="whether the trail delivers log files at all (off: as after StopLogging)",
    )
    settings.set_defaults(handler=_settings)


def _print_status(status: dict[str, Any], as_json: bool) -> None:
    from emr_cmk_notebook.local.process import status_table

    print(json.dumps(status, indent=2) if as_json else status_table(status))


def _start(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.local import process

    seed = None if args.seed == "none" else args.seed
    if args.detach:
        backend = process.start(args.port, seed, keep=True)
        _print_status(backend.status(), args.json)
        if not args.json:
            print('\nPoint boto3 and the AWS CLI at it with: eval "$(emr-cmk local env)"')
        return 0
    if process.running() is not None:
        raise UserError(
            "a local backend is already running", hint="stop it with `emr-cmk local stop`"
        )
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, not {args.port}")
    from emr_cmk_notebook.local.server import serve

    data_dir = process.new_run_dir()

    def ready(backend: Any) -> None:
        process.write_state(
            {"pid": os.getpid(), "endpoint": backend.endpoint, "data_dir": str(data_dir)}
        )
        _print_status(backend.status(), args.json)
        print('\nServing until Ctrl-C. In another shell: eval "$(emr-cmk local env)"', flush=True)

    try:
        serve(data_dir, port=args.port, seed_name=seed, on_ready=ready)
    except OSError as exc:
        raise UserError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    finally:
        (process.home() / process.STATE_FILE).unlink(missing_ok=True)
    return 0


def _stop(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.local import process

    print("stopped" if process.stop() else "no local backend was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.local import process

    _print_status(process.attach().status(), args.json)
    return 0


def _env(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.local import process

    for name, value in process.attach().env(args.account).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.local import process

    process.attach().reset()
    print("reset: the seed is laid anew")
    return 0


def _settings(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.local import process

    backend = process.attach()
    changes: dict[str, Any] = {}
    faults = {
        name: getattr(args, name)
        for name in ("latency_ms", "throttle_rate", "error_rate")
        if getattr(args, name) is not None
    }
    if faults:
        changes["faults"] = {**backend.status()["settings"]["faults"], **faults}
    for name in (
        "lookup_tps",
        "state_delay",
        "job_step_delay",
        "session_token_ttl",
        "session_limit",
    ):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.trail_kms_events is not None:
        changes["trail_kms_events"] = args.trail_kms_events
    if args.trail_logging is not None:
        changes["trail_logging"] = args.trail_logging == "on"
    print(
        json.dumps(
            backend.settings(**changes) if changes else backend.status()["settings"], indent=2
        )
    )
    return 0
