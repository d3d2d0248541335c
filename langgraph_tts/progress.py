"""A live progress bar for long sweeps, on stderr: cells done (resumed ones included),
accuracy so far, tokens per second and an ETA from the cells finished in this run.

When stderr is not a terminal (a log file, `ray job submit`), one plain line is written
every `log_every_s` seconds instead, and a last one at the end."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["SweepProgress"]


class SweepProgress:
    """`with SweepProgress(total, done=resumed, correct=resumed_correct) as bar: bar.update(row)`."""

    def __init__(
        self,
        total: int,
        *,
        done: int = 0,
        correct: int = 0,
        console: Console | None = None,
        log_every_s: float = 30.0,
    ) -> None:
        self.console = console or Console(file=sys.stderr)
        self.total = total
        self.live = self.console.is_terminal
        self.log_every_s = log_every_s
        self.last_log = 0.0
        self.progress = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            speed_estimate_period=600.0,
            transient=False,
        )
        self.done, self.correct = done, correct
        self.resumed = done
        self.tokens = 0
        self.errors = 0
        self.started = time.perf_counter()
        self.task = self.progress.add_task(self._text(), total=total, completed=done)

    def _text(self) -> str:
        acc = f"{self.correct / self.done:.3f}" if self.done else "-"
        rate = self.tokens / max(time.perf_counter() - self.started, 1e-9)
        parts = [f"acc {acc}", f"{rate:,.0f} tok/s"]
        if self.resumed:
            parts.append(f"{self.resumed} resumed")
        if self.errors:
            parts.append(f"[red]{self.errors} errors")
        return "  ".join(parts)

    def __enter__(self) -> SweepProgress:
        if self.live:
            self.progress.__enter__()
        else:
            self._log()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.__exit__(None, None, None)
        else:
            self._log()

    def _log(self) -> None:
        self.last_log = time.perf_counter()
        elapsed = self.last_log - self.started
        ran = self.done - self.resumed
        left = self.total - self.done
        eta = f"{left * elapsed / ran:.0f}s" if ran else "-"
        text = self._text().replace("[red]", "")
        self.console.file.write(f"sweep {self.done}/{self.total}  {text}  eta {eta}\n")
        self.console.file.flush()

    def update(self, row: dict[str, Any]) -> None:
        self.done += 1
        self.correct += bool(row.get("correct"))
        self.errors += bool(row.get("error"))
        ledger = row.get("ledger") or {}
        self.tokens += int(ledger.get("completion_tokens", 0))
        self.progress.update(self.task, advance=1, description=self._text())
        if not self.live and time.perf_counter() - self.last_log >= self.log_every_s:
            self._log()
