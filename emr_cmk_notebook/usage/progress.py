"""Progress for long reads and harvests, drawn by tqdm bars that the caller makes.

The service layer never picks a display: the CLI passes a factory for a terminal bar on stderr,
the magics one for a notebook bar. A factory is called as ``factory(total=, unit=, desc=)`` and
returns a tqdm bar (or anything with ``update``, ``set_postfix_str``, ``refresh`` and ``close``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ProgressFactory = Callable[..., Any]


@contextmanager
def harvest_bars(
    factory: ProgressFactory | None, also: Callable[[Any], None] | None = None
) -> Iterator[Callable[[Any], None] | None]:
    """A ``HarvestProgress`` callback drawing one bar per account and region (percent of the
    window read) and then calling ``also``; the bars close when the block ends."""
    if factory is None:
        yield also
        return
    bars: dict[tuple[str, str], Any] = {}

    def show(state: Any) -> None:
        key = (state.account, state.region)
        if key not in bars:
            bars[key] = factory(total=100, unit="%", desc=f"{state.account}/{state.region}")
        bar = bars[key]
        bar.update(round(state.fraction * 100) - bar.n)
        bar.set_postfix_str(f"{state.calls} calls, {state.events} events")
        if also is not None:
            also(state)

    try:
        yield show
    finally:
        for bar in bars.values():
            bar.close()
