"""The simulated world: latent problems, their solution directions, and exact values of prefixes.

Pure and deterministic (no I/O apart from lazily reading the packaged datasets once). Any problem
text maps to a latent `SimProblem` through a hash of the text, the scenario and the seed, so
a stateless server can rebuild the same world for every request.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from langgraph_tts.sim.latent import (
    Direction,
    SimProblem,
    SubProblem,
    count_tokens,
    cut_to_tokens,
    hash_normal,
    hash_uniform,
    is_correct_text,
    rng_for,
    stable_hex,
)
from langgraph_tts.sim.vocab import (
    ACTIONS,
    FAMILIES,
    KEYWORD_RE,
    STEP_TEMPLATES,
    SUBPROBLEM_TARGETS,
)

__all__ = [
    "SCENARIOS",
    "Direction",
    "SimProblem",
    "SolutionState",
    "SubProblem",
    "apparent_value",
    "count_tokens",
    "cut_to_tokens",
    "flaw_value",
    "hash_normal",
    "hash_uniform",
    "is_correct",
    "is_correct_text",
    "last_boxed",
    "make_problems",
    "oracle_value",
    "parse_solution",
    "problem_for",
    "rng_for",
]

SCENARIOS = ("default", "popular_worse", "easy", "hard")
_STEP_VALUE_RE = re.compile(r"which gives \$(-?\d+)\$")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
_ENDS_AT_BREAK_RE = re.compile(r"\n[ \t]*\n[ \t]*$")
_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True, slots=True)
class _Record:
    id: str
    answer: str
    source: str
    level: int | None


@functools.cache
def _dataset_index() -> dict[str, _Record]:
    """Problem text -> record, over every packaged dataset (read once, on first use)."""
    index: dict[str, _Record] = {}
    for path in sorted(_DATA_DIR.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                level = row.get("level")
                index.setdefault(
                    str(row["problem"]).strip(),
                    _Record(
                        str(row.get("id", "")),
                        str(row["answer"]),
                        str(row.get("source", path.stem)),
                        int(level)
                        if isinstance(level, int | str) and str(level).isdigit()
                        else None,
                    ),
                )
    return index


def _base_difficulty(rec: _Record | None, rng: np.random.Generator) -> float:
    """Dataset problems get a difficulty from their source and level; others a uniform draw."""
    if rec is None:
        return float(rng.uniform(0.0, 1.0))
    src = rec.source.upper()
    if rec.level is not None:
        return 0.1 + 0.18 * (rec.level - 1) + float(rng.uniform(-0.06, 0.06))
    if "AIME" in src:
        return float(rng.uniform(0.78, 0.95))
    if "AMC" in src:
        return float(rng.uniform(0.55, 0.78))
    if "GSM" in src:
        return float(rng.uniform(0.08, 0.3))
    return float(rng.uniform(0.0, 1.0))


def _scenario_difficulty(d: float, scenario: str) -> float:
    mapped = {"easy": 0.35 * d, "hard": 0.65 + 0.33 * d, "popular_worse": 0.3 + 0.4 * d}
    return float(np.clip(mapped.get(scenario, d), 0.0, 1.0))


def _numbers_in(text: str) -> set[int]:
    return {int(m) for m in re.findall(r"\d+", text)[:20] if len(m) < 12}


def _wrong_answer(gold: str, rng: np.random.Generator, taken: set[str]) -> str:
    """A plausible wrong answer that no math grader could match to `gold`."""
    banned = _numbers_in(gold)
    banned |= {n * 100 for n in banned} | {n // 100 for n in banned if n % 100 == 0}
    stripped = gold.strip().lstrip("-")
    for _ in range(200):
        if stripped.isdigit():
            g = int(gold.strip())
            spread = max(6, abs(g) // 2)
            cand = g + int(rng.integers(1, spread + 1)) * (1 if rng.random() < 0.6 else -1)
            if g >= 0:
                cand = abs(cand)
        else:
            cand = int(rng.integers(2, 400))
        text = str(cand)
        if cand not in banned and text not in taken and not is_correct_text(gold, text):
            return text
    return str(10**6 + int(rng.integers(0, 10**6)))


def _direction(
    rng: np.random.Generator,
    keyword: str,
    family: str,
    n_steps: int,
    p: float,
    pop: float,
    wrong: str,
    subtlety: float,
    looks: float | None = None,
    flaw_p: float = 0.0,
    flaw_subtlety: float = 0.95,
) -> Direction:
    """A direction whose chains avoid slips with probability `p` and avoid its flaw with
    probability `1 - flaw_p` (both spread evenly over the steps)."""
    actions = tuple(str(a) for a in rng.choice(ACTIONS, size=n_steps, replace=False))
    templates = tuple(
        tuple(
            str(t) for t in rng.choice(STEP_TEMPLATES, size=int(rng.integers(3, 7)), replace=False)
        )
        for _ in range(n_steps)
    )
    values = tuple(int(v) for v in rng.integers(2, 1000, size=n_steps))
    q = 1.0 - float(np.clip(p, 0.005, 0.995)) ** (1.0 / n_steps)
    flaw = 1.0 - (1.0 - float(np.clip(flaw_p, 0.0, 0.995))) ** (1.0 / n_steps)
    return Direction(
        family,
        keyword,
        n_steps,
        q,
        pop,
        actions,
        templates,
        values,
        wrong,
        round(float(subtlety), 3),
        -1.0 if looks is None else round(float(looks), 3),
        flaw,
        round(float(flaw_subtlety), 3),
    )


def _n_steps(rng: np.random.Generator, d: float) -> int:
    return int(np.clip(round(3 + 4 * d + rng.normal(0.0, 0.8)), 3, 7))


def _mixed_directions(rng: np.random.Generator, d: float, wrongs: list[str]) -> list[Direction]:
    """`default`/`easy`/`hard`: 3-6 directions of distinct families, success spread around f(d)."""
    k = int(rng.integers(3, 7))
    fams = rng.choice(len(FAMILIES), size=k, replace=False)
    pops = rng.dirichlet(np.full(k, 0.8))
    ps = np.clip(0.93 - 0.82 * d + rng.normal(0.0, 0.15, size=k), 0.02, 0.98)
    out = []
    for i, f in enumerate(fams):
        fam = FAMILIES[int(f)]
        kw = str(rng.choice(fam.variants))
        wrong = wrongs[int(rng.integers(0, len(wrongs)))]
        subtle = float(rng.uniform(0.2, 0.6))
        out.append(_direction(rng, kw, fam.name, _n_steps(rng, d), ps[i], pops[i], wrong, subtle))
    return out


@dataclass(frozen=True, slots=True)
class _Role:
    share: float
    """Popularity (for the crowd: shared by its three variants)."""
    flaw_p: tuple[float, float]
    """P(a chain of this direction takes the approach's wrong turn)."""
    flaw_subtlety: tuple[float, float]
    looks: tuple[float, float]


POPULAR_WORSE: dict[str, _Role] = {
    "crowd": _Role(0.80, (0.30, 0.65), (0.85, 0.95), (0.75, 0.90)),
    "medium": _Role(0.14, (0.30, 0.50), (0.40, 0.60), (0.40, 0.60)),
    "rare": _Role(0.06, (0.0, 0.0), (0.0, 0.0), (0.80, 0.90)),
}
"""`popular_worse` (ranges are uniform draws per problem): the three variants of one family
share 80% of the popularity, take a plausible wrong turn in 55-80% of chains (a flaw the PRM
mostly misses, always ending in one shared wrong answer) and look as promising as the good
direction; one other direction is middling; one rare direction (6%) has no flaw. Every
direction also slips (careless errors the PRM mostly sees): a chain avoids slips with
probability `POPULAR_WORSE_CLEAN` (per problem), so full samples are rarely clean."""

POPULAR_WORSE_CLEAN = (0.05, 0.25)
"""Range of P(a chain has no slip) in `popular_worse`, one draw per problem."""
POPULAR_WORSE_SLIP_SUBTLETY = (0.02, 0.10)
"""Range of P(the PRM overlooks a slip) in `popular_worse`, per direction."""


def _popular_worse_directions(
    rng: np.random.Generator, d: float, wrongs: list[str]
) -> list[Direction]:
    """Most mass on one family of near-paraphrase directions that usually go wrong, and wrong
    alike, in ways a PRM misses; one rarely picked direction without that flaw."""
    crowd, medium, rare = (FAMILIES[int(i)] for i in rng.choice(len(FAMILIES), 3, replace=False))
    clean = float(rng.uniform(*POPULAR_WORSE_CLEAN))
    plan = [
        (crowd, v, "crowd", float(w) * POPULAR_WORSE["crowd"].share, wrongs[0])
        for v, w in zip(crowd.variants, rng.dirichlet(np.full(3, 6.0)), strict=True)
    ]
    for fam, role, wrong in ((medium, "medium", wrongs[1]), (rare, "rare", wrongs[2])):
        plan.append((fam, str(rng.choice(fam.variants)), role, POPULAR_WORSE[role].share, wrong))
    out = []
    for fam, kw, role, pop, wrong in plan:
        spec = POPULAR_WORSE[role]
        flaw_p = rng.uniform(*spec.flaw_p)
        flaw_subtle = rng.uniform(*spec.flaw_subtlety)
        slip_subtle = rng.uniform(*POPULAR_WORSE_SLIP_SUBTLETY)
        looks = rng.uniform(*spec.looks)
        n_steps = _n_steps(rng, d)
        out.append(
            _direction(
                rng, kw, fam.name, n_steps, clean, pop, wrong, slip_subtle, looks,
                flaw_p=flaw_p, flaw_subtlety=flaw_subtle,
            )
        )  # fmt: skip
    return [out[int(i)] for i in rng.permutation(len(out))]


def _subproblems(rng: np.random.Generator, d: float, answer: str) -> list[SubProblem]:
    """2-5 sub-problems; the last one is the original question, answered by the gold answer."""
    m = int(np.clip(round(2 + 3 * d + rng.normal(0.0, 0.7)), 2, 5))
    targets = rng.choice(SUBPROBLEM_TARGETS, size=m - 1, replace=False)
    diffs = np.clip(d + rng.normal(0.0, 0.2, size=m), 0.02, 0.98)
    subs = [
        SubProblem(
            (f"Find {t}.", f"Determine {t}.", f"Compute {t} from the given data."),
            str(int(rng.integers(2, 1000))),
            float(round(diffs[i], 3)),
        )
        for i, t in enumerate(targets)
    ]
    final = (
        "Use the previous results to answer the original question.",
        "Combine the earlier results to obtain the requested answer.",
        "Finish the problem using the results above.",
    )
    subs.append(SubProblem(final, answer, float(round(diffs[-1], 3))))
    return subs


@functools.lru_cache(maxsize=8192)
def problem_for(text: str, *, scenario: str = "default", seed: int = 0) -> SimProblem:
    """The latent world of any problem text (dataset problems keep their gold answer)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
    key = text.strip()
    rng = rng_for("problem", scenario, seed, key)
    rec = _dataset_index().get(key)
    answer = rec.answer if rec else str(int(rng.integers(2, 1000)))
    pid = rec.id if rec and rec.id else "sim-" + stable_hex("id", key)
    d = _scenario_difficulty(_base_difficulty(rec, rng), scenario)
    taken: set[str] = set()
    wrongs: list[str] = []
    for _ in range(8):
        wrongs.append(_wrong_answer(answer, rng, taken))
        taken.add(wrongs[-1])
    if scenario == "popular_worse":
        directions = _popular_worse_directions(rng, d, wrongs)
    else:
        directions = _mixed_directions(rng, d, wrongs)
    return SimProblem(
        id=pid,
        text=text,
        answer=answer,
        difficulty=round(d, 4),
        directions=directions,
        subproblems=_subproblems(rng, d, answer),
        scenario=scenario,
        source=rec.source if rec else "generated",
        wrong_answers=tuple(wrongs),
    )


_STATEMENTS = (
    "A sequence starts at ${a}$ and every later term follows from the previous one by a fixed "
    "rule. Find the value of the hidden term $Q$.",
    "Let $x$ and $y$ be positive integers with $x + y = {a}$ and a second, hidden relation. "
    "Compute the quantity $Q$ they determine.",
    "A triangle has one side of length ${a}$ and an angle of ${b}^\\circ$. Find the length $Q$ of "
    "the segment described in the figure.",
    "How many arrangements of ${a}$ coloured beads satisfy the given adjacency rule? Call the "
    "count $Q$.",
    "Find the remainder $Q$ when the product of the first ${a}$ terms of a given sequence is "
    "divided by ${b}$.",
)


def make_problems(n: int, *, scenario: str = "default", seed: int = 0) -> list[SimProblem]:
    """`n` readable simulated problems; their answers are latent, not computed from the text."""
    out = []
    for i in range(1, n + 1):
        rng = rng_for("statement", scenario, seed, i)
        template = _STATEMENTS[int(rng.integers(0, len(_STATEMENTS)))]
        body = template.format(a=int(rng.integers(3, 60)), b=int(rng.integers(3, 90)))
        out.append(problem_for(f"Simulated problem {i}: {body}", scenario=scenario, seed=seed))
    return out


# --- reading solutions back -------------------------------------------------------------------


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (brace-matched), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{") - 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


@dataclass(frozen=True, slots=True)
class SolutionState:
    """What a (partial) solution says about the latent state, recovered from its text."""

    direction: int | None
    steps: int
    correct: bool
    first_wrong: str | None
    answer: str | None
    tail: str
    """Text after the last blank line ("" when the prefix ends at a step boundary)."""
    tail_step: bool
    """The tail is a started step (header and keyword) that has not stated its value yet."""
    flaw_step: str | None = None
    """The step where the chain took its direction's flaw (None: it did not)."""
    slip_step: str | None = None
    """The chain's first slip (None: it did not slip; a flawed chain can still slip)."""

    @property
    def flawed(self) -> bool:
        """Wrong only through the flaw: later values follow the flaw, the answer is typical."""
        return self.flaw_step is not None and self.slip_step is None


def parse_solution(problem: SimProblem, text: str) -> SolutionState:
    """Re-parse a solution prefix: direction (keyword), steps done, correctness, final answer."""
    pieces = _BLANK_LINE_RE.split(text)
    ended = not text.strip() or _ENDS_AT_BREAK_RE.search(text) is not None
    tail = "" if ended else pieces[-1]
    direction: int | None = None
    steps, answer, tail_step = 0, None, False
    flaw_step: str | None = None
    slip_step: str | None = None
    for pos, piece in enumerate(pieces):
        if not piece.strip():
            continue
        boxed = last_boxed(piece)
        if boxed is not None:
            answer = boxed
            break
        kw = KEYWORD_RE.search(piece)
        vals = _STEP_VALUE_RE.findall(piece)
        idx = problem.direction_of(kw.group(1)) if kw else None
        if not vals:
            tail_step = pos == len(pieces) - 1 and not ended and idx is not None
            continue
        if direction is None:
            if idx is None:
                continue
            direction = idx
        steps += 1
        d = problem.directions[direction]
        if slip_step is not None:
            continue
        if idx == direction and steps <= d.n_steps:
            value = int(vals[-1])
            # a flawed chain goes on stating the flaw's values; anything else is a slip
            if value == (d.values[steps - 1] if flaw_step is None else flaw_value(d, steps)):
                continue
            if flaw_step is None and d.flaw > 0 and value == flaw_value(d, steps):
                flaw_step = piece
                continue
        slip_step = piece
    first_wrong = flaw_step if flaw_step is not None else slip_step
    return SolutionState(
        direction,
        steps,
        first_wrong is None,
        first_wrong,
        answer,
        tail,
        tail_step,
        flaw_step,
        slip_step,
    )


def flaw_value(d: Direction, k: int) -> int:
    """The value step `k` states after the direction's flaw: always the same, and never a
    value a slip could give (slips land within 30 of the true value)."""
    true = d.values[k - 1]
    return true + 31 + (7 * true + k) % 40


def is_correct(problem: SimProblem, answer: str | None) -> bool:
    """Whether `answer` (a `\\boxed{}` content) is the problem's gold answer."""
    return answer is not None and is_correct_text(problem.answer, answer)


def oracle_value(problem: SimProblem, solution_text: str) -> float:
    """Exact P(final answer correct | this partial solution), under the world's own dynamics."""
    st = parse_solution(problem, solution_text)
    return _value(problem, st, believe_wrong=False)


def apparent_value(
    problem: SimProblem,
    solution_text: str,
    *,
    seed: int,
    miss_rate: float | None = None,
    foresight: float = 1.0,
) -> float:
    """A reward model's view of a prefix: myopic and partly blind, where the oracle is exact.

    It overlooks a chain's flaw and its first slip each with probability `miss_rate` (default:
    the direction's `flaw_subtlety` and `subtlety`; fixed per step text) and trusts a chain
    whose errors it all overlooked. For a chain that
    looks right it judges the risk ahead from how promising the direction looks (`looks`, not
    the true `p`) and sees only a `foresight` share of that risk (1 = fully calibrated).
    """
    st = parse_solution(problem, solution_text)
    missed = False
    if st.first_wrong is not None and st.direction is not None:
        d = problem.directions[st.direction]
        missed = all(
            hash_uniform("miss", seed, problem.id, step)
            < (rate if miss_rate is None else miss_rate)
            for step, rate in ((st.flaw_step, d.flaw_subtlety), (st.slip_step, d.subtlety))
            if step is not None
        )
    value = _value(problem, st, believe_wrong=missed)
    if value == 0.0:
        return 0.0
    if st.answer is None and st.direction is not None:
        d = problem.directions[st.direction]
        value = d.looks ** (max(d.n_steps - st.steps, 0) / d.n_steps)
    elif st.direction is None:
        value = float(sum(d.popularity * d.looks for d in problem.directions))
    return 1.0 - foresight * (1.0 - value)


def _value(problem: SimProblem, st: SolutionState, *, believe_wrong: bool) -> float:
    if st.answer is not None:
        return 1.0 if believe_wrong or is_correct(problem, st.answer) else 0.0
    if st.direction is None:
        return problem.prior_success
    if not st.correct and not believe_wrong:
        return 0.0
    d = problem.directions[st.direction]
    return d.step_ok ** max(d.n_steps - st.steps, 0)
