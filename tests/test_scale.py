"""SCALE: parsing, routing, each node alone, difficulty modes, fallbacks, the prebuilt graph.

No sockets: a scripted fake policy (below), LangChain's GenericFakeChatModel through
ChatModelPolicy, and the in-process simulator for System-2 searches.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from langgraph_tts.clients.types import (
    ChatMessage,
    Generation,
    Sample,
    SamplingParams,
    Scores,
    Usage,
)
from langgraph_tts.context import ScaleContext, SearchContext
from langgraph_tts.errors import ConfigError
from langgraph_tts.ledger import merge_ledgers
from langgraph_tts.prompts import (
    DECOMPOSE_MARKER,
    DIFFICULTY_MARKER,
    POLICY_SYSTEM_PROMPT,
    SELECT_MARKER,
    SOLVE_SUBPROBLEM_SYSTEM_PROMPT,
)
from langgraph_tts.resources import ThinkingPolicy
from langgraph_tts.scale import (
    ScaleNodes,
    ScaleState,
    build_scale_graph,
    create_scale_graph,
    parse_difficulty,
    parse_outline,
    parse_version_choice,
    route_subproblem,
)
from langgraph_tts.scale.outline import vote_outline
from langgraph_tts.scale.parsing import (
    DifficultyParseError,
    OutlineParseError,
    VersionParseError,
    fix_latex_backslashes,
)
from langgraph_tts.scale.search import search_settings

PROBLEM = "A shop sells pens at 3 dollars. How much do 4 pens and a 5 dollar book cost?"
OUTLINE = {"step1": "Find the cost of the pens.", "step2": "Add the book.", "step3": "Total."}

Reply = str | Callable[[list[ChatMessage], SamplingParams | None], str]


# --- a scripted fake policy ---------------------------------------------------------------------


@dataclass
class Call:
    kind: str
    messages: list[ChatMessage]
    params: SamplingParams | None
    n: int


def kind_of(messages: Sequence[ChatMessage]) -> str:
    """What a request asks for, from its system prompt's marker."""
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    if DECOMPOSE_MARKER in system:
        return "outline"
    if SELECT_MARKER in system:
        return "select"
    if DIFFICULTY_MARKER in system:
        return "difficulty"
    if system == SOLVE_SUBPROBLEM_SYSTEM_PROMPT:
        return "solve"
    if system == POLICY_SYSTEM_PROMPT:
        return "search"
    return "other"


def _tokens(text: str) -> int:
    return len(text.split())


@dataclass
class ScriptedPolicy:
    """Answers each kind of SCALE request from a script: a list of replies consumed in order
    (the last one repeats) or a function of the messages. Usage: whitespace tokens."""

    script: dict[str, list[Reply]] = field(default_factory=dict)
    model: str = "scripted"
    calls: list[Call] = field(default_factory=list)
    delay_s: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    reasoning: str | None = None

    def _next(self, kind: str) -> Reply:
        queue = self.script.get(kind)
        if not queue:
            return _default_reply(kind)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        kind = kind_of(messages)
        self.calls.append(Call(kind, list(messages), params, n))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        samples = []
        for _ in range(n):
            reply = self._next(kind)
            text = reply(list(messages), params) if callable(reply) else reply
            samples.append(Sample(text, "stop", None, _tokens(text), self.reasoning))
        prompt = sum(_tokens(m["content"]) for m in messages)
        usage = Usage(1, prompt, sum(s.tokens for s in samples))
        return Generation(samples=samples, usage=usage)

    def of(self, kind: str) -> list[Call]:
        return [c for c in self.calls if c.kind == kind]


def _default_reply(kind: str) -> str:
    return {
        "outline": json.dumps(OUTLINE),
        "select": "version1",
        "difficulty": "0.3",
        "solve": "Compute it. The answer is \\boxed{7}.",
        "search": "## Step 1: add\n\nSo 3+4=7.\n\nTherefore, the final answer is: $\\boxed{7}$. "
        "I hope it is correct.",
    }.get(kind, "")


def user_of(call: Call) -> str:
    return call.messages[-1]["content"]


class FakeRuntime:
    """What a node reads from `Runtime`: the context and a stream writer."""

    def __init__(self, context: ScaleContext | None = None) -> None:
        self.context = context
        self.events: list[dict[str, Any]] = []
        self.stream_writer = self.events.append


def ctx(**overrides: Any) -> ScaleContext:
    base: dict[str, Any] = {"outline_versions": 3, "format_retries": 2}
    return ScaleContext(**{**base, **overrides})


def rt(**overrides: Any) -> Any:
    return FakeRuntime(ctx(**overrides))


async def decomposed(policy: ScriptedPolicy, **overrides: Any) -> tuple[ScaleNodes, dict[str, Any]]:
    nodes = ScaleNodes(policy=policy)
    state = {"problem": PROBLEM}
    update = await nodes.decompose(state, rt(**overrides))  # type: ignore[arg-type]
    return nodes, _apply({"problem": PROBLEM}, update)


def _apply(state: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Apply a node's update the way the graph's reducers would (enough for these tests)."""
    from langgraph.types import Overwrite

    from langgraph_tts.scale.state import merge_subproblems

    out = dict(state)
    for key, value in update.items():
        if isinstance(value, Overwrite):
            out[key] = value.value
        elif key == "subproblems":
            out[key] = merge_subproblems(out.get(key), value)
        elif key in ("ledger", "overhead"):
            out[key] = merge_ledgers(out.get(key), value)
        elif key == "fallbacks":
            out[key] = [*out.get(key, []), *value]
        else:
            out[key] = value
    return out


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        json.dumps(OUTLINE),
        "```json\n" + json.dumps(OUTLINE) + "\n```",
        "```\n" + json.dumps(OUTLINE) + "\n```",
        "Here is the outline of the solution:\n" + json.dumps(OUTLINE) + "\nGood luck!",
        json.dumps(OUTLINE)[:-1] + ",}",
        '<think>plan first</think>{"Step 1": "Find the cost of the pens.", "step_2": '
        '"Add the book.", "step3": "Total."}',
    ],
)
def test_parse_outline_tolerates_fences_prose_and_spelling(reply: str) -> None:
    assert parse_outline(reply) == list(OUTLINE.values())


def test_parse_outline_keeps_latex_backslashes() -> None:
    reply = '{"step1": "Compute \\frac{1}{2} \\times \\(x\\)", "step2": "Say \\"yes\\"\\n"}'
    assert parse_outline(reply) == ["Compute \\frac{1}{2} \\times \\(x\\)", 'Say "yes"']
    assert fix_latex_backslashes("\\\\frac") == "\\\\frac"
    assert fix_latex_backslashes("\\neq \\n1") == "\\\\neq \\n1"


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "not json at all",
        '{"step2": "a", "step1": "b"}',
        '{"step1": "a", "step3": "b"}',
        '{"step1": ""}',
        '{"step1": 3}',
        "{}",
        '["a", "b"]',
        '{"step1": "a", "step2": ',
        '{"steps": {"step1": "a"}}',
    ],
)
def test_parse_outline_rejects_what_is_not_an_ordered_outline(reply: str) -> None:
    with pytest.raises(OutlineParseError):
        parse_outline(reply)


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("0.7", 0.7),
        ("0.7/1", 0.7),
        ("7/10", 0.7),
        ("70%", 0.7),
        ("Difficulty: 0.35.", 0.35),
        ("The step2 score is 0.8", 0.8),
        ("1", 1.0),
        ("0", 0.0),
        (".4", 0.4),
        ("<think>hmm 5</think> 0.25", 0.25),
    ],
)
def test_parse_difficulty_reads_the_first_number(reply: str, value: float) -> None:
    assert parse_difficulty(reply) == pytest.approx(value)


@pytest.mark.parametrize("reply", ["high", "", "7", "1.5", "-0.2", "3/0", "150%"])
def test_parse_difficulty_rejects_words_and_out_of_range(reply: str) -> None:
    with pytest.raises(DifficultyParseError):
        parse_difficulty(reply)


def test_parse_version_choice() -> None:
    assert parse_version_choice("version2", 3) == 2
    assert parse_version_choice("I would go with Version 3, clearly.", 3) == 3
    for bad in ("version4", "the second one", "version0"):
        with pytest.raises(VersionParseError):
            parse_version_choice(bad, 3)


def test_vote_outline_prefers_the_most_common_length_then_the_first() -> None:
    def v(i: int, k: int) -> Any:
        return {"version": i, "steps": [f"s{j}" for j in range(k)], "attempts": 1, "error": None}

    assert vote_outline([v(1, 2), v(2, 3), v(3, 3), v(4, 2), v(5, 3)])["version"] == 2
    assert vote_outline([v(1, 4), v(2, 3)])["version"] == 1


# --- routing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("difficulty", "tau", "mode"),
    [
        (0.5, 0.5, "system1"),
        (0.5000001, 0.5, "system2"),
        (0.0, 0.0, "system1"),
        (0.01, 0.0, "system2"),
        (0.9, 0.9, "system1"),
        (1.0, 0.9, "system2"),
        (1.0, 1.0, "system1"),
        (math.nan, 0.5, "system2"),
    ],
)
def test_route_is_strictly_greater_than_tau(difficulty: float, tau: float, mode: str) -> None:
    assert route_subproblem(difficulty, tau) == mode


async def test_route_edge_reads_tau_from_the_context_and_respects_forced_modes() -> None:
    nodes = ScaleNodes()
    state: Any = {"current": 0, "subproblems": [{"index": 0, "text": "x", "difficulty": 0.4}]}
    assert nodes.route(state, rt(tau=0.3)) == "system2"
    assert nodes.route(state, rt(tau=0.4)) == "system1"
    state["subproblems"][0]["forced_mode"] = "system2"
    assert nodes.route(state, rt(tau=1.0)) == "system2"


# --- decompose -------------------------------------------------------------------------------------


async def test_decompose_samples_versions_concurrently_and_ends_with_the_question() -> None:
    policy = ScriptedPolicy(delay_s=0.05)
    _, state = await decomposed(policy, outline_versions=4)
    assert len(policy.of("outline")) == 4
    assert policy.max_in_flight == 4, "outline versions must be requested concurrently"
    texts = [s["text"] for s in state["subproblems"]]
    assert texts == ["Find the cost of the pens.", "Add the book.", PROBLEM]
    assert state["selection"] == "llm" and state["selected_version"] == 1
    params = policy.of("outline")[0].params
    assert params is not None and params.chat_template_kwargs == {"enable_thinking": False}
    assert (params.temperature, params.top_p, params.top_k) == (0.7, 0.8, 20)
    assert state["overhead"]["samples"] == 5 and state["overhead"]["policy_requests"] == 5
    assert state["ledger"] == state["overhead"]


async def test_decompose_uses_given_conditions_and_question() -> None:
    nodes = ScaleNodes(policy=ScriptedPolicy())
    state = {"problem": PROBLEM, "conditions": "Pens cost 3.", "question": "Total cost?"}
    update = await nodes.decompose(state, rt())  # type: ignore[arg-type]
    assert update["conditions"] == "Pens cost 3."
    assert update["subproblems"].value[-1]["text"] == "Total cost?"


async def test_invalid_outlines_are_retried_per_version_within_the_bound() -> None:
    bad = ["no json", '{"step2": "x"}']
    policy = ScriptedPolicy({"outline": [*bad, json.dumps(OUTLINE)]})
    _, state = await decomposed(policy, outline_versions=1, format_retries=2)
    assert [v["attempts"] for v in state["outlines"]] == [3]
    assert state["outlines"][0]["steps"] is not None
    assert state["selection"] == "only"
    assert not policy.of("select"), "one valid version needs no selection call"


@pytest.mark.parametrize(
    ("selection", "picked"),
    [("llm", 2), ("vote", 2), ("first", 1)],
)
async def test_outline_selection_modes(selection: str, picked: int) -> None:
    two = json.dumps({"step1": "a", "step2": "b"})
    three = json.dumps({"step1": "a", "step2": "b", "step3": "c"})
    policy = ScriptedPolicy({"outline": [two, three, three], "select": ["version2"]})
    _, state = await decomposed(policy, outline_selection=selection)
    assert state["selected_version"] == picked
    assert state["selection"] == selection
    assert len(policy.of("select")) == (1 if selection == "llm" else 0)


async def test_llm_selection_retries_then_falls_back_to_the_vote() -> None:
    policy = ScriptedPolicy({"select": ["the second", "version9", "I like them all"]})
    _, state = await decomposed(policy, format_retries=2)
    assert len(policy.of("select")) == 3
    assert state["selection"] == "vote" and state["selected_version"] == 1
    assert any(f.startswith("select:") for f in state["fallbacks"])
    select_params = policy.of("select")[0].params
    assert select_params is not None and select_params.max_tokens == 64


async def test_no_valid_outline_makes_the_problem_one_system2_subproblem() -> None:
    policy = ScriptedPolicy({"outline": ["Part 1: think. Part 2: answer."]})
    nodes, state = await decomposed(policy, outline_versions=2, format_retries=1, tau=1.0)
    assert len(policy.of("outline")) == 4
    assert state["selected_version"] is None
    [sub] = state["subproblems"]
    assert sub["text"] == PROBLEM and sub["forced_mode"] == "system2"
    assert sub["difficulty"] == 1.0 and sub["difficulty_source"] == "whole_problem"
    assert "decompose: none of 2 outline versions was valid" in state["fallbacks"][0]
    assert await nodes.assess_difficulty(state, rt(tau=1.0)) == {}  # type: ignore[arg-type]
    assert nodes.route(state, rt(tau=1.0)) == "system2"  # type: ignore[arg-type]


@pytest.mark.parametrize("problem", ["", "   "])
async def test_empty_problem_is_a_config_error(problem: str) -> None:
    with pytest.raises(ConfigError, match="no problem"):
        await ScaleNodes(policy=ScriptedPolicy()).decompose({"problem": problem}, rt())  # type: ignore[arg-type]
    graph = create_scale_graph(policy=ScriptedPolicy())
    with pytest.raises(ConfigError):
        await graph.ainvoke({"problem": problem})


# --- difficulty --------------------------------------------------------------------------------------


async def test_sequential_difficulty_sees_earlier_subproblems_with_their_answers() -> None:
    policy = ScriptedPolicy()
    nodes, state = await decomposed(policy)
    state = _apply(
        state, {"current": 1, "context": ["Find the cost of the pens.\nstep answer: 12"]}
    )
    update = await nodes.assess_difficulty(state, rt())  # type: ignore[arg-type]
    [call] = policy.of("difficulty")
    assert "Work so far: Find the cost of the pens.\nstep answer: 12" in user_of(call)
    assert "Next sub-problem: Add the book." in user_of(call)
    [sub] = update["subproblems"]
    assert sub["index"] == 1 and sub["difficulty"] == 0.3 and sub["difficulty_source"] == "model"
    assert update["overhead"]["policy_requests"] == 1


async def test_upfront_difficulty_scores_all_at_once_from_descriptions_only() -> None:
    policy = ScriptedPolicy(delay_s=0.02)
    nodes, state = await decomposed(policy, difficulty_mode="upfront", force_last_hard=False)
    policy.max_in_flight = 0
    update = await nodes.assess_difficulty(
        state, rt(difficulty_mode="upfront", force_last_hard=False)
    )  # type: ignore[arg-type]
    calls = policy.of("difficulty")
    assert len(calls) == 3 and policy.max_in_flight == 3
    works = sorted(user_of(c).split("Work so far: ")[1].split("\nNext")[0] for c in calls)
    assert works == [
        "(nothing yet)",
        "Find the cost of the pens.",
        "Find the cost of the pens. Add the book.",
    ]
    assert all("step answer" not in user_of(c) for c in calls)
    assert [s["index"] for s in update["subproblems"]] == [0, 1, 2]
    state = _apply(_apply(state, update), {"current": 1})
    assert await nodes.assess_difficulty(state, rt(difficulty_mode="upfront")) == {}  # type: ignore[arg-type]


async def test_force_last_hard_scores_the_last_subproblem_without_a_call() -> None:
    policy = ScriptedPolicy()
    nodes, state = await decomposed(policy)
    state = _apply(state, {"current": 2})
    update = await nodes.assess_difficulty(state, rt())  # type: ignore[arg-type]
    assert not policy.of("difficulty")
    [sub] = update["subproblems"]
    assert (sub["difficulty"], sub["difficulty_source"]) == (0.9, "forced_last")
    update = await nodes.assess_difficulty(state, rt(force_last_hard=False))  # type: ignore[arg-type]
    assert len(policy.of("difficulty")) == 1 and update["subproblems"][0]["difficulty"] == 0.3


async def test_unusable_difficulty_is_retried_then_treated_as_hard() -> None:
    policy = ScriptedPolicy({"difficulty": ["high", "70%"]})
    nodes, state = await decomposed(policy)
    update = await nodes.assess_difficulty(state, rt())  # type: ignore[arg-type]
    assert update["subproblems"][0]["difficulty"] == pytest.approx(0.7)
    assert not update["fallbacks"]
    policy = ScriptedPolicy({"difficulty": ["high"]})
    nodes, state = await decomposed(policy)
    update = await nodes.assess_difficulty(state, rt(format_retries=2))  # type: ignore[arg-type]
    assert len(policy.of("difficulty")) == 3
    sub = update["subproblems"][0]
    assert (sub["difficulty"], sub["difficulty_source"]) == (1.0, "fallback")
    assert "treated as hard" in update["fallbacks"][0]
    assert sub["difficulty_ledger"]["policy_requests"] == 3


# --- solving and propagation -------------------------------------------------------------------------


async def test_each_system_has_its_own_client_sampling_and_token_limit() -> None:
    fast, slow = ScriptedPolicy(model="fast"), ScriptedPolicy(model="slow")
    nodes = ScaleNodes(system1=fast, system2=slow)
    state: Any = {
        "problem": PROBLEM,
        "conditions": "Pens cost 3 dollars.",
        "current": 1,
        "context": ["Find the cost of the pens.\nstep answer: 12"],
        "subproblems": [{"index": 0, "text": "a"}, {"index": 1, "text": "Add the book."}],
    }
    context = rt(system1_max_tokens=111, system2_max_tokens=2222)
    await nodes.solve_system1(state, context)
    await nodes.solve_system2(state, context)
    [c1], [c2] = fast.of("solve"), slow.of("solve")
    p1, p2 = c1.params, c2.params
    assert p1 is not None and p2 is not None
    assert (p1.temperature, p1.top_p, p1.top_k, p1.max_tokens) == (0.7, 0.8, 20, 111)
    assert (p2.temperature, p2.top_p, p2.top_k, p2.max_tokens) == (0.6, 0.95, 20, 2222)
    assert p1.chat_template_kwargs == {"enable_thinking": False}
    assert p2.chat_template_kwargs == {"enable_thinking": True}
    assert c1.messages[0]["content"] == SOLVE_SUBPROBLEM_SYSTEM_PROMPT
    assert user_of(c1) == (
        "Given conditions: Pens cost 3 dollars.\n"
        "Work so far: Find the cost of the pens.\nstep answer: 12\nQuestion: Add the book."
    )


async def test_solve_records_answer_tokens_calls_and_its_own_ledger() -> None:
    policy = ScriptedPolicy()
    nodes, state = await decomposed(policy)
    update = await nodes.solve_system2(state, rt())  # type: ignore[arg-type]
    [sub] = update["subproblems"]
    assert sub["mode"] == "system2" and sub["solver"] == "single" and sub["answer"] == "7"
    assert sub["tokens"] == _tokens(_default_reply("solve")) and sub["calls"] == 1
    assert sub["ledger"] == update["ledger"]
    assert sub["ledger"]["samples"] == 1


async def test_empty_answer_is_retried_once_then_propagated_as_no_answer() -> None:
    policy = ScriptedPolicy({"solve": ["", ""]})
    nodes, state = await decomposed(policy)
    update = await nodes.solve_system1(state, rt())  # type: ignore[arg-type]
    assert len(policy.of("solve")) == 2
    assert update["subproblems"][0]["answer"] is None
    assert "empty solution" in update["fallbacks"][0]
    runtime = rt()
    state = _apply(state, update)
    out = await nodes.propagate(state, runtime)  # type: ignore[arg-type]
    assert out["context"] == ["Find the cost of the pens.\nstep answer: (no answer)"]
    assert out["current"] == 1
    assert runtime.events[0]["event"] == "subproblem" and runtime.events[0]["answer"] is None


async def test_answer_fallbacks_thinking_text_then_last_number() -> None:
    policy = ScriptedPolicy({"solve": ["I think it is 12 dollars"]})
    nodes, state = await decomposed(policy)
    update = await nodes.solve_system1(state, rt())  # type: ignore[arg-type]
    assert update["subproblems"][0]["answer"] == "12"
    assert "used the last number" in update["fallbacks"][0]
    policy = ScriptedPolicy({"solve": ["see above"]}, reasoning="so \\boxed{12}")
    nodes, state = await decomposed(policy)
    update = await nodes.solve_system2(state, rt())  # type: ignore[arg-type]
    assert update["subproblems"][0]["answer"] == "12"
    assert "thinking" in update["fallbacks"][0]


# --- the whole graph ---------------------------------------------------------------------------------


def solve_by_question(answers: dict[str, str]) -> Reply:
    def reply(messages: list[ChatMessage], params: SamplingParams | None) -> str:
        question = messages[-1]["content"].rsplit("Question: ", 1)[1]
        return f"Work. \\boxed{{{answers.get(question, '0')}}}"

    return reply


async def test_graph_end_to_end_with_a_fake_policy() -> None:
    answers = {OUTLINE["step1"]: "12", OUTLINE["step2"]: "17", PROBLEM: "17"}
    policy = ScriptedPolicy({"difficulty": ["0.2", "0.8"], "solve": [solve_by_question(answers)]})
    graph = create_scale_graph(policy=policy, outline_versions=3, tau=0.5)
    events: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    async for mode, chunk in graph.astream({"problem": PROBLEM}, stream_mode=["custom", "values"]):
        if mode == "custom":
            events.append(chunk)
        else:
            out = chunk
    assert out["answer"] == "17"
    result = out["result"]
    assert result["strategy"] == "scale" and result["tau"] == 0.5
    assert [s["mode"] for s in result["subproblems"]] == ["system1", "system2", "system2"]
    assert [s["difficulty"] for s in result["subproblems"]] == [0.2, 0.8, 0.9]
    assert [e["index"] for e in events] == [0, 1, 2]
    assert [e["mode"] for e in events] == ["system1", "system2", "system2"]
    assert events[-1]["tokens_so_far"] == out["ledger"]["completion_tokens"]
    # the second sub-problem was scored with the first one's answer in view
    second = policy.of("difficulty")[1]
    assert "step answer: 12" in user_of(second)
    # ledgers add up: overhead + System-1 + System-2 == the run; samples == choices drawn
    by_mode = result["by_mode"]
    total = merge_ledgers(
        merge_ledgers(by_mode["overhead"], by_mode["system1"]), by_mode["system2"]
    )
    for key in ("policy_requests", "samples", "prompt_tokens", "completion_tokens"):
        assert total[key] == out["ledger"][key], key
    assert out["ledger"]["samples"] == len(policy.calls)
    assert by_mode["overhead"]["policy_requests"] == 3 + 1 + 2
    subs_total = merge_ledgers({}, {})
    for s in result["subproblems"]:
        subs_total = merge_ledgers(subs_total, s["ledger"])
        assert s["calls"] == 1 and s["tokens"] == s["ledger"]["completion_tokens"]
    assert subs_total["samples"] == 3
    assert result["outline_versions_valid"] == 3 and result["fallbacks"] == []
    assert result["system2_fraction"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("mode", ["sequential", "upfront"])
async def test_difficulty_modes_order_requests_differently(mode: str) -> None:
    policy = ScriptedPolicy()
    graph = create_scale_graph(policy=policy, outline_versions=1, difficulty_mode=mode)
    out = await graph.ainvoke({"problem": PROBLEM})
    kinds = [c.kind for c in policy.calls]
    if mode == "upfront":
        assert kinds == ["outline", "difficulty", "difficulty", "solve", "solve", "solve"]
    else:
        assert kinds == ["outline", "difficulty", "solve", "difficulty", "solve", "solve"]
    assert out["result"]["difficulty_mode"] == mode


async def test_model_ignoring_every_format_still_answers_and_says_why() -> None:
    prose = "Sure, let me explain in words: it is about twelve or so"
    policy = ScriptedPolicy({k: [prose] for k in ("outline", "select", "difficulty", "solve")})
    graph = create_scale_graph(policy=policy, outline_versions=2, format_retries=1)
    out = await graph.ainvoke({"problem": PROBLEM})
    fallbacks = out["result"]["fallbacks"]
    assert any(f.startswith("decompose:") for f in fallbacks)
    assert any("propagated as '(no answer)'" in f for f in fallbacks)
    assert any(f.startswith("final:") for f in fallbacks)
    assert out["answer"] is None
    policy = ScriptedPolicy({k: [prose + " 12."] for k in ("outline", "difficulty", "solve")})
    out = await create_scale_graph(policy=policy, outline_versions=2).ainvoke({"problem": PROBLEM})
    assert out["answer"] == "12"
    assert out["result"]["subproblems"][0]["mode"] == "system2"
    assert any("used the last number" in f for f in out["result"]["fallbacks"])


async def test_final_answer_falls_back_to_the_latest_subanswer() -> None:
    policy = ScriptedPolicy({"solve": ["\\boxed{12}", "\\boxed{17}", "", ""]})
    out = await create_scale_graph(policy=policy, outline_versions=1).ainvoke({"problem": PROBLEM})
    assert out["answer"] == "17"
    assert any("returned the answer of sub-problem 1" in f for f in out["result"]["fallbacks"])


async def test_context_passed_at_run_time_wins_and_search_contexts_are_accepted() -> None:
    policy = ScriptedPolicy()
    graph = create_scale_graph(policy=policy, tau=0.0)
    out = await graph.ainvoke({"problem": PROBLEM}, context=ctx(outline_versions=1, tau=1.0))
    assert {s["mode"] for s in out["result"]["subproblems"]} == {"system1"}
    out = await graph.ainvoke({"problem": PROBLEM}, context=SearchContext(budget=3))
    assert out["result"]["tau"] == 0.0  # the graph's bound SCALE settings fill in
    assert out["answer"] == "7"


async def test_checkpointed_reruns_start_from_a_clean_slate() -> None:
    policy = ScriptedPolicy({"select": ["nope"]})
    graph = create_scale_graph(policy=policy, checkpointer=InMemorySaver(), outline_versions=2)
    config = {"configurable": {"thread_id": "t"}}
    first = await graph.ainvoke({"problem": PROBLEM}, config)
    second = await graph.ainvoke({"problem": PROBLEM}, config)
    assert len(second["result"]["fallbacks"]) == len(first["result"]["fallbacks"]) == 1
    assert second["ledger"]["policy_requests"] == first["ledger"]["policy_requests"]


def test_unknown_setting_fails_at_build_time() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        build_scale_graph(policy=ScriptedPolicy(), taux=0.3)


async def test_nodes_compose_into_a_users_own_graph() -> None:
    """A user wires decompose + upfront difficulty into a graph of their own."""
    nodes = ScaleNodes(policy=ScriptedPolicy())

    async def count(state: ScaleState, runtime: Runtime[ScaleContext]) -> dict[str, Any]:
        return {"current": len(state["subproblems"])}

    builder = StateGraph(ScaleState, context_schema=ScaleContext)
    builder.add_node("decompose", nodes.decompose)
    builder.add_node("assess", nodes.assess_difficulty)
    builder.add_node("count", count)
    builder.add_edge(START, "decompose")
    builder.add_edge("decompose", "assess")
    builder.add_edge("assess", "count")
    builder.add_edge("count", END)
    out = await builder.compile().ainvoke(
        {"problem": PROBLEM}, context=ctx(difficulty_mode="upfront")
    )
    assert out["current"] == 3
    assert [s["difficulty"] for s in out["subproblems"]] == [0.3, 0.3, 0.9]


# --- LangChain chat models through ChatModelPolicy -----------------------------------------------------


async def test_generic_fake_chat_model_drives_the_graph() -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from langgraph_tts.clients.chat_model import ChatModelPolicy

    def msg(text: str) -> AIMessage:
        return AIMessage(
            content=text,
            usage_metadata={"input_tokens": 10, "output_tokens": 4, "total_tokens": 14},
        )

    script = [
        msg(json.dumps({"step1": "Find the cost of the pens.", "step2": "Total."})),
        msg("0.3"),
        msg("4 pens cost \\boxed{12}."),
        msg("So 12 + 5 = \\boxed{17}."),
    ]
    policy = ChatModelPolicy(GenericFakeChatModel(messages=iter(script)), name="fake")
    graph = create_scale_graph(policy=policy, outline_versions=1)
    out = await graph.ainvoke({"problem": PROBLEM})
    assert out["answer"] == "17"
    assert [s["mode"] for s in out["result"]["subproblems"]] == ["system1", "system2"]
    assert out["ledger"]["policy_requests"] == 4
    assert out["ledger"]["completion_tokens"] == 16 and out["ledger"]["prompt_tokens"] == 40


# --- System-2 by search ------------------------------------------------------------------------------


@dataclass
class ConstantPRM:
    """Scores every step 0.8 (the fake PRM of these tests)."""

    calls: int = 0

    async def score(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        self.calls += 1
        return Scores([[0.8] * len(s) for s in steps], Usage(1, 10 * len(steps), 0), "fake")


def test_search_settings_take_system2_settings() -> None:
    c = ctx(system2_strategy="beam", system2_budget=6, system2_model="big", system2_max_tokens=900)
    s = SearchContext(**search_settings(c, "p", 0))
    assert (s.strategy, s.budget, s.model, s.temperature, s.top_p) == ("beam", 6, "big", 0.6, 0.95)
    assert s.max_total_tokens == 900 and s.max_step_tokens == 256


async def test_thinking_policy_adds_enable_thinking_only_when_unset() -> None:
    inner = ScriptedPolicy()
    policy = ThinkingPolicy(inner, True)
    await policy.generate([{"role": "user", "content": "x"}], params=SamplingParams())
    await policy.generate(
        [{"role": "user", "content": "x"}],
        params=SamplingParams(chat_template_kwargs={"enable_thinking": False}),
    )
    kwargs = [c.params.chat_template_kwargs for c in inner.calls if c.params]
    assert kwargs == [{"enable_thinking": True}, {"enable_thinking": False}]


async def test_system2_search_with_fake_policy_folds_the_search_ledger_in() -> None:
    policy, prm = ScriptedPolicy(), ConstantPRM()
    graph = create_scale_graph(
        policy=policy, prm=prm, outline_versions=1, system2_strategy="best_of_n", system2_budget=3
    )
    out = await graph.ainvoke({"problem": PROBLEM})
    subs = out["result"]["subproblems"]
    assert [s["mode"] for s in subs] == ["system1", "system1", "system2"]
    last = subs[-1]
    assert last["solver"] == "best_of_n" and last["answer"] == "7"
    assert last["search"]["strategy"] == "best_of_n"
    [search_call] = policy.of("search")
    assert search_call.n == 3
    assert search_call.params is not None
    assert search_call.params.chat_template_kwargs == {"enable_thinking": True}
    assert "Question: " + PROBLEM in user_of(search_call)
    assert last["ledger"]["samples"] == 3 and last["ledger"]["prm_scored"] == 3
    assert out["ledger"]["prm_scored"] == 3 and prm.calls == 1
    assert out["ledger"]["samples"] == len(policy.calls) - 1 + 3


@pytest.mark.parametrize(
    "strategy", ["self_consistency", "best_of_n", "beam", "dvts", "rebase", "dora"]
)
async def test_system2_by_every_search_strategy_on_the_simulator(strategy: str) -> None:
    from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
    from langgraph_tts.sim.server import SimConfig
    from langgraph_tts.sim.world import make_problems

    config = SimConfig(seed=2)
    policy, prm, embedder = SimPolicy(config), SimPRM(config), SimEmbedder(config)
    graph = create_scale_graph(
        policy=policy,
        prm=prm,
        embedder=embedder,
        outline_versions=2,
        tau=0.5,
        seed=4,
        system2_strategy=strategy,
        system2_budget=4,
    )
    out = await graph.ainvoke({"problem": make_problems(1, seed=2)[0].text})
    subs = out["result"]["subproblems"]
    hard = [s for s in subs if s["mode"] == "system2"]
    assert hard, "the final sub-problem (0.9) goes to System-2"
    for sub in hard:
        assert sub["solver"] == strategy and sub["search"]["strategy"] == strategy
        assert sub["ledger"]["samples"] >= 4 and sub["calls"] == sub["ledger"]["policy_requests"]
    assert out["answer"] is not None
    served = policy.stats()
    assert out["ledger"]["samples"] == served["samples"]
    assert out["ledger"]["completion_tokens"] == served["completion_tokens"]
    if strategy != "self_consistency":
        assert out["ledger"]["prm_scored"] == prm.stats()["prm_items"] > 0
    if strategy == "dora":
        assert out["ledger"].get("embed_requests", 0) == embedder.stats()["requests"].get(
            "/v1/embeddings", 0
        )


@pytest.mark.parametrize(
    ("strategy", "thinking", "expected"),
    [
        ("best_of_n", True, True),
        ("self_consistency", None, None),
        ("beam", True, False),
        ("dora", True, False),
        ("dvts", False, False),
    ],
)
def test_step_level_searches_do_not_think(
    strategy: str, thinking: bool | None, expected: bool | None
) -> None:
    from langgraph_tts.scale.search import search_thinking

    assert search_thinking(ctx(system2_strategy=strategy, system2_thinking=thinking)) is expected


def test_system_clients_precedence() -> None:
    from langgraph_tts.scale.systems import resolve_system

    default, bound = ScriptedPolicy(model="default"), ScriptedPolicy(model="bound")
    c = ctx(system2_base_url="http://127.0.0.1:9/v1", system2_model="big")
    assert resolve_system(c, "system2", bound=bound, default=default) is bound
    assert resolve_system(c, "system1", bound=None, default=default) is default
    by_url = resolve_system(c, "system2", bound=None, default=default)
    assert by_url.model == "big" and "127.0.0.1:9" in repr(by_url)
    assert resolve_system(ctx(), "system2", bound=None, default=None).model == ctx().model


async def test_flops_use_each_systems_parameter_count() -> None:
    """System-2 calls are booked at system2_params_b, System-1 and overhead at system1's."""
    from langgraph_tts.clients.types import Generation, Sample, Usage
    from langgraph_tts.context import ScaleContext
    from langgraph_tts.scale.search import search_settings
    from langgraph_tts.scale.systems import policy_delta

    ctx = ScaleContext(policy_params_b=1.0, system2_params_b=32.0, system2_strategy="dora")
    gen = Generation([Sample("x", "stop")], Usage(1, 10, 90))
    assert policy_delta(ctx, gen, "system2")["flops"] == 2 * 32e9 * 100
    assert policy_delta(ctx, gen, "system1")["flops"] == 2 * 1e9 * 100
    assert policy_delta(ctx, gen)["flops"] == 2 * 1e9 * 100
    assert search_settings(ctx, "p", 0)["policy_params_b"] == 32.0
