"""The half of `langgraph_tts.grading` that runs inside the spawned grading worker process.

A ``spawn`` worker starts a fresh interpreter and imports only the modules of the functions it
is sent (`_init_worker`, `_group_in_worker`), so this module is kept apart from the parent side
(`Grader`, its pool and watchdog) and its imports light: the standard library and
`langgraph_tts.answers`, never langgraph, langchain or the HTTP clients; math-verify is imported
by `_init_worker`, in the worker only. It also holds what both sides share: the fast path
(`fast_equivalent`), greedy grouping, timeout strikes and the progress board's layout.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from langgraph_tts.answers import plain_number

# --------------------------------------------------------------------------------------------
# Shared with the parent (`langgraph_tts.grading`)
# --------------------------------------------------------------------------------------------

NUMERIC_REL_TOL = 1e-9
"""Relative tolerance of the in-process plain-number comparison (integers compare exactly)."""

_REFIRE_S = 0.25
"""The worker's alarm repeats at this period if something swallowed the first one."""
_MAX_STRIKES = 2
"""An answer in this many timed-out or hung comparisons of one call is not compared again
(a pathological answer would otherwise cost `timeout_s` against every other class)."""

# Shared "board" the worker writes and the watchdog reads: one row of _FIELDS int64 per worker.
_TASK, _TICK, _PHASE, _A, _B = range(5)
_FIELDS = 5
_IDLE, _PARSE_A, _PARSE_B, _VERIFY = range(4)
_PHASE_NAMES = {_IDLE: "idle", _PARSE_A: "parsing", _PARSE_B: "parsing", _VERIFY: "verifying"}


def fast_equivalent(a: str, b: str) -> bool | None:
    """Decide equivalence of two *normalized* answers without sympy, if that is possible.

    Args:
        a: `normalize_answer` output.
        b: `normalize_answer` output.

    Returns:
        ``True`` for identical strings; ``True``/``False`` for two plain numbers (exact for two
        integers, else relative tolerance `NUMERIC_REL_TOL`); ``None`` when math-verify must
        decide.
    """
    if a == b:
        return True
    pa, pb = plain_number(a), plain_number(b)
    if pa is None or pb is None:
        return None
    (va, a_is_int), (vb, b_is_int) = pa, pb
    if a_is_int and b_is_int:
        return va == vb
    return abs(va - vb) <= NUMERIC_REL_TOL * max(abs(va), abs(vb))


def _greedy_classes(count: int, same: Callable[[int, int], bool]) -> list[int]:
    """Class id per item: each item joins the first class whose representative it matches.

    Comparing only against one representative per class (the first member, acting as gold)
    keeps the result well defined even though equivalence tests are not transitive.
    """
    reps: list[int] = []
    ids: list[int] = []
    for item in range(count):
        for class_id, rep in enumerate(reps):
            if same(rep, item):
                ids.append(class_id)
                break
        else:
            ids.append(len(reps))
            reps.append(item)
    return ids


# --------------------------------------------------------------------------------------------
# Worker process only
# --------------------------------------------------------------------------------------------


class _Deadline(BaseException):
    """Raised by the worker's SIGALRM handler; a BaseException so `except Exception` in
    math-verify or sympy cannot swallow it."""


class _WorkerState:
    """Per-process state of a grading worker: its board row and the alarm flag."""

    def __init__(self, board: Any, slot: int) -> None:
        self.board = board
        self.base = slot * _FIELDS
        self.armed = False

    def put(self, field_index: int, value: int) -> None:
        self.board[self.base + field_index] = value


_worker: _WorkerState | None = None
MEMORY_HEADROOM_BYTES = 1 << 30
"""Address space a worker may grow by after start-up (POSIX ``RLIMIT_AS``; Linux measures the
start-up size). A comparison that needs more fails fast with `MemoryError` ("not
equivalent") instead of swapping the machine: ``10^{10^{9}}`` as an exact integer alone is
415 MB. A normal comparison grows the worker by a few MB."""
_WARMUP_PAIRS = (
    ("\\boxed{\\frac{1}{2}}", "\\boxed{0.5}"),
    ("\\boxed{\\sqrt{8}}", "\\boxed{x^2}"),
    ("\\boxed{(1,2]}", "\\boxed{\\{1,2\\}}"),
)
"""First uses compile math-verify's regexes and LaTeX parser and load sympy's solvers (about
0.5 s, several seconds on a loaded machine); done at start-up so no deadline pays for them."""


def _init_worker(board: Any, ready: Any, slots: int) -> None:
    """Import and warm up math-verify outside any deadline, install the alarm, claim a row.

    `ready` counts workers that finished starting, so the parent can tell "cannot start"
    (give up) from "died later" (retry).
    """
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    from math_verify import parse, verify

    for name in ("math_verify", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    for gold, pred in _WARMUP_PAIRS:
        verify(
            parse(gold, parsing_timeout=None),
            parse(pred, parsing_timeout=None),
            timeout_seconds=None,
        )
    _limit_memory(MEMORY_HEADROOM_BYTES)
    signal.signal(signal.SIGALRM, _on_alarm)
    with ready.get_lock():
        slot = ready.value % slots
        ready.value += 1
    _worker = _WorkerState(board, slot)


def _limit_memory(headroom: int) -> None:
    """Cap this process's address space at its current size plus `headroom` (Linux only;
    elsewhere the time limits alone apply)."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = current + headroom
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or soft > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):
        return


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _worker is not None and _worker.armed:
        raise _Deadline


def _as_latex(text: str) -> str:
    """Give math-verify an explicit target: a bare answer is boxed, a solution text is not."""
    if "\\boxed" in text or "$" in text:
        return text
    return "\\boxed{" + text + "}"


@dataclass
class _WorkerJob:
    """One `group` call inside the worker: parse each answer once, compare against reps."""

    keys: list[str]
    texts: list[str]
    skip: set[tuple[int, int]]
    poisoned: set[int]
    strikes: dict[int, int]
    timeout_s: float
    state: _WorkerState
    parsed: dict[int, list[Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def same(self, gold: int, pred: int) -> bool:
        fast = fast_equivalent(self.keys[gold], self.keys[pred])
        if fast is not None:
            return fast
        if (gold, pred) in self.skip or gold in self.poisoned or pred in self.poisoned:
            return False
        state = self.state
        state.put(_TICK, state.board[state.base + _TICK] + 1)
        state.put(_A, gold)
        state.put(_B, pred)
        try:
            return self._verify_bounded(gold, pred)
        except _Deadline:
            self._disarm()
            self._note_timeout(gold, pred)
            if self.state.board[self.state.base + _PHASE] == _VERIFY:
                _strike(self.strikes, self.poisoned, gold, pred)
            return False
        except Exception as exc:  # math-verify reports most errors itself; this is a backstop
            self.notes.append(f"error comparing #{gold} and #{pred}: {exc!r}"[:300])
            return False
        finally:
            state.put(_PHASE, _IDLE)

    def _verify_bounded(self, gold: int, pred: int) -> bool:
        from math_verify import parse, verify

        self.state.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.timeout_s, _REFIRE_S)
        try:
            for phase, index in ((_PARSE_A, gold), (_PARSE_B, pred)):
                if index not in self.parsed:
                    self.state.put(_PHASE, phase)
                    self.parsed[index] = []  # stays empty if the parse times out
                    self.parsed[index] = parse(_as_latex(self.texts[index]), parsing_timeout=None)
            if not self.parsed[gold] or not self.parsed[pred]:
                return False
            self.state.put(_PHASE, _VERIFY)
            return bool(verify(self.parsed[gold], self.parsed[pred], timeout_seconds=None))
        finally:
            self._disarm()

    def _disarm(self) -> None:
        self.state.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0, 0)

    def _note_timeout(self, gold: int, pred: int) -> None:
        phase = self.state.board[self.state.base + _PHASE]
        self.notes.append(
            f"comparison of {_short(self.texts[gold])} (gold) and {_short(self.texts[pred])} "
            f"exceeded {self.timeout_s:g} s while {_PHASE_NAMES.get(phase, 'working')}"
        )


def _group_in_worker(
    task_id: int,
    keys: list[str],
    texts: list[str],
    skip: set[tuple[int, int]],
    poisoned: set[int],
    strikes: dict[int, int],
    timeout_s: float,
) -> tuple[list[int] | None, list[str]]:
    """Entry point run in the worker: class ids of `texts` (unique answers, first-seen order)."""
    state = _worker
    if state is None:  # pragma: no cover - the initializer always runs first
        return None, ["grading worker was not initialised"]
    state.put(_TASK, task_id)
    job = _WorkerJob(keys, texts, skip, poisoned, strikes, timeout_s, state)
    try:
        return _greedy_classes(len(texts), job.same), job.notes
    except _Deadline:  # an alarm landed outside a comparison; give up on this call
        job._disarm()
        return None, [*job.notes, "deadline fired outside a comparison"]
    finally:
        state.put(_PHASE, _IDLE)
        state.put(_TASK, 0)


def _strike(strikes: dict[int, int], poisoned: set[int], a: int, b: int) -> None:
    """Count a timed-out comparison; poison repeat offenders.

    If exactly one of the two answers already timed out before, only it is blamed, so an
    innocent answer compared against a pathological one is not poisoned by association.
    """
    suspects = [i for i in (a, b) if strikes.get(i, 0) > 0]
    for index in suspects if len(suspects) == 1 else (a, b):
        strikes[index] = strikes.get(index, 0) + 1
        if strikes[index] >= _MAX_STRIKES:
            poisoned.add(index)


def _short(text: str, limit: int = 60) -> str:
    """Model output is untrusted: log a bounded repr of it."""
    return repr(text if len(text) <= limit else text[:limit] + "…")
