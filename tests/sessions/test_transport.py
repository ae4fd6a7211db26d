"""Both transports offer the manager the same verbs, and say in one line what they cannot do."""

from __future__ import annotations

import inspect

import pytest

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions.connect import ConnectTransport
from emr_cmk_notebook.sessions.livy_transport import LivyTransport
from emr_cmk_notebook.sessions.results import SessionInfo
from emr_cmk_notebook.sessions.transport import Transport

VERBS = [n for n, _ in inspect.getmembers(Transport, inspect.isfunction) if not n.startswith("_")]


@pytest.mark.parametrize("transport", [LivyTransport, ConnectTransport], ids=lambda t: t.name)
def test_each_transport_has_every_verb_with_the_same_parameters(transport):
    assert {"start", "attach", "status", "logs", "run", "cancel", "stop", "list"} <= set(VERBS)
    for verb in VERBS:
        ours = list(inspect.signature(getattr(transport, verb)).parameters)
        assert ours == list(inspect.signature(getattr(Transport, verb)).parameters), verb


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t, info: t.logs(info, 10), "the sessions API has no log"),
        (lambda t, info: t.run(info, "1 + 1", "pyspark", print, None), "runs no statements"),
        (lambda t, info: t.cancel(info, 1), "runs no statements"),
    ],
)
def test_a_spark_connect_session_refuses_livy_only_verbs_in_one_line(call, message):
    info = SessionInfo(id="s-1", application_id="00app", state="IDLE", transport="connect")
    with pytest.raises(UserError) as refused:
        call(ConnectTransport(AwsTarget), info)
    assert message in str(refused.value) and refused.value.hint
    assert "\n" not in str(refused.value)
