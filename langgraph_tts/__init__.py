"""Test-time scaling for LLM math reasoning as LangGraph nodes and prebuilt graphs.

Strategies: chain-of-thought, self-consistency, best-of-N (PRM-weighted), beam search, DVTS,
REBASE, DORA (arXiv 2506.15707), SCALE (arXiv 2512.00466) and compute-optimal per-difficulty
strategy selection (Snell et al., arXiv 2408.03314), against vLLM servers over
OpenAI-compatible HTTP. Attributes are imported lazily so `import langgraph_tts` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # prebuilt graphs
    "create_search_graph": "langgraph_tts.search.graph",
    "build_search_graph": "langgraph_tts.search.graph",
    "create_scale_graph": "langgraph_tts.scale.graph",
    "build_scale_graph": "langgraph_tts.scale.graph",
    "ScaleNodes": "langgraph_tts.scale.nodes",
    "create_math_tool": "langgraph_tts.tool",
    "TTSChatModel": "langgraph_tts.chat",
    "ScaleState": "langgraph_tts.scale.state",
    "route_subproblem": "langgraph_tts.scale.nodes",
    "create_compute_optimal_graph": "langgraph_tts.compute_optimal.graph",
    "build_compute_optimal_graph": "langgraph_tts.compute_optimal.graph",
    "ComputeOptimalNodes": "langgraph_tts.compute_optimal.graph",
    "StrategyTable": "langgraph_tts.compute_optimal.table",
    "create_solve_graph": "langgraph_tts.solve",
    "build_solve_graph": "langgraph_tts.solve",
    "asolve": "langgraph_tts.solve",
    "Solver": "langgraph_tts.solve",
    # nodes and state
    "SearchNodes": "langgraph_tts.search.nodes",
    "SearchState": "langgraph_tts.state",
    "TreeNode": "langgraph_tts.state",
    # settings and strategies
    "SearchContext": "langgraph_tts.context",
    "ScaleContext": "langgraph_tts.context",
    "ComputeOptimalContext": "langgraph_tts.context",
    "SolveContext": "langgraph_tts.context",
    "Strategy": "langgraph_tts.strategies",
    "register_strategy": "langgraph_tts.strategies",
    "get_strategy": "langgraph_tts.strategies",
    # clients
    "ChatPolicy": "langgraph_tts.clients.policy",
    "ChatModelPolicy": "langgraph_tts.clients.chat_model",
    "PoolingPRM": "langgraph_tts.clients.prm",
    "GenerativeVerifier": "langgraph_tts.clients.verifier",
    "OpenAIEmbedder": "langgraph_tts.clients.embed",
    "LocalEmbedder": "langgraph_tts.clients.embed",
    "HashingEmbedder": "langgraph_tts.clients.embed",
    "SamplingParams": "langgraph_tts.clients.types",
    # budget, answers
    "Ledger": "langgraph_tts.ledger",
    "extract_answer": "langgraph_tts.answers",
    "vote": "langgraph_tts.answers",
    "Grader": "langgraph_tts.grading",
    "allocate": "langgraph_tts.allocation",
    # errors
    "TTSError": "langgraph_tts.errors",
    "ConfigError": "langgraph_tts.errors",
    "ServerError": "langgraph_tts.errors",
    "ServerUnavailableError": "langgraph_tts.errors",
}

__all__ = [
    "ChatModelPolicy",
    "ChatPolicy",
    "ComputeOptimalContext",
    "ComputeOptimalNodes",
    "ConfigError",
    "GenerativeVerifier",
    "Grader",
    "HashingEmbedder",
    "Ledger",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "PoolingPRM",
    "SamplingParams",
    "ScaleContext",
    "ScaleNodes",
    "ScaleState",
    "SearchContext",
    "SearchNodes",
    "SearchState",
    "ServerError",
    "ServerUnavailableError",
    "SolveContext",
    "Solver",
    "Strategy",
    "StrategyTable",
    "TTSChatModel",
    "TTSError",
    "TreeNode",
    "allocate",
    "asolve",
    "build_compute_optimal_graph",
    "build_scale_graph",
    "build_search_graph",
    "build_solve_graph",
    "create_compute_optimal_graph",
    "create_math_tool",
    "create_scale_graph",
    "create_search_graph",
    "create_solve_graph",
    "extract_answer",
    "get_strategy",
    "register_strategy",
    "route_subproblem",
    "vote",
]


_RENAMED = {"register_strategy": "register"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'langgraph_tts' has no attribute {name!r}")
    value = getattr(import_module(module), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from .allocation import allocate
    from .answers import extract_answer, vote
    from .chat import TTSChatModel
    from .clients.chat_model import ChatModelPolicy
    from .clients.embed import HashingEmbedder, LocalEmbedder, OpenAIEmbedder
    from .clients.policy import ChatPolicy
    from .clients.prm import PoolingPRM
    from .clients.types import SamplingParams
    from .clients.verifier import GenerativeVerifier
    from .compute_optimal.graph import (
        ComputeOptimalNodes,
        build_compute_optimal_graph,
        create_compute_optimal_graph,
    )
    from .compute_optimal.table import StrategyTable
    from .context import ComputeOptimalContext, ScaleContext, SearchContext, SolveContext
    from .errors import ConfigError, ServerError, ServerUnavailableError, TTSError
    from .grading import Grader
    from .ledger import Ledger
    from .scale.graph import build_scale_graph, create_scale_graph
    from .scale.nodes import ScaleNodes, route_subproblem
    from .scale.state import ScaleState
    from .search.graph import build_search_graph, create_search_graph
    from .search.nodes import SearchNodes
    from .solve import Solver, asolve, build_solve_graph, create_solve_graph
    from .state import SearchState, TreeNode
    from .strategies import Strategy, get_strategy
    from .strategies import register as register_strategy
    from .tool import create_math_tool
