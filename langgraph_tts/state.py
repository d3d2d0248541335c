"""Graph state of the search graph: the whole search tree, with explicit reducers.

The tree is a list of `TreeNode`s indexed by id (node 0 is the root: the empty solution), so a
user can inspect, stream and plot why a branch got its rollouts: each node keeps its parent,
step text, PRM score, tokens, finish reason and, for DORA, its semantic uniqueness γ and
final weight.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from .ledger import Ledger, merge_ledgers

__all__ = [
    "FinishReason",
    "SearchInput",
    "SearchOutput",
    "SearchState",
    "TreeNode",
    "merge_nodes",
    "path_ids",
    "path_text",
]

FinishReason = Literal["eos", "length", "empty", "token_cap", "discarded", "budget"]
"""Why a candidate stopped: EOS; cut at its token limit in the final iteration or on a
whole-solution sample (`length`, kept); an empty step; the solution token cap reached
(`token_cap`, kept); a step cut at the per-step cap (`discarded`, DORA code); a hard budget
cap (`budget`)."""


class TreeNode(TypedDict):
    """One node of the search tree: a reasoning step appended to its parent's solution.

    Examples:
        A run's output has the tree (`nodes`, indexed by id) and the finished solutions:

        >>> from langgraph_tts import create_search_graph
        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> graph = create_search_graph("beam", **sim_clients(seed=2), budget=4, seed=0)
        >>> out = graph.invoke({"problem": "What is 7 times 6?"})
        >>> leaf = out["nodes"][out["completed"][0]]
        >>> leaf["depth"], leaf["finish"], leaf["answer"], round(leaf["score"], 3)
        (5, 'eos', '720', 0.968)
        >>> path = [leaf]
        >>> while path[-1]["parent"] is not None:
        ...     path.append(out["nodes"][path[-1]["parent"]])
        >>> [node["id"] for node in path]
        [17, 16, 10, 8, 2, 0]
    """

    id: int
    parent: int | None
    depth: int
    """Steps (tree edges) from the root; the root has depth 0."""
    iteration: int
    """Iteration that generated this node (-1 for the root)."""
    text: str
    """The step text (the whole remaining solution for whole-solution samples)."""
    tokens: int
    """Completion tokens of this step."""
    total_tokens: int
    """Completion tokens of the path from the root, this step included."""
    finish: FinishReason | None
    """None while the candidate is still active."""
    score: float | None
    """Aggregated PRM score of the path (None until scored)."""
    step_scores: list[float] | None
    """Per-step PRM rewards of the path."""
    gamma: float | None
    """DORA's semantic uniqueness γ (diag of the row-softmaxed similarity)."""
    weight: float | None
    """Normalised allocation weight the node received."""
    rollouts: int
    """Rollouts allocated to this node for the next iteration."""
    group: int
    """Subtree id (DVTS) — the index of the root child this node descends from."""
    answer: str | None
    """Extracted final answer of a finished solution."""
    outcome: Literal["step", "eos", "length"]
    """How the sample ended: at the step delimiter, at EOS, or cut at its token limit."""


class SearchInput(TypedDict):
    """What a caller passes in: a `problem`, or chat `messages` whose last human one is it."""

    problem: NotRequired[str]
    """The problem to solve."""
    messages: NotRequired[Annotated[list[AnyMessage], add_messages]]
    """A chat: with no `problem`, the last human message is the problem and the answer is
    appended as an `AIMessage`."""
    subproblem: NotRequired[str]
    """Set by a parent graph that searches one part of its `problem` (SCALE's System-2)."""
    settings: NotRequired[dict[str, Any]]
    """Per-call settings above the run's context, e.g. `{"budget": 8}`: how a parent graph
    configures this graph as a subgraph. Unknown keys fail."""


class SearchOutput(TypedDict, total=False):
    """What a run returns (the full state is available through streaming and checkpoints)."""

    answer: str | None
    result: dict[str, Any]
    ledger: Ledger
    nodes: list[TreeNode]
    completed: list[int]
    messages: Annotated[list[AnyMessage], add_messages]


def merge_nodes(left: list[TreeNode] | None, right: list[TreeNode] | None) -> list[TreeNode]:
    """Reducer: insert new nodes (id == len) and replace updated ones (id < len).

    Nodes are appended in id order; an update may carry only some of a node's keys.
    """
    out = list(left or [])
    for node in right or []:
        nid = node["id"]
        if nid < len(out):
            out[nid] = {**out[nid], **node}
        elif nid == len(out):
            out.append(node)
        else:
            msg = f"node id {nid} skips ahead of the tree (size {len(out)})"
            raise ValueError(msg)
    return out


class SearchState(TypedDict, total=False):
    """State of one search run (one problem).

    Examples:
        Paused before the vote (with a checkpointer), the finished candidates can be read
        before the run goes on:

        >>> from langgraph.checkpoint.memory import InMemorySaver
        >>> from langgraph_tts import create_search_graph
        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> graph = create_search_graph(
        ...     "beam", **sim_clients(seed=2), budget=4, seed=0,
        ...     checkpointer=InMemorySaver(), interrupt_before=["vote"],
        ... )
        >>> thread = {"configurable": {"thread_id": "1"}}
        >>> _ = graph.invoke({"problem": "What is 7 times 6?"}, thread)
        >>> paused = graph.get_state(thread)
        >>> state = paused.values
        >>> paused.next, state["iteration"], state["stop_reason"], state["verifier"]
        (('vote',), 5, 'budget_reached', 'prm')
        >>> [state["nodes"][i]["answer"] for i in state["completed"]]
        ['720', '720', '720', '720']
        >>> graph.invoke(None, thread)["answer"]
        '720'
    """

    problem: str
    messages: Annotated[list[AnyMessage], add_messages]
    subproblem: str
    settings: dict[str, Any]
    question: str
    """The text searched: `subproblem`, else `problem`, else the last human message."""
    reply: bool
    """Whether the answer goes back as an `AIMessage` (the problem came from `messages`)."""
    nodes: Annotated[list[TreeNode], merge_nodes]
    frontier: list[int]
    """Node ids to expand next, with multiplicity (a node listed k times gets k rollouts)."""
    new: list[int]
    """Ids generated by the latest expansion."""
    completed: Annotated[list[int], operator.add]
    """Finished solutions in order of completion (the vote uses the first N)."""
    iteration: int
    done: bool
    stop_reason: str
    embeddings: dict[str, list[float]]
    """Embeddings of the latest iteration's active candidates, keyed by node id (as str)."""
    verifier: str
    """`prm`, `generative_verifier` or `none`: what scored the candidates."""
    adaptive: dict[str, Any]
    """Adaptive compute's bookkeeping (empty when off): the run's N, the current round and its
    width, the allowance and reference in samples, the stopping test's last confidence."""
    ledger: Annotated[Ledger, merge_ledgers]
    started_at: float
    answer: str | None
    result: dict[str, Any]


def path_ids(nodes: list[TreeNode], node_id: int) -> list[int]:
    """Ids from the root's first child down to `node_id`."""
    out: list[int] = []
    cur: int | None = node_id
    while cur is not None and cur != 0:
        out.append(cur)
        cur = nodes[cur]["parent"]
    out.reverse()
    return out


def path_text(nodes: list[TreeNode], node_id: int) -> str:
    """The partial solution ending at `node_id` (the question is not included)."""
    return "".join(nodes[i]["text"] for i in path_ids(nodes, node_id))


def count_by_id(ids: Iterable[int]) -> dict[int, int]:
    """Multiplicity of each id, in first-seen order."""
    out: dict[int, int] = {}
    for i in ids:
        out[i] = out.get(i, 0) + 1
    return out
