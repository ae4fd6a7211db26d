"""What an auditor reads from a usage frame: sessions matched, per-workload summary, findings.

All functions take the frame of ``UsageFrame`` (one row per KMS call) and return new frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# EMR Serverless calls KMS for worker disks as an AWS service that CloudTrail names this way.
SERVICE_INVOKERS = frozenset({"AWS Internal", "emr-serverless.amazonaws.com"})
CRYPTO_CALLS = frozenset(
    {
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "Decrypt",
        "Encrypt",
        "ReEncrypt",
    }
)
SUMMARY_COLUMNS = (
    "workload",
    "application_id",
    "session",
    "calls",
    "GenerateDataKey",
    "Decrypt",
    "denied",
    "first_use",
    "last_use",
    "principals",
)
FINDING_COLUMNS = (
    "finding",
    "event_time",
    "event_name",
    "principal",
    "application_id",
    "session",
    "detail",
    "event_id",
)


@dataclass(frozen=True)
class KernelSession:
    """A session started from this kernel: its id, application and custom context pairs.

    ``started`` and ``ended`` (UTC), when known, keep other sessions' calls with the same
    context from being counted as this one's.
    """

    session_id: str
    application_id: str
    context: Mapping[str, str] = field(default_factory=dict)
    started: pd.Timestamp | None = None
    ended: pd.Timestamp | None = None

    @classmethod
    def of(cls, value: Any) -> KernelSession:
        """A session from a ``KernelSession``, a ``(id, application id, pairs)`` tuple or a dict."""
        if isinstance(value, KernelSession):
            return value
        if isinstance(value, Mapping):
            return cls(**value)
        session_id, application_id, *rest = value
        return cls(str(session_id), str(application_id), dict(rest[0]) if rest else {})

    def custom_pairs(self) -> dict[str, str]:
        """The context pairs the user added (the service adds ``applicationId`` itself)."""
        return {k: v for k, v in self.context.items() if k != "applicationId"}


def principal_label(frame: pd.DataFrame) -> pd.Series:
    """Who made each call: the principal ARN, else the invoking service, else the identity type."""
    label = frame["principal_arn"].astype(object)
    label = label.where(label.notna(), frame["invoked_by"].astype(object))
    return label.where(label.notna(), frame["identity_type"].astype(object))


def is_service_call(frame: pd.DataFrame) -> pd.Series:
    """True for the calls EMR Serverless made itself for worker disks."""
    return (frame["identity_type"].astype(object) == "AWSService") & frame["invoked_by"].astype(
        object
    ).isin(SERVICE_INVOKERS)


def match_sessions(frame: pd.DataFrame, sessions: Iterable[Any]) -> pd.Series:
    """The id of the kernel session each row belongs to, or None.

    A row belongs to a session when its ``applicationId`` is the session's application, its
    context holds every custom pair of the session, and its time falls within the session's
    start and end when those are known. When several sessions fit, the one with the most
    custom pairs wins; a tie leaves the row unmatched rather than guess.
    """
    matched = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    if frame.empty:
        return matched
    best = pd.Series(-1, index=frame.index)
    tied = pd.Series(False, index=frame.index)
    contexts = frame["encryption_context"]
    apps = frame["application_id"].astype(object)
    for session in map(KernelSession.of, sessions):
        pairs = session.custom_pairs()
        fits = apps == session.application_id
        for key, value in pairs.items():
            fits &= contexts.map(lambda c, k=key, v=value: bool(c) and c.get(k) == v)
        if session.started is not None:
            fits &= frame["event_time"] >= pd.Timestamp(session.started)
        if session.ended is not None:
            fits &= frame["event_time"] <= pd.Timestamp(session.ended)
        weight = len(pairs)
        better = fits & (weight > best)
        tied = (tied & ~better) | (fits & (weight == best))
        matched[better] = session.session_id
        best[better] = weight
    matched[tied] = None
    return matched


def join_shared_copies(frame: pd.DataFrame, key_owner: str | None) -> pd.DataFrame:
    """One row per logical call: copies that share a ``sharedEventID`` become one row.

    The caller's copy is kept (the one not delivered to the key owner's account), and
    ``recipient_accounts`` lists every account that received a copy.
    """
    recipients = frame["recipient_account_id"].astype(object)
    group = frame["shared_event_id"].astype(object)
    group = group.where(group.notna(), frame["event_id"].astype(object))
    accounts = (
        recipients.groupby(group)
        .agg(lambda s: ",".join(sorted({str(a) for a in s.dropna()})))
        .rename("recipient_accounts")
    )
    rank = (recipients == key_owner).astype(int)
    order = pd.DataFrame({"group": group, "rank": rank, "position": range(len(frame))})
    keep = order.sort_values(["group", "rank", "position"]).drop_duplicates("group")
    joined = frame.iloc[sorted(keep["position"])].copy()
    joined["recipient_accounts"] = (
        group.iloc[sorted(keep["position"])].map(accounts).astype("category")
    )
    return joined.reset_index(drop=True)


def workload_label(application_id: Any, session: Any) -> str:
    """``session X of application Y``, or what is known of it."""
    if isinstance(session, str):
        return f"session {session} of application {application_id}"
    if isinstance(application_id, str):
        return f"application {application_id}"
    return "no application (direct calls)"


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per application and session: call counts, first and last use, principals."""
    if frame.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    work = pd.DataFrame(
        {
            "application_id": frame["application_id"].astype(object),
            "session": _sessions(frame),
            "event_name": frame["event_name"].astype(object),
            "denied": frame["error_code"].notna(),
            "event_time": frame["event_time"],
            "principal": principal_label(frame),
        }
    )
    rows = []
    for (app, session), group in work.groupby(["application_id", "session"], dropna=False):
        app = app if isinstance(app, str) else None
        session = session if isinstance(session, str) else None
        names = group["event_name"]
        rows.append(
            {
                "workload": workload_label(app, session),
                "application_id": app,
                "session": session,
                "calls": len(group),
                "GenerateDataKey": int((names == "GenerateDataKey").sum()),
                "Decrypt": int((names == "Decrypt").sum()),
                "denied": int(group["denied"].sum()),
                "first_use": group["event_time"].min(),
                "last_use": group["event_time"].max(),
                "principals": ", ".join(sorted(set(group["principal"].dropna().astype(str)))),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def findings(
    frame: pd.DataFrame,
    *,
    expected_principals: Iterable[str] = (),
    expected_context: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Calls worth an auditor's eye, one row per finding.

    ``other_principal``: a caller other than EMR Serverless and the expected principals (role
    ARNs match their assumed-role sessions). ``denied``: the call failed with an error code.
    ``missing_context``: a cryptographic call whose context lacks an expected pair; calls
    EMR Serverless made must always carry ``applicationId``.
    """
    if frame.empty:
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    principal = principal_label(frame)
    service = is_service_call(frame)
    expected = {_role_identity(p) for p in expected_principals}
    known = principal.map(lambda p: isinstance(p, str) and _role_identity(p) in expected)
    parts = [
        _finding(frame, ~service & ~known, "other_principal", principal, _other_detail(frame)),
        _finding(frame, frame["error_code"].notna(), "denied", principal, _denied_detail(frame)),
    ]
    missing = _missing_pairs(frame, service, dict(expected_context or {}))
    parts.append(
        _finding(
            frame, missing.str.len() > 0, "missing_context", principal, "context lacks " + missing
        )
    )
    found = pd.concat(parts, ignore_index=True)
    return found.sort_values(["event_time", "finding"], kind="stable").reset_index(drop=True)


def _sessions(frame: pd.DataFrame) -> pd.Series:
    if "session" in frame:
        return frame["session"].astype(object)
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _finding(
    frame: pd.DataFrame, mask: pd.Series, kind: str, principal: pd.Series, detail: Any
) -> pd.DataFrame:
    mask = mask.fillna(False).astype(bool)
    detail = detail[mask] if isinstance(detail, pd.Series) else detail
    return pd.DataFrame(
        {
            "finding": kind,
            "event_time": frame.loc[mask, "event_time"],
            "event_name": frame.loc[mask, "event_name"].astype(object),
            "principal": principal[mask],
            "application_id": frame.loc[mask, "application_id"].astype(object),
            "session": _sessions(frame)[mask],
            "detail": detail,
            "event_id": frame.loc[mask, "event_id"],
        },
        columns=list(FINDING_COLUMNS),
    )


def _other_detail(frame: pd.DataFrame) -> pd.Series:
    kind = frame["identity_type"].astype(object).fillna("unknown identity")
    via = frame["invoked_by"].astype(object)
    return "caller is " + kind + via.map(lambda v: f" via {v}" if isinstance(v, str) else "")


def _denied_detail(frame: pd.DataFrame) -> pd.Series:
    message = frame["error_message"].astype(object)
    code = frame["error_code"].astype(object).fillna("")
    return code + message.map(lambda m: f": {m}" if isinstance(m, str) and m else "")


def _missing_pairs(frame: pd.DataFrame, service: pd.Series, expected: dict[str, str]) -> pd.Series:
    crypto = frame["event_name"].astype(object).isin(CRYPTO_CALLS)

    def lacking(context: Any, by_service: bool, is_crypto: bool) -> str:
        if not is_crypto:
            return ""
        context = context or {}
        gaps = [f"{k}={v}" for k, v in expected.items() if context.get(k) != v]
        if by_service and "applicationId" not in context and "applicationId" not in expected:
            gaps.append("applicationId")
        return ", ".join(gaps)

    return pd.Series(
        [
            lacking(c, s, k)
            for c, s, k in zip(frame["encryption_context"], service, crypto, strict=True)
        ],
        index=frame.index,
        dtype=object,
    )


def _role_identity(arn: str) -> str:
    """An ARN reduced to what identifies its principal: a role for its assumed-role sessions."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return arn
    account, resource = parts[4], parts[5]
    if resource.startswith("assumed-role/"):
        return f"{account}:role/{resource.split('/')[1]}"
    if resource.startswith("role/"):
        return f"{account}:role/{resource.rsplit('/', 1)[-1]}"
    return f"{account}:{resource}"
