"""Robust parsing of what SCALE asks the model for: outlines, version choices, difficulties.

Models wrap JSON in fences, add a sentence before it, write LaTeX with single backslashes
(`"\\frac{a}{b}"` is invalid JSON, or worse, `\\f` silently becomes a form feed), answer
"0.7/1" or "70%" for a score, or ignore the format altogether. Every parser here either
returns a clean value or raises a `ValueError` subclass saying what was wrong, so the caller can
retry a bounded number of times and then fall back.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import RootModel, StrictStr, ValidationError, field_validator

__all__ = [
    "DifficultyParseError",
    "Outline",
    "OutlineParseError",
    "VersionParseError",
    "extract_json_object",
    "fix_latex_backslashes",
    "parse_difficulty",
    "parse_outline",
    "parse_version_choice",
]


class OutlineParseError(ValueError):
    """The reply holds no outline of the form {"step1": "...", "step2": "...", ...}."""


class DifficultyParseError(ValueError):
    """The reply holds no difficulty score in [0, 1]."""


class VersionParseError(ValueError):
    """The reply names no valid outline version."""


_STEP_KEY = re.compile(r"step[\s_-]*(\d+)", re.IGNORECASE)
_THINK_END = "</think>"


class Outline(RootModel[dict[str, StrictStr]]):
    """An ordered outline: keys step1..stepK in this order, each a non-empty string.

    Key spelling is forgiven (`Step 1`, `step_1`), order and completeness are not: a missing or
    out-of-order step means the model lost track, so the version is rejected and re-sampled.
    """

    @field_validator("root")
    @classmethod
    def _ordered_steps(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("the outline has no steps")
        for position, (key, text) in enumerate(value.items(), start=1):
            match = _STEP_KEY.fullmatch(key.strip())
            if match is None or int(match.group(1)) != position:
                raise ValueError(f"key {key!r} at position {position}; expected 'step{position}'")
            if not text.strip():
                raise ValueError(f"{key} is empty")
        return value

    @property
    def steps(self) -> list[str]:
        """The sub-problem texts in order, stripped."""
        return [text.strip() for text in self.root.values()]


def _strip_thinking(text: str) -> str:
    """Drop a reasoning block a thinking model left in the content."""
    if _THINK_END in text:
        return text.rsplit(_THINK_END, 1)[1]
    return text


def extract_json_object(text: str) -> str:
    """The JSON object text inside a reply: fenced ```json block, any fence, or outer braces.

    Raises:
        OutlineParseError: no `{ ... }` found at all.
    """
    body = _strip_thinking(text).strip()
    lowered = body.lower()
    if "```json" in lowered:
        start = lowered.rfind("```json") + len("```json")
        body = body[start:].split("```", 1)[0]
    elif body.count("```") >= 2:
        body = body.split("```", 2)[1]
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise OutlineParseError("no JSON object in the reply")
    return body[start : end + 1]


_ESCAPE = re.compile(r'\\\\|\\["/]|\\u[0-9a-fA-F]{4}(?![0-9a-zA-Z])|\\[bfnrt](?![a-zA-Z])|\\')


def fix_latex_backslashes(text: str) -> str:
    """Double the single backslashes of LaTeX so that JSON keeps them as written.

    Kept as they are: `\\\\` (already escaped), `\\"`, `\\/`, `\\uXXXX` and `\\n`, `\\t`, ...
    when no letter follows (a real JSON escape). Everything else, such as `\\frac`, `\\times`,
    `\\neq`, `\\(`, gets a second backslash: `\\f` + `rac` is a command, not a form feed.
    """

    def repl(match: re.Match[str]) -> str:
        token = match.group(0)
        return "\\\\" if token == "\\" else token

    return _ESCAPE.sub(repl, text)


_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _load_json(candidate: str) -> Any:
    """Parse with the backslash fix first (so LaTeX survives), then as written."""
    errors: list[str] = []
    for attempt in (fix_latex_backslashes(candidate), candidate):
        for text in (attempt, _TRAILING_COMMA.sub(r"\1", attempt)):
            try:
                return json.loads(text)
            except json.JSONDecodeError as err:
                errors.append(str(err))
    raise OutlineParseError(f"invalid JSON ({errors[0]})")


def parse_outline(text: str) -> list[str]:
    """The ordered sub-problems of an outline reply.

    Args:
        text: The model's reply, e.g. ``'Here it is:\\n```json\\n{"step1": "Find $\\frac{a}{b}$"}```'``.

    Returns:
        The sub-problem texts, in order (at least one).

    Raises:
        OutlineParseError: no JSON object, invalid JSON, or not a valid step mapping.
    """
    data = _load_json(extract_json_object(text))
    try:
        return Outline.model_validate(data).steps
    except ValidationError as err:
        first = err.errors()[0]
        msg = first.get("msg", str(err))
        raise OutlineParseError(f"not an outline: {msg}") from err


_NUMBER = re.compile(r"(?<![\w.])([-+]?(?:\d+(?:\.\d+)?|\.\d+))(?:\s*(%)|\s*/\s*(\d+(?:\.\d+)?))?")


def parse_difficulty(text: str) -> float:
    """The difficulty score in a reply: its first number, as a value in [0, 1].

    `0.7`, `0.7/1`, `7/10`, `70%` and `Difficulty: 0.7.` all give 0.7. Digits inside words
    (`step2`) are skipped. No number, a number outside [0, 1] (`7`, `1.5`, `-0.2`) or only
    words (`high`) raise, so the caller retries.

    Raises:
        DifficultyParseError: no usable score.
    """
    body = _strip_thinking(text)
    match = _NUMBER.search(body)
    if match is None:
        raise DifficultyParseError(f"no number in {body.strip()[:40]!r}")
    value = float(match.group(1))
    if match.group(2):
        value /= 100.0
    elif match.group(3):
        denominator = float(match.group(3))
        if denominator == 0:
            raise DifficultyParseError(f"score {match.group(0)!r} divides by zero")
        value /= denominator
    if not 0.0 <= value <= 1.0:
        raise DifficultyParseError(f"score {match.group(0).strip()!r} is outside [0, 1]")
    return value


_VERSION = re.compile(r"version\s*[_#-]?\s*(\d+)", re.IGNORECASE)


def parse_version_choice(text: str, count: int) -> int:
    """The 1-based version number named first in a selection reply (`version3`, `Version 3`).

    Raises:
        VersionParseError: no `versionK` with 1 <= K <= count.
    """
    body = _strip_thinking(text)
    match = _VERSION.search(body)
    if match is None:
        raise VersionParseError(f"no versionK in {body.strip()[:40]!r}")
    choice = int(match.group(1))
    if not 1 <= choice <= count:
        raise VersionParseError(f"version{choice} does not exist (1..{count})")
    return choice
