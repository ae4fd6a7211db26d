"""The import direction of DESIGN.md section 2: notebook and cli -> service -> core; local apart."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "emr_cmk_notebook"
NOTEBOOK_LAYER = ("magics", "widgets")
LOCAL = "local"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(subpackage: str | None = None) -> list[Path]:
    root = PACKAGE / subpackage if subpackage else PACKAGE
    return sorted(root.rglob("*.py"))


def layer(path: Path) -> str:
    if path == PACKAGE / "__init__.py":
        return "notebook"  # load_ipython_extension, the notebook layer's entry point
    top = path.relative_to(PACKAGE).parts[0]
    if top in ("core", LOCAL, "cli", *NOTEBOOK_LAYER):
        return top
    return "service"


def is_notebook_layer(name: str) -> bool:
    """IPython, ipywidgets or our magics and widgets: what only the notebook layer imports."""
    return name.split(".")[0] in ("IPython", "ipywidgets", "ipykernel") or name.startswith(
        ("emr_cmk_notebook.magics", "emr_cmk_notebook.widgets")
    )


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: p.name)
def test_core_uses_the_standard_library_only(path):
    outside = {
        name
        for name in imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not name.startswith("emr_cmk_notebook.core")
    }
    assert not outside, f"{path.name} imports {sorted(outside)}"


@pytest.mark.parametrize(
    "path", [p for p in modules() if layer(p) == "service"], ids=lambda p: str(p.name)
)
def test_service_layer_does_not_reach_up_or_into_the_backend(path):
    bad = {
        name
        for name in imports(path)
        if is_notebook_layer(name) or name.startswith("emr_cmk_notebook.local")
    }
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules(LOCAL), ids=lambda p: p.name)
def test_local_backend_only_uses_core_from_the_package(path):
    bad = {
        name
        for name in imports(path)
        if name.startswith("emr_cmk_notebook.")
        and not name.startswith(("emr_cmk_notebook.core", "emr_cmk_notebook.local"))
    }
    assert not bad, f"local/{path.name} imports {sorted(bad)}"


# The local backend's front that starts, finds and stops it; the layers above reach the running
# backend only over the wire. ``emr-cmk local start`` in the foreground also runs its server.
BACKEND_CONTROL = ("emr_cmk_notebook.local", "emr_cmk_notebook.local.process")
CLI_RUNS_THE_SERVER = ("emr_cmk_notebook.local.server",)


def _reaches_into_the_backend(name: str, allowed: tuple[str, ...]) -> bool:
    return name.startswith("emr_cmk_notebook.local.") and name not in allowed


def _is_the_cli(name: str) -> bool:
    return name == "emr_cmk_notebook.cli" or name.startswith("emr_cmk_notebook.cli.")


@pytest.mark.parametrize(
    "path",
    [p for p in modules() if layer(p) in ("notebook", *NOTEBOOK_LAYER)],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_notebook_layer_uses_the_service_layer_and_core_only(path):
    bad = {
        name
        for name in imports(path)
        if _is_the_cli(name) or _reaches_into_the_backend(name, BACKEND_CONTROL)
    }
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules("cli"), ids=lambda p: p.name)
def test_cli_uses_the_service_layer_and_core_never_the_notebook_layer(path):
    bad = {
        name
        for name in imports(path)
        if is_notebook_layer(name)
        or _reaches_into_the_backend(name, BACKEND_CONTROL + CLI_RUNS_THE_SERVER)
    }
    assert not bad, f"cli/{path.name} imports {sorted(bad)}"
