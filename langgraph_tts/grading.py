"""Answer equivalence with math-verify, bounded in time from any thread or event loop.

math-verify (sympy underneath) can take seconds or hang on adversarial model output, and its
own timeouts use ``signal.alarm``, which only works in the main thread. So `Grader` runs
math-verify in a worker *process* (``spawn``, created on first use) where a per-comparison
``SIGALRM`` deadline works, and a watchdog thread in the parent kills and replaces the worker
if it stops making progress (e.g. stuck in C code that never checks signals). A comparison
that times out or hangs counts as "not equivalent"; nothing is raised to the caller.

Cheap cases never leave the process: equal `normalize_answer` strings are equivalent, and two
plain numbers (integers, decimals, ``a/b``, ``\\frac{a}{b}``) are compared exactly in
`fractions.Fraction` (relative tolerance 1e-9; integers exactly). See docs/grading.md.

This module is the parent side; what runs inside the worker process (and the fast path, which
both sides use) lives in `langgraph_tts._grading_worker`.

Example::

    with Grader(timeout_s=3.0) as grader:
        grader.equivalent("\\frac{1}{2}", "0.5")           # True, no worker needed
        grader.equivalent("2\\sqrt{2}", "\\sqrt{8}")        # True, via math-verify
        grader.group(["1/2", "0.5", None, "\\sqrt{8}"])    # [0, 0, -1, 1]
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import itertools
import logging
import multiprocessing
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from langgraph_tts._grading_worker import (
    _FIELDS,
    _PARSE_A,
    _PARSE_B,
    _VERIFY,
    NUMERIC_REL_TOL,
    _Deadline,
    _greedy_classes,
    _group_in_worker,
    _init_worker,
    _short,
    _strike,
    fast_equivalent,
)
from langgraph_tts.answers import normalize_answer, plain_number

__all__ = [
    "NUMERIC_REL_TOL",
    "Grader",
    "default_grader",
    "fast_equivalent",
]

logger = logging.getLogger(__name__)

_START_METHOD = "spawn"
"""Never "fork": forking a process that runs threads (LangGraph, httpx) can deadlock."""
_GRACE_S = 1.0
"""How long past `timeout_s` the parent waits for a comparison before killing the worker."""
_STARTUP_GRACE_S = 60.0
"""How long queued work may wait for a worker to start (spawning + importing math-verify)."""
_POLL_S = 0.05
"""Watchdog period while work is in flight."""
_MAX_ATTEMPTS = 4
"""Submissions per call; each failed attempt costs a worker restart (about a second)."""
_MAX_WORKER_CHARS = 4000
"""Longer answers are compared by the fast path only (they are garbage, not math)."""


class _Pool:
    """One generation of worker processes plus the board they report progress on."""

    def __init__(self, max_workers: int) -> None:
        ctx = multiprocessing.get_context(_START_METHOD)
        self.slots = max_workers
        self.board: Any = ctx.RawArray("q", max_workers * _FIELDS)
        self.ready: Any = ctx.Value("i", 0)
        self.executor = ProcessPoolExecutor(
            max_workers=max_workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.board, self.ready, max_workers),
        )
        self.inflight = 0
        self.last_progress = time.monotonic()
        self.seen: dict[int, tuple[tuple[int, int], float]] = {}
        self.hung: dict[int, tuple[int, int, int]] = {}

    @property
    def started(self) -> bool:
        """Whether any worker of this generation finished starting."""
        return bool(self.ready.value)

    def row(self, slot: int) -> tuple[int, int, int, int, int]:
        base = slot * _FIELDS
        task, tick, phase, a, b = self.board[base : base + _FIELDS]
        return task, tick, phase, a, b

    def kill(self) -> None:
        """Kill the workers now; their pending futures fail with BrokenProcessPool."""
        kill_workers = getattr(self.executor, "kill_workers", None)  # Python >= 3.14
        if callable(kill_workers):
            kill_workers()
        else:
            processes = getattr(self.executor, "_processes", None) or {}
            for process in list(processes.values()):
                with contextlib.suppress(Exception):
                    process.kill()
        self.executor.shutdown(wait=False)


@dataclass
class _Job:
    """A grouping request as the parent tracks it across worker restarts."""

    keys: list[str]
    texts: list[str]
    skip: set[tuple[int, int]] = field(default_factory=set)
    poisoned: set[int] = field(default_factory=set)
    strikes: dict[int, int] = field(default_factory=dict)
    attempts: int = 0

    def __post_init__(self) -> None:
        self.poisoned |= {i for i, text in enumerate(self.texts) if len(text) > _MAX_WORKER_CHARS}

    @property
    def decided(self) -> bool:
        """Whether the fast path settles every pair: at most one answer the worker may see,
        or only plain numbers."""
        live = [key for i, key in enumerate(self.keys) if i not in self.poisoned]
        return len(live) <= 1 or all(plain_number(key) is not None for key in live)

    def local(self) -> list[int]:
        """Classes from the fast path alone; undecided pairs count as different."""
        return _greedy_classes(
            len(self.keys), lambda a, b: bool(fast_equivalent(self.keys[a], self.keys[b]))
        )


class Grader:
    """Answer equivalence via math-verify in a worker process, with hard time limits.

    Thread-safe and usable from async code; create one and share it (or use
    `default_grader`). The worker pool starts on the first comparison that needs sympy
    (about 1–2 s: a fresh interpreter importing math-verify), not at construction.

    Args:
        timeout_s: Time limit of one comparison (parsing both answers plus verifying). A
            comparison that exceeds it is "not equivalent". The parent kills a worker that
            shows no progress for ``timeout_s + 1`` seconds.
        max_workers: Worker processes. One is enough unless many event-loop tasks grade
            concurrently; each costs ~100 MB.

    Raises:
        ValueError: If ``timeout_s <= 0`` or ``max_workers < 1``.

    Examples:
        Plain numbers are compared in-process; other answers start the worker on first use:

        >>> with Grader(timeout_s=3.0) as grader:
        ...     print(grader.equivalent("\\\\frac{1}{2}", "0.5"))
        ...     print(grader.group(["1/2", "0.5", None, "3"]))
        True
        [0, 0, -1, 1]
    """

    def __init__(self, *, timeout_s: float = 3.0, max_workers: int = 1) -> None:
        if not timeout_s > 0:
            raise ValueError(f"Grader: timeout_s must be > 0 seconds, got {timeout_s!r}.")
        if max_workers < 1:
            raise ValueError(f"Grader: max_workers must be >= 1, got {max_workers!r}.")
        self.timeout_s = float(timeout_s)
        self.max_workers = int(max_workers)
        self._lock = threading.RLock()
        self._pool: _Pool | None = None
        self._task_ids = itertools.count(1)
        self._watchdog: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._unavailable = ""

    # ---- public API ------------------------------------------------------------------------

    def equivalent(self, gold: str, pred: str | None) -> bool:
        """Whether `pred` is mathematically equal to `gold` (gold first: math-verify is not
        symmetric). Blocks the calling thread, at most about `timeout_s` plus a worker start.

        Args:
            gold: Reference answer (e.g. a dataset's answer field).
            pred: Extracted predicted answer; ``None`` is never equivalent.
        """
        job = self._pair_job(gold, pred)
        if isinstance(job, bool):
            return job
        ids = job.local() if job.decided else self._run(job)
        return ids[0] == ids[1]

    async def aequivalent(self, gold: str, pred: str | None) -> bool:
        """Async `equivalent`; waits for the worker without blocking the event loop."""
        job = self._pair_job(gold, pred)
        if isinstance(job, bool):
            return job
        ids = job.local() if job.decided else await self._arun(job)
        return ids[0] == ids[1]

    def group(self, answers: Sequence[str | None]) -> list[int]:
        """Equivalence-class id per answer, for `langgraph_tts.answers.vote`.

        Classes are numbered 0, 1, 2, … in first-seen order; ``None`` answers get ``-1``.
        Each new answer is compared (as the prediction) against the first member of every
        existing class (as gold). All comparisons of one call go to the worker as one task.

        Args:
            answers: Extracted answers, ``None`` where a candidate has none.
        """
        positions, job = self._group_job(answers)
        ids = job.local() if job.decided else self._run(job)
        return [ids[p] if p >= 0 else -1 for p in positions]

    async def agroup(self, answers: Sequence[str | None]) -> list[int]:
        """Async `group`; waits for the worker without blocking the event loop."""
        positions, job = self._group_job(answers)
        ids = job.local() if job.decided else await self._arun(job)
        return [ids[p] if p >= 0 else -1 for p in positions]

    def close(self) -> None:
        """Stop the worker and the watchdog. A later call starts them again."""
        with self._lock:
            pool, self._pool = self._pool, None
            watchdog, self._watchdog = self._watchdog, None
            self._unavailable = ""
            self._stop.set()
            self._wake.set()
        if pool is not None:
            if pool.inflight:
                pool.kill()
            else:
                pool.executor.shutdown(wait=True)
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- request planning (pure) -------------------------------------------------------------

    @staticmethod
    def _pair_job(gold: str | None, pred: str | None) -> _Job | bool:
        """A fast-path verdict, or a two-answer job with gold first."""
        if gold is None or pred is None:
            return False
        keys = [normalize_answer(gold), normalize_answer(pred)]
        fast = fast_equivalent(keys[0], keys[1])
        if fast is not None:
            return fast
        return _Job(keys, [gold, pred])

    @staticmethod
    def _group_job(answers: Sequence[str | None]) -> tuple[list[int], _Job]:
        """Collapse answers to unique normalized keys: (unique index per answer, job)."""
        unique: dict[str, int] = {}
        texts: list[str] = []
        positions: list[int] = []
        for answer in answers:
            if answer is None:
                positions.append(-1)
                continue
            key = normalize_answer(answer)
            if key not in unique:
                unique[key] = len(texts)
                texts.append(answer)
            positions.append(unique[key])
        return positions, _Job(list(unique), texts)

    # ---- running jobs in the worker ----------------------------------------------------------

    def _run(self, job: _Job) -> list[int]:
        while True:
            submitted = self._submit(job)
            if submitted is None:
                return job.local()
            task_id, future, pool = submitted
            try:
                ids, notes = future.result()
            except (Exception, _Deadline) as exc:
                if self._retry(job, task_id, pool, exc):
                    continue
                return job.local()
            return self._accept(job, ids, notes)

    async def _arun(self, job: _Job) -> list[int]:
        while True:
            # submit() may spawn a worker process, so it runs off the event loop.
            submitted = await asyncio.to_thread(self._submit, job)
            if submitted is None:
                return job.local()
            task_id, future, pool = submitted
            try:
                ids, notes = await asyncio.wrap_future(future)
            except (Exception, _Deadline) as exc:
                if self._retry(job, task_id, pool, exc):
                    continue
                return job.local()
            return self._accept(job, ids, notes)

    def _submit(self, job: _Job) -> tuple[int, Future[Any], _Pool] | None:
        """Queue `job` on the current pool (creating it and the watchdog if needed)."""
        with self._lock:
            for _ in range(2):
                if self._unavailable:
                    return None
                pool = self._pool
                try:
                    if pool is None:
                        pool = self._pool = _Pool(self.max_workers)
                    self._start_watchdog()
                    task_id = next(self._task_ids)
                    future = pool.executor.submit(
                        _group_in_worker,
                        task_id,
                        job.keys,
                        job.texts,
                        job.skip,
                        job.poisoned,
                        job.strikes,
                        self.timeout_s,
                    )
                except BrokenProcessPool:  # a worker died since the last call: start afresh
                    self._drop(pool)
                    continue
                except Exception as exc:
                    if getattr(multiprocessing.current_process(), "_inheriting", False):
                        raise  # we are a worker re-running an unguarded __main__: fail loudly
                    self._disable(f"cannot start a grading worker process ({exc!r})")
                    self._drop(pool)
                    return None
                pool.inflight += 1
                self._wake.set()
                break
            else:
                return None
        future.add_done_callback(functools.partial(self._on_done, pool))
        return task_id, future, pool

    def _drop(self, pool: _Pool | None) -> None:
        """Forget and kill `pool` if it is still current; the next submission makes a new one."""
        if pool is None:
            return
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.kill()

    def _disable(self, reason: str) -> None:
        """Stop using worker processes until `close()`; comparisons fall back to the fast path."""
        with self._lock:
            if self._unavailable:
                return
            self._unavailable = reason
        logger.error(
            "%s; answers are now compared by the fast path only (identical normalized text or "
            "equal plain numbers). In a script, make sure the entry point is guarded by "
            "`if __name__ == '__main__':`, which multiprocessing's 'spawn' needs.",
            reason,
        )

    def _on_done(self, pool: _Pool, _future: Future[Any]) -> None:
        with self._lock:
            pool.inflight -= 1
            pool.last_progress = time.monotonic()

    def _retry(self, job: _Job, task_id: int, pool: _Pool, exc: BaseException) -> bool:
        """Record what a failed attempt teaches; say whether another attempt is worthwhile."""
        job.attempts += 1
        hung = pool.hung.get(task_id)
        if hung is None:
            if not isinstance(exc, BrokenProcessPool):
                logger.warning("grading worker failed (%r); treating as not equivalent", exc)
                return False
            if not pool.started:
                self._disable("the grading worker process exited while starting")
                return False
            return job.attempts < _MAX_ATTEMPTS  # collateral: another task's worker was killed
        phase, a, b = hung
        if phase == _PARSE_A:
            job.poisoned.add(a)
        elif phase == _PARSE_B:
            job.poisoned.add(b)
        elif phase == _VERIFY:
            job.skip.add((a, b))
            _strike(job.strikes, job.poisoned, a, b)
        if 0 <= a < len(job.texts) and 0 <= b < len(job.texts):
            if phase in (_PARSE_A, _PARSE_B):
                what = f"parsing {_short(job.texts[a if phase == _PARSE_A else b])}"
            else:
                what = f"comparing {_short(job.texts[a])} (gold) with {_short(job.texts[b])}"
            logger.warning("grading worker hung %s; killed it, treating as not equivalent", what)
        if len(job.texts) == 2:
            return False  # the only comparison is decided: not equivalent
        return job.attempts < _MAX_ATTEMPTS

    @staticmethod
    def _accept(job: _Job, ids: list[int] | None, notes: list[str]) -> list[int]:
        for note in notes:
            logger.warning("%s; treated as not equivalent", note)
        return job.local() if ids is None else ids

    # ---- watchdog ------------------------------------------------------------------------------

    def _start_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.is_alive():
            return
        self._stop = threading.Event()
        self._watchdog = threading.Thread(
            target=self._watch,
            args=(self._stop,),
            name="langgraph-tts-grader-watchdog",
            daemon=True,
        )
        self._watchdog.start()

    def _watch(self, stop: threading.Event) -> None:
        """Poll the board while work is in flight; kill a worker that stopped progressing."""
        while not stop.is_set():
            with self._lock:
                pool = self._pool
                busy = pool is not None and pool.inflight > 0
            if pool is None or not busy:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            stop.wait(_POLL_S)
            try:
                self._inspect(pool)
            except Exception:  # never let the watchdog die silently
                logger.exception("grading watchdog check failed")

    def _inspect(self, pool: _Pool) -> None:
        now = time.monotonic()
        running = False
        for slot in range(pool.slots):
            task, tick, phase, a, b = pool.row(slot)
            if task == 0:
                pool.seen.pop(slot, None)
                continue
            running = True
            seen = pool.seen.get(slot)
            if seen is None or seen[0] != (task, tick):
                pool.seen[slot] = ((task, tick), now)
                pool.last_progress = now
            elif now - seen[1] > self.timeout_s + _GRACE_S:
                pool.hung[task] = (phase, a, b)
                self._replace(pool, f"no progress for {now - seen[1]:.1f} s")
                return
        if not running and pool.inflight and now - pool.last_progress > _STARTUP_GRACE_S:
            if not pool.started:
                self._disable(f"no grading worker process started within {_STARTUP_GRACE_S:g} s")
            self._replace(pool, f"queued work made no progress for {_STARTUP_GRACE_S:g} s")

    def _replace(self, pool: _Pool, reason: str) -> None:
        """Kill `pool`; the next submission creates a fresh one."""
        logger.warning("grading worker is stuck (%s); killing it", reason)
        self._drop(pool)


_default: Grader | None = None
_default_lock = threading.Lock()


def default_grader() -> Grader:
    """The process-wide `Grader` (3 s limit, one worker), created on first use, closed at exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Grader()
            atexit.register(_default.close)
        return _default
