"""Notebook widgets: the session launcher and the key-usage explorer.

    from emr_cmk_notebook.widgets import launcher
    launcher()          # the same form ``%emr_session`` (no arguments) shows

ipywidgets, boto3 and pandas load when a widget is made, not when this package is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emr_cmk_notebook.widgets.session_launcher import SessionLauncher
    from emr_cmk_notebook.widgets.usage_explorer import UsageExplorer

__all__ = ["SessionLauncher", "UsageExplorer", "launcher"]

_HOMES = {
    "SessionLauncher": "emr_cmk_notebook.widgets.session_launcher",
    "UsageExplorer": "emr_cmk_notebook.widgets.usage_explorer",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def launcher(**options: Any) -> SessionLauncher:
    """The session launcher; in a kernel with ``%load_ext emr_cmk_notebook``, on its sessions."""
    from emr_cmk_notebook.widgets.session_launcher import SessionLauncher

    magics = _loaded_magics()
    if magics is not None and not options:
        return SessionLauncher.for_magics(magics)
    shell = _shell()
    if shell is not None and "kernel" not in options:
        # The kernel's sessions: a Spark Connect `spark` goes in its namespace.
        if magics is not None and "target" not in options:
            options["kernel"] = magics.kernel()
        else:
            from emr_cmk_notebook.kernel import KernelSessions

            options["kernel"] = KernelSessions(
                target=options.pop("target", None), namespace=shell.user_ns, shell=shell
            )
    return SessionLauncher(**options)


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _loaded_magics() -> Any:
    shell = _shell()
    if shell is None:
        return None
    return shell.magics_manager.registry.get("EmrCmk")
