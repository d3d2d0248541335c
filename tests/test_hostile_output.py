"""Untrusted model output (and dataset gold answers): extraction and grading stay bounded.

Every case goes through the public API (`extract_answer`, `normalize_answer`, `Grader`) both as
a prediction and as a gold answer. Extraction is pure and linear in the text; a grading
comparison is bounded by the worker's deadline, its watchdog and its memory cap, and the
worker is still usable afterwards. Figures measured on the 2-core dev machine are in
docs/safety.md.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from langgraph_tts import _grading_worker
from langgraph_tts.answers import extract_answer, normalize_answer, plain_number
from langgraph_tts.grading import Grader

MB = 1_000_000
TIMEOUT_S = 1.0
GRACE_S = 3.0  # worker deadline + watchdog grace + a loaded CI machine
EXTRACT_LIMIT_S = 3.0  # measured: at most 0.4 s for 1 MB on the dev machine

# Texts a model (or a broken dataset row) can produce. Each is also wrapped in a box below.
HOSTILE: dict[str, str] = {
    "power_tower": "10^{10^{10^{10}}}",
    "factorial_of_huge": "(10^{10})!",
    "nested_braces_10k": "{" * 10_000 + "1" + "}" * 10_000,
    "nested_boxes_10k": "\\boxed{" * 10_000 + "1" + "}" * 10_000,
    "nested_parens_1900": "(" * 1900 + "1" + ")" * 1900,
    "nested_sqrt_500": "\\sqrt{" * 500 + "2" + "}" * 500,
    "one_mb_number": "1" * MB,
    "unclosed_box": "\\boxed{",
    "unclosed_braces_10k": "\\boxed{" + "{" * 10_000 + "1",
}

# Whole-solution texts that used to be (or could be) quadratic for extraction.
HOSTILE_SOLUTIONS: dict[str, str] = {
    "box_of_one_mb": "\\boxed{" + "7" * MB + "}",
    "unclosed_boxes_1mb": "\\boxed{" * (MB // 7),
    "bare_boxes_1mb": "\\boxed " * (MB // 7),
    "text_commands_nested": "\\text{" * 50_000 + "}" * 50_000,
    "text_commands_unclosed": "\\text{" * 100_000,
    "closing_openers_1mb": "final answer is $" * (MB // 17),
    "answer_phrases_1mb": "the answer is " * (MB // 14),
    "dollars_1mb": "$" * MB,
    "display_delims_1mb": "\\[" * (MB // 4) + "\\]" * (MB // 4),
    "backslashes_1mb": "\\" * MB,
    "fracs_1mb": "\\frac{" * (MB // 6),
    **{f"boxed_{k}": "\\boxed{" + v + "}" for k, v in HOSTILE.items()},
}


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    with Grader(timeout_s=TIMEOUT_S) as shared:
        yield shared


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


# ---- extraction and normalization: pure, linear, never raise -------------------------------


@pytest.mark.parametrize("name", sorted(HOSTILE_SOLUTIONS))
def test_extraction_of_hostile_text_is_fast(name: str) -> None:
    text = HOSTILE_SOLUTIONS[name]
    answer, elapsed = _timed(extract_answer, text)
    assert elapsed < EXTRACT_LIMIT_S, f"extract_answer took {elapsed:.2f} s on {name}"
    assert answer is None or answer in text
    _, elapsed = _timed(lambda t: extract_answer(t, last_number_fallback=True), text)
    assert elapsed < EXTRACT_LIMIT_S


@pytest.mark.parametrize("name", sorted(HOSTILE_SOLUTIONS))
def test_normalization_of_hostile_gold_is_fast(name: str) -> None:
    # Gold answers are normalized as they come (no extraction first).
    normalized, elapsed = _timed(normalize_answer, HOSTILE_SOLUTIONS[name])
    assert elapsed < EXTRACT_LIMIT_S, f"normalize_answer took {elapsed:.2f} s on {name}"
    assert plain_number(normalized) is None or len(normalized) <= 200


def test_extraction_picks_the_last_closed_box_among_100k_unclosed() -> None:
    text = "\\boxed{42} " + "\\boxed{" * 100_000
    answer, elapsed = _timed(extract_answer, text)
    assert answer == "42"
    assert elapsed < EXTRACT_LIMIT_S


def test_nested_wrappers_strip_in_one_pass() -> None:
    deep = "$" + "\\boxed{" * 10_000 + "12" + "}" * 10_000 + "$"
    normalized, elapsed = _timed(normalize_answer, deep)
    assert normalized == "12"
    assert elapsed < EXTRACT_LIMIT_S


# ---- grading: bounded in time and memory, never kills the pool -----------------------------


@pytest.mark.slow
@pytest.mark.parametrize("role", ["prediction", "gold"])
def test_hostile_answers_are_graded_within_the_deadline(grader: Grader, role: str) -> None:
    timings: dict[str, float] = {}
    for name, text in HOSTILE.items():
        # (the worker boxes a bare answer itself, so the boxed form is the same comparison)
        start = time.monotonic()
        if role == "prediction":
            verdict = grader.equivalent("5", text)
        else:
            verdict = grader.equivalent(text, "x+1")
        elapsed = time.monotonic() - start
        timings[name] = elapsed
        assert verdict is False, name
        assert elapsed < TIMEOUT_S + GRACE_S, f"{name} as {role}: {elapsed:.2f} s"
        # the worker (or its replacement) still answers real questions
        assert grader.equivalent("2\\sqrt{2}", "\\sqrt{8}"), f"grader broken after {name}"
    print(f"\n{role}: " + ", ".join(f"{k}={v:.2f}s" for k, v in timings.items()))


@pytest.mark.slow
def test_group_with_hostile_members_still_groups_the_rest(grader: Grader) -> None:
    answers = [
        "\\frac{1}{2}",
        HOSTILE["power_tower"],
        "0.5",
        HOSTILE["one_mb_number"],
        "\\sqrt{8}",
        HOSTILE["nested_braces_10k"],
        "2\\sqrt{2}",
        None,
        HOSTILE["unclosed_box"],
    ]
    start = time.monotonic()
    ids = grader.group(answers)
    elapsed = time.monotonic() - start
    assert ids[0] == ids[2]  # 1/2 and 0.5
    assert ids[4] == ids[6]  # sqrt 8 and 2 sqrt 2
    assert ids[7] == -1
    hostile = {ids[1], ids[3], ids[5], ids[8]}
    assert not hostile & {ids[0], ids[4]}
    # a pathological answer costs at most two deadlines per call (then it is poisoned)
    assert elapsed < 2 * TIMEOUT_S + GRACE_S + 2.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux-only here")
def test_worker_address_space_is_capped_and_survives_a_memory_bomb(grader: Grader) -> None:
    assert grader.equivalent("2\\sqrt{2}", "\\sqrt{8}")  # make sure a worker is running
    pool = grader._pool
    assert pool is not None
    soft, _ = pool.executor.submit(resource.getrlimit, resource.RLIMIT_AS).result(timeout=30)
    assert soft != resource.RLIM_INFINITY
    # an allocation far past the headroom fails fast inside the worker ...
    bomb = pool.executor.submit(bytearray, 4 * _grading_worker.MEMORY_HEADROOM_BYTES)
    with pytest.raises(MemoryError):
        bomb.result(timeout=30)
    # ... and the same worker goes on grading
    assert grader.equivalent("\\sqrt{18}", "3\\sqrt{2}")


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('touch {marker}')",
        "exec(\"open('{marker}', 'w').close()\")",
        "().__class__.__base__.__subclasses__()",
    ],
)
def test_model_text_is_never_executed(grader: Grader, tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "executed"
    text = payload.format(marker=marker)
    solution = f"So the final answer is $\\boxed{{{text}}}$. I hope it is correct."
    extracted = extract_answer(solution)
    assert extracted is not None
    for gold, pred in ((extracted, "1"), ("1", extracted), (text, text + " ")):
        grader.equivalent(gold, pred)
    grader.group([extracted, text, "1"])
    assert not marker.exists()
    assert not os.path.exists(str(marker))


@pytest.mark.slow
def test_an_evaluation_with_hostile_gold_and_predictions_loses_no_problem(
    grader: Grader, tmp_path: Path
) -> None:
    import asyncio
    import json

    from langgraph_tts.evaluation import load_dataset, run_eval

    # (gold answer in the dataset file, the model's whole solution, expected verdict)
    cases = [
        (HOSTILE["power_tower"], "so \\boxed{5}", False),
        (HOSTILE["one_mb_number"], "so \\boxed{1}", False),
        (HOSTILE["unclosed_box"], "so \\boxed{1}", False),
        (HOSTILE["nested_braces_10k"], "so \\boxed{1}", False),
        ("5", HOSTILE_SOLUTIONS["boxed_power_tower"], False),
        ("1", HOSTILE_SOLUTIONS["box_of_one_mb"], False),
        ("1", HOSTILE_SOLUTIONS["unclosed_boxes_1mb"], False),
        ("\\frac{1}{2}", "\\boxed{" * 1000 + " so \\boxed{0.5}", True),
        ("2\\sqrt{2}", "\\boxed{\\sqrt{8}}", True),
    ]
    data = tmp_path / "hostile.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "problem": f"problem {i}", "answer": gold}) + "\n"
            for i, (gold, _, _) in enumerate(cases)
        )
    )
    solutions = {f"problem {i}": solution for i, (_, solution, _) in enumerate(cases)}

    async def solve(problem: str) -> dict[str, object]:
        return {"answer": extract_answer(solutions[problem]), "ledger": {}, "result": {}}

    start = time.monotonic()
    summary = asyncio.run(
        run_eval(solve, load_dataset(str(data)), tmp_path / "out", settings={}, grader=grader)
    )
    elapsed = time.monotonic() - start
    rows = {
        row["id"]: row
        for row in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())
    }
    assert summary["n"] == len(cases) and summary["errors"] == 0
    assert [rows[f"p{i}"]["correct"] for i in range(len(cases))] == [c[2] for c in cases]
    assert elapsed < 4 * (TIMEOUT_S + GRACE_S)
