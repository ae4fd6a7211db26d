"""Files the user names, read with a bound: ``/dev/zero`` or a huge file fails in one line."""

from __future__ import annotations

import os
import stat

from emr_cmk_notebook.core.errors import UserError


def read_bounded(path: str | os.PathLike[str], limit: int, too_large: str) -> bytes:
    """The bytes of ``path``, or ``UserError(too_large)`` when it holds more than ``limit``.

    A regular file is judged by its size before it is read; anything else (a device such as
    ``/dev/zero``, a pipe) is read up to one byte past ``limit``. ``OSError`` is left to the
    caller, which knows how to word it.
    """
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise UserError(too_large)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UserError(too_large)
    return data
