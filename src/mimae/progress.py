"""Progress of long work, suited to where the output goes: a live tqdm bar on a terminal; in a log file or CI, one
plain line per log interval (each ``set_postfix``) and at most one a minute otherwise, never ``\\r`` frames."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized

from tqdm import tqdm

PLAIN_LINE_SECONDS = 60.0


def on_terminal() -> bool:
    return sys.stderr.isatty()


class PlainProgress:
    """The part of tqdm's interface mimae uses (iteration, update, set_postfix, close), written as whole lines."""

    def __init__(self, iterable: Iterable | None, total: int | None, desc: str, initial: int, leave: bool):
        self.iterable, self.desc, self.n, self.leave = iterable, desc, initial, leave
        self.total = total if total is not None else (len(iterable) if isinstance(iterable, Sized) else None)
        self.start = self.last_line = time.monotonic()
        self.postfix = ""
        self.n_shown: int | None = None

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last_line >= PLAIN_LINE_SECONDS:
            self.line()

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())
        self.line()

    def line(self) -> None:
        self.last_line, self.n_shown = time.monotonic(), self.n
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        elapsed = time.strftime("%H:%M:%S", time.gmtime(self.last_line - self.start))
        print(f"{self.desc}: {done} [{elapsed}]" + (f" {self.postfix}" if self.postfix else ""), file=sys.stderr,
              flush=True)

    def close(self) -> None:
        if self.leave and self.n != self.n_shown:
            self.line()


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str | None = None,
             initial: int = 0, enabled: bool = True, leave: bool = True) -> tqdm | PlainProgress:
    """A progress reporter over ``iterable`` (or updated by hand up to ``total``); silent when ``enabled`` is false
    or ``desc`` is None. ``leave=False``: a terminal bar disappears when done, and no closing plain line is written."""
    if not enabled or desc is None:
        return tqdm(iterable, total=total, disable=True)
    if on_terminal():
        return tqdm(iterable, total=total, initial=initial, desc=desc, leave=leave, dynamic_ncols=True)
    return PlainProgress(iterable, total, desc, initial, leave)
