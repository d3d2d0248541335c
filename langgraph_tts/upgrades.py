"""Settings added after results were first stored, and when they change nothing.

A resumed evaluation refuses rows written under other settings, and a sweep's cells are keyed
by a fingerprint of the settings. A setting added by an upgrade would make every earlier run
look like another run's, so each added setting comes with the rule for when a run behaves as
runs did before the setting existed; there it is left out of comparisons and fingerprints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .strategies import get_strategy, strategy_names

__all__ = ["ADDED_SETTINGS", "legacy_settings"]


def _cancels(s: Mapping[str, Any]) -> bool:
    """Whether a run stops streamed rounds early (search/nodes.py `_early_stop`): adaptive
    whole-solution sampling that votes by counts."""
    name = s.get("strategy")
    if not s.get("adaptive") or name not in strategy_names():
        return False
    spec = get_strategy(str(name))
    vote = s.get("vote", "default")
    rule = spec.default_vote if vote == "default" else vote
    return spec.kind == "sample" and rule == "majority"


ADDED_SETTINGS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "adaptive_cancel": lambda s: s.get("adaptive_cancel") is False or not _cancels(s),
    "bin_budgets": lambda s: s.get("strategy") != "compute_optimal",
}
"""Added setting -> whether a run with these settings behaves as before it existed."""


def legacy_settings(values: Mapping[str, Any]) -> set[str]:
    """The `ADDED_SETTINGS` among `values` that do not change what the run does.

    Examples:
        >>> sorted(legacy_settings({"strategy": "rebase", "adaptive": True, "adaptive_cancel": True}))
        ['adaptive_cancel']
        >>> legacy_settings(
        ...     {"strategy": "self_consistency", "adaptive": True, "adaptive_cancel": True}
        ... )
        set()
    """
    return {k for k, same in ADDED_SETTINGS.items() if k in values and same(values)}
