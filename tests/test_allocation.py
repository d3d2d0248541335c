"""Properties and worked examples of the allocation rules (DORA paper §2–3, App. A–B)."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import FrozenInstanceError
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from langgraph_tts.allocation import (
    ALLOCATORS,
    Allocation,
    allocate,
    bayes_optimal,
    beam_topk,
    diversity,
    dora,
    dvts,
    quality_weights,
    rebase,
    round_to_budget,
    semantic_uniqueness,
    uniform,
)
from langgraph_tts.allocation.rounding import sequential_ceil

# Kept small so the whole file runs in a few seconds; parametrised tests multiply the examples.
FAST = settings(max_examples=40, deadline=None)
EACH = settings(max_examples=30, deadline=None)

# --- strategies -------------------------------------------------------------------------------

# A few round values make ties likely; free floats make them rare.
score = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.95, 1.0]), st.floats(0.0, 1.0))


@st.composite
def problems(draw: st.DrawFn, max_k: int = 10, max_budget: int = 48) -> dict[str, Any]:
    """k candidates with scores, small-integer embeddings (so duplicates occur) and groups."""
    k = draw(st.integers(1, max_k))
    d = draw(st.integers(2, 4))
    scores = draw(st.lists(score, min_size=k, max_size=k))
    row = st.lists(st.integers(-2, 2), min_size=d, max_size=d).filter(any)
    embeddings = np.array(draw(st.lists(row, min_size=k, max_size=k)), dtype=float)
    groups = draw(st.lists(st.integers(0, 3), min_size=k, max_size=k))
    budget = draw(st.integers(0, max_budget))
    perm = draw(st.permutations(range(k)))
    return {
        "scores": scores,
        "embeddings": embeddings,
        "groups": groups,
        "budget": budget,
        "perm": list(perm),
    }


def tie_labels(keys: Sequence[float], rel: float = 1e-9) -> list[int]:
    """Cluster values equal up to `rel` (relative) into one label."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    labels = [0] * len(keys)
    label = 0
    for prev, cur in itertools.pairwise(order):
        if not math.isclose(keys[cur], keys[prev], rel_tol=rel, abs_tol=1e-15):
            label += 1
        labels[cur] = label
    return labels


def assert_equivariant(
    before: Sequence[int], after: Sequence[int], perm: Sequence[int], labels: Sequence[Any]
) -> None:
    """`after` (on permuted input) equals `before` permuted, up to swaps within a tie class."""
    assert Counter(zip(labels, before, strict=True)) == Counter(
        zip([labels[i] for i in perm], after, strict=True)
    )
    if len(set(labels)) == len(labels):  # all distinct: exact
        assert list(after) == [before[i] for i in perm]


def assert_counts(counts: Sequence[int], k: int, budget: int) -> None:
    assert len(counts) == k
    assert all(type(c) is int and c >= 0 for c in counts)
    assert sum(counts) == budget


def orthogonal(k: int, scales: Sequence[float] | None = None) -> np.ndarray:
    """k mutually orthogonal embeddings (scaled one-hot rows)."""
    e = np.eye(k)
    if scales is not None:
        e = e * np.asarray(scales)[:, None]
    return e


# --- the budget is always spent exactly ---------------------------------------------------------

# name -> (rule, options): every rule and rounding mode under test.
RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "uniform": ("uniform", {}),
    "beam": ("beam", {}),
    "beam_w3": ("beam", {"beam_width": 3}),
    "rebase": ("rebase", {}),
    "rebase_code": ("rebase", {"rounding": "code"}),
    "rebase_seq": ("rebase", {"rounding": "sequential_ceil"}),
    "dora": ("dora", {}),
    "dora_code": ("dora", {"rounding": "code"}),
    "dora_prefilter": ("dora", {"prefilter": True}),
    "bayes_small_kappa": ("bayes_optimal", {"kappa": 0.05}),
    "bayes_kappa_2": ("bayes_optimal", {"kappa": 2.0}),
    "bayes_inf": ("bayes_optimal", {"kappa": math.inf}),
}


def run(name: str, p: dict[str, Any]) -> Allocation:
    rule, options = RULES[name]
    data = {"embeddings": p["embeddings"], "groups": p.get("groups")}
    return allocate(rule, p["scores"], p["budget"], **data, **options)


def _permuted(p: dict[str, Any]) -> dict[str, Any]:
    perm = p["perm"]
    return {
        **p,
        "scores": [p["scores"][i] for i in perm],
        "embeddings": p["embeddings"][perm],
        "groups": [p["groups"][i] for i in perm],
    }


@pytest.mark.parametrize("name", sorted(RULES))
@EACH
@given(p=problems())
def test_every_rule_spends_the_budget_and_is_permutation_equivariant(
    name: str, p: dict[str, Any]
) -> None:
    before = run(name, p)
    k = len(p["scores"])
    assert_counts(before.counts, k, p["budget"])
    assert len(before.weights) == k
    rule, options = RULES[name]
    if options.get("rounding") == "code":
        return  # cyclic padding is order-dependent by design (see the test below)
    after = run(name, _permuted(p))
    # Candidates tie when what decides their counts ties: nothing (uniform), the score (beam),
    # the final weight (REBASE, DORA, Bayes; covers duplicates and symmetric configurations).
    keys = {"uniform": [0.0] * k, "beam": p["scores"]}.get(rule, before.weights)
    assert_equivariant(before.counts, after.counts, p["perm"], tie_labels(keys))
    if rule != "beam":  # beam's weights mark the kept candidates, so ties may swap them
        permuted = [before.weights[i] for i in p["perm"]]
        np.testing.assert_allclose(after.weights, permuted, rtol=1e-9)


@FAST
@given(p=problems(), beam_width=st.integers(1, 6))
def test_dvts_spends_the_budget_when_every_group_has_a_candidate(
    p: dict[str, Any], beam_width: int
) -> None:
    counts = dvts(p["scores"], p["budget"], groups=p["groups"], beam_width=beam_width)
    n_groups = len(set(p["groups"]))
    assert len(counts) == len(p["scores"]) and all(c >= 0 for c in counts)
    if n_groups >= p["budget"] // beam_width:
        assert sum(counts) == p["budget"]
    else:  # finished subtrees' shares are not redistributed
        assert sum(counts) <= p["budget"]
        assert max(counts) - min(c for c in counts if c) <= 1


@pytest.mark.parametrize("name", sorted(RULES))
def test_no_candidates_and_zero_budget(name: str) -> None:
    empty = {"scores": [], "embeddings": np.zeros((0, 3)), "groups": [], "budget": 5}
    assert run(name, empty).counts == []
    zero = {"scores": [0.3, 0.9, 0.1], "embeddings": orthogonal(3), "budget": 0}
    assert run(name, zero).counts == [0, 0, 0]
    assert dvts([], 4, groups=[]) == []
    assert dvts([0.2, 0.4], 0, groups=[0, 1]) == [0, 0]


@FAST
@given(p=problems(), beam_width=st.integers(1, 5))
def test_dvts_is_permutation_equivariant(p: dict[str, Any], beam_width: int) -> None:
    q = _permuted(p)
    before = dvts(p["scores"], p["budget"], groups=p["groups"], beam_width=beam_width)
    after = dvts(q["scores"], q["budget"], groups=q["groups"], beam_width=beam_width)
    labels = list(zip(p["groups"], tie_labels(p["scores"]), strict=True))
    assert_equivariant(before, after, p["perm"], labels)


def test_code_rounding_is_order_dependent_by_design() -> None:
    # Cyclic padding hands the spare unit to whichever candidate comes first.
    assert round_to_budget([1, 1, 1], 7, rounding="code") == [3, 2, 2]
    assert round_to_budget([1, 1, 1], 7) == [3, 2, 2]
    assert round_to_budget([0.375, 0.25, 0.375], 4, rounding="code") == [2, 1, 1]
    assert round_to_budget([0.375, 0.375, 0.25], 4, rounding="code") == [2, 2, 0]


# --- rounding ---------------------------------------------------------------------------------


def test_largest_remainder_hand_examples() -> None:
    # 8·w = [1.5, 2.5, 4.0]: floors [1, 2, 4], one unit left, remainders tie at .5 -> larger weight.
    assert round_to_budget([0.1875, 0.3125, 0.5], 8) == [1, 3, 4]
    # 4·w = [1.5, 1.5, 1.0]: remainder tie and weight tie -> lower index.
    assert round_to_budget([0.375, 0.375, 0.25], 4) == [2, 1, 1]
    # Unnormalised weights are normalised first.
    assert round_to_budget([3, 1], 8) == [6, 2]
    assert round_to_budget([1, 0, 0], 5) == [5, 0, 0]
    assert round_to_budget([0.2] * 5, 2) == [1, 1, 0, 0, 0]


def test_code_rounding_hand_examples() -> None:
    # np.round is half-to-even: 8·w = [1.5, 2.5, 4.0] -> [2, 2, 4] (sum 8, no padding).
    assert round_to_budget([0.1875, 0.3125, 0.5], 8, rounding="code") == [2, 2, 4]
    # 4·w = [1.5, 1.5, 1.0] -> [2, 2, 1]; copies [0,0,1,1,2] truncated to 4 -> [2, 2, 0].
    assert round_to_budget([0.375, 0.375, 0.25], 4, rounding="code") == [2, 2, 0]
    # 7/3 = 2.33 each -> [2, 2, 2]; copies [0,0,1,1,2,2] padded cyclically to 7 -> [3, 2, 2].
    assert round_to_budget([1, 1, 1], 7, rounding="code") == [3, 2, 2]
    # 8·w = [0.4, 0.4, 7.2] -> [0, 0, 7]; copies [2]*7 padded -> all 8 to candidate 2.
    assert round_to_budget([0.05, 0.05, 0.9], 8, rounding="code") == [0, 0, 8]
    # Everything rounds to 0 (k > 2N): the argmax (lowest index on ties) takes the budget.
    assert round_to_budget([0.1, 0.3, 0.3, 0.3], 1, rounding="code") == [0, 1, 0, 0]
    assert round_to_budget([1] * 5, 2, rounding="code") == [2, 0, 0, 0, 0]


@FAST
@given(
    weights=st.lists(st.one_of(st.just(0.0), st.floats(0.0, 1e3)), min_size=1, max_size=12),
    budget=st.integers(0, 200),
    rounding=st.sampled_from(["largest_remainder", "code"]),
)
def test_round_to_budget_sums_and_stays_within_one(
    weights: list[float], budget: int, rounding: str
) -> None:
    assume(sum(weights) > 0)
    counts = round_to_budget(weights, budget, rounding=rounding)  # type: ignore[arg-type]
    assert_counts(counts, len(weights), budget)
    if rounding == "largest_remainder":
        exact = budget * np.asarray(weights) / math.fsum(weights)
        assert np.all(np.asarray(counts) >= np.floor(exact - 1e-9))
        assert np.all(np.asarray(counts) <= np.ceil(exact + 1e-9))


def test_sequential_ceil_hand_example() -> None:
    # W = 4: ceil(4·0.5/1) = 2, then ceil(2·0.3/0.5) = ceil(1.2) = 2, then nothing is left.
    assert sequential_ceil([0.5, 0.3, 0.2], 4) == [2, 2, 0]
    assert round_to_budget([0.5, 0.3, 0.2], 4) == [2, 1, 1]
    # Same weights through REBASE: scores T·ln(w) give softmax weights w.
    scores = [0.1 * math.log(x) for x in (0.2, 0.5, 0.3)]
    assert rebase(scores, 4, rounding="sequential_ceil") == [0, 2, 2]
    # Equal weights: ceil(5/3) = 2, ceil(3/2) = 2, then 1.
    assert sequential_ceil([1, 1, 1], 5) == [2, 2, 1]


@FAST
@given(
    weights=st.lists(st.one_of(st.just(0.0), st.floats(1e-12, 1.0)), min_size=1, max_size=16),
    budget=st.integers(0, 300),
)
def test_sequential_ceil_sums_exactly(weights: list[float], budget: int) -> None:
    assume(sum(weights) > 0)
    counts = sequential_ceil(weights, budget)
    assert_counts(counts, len(weights), budget)
    assert all(c == 0 for c, w in zip(counts, weights, strict=True) if w == 0)


# --- DORA -------------------------------------------------------------------------------------


def test_paper_figure_2_example() -> None:
    # Three paraphrases (cosine 1.0) and a fourth solution at cosine 0.1 to them, all PRM 0.95.
    u = [1.0, 0.0]
    v = [0.1, math.sqrt(1 - 0.1**2)]
    embeddings = [u, u, u, v]
    gamma = semantic_uniqueness(embeddings)
    np.testing.assert_allclose(gamma, [1 / 3, 1 / 3, 1 / 3, 1.0], atol=1e-12)
    result = allocate("dora", [0.95] * 4, 12, embeddings=embeddings)
    np.testing.assert_allclose(result.weights, [1 / 6, 1 / 6, 1 / 6, 1 / 2], atol=1e-12)
    assert result.gamma is not None
    np.testing.assert_allclose(result.gamma, gamma)
    assert result.counts == [2, 2, 2, 6]
    assert dora([0.95] * 4, 6, embeddings=embeddings) == [1, 1, 1, 3]
    # REBASE spends three quarters of the budget on the one direction the paraphrases share.
    assert rebase([0.95] * 4, 12) == [3, 3, 3, 3]


@st.composite
def directions(draw: st.DrawFn) -> dict[str, Any]:
    """g orthogonal directions, direction j with k_j exact (rescaled) copies, shuffled."""
    g = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 4), min_size=g, max_size=g))
    dir_scores = draw(st.lists(score, min_size=g, max_size=g))
    owner = [j for j, s in enumerate(sizes) for _ in range(s)]
    owner = [owner[i] for i in draw(st.permutations(range(len(owner))))]
    scales = draw(st.lists(st.floats(0.1, 10.0), min_size=len(owner), max_size=len(owner)))
    embeddings = np.eye(g)[owner] * np.asarray(scales)[:, None]
    return {
        "sizes": sizes,
        "dir_scores": dir_scores,
        "owner": owner,
        "scores": [dir_scores[j] for j in owner],
        "embeddings": embeddings,
        "budget": draw(st.integers(0, 64)),
    }


@FAST
@given(d=directions())
def test_theorem_1_duplicates_share_their_direction(d: dict[str, Any]) -> None:
    n, owner, sizes = d["budget"], d["owner"], d["sizes"]
    result = allocate("dora", d["scores"], n, embeddings=d["embeddings"])
    direction_w = quality_weights(d["dir_scores"], 0.1)  # B^(dir) = N·softmax(R_dir / T_b)
    assert result.gamma is not None
    for i, j in enumerate(owner):
        assert result.gamma[i] == pytest.approx(1 / sizes[j], rel=1e-12)
        assert result.weights[i] == pytest.approx(direction_w[j] / sizes[j], rel=1e-9, abs=1e-15)
    for j, size in enumerate(sizes):
        mine = [result.counts[i] for i, o in enumerate(owner) if o == j]
        share = n * direction_w[j]
        assert max(mine) - min(mine) <= 1  # copies split their direction evenly
        assert share - size < sum(mine) < share + size  # each copy is floor or ceil
    # REBASE instead funds direction j in proportion to k_j·e^{R_j/T_b} (Prop. 2).
    rebase_w = quality_weights(d["scores"], 0.1)
    crowd = np.asarray(sizes) * direction_w / np.dot(sizes, direction_w)
    for j in range(len(sizes)):
        total = sum(w for w, o in zip(rebase_w, owner, strict=True) if o == j)
        assert total == pytest.approx(crowd[j], rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("sizes", [(1, 2), (3, 1, 2), (4, 4), (1, 2, 3, 4)])
def test_theorem_1_exact_counts_when_shares_are_whole(sizes: tuple[int, ...]) -> None:
    g = len(sizes)
    n = g * math.lcm(*sizes) * 2
    owner = [j for j, s in enumerate(sizes) for _ in range(s)]
    counts = dora([0.8] * len(owner), n, embeddings=np.eye(g)[owner])
    assert counts == [n // g // sizes[j] for j in owner]
    direction_level = dora([0.8] * g, n, embeddings=np.eye(g))
    for j in range(g):
        assert sum(c for c, o in zip(counts, owner, strict=True) if o == j) == direction_level[j]


@FAST
@given(
    scores=st.lists(score, min_size=1, max_size=10),
    budget=st.integers(0, 64),
    rounding=st.sampled_from(["largest_remainder", "code"]),
    data=st.data(),
)
def test_rebase_equals_dora_with_orthogonal_embeddings(
    scores: list[float], budget: int, rounding: str, data: st.DataObject
) -> None:
    k = len(scores)
    scales = data.draw(st.lists(st.floats(0.1, 10.0), min_size=k, max_size=k))
    result = allocate("dora", scores, budget, embeddings=orthogonal(k, scales), rounding=rounding)
    assert result.counts == rebase(scores, budget, rounding=rounding)  # type: ignore[arg-type]
    assert result.gamma == [1.0] * k
    np.testing.assert_allclose(result.weights, quality_weights(scores, 0.1), rtol=1e-12)


@FAST
@given(p=problems())
def test_dora_with_infinite_similarity_temperature_is_rebase(p: dict[str, Any]) -> None:
    scores, n, e = p["scores"], p["budget"], p["embeddings"]
    assert dora(scores, n, embeddings=e, similarity_temperature=math.inf) == rebase(scores, n)
    k = len(scores)
    np.testing.assert_allclose(semantic_uniqueness(e, 1e9), np.full(k, 1 / k), rtol=1e-8)
    hot = allocate("dora", scores, n, embeddings=e, similarity_temperature=1e9)
    np.testing.assert_allclose(hot.weights, quality_weights(scores, 0.1), rtol=1e-7)


def test_prefilter_drops_poor_unique_candidates() -> None:
    # Three duplicates at 0.9 and one distinct candidate at 0.66. REBASE gives the fourth
    # 16·0.09/3.09 = 0.47 -> np.round 0, so the released code drops it; the paper's rule
    # lifts it by γ = 1 to 16·0.09/1.09 = 1.3 -> 1 rollout.
    u, v = [1.0, 0.0], [0.0, 1.0]
    scores, emb = [0.9, 0.9, 0.9, 0.66], [u, u, u, v]
    assert dora(scores, 16, embeddings=emb) == [5, 5, 5, 1]
    kept = allocate("dora", scores, 16, embeddings=emb, prefilter=True)
    assert kept.counts == [6, 5, 5, 0]
    assert kept.gamma is not None and kept.gamma[3] == 0.0 and kept.weights[3] == 0.0
    np.testing.assert_allclose(kept.weights, [1 / 3, 1 / 3, 1 / 3, 0.0])
    # Nothing survives (k > 2N): the top-scored candidates are kept.
    flat = {"embeddings": orthogonal(5), "prefilter": True, "temperature": 100.0}
    assert dora([0.5, 0.7, 0.7, 0.5, 0.6], 1, **flat) == [0, 1, 0, 0, 0]
    assert dora([0.5, 0.7, 0.7, 0.5, 0.6], 2, **flat) == [0, 1, 1, 0, 0]


def test_semantic_uniqueness_and_diversity() -> None:
    same = np.ones((4, 3))
    np.testing.assert_allclose(semantic_uniqueness(same), [0.25] * 4)
    np.testing.assert_allclose(semantic_uniqueness(orthogonal(3, [1, 5, 0.2])), [1.0] * 3)
    # Cosine is scale-invariant.
    e = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, 0.5]])
    np.testing.assert_allclose(semantic_uniqueness(e), semantic_uniqueness(e * [[3], [0.1], [7]]))
    assert diversity(same) == 0.0
    assert diversity(orthogonal(4)) == pytest.approx(1.0, abs=1e-3)
    assert diversity([[1.0, 0.0]]) == 0.0
    assert diversity(np.zeros((0, 2))) == 0.0
    assert 0.0 < diversity(e) < 1.0
    assert semantic_uniqueness(np.zeros((0, 2))).shape == (0,)


def test_softmaxes_are_numerically_stable() -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        w = quality_weights([1e4, 0.0, -1e4], 1e-3)
        np.testing.assert_array_equal(w, [1.0, 0.0, 0.0])
        np.testing.assert_array_equal(quality_weights([1e300, -1e300], 1e-300), [1.0, 0.0])
        expected = np.array([1.0, math.exp(-1)]) / (1 + math.exp(-1))
        np.testing.assert_allclose(quality_weights([2.0, 1.0], 1.0), expected)
        np.testing.assert_allclose(semantic_uniqueness([[1.0, 0.0], [0.0, 1.0]], 1e-300), [1, 1])
        assert quality_weights([3.0, 3.0], math.inf).tolist() == [0.5, 0.5]
        gamma = semantic_uniqueness([[1.0, 0.0], [0.0, 1.0], [1.0, 1e-9]], 1e-6)
        assert np.all(np.isfinite(gamma)) and np.all(gamma > 0)
        huge = [[1e200, 1.0], [1.0, 1e-200]]
        assert dora([1.0, 0.0], 4, embeddings=huge, temperature=1e-9) == [4, 0]


# --- beam search and DVTS ----------------------------------------------------------------------


@FAST
@given(
    scores=st.lists(score, min_size=1, max_size=12),
    budget=st.integers(1, 64),
    beam_width=st.integers(1, 6),
)
def test_beam_keeps_exactly_the_top_k(scores: list[float], budget: int, beam_width: int) -> None:
    counts = beam_topk(scores, budget, beam_width=beam_width)
    keep = min(len(scores), max(1, budget // beam_width))
    kept = [i for i, c in enumerate(counts) if c > 0]
    assert len(kept) == keep
    expected = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:keep]
    assert sorted(kept) == sorted(expected)
    if budget % beam_width == 0 and len(scores) >= budget // beam_width:
        assert all(counts[i] == beam_width for i in kept)


def test_beam_hand_examples() -> None:
    assert beam_topk([0.1, 0.9, 0.5, 0.6, 0.2, 0.3], 8) == [0, 4, 0, 4, 0, 0]
    assert beam_topk([0.1, 0.9, 0.5, 0.6], 10) == [0, 5, 0, 5]  # K = 2, 5 each
    assert beam_topk([0.1, 0.9, 0.5], 16) == [5, 6, 5]  # K capped at k; best gets the spare
    assert beam_topk([0.1, 0.9], 3) == [0, 3]  # N < M keeps the best
    assert beam_topk([0.5, 0.5, 0.5], 8) == [4, 4, 0]  # ties keep lower indices


@FAST
@given(p=problems(), beam_width=st.integers(1, 5))
def test_dvts_picks_the_argmax_of_each_group(p: dict[str, Any], beam_width: int) -> None:
    scores, groups = p["scores"], p["groups"]
    counts = dvts(scores, p["budget"], groups=groups, beam_width=beam_width)
    argmax = {
        g: min(i for i in range(len(scores)) if groups[i] == g and scores[i] == best)
        for g in set(groups)
        for best in [max(s for s, h in zip(scores, groups, strict=True) if h == g)]
    }
    assert all(c == 0 for i, c in enumerate(counts) if i not in argmax.values())
    if p["budget"] >= max(len(argmax), beam_width * len(argmax)):
        assert all(counts[i] > 0 for i in argmax.values())


def test_dvts_hand_examples() -> None:
    scores = [0.1, 0.9, 0.5, 0.6, 0.2, 0.3, 0.7, 0.7]
    groups = [0, 0, 1, 1, 2, 2, 3, 3]
    assert dvts(scores, 16, groups=groups) == [0, 4, 0, 4, 0, 4, 4, 0]
    # One subtree finished: its share of 4 is not redistributed.
    assert dvts(scores[:6], 16, groups=groups[:6]) == [0, 4, 0, 4, 0, 4]
    # 18 over 4 groups: shares [5, 5, 4, 4], larger shares to higher argmax scores.
    assert dvts(scores, 18, groups=groups) == [0, 5, 0, 4, 0, 4, 5, 0]
    # More groups than N // M share the whole budget.
    assert dvts([0.2, 0.4, 0.6], 2, groups=[7, 8, 9]) == [0, 1, 1]


# --- Bayes-optimal allocation (Prop. 1) ---------------------------------------------------------


def log_utility(counts: Sequence[int], w: np.ndarray, kappa: float) -> float:
    """L(B) = Σ κ w_i [ψ(κ+B_i) − ψ(κ)], with ψ(κ+B) − ψ(κ) = Σ_{t<B} 1/(κ+t)."""
    return sum(
        kappa * wi * math.fsum(1.0 / (kappa + t) for t in range(b))
        for wi, b in zip(w, counts, strict=True)
    )


def compositions(n: int, k: int) -> list[tuple[int, ...]]:
    return [c for c in itertools.product(range(n + 1), repeat=k) if sum(c) == n]


@FAST
@given(
    scores=st.lists(score, min_size=1, max_size=4),
    budget=st.integers(0, 7),
    kappa=st.sampled_from([0.01, 0.3, 1.0, 3.0, 25.0]),
    temperature=st.sampled_from([0.1, 0.3, 1.0]),
)
def test_bayes_optimal_is_optimal_by_brute_force(
    scores: list[float], budget: int, kappa: float, temperature: float
) -> None:
    counts = bayes_optimal(scores, budget, kappa=kappa, temperature=temperature)
    w = quality_weights(scores, temperature)
    best = max(log_utility(c, w, kappa) for c in compositions(budget, len(scores)))
    assert log_utility(counts, w, kappa) >= best - 1e-12 * max(1.0, best)


@FAST
@given(scores=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10), data=st.data())
def test_bayes_optimal_low_confidence_regime(scores: list[float], data: st.DataObject) -> None:
    budget = data.draw(st.integers(1, len(scores)))
    counts = bayes_optimal(scores, budget, kappa=1e-12, temperature=1.0)
    w = quality_weights(scores, 1.0)  # distinct scores may still give equal weights
    top = sorted(range(len(scores)), key=lambda i: (-w[i], i))[:budget]
    assert counts == [1 if i in top else 0 for i in range(len(scores))]


@FAST
@given(scores=st.lists(score, min_size=1, max_size=10), budget=st.integers(0, 64))
def test_bayes_optimal_high_confidence_regime(scores: list[float], budget: int) -> None:
    w = quality_weights(scores, 0.1)
    best = min(range(len(scores)), key=lambda i: (-w[i], i))
    expected = [budget if i == best else 0 for i in range(len(scores))]
    assert bayes_optimal(scores, budget, kappa=math.inf) == expected
    gap = sorted(w)
    if len(gap) == 1 or gap[-1] - gap[-2] > 1e-3:
        assert bayes_optimal(scores, budget, kappa=1e9) == expected


@FAST
@given(
    scores=st.lists(score, min_size=1, max_size=10),
    budget=st.integers(1, 200),
    kappa=st.floats(0.05, 50.0),
    temperature=st.sampled_from([0.1, 0.5, 2.0]),
)
def test_bayes_optimal_finite_kappa_is_shifted_linear(
    scores: list[float], budget: int, kappa: float, temperature: float
) -> None:
    counts = bayes_optimal(scores, budget, kappa=kappa, temperature=temperature)
    w = quality_weights(scores, temperature)
    # Discrete KKT: no unit can move to a larger marginal gain κ·w/(κ+B).
    next_gain = max(wi / (kappa + b) for wi, b in zip(w, counts, strict=True))
    last_gain = min(wi / (kappa + b - 1) for wi, b in zip(w, counts, strict=True) if b > 0)
    assert next_gain <= last_gain * (1 + 1e-12)
    # B_i ≈ (N + |A|κ)·w_i / W_A − κ on the active set A; = (N + kκ)·w_i − κ when all are active.
    active = [i for i, b in enumerate(counts) if b > 0]
    w_active = math.fsum(w[i] for i in active)
    slope = (budget + len(active) * kappa) / w_active
    for i in active:
        deviation = counts[i] - (slope * w[i] - kappa)
        assert -len(active) * w[i] / w_active - 1e-9 <= deviation <= 1 + 1e-9


def test_bayes_optimal_hand_example() -> None:
    # Equal scores, κ = 1, N = 6, k = 3: (N + kκ)/k − κ = 2 each.
    assert bayes_optimal([0.5, 0.5, 0.5], 6, kappa=1.0) == [2, 2, 2]
    # κ = 0: one each to the top, then by w / B.
    assert bayes_optimal([0.9, 0.1, 0.5], 2, kappa=0.0) == [1, 0, 1]


# --- uniform ------------------------------------------------------------------------------------


def test_uniform_spreads_evenly() -> None:
    assert uniform([0.9, 0.1, 0.5], 3) == [1, 1, 1]
    assert uniform([0.9, 0.1, 0.5], 8) == [3, 3, 2]
    assert uniform([0.9, 0.1, 0.5, 0.2], 2) == [1, 1, 0, 0]


# --- dispatcher ---------------------------------------------------------------------------------


def test_allocators_registry_and_dispatch() -> None:
    assert set(ALLOCATORS) == {"uniform", "beam", "dvts", "rebase", "dora", "bayes_optimal"}
    scores, emb, groups = [0.2, 0.9, 0.6, 0.9], orthogonal(4), [0, 0, 1, 1]
    for rule, fn in ALLOCATORS.items():
        options: dict[str, Any] = {"kappa": 2.0} if rule == "bayes_optimal" else {}
        result = allocate(rule, scores, 8, embeddings=emb, groups=groups, **options)
        assert isinstance(result, Allocation)
        assert sum(result.weights) == pytest.approx(1.0)
        assert (result.gamma is not None) == (rule == "dora")
        data = {"dora": {"embeddings": emb}, "dvts": {"groups": groups}}.get(rule, {})
        assert result.counts == fn(scores, 8, **data, **options)
        # Budget 0: no rollouts, but one weight per candidate all the same.
        zero = allocate(rule, scores, 0, embeddings=emb, groups=groups, **options)
        assert zero.counts == [0] * 4 and len(zero.weights) == 4
    res = allocate("rebase", scores, 8, temperature=0.5, rounding="code")
    assert res.counts == rebase(scores, 8, temperature=0.5, rounding="code")
    with pytest.raises(FrozenInstanceError):
        res.counts = []  # type: ignore[misc]


def test_allocate_accepts_registered_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    def all_to_last(scores: Sequence[float], budget: int) -> list[int]:
        return [0] * (len(scores) - 1) + [budget]

    monkeypatch.setitem(ALLOCATORS, "last", all_to_last)
    result = allocate("last", [0.1, 0.2], 4)
    assert result == Allocation(counts=[0, 4], weights=[0.0, 1.0], gamma=None)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: allocate("mcts", [0.1], 2), "unknown allocation rule 'mcts'; known rules: bayes"),
        (lambda: allocate("rebase", [0.1], 2, beam_width=4), "does not take option(s) beam_width"),
        (lambda: allocate("dora", [0.1], 2), "rule 'dora' needs embeddings="),
        (lambda: allocate("dvts", [0.1], 2), "rule 'dvts' needs groups="),
        (lambda: allocate("bayes_optimal", [0.1], 2), "needs option(s) kappa"),
        (lambda: rebase([0.1], -1), "budget must be a non-negative integer"),
        (lambda: rebase([0.1], 2.0), "budget must be a non-negative integer"),  # type: ignore[arg-type]
        (lambda: rebase([0.1], True), "budget must be a non-negative integer"),
        (lambda: rebase([0.1, float("nan")], 2), "candidate 1 has score nan"),
        (lambda: uniform([[0.1, 0.2]], 2), "scores must be a flat sequence"),
        (lambda: rebase([0.1], 2, temperature=0), "temperature must be > 0"),
        (lambda: rebase([0.1], 2, rounding="floor"), "unknown rounding 'floor'"),  # type: ignore[arg-type]
        (lambda: dora([0.1, 0.2], 2, embeddings=np.eye(3)), "expected 2 row(s), got shape (3, 3)"),
        (lambda: dora([0.1], 2, embeddings=[1.0, 2.0]), "embeddings must be a 2-D array"),
        (lambda: dora([0.1, 0.2], 2, embeddings=[[1.0], [0.0]]), "embedding row 1 has zero norm"),
        (lambda: dora([0.1], 2, embeddings=[[np.inf]]), "row 0 contains NaN or inf"),
        (
            lambda: dora([0.1], 2, embeddings=[[1.0]], similarity_temperature=-1),
            "similarity_temperature",
        ),
        (lambda: dvts([0.1, 0.2], 2, groups=[0]), "2 score(s) but 1 group id(s)"),
        (lambda: dvts([0.1], 2, groups=[0.5]), "group ids must be integers"),  # type: ignore[list-item]
        (lambda: beam_topk([0.1], 2, beam_width=0), "beam_width must be a positive integer"),
        (lambda: bayes_optimal([0.1], 2, kappa=-1.0), "kappa must be >= 0"),
        (lambda: round_to_budget([0.0, 0.0], 2), "must not all be zero"),
        (lambda: round_to_budget([0.5, -0.1], 2), "index 1 has weight -0.1"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert message in str(info.value)
