"""``python -m emr_cmk_notebook.local.serve``: the backend process itself."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from emr_cmk_notebook.local.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m emr_cmk_notebook.local.serve")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", default=None)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args()

    def announce(backend) -> None:
        if args.ready_file:
            tmp = args.ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"endpoint": backend.endpoint, "pid": os.getpid()}))
            os.replace(tmp, args.ready_file)

    serve(args.data_dir, port=args.port, seed_name=args.seed, on_ready=announce)


if __name__ == "__main__":
    main()
