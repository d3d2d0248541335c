"""Word lists of the simulated world: approach families, step actions, sentence templates.

Kept apart from the world logic so the wording can change without touching the mechanics.
Every keyword phrase is globally unique and no phrase contains another, so a direction can be
recovered from any step text alone (the embedder sees partial solutions without the problem).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "FAMILIES",
    "FILLERS",
    "KEYWORD_RE",
    "PHRASE_INFO",
    "RAMBLE_SENTENCES",
    "REASONING_SENTENCES",
    "STEP_TEMPLATES",
    "SUBPROBLEM_TARGETS",
    "Family",
]


@dataclass(frozen=True, slots=True)
class Family:
    """A family of near-paraphrase approaches; its variants are distinct latent directions."""

    name: str
    topic: str
    variants: tuple[str, ...]


FAMILIES: tuple[Family, ...] = (
    Family(
        "substitution", "algebra", ("a substitution", "a change of variables", "a variable swap")
    ),
    Family(
        "vieta",
        "algebra",
        (
            "Vieta's formulas",
            "the sum and product of the roots",
            "symmetric functions of the roots",
        ),
    ),
    Family(
        "square",
        "algebra",
        ("completing the square", "a perfect-square rewrite", "the vertex form"),
    ),
    Family(
        "factoring",
        "algebra",
        ("factoring the expression", "a factorization", "grouping terms into factors"),
    ),
    Family(
        "telescoping",
        "algebra",
        ("a telescoping sum", "telescoping cancellation", "partial fractions"),
    ),
    Family(
        "means",
        "algebra",
        ("the AM-GM inequality", "an averaging inequality", "the inequality of means"),
    ),
    Family(
        "modular",
        "number theory",
        ("modular arithmetic", "congruences modulo a prime", "residues modulo n"),
    ),
    Family(
        "primes",
        "number theory",
        ("prime factorization", "the divisor structure", "factoring into primes"),
    ),
    Family(
        "complement",
        "counting",
        ("complementary counting", "counting the complement", "the complement principle"),
    ),
    Family("casework", "counting", ("casework", "case analysis", "splitting into cases")),
    Family(
        "recursion",
        "counting",
        ("a recurrence relation", "a recursion on n", "dynamic programming"),
    ),
    Family(
        "generating",
        "counting",
        ("generating functions", "a power-series encoding", "a polynomial encoding"),
    ),
    Family(
        "coordinates",
        "geometry",
        ("coordinate geometry", "a coordinate system", "Cartesian coordinates"),
    ),
    Family(
        "similarity", "geometry", ("similar triangles", "triangle similarity", "proportional sides")
    ),
    Family(
        "trigonometry",
        "geometry",
        ("trigonometric identities", "the double-angle formula", "angle-sum identities"),
    ),
    Family(
        "cosines", "geometry", ("the law of cosines", "the cosine rule", "side-angle relations")
    ),
    Family(
        "direct",
        "general",
        ("direct computation", "brute-force evaluation", "explicit enumeration"),
    ),
    Family(
        "symmetry",
        "general",
        ("a symmetry argument", "reflection symmetry", "an invariance argument"),
    ),
)

PHRASE_INFO: dict[str, tuple[str, str]] = {
    v: (f.name, f.topic) for f in FAMILIES for v in f.variants
}
"""keyword phrase -> (family name, topic)."""


def _check_phrases() -> None:
    """Fail at import if one phrase could be read inside another (the parser would be ambiguous)."""
    phrases = list(PHRASE_INFO)
    for a in phrases:
        for b in phrases:
            if a != b and a.lower() in b.lower():
                raise AssertionError(f"keyword phrase {a!r} occurs inside {b!r}")


_check_phrases()

KEYWORD_RE = re.compile(
    r"(?<![\w-])("
    + "|".join(re.escape(p) for p in sorted(PHRASE_INFO, key=len, reverse=True))
    + r")(?![\w-])"
)

ACTIONS: tuple[str, ...] = (
    "set up the key relation",
    "rewrite the given condition",
    "isolate the unknown quantity",
    "simplify the resulting expression",
    "evaluate the intermediate sum",
    "combine the partial results",
    "eliminate the auxiliary variable",
    "reduce the expression to a single term",
    "compute the required length",
    "count the admissible configurations",
    "check the boundary values",
    "collect like terms",
    "determine the relevant constant",
    "express everything in one variable",
    "compute the product of the factors",
    "find the value of the parameter",
    "apply the stated constraint",
    "evaluate the expression at the critical point",
    "sum over all the cases",
    "plug in the known values",
    "compute the remaining quantity",
    "verify that the values are consistent",
    "normalise the result",
    "determine the number of solutions",
    "compare the two expressions",
    "compute the ratio of the key quantities",
    "solve the resulting equation",
    "tabulate the small cases",
    "compute the area of the region",
    "bound the expression from both sides",
)

STEP_TEMPLATES: tuple[str, ...] = (
    "Using {kw}, we {action}",
    "We {action} by means of {kw}",
    "Applying {kw}, we can {action}",
    "With {kw} in mind, we {action}",
    "Next we {action}, relying on {kw}",
    "Following {kw}, we {action}",
    "Here {kw} lets us {action}",
    "Continuing with {kw}, we {action}",
)
"""Sentence forms of a step; each holds the direction's keyword phrase and the step's action."""

FILLERS: tuple[str, ...] = (
    " All the quantities involved are integers.",
    " This agrees with the conditions of the problem.",
    " The arithmetic here is routine.",
    " Nothing else constrains this value.",
    " We keep this value for the next step.",
)

RAMBLE_SENTENCES: tuple[str, ...] = (
    "Before moving on, let me re-derive this carefully from the start.",
    "Going back over each term, the quantities seem to agree so far.",
    "On second thought, it is worth checking the signs once more.",
    "Writing out the intermediate expression in full, term by term, nothing changes.",
    "Let me also double-check the earlier computation, in case a factor was dropped.",
    "Recomputing the same quantity another way should give the same number.",
    "It is easy to lose a factor of two here, so I will redo the arithmetic slowly.",
    "Hmm, let me look at this from a slightly different angle before concluding.",
)
"""Used for steps that ramble far past a per-step token cap."""

REASONING_SENTENCES: tuple[str, ...] = (
    "Let me restate what is given and what is asked.",
    "First, I should make sure I understand the quantities involved.",
    "Maybe I can try a small case to see the pattern.",
    "Wait, that does not look right; let me recompute.",
    "So the relation holds, and I can use it in the next part.",
    "Let me verify this value by substituting it back.",
    "Alternatively, I could approach this from the other direction.",
    "Hmm, the numbers check out, but let me be careful with the edge cases.",
    "Okay, combining the two facts gives a cleaner expression.",
    "I think this is consistent with everything so far.",
)
"""Filler for a thinking model's `reasoning_content` (SCALE's System 2)."""

SUBPROBLEM_TARGETS: tuple[str, ...] = (
    "the common difference of the sequence",
    "the length of the segment AB",
    "the number of valid arrangements",
    "the value of the constant c",
    "the sum of the roots",
    "the area of the triangle",
    "the remainder of N modulo 7",
    "the largest admissible value of x",
    "the number of divisors of the product",
    "the radius of the circle",
    "the probability of the favourable event",
    "the coefficient of the leading term",
    "the smallest positive solution",
    "the total count of the lattice points",
    "the value of the auxiliary expression",
    "the height of the trapezoid",
)
