"""Property tests over untrusted inputs: extraction, voting, grading and every allocation rule.

`tests/test_answers.py` and `tests/test_allocation.py` hold the properties of well-formed
inputs (vote permutation invariance without ties, every rule spending its budget and being
permutation-equivariant on scores in [0, 1]). This file feeds what a model or a broken server
can send: arbitrary text, LaTeX debris, scores far outside [0, 1], NaN and infinities.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from langgraph_tts.allocation import ALLOCATORS, allocate
from langgraph_tts.answers import extract_answer, normalize_answer, plain_number, vote
from langgraph_tts.grading import Grader

FAST = settings(max_examples=150, deadline=None)
EACH = settings(max_examples=40, deadline=None)

# Text built from the pieces extraction and normalization react to, plus anything at all.
PIECES = [
    "\\boxed{", "\\boxed ", "\\fbox{", "{", "}", "\\{", "\\}", "\\", "$", "$$", "\\[", "\\]",
    "\\(", "\\)", "final answer is $", "$. I hope", "The answer is", "the answer is: ", "\n",
    "\r", " ", ".", ":", "\\text{", "\\frac", "\\dfrac", "\\sqrt", "\\left(", "\\right)", "^",
    "\\circ", "x=", "1,000", "-", "/", "12", "0.5", "7",
]  # fmt: skip
texts = st.one_of(
    st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=40).map("".join),
    st.text(max_size=200),
)


# ---- extraction ----------------------------------------------------------------------------


@FAST
@given(text=texts, fallback=st.booleans())
def test_extraction_never_raises_and_returns_a_piece_of_the_text(text: str, fallback: bool) -> None:
    answer = extract_answer(text, last_number_fallback=fallback)
    if answer is None:
        return
    assert answer == answer.strip() and answer
    # extraction only cuts: newlines become spaces, then ends are trimmed
    assert answer in text.replace("\r", " ").replace("\n", " ")


@FAST
@given(text=texts)
def test_normalization_never_raises_and_is_cheap_to_read_as_a_number(text: str) -> None:
    normalized = normalize_answer(text)
    assert isinstance(normalized, str)
    assert not any(c.isspace() for c in normalized)
    value = plain_number(normalized)
    assert value is None or isinstance(value[0], Fraction)


@FAST
@given(inner=texts)
def test_boxing_an_answer_is_transparent(inner: str) -> None:
    """What a box holds (balanced braces, no stray escapes) comes back out of the box."""
    depth = 0
    for token in inner.replace("\\{", "").replace("\\}", ""):
        depth += {"{": 1, "}": -1}.get(token, 0)
        assume(depth >= 0)
    assume(depth == 0 and inner == inner.strip() and inner)
    assume(not any(c in inner for c in "\\$\n\r") and inner[0] != ":" and inner[-1] != ".")
    assert extract_answer(f"so the result is \\boxed{{{inner}}} here") == inner


# ---- voting ----------------------------------------------------------------------------------


@st.composite
def ballots(draw: st.DrawFn) -> tuple[list[str | None], list[float], list[int]]:
    k = draw(st.integers(1, 12))
    answers = draw(st.lists(st.sampled_from(["1", "2", "3", None]), min_size=k, max_size=k))
    scores = draw(
        st.lists(
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=k, max_size=k
        )
    )
    perm = list(draw(st.permutations(range(k))))
    return answers, scores, perm


def _ids(answers: list[str | None]) -> list[int]:
    seen: dict[str, int] = {}
    return [-1 if a is None else seen.setdefault(a, len(seen)) for a in answers]


@FAST
@given(data=ballots(), rule=st.sampled_from(["weighted", "majority", "best"]))
def test_vote_conserves_weight_and_groups_are_permutation_invariant(
    data: tuple[list[str | None], list[float], list[int]], rule: Any
) -> None:
    answers, scores, perm = data
    result = vote(answers, scores, _ids(answers), rule)
    answered = [i for i, a in enumerate(answers) if a is not None]
    assert sum(g.count for g in result.groups) == len(answered)
    assert math.isclose(
        sum(g.weight for g in result.groups),
        math.fsum(scores[i] for i in answered),
        rel_tol=1e-9,
        abs_tol=1e-6,
    )
    assert (result.answer is None) == (not answered)
    if result.winner is not None:
        assert answers[result.winner] == result.answer
    p_answers = [answers[i] for i in perm]
    p_scores = [scores[i] for i in perm]
    permuted = vote(p_answers, p_scores, _ids(p_answers), rule)

    assert Counter((g.count, round(g.weight, 6)) for g in permuted.groups) == Counter(
        (g.count, round(g.weight, 6)) for g in result.groups
    )


# ---- grading ---------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(-1e12, 1e12, places=6, allow_nan=False, allow_infinity=False).map(str),
    st.tuples(st.integers(-999, 999), st.integers(1, 999)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(st.integers(0, 999), st.integers(1, 999)).map(
        lambda t: f"\\frac{{{t[0]}}}{{{t[1]}}}"
    ),
)


@pytest.fixture(scope="module")
def grader() -> Any:
    with Grader(timeout_s=2.0) as shared:
        yield shared


@FAST
@given(value=numbers)
def test_grading_is_reflexive_for_plain_numbers_without_a_worker(
    grader: Grader, value: str
) -> None:
    for wrapped in (value, f"${value}$", f"\\boxed{{{value}}}", f" {value}. "):
        assert grader.equivalent(value, wrapped)
        assert grader.equivalent(wrapped, value)
    assert grader.group([value, None, f"\\boxed{{{value}}}"]) == [0, -1, 0]
    assert grader._pool is None  # plain numbers never need sympy


@FAST
@given(a=numbers, b=numbers)
def test_plain_number_grading_is_symmetric(grader: Grader, a: str, b: str) -> None:
    assert grader.equivalent(a, b) == grader.equivalent(b, a)
    assert grader._pool is None


# ---- allocation rules on hostile scores --------------------------------------------------------

wild = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, 1e-300, 5e-324, 1e300, -1e300, 1.7976931348623157e308]),
)


@st.composite
def hostile_problems(draw: st.DrawFn) -> dict[str, Any]:
    k = draw(st.integers(1, 8))
    return {
        "scores": draw(st.lists(wild, min_size=k, max_size=k)),
        "embeddings": np.array(
            draw(
                st.lists(
                    st.lists(st.integers(-3, 3), min_size=3, max_size=3).filter(any),
                    min_size=k,
                    max_size=k,
                )
            ),
            dtype=float,
        ),
        "groups": draw(st.lists(st.integers(0, 3), min_size=k, max_size=k)),
        "budget": draw(st.integers(0, 32)),
        "perm": list(draw(st.permutations(range(k)))),
    }


def _allocate(rule: str, p: dict[str, Any]) -> Any:
    options = {"kappa": 1.0} if rule == "bayes_optimal" else {}
    return allocate(
        rule, p["scores"], p["budget"], embeddings=p["embeddings"], groups=p["groups"], **options
    )


@pytest.mark.parametrize("rule", sorted(ALLOCATORS))
@EACH
@given(p=hostile_problems())
def test_every_rule_survives_scores_far_outside_the_unit_interval(
    rule: str, p: dict[str, Any]
) -> None:
    result = _allocate(rule, p)
    k = len(p["scores"])
    assert len(result.counts) == k
    assert all(type(c) is int and c >= 0 for c in result.counts)
    if rule == "dvts":  # finished subtrees' shares are not redistributed (documented)
        assert sum(result.counts) <= p["budget"]
    else:
        assert sum(result.counts) == p["budget"]
    assert all(math.isfinite(w) and w >= 0 for w in result.weights)
    # permuting the candidates permutes the counts (as a multiset, whatever the ties)
    permuted = {
        **p,
        "scores": [p["scores"][i] for i in p["perm"]],
        "embeddings": p["embeddings"][p["perm"]],
        "groups": [p["groups"][i] for i in p["perm"]],
    }
    assert sorted(_allocate(rule, permuted).counts) == sorted(result.counts)


@pytest.mark.parametrize("rule", sorted(ALLOCATORS))
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_every_rule_rejects_non_finite_scores(rule: str, bad: float) -> None:
    p = {
        "scores": [0.5, bad, 0.1],
        "embeddings": np.eye(3),
        "groups": [0, 1, 2],
        "budget": 4,
    }
    with pytest.raises(ValueError, match="finite"):
        _allocate(rule, p)


# ---- the linear-time extraction agrees with the straightforward (quadratic) one --------------


def _braced_reference(text: str, open_at: int) -> str | None:
    depth, i = 0, open_at
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
        i += 1
    return None


def _last_boxed_reference(text: str) -> str | None:
    import re

    from langgraph_tts import answers

    for match in reversed(list(answers._BOXED_RE.finditer(text))):
        start = match.end()
        while start < len(text) and text[start] in " \t":
            start += 1
        if start < len(text) and text[start] == "{":
            content = _braced_reference(text, start)
        else:
            bare = re.match(r"[^\s$]+", text[start:])
            content = bare.group(0) if bare else None
        if content is not None and answers._clean(content) is not None:
            return content
    return None


@FAST
@given(text=texts)
def test_linear_box_extraction_matches_the_reference(text: str) -> None:
    from langgraph_tts import answers

    assert answers._last_boxed(text) == _last_boxed_reference(text)
    closes = answers._match_braces(text)
    for at, char in enumerate(text):
        if char == "{" and not answers._escaped(text, at):
            close = closes.get(at)
            expected = _braced_reference(text, at)
            assert (None if close is None else text[at + 1 : close]) == expected
