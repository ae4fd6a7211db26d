"""A SessionRequest is built and checked once, before any call: what every surface starts from."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions.request import SessionRequest

ROLE = "arn:aws:iam::111122223333:role/emr-session-role"
APP = "00f1abcdefgh0001"


def test_options_given_as_k_v_items_or_mappings_become_the_same_request():
    from_items = SessionRequest.build(
        APP, ROLE, "alias/k", ["project=churn"], transport="connect", conf=["a=1"], tags=["t=x"],
        name="n",
    )  # fmt: skip
    from_maps = SessionRequest.build(
        APP, ROLE, "alias/k", {"project": "churn"}, transport="connect", conf={"a": "1"},
        tags={"t": "x"}, name="n",
    )  # fmt: skip
    assert from_items == from_maps
    assert from_items.encryption is not None and dict(from_items.encryption.context) == {
        "project": "churn"
    }


def test_every_request_gets_its_own_name_unless_one_is_given():
    first, second = (SessionRequest.build(APP, ROLE) for _ in range(2))
    assert first.name.startswith("emr-cmk-") and first.name != second.name
    assert SessionRequest.build(APP, ROLE, name="mine").name == "mine"


@pytest.mark.parametrize(
    ("arguments", "options", "message"),
    [
        ((APP, ROLE), {"transport": "telepathy"}, "unknown transport 'telepathy'"),
        ((APP, ROLE, "alias/k"), {"session_key_override": True}, "is for --transport connect"),
        ((APP, ROLE), {"tags": ["team=risk"]}, "--tag is for --transport connect"),
        ((APP, ROLE), {"transport": "connect", "tags": ["team"]}, "--tag 'team' is not K=V"),
        ((APP, ROLE), {"conf": ["spark.executor.memory"]}, "--conf 'spark.executor.memory'"),
        ((APP, "emr-session-role"), {}, "not an IAM role ARN"),
        ((APP, None), {}, "no execution role"),
        ((APP, ROLE), {"idle_timeout_minutes": 0}, "at least 1 minute"),
        ((APP, ROLE, None, {"a": "b"}), {}, "--context needs --key"),
        ((APP, ROLE), {"transport": "connect", "session_key_override": True}, "needs --key"),
        ((None, ROLE), {}, "no application given"),
    ],
)
def test_bad_input_is_refused_in_one_line_that_says_what_to_change(arguments, options, message):
    with pytest.raises(UserError) as refused:
        SessionRequest.build(*arguments, **options)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_magic_and_the_cli_offer_the_same_start_options():
    from emr_cmk_notebook.cli import build_parser
    from emr_cmk_notebook.magics.session_magic import PARSER

    def flags(parser) -> set[str]:
        return {flag for action in parser._actions for flag in action.option_strings}

    def start_of(parser):
        actions = next(a for a in parser._actions if a.dest == "action")
        return actions.choices["start"]

    cli_session = next(a for a in build_parser()._actions if a.dest == "command")
    cli = flags(start_of(cli_session.choices["session"]))
    magic = flags(start_of(PARSER))
    shared = {"--key", "--context", "--transport", "--name", "--idle-timeout", "--conf", "--tag"}
    assert shared | {"--session-key-override", "--skip-check"} <= cli & magic
