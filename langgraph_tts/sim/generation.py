"""How the simulated policy continues a solution, and how vLLM's stop/length rules cut it.

The policy is stateless: `solution_chunks` re-parses the prefix to recover the latent state
(direction, steps done, still correct?) and yields the rest of the solution one step at a time;
`finish` applies stop strings and `max_tokens` exactly as vLLM reports them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from langgraph_tts.sim.vocab import FILLERS, KEYWORD_RE, RAMBLE_SENTENCES
from langgraph_tts.sim.world import (
    Direction,
    SimProblem,
    count_tokens,
    cut_to_tokens,
    flaw_value,
    parse_solution,
)

__all__ = [
    "Completion",
    "Sampling",
    "direction_probs",
    "final_sentence",
    "finish",
    "solution_chunks",
]

TYPICAL_WRONG_SHARE = 0.6
"""How often a failed chain lands on its direction's typical wrong answer (answers cluster)."""
FILLER_RATE = 0.3


@dataclass(frozen=True, slots=True)
class Sampling:
    """The sampling knobs that shape the simulated policy (vLLM semantics; 0 means off)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    ramble_rate: float = 0.03

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True, slots=True)
class Completion:
    """One choice after stop strings and `max_tokens` were applied."""

    text: str
    finish_reason: str
    stop_reason: str | None
    tokens: int
    """Generated tokens, including a stop string that was stripped from `text` (as vLLM)."""


def direction_probs(problem: SimProblem, s: Sampling) -> np.ndarray:
    """P(direction at step 1): popularity sharpened by temperature, then top-k/min-p/top-p."""
    pop = np.array([d.popularity for d in problem.directions], dtype=float)
    if s.greedy:
        out = np.zeros_like(pop)
        out[int(np.argmax(pop))] = 1.0
        return out
    logits = np.log(np.maximum(pop, 1e-12)) / s.temperature
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    keep = np.ones_like(p, dtype=bool)
    if s.top_k > 0:
        keep[order[s.top_k :]] = False
    if s.min_p > 0:
        keep &= p >= s.min_p * p.max()
    if s.top_p < 1.0:
        cum = np.cumsum(p[order])
        cutoff = int(np.searchsorted(cum, s.top_p)) + 1
        keep[order[cutoff:]] = False
    keep[order[0]] = True
    p = np.where(keep, p, 0.0)
    probs: np.ndarray = p / p.sum()
    return probs


def final_sentence(answer: str) -> str:
    """The closing line the policy prompt asks for (EOS follows it)."""
    return f"Therefore, the final answer is: $\\boxed{{{answer}}}$. I hope it is correct."


def _wrong_value(true: int, rng: np.random.Generator) -> int:
    offset = int(rng.integers(1, 31)) * (1 if rng.random() < 0.5 else -1)
    value = abs(true + offset)
    return value if value != true else true + 1


def _step_text(d: Direction, k: int, value: int, rng: np.random.Generator, s: Sampling) -> str:
    """`## Step k: <action>` then one paraphrased sentence stating the value (maybe a ramble)."""
    action = d.actions[k - 1]
    forms = d.templates[k - 1]
    form = forms[0] if s.greedy else forms[int(rng.integers(0, len(forms)))]
    sentence = form.format(kw=d.keyword, action=action)
    body = f"## Step {k}: {action[0].upper()}{action[1:]}\n{sentence}"
    if rng.random() < s.ramble_rate:
        target, parts = int(rng.integers(300, 800)), list[str]()
        while count_tokens(" ".join(parts)) < target:
            parts.append(str(RAMBLE_SENTENCES[int(rng.integers(0, len(RAMBLE_SENTENCES)))]))
        body += ". " + " ".join(parts) + f" Putting it all together, we {action} once more"
    filler = ""
    if not s.greedy and rng.random() < FILLER_RATE:
        filler = str(FILLERS[int(rng.integers(0, len(FILLERS)))])
    return f"{body}, which gives ${value}$.{filler}\n\n"


@dataclass(slots=True)
class _Chain:
    """Where a chain stands: it may have taken its direction's flaw, and it may have slipped."""

    flawed: bool = False
    slipped: bool = False

    def step(self, d: Direction, k: int, rng: np.random.Generator) -> int:
        """Draw step `k`'s fate and return the value it states.

        Slips are drawn until the first one; the flaw is drawn only on a right chain of a
        direction that has one (so flaw-free worlds keep their random streams).
        """
        if not self.slipped:
            if rng.random() < d.q:
                self.slipped = True
            elif not self.flawed and d.flaw > 0 and rng.random() < d.flaw:
                self.flawed = True
        true = d.values[k - 1]
        if self.slipped:
            return _wrong_value(true, rng)
        return flaw_value(d, k) if self.flawed else true

    def answer(self, problem: SimProblem, d: Direction, rng: np.random.Generator) -> str:
        """Gold when right; a flaw always ends in the typical wrong answer, a slip usually."""
        if not self.slipped:
            return d.typical_wrong if self.flawed else problem.answer
        if rng.random() < TYPICAL_WRONG_SHARE or not problem.wrong_answers:
            return d.typical_wrong
        return problem.wrong_answers[int(rng.integers(0, len(problem.wrong_answers)))]


def solution_chunks(
    problem: SimProblem, prefix: str, rng: np.random.Generator, s: Sampling
) -> Iterator[str]:
    """The rest of the solution after `prefix`, one step per chunk; exhaustion means EOS.

    Every chunk but the last ends with a blank line. A prefix that already holds a final answer
    ends at once; a prefix cut inside a step is finished first; unparseable text is treated as
    a preamble and followed by a fresh solution.
    """
    st = parse_solution(problem, prefix)
    if st.answer is not None:
        return
    direction, steps = st.direction, st.steps
    chain = _Chain(flawed=st.flaw_step is not None, slipped=st.slip_step is not None)
    if st.tail:
        kw = KEYWORD_RE.search(st.tail) if st.tail_step else None
        idx = problem.direction_of(kw.group(1)) if kw else None
        if idx is not None and (direction is None or idx == direction):
            direction = idx
            d = problem.directions[idx]
            steps += 1
            if steps > d.n_steps:
                steps = d.n_steps
            yield f" Putting it all together, which gives ${chain.step(d, steps, rng)}$.\n\n"
        else:
            yield "\n\n"
    while True:
        if direction is None:
            probs = direction_probs(problem, s)
            direction, steps, chain = int(rng.choice(len(probs), p=probs)), 0, _Chain()
        d = problem.directions[direction]
        if steps >= d.n_steps:
            yield final_sentence(chain.answer(problem, d, rng))
            return
        steps += 1
        yield _step_text(d, steps, chain.step(d, steps, rng), rng, s)


def _earliest_stop(text: str, stops: Sequence[str], start: int) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for stop in stops:
        i = text.find(stop, start)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, stop)
    return best


def finish(
    chunks: Iterable[str], *, stop: Sequence[str], include_stop: bool, max_tokens: int
) -> Completion:
    """Generate until EOS, the earliest stop string, or `max_tokens`, whichever comes first."""
    longest = max((len(x) for x in stop), default=1)
    acc = ""
    for chunk in chunks:
        start = max(0, len(acc) - longest + 1)
        acc += chunk
        hit = _earliest_stop(acc, stop, start)
        if hit is not None:
            idx, matched = hit
            generated = acc[: idx + len(matched)]
            used = count_tokens(generated)
            if used <= max_tokens:
                text = generated if include_stop else acc[:idx]
                return Completion(text, "stop", matched, used)
            break
        if count_tokens(acc) > max_tokens:
            break
    else:
        return Completion(acc, "stop", None, count_tokens(acc))
    cut = cut_to_tokens(acc, max_tokens)
    return Completion(cut, "length", None, count_tokens(cut))
