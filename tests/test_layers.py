"""The import direction of DESIGN.md section 2: notebook -> service -> core; local stays apart."""

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
        if name.split(".")[0] in ("IPython", "ipywidgets", "ipykernel")
        or name.startswith(("emr_cmk_notebook.magics", "emr_cmk_notebook.widgets"))
        or name.startswith("emr_cmk_notebook.local")
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
