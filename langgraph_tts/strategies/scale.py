"""SCALE (Xiao et al., arXiv 2512.00466): System-1 or System-2 per sub-problem.

Runs in the SCALE graph: decompose the problem, score each sub-problem's difficulty, solve it
fast (System-1) when the score is at most τ and slowly (System-2: a thinking sample, or any
search strategy with its own budget) otherwise.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ..settings import Settings, _check_url
from .base import Strategy

__all__ = ["Scale", "ScaleSettings"]


class ScaleSettings(Settings):
    """τ, decomposition, difficulty scoring, and each system's model and sampling."""

    tau: Annotated[
        float,
        Field(ge=0.0, le=1.0, description="Difficulty threshold: System-2 when score > tau."),
    ] = 0.5
    outline_versions: Annotated[
        int, Field(gt=0, le=32, description="Outline versions sampled by decompose.")
    ] = 8
    outline_selection: Annotated[
        Literal["llm", "vote", "first"],
        Field(
            description="How one outline is chosen: the model picks (SCALE code), a "
            "consistency vote on the number of sub-problems, or the first valid one."
        ),
    ] = "llm"
    difficulty_mode: Annotated[
        Literal["sequential", "upfront"],
        Field(
            description="sequential: assess each sub-problem just before solving it, with "
            "earlier solutions in context (paper); upfront: all at once from descriptions (code)."
        ),
    ] = "sequential"
    force_last_hard: Annotated[
        bool, Field(description="Score the final sub-problem 0.9 (SCALE code).")
    ] = True
    format_retries: Annotated[
        int, Field(ge=0, le=10, description="Retries on unusable outline/difficulty output.")
    ] = 3
    system1_model: Annotated[
        str | None, Field(description="System-1 model (default: the policy model).")
    ] = None
    system1_base_url: Annotated[
        str | None, Field(description="System-1 server (default: base_url).")
    ] = None
    system1_temperature: Annotated[
        float, Field(ge=0.0, le=5.0, description="System-1 temperature (SCALE: 0.7).")
    ] = 0.7
    system1_top_p: Annotated[
        float, Field(gt=0.0, le=1.0, description="System-1 top-p (SCALE: 0.8).")
    ] = 0.8
    system1_top_k: Annotated[int | None, Field(description="System-1 top-k (SCALE: 20).")] = 20
    system1_max_tokens: Annotated[
        int, Field(gt=0, description="System-1 completion token limit.")
    ] = 4096
    system1_thinking: Annotated[
        bool | None,
        Field(description="chat_template_kwargs.enable_thinking for System-1 (None: not sent)."),
    ] = False
    system2_model: Annotated[
        str | None, Field(description="System-2 model (default: the policy model).")
    ] = None
    system2_base_url: Annotated[
        str | None, Field(description="System-2 server (default: base_url).")
    ] = None
    system2_temperature: Annotated[
        float, Field(ge=0.0, le=5.0, description="System-2 temperature (SCALE: 0.6).")
    ] = 0.6
    system2_top_p: Annotated[
        float, Field(gt=0.0, le=1.0, description="System-2 top-p (SCALE: 0.95).")
    ] = 0.95
    system2_top_k: Annotated[int | None, Field(description="System-2 top-k (SCALE: 20).")] = 20
    system2_max_tokens: Annotated[
        int, Field(gt=0, description="System-2 completion token limit.")
    ] = 16384
    system2_thinking: Annotated[
        bool | None,
        Field(description="chat_template_kwargs.enable_thinking for System-2 (None: not sent)."),
    ] = True
    system1_params_b: Annotated[
        float | None,
        Field(ge=0, description="System-1 parameters in billions, for FLOPs (None: policy's)."),
    ] = None
    system2_params_b: Annotated[
        float | None,
        Field(ge=0, description="System-2 parameters in billions, for FLOPs (None: policy's)."),
    ] = None
    system2_strategy: Annotated[
        str,
        Field(
            description="How a System-2 sub-problem is solved: `single` (one thinking "
            "sample, the paper) or any strategy of the search graph over that sub-problem."
        ),
    ] = "single"
    system2_budget: Annotated[
        int, Field(gt=0, le=1024, description="Budget of system2_strategy per sub-problem.")
    ] = 4

    @field_validator("system1_base_url", "system2_base_url")
    @classmethod
    def _system_urls(cls, value: str | None, info: Any) -> str | None:
        return _check_url(value, info.field_name)

    @field_validator("system2_strategy")
    @classmethod
    def _system2_strategy(cls, value: str) -> str:
        from . import search_strategy_names

        valid = ("single", *search_strategy_names())
        if value not in valid:
            raise ValueError(f"must be one of {', '.join(valid)}, got {value!r}")
        return value


class Scale(Strategy):
    """Decompose, assess each sub-problem, route to System-1 or System-2, solve in sequence."""

    name = "scale"
    kind = "graph"
    summary = "System-1 or System-2 per sub-problem, by difficulty threshold tau"
    paper = "arXiv 2512.00466"
    settings = ScaleSettings
    needs_prm = False
