"""The graphs compose as LangGraph users expect: settings, subgraphs, chat, tools, sync, interrupts."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypedDict

import pytest
from fakes import RecordingPolicy
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import Field

from langgraph_tts import (
    TTSChatModel,
    create_compute_optimal_graph,
    create_math_tool,
    create_scale_graph,
    create_search_graph,
    create_solve_graph,
)
from langgraph_tts.allocation import Allocation
from langgraph_tts.cli import main
from langgraph_tts.compute_optimal.table import Cell, Choice, StrategyTable, candidates
from langgraph_tts.context import SearchContext, context_model
from langgraph_tts.errors import ConfigError
from langgraph_tts.ledger import Ledger, merge_ledgers
from langgraph_tts.settings import Settings
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems
from langgraph_tts.strategies import Frontier, Strategy, register, strategy_names, unregister

CONFIG = SimConfig(seed=3)
PROBLEM = make_problems(1, seed=3)[0]


def clients(policy: Any = None) -> dict[str, Any]:
    return {
        "policy": policy or SimPolicy(CONFIG),
        "prm": SimPRM(CONFIG),
        "embedder": SimEmbedder(CONFIG),
    }


def table() -> StrategyTable:
    cells = [
        Cell(bin=b, budget=4, choice=c, problems=1, accuracy=1.0, cv_accuracy=1.0)
        for b, c in {1: Choice(strategy="dora"), 2: Choice(strategy="best_of_n")}.items()
    ]
    return StrategyTable(difficulty_samples=4, thresholds=[0.5], cells=cells)


# --- settings fail loudly, and a run changes only what it sets --------------------------------


TYPO = "unknown setting 'budgett'; did you mean 'budget'?"


@pytest.mark.parametrize(
    "factory",
    [
        lambda: create_search_graph("dora", budgett=8),
        lambda: create_scale_graph(budgett=8),
        lambda: create_compute_optimal_graph(budgett=8),
        lambda: create_solve_graph("dora", budgett=8),
        lambda: create_math_tool("dora", budgett=8),
        lambda: TTSChatModel(strategy="dora", settings={"budgett": 8}),
        lambda: SearchContext(budgett=3),
    ],
    ids=["search", "scale", "compute_optimal", "solve", "tool", "chat_model", "context"],
)
def test_a_typo_in_a_factory_or_context_names_the_closest_setting(factory: Any) -> None:
    with pytest.raises(ConfigError, match=TYPO):
        factory()


def test_a_typo_in_a_run_context_or_in_per_call_settings_fails() -> None:
    graph = create_search_graph("cot", **clients())
    with pytest.raises(ConfigError, match=TYPO):
        graph.invoke({"problem": PROBLEM.text}, context={"budgett": 4})
    with pytest.raises(ConfigError, match=TYPO):
        graph.invoke({"problem": PROBLEM.text, "settings": {"budgett": 4}})
    with pytest.raises(ConfigError, match="did you mean 'dora'"):
        create_search_graph("dorra")


def test_the_cli_rejects_a_typo_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "What is 2+3?", "--set", "budgett=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("langgraph-tts: " + TYPO) and "\n" not in err


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"strategy": "dora", "rounding": "sequential_ceil"}, "use it with strategy rebase"),
        ({"strategy": "scale"}, "not run by this graph"),
        ({"budget": 0}, "budget: Input should be greater than 0"),
        ({"temperature": 9}, "temperature: Input should be less than or equal to 5"),
    ],
)
def test_cross_field_and_value_rules_fail_when_the_graph_is_built(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        create_search_graph(**settings)
    create_search_graph("rebase", rounding="sequential_ceil")  # REBASE's own rule is fine


def test_a_run_context_changes_only_the_fields_it_sets() -> None:
    policy = RecordingPolicy(SimPolicy(CONFIG))
    graph = create_search_graph("cot", **clients(policy), temperature=0.2)
    out = graph.invoke({"problem": PROBLEM.text}, context={"temperature": 0.7})
    assert out["result"]["strategy"] == "cot"  # not the schema's default (dora)
    assert [c.params.temperature for c in policy.calls if c.params] == [0.7]
    out = graph.invoke({"problem": PROBLEM.text}, context={"strategy": "best_of_n", "budget": 3})
    assert (out["result"]["strategy"], out["ledger"]["samples"]) == ("best_of_n", 3)
    assert policy.calls[-1].params is not None and policy.calls[-1].params.temperature == 0.2


# --- composition into users' graphs ------------------------------------------------------------


@dataclasses.dataclass
class UserContext:
    user_id: str


class ParentState(TypedDict, total=False):
    problem: str
    settings: dict[str, Any]
    answer: str | None
    result: dict[str, Any]
    ledger: Annotated[Ledger, merge_ledgers]


def test_a_parent_with_its_own_context_type_runs_the_bound_settings() -> None:
    search = create_search_graph("best_of_n", **clients(), budget=4)
    builder = StateGraph(ParentState, context_schema=UserContext)
    builder.add_node("math", search)
    builder.add_edge(START, "math")
    builder.add_edge("math", END)
    parent = builder.compile()
    out = parent.invoke({"problem": PROBLEM.text}, context=UserContext("u1"))
    assert (out["result"]["strategy"], out["ledger"]["samples"]) == ("best_of_n", 4)
    # a parent passes settings through its state's `settings`
    out = parent.invoke(
        {"problem": PROBLEM.text, "settings": {"budget": 2}}, context=UserContext("u1")
    )
    assert out["ledger"]["samples"] == 2


@pytest.mark.parametrize("factory", [create_search_graph, create_solve_graph, create_scale_graph])
def test_a_messages_state_parent_adds_a_strategy_graph_as_a_node(factory: Any) -> None:
    graph = (
        factory(**clients(), budget=4, outline_versions=1)
        if factory is create_scale_graph
        else factory("best_of_n", **clients(), budget=4)
    )
    builder = StateGraph(MessagesState)
    builder.add_node("math", graph)
    builder.add_edge(START, "math")
    builder.add_edge("math", END)
    out = builder.compile().invoke({"messages": [HumanMessage(PROBLEM.text)]})
    reply = out["messages"][-1]
    assert isinstance(reply, AIMessage) and len(out["messages"]) == 2
    report = reply.response_metadata["langgraph_tts"]
    assert report["ledger"]["samples"] > 0
    assert str(report["answer"]) in str(reply.content)


def test_graphs_without_a_problem_say_what_to_pass() -> None:
    with pytest.raises(ConfigError, match="no problem to solve"):
        create_search_graph(**clients()).invoke({"messages": []})


# --- sync and async alike ----------------------------------------------------------------------


def _graphs() -> Iterator[tuple[str, Any, dict[str, Any]]]:
    yield "search", create_search_graph("dora", **clients(), budget=4, seed=1), {}
    yield "scale", create_scale_graph(**clients(), outline_versions=2, seed=1), {}
    yield (
        "compute_optimal",
        create_compute_optimal_graph(
            **clients(), budget=4, seed=1, table=table(), difficulty_samples=4
        ),
        {},
    )
    yield (
        "solve",
        create_solve_graph("rebase", **clients(), budget=4, seed=1),
        {"strategy": "scale", "seed": 1},
    )


@pytest.mark.parametrize("name", ["search", "scale", "compute_optimal", "solve"])
def test_sync_invoke_matches_ainvoke(name: str) -> None:
    _, graph, context = next(g for g in _graphs() if g[0] == name)
    inputs = {"problem": PROBLEM.text}
    sync = graph.invoke(inputs, context=context or None)
    async_ = asyncio.run(graph.ainvoke(inputs, context=context or None))
    assert sync["answer"] == async_["answer"] and sync["answer"] is not None
    for key in ("samples", "completion_tokens", "policy_requests"):
        assert sync["ledger"][key] == async_["ledger"][key]


def test_sync_stream_carries_custom_events() -> None:
    graph = create_search_graph("dora", **clients(), budget=4, seed=1)
    events = [c for c in graph.stream({"problem": PROBLEM.text}, stream_mode="custom")]
    assert events and all(e["event"] == "iteration" for e in events)


# --- subgraphs: xray, streaming, interrupts ----------------------------------------------------


def test_prebuilt_graphs_are_composed_of_subgraphs() -> None:
    nodes = set(create_solve_graph(**clients()).get_graph(xray=True).nodes)
    for inner in (
        "search:allocate",
        "scale:system2_search:vote",
        "compute_optimal:estimate:vote",
        "compute_optimal:search:embed",
    ):
        assert inner in nodes


async def test_subgraph_custom_events_surface_with_subgraphs_true() -> None:
    graph = create_solve_graph("dora", **clients(), budget=4, seed=1)
    seen: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    async for namespace, chunk in graph.astream(
        {"problem": PROBLEM.text}, stream_mode="custom", subgraphs=True
    ):
        seen.append((namespace, chunk))
    assert seen and all(ns and ns[0].startswith("search:") for ns, _ in seen)
    assert seen[-1][1]["done"] is True


def test_interrupt_before_the_vote_then_resume() -> None:
    graph = create_search_graph(
        "best_of_n", **clients(), budget=4, checkpointer=InMemorySaver(), interrupt_before=["vote"]
    )
    config = {"configurable": {"thread_id": "t1"}}
    graph.invoke({"problem": PROBLEM.text}, config)
    state = graph.get_state(config)
    assert state.next == ("vote",)
    candidates_ = [state.values["nodes"][i]["answer"] for i in state.values["completed"]]
    assert len(candidates_) == 4
    out = graph.invoke(None, config)
    assert out["answer"] in candidates_


def test_interrupts_reach_inside_the_solve_graphs_subgraphs() -> None:
    graph = create_solve_graph(
        "best_of_n",
        **clients(),
        budget=4,
        checkpointer=InMemorySaver(),
        interrupt_before=["respond"],
    )
    config = {"configurable": {"thread_id": "t2"}}
    graph.invoke({"problem": PROBLEM.text}, config)
    assert graph.get_state(config).next == ("respond",)
    assert graph.invoke(None, config)["answer"] is not None


def test_an_unknown_interrupt_node_names_the_nodes() -> None:
    with pytest.raises(ConfigError, match=r"cannot interrupt at 'votes'.*vote"):
        create_search_graph(interrupt_before=["votes"])


# --- a new strategy is one module and one line -------------------------------------------------


class GreedySettings(Settings):
    greedy_keep: Annotated[int, Field(gt=0, description="Candidates that share the rollouts.")] = 1


class Greedy(Strategy):
    """Toy strategy: the top `greedy_keep` candidates share the budget equally."""

    name = "greedy"
    kind = "search"
    summary = "the best candidates share every rollout"
    settings = GreedySettings
    table_choices: ClassVar[tuple[Any, ...]] = (None,)

    def allocate(self, ctx: Any, frontier: Frontier) -> Allocation:
        order = sorted(range(len(frontier.ids)), key=lambda i: -frontier.scores[i])
        keep = order[: ctx.greedy_keep]
        n = self.allocation_budget(ctx, frontier)
        counts = [0] * len(frontier.ids)
        for j in range(n):
            counts[keep[j % len(keep)]] += 1
        return Allocation(counts=counts, weights=[c / n for c in counts], gamma=None)


@pytest.fixture
def greedy() -> Iterator[Greedy]:
    strategy = register(Greedy())
    yield strategy
    unregister("greedy")


def test_a_registered_strategy_runs_everywhere_strategies_are_listed(greedy: Greedy) -> None:
    assert "greedy" in strategy_names("search")
    schema = context_model(strategy_names("sample", "search")).model_json_schema()
    assert "greedy" in schema["properties"]["strategy"]["enum"]
    assert schema["properties"]["greedy_keep"]["description"]
    assert "greedy" in candidates()
    graph = create_search_graph("greedy", **clients(), budget=4, greedy_keep=2, seed=1)
    out = graph.invoke({"problem": PROBLEM.text})
    assert out["result"]["strategy"] == "greedy" and out["answer"] is not None
    expanded = [n for n in out["nodes"] if n["rollouts"] and n["id"] != 0]
    assert expanded and all(n["rollouts"] == 2 for n in expanded)
    with pytest.raises(ConfigError, match="greedy_keep"):
        create_search_graph("greedy", greedy_keep=0)


# --- chat agents: the tool and the chat model ------------------------------------------------


class ScriptedChatModel(BaseChatModel):
    """A fake tool-calling chat model: replies from a script, in order."""

    replies: list[AIMessage]
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.replies[len(self.seen) - 1])])


def _script() -> ScriptedChatModel:
    call = {"name": "solve_math", "args": {"problem": PROBLEM.text}, "id": "call-1"}
    return ScriptedChatModel(
        replies=[AIMessage(content="", tool_calls=[call]), AIMessage(content="Done.")]
    )


def test_the_math_tool_works_in_a_tool_node_agent() -> None:
    tool = create_math_tool("best_of_n", budget=4, **clients())
    model = _script()

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([tool]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    out = builder.compile().invoke({"messages": [HumanMessage("Please solve it.")]})
    tool_message = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert tool_message.artifact["ledger"]["samples"] == 4
    assert tool_message.content == str(tool_message.artifact["answer"])
    assert out["messages"][-1].content == "Done."


def test_the_math_tool_works_in_create_agent() -> None:
    from langchain.agents import create_agent

    tool = create_math_tool("best_of_n", budget=4, **clients())
    agent = create_agent(_script(), [tool])
    out = asyncio.run(agent.ainvoke({"messages": [HumanMessage("Please solve it.")]}))
    tool_message = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert tool_message.artifact["result"]["strategy"] == "best_of_n"


def test_the_chat_model_adapter_answers_with_a_strategy() -> None:
    model = TTSChatModel(strategy="best_of_n", settings={"budget": 4}, **clients())
    reply = model.invoke([HumanMessage(PROBLEM.text)])
    report = reply.response_metadata["langgraph_tts"]
    assert report["strategy"] == "best_of_n" and report["ledger"]["samples"] == 4
    again = asyncio.run(model.ainvoke(PROBLEM.text))
    assert again.response_metadata["langgraph_tts"]["voters"] == 4


# --- layering ----------------------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[1] / "langgraph_tts"


def _imports_of(body: list[ast.stmt], package: str) -> set[str]:
    """Modules imported at module level, `if TYPE_CHECKING:` blocks included."""
    deps: set[str] = set()
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            deps |= _imports_of(node.body, package)
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            if node.module:
                target = ".".join([*base, node.module])
                deps.add(target)
                deps.update(f"{target}.{a.name}" for a in node.names)
            else:
                deps.update(".".join([*base, a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("langgraph_tts"):
            deps.add(node.module or "")
            deps.update(f"{node.module}.{a.name}" for a in node.names)
    return deps


def _module_imports() -> dict[str, set[str]]:
    """Package-internal imports at module level (function-level lazy imports excluded)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else name.rpartition(".")[0]
        graph[name] = _imports_of(ast.parse(path.read_text()).body, package)
    return {k: {d for d in v if d in graph and d != k} for k, v in graph.items()}


def test_no_import_cycles() -> None:
    graph = _module_imports()
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in graph[module]:
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] if dep in path else path
                pytest.fail(f"import cycle: {' -> '.join([*cycle, dep])}")
            if dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_nodes_never_import_http_modules() -> None:
    http = {
        "langgraph_tts.clients._http",
        "langgraph_tts.clients.policy",
        "langgraph_tts.clients.prm",
        "langgraph_tts.clients.embed",
        "langgraph_tts.clients.verifier",
    }
    graph = _module_imports()
    for module in graph:
        if module.endswith(".nodes") or module.startswith("langgraph_tts.strategies"):
            assert not graph[module] & http, f"{module} imports {graph[module] & http}"


# --- Studio schemas, in process ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["solve_math", "search", "scale", "compute_optimal"])
def test_every_langgraph_json_graph_has_input_output_and_context_schemas(name: str) -> None:
    import json

    from langgraph_tts import studio

    config = json.loads((PACKAGE.parent / "langgraph.json").read_text())
    assert config["graphs"][name].endswith(f"studio.py:{name}")
    graph = studio._graph(name)
    inputs = graph.get_input_jsonschema()
    outputs = graph.get_output_jsonschema()
    context = graph.get_context_jsonschema()
    assert {"problem", "messages", "settings"} <= set(inputs["properties"])
    assert {"answer", "result", "ledger", "messages"} <= set(outputs["properties"])
    for field, prop in context["properties"].items():
        assert prop.get("description"), f"{name}.{field} has no description"
        shown = "default" in prop or "Default: $LANGGRAPH_TTS_" in prop["description"]
        assert shown, f"{name}.{field} shows no default"


def test_a_sync_call_nested_in_a_sync_node_does_not_deadlock() -> None:
    """A sync node whose work calls another graph's sync `invoke` (e.g. the chat model)."""
    from langgraph_tts._sync import node

    model = TTSChatModel(strategy="cot", **clients())

    async def ask(state: MessagesState, runtime: Any) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("ask", node(ask, "ask"))
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    out = builder.compile().invoke({"messages": [HumanMessage(PROBLEM.text)]})
    assert out["messages"][-1].response_metadata["langgraph_tts"]["strategy"] == "cot"


def test_two_strategies_cannot_declare_one_setting_twice() -> None:
    class Clashing(Settings):
        budget: int = 3  # the shared settings' field, declared again

    class Clash(Strategy):
        name = "clash"
        kind = "search"
        summary = "declares budget again"
        settings = Clashing

    register(Clash())
    try:
        with pytest.raises(ConfigError, match="'budget' is defined by both"):
            context_model(strategy_names("sample", "search"))
    finally:
        unregister("clash")


@pytest.mark.parametrize(
    ("key", "value"), [("budget", True), ("max_samples", False), ("temperature", True)]
)
def test_a_boolean_is_not_a_number_setting(key: str, value: bool) -> None:
    from langgraph_tts.context import SearchContext

    with pytest.raises(
        ConfigError, match=rf"^invalid setting: {key}: expected a number, got {str(value).lower()}$"
    ):
        SearchContext(**{key: value})
    with pytest.raises(ConfigError, match=key):
        create_search_graph("dora", **{key: value})
