"""Extraction, normalization, step splitting and the three voting rules (pure, no worker)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from langgraph_tts.answers import (
    AnswerGroup,
    extract_answer,
    normalize_answer,
    plain_number,
    split_steps,
    vote,
)

POLICY_CLOSING = "Therefore, the final answer is: $\\boxed{\\frac{1}{2}}$. I hope it is correct."

# ---- extraction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (POLICY_CLOSING, "\\frac{1}{2}"),
        ("## Step 1: ...\n\n" + POLICY_CLOSING, "\\frac{1}{2}"),
        ("so $\\boxed{\\frac{\\sqrt{3}}{2}}$", "\\frac{\\sqrt{3}}{2}"),  # nested braces
        ("$\\boxed{\\{1,2\\}}$", "\\{1,2\\}"),  # escaped braces do not count
        ("first \\boxed{1}, then \\boxed{2}", "2"),  # the last box wins
        ("\\boxed{3} and a truncated \\boxed{\\frac{1}{", "3"),  # unclosed last box skipped
        ("\\boxed 5", "5"),
        ("the answer is $\\boxed 5$.", "5"),
        ("\\fbox{42}", "42"),
        ("\\boxed{\n12\n}", "12"),  # newlines stripped
        ("\\boxed{: 7.}", "7"),  # leading ':' and trailing '.' stripped
        ("Therefore, the final answer is $7$. I hope it is correct.", "7"),
        ("The answer is $\\frac{3}{4}$.", "\\frac{3}{4}"),
        ("So the final answer is: 12.", "12"),
        ("the final answer is 3.5 meters.\nNext line", "3.5 meters"),
        ("The answer is \\(x+1\\)", "x+1"),
    ],
)
def test_extract_answer(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [None, "", "I computed 12 and then 13", "\\boxed{}", "the answer is", "\\boxed{1"],
)
def test_extract_answer_none(text: str | None) -> None:
    assert extract_answer(text) is None


def test_last_number_fallback_is_opt_in() -> None:
    text = "we get 12 apples and then 1,250.5 more"
    assert extract_answer(text) is None
    assert extract_answer(text, last_number_fallback=True) == "1,250.5"
    assert extract_answer("\\boxed{3} then 9", last_number_fallback=True) == "3"


# ---- normalization -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$\\dfrac12$", "\\frac{1}{2}"),
        ("\\tfrac{1}{2}", "\\frac{1}{2}"),
        ("\\frac 3 4", "\\frac{3}{4}"),
        ("\\frac{x}2", "\\frac{x}{2}"),
        ("\\sqrt2", "\\sqrt{2}"),
        ("\\left( 1, 2 \\right]", "(1,2]"),
        ("\\rightarrow", "\\rightarrow"),  # \right only as a whole command
        ("1,000", "1000"),
        ("1{,}000", "1000"),
        ("1,\\!000,\\!000", "1000000"),
        ("1,2", "1,2"),  # a list, not a thousands separator
        ("x = 3", "3"),
        ("\\theta = 30^\\circ", "30"),
        ("x_1 = 2", "2"),
        ("x = y = 3", "x=y=3"),  # more than one '=': kept
        ("x+y=3", "x+y=3"),
        ("90^{\\circ}", "90"),
        ("\\$5.", "5"),
        ("50\\%", "50%"),
        ("\\text{ east }", "east"),
        ("\\textbf{(C)}", "(C)"),
        ("\\boxed{\\sqrt{8}}", "\\sqrt{8}"),
        ("\\displaystyle \\frac{1}{2}", "\\frac{1}{2}"),
        ("3.", "3"),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize(
    ("normalized", "expected"),
    [
        ("12", (Fraction(12), True)),
        ("-007", (Fraction(-7), True)),
        ("0.50", (Fraction(1, 2), False)),
        (".5", (Fraction(1, 2), False)),
        ("3/4", (Fraction(3, 4), False)),
        ("-\\frac{1}{2}", (Fraction(-1, 2), False)),
        ("\\frac{-1}{2}", (Fraction(-1, 2), False)),
        ("1/0", None),
        ("\\sqrt{2}", None),
        ("1e5", None),
        ("50%", None),
        ("", None),
        ("9" * 500, None),  # too long for the fast path
    ],
)
def test_plain_number(normalized: str, expected: tuple[Fraction, bool] | None) -> None:
    assert plain_number(normalized) == expected


def test_answers_module_does_not_import_sympy() -> None:
    code = (
        "import sys, langgraph_tts.answers, langgraph_tts.grading as g;"
        "assert 'sympy' not in sys.modules and 'math_verify' not in sys.modules;"
        "assert g._default is None"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---- steps ---------------------------------------------------------------------------------


def test_split_steps_drops_empty_pieces() -> None:
    assert split_steps("## Step 1: a\n\n## Step 2: b\n\n") == ["## Step 1: a", "## Step 2: b"]
    assert split_steps("a\n\n\n\nb") == ["a", "b"]
    assert split_steps("") == []
    assert split_steps("a||b", delimiter="||") == ["a", "b"]
    with pytest.raises(ValueError, match="delimiter"):
        split_steps("a", delimiter="")


# ---- voting --------------------------------------------------------------------------------

ANSWERS = ["1", "2", "2", None, "1", "3"]
GROUP_IDS = [0, 1, 1, -1, 0, 2]
SCORES = [0.9, 0.3, 0.4, 0.99, 0.2, 0.95]


def test_weighted_vote_sums_scores() -> None:
    result = vote(ANSWERS, SCORES, GROUP_IDS, rule="weighted")
    assert (result.answer, result.winner, result.rule) == ("1", 0, "weighted")
    assert [g.answer for g in result.groups] == ["1", "3", "2"]
    assert result.groups[0] == AnswerGroup(answer="1", members=[0, 4], count=2, weight=1.1)


def test_majority_vote_counts() -> None:
    result = vote(["1", "2", "2", "1", "2"], [0.9, 0.1, 0.1, 0.9, 0.1], [0, 1, 1, 0, 1], "majority")
    assert (result.answer, result.winner) == ("2", 1)
    assert [g.count for g in result.groups] == [3, 2]


def test_best_vote_follows_the_top_candidate() -> None:
    result = vote(ANSWERS, SCORES, GROUP_IDS, rule="best")
    assert (result.answer, result.winner) == ("3", 5)  # 0.99 belongs to a None answer


def test_winner_is_the_highest_scoring_member() -> None:
    result = vote(["a", "b", "a"], [0.2, 0.3, 0.25], [0, 1, 0], rule="weighted")
    assert (result.answer, result.winner) == ("a", 2)
    assert result.groups[0].answer == "a"


@pytest.mark.parametrize("rule", ["weighted", "majority", "best"])
def test_ties_go_to_the_group_seen_first(rule: str) -> None:
    result = vote(["b", "a", "a", "b"], [0.5, 0.5, 0.5, 0.5], [0, 1, 1, 0], rule=rule)  # type: ignore[arg-type]
    assert (result.answer, result.winner) == ("b", 0)
    assert [g.members for g in result.groups] == [[0, 3], [1, 2]]


def test_majority_without_scores() -> None:
    result = vote(["x", "y", "y"], None, [0, 1, 1], rule="majority")
    assert (result.answer, result.winner) == ("y", 1)
    assert result.groups[0].weight == 2.0


@pytest.mark.parametrize("rule", ["weighted", "majority", "best"])
def test_all_none_answers(rule: str) -> None:
    result = vote([None, None], [0.1, 0.2], [-1, -1], rule=rule)  # type: ignore[arg-type]
    assert (result.answer, result.winner, result.groups) == (None, None, [])
    assert vote([], [], [], rule=rule).answer is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scores": None, "rule": "weighted"}, "needs scores"),
        ({"scores": None, "rule": "best"}, "needs scores"),
        ({"scores": [0.1], "rule": "weighted"}, "scores"),
        ({"scores": [0.1, float("nan")], "rule": "weighted"}, "NaN"),
        ({"scores": [0.1, 0.2], "rule": "plurality"}, "unknown rule"),
        ({"scores": [0.1, 0.2], "group_ids": [0]}, "group ids"),
        ({"scores": [0.1, 0.2], "group_ids": [0, 0]}, "-1 exactly"),
    ],
)
def test_vote_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"answers": ["1", None], "group_ids": [0, -1]} | kwargs
    with pytest.raises(ValueError, match=message):
        vote(**args)  # type: ignore[arg-type]


def _first_seen_ids(answers: list[str | None]) -> list[int]:
    ids: dict[str, int] = {}
    return [-1 if a is None else ids.setdefault(a, len(ids)) for a in answers]


@st.composite
def _candidates(draw: st.DrawFn) -> tuple[list[str | None], list[float], list[int]]:
    n = draw(st.integers(min_value=1, max_value=10))
    answers = draw(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=n, max_size=n))
    raw = draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n, unique=True))
    return answers, [r / 10_000 for r in raw], draw(st.permutations(range(n)))


def _top_is_unique(answers: list[str | None], scores: list[float], rule: str) -> bool:
    keys: dict[str, list[float]] = {}
    for answer, score in zip(answers, scores, strict=True):
        if answer is not None:
            keys.setdefault(answer, []).append(score)
    agg = {"weighted": sum, "majority": len, "best": max}[rule]
    values = sorted((round(agg(v), 9) for v in keys.values()), reverse=True)  # type: ignore[operator]
    return len(values) < 2 or values[0] != values[1]


@settings(max_examples=100, deadline=None)
@given(data=_candidates(), rule=st.sampled_from(["weighted", "majority", "best"]))
def test_vote_is_invariant_to_permutation_without_ties(
    data: tuple[list[str | None], list[float], list[int]], rule: str
) -> None:
    answers, scores, perm = data
    assume(_top_is_unique(answers, scores, rule))
    base = vote(answers, scores, _first_seen_ids(answers), rule)  # type: ignore[arg-type]
    p_answers = [answers[i] for i in perm]
    p_scores = [scores[i] for i in perm]
    permuted = vote(p_answers, p_scores, _first_seen_ids(p_answers), rule)  # type: ignore[arg-type]
    assert permuted.answer == base.answer
    if base.winner is None:
        assert permuted.winner is None
    else:
        assert permuted.winner is not None and perm[permuted.winner] == base.winner
        assert sorted(perm[i] for i in permuted.groups[0].members) == base.groups[0].members
