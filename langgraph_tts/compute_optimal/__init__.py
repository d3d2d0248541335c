"""Compute-optimal per-difficulty strategy selection (Snell et al. 2024, arXiv 2408.03314).

`table` holds the pure math (difficulty bins, the per-(bin, budget) strategy table, 2-fold
cross-validation), `tablefile` reads and writes tables, `graph` the nodes and the prebuilt
graph, `calibrate` fits a table from evaluation runs. Graph and calibration names are imported
lazily: `langgraph_tts.context` imports `table`, and `graph` imports the context.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .plan import BudgetPlan, PlanEntry, fit_plans
from .table import (
    CandidateRun,
    Cell,
    Choice,
    Selection,
    StrategyTable,
    assign_bin,
    candidates,
    candidates_for,
    fit_bins,
    fit_table,
    format_plans,
    format_table,
    parse_table,
)

_LAZY = {
    "ComputeOptimalNodes": "langgraph_tts.compute_optimal.graph",
    "ComputeOptimalState": "langgraph_tts.compute_optimal.graph",
    "DifficultyEstimate": "langgraph_tts.compute_optimal.graph",
    "build_compute_optimal_graph": "langgraph_tts.compute_optimal.graph",
    "create_compute_optimal_graph": "langgraph_tts.compute_optimal.graph",
    "measure_difficulty": "langgraph_tts.compute_optimal.graph",
    "resolve_table": "langgraph_tts.compute_optimal.graph",
    "calibrate": "langgraph_tts.compute_optimal.calibrate",
    "load_table": "langgraph_tts.compute_optimal.tablefile",
    "write_table": "langgraph_tts.compute_optimal.tablefile",
}

__all__ = [
    "BudgetPlan",
    "CandidateRun",
    "Cell",
    "Choice",
    "ComputeOptimalNodes",
    "ComputeOptimalState",
    "DifficultyEstimate",
    "PlanEntry",
    "Selection",
    "StrategyTable",
    "assign_bin",
    "build_compute_optimal_graph",
    "calibrate",
    "candidates",
    "candidates_for",
    "create_compute_optimal_graph",
    "fit_bins",
    "fit_plans",
    "fit_table",
    "format_plans",
    "format_table",
    "load_table",
    "measure_difficulty",
    "parse_table",
    "resolve_table",
    "write_table",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .calibrate import calibrate
    from .graph import (
        ComputeOptimalNodes,
        ComputeOptimalState,
        DifficultyEstimate,
        build_compute_optimal_graph,
        create_compute_optimal_graph,
        measure_difficulty,
        resolve_table,
    )
    from .tablefile import load_table, write_table
