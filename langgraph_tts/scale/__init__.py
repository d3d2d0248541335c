"""SCALE (arXiv 2512.00466) as LangGraph nodes and a prebuilt graph.

Decompose a problem into sub-problems, score each one's difficulty, solve easy ones with a fast
System-1 (non-thinking) and hard ones with a slow System-2 (thinking, or a search strategy run
as a subgraph), passing each answer on to the next sub-problem. See docs/scale.md.
"""

from .graph import build_scale_graph, create_scale_graph
from .nodes import ScaleNodes, route_subproblem
from .parsing import parse_difficulty, parse_outline, parse_version_choice
from .state import ScaleInput, ScaleOutput, ScaleState, SubProblem

__all__ = [
    "ScaleInput",
    "ScaleNodes",
    "ScaleOutput",
    "ScaleState",
    "SubProblem",
    "build_scale_graph",
    "create_scale_graph",
    "parse_difficulty",
    "parse_outline",
    "parse_version_choice",
    "route_subproblem",
]
