"""Final answers: extraction from solutions, a cheap canonical form, step splitting, and voting.

Everything here is pure and fast (regular expressions and `fractions`, no sympy), so it is
safe to call from any thread or event loop. Deciding whether two *different-looking* answers
are mathematically equal is `langgraph_tts.grading`'s job; `vote` only consumes the resulting
equivalence-class ids.

Typical use::

    answers = [extract_answer(c) for c in completions]
    group_ids = default_grader().group(answers)
    result = vote(answers, last_step_scores, group_ids, rule="weighted")
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

__all__ = [
    "VOTE_RULES",
    "AnswerGroup",
    "VoteResult",
    "VoteRule",
    "extract_answer",
    "normalize_answer",
    "plain_number",
    "split_steps",
    "vote",
]

VoteRule = Literal["weighted", "majority", "best"]
"""How `vote` picks the winning answer group.

- ``"weighted"``: the group with the largest sum of scores (PRM-weighted majority vote; what
  DORA and Snell et al. report as "weighted best-of-N").
- ``"majority"``: the group with the most members (self-consistency).
- ``"best"``: the group holding the single highest-scoring candidate (naive best-of-N).
"""

VOTE_RULES: tuple[VoteRule, ...] = ("weighted", "majority", "best")

# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_CLOSING_RE = re.compile(r"final answer is \$(.+?)\$\. I hope", re.DOTALL)
_CLOSING_END = "$. I hope"
_BARE_RE = re.compile(r"[^\s$]+")
_BRACE_TOKEN_RE = re.compile(r"\\.|[{}]", re.DOTALL)
_PHRASE_RE = re.compile(r"(?:final|the)\s+answer\s+is", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)|\n")
_LAST_NUMBER_RE = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:/\d+)?")
_DELIMS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def extract_answer(text: str | None, *, last_number_fallback: bool = False) -> str | None:
    r"""Extract the final answer from a solution text.

    Checked in this order, first hit wins:

    1. the content of the **last** well-formed ``\boxed{...}`` / ``\fbox{...}`` (brace-matched,
       nested and escaped braces allowed), or ``\boxed 5`` without braces;
    2. the text between ``final answer is $`` and ``$. I hope`` (the policy prompt's closing
       sentence when the model forgets ``\boxed``);
    3. the rest of the sentence or line after ``final answer is`` / ``the answer is``;
    4. only if ``last_number_fallback``: the last number in the text.

    Off by default, because "last number" credits truncated or rambling solutions with
    whatever number they happened to mention last. search-and-learn checks rule 2 before
    rule 1; the two only disagree when a text has both with different content.

    Args:
        text: A (possibly partial) model completion. ``None`` is allowed.
        last_number_fallback: Use rule 4 when rules 1–3 find nothing.

    Returns:
        The answer with newlines, a leading ``:``, surrounding ``$`` and a trailing ``.``
        removed, or ``None`` when no answer was found (or the found answer is empty).

    Examples:
        >>> extract_answer("Adding pairs, the sum is \\boxed{5050}.")
        '5050'
        >>> extract_answer("no answer here") is None
        True
    """
    if not text:
        return None
    found = _last_boxed(text)
    if found is None:
        # Openers after the last closing sentence can never match; cutting them off keeps the
        # lazy pattern from rescanning the rest of the text once per opener (quadratic).
        last = text.rfind(_CLOSING_END)
        closing = _CLOSING_RE.findall(text, 0, last + len(_CLOSING_END)) if last >= 0 else []
        found = closing[-1] if closing else None
    if found is None:
        found = _after_phrase(text)
    if found is None and last_number_fallback:
        numbers = _LAST_NUMBER_RE.findall(text)
        found = numbers[-1] if numbers else None
    return _clean(found) if found is not None else None


def _last_boxed(text: str) -> str | None:
    """Content of the last well-formed box; an unclosed (truncated) box is skipped.

    Linear in the text: braces are matched once for the whole text, not once per box (a text
    of 100,000 unclosed ``\\boxed{`` would otherwise be rescanned 100,000 times).
    """
    boxes = list(_BOXED_RE.finditer(text))
    if not boxes:
        return None
    closes: dict[int, int] | None = None
    for match in reversed(boxes):
        start = match.end()
        while start < len(text) and text[start] in " \t":
            start += 1
        if start < len(text) and text[start] == "{":
            if closes is None:
                closes = _match_braces(text)
            close = closes.get(start)
            content = text[start + 1 : close] if close is not None else None
        else:
            bare = _BARE_RE.match(text, start)
            content = bare.group(0) if bare else None
        if content is not None and _clean(content) is not None:
            return content
    return None


def _match_braces(text: str) -> dict[int, int]:
    """Position of the matching ``}`` for every ``{`` that has one, in one pass.

    ``\\{`` and ``\\}`` (any backslash pair) do not count; a stray ``}`` is ignored. For a
    ``{`` not escaped by a backslash, the match is where the brace depth counted from that
    ``{`` first returns to zero.
    """
    closes: dict[int, int] = {}
    stack: list[int] = []
    for token in _BRACE_TOKEN_RE.finditer(text):
        char = token.group()
        if char == "{":
            stack.append(token.start())
        elif char == "}" and stack:
            closes[stack.pop()] = token.start()
    return closes


def _after_phrase(text: str) -> str | None:
    """Rest of the sentence after the last 'final answer is' / 'the answer is'."""
    matches = list(_PHRASE_RE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].lstrip(" \t:")
    for opener, closer in _DELIMS:
        if rest.startswith(opener):
            end = rest.find(closer, len(opener))
            if end != -1:
                return rest[len(opener) : end]
    end_match = _SENTENCE_END_RE.search(rest)
    return rest[: end_match.start()] if end_match else rest


def _clean(answer: str) -> str | None:
    """Apply the extraction clean-up shared by all rules; empty becomes None."""
    out = answer.replace("\r", " ").replace("\n", " ").strip()
    out = out.lstrip(":").strip()
    for opener, closer in _DELIMS:
        if len(out) >= len(opener) + len(closer) and out.startswith(opener):
            if out.endswith(closer):
                out = out[len(opener) : -len(closer)].strip()
            break
    out = out.strip("$").strip().rstrip(".").strip()
    return out or None


# --------------------------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------------------------

_SPACING_RE = re.compile(r"\\[!,;:> ]|~")
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])")
_DISPLAY_RE = re.compile(r"\\(?:displaystyle|textstyle)(?![A-Za-z])")
_FRAC_ALIAS_RE = re.compile(r"\\[dt]frac(?![A-Za-z])")
_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])|\\degree(?![A-Za-z])")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mbox|mathrm)\s*\{")
_FRAC_DD_RE = re.compile(r"\\frac(\d)(\d)")
_FRAC_D_RE = re.compile(r"\\frac(\d)(?=\{)")
_FRAC_BRACED_D_RE = re.compile(r"(\\frac\{[^{}]*\})(\d)")
_SQRT_D_RE = re.compile(r"\\sqrt(\d)")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_ASSIGNMENT_RE = re.compile(r"(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w\}?)?=(?!=)")
_WHITESPACE_RE = re.compile(r"\s+")


def normalize_answer(answer: str) -> str:
    r"""Cheap canonical string for an answer: a fast equality check and a grouping key.

    Two answers with the same normalized string are treated as equivalent without calling
    sympy, so every rule below only removes notation that never changes the value:

    - surrounding ``$…$``, ``\(…\)``, ``\[…\]`` and a whole-answer ``\boxed{…}`` are removed;
    - ``\left``/``\right`` (and ``\big``-style sizes), ``\displaystyle``, and the spacing
      commands ``\!``, ``\,``, ``\;``, ``\:``, ``\>``, ``\ ``, ``~`` are removed;
    - ``\dfrac``/``\tfrac`` become ``\frac``; the shorthands ``\frac12``, ``\frac1{x}``,
      ``\frac{x}2`` and ``\sqrt2`` get explicit braces;
    - degree marks ``^{\circ}``, ``^\circ``, ``\degree`` and the currency sign ``\$`` are removed;
      ``\%`` becomes ``%`` (kept: math-verify, not this function, decides what 50% equals);
    - ``\text{…}``, ``\textbf{…}``, ``\mbox{…}``, ``\mathrm{…}`` (and similar) keep only
      their content, so ``\text{east}`` is ``east``;
    - all whitespace is removed;
    - ``{,}`` becomes ``,``, and thousands separators in a plain number are dropped
      (``1,000`` → ``1000``, but ``1,2`` stays a list);
    - a leading single-variable assignment is dropped (``x=3`` → ``3``, ``\theta=30`` → ``30``),
      unless the right-hand side has another ``=``; so ``x = 3`` and ``y = 3`` both become ``3``;
    - a trailing ``.`` is removed.

    Args:
        answer: An extracted answer (see `extract_answer`).

    Returns:
        The normalized string (possibly empty).
    """
    out = answer.strip()
    out = _strip_wrappers(out)
    out = _SPACING_RE.sub("", out)
    out = _LEFT_RIGHT_RE.sub("", out)
    out = _DISPLAY_RE.sub("", out)
    out = _FRAC_ALIAS_RE.sub(r"\\frac", out)
    out = _DEGREE_RE.sub("", out)
    out = out.replace("\\$", "").replace("\\%", "%")
    out = _unwrap_text_commands(out)
    out = _WHITESPACE_RE.sub("", out)
    out = _FRAC_DD_RE.sub(r"\\frac{\1}{\2}", out)
    out = _FRAC_D_RE.sub(r"\\frac{\1}", out)
    out = _FRAC_BRACED_D_RE.sub(r"\1{\2}", out)
    out = _SQRT_D_RE.sub(r"\\sqrt{\1}", out)
    out = out.replace("{,}", ",")
    out = out.rstrip(".")
    if _THOUSANDS_RE.fullmatch(out):
        out = out.replace(",", "")
    assignment = _ASSIGNMENT_RE.match(out)
    if assignment and "=" not in out[assignment.end() :] and assignment.end() < len(out):
        out = out[assignment.end() :]
    return out


def _strip_wrappers(text: str) -> str:
    """Remove math delimiters and a box that wrap the whole answer (repeatedly).

    Works on indices into `text` (one slice at the end) and matches braces once, so ten
    thousand nested wrappers cost one pass, not one pass each.
    """
    lo, hi = _strip_span(text, 0, len(text))
    closes: dict[int, int] | None = None
    while True:
        before = (lo, hi)
        for opener, closer in _DELIMS:
            if (
                hi - lo >= len(opener) + len(closer)
                and text.startswith(opener, lo, hi)
                and text.endswith(closer, lo, hi)
            ):
                lo, hi = _strip_span(text, lo + len(opener), hi - len(closer))
                break
        box = _BOXED_RE.match(text, lo, hi)
        if box:
            open_at = _strip_span(text, box.end(), hi)[0]
            if open_at < hi and text[open_at] == "{":
                if closes is None:
                    closes = _match_braces(text)
                if closes.get(open_at) == hi - 1 and not _escaped(text, open_at):
                    lo, hi = _strip_span(text, open_at + 1, hi - 1)
        if (lo, hi) == before:
            return text[lo:hi]


def _strip_span(text: str, lo: int, hi: int) -> tuple[int, int]:
    """`text[lo:hi].strip()` as indices."""
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    return lo, hi


def _escaped(text: str, at: int) -> bool:
    """Whether `text[at]` is the second character of a backslash pair (counted from 0)."""
    run = 0
    while at - run - 1 >= 0 and text[at - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def _unwrap_text_commands(text: str) -> str:
    """Replace `\\text{word}`-style wrappers by their content (brace-matched), in one pass.

    Commands are unwrapped left to right; the first one whose brace is never closed stops the
    unwrapping (it and everything after it stay as they are).
    """
    commands = list(_TEXT_CMD_RE.finditer(text))
    if not commands:
        return text
    closes = _match_braces(text)
    cuts: list[tuple[int, int]] = []
    for match in commands:
        open_at = match.end() - 1
        close = closes.get(open_at)
        if close is None or _escaped(text, open_at):
            break
        cuts.append((match.start(), match.end()))
        cuts.append((close, close + 1))
    cuts.sort()
    pieces: list[str] = []
    at = 0
    for start, end in cuts:
        pieces.append(text[at:start])
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


_INT_RE = re.compile(r"[+-]?\d+")
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_SLASH_RE = re.compile(r"([+-]?\d+)/([+-]?\d+)")
_FRAC_RE = re.compile(r"([+-]?)\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}")
_MAX_PLAIN_LEN = 200


def plain_number(normalized: str) -> tuple[Fraction, bool] | None:
    r"""Read a normalized answer as a plain number, exactly.

    Plain numbers are integers, decimals and simple fractions (``a/b`` or ``\frac{a}{b}`` with
    integer ``a``, ``b``, ``b != 0``), optionally signed. They can be compared without sympy.

    Args:
        normalized: Output of `normalize_answer`.

    Returns:
        ``(value, is_integer_literal)``, or ``None`` if the string is not a plain number (or
        is longer than 200 characters, to keep big-integer parsing cheap).
    """
    text = normalized
    if not text or len(text) > _MAX_PLAIN_LEN:
        return None
    if _INT_RE.fullmatch(text):
        return Fraction(int(text)), True
    if _DECIMAL_RE.fullmatch(text):
        return Fraction(text), False
    slash = _SLASH_RE.fullmatch(text)
    frac = _FRAC_RE.fullmatch(text)
    if slash:
        sign, num, den = "", slash.group(1), slash.group(2)
    elif frac:
        sign, num, den = frac.group(1), frac.group(2), frac.group(3)
    else:
        return None
    if int(den) == 0:
        return None
    value = Fraction(int(num), int(den))
    return (-value if sign == "-" else value), False


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------


def split_steps(solution: str, delimiter: str = "\n\n") -> list[str]:
    """Split a solution into reasoning steps for PRM scoring.

    Empty pieces are dropped (DORA's rule). search-and-learn keeps them, which gives a
    partial solution ending in the delimiter a spurious empty last step.

    Args:
        solution: The assistant text so far.
        delimiter: The step delimiter (the policy's stop string).

    Returns:
        The non-empty pieces, in order, without the delimiter.
    """
    if not delimiter:
        raise ValueError("split_steps: delimiter must be a non-empty string, e.g. '\\n\\n'.")
    return [piece for piece in solution.split(delimiter) if piece != ""]


# --------------------------------------------------------------------------------------------
# Voting
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerGroup:
    """One equivalence class of candidate answers.

    Attributes:
        answer: The answer text of the group's representative (its highest-scoring member;
            the first member when there are no scores).
        members: Candidate indices in the class, ascending.
        count: ``len(members)``.
        weight: Sum of the members' scores (``float(count)`` when voting without scores).
    """

    answer: str
    members: list[int]
    count: int
    weight: float


@dataclass(frozen=True)
class VoteResult:
    """Outcome of `vote`.

    Attributes:
        answer: The winning answer text, or ``None`` if no candidate had an answer.
        rule: The rule that was applied.
        winner: Index of the candidate that represents the winning group (highest score in
            the group, first member on ties or without scores), or ``None``.
        groups: All groups, best first under ``rule`` (ties keep first-seen order).
    """

    answer: str | None
    rule: VoteRule
    winner: int | None
    groups: list[AnswerGroup]


def vote(
    answers: Sequence[str | None],
    scores: Sequence[float] | None,
    group_ids: Sequence[int],
    rule: VoteRule = "weighted",
) -> VoteResult:
    """Pick a final answer from candidates that were grouped into equivalence classes.

    Candidates without an answer (``None``, group id ``-1``) never win; if every candidate is
    ``None`` the result's answer is ``None``. Ties between groups go to the group seen first
    (lowest first member), matching search-and-learn's ``pred_maj``.

    Args:
        answers: Extracted answer per candidate.
        scores: One score per candidate (e.g. last-step PRM score). ``None`` only for
            ``rule="majority"``.
        group_ids: Equivalence-class id per candidate, ``-1`` exactly for ``None`` answers
            (as returned by `Grader.group`).
        rule: ``"weighted"`` (sum of scores), ``"majority"`` (count) or ``"best"`` (max score).

    Returns:
        The winner and all groups, ranked.

    Raises:
        ValueError: On length mismatches, missing scores for a scored rule, NaN scores, an
            unknown rule, or group ids inconsistent with ``None`` answers.

    Examples:
        Four candidates, two of them equivalent (group 0), one without an answer:

        >>> answers, groups = ["42", "41", "42.0", None], [0, 1, 0, -1]
        >>> scores = [0.9, 0.95, 0.3, 0.1]
        >>> result = vote(answers, scores, groups)
        >>> result.answer, [(g.answer, g.count, g.weight) for g in result.groups]
        ('42', [('42', 2, 1.2), ('41', 1, 0.95)])
        >>> vote(answers, scores, groups, rule="best").answer
        '41'
        >>> vote(answers, None, groups, rule="majority").winner
        0
    """
    _check_vote_inputs(answers, scores, group_ids, rule)
    by_id: dict[int, list[int]] = {}
    for index, gid in enumerate(group_ids):
        if gid >= 0:
            by_id.setdefault(gid, []).append(index)
    if not by_id:
        return VoteResult(answer=None, rule=rule, winner=None, groups=[])

    def score(i: int) -> float:
        return 1.0 if scores is None else float(scores[i])

    groups: list[AnswerGroup] = []
    best_of: list[float] = []
    for members in by_id.values():  # dict keeps first-seen order
        rep = max(members, key=score) if scores is not None else members[0]
        groups.append(
            AnswerGroup(
                answer=str(answers[rep]),
                members=members,
                count=len(members),
                weight=math.fsum(score(i) for i in members),
            )
        )
        best_of.append(score(rep))

    def key(position: int) -> float:
        group = groups[position]
        if rule == "weighted":
            return group.weight
        if rule == "majority":
            return float(group.count)
        return best_of[position]

    order = sorted(range(len(groups)), key=lambda p: (-key(p), p))  # stable: first seen wins
    ranked = [groups[p] for p in order]
    top = ranked[0]
    winner = max(top.members, key=score) if scores is not None else top.members[0]
    return VoteResult(answer=answers[winner], rule=rule, winner=winner, groups=ranked)


def _check_vote_inputs(
    answers: Sequence[str | None],
    scores: Sequence[float] | None,
    group_ids: Sequence[int],
    rule: str,
) -> None:
    """Fail early with a message that says what to pass instead."""
    if rule not in VOTE_RULES:
        raise ValueError(f"vote: unknown rule {rule!r}; use one of {', '.join(VOTE_RULES)}.")
    if len(group_ids) != len(answers):
        raise ValueError(
            f"vote: got {len(answers)} answers but {len(group_ids)} group ids; "
            "pass one id per answer (Grader.group(answers))."
        )
    if scores is None:
        if rule != "majority":
            raise ValueError(f"vote: rule {rule!r} needs scores; pass scores or rule='majority'.")
    else:
        if len(scores) != len(answers):
            raise ValueError(
                f"vote: got {len(answers)} answers but {len(scores)} scores; pass one per answer."
            )
        if any(math.isnan(float(s)) for s in scores):
            raise ValueError("vote: scores contain NaN; drop or re-score those candidates.")
    for index, (ans, gid) in enumerate(zip(answers, group_ids, strict=True)):
        if (ans is None) != (gid < 0):
            raise ValueError(
                f"vote: candidate {index} has answer {ans!r} but group id {gid}; "
                "use -1 exactly for None answers."
            )
