"""A real Jupyter kernel for tests: run cells and read what they showed, shut it down, or kill it
with SIGKILL (no cleanup of any kind, as after a crash or the OOM killer)."""

from __future__ import annotations

import os
import signal


class Kernel:
    """A real kernel; ``run`` returns what the cell printed and displayed, as text."""

    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3")

    def run(self, code: str, *, ok: bool = True) -> str:
        seen: list[str] = []

        def keep(message: dict) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                seen.append(content["text"])
            elif message["msg_type"] in ("execute_result", "display_data"):
                seen.append(content["data"].get("text/plain", ""))
            elif message["msg_type"] == "error":
                seen.append(f"{content['ename']}: {content['evalue']}")

        reply = self.client.execute_interactive(code, timeout=180, output_hook=keep)
        if ok:
            assert reply["content"]["status"] == "ok", "".join(seen)
        return "".join(seen)

    def kill(self) -> None:
        """SIGKILL: no atexit, no cleanup of any kind."""
        process = self.manager.provisioner.process
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self.client.stop_channels()
        self.manager.cleanup_resources()

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


def crash_holding(*cells: str) -> None:
    """Start a kernel, load the extension, run ``cells`` (session starts), then SIGKILL it."""
    crashed = Kernel()
    try:
        crashed.run("%load_ext emr_cmk_notebook")
        for cell in cells:
            crashed.run(cell)
    finally:
        crashed.kill()
