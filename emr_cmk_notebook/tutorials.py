"""Running the tutorial notebooks headless, failing loudly on the first cell error."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions.results import error_line


class NotebookFailed(UserError):
    """A cell raised; the message names the notebook, the cell and the error."""


def run_notebook(path: Path, output: Path | None = None, *, timeout: int = 600) -> Path:
    """Execute ``path`` top to bottom in a fresh kernel; write the executed copy to ``output``.

    Nothing is written when a cell fails, so no half-run notebook is left behind.
    """
    import nbformat
    from jupyter_core.paths import jupyter_runtime_dir
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    path = Path(path)
    if not path.is_file():
        raise UserError(f"no notebook at {path}", hint="give the path of an .ipynb file")
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:
        raise UserError(f"{path} is not a readable notebook: {exc}") from None
    output = Path(output) if output else Path("executed") / path.name
    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    # IPC: the kernel talks over Unix sockets in Jupyter's private runtime folder, not over TCP
    # ports that anyone on the machine could reach (and ipykernel warns about). The path is
    # absolute: the kernel runs in the notebook's folder, not in ours.
    sockets = runtime / f"emr-cmk-kernel-{uuid.uuid4().hex[:12]}"
    ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(sockets)}})
    client = NotebookClient(
        notebook,
        config=ipc,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = next(
            (
                i
                for i, c in enumerate(notebook.cells, 1)
                if any(o.get("output_type") == "error" for o in c.get("outputs", []))
            ),
            "?",
        )
        raise NotebookFailed(
            f"{path}: cell {failed} failed: {error_line(exc.ename, exc.evalue)}"
        ) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=output.parent, delete=False, suffix=".tmp", encoding="utf-8"
    ) as handle:
        nbformat.write(notebook, handle)
    os.replace(handle.name, output)
    return output
