"""Grader: fast path, math-verify in a worker process, time limits, threads, asyncio, grouping.

One worker is spawned for the module (about 1 s); the hang tests kill and restart it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from langgraph_tts import _grading_worker, grading
from langgraph_tts.answers import extract_answer
from langgraph_tts.grading import Grader, default_grader, fast_equivalent

TIMEOUT_S = 2.0
SHORT_TIMEOUT_S = (
    2.0  # deadline for tests that hit one on purpose; real comparisons need headroom under load
)
TOWER = "9^{9^{9^{9}}}"  # sympy keeps evaluating this until the deadline

posix_only = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    with Grader(timeout_s=TIMEOUT_S) as shared:
        yield shared


def _stop_worker_when(grader: Grader, started: Callable[[tuple[int, ...]], bool]) -> None:
    """Freeze the worker (SIGSTOP) once its board row satisfies `started`: a stand-in for a
    worker stuck in C code, where the in-process alarm cannot help."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pool = grader._pool
        if pool is not None and started(pool.row(0)):
            os.kill(next(iter(pool.executor._processes)), signal.SIGSTOP)
            return
        time.sleep(0.002)
    raise AssertionError("the worker never reached the expected state")


# ---- fast path -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("12", "12", True),
        ("12", "13", False),
        ("100000000000000000001", "100000000000000000000", False),  # ints compare exactly
        ("0.5", "1/2", True),
        ("\\frac{1}{2}", "0.5", True),
        ("-\\frac{3}{4}", "-0.75", True),
        ("1", "1.0000000000001", True),  # within 1e-9
        ("0.333333", "1/3", False),  # math-verify would round; the fast path does not
        ("\\sqrt{8}", "2\\sqrt{2}", None),
        ("50%", "0.5", None),
    ],
)
def test_fast_equivalent(a: str, b: str, expected: bool | None) -> None:
    assert fast_equivalent(a, b) is expected


def test_fast_path_never_starts_a_worker() -> None:
    grader = Grader()
    assert grader.equivalent("\\frac{1}{2}", "\\dfrac12")
    assert grader.equivalent("1,000", "1000")
    assert grader.equivalent("x = 3", "3")
    assert not grader.equivalent("11", "10")
    assert not grader.equivalent("1", None)
    assert grader.group(["1/2", "0.5", None, "3", "\\frac{1}{2}", "3.0"]) == [0, 0, -1, 1, 0, 1]
    assert grader.group([None, "\\sqrt{2}", "\\sqrt2"]) == [-1, 0, 0]
    assert not grader.equivalent("\\sqrt{2}" * 1000, "\\sqrt{2}")  # too long for the worker
    assert grader._pool is None


def test_grader_validates_arguments() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        Grader(timeout_s=0)
    with pytest.raises(ValueError, match="max_workers"):
        Grader(max_workers=0)


def test_default_grader_is_a_lazy_singleton() -> None:
    assert default_grader() is default_grader()
    assert isinstance(default_grader(), Grader)


# ---- math-verify in the worker -------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ("2\\sqrt{2}", "\\sqrt{8}", True),
        ("\\{1,2\\}", "\\{2,1\\}", True),
        ("(1,2]", "(1,2]", True),
        ("(1,2]", "(1,2)", False),
        ("[0, \\infty)", "[0,\\infty)", True),
        ("x^2+2x+1", "(x+1)^2", True),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", True),
        ("3", "x = 3", True),
        ("0.5", "50\\%", True),  # math-verify accepts a percentage of the value
        ("50\\%", "0.5", True),
        ("10", "11", False),
        ("10", "\\text{ten}", False),
        ("\\pi", "3.14", False),
        ("\\frac{1}{2}", "So the final answer is: $\\boxed{\\frac{1}{2}}$.", True),  # full text
    ],
)
def test_equivalent(grader: Grader, gold: str, pred: str, expected: bool) -> None:
    assert grader.equivalent(gold, pred) is expected


def test_extract_then_grade(grader: Grader) -> None:
    text = (
        "## Step 1: ...\n\nTherefore, the final answer is: $\\boxed{\\dfrac{4}{8}}$. I hope it is."
    )
    assert grader.equivalent("0.5", extract_answer(text))
    assert not grader.equivalent("0.5", extract_answer("no boxed answer here"))


def test_equivalent_from_a_worker_thread(grader: Grader) -> None:
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(grader.equivalent("\\sqrt{8}", "2\\sqrt2")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [True] * 4


def test_many_concurrent_aequivalent_calls_inside_asyncio_run(grader: Grader) -> None:
    async def main() -> tuple[list[bool], list[float]]:
        lags: list[float] = []

        async def heartbeat() -> None:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic() - before - 0.01)

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        calls = [
            grader.aequivalent(f"\\sqrt{{{2 * i * i}}}", f"{i}\\sqrt{{2}}") for i in range(1, 41)
        ]
        calls += [grader.aequivalent(f"{i}\\sqrt{{3}}", f"{i}\\sqrt{{2}}") for i in range(1, 11)]
        results = await asyncio.gather(*calls)
        beat.cancel()
        return results, lags

    results, lags = asyncio.run(main())
    assert results == [True] * 40 + [False] * 10
    # The loop kept ticking while 50 comparisons (100+ ms of worker time) were in flight.
    assert len(lags) >= 3, "the event loop did not run while comparisons were pending"
    assert max(lags) < 0.5, f"event loop blocked for {max(lags):.3f} s"


# ---- time limits -------------------------------------------------------------------------


def test_pathological_input_times_out_and_grader_recovers(
    grader: Grader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grader, "timeout_s", SHORT_TIMEOUT_S)
    start = time.monotonic()
    assert grader.equivalent(TOWER, "1") is False
    assert time.monotonic() - start < SHORT_TIMEOUT_S + 1.0
    assert grader.equivalent("2\\sqrt{2}", "\\sqrt{8}")


@posix_only
def test_hung_worker_is_killed_and_replaced(
    grader: Grader, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grader, "timeout_s", SHORT_TIMEOUT_S)
    caplog.set_level(logging.WARNING, logger="langgraph_tts.grading")
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(grader.equivalent(TOWER, "1")))
    start = time.monotonic()
    thread.start()
    _stop_worker_when(grader, lambda row: row[0] != 0)  # a task is running
    thread.join(timeout=30)
    elapsed = time.monotonic() - start
    assert results == [False]
    assert elapsed < SHORT_TIMEOUT_S + grading._GRACE_S + 1.5
    assert "killing it" in caplog.text
    assert grader.equivalent("2\\sqrt{2}", "\\sqrt{8}")  # on a fresh worker


# ---- grouping ----------------------------------------------------------------------------


def test_group_sends_one_task_per_call(grader: Grader, monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: list[Any] = []
    original = grader._submit
    monkeypatch.setattr(grader, "_submit", lambda job: submitted.append(job) or original(job))
    answers = [
        "\\sqrt{8}",
        "0.5",
        None,
        "2\\sqrt{2}",
        "\\frac{1}{2}",
        "\\{1,2\\}",
        "50\\%",
        "\\{2,1\\}",
        "x^2",
        "\\dfrac12",
    ]
    assert grader.group(answers) == [0, 1, -1, 0, 1, 2, 1, 2, 3, 1]
    assert len(submitted) == 1
    assert len(submitted[0].texts) == 8  # duplicates by normalized text are not sent


async def test_agroup_matches_group(grader: Grader) -> None:
    answers = ["x = 2", "2", "\\sqrt{4}", None, "(x+1)^2", "x^2+2x+1", "-2"]
    expected = [0, 0, 0, -1, 1, 1, 2]
    assert await grader.agroup(answers) == expected
    assert grader.group(answers) == expected


def test_group_edge_cases(grader: Grader) -> None:
    assert grader.group([]) == []
    assert grader.group([None, None]) == [-1, -1]
    assert grader.group(["\\sqrt{2}"]) == [0]


def test_a_pathological_answer_costs_at_most_two_timeouts_per_call(
    grader: Grader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grader, "timeout_s", SHORT_TIMEOUT_S)
    answers = ["1", TOWER, "\\sqrt{2}", "\\sqrt{3}", "\\sqrt{5}", "x", "\\sqrt{2}"]
    start = time.monotonic()
    assert grader.group(answers) == [0, 1, 2, 3, 4, 5, 2]
    assert time.monotonic() - start < _grading_worker._MAX_STRIKES * SHORT_TIMEOUT_S + 1.5


@posix_only
def test_group_survives_a_hung_comparison(grader: Grader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grader, "timeout_s", SHORT_TIMEOUT_S)
    answers = ["\\sqrt{8}", TOWER, "2\\sqrt{2}", "x^2", "x \\cdot x"]
    results: list[list[int]] = []
    thread = threading.Thread(target=lambda: results.append(grader.group(answers)))
    thread.start()
    # Freeze the worker while it parses or verifies the tower (unique answer #1, as pred).
    busy_with_tower = (grading._PARSE_B, grading._VERIFY)
    _stop_worker_when(grader, lambda row: row[0] != 0 and row[4] == 1 and row[2] in busy_with_tower)
    thread.join(timeout=60)
    assert results == [[0, 1, 0, 2, 2]]


# ---- lifecycle ---------------------------------------------------------------------------


def test_unstartable_worker_falls_back_to_the_fast_path(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(max_workers: int) -> None:
        raise OSError("no processes allowed here")

    monkeypatch.setattr(grading, "_Pool", refuse)
    grader = Grader()
    with caplog.at_level(logging.ERROR, logger="langgraph_tts.grading"):
        assert grader.equivalent("2\\sqrt{2}", "\\sqrt{8}") is False
        assert grader.group(["\\sqrt{8}", "2\\sqrt{2}", "1/2", "0.5"]) == [0, 1, 2, 2]
    assert caplog.text.count("fast path only") == 1
    grader.close()


def test_close_then_reuse(grader: Grader) -> None:  # last: it restarts the shared worker
    assert grader.equivalent("2\\sqrt{2}", "\\sqrt{8}")
    pool = grader._pool
    assert pool is not None
    processes = list((pool.executor._processes or {}).values())
    grader.close()
    assert grader._pool is None
    assert processes and not any(p.is_alive() for p in processes)
    assert grader.equivalent("2\\sqrt{2}", "\\sqrt{8}")  # starts again on demand
