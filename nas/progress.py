"""Progress bars: tqdm on a terminal; in a redirected log, a plain line now and then."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TextIO

from tqdm import tqdm

LOG_INTERVAL = 30.0  # seconds between progress lines when stderr is not a terminal


class ProgressLines:
    """A file for tqdm that writes its redraws as whole lines on `stream`: at most one
    every `interval` seconds, and the last one when a bar that stays (`leave=True`) ends;
    a bar cleared at its end (`leave=False`) writes nothing more."""

    def __init__(self, stream: TextIO, interval: float) -> None:
        self.stream = stream
        self.interval = interval
        self.pending = ""  # the latest state not written yet
        self.written_at = -float("inf")

    def write(self, text: str) -> None:
        state = text.strip("\r\n ")
        if state:
            self.pending = state
            if time.monotonic() - self.written_at >= self.interval:
                self._write_pending()
        elif "\n" in text:  # the bar ends and stays
            self._write_pending()
        else:  # the bar is cleared
            self.pending = ""

    def _write_pending(self) -> None:
        if self.pending:
            self.stream.write(self.pending + "\n")
            self.stream.flush()
            self.pending, self.written_at = "", time.monotonic()

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable: Iterable | None = None, **options) -> tqdm:
    """A tqdm bar on stderr (`options` as tqdm's): redrawn in place on a terminal; where
    stderr is not one (a log file, a pipe), newline-terminated lines every `LOG_INTERVAL`
    seconds instead of carriage returns."""
    if sys.stderr.isatty():
        return tqdm(iterable, dynamic_ncols=True, **options)
    lines = ProgressLines(sys.stderr, LOG_INTERVAL)
    return tqdm(iterable, file=lines, mininterval=LOG_INTERVAL, ascii=True, **options)
