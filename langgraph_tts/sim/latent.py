"""Building blocks of the simulated world: the tokenizer, seeded hashing, the latent types.

Kept apart from `world` (which builds and reads problems) so each file stays small; everything
here is re-exported by `langgraph_tts.sim.world`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

__all__ = [
    "Direction",
    "SimProblem",
    "SubProblem",
    "count_tokens",
    "cut_to_tokens",
    "hash_normal",
    "hash_uniform",
    "is_correct_text",
    "rng_for",
    "stable_hex",
]

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_NORMAL = NormalDist()


# --- tokens and hashing -----------------------------------------------------------------------


def count_tokens(text: str) -> int:
    """The simulator's tokenizer: words and single punctuation marks; whitespace is free."""
    return len(_TOKEN_RE.findall(text))


def cut_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` holding at most `max_tokens` tokens (a `max_tokens` cut)."""
    if max_tokens <= 0:
        return ""
    for i, match in enumerate(_TOKEN_RE.finditer(text), start=1):
        if i == max_tokens:
            return text[: match.end()]
    return text


def _digest(parts: tuple[object, ...]) -> bytes:
    joined = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(joined, digest_size=16).digest()


def rng_for(*parts: object) -> np.random.Generator:
    """A generator seeded by the hash of `parts`: same parts, same stream, on every platform."""
    return np.random.default_rng(int.from_bytes(_digest(parts), "little"))


def hash_uniform(*parts: object) -> float:
    """A uniform draw in (0, 1) fixed by `parts` (cheaper than building a generator)."""
    return (int.from_bytes(_digest(parts)[:8], "little") + 0.5) / 2.0**64


def stable_hex(*parts: object) -> str:
    """A short hex id fixed by `parts` (ids of generated problems)."""
    return _digest(parts).hex()[:12]


def hash_normal(*parts: object) -> float:
    """A standard normal draw fixed by `parts`."""
    return _NORMAL.inv_cdf(hash_uniform(*parts))


# --- the latent world -------------------------------------------------------------------------


@dataclass(frozen=True)
class Direction:
    """A latent reasoning approach: chosen at step 1, then followed for `n_steps` steps."""

    name: str
    """Family of the approach (e.g. "similarity"); variants of one family are near-paraphrases."""
    keyword: str
    """The distinctive phrase every step of this direction contains."""
    n_steps: int
    q: float
    """Probability that a step slips (a careless error, random wrong value), given the chain
    so far is right."""
    popularity: float
    """Probability of picking this direction at temperature 1."""
    actions: tuple[str, ...]
    templates: tuple[tuple[str, ...], ...]
    """Per step, the sentence forms (paraphrases) a sample may use."""
    values: tuple[int, ...]
    """True intermediate value stated by each step."""
    typical_wrong: str
    """The wrong final answer this direction lands on most of the time when it goes wrong."""
    subtlety: float = 0.4
    """Probability that a reward model overlooks a slip of this direction."""
    apparent_p: float = -1.0
    """The success rate a reward model believes this direction has (how promising it looks);
    equal to `p` unless the direction is deceptive. Negative means "same as p"."""
    flaw: float = 0.0
    """Probability that a step, on a right chain that did not slip, takes the approach's
    characteristic wrong turn: a plausible, consistent mistake (always the same wrong value
    at a step, always `typical_wrong` at the end), unlike a slip."""
    flaw_subtlety: float = 0.95
    """Probability that a reward model overlooks a flaw (plausible mistakes are hard to see)."""

    @property
    def step_ok(self) -> float:
        """Probability that a step on a right chain stays right (neither slips nor is flawed)."""
        return (1.0 - self.q) * (1.0 - self.flaw)

    @property
    def looks(self) -> float:
        """`apparent_p`, defaulting to the true success rate."""
        return self.p if self.apparent_p < 0 else self.apparent_p

    @property
    def p(self) -> float:
        """Probability that a solution following this direction ends with the right answer."""
        return self.step_ok**self.n_steps


@dataclass(frozen=True)
class SubProblem:
    """SCALE's view of a problem: one sub-problem of its decomposition."""

    descriptions: tuple[str, ...]
    """Paraphrases of the sub-problem (different outlines word it differently)."""
    value: str
    difficulty: float


@dataclass(frozen=True)
class SimProblem:
    """A problem and its latent world. Shared through a cache: treat it as read-only."""

    id: str
    text: str
    answer: str
    difficulty: float
    directions: list[Direction]
    subproblems: list[SubProblem]
    scenario: str = "default"
    source: str = "generated"
    wrong_answers: tuple[str, ...] = field(default=(), repr=False)
    """Pool of plausible wrong final answers (random errors draw from it)."""

    def direction_of(self, keyword: str) -> int | None:
        """Index of the direction with this keyword phrase, if it belongs to this problem."""
        for i, d in enumerate(self.directions):
            if d.keyword == keyword:
                return i
        return None

    @property
    def prior_success(self) -> float:
        """P(correct) of a fresh solution at temperature 1: popularity-weighted success."""
        return float(sum(d.popularity * d.p for d in self.directions))


def _normalise_answer(ans: str) -> str:
    s = ans.strip().strip("$").strip()
    for junk in ("\\left", "\\right", "\\!", "\\,", "\\ ", " "):
        s = s.replace(junk, "")
    return s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").rstrip(".")


def is_correct_text(gold: str, answer: str) -> bool:
    """String-and-number comparison of two answers (the simulator only emits clean answers)."""
    a, g = _normalise_answer(answer), _normalise_answer(gold)
    if a == g:
        return True
    try:
        return abs(float(a) - float(g)) <= 1e-6 * max(1.0, abs(float(g)))
    except ValueError:
        return False
