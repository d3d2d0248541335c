"""Run-time settings of the prebuilt graphs (LangGraph `context_schema`), built from the registry.

A graph's context schema is the shared settings (`CommonSettings`, `SearchLoopSettings`) plus
the own settings of every strategy it can run, so Studio shows each with its description and
default, and a strategy registered before a graph is built brings its settings along. Every
field has the papers' value as its default; endpoints fall back to environment variables
(`LANGGRAPH_TTS_BASE_URL`, ...), which is how `langgraph dev` and the command line pick up a
deployment.

`SearchContext`, `ScaleContext`, `ComputeOptimalContext` and `SolveContext` are the schemas of
the four prebuilt graphs for the built-in strategies.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, create_model

from .errors import ConfigError
from .settings import ENV_SETTINGS, CommonSettings, SearchLoopSettings, Settings, overlay
from .strategies import get_strategy, registry_version, search_strategy_names, strategy_names

__all__ = [
    "ENV_SETTINGS",
    "ComputeOptimalContext",
    "ContextBase",
    "ScaleContext",
    "SearchContext",
    "SolveContext",
    "context_model",
    "with_overrides",
]

GRAPH_OF = {"scale": "create_scale_graph", "compute_optimal": "create_compute_optimal_graph"}


def _summary_only(schema: dict[str, Any], cls: type) -> None:
    """The JSON schema (what Studio shows) describes the model by its docstring's first
    paragraph, without the examples."""
    if isinstance(schema.get("description"), str):
        schema["description"] = schema["description"].split("\n\n")[0]


class ContextBase(CommonSettings, SearchLoopSettings):
    """Base of the graphs' context schemas; `runs` is what the graph's `strategy` may be."""

    model_config = ConfigDict(json_schema_extra=_summary_only)
    runs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **data: Any) -> None:
        strategy = data.get("strategy")
        if isinstance(strategy, str) and self.runs and strategy not in self.runs:
            get_strategy(strategy)  # unknown: names the closest registered one
            where = GRAPH_OF.get(strategy, "create_search_graph")
            msg = (
                f"strategy {strategy!r} is not run by this graph (valid here: "
                f"{', '.join(self.runs)}); use {where} or the solve_math graph"
            )
            raise ConfigError(msg)
        super().__init__(**data)

    def validate_rules(self) -> None:
        get_strategy(self.strategy).validate(self)


def _settings_classes(names: Sequence[str]) -> list[type[Settings]]:
    """The distinct settings models of `names`, without one that another one extends."""
    found: list[type[Settings]] = []
    for name in names:
        cls = get_strategy(name).settings
        if cls not in found:
            found.append(cls)
    return [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]


def _declared_by(cls: type[Settings], name: str) -> type:
    """The class in `cls`'s MRO that declares field `name`."""
    return next(c for c in cls.__mro__ if name in inspect.get_annotations(c))


def _check_no_clash(classes: Sequence[type[Settings]]) -> None:
    """Two settings models may share a field only by inheriting one declaration of it."""
    owner = {n: _declared_by(ContextBase, n) for n in ContextBase.model_fields if n != "strategy"}
    for cls in classes:
        for name in cls.model_fields:
            declared = _declared_by(cls, name)
            other = owner.setdefault(name, declared)
            if other is not declared:
                msg = (
                    f"setting {name!r} is defined by both {other.__name__} and {declared.__name__}"
                )
                raise ConfigError(msg)


@lru_cache(maxsize=32)
def _model(name: str, runs: tuple[str, ...], default: str, version: int) -> type[ContextBase]:
    included = list(dict.fromkeys([*search_strategy_names(), *runs]))
    bases = _settings_classes(included)
    _check_no_clash(bases)
    choices: Any = Literal[runs]
    parents: Any = (ContextBase, *bases)
    model: type[ContextBase] = create_model(
        name,
        __base__=parents,
        __doc__=f"Settings of one run of the graph that runs {', '.join(runs)}.",
        strategy=(
            choices,
            Field(description="Test-time scaling strategy (docs/strategies.md)."),
        ),
    )
    model.model_fields["strategy"].default = default
    model.model_rebuild(force=True)
    model.runs = runs
    return model


def context_model(
    runs: Sequence[str] | None = None, *, default: str | None = None, name: str = "Context"
) -> type[ContextBase]:
    """The context schema of a graph running `runs` (default: every registered strategy)."""
    names = tuple(runs) if runs is not None else strategy_names()
    return _model(name, names, default or names[0], registry_version())


def search_context_model() -> type[ContextBase]:
    """Schema of the search graph: whole-solution and step-level strategies."""
    return context_model(search_strategy_names(), default="dora", name="SearchContext")


def scale_context_model() -> type[ContextBase]:
    """Schema of the SCALE graph (its System-2 searches use the search settings too)."""
    return context_model(("scale",), name="ScaleContext")


def compute_optimal_context_model() -> type[ContextBase]:
    """Schema of the compute-optimal graph."""
    return context_model(("compute_optimal",), name="ComputeOptimalContext")


def solve_context_model() -> type[ContextBase]:
    """Schema of the solve_math graph: every registered strategy."""
    return context_model(None, default="dora", name="SolveContext")


SearchContext: type[ContextBase] = search_context_model()
SearchContext.__doc__ = """Settings of one run of the search graph: the shared settings and those of
every `sample` and `search` strategy, each with the papers' default.

Examples:
    >>> ctx = SearchContext(strategy="rebase", budget=8)
    >>> ctx.strategy, ctx.budget, ctx.rebase_temperature, ctx.max_step_tokens
    ('rebase', 8, 0.1, 256)
    >>> SearchContext(budgett=8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    langgraph_tts.errors.ConfigError: unknown setting 'budgett'; did you mean 'budget'? Valid: ...
    >>> SearchContext(budget=0)
    Traceback (most recent call last):
        ...
    langgraph_tts.errors.ConfigError: invalid setting: budget: Input should be greater than 0
"""

ScaleContext: type[ContextBase] = scale_context_model()
ScaleContext.__doc__ = """Settings of one SCALE run: the search settings (for System-2 searches)
and SCALE's own (`tau`, the System-1/System-2 models and sampling, ...).

Examples:
    >>> ctx = ScaleContext(tau=0.3, system2_strategy="dora")
    >>> ctx.strategy, ctx.tau, ctx.system2_strategy, ctx.system2_budget
    ('scale', 0.3, 'dora', 4)
    >>> ScaleContext(strategy="dora")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    langgraph_tts.errors.ConfigError: strategy 'dora' is not run by this graph (valid here: ...
"""

ComputeOptimalContext: type[ContextBase] = compute_optimal_context_model()
ComputeOptimalContext.__doc__ = """Settings of one compute-optimal run: the search settings and
the strategy table with its difficulty estimate (`table`, `difficulty_samples`).

Examples:
    >>> ctx = ComputeOptimalContext(budget=32)
    >>> ctx.strategy, ctx.budget, ctx.table is None
    ('compute_optimal', 32, True)
"""

SolveContext: type[ContextBase] = solve_context_model()
SolveContext.__doc__ = """Settings of one run of the solve_math graph: every registered strategy
and its settings; `strategy` picks the one that runs.

Examples:
    >>> SolveContext().strategy
    'dora'
    >>> ctx = SolveContext(strategy="scale", tau=0.7)
    >>> ctx.strategy, ctx.tau, ctx.budget
    ('scale', 0.7, 16)
    >>> with_overrides(ctx, budget=4).budget  # a copy, validated again
    4
"""


def with_overrides(ctx: Settings, **overrides: Any) -> Any:
    """A copy of `ctx` with some fields replaced (validated again); unknown names fail."""
    return overlay(ctx, overrides, strict=True)
