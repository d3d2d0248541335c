"""SCALE's side of the simulated world: decomposition, outline selection, difficulty, solving.

A problem's `subproblems` are its latent decomposition. Each sub-problem is solved correctly
with a probability that falls with its difficulty, much faster in non-thinking mode (System 1)
than in thinking mode (System 2), which instead costs many more tokens. An answer built on a
wrong earlier sub-answer is almost always wrong; a missing earlier result must be re-derived.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from langgraph_tts.sim.vocab import REASONING_SENTENCES
from langgraph_tts.sim.world import (
    SimProblem,
    SubProblem,
    count_tokens,
    cut_to_tokens,
    is_correct_text,
    last_boxed,
)

__all__ = [
    "SolveReply",
    "accuracy",
    "decompose_reply",
    "difficulty_reply",
    "locate_subproblem",
    "parse_difficulty_request",
    "parse_solve_request",
    "select_reply",
    "solve_reply",
]

POISONED_ACCURACY = 0.05
"""P(correct) of a sub-answer built on a wrong earlier sub-answer."""
_SOLVE_RE = re.compile(
    r"^\s*Given conditions:\s*(?P<cond>.*?)\n\s*(?:Work so far|Current process):\s?(?P<ctx>.*?)"
    r"\n\s*Question:\s*(?P<q>.*?)\s*$",
    re.DOTALL,
)
_DIFFICULTY_RE = re.compile(
    r"^\s*problem:\s*(?P<p>.*?)\n\s*(?:work so far|current solution process):\s?(?P<ctx>.*?)"
    r"\n\s*(?:next sub-problem|next step to be solved):\s*(?P<q>.*?)\s*$",
    re.DOTALL | re.IGNORECASE,
)
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")


COT_PART_FACTOR = 0.95
"""Solving everything in one chain (CoT) makes each part this much less reliable than solving
it alone with the earlier results in hand (why decomposition helps)."""
COT_TOKEN_SHARE = 0.4
"""A single thinking chain reuses work: CoT thinking costs this share of the per-part sum."""


def accuracy(difficulty: float, *, thinking: bool) -> float:
    """P(correct) of one sub-problem given correct context: System 2 degrades far more slowly."""
    s = float(np.clip(difficulty, 0.0, 1.0))
    acc = 0.995 - 0.08 * s**2 if thinking else 0.98 - 0.45 * s**2
    return float(np.clip(acc, 0.02, 0.995))


def _tokens_needed(difficulty: float, *, thinking: bool, rng: np.random.Generator) -> int:
    """Reasoning tokens (thinking) or answer tokens (non-thinking) spent on one sub-problem."""
    base = 300 + 5000 * difficulty**2 if thinking else 40 + 220 * difficulty
    return max(10, int(base * rng.uniform(0.75, 1.25)))


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def locate_subproblem(problem: SimProblem, question: str) -> int | None:
    """Which sub-problem a question asks (by description; the problem text is the last one)."""
    q = _norm(question)
    if not q:
        return None
    for i, sub in enumerate(problem.subproblems):
        if any(_norm(d) == q for d in sub.descriptions):
            return i
    text = _norm(problem.text)
    if q in text or text in q:
        return len(problem.subproblems) - 1
    words = set(re.findall(r"\w+", q))
    best, best_i = 0.0, None
    for i, sub in enumerate(problem.subproblems):
        for d in sub.descriptions:
            other = set(re.findall(r"\w+", d.lower()))
            jac = len(words & other) / max(1, len(words | other))
            if jac > best:
                best, best_i = jac, i
    return best_i if best >= 0.6 else None


def parse_solve_request(user: str) -> tuple[str, str, str] | None:
    """(conditions, work so far, question) of a SOLVE_SUBPROBLEM_USER_TEMPLATE message."""
    m = _SOLVE_RE.match(user)
    return (m["cond"].strip(), m["ctx"].strip(), m["q"].strip()) if m else None


def parse_difficulty_request(user: str) -> tuple[str, str, str] | None:
    """(problem, work so far, next sub-problem) of a DIFFICULTY_USER_TEMPLATE message."""
    m = _DIFFICULTY_RE.match(user)
    return (m["p"].strip(), m["ctx"].strip(), m["q"].strip()) if m else None


def _context_answers(problem: SimProblem, context: str, upto: int) -> dict[int, str | None]:
    """For each earlier sub-problem found in the context: the answer stated after it."""
    low = context.lower()
    found: list[tuple[int, int, int]] = []
    for j, sub in enumerate(problem.subproblems[:upto]):
        for d in sub.descriptions:
            pos = low.find(d.lower())
            if pos >= 0:
                found.append((pos, pos + len(d), j))
                break
    found.sort()
    out: dict[int, str | None] = {}
    for n, (_, end, j) in enumerate(found):
        seg = context[end : found[n + 1][0] if n + 1 < len(found) else len(context)]
        boxed = last_boxed(seg)
        numbers = _NUMBER_RE.findall(seg)
        out[j] = boxed if boxed is not None else (numbers[-1] if numbers else None)
    return out


def _success_prob(problem: SimProblem, index: int, context: str, *, thinking: bool) -> float:
    subs = problem.subproblems
    prob = accuracy(subs[index].difficulty, thinking=thinking)
    stated = _context_answers(problem, context, index)
    for j in range(index):
        ans = stated.get(j)
        if ans is None:
            prob *= accuracy(subs[j].difficulty, thinking=thinking)
        elif not is_correct_text(subs[j].value, ans):
            return POISONED_ACCURACY
    return prob


def _final_wrong(problem: SimProblem, rng: np.random.Generator) -> str:
    """Wrong final answers cluster like the policy's: mostly the favourite direction's mistake."""
    if problem.directions and rng.random() < 0.6:
        top = max(problem.directions, key=lambda d: d.popularity)
        return top.typical_wrong
    pool = problem.wrong_answers or ("0",)
    return pool[int(rng.integers(0, len(pool)))]


def _filler(rng: np.random.Generator, tokens: int) -> str:
    parts: list[str] = []
    used = 0
    while used < tokens:
        s = str(REASONING_SENTENCES[int(rng.integers(0, len(REASONING_SENTENCES)))])
        parts.append(s)
        used += count_tokens(s)
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class SolveReply:
    """A solver reply: `content`, the hidden `reasoning` (thinking mode) and how it ended."""

    content: str
    reasoning: str | None
    finish_reason: str
    tokens: int
    correct: bool


def solve_reply(
    problem: SimProblem,
    question: str | None,
    context: str,
    rng: np.random.Generator,
    *,
    thinking: bool,
    max_tokens: int,
) -> SolveReply:
    """Answer one sub-problem (or, if `question` is None, the whole problem in one go, CoT)."""
    subs = problem.subproblems
    index = locate_subproblem(problem, question) if question is not None else None
    if index is None:
        targets = list(subs)
        parts = [COT_PART_FACTOR * accuracy(s.difficulty, thinking=thinking) for s in subs]
        prob = float(np.prod(parts))
        truth = problem.answer
    else:
        targets = [subs[index]]
        prob = _success_prob(problem, index, context, thinking=thinking)
        truth = subs[index].value
    correct = bool(rng.random() < prob)
    if correct:
        answer = truth
    elif index is None or index == len(subs) - 1:
        answer = _final_wrong(problem, rng)
    else:
        answer = str(int(truth) + int(rng.integers(1, 40)))
    need = sum(_tokens_needed(s.difficulty, thinking=thinking, rng=rng) for s in targets)
    if index is None and thinking:
        need = int(need * COT_TOKEN_SHARE)
    what = "the problem" if index is None else targets[0].descriptions[0].rstrip(".").lower()
    closing = f"So the result of this part is ${answer}$.\n\nThe answer is $\\boxed{{{answer}}}$."
    if thinking:
        reasoning = _filler(rng, need)
        content = f"Working through {what} carefully gives the value below.\n\n{closing}"
    else:
        reasoning = None
        content = f"We {what}. {_filler(rng, need)}\n\n{closing}"
    r_tokens = count_tokens(reasoning or "")
    if reasoning is not None and r_tokens >= max_tokens:
        cut = cut_to_tokens(reasoning, max_tokens)
        return SolveReply("", cut, "length", count_tokens(cut), False)
    room = max_tokens - r_tokens
    c_tokens = count_tokens(content)
    if c_tokens > room:
        cut = cut_to_tokens(content, room)
        return SolveReply(cut, reasoning, "length", r_tokens + count_tokens(cut), False)
    return SolveReply(content, reasoning, "stop", r_tokens + c_tokens, correct)


def decompose_reply(problem: SimProblem, rng: np.random.Generator, *, ignore_formats: bool) -> str:
    """An outline of the latent sub-problems; usually JSON, sometimes wrapped or broken."""
    descs = [str(rng.choice(s.descriptions)) for s in problem.subproblems]
    if ignore_formats:
        lines = ["Here is how I would approach it."]
        lines += [f"Part {i}: {d}" for i, d in enumerate(descs, start=1)]
        return " ".join(lines)
    body = json.dumps({f"step{i}": d for i, d in enumerate(descs, start=1)})
    r = rng.random()
    if r < 0.65:
        return body
    if r < 0.8:
        return f"```json\n{body}\n```"
    if r < 0.9:
        return f"Here is the outline of the solution:\n{body}"
    return body[:-1] + "," if rng.random() < 0.5 else body[: len(body) // 2]


def select_reply(user: str, rng: np.random.Generator, *, ignore_formats: bool) -> str:
    """Pick one of the listed outline versions (the simulated outlines are all equally good)."""
    ids = sorted({int(m) for m in re.findall(r"version\s*(\d+)", user)}) or [1]
    pick = ids[int(rng.integers(0, len(ids)))]
    if ignore_formats:
        return f"I would go with version {pick}, because its steps read most clearly."
    return f"version{pick}"


def difficulty_reply(
    sub: SubProblem | None, rng: np.random.Generator, *, ignore_formats: bool
) -> str:
    """A noisy reading of the sub-problem's latent difficulty, as a bare number."""
    true = sub.difficulty if sub is not None else 0.5
    seen = float(np.clip(true + rng.normal(0.0, 0.08), 0.0, 1.0))
    if ignore_formats:
        if seen < 0.5:
            return "This looks routine for a student who knows the topic."
        return "This step is hard; it needs long and careful thought."
    return f"{seen:.2f}"
