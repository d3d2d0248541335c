"""The strategy registry: one `Strategy` per module, registered by name.

The CLI's choices, the graphs' context schemas (what Studio shows), compute-optimal's
candidates and the docs' tables all derive from this registry. Adding a strategy is one new
module and one line in `BUILTIN` (or `register(MyStrategy())` from user code, before the
graphs are built).
"""

from __future__ import annotations

from .base import Frontier, Kind, NoSettings, Strategy, VoteRule, Width
from .beam import BeamSearch, BeamWidthSettings
from .best_of_n import BestOfN
from .compute_optimal import ComputeOptimal, ComputeOptimalSettings
from .cot import ChainOfThought
from .dora import DORA, DoraSettings
from .dvts import DVTS
from .particle_filtering import ParticleFiltering, ParticleFilteringSettings
from .rebase import REBASE, SoftmaxSettings
from .scale import Scale, ScaleSettings
from .self_consistency import SelfConsistency

__all__ = [
    "BUILTIN",
    "DORA",
    "DVTS",
    "REBASE",
    "BeamSearch",
    "BeamWidthSettings",
    "BestOfN",
    "ChainOfThought",
    "ComputeOptimal",
    "ComputeOptimalSettings",
    "DoraSettings",
    "Frontier",
    "Kind",
    "NoSettings",
    "ParticleFiltering",
    "ParticleFilteringSettings",
    "Scale",
    "ScaleSettings",
    "SelfConsistency",
    "SoftmaxSettings",
    "Strategy",
    "VoteRule",
    "Width",
    "get_strategy",
    "register",
    "registry_version",
    "search_strategy_names",
    "strategy_names",
    "unregister",
]

BUILTIN: tuple[Strategy, ...] = (
    ChainOfThought(),
    SelfConsistency(),
    BestOfN(),
    BeamSearch(),
    DVTS(),
    REBASE(),
    DORA(),
    ParticleFiltering(),
    Scale(),
    ComputeOptimal(),
)

_REGISTRY: dict[str, Strategy] = {}
_VERSION = [0]


def register(strategy: Strategy, *, replace: bool = False) -> Strategy:
    """Add a strategy; graphs built afterwards accept its name and its settings.

    Examples:
        A variant of best-of-N that draws twice the budget:

        >>> from langgraph_tts import create_search_graph
        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> class BestOfTwiceN(BestOfN):
        ...     name = "best_of_2n"
        ...     summary = "best-of-N with twice the samples"
        ...
        ...     def rollouts(self, ctx):
        ...         return 2 * ctx.budget
        >>> register(BestOfTwiceN()).name
        'best_of_2n'
        >>> graph = create_search_graph("best_of_2n", **sim_clients(seed=2), budget=4, seed=0)
        >>> graph.invoke({"problem": "What is 7 times 6?"})["ledger"]["samples"]
        8
        >>> register(BestOfTwiceN())
        Traceback (most recent call last):
            ...
        langgraph_tts.errors.ConfigError: a strategy named 'best_of_2n' is already registered
        >>> unregister("best_of_2n")
    """
    from ..errors import ConfigError

    if not replace and strategy.name in _REGISTRY:
        raise ConfigError(f"a strategy named {strategy.name!r} is already registered")
    if strategy.kind not in ("sample", "search", "graph"):
        raise ConfigError(f"strategy kind must be sample, search or graph, got {strategy.kind!r}")
    _REGISTRY[strategy.name] = strategy
    _VERSION[0] += 1
    return strategy


def unregister(name: str) -> None:
    """Remove a registered strategy (tests, plugins that clean up)."""
    _REGISTRY.pop(name, None)
    _VERSION[0] += 1


def registry_version() -> int:
    """Changes whenever the registry does (context schemas are cached on it)."""
    return _VERSION[0]


def get_strategy(name: str) -> Strategy:
    """The strategy named `name`; an unknown name names the closest known one.

    Examples:
        >>> get_strategy("dora").kind, get_strategy("dora").needs_embeddings
        ('search', True)
    """
    found = _REGISTRY.get(name)
    if found is None:
        from ..settings import check_keys

        check_keys([name], _REGISTRY, where="strategy")
    return _REGISTRY[name]


def strategy_names(*kinds: Kind) -> tuple[str, ...]:
    """Registered names, in registration order, of the given kinds (all if none given)."""
    return tuple(n for n, s in _REGISTRY.items() if not kinds or s.kind in kinds)


def search_strategy_names() -> tuple[str, ...]:
    """Strategies the search graph runs (whole-solution sampling and step-level search)."""
    return strategy_names("sample", "search")


for _builtin in BUILTIN:
    register(_builtin)
