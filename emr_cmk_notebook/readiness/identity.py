"""The identity side of a KMS decision: a principal's IAM policies, read or simulated.

Static: ``GetAccountAuthorizationDetails`` gives every user, group, role and customer managed
policy of the account in one call (so reading needs no chain of calls); when it is refused, the
principal's own policies are listed and read one by one. Simulated: ``SimulatePrincipalPolicy``
answers for the principal's identity policies (permissions boundaries included) on real AWS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from emr_cmk_notebook.readiness.calls import Unreadable, attempt

Document = Mapping[str, Any]


@dataclass(frozen=True)
class Principal:
    """An IAM principal as the checks need it: its ARN, kind, name and account."""

    arn: str
    kind: Literal["user", "role", "root", "other"]
    name: str
    account: str
    session_arn: str | None = None  # for an assumed-role session, the session's own ARN

    @classmethod
    def parse(cls, arn: str) -> Principal:
        """Users, roles and assumed-role sessions (taken as their role); anything else is other."""
        fields = arn.split(":", 5)
        account, resource = (fields[4], fields[5]) if len(fields) == 6 else ("", arn)
        if resource.startswith("assumed-role/"):
            name = resource.split("/")[1]
            role = f"arn:{fields[1]}:iam::{account}:role/{name}"
            return cls(role, "role", name, account, session_arn=arn)
        if resource.startswith("role/"):
            return cls(arn, "role", resource.rsplit("/", 1)[-1], account)
        if resource.startswith("user/"):
            return cls(arn, "user", resource.rsplit("/", 1)[-1], account)
        if resource == "root":
            return cls(arn, "root", "root", account)
        return cls(arn, "other", resource, account)

    @property
    def caller_arn(self) -> str:
        """The ARN KMS sees when this principal calls (the session ARN for roles in use)."""
        return self.session_arn or self.arn


@dataclass(frozen=True)
class IdentityPolicies:
    """A principal's identity policy documents, or why they could not be read."""

    documents: tuple[Document, ...] | None
    how: str
    exists: bool | None = True  # None when it is not known whether the principal exists

    @property
    def readable(self) -> bool:
        return self.documents is not None


def document(raw: Any) -> Document:
    """A policy document as IAM returns it (URL-encoded JSON or already parsed)."""
    return json.loads(unquote(raw)) if isinstance(raw, str) else raw


@dataclass
class AccountDetails:
    """The account's IAM as ``GetAccountAuthorizationDetails`` reports it."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, Document] = field(default_factory=dict)


def account_details(iam: Any) -> AccountDetails | Unreadable:
    """Every user, group, role and customer managed policy of the caller's account."""
    details = AccountDetails()
    pages = iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["User", "Role", "Group", "LocalManagedPolicy"]
    )

    def read() -> AccountDetails:
        for page in pages:
            for user in page.get("UserDetailList", []):
                details.users[user["Arn"]] = user
            for role in page.get("RoleDetailList", []):
                details.roles[role["Arn"]] = role
            for group in page.get("GroupDetailList", []):
                details.groups[group["GroupName"]] = group
            for policy in page.get("Policies", []):
                for version in policy.get("PolicyVersionList", []):
                    if version.get("IsDefaultVersion"):
                        details.policies[policy["Arn"]] = document(version["Document"])
        return details

    return attempt("iam:GetAccountAuthorizationDetails", read)


def _managed(iam: Any, arn: str, known: Mapping[str, Document]) -> Document | Unreadable:
    if arn in known:
        return known[arn]

    def read() -> Document:
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        found = iam.get_policy_version(PolicyArn=arn, VersionId=version)
        return document(found["PolicyVersion"]["Document"])

    return attempt("iam:GetPolicyVersion", read)


def _collect(
    iam: Any, inline: Sequence[Any], attached: Sequence[str], known: Mapping[str, Document]
) -> tuple[Document, ...] | Unreadable:
    documents = [document(item) for item in inline]
    for arn in attached:
        found = _managed(iam, arn, known)
        if isinstance(found, Unreadable):
            return found
        documents.append(found)
    return tuple(documents)


def from_details(iam: Any, details: AccountDetails, principal: Principal) -> IdentityPolicies:
    """The principal's policies out of the account details (AWS managed ones read separately)."""
    how = "read with iam:GetAccountAuthorizationDetails"
    table = details.roles if principal.kind == "role" else details.users
    entry = table.get(principal.arn)
    if entry is None:
        return IdentityPolicies(None, f"{principal.arn} is not in its account's IAM", exists=False)
    attached = [p["PolicyArn"] for p in entry.get("AttachedManagedPolicies", [])]
    if principal.kind == "role":
        inline = [p["PolicyDocument"] for p in entry.get("RolePolicyList", [])]
    else:
        inline = [p["PolicyDocument"] for p in entry.get("UserPolicyList", [])]
        for name in entry.get("GroupList", []):
            group = details.groups.get(name, {})
            inline += [p["PolicyDocument"] for p in group.get("GroupPolicyList", [])]
            attached += [p["PolicyArn"] for p in group.get("AttachedManagedPolicies", [])]
    found = _collect(iam, inline, attached, details.policies)
    if isinstance(found, Unreadable):
        return IdentityPolicies(None, f"an attached policy could not be read ({found})")
    return IdentityPolicies(found, how)


def one_by_one(iam: Any, principal: Principal) -> IdentityPolicies:
    """The principal's policies listed and read one by one (when account details are refused)."""
    kind = "Role" if principal.kind == "role" else "User"
    key = {f"{kind}Name": principal.name}
    snake = kind.lower()

    def read() -> tuple[Document, ...] | Unreadable:
        names = iam.get_paginator(f"list_{snake}_policies").paginate(**key).build_full_result()
        inline = [
            getattr(iam, f"get_{snake}_policy")(PolicyName=name, **key)["PolicyDocument"]
            for name in names["PolicyNames"]
        ]
        listed = getattr(iam, f"list_attached_{snake}_policies")(**key)["AttachedPolicies"]
        attached = [p["PolicyArn"] for p in listed]
        if kind == "User":
            for group in iam.list_groups_for_user(UserName=principal.name)["Groups"]:
                name = group["GroupName"]
                for policy in iam.list_group_policies(GroupName=name)["PolicyNames"]:
                    got = iam.get_group_policy(GroupName=name, PolicyName=policy)
                    inline.append(got["PolicyDocument"])
                more = iam.list_attached_group_policies(GroupName=name)["AttachedPolicies"]
                attached += [p["PolicyArn"] for p in more]
        return _collect(iam, inline, attached, {})

    found = attempt(f"iam:List{kind}Policies", read)
    if isinstance(found, Unreadable):
        exists = False if found.missing else None
        return IdentityPolicies(None, str(found), exists=exists)
    return IdentityPolicies(found, f"read with iam:Get{kind}Policy and iam:GetPolicyVersion")


def identity_policies(
    iam: Any, details: AccountDetails | Unreadable, details_account: str, principal: Principal
) -> IdentityPolicies:
    """The principal's identity policies, by the cheapest route the caller is allowed."""
    if principal.kind not in ("user", "role"):
        return IdentityPolicies((), "an account root has no identity policies")
    if isinstance(details, AccountDetails) and principal.account == details_account:
        return from_details(iam, details, principal)
    if principal.account != details_account:
        return IdentityPolicies(
            None,
            f"{principal.arn} is in account {principal.account}, whose IAM the caller "
            "cannot read from here",
            exists=None,
        )
    return one_by_one(iam, principal)


Simulated = dict[str, Literal["allowed", "explicitDeny", "implicitDeny"]]


def simulate(
    iam: Any, principal: Principal, actions: Sequence[str], key_arn: str, context: Mapping[str, Any]
) -> Simulated | Unreadable:
    """``SimulatePrincipalPolicy`` for the principal's identity policies: action -> decision."""
    entries = [
        {
            "ContextKeyName": name,
            "ContextKeyValues": list(value) if isinstance(value, list | tuple) else [value],
            "ContextKeyType": "stringList" if isinstance(value, list | tuple) else "string",
        }
        for name, value in context.items()
    ]

    def run() -> Simulated:
        answer = iam.simulate_principal_policy(
            PolicySourceArn=principal.arn,
            ActionNames=list(actions),
            ResourceArns=[key_arn],
            ContextEntries=entries,
        )
        return {r["EvalActionName"]: r["EvalDecision"] for r in answer["EvaluationResults"]}

    return attempt("iam:SimulatePrincipalPolicy", run)
