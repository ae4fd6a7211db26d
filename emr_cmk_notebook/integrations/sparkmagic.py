"""sparkmagic on the same encrypted session: ``%%spark`` and ``%%spark -c sql`` work on it.

When sparkmagic is installed (extra ``sparkmagic``), starting or using a session registers it with
sparkmagic's magics (loading ``sparkmagic.magics`` if needed) behind a SigV4 authenticator, under
the name ``emr-<id>``; stopping it removes it again.
"""

from __future__ import annotations

import importlib.util
from typing import Any

AUTHENTICATOR_NAME = "AWS_SigV4"
AUTHENTICATOR_PATH = "emr_cmk_notebook.integrations.sparkmagic_auth.SigV4Authenticator"


def available() -> bool:
    """True when sparkmagic can be imported (without importing it)."""
    return importlib.util.find_spec("sparkmagic") is not None


def session_name(session_id: int) -> str:
    """The name a session is registered under in sparkmagic (``%%spark -s NAME``)."""
    return f"emr-{session_id}"


def register_session(shell: Any, manager: Any, info: Any) -> str:
    """Make ``%%spark`` run on ``info``'s session; returns its sparkmagic session name."""
    import sparkmagic.utils.configuration as conf
    from sparkmagic.livyclientlib.endpoint import Endpoint
    from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient
    from sparkmagic.livyclientlib.livysession import LivySession

    from emr_cmk_notebook.core.encryption import DiskEncryption
    from emr_cmk_notebook.integrations import sparkmagic_auth
    from emr_cmk_notebook.sessions.conf import mandatory_conf
    from emr_cmk_notebook.sessions.results import SESSION_OVERRIDE

    conf.override(
        "authenticators", {**conf.authenticators(), AUTHENTICATOR_NAME: AUTHENTICATOR_PATH}
    )
    magics = _remote_spark_magics(shell)
    client = manager.livy_client(info.application_id)
    if info.role_arn:
        encryption = None
        if info.key_source == SESSION_OVERRIDE and info.key_arn:
            encryption = DiskEncryption(info.key_arn, info.context)
        sparkmagic_auth.MANDATORY_CONF[client.url] = mandatory_conf(info.role_arn, encryption)
    auth = sparkmagic_auth.SigV4Authenticator.for_endpoint(
        client.url, client.region, manager.target.session().get_credentials()
    )
    endpoint = Endpoint(client.url, auth)
    session = LivySession(
        LivyReliableHttpClient.from_endpoint(endpoint),
        {"kind": info.kind},
        magics.ipython_display,
        info.id,
        heartbeat_timeout=0,
    )
    session.sql_context_variable_name = "spark"
    session.refresh_status_and_info()
    name = session_name(info.id)
    sessions = magics.spark_controller.session_manager.sessions
    sessions.pop(name, None)
    magics.spark_controller.session_manager.add_session(name, session)
    magics.endpoints[client.url] = endpoint
    return name


def forget_sessions(shell: Any, session_ids: list[int]) -> None:
    """Remove deleted sessions from sparkmagic without asking it to delete them again."""
    magics = shell.magics_manager.registry.get("RemoteSparkMagics")
    if magics is None:
        return
    for session_id in session_ids:
        magics.spark_controller.session_manager.sessions.pop(session_name(session_id), None)


def _remote_spark_magics(shell: Any) -> Any:
    registry = shell.magics_manager.registry
    if "RemoteSparkMagics" not in registry:
        shell.extension_manager.load_extension("sparkmagic.magics")
    return registry["RemoteSparkMagics"]
