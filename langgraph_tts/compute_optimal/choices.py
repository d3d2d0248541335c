"""Candidate θ of compute-optimal selection: a strategy and its beam width, from the registry."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import ConfigError
from ..strategies import Width, get_strategy, strategy_names

__all__ = ["CandidateStrategy", "Choice", "candidates", "candidates_for"]

CandidateStrategy = str
"""A registered strategy with compute-optimal candidates (`Strategy.table_choices`)."""


class Choice(BaseModel):
    """One candidate θ: a search strategy and its hyper-parameters.

    `beam_width` is beam search's and DVTS's M: a number, or `"sqrt"` for M = round(√N) of
    the run's budget N (paper §4.3). Other settings come from the run's context.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: CandidateStrategy
    beam_width: Annotated[int, Field(gt=0)] | Literal["sqrt"] | None = None

    @field_validator("strategy")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in _choices():
            known = ", ".join(_choices())
            raise ValueError(f"{value!r} is not a candidate strategy; known: {known}")
        return value

    @model_validator(mode="after")
    def _width_only_for_beams(self) -> Choice:
        widths = _choices()[self.strategy]
        if None not in widths and self.beam_width is None:
            raise ValueError(f"{self.strategy} needs beam_width (a number or 'sqrt')")
        if widths == (None,) and self.beam_width is not None:
            raise ValueError(f"beam_width is only for beam and dvts, not {self.strategy}")
        return self

    @property
    def name(self) -> str:
        """Short label: `best_of_n`, `beam(M=sqrt)`, `dvts(M=4)`, ..."""
        return self.strategy if self.beam_width is None else f"{self.strategy}(M={self.beam_width})"

    def width_for(self, budget: int) -> int | None:
        """M for a run with budget N (None for strategies without a beam width)."""
        if self.beam_width == "sqrt":
            return max(1, round(math.sqrt(budget)))
        return self.beam_width


def _choices() -> dict[str, tuple[Width, ...]]:
    """Registered strategies with candidates, and the beam widths each contributes."""
    found = ((n, get_strategy(n).table_choices) for n in strategy_names())
    return {name: widths for name, widths in found if widths}


def candidates() -> dict[str, tuple[Choice, ...]]:
    """What each strategy name expands to, from the registry (paper §4.3: BoN weighted, beam
    search with M = √N and M = 4; DVTS with search-and-learn's M = 4; REBASE and DORA with the
    context's settings). The order is the simplicity order used to break ties."""
    return {
        name: tuple(Choice(strategy=name, beam_width=w) for w in widths)
        for name, widths in _choices().items()
    }


def candidates_for(strategies: Iterable[str], budget: int) -> list[Choice]:
    """The candidates θ of `strategies` at budget N, without duplicates.

    Two θ that run the same search at this N (beam with M = √16 and M = 4) are one candidate;
    the first listed is kept.

    Raises:
        ConfigError: an unknown strategy name.
    """
    out: list[Choice] = []
    seen: set[tuple[str, int | None]] = set()
    table = candidates()
    for name in strategies:
        if name not in table:
            msg = f"unknown candidate strategy {name!r}; known: {', '.join(table)}"
            raise ConfigError(msg)
        for choice in table[name]:
            key = (choice.strategy, choice.width_for(budget))
            if key not in seen:
                seen.add(key)
                out.append(choice)
    return out
