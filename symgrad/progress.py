"""Progress of long work (`symgrad generate`, `symgrad check`) on standard error.

Shown only when the caller asks for it (the command line does) and standard error is a
terminal: never when it is piped or redirected to a file, so scripts and logs see
nothing. A bar appears once the work has taken `DELAY` seconds (short work shows none)
and is removed when it ends, leaving the terminal as the command's output left it.
Drawn by tqdm, imported only when a bar may be shown. Work in a few long stages
(`generate`) asks for `ticking`: the bar is redrawn every `TICK` seconds, so its clock
runs while a stage does.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

DELAY = 0.5  # seconds of work before a bar appears
TICK = 0.5  # seconds between redraws of a ticking bar


class Silent:
    """The progress of work that shows none: tqdm's calls, doing nothing."""

    def __init__(self, total: int) -> None:
        self.total = total

    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, desc: str) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress(
    total: int,
    desc: str,
    *,
    enabled: bool,
    unit: str = "step",
    ticking: bool = False,
    stream: Any = None,
) -> Any:
    """A progress bar over `total` units of work (tqdm's `update`, `set_description`,
    `total`, `refresh`, `close`, and a context manager), or `Silent` where none is
    shown: not `enabled`, or `stream` (standard error) is not a terminal."""
    out: TextIO = sys.stderr if stream is None else stream
    if not enabled or not _is_terminal(out):
        return Silent(total)
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=out,
        leave=False,
        delay=DELAY,
        dynamic_ncols=True,
    )
    if ticking:
        _tick(bar)
    return bar


def _tick(bar: Any) -> None:
    """Redraw `bar` every `TICK` seconds (once `DELAY` has passed) until it closes."""
    closed = threading.Event()

    def run() -> None:
        while not closed.wait(TICK):
            if bar._time() - bar.start_t >= DELAY:
                bar.refresh()

    close = bar.close

    def close_and_stop() -> None:
        closed.set()
        thread.join()
        close()

    bar.close = close_and_stop
    thread = threading.Thread(target=run, name="symgrad-progress", daemon=True)
    thread.start()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
