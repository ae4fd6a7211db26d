"""``emr-cmk policy eval``: decide a KMS request against a key policy and identity policies."""

from __future__ import annotations

import argparse
import json

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.core.files import read_bounded
from emr_cmk_notebook.core.policy import Decision, InvalidPolicy, Policy, Request, evaluate

# AWS KMS quotas: a key policy document is at most 32 KB (32,768 bytes).
KEY_POLICY_BYTES = 32_768
# IAM: the API takes policy documents of up to 131,072 characters, and its quotas allow at most
# 10,240 characters besides whitespace (a role's inline policies together; managed ones 6,144).
IAM_DOCUMENT_BYTES = 131_072
IAM_POLICY_CHARACTERS = 10_240


class PolicyInputError(UserError):
    """A policy file that cannot be read or a malformed ``--context``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``policy eval`` to the ``emr-cmk`` parser."""
    policy = subparsers.add_parser(
        "policy",
        help="evaluate KMS key policies offline",
        description="Evaluate KMS key policies offline.",
    )
    sub = policy.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    sub.required = True
    run = sub.add_parser(
        "eval",
        help="decide one KMS request",
        description="Decide whether PRINCIPAL may call ACTION on a key, the way AWS KMS does. "
        "Exit 0 for allow, 1 for an explicit or implicit deny, 2 for bad input.",
    )
    run.add_argument("--key-policy", required=True, metavar="FILE", help="key policy JSON file")
    run.add_argument(
        "--identity-policy",
        action="append",
        default=[],
        metavar="FILE",
        help="an identity (IAM) policy of the principal; repeat for several",
    )
    run.add_argument(
        "--principal",
        required=True,
        metavar="ARN|SERVICE",
        help="caller ARN or service principal, e.g. emr-serverless.amazonaws.com",
    )
    run.add_argument("--action", required=True, help="e.g. kms:GenerateDataKey")
    run.add_argument("--resource", required=True, metavar="ARN", help="the key ARN")
    run.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a request context key; repeat a key to give it several values",
    )
    run.add_argument("--json", action="store_true", help="print one JSON document")
    run.set_defaults(handler=run_eval)


def _read(path: str, label: str, limit: int, quota: str) -> str:
    too_large = f"{label} {path} is larger than {limit:,} bytes, more than {quota}"
    try:
        return read_bounded(path, limit, too_large).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PolicyInputError(f"cannot read {label} {path}: {reason}") from None


def _parse(text: str, path: str, label: str) -> Policy:
    try:
        return Policy.parse(text)
    except InvalidPolicy as exc:
        raise InvalidPolicy(f"{label} {path}: {exc}") from None


def _key_policy(path: str) -> Policy:
    text = _read(path, "key policy", KEY_POLICY_BYTES, "a KMS key policy can hold")
    return _parse(text, path, "key policy")


def _identity_policy(path: str) -> Policy:
    label = "identity policy"
    text = _read(path, label, IAM_DOCUMENT_BYTES, "an IAM policy document can be")
    # IAM's size quotas count the characters that are not whitespace.
    size = sum(not c.isspace() for c in text)
    if size > IAM_POLICY_CHARACTERS:
        raise PolicyInputError(
            f"{label} {path} has {size:,} characters besides whitespace; IAM allows at most "
            f"{IAM_POLICY_CHARACTERS:,} (a role's inline policies together; a managed policy "
            "6,144)"
        )
    return _parse(text, path, label)


def parse_context(pairs: list[str]) -> dict[str, str | list[str]]:
    """Turn ``KEY=VALUE`` arguments into a context; a repeated key becomes multivalued."""
    context: dict[str, str | list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PolicyInputError(f"--context {pair!r} must look like KEY=VALUE")
        if key in context:
            previous = context[key]
            context[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            context[key] = value
    return context


def _summary(decision: Decision) -> str:
    lines = [f"{decision.decision.upper()}: {decision.reason}"]
    for statement in decision.statements:
        if statement.near_miss:
            lines.append(f"  near miss: {statement.name}: {statement.near_miss}")
        else:
            lines.append(f"  {statement.effect.lower()}: {statement.name}")
    return "\n".join(lines)


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate, print the decision, and return 0 for allow or 1 for a deny."""
    key_policy = _key_policy(args.key_policy)
    identity = [_identity_policy(path) for path in args.identity_policy]
    request = Request(args.principal, args.action, args.resource, parse_context(args.context))
    decision = evaluate(request, key_policy, identity)
    print(json.dumps(decision.to_dict(), indent=2) if args.json else _summary(decision))
    return 0 if decision.allowed else 1
