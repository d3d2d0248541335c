"""SCALE end to end against the simulator over real HTTP on 127.0.0.1, with `ChatPolicy`.

The simulator counts what it served; the graph's ledgers must match it exactly, per node and
per sub-problem, not just in total.
"""

from __future__ import annotations

from typing import Any

import pytest

from langgraph_tts.clients.policy import ChatPolicy
from langgraph_tts.context import ScaleContext
from langgraph_tts.scale import create_scale_graph
from langgraph_tts.sim.server import SimConfig, start_server
from langgraph_tts.sim.world import is_correct, make_problems

pytestmark = pytest.mark.e2e

COUNTERS = ("samples", "prompt_tokens", "completion_tokens")


def _served(stats: dict[str, Any]) -> dict[str, int]:
    out = {key: int(stats[key]) for key in COUNTERS}
    out["policy_requests"] = int(stats["requests"].get("/v1/chat/completions", 0))
    return out


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in after}


def _spent(ledger: dict[str, Any]) -> dict[str, int]:
    return {key: int(ledger.get(key, 0)) for key in (*COUNTERS, "policy_requests")}


@pytest.mark.parametrize("difficulty_mode", ["sequential", "upfront"])
async def test_scale_over_http_books_exactly_what_the_server_served(
    sim_stats: Any, difficulty_mode: str
) -> None:
    server = sim_stats
    policy = ChatPolicy(server.base_url, "sim-policy", max_concurrency=8)
    graph = create_scale_graph(policy=policy)
    problem = make_problems(1, seed=0)[0]
    context = ScaleContext(
        base_url=server.base_url,
        model="sim-policy",
        strategy="scale",
        outline_versions=4,
        tau=0.5,
        seed=11,
        difficulty_mode=difficulty_mode,
    )
    per_node: list[tuple[str, dict[str, Any], dict[str, int]]] = []
    events: list[dict[str, Any]] = []
    before = _served(server.stats())
    final: dict[str, Any] = {}
    async for mode, chunk in graph.astream(
        {"problem": problem.text}, context=context, stream_mode=["updates", "custom", "values"]
    ):
        if mode == "updates":
            # the graph is suspended while we look: the server counters are this node's spend
            now = _served(server.stats())
            for node, update in chunk.items():
                per_node.append((node, update or {}, _delta(now, before)))
            before = now
        elif mode == "custom":
            events.append(chunk)
        else:
            final = chunk
    stats = server.stats()
    assert _spent(final["ledger"]) == _served(stats)
    assert stats["chat_kinds"]["decompose"] >= 4
    result = final["result"]
    subs = result["subproblems"]
    # each solve node's served spend is exactly its sub-problem's ledger
    solves = [(u, d) for node, u, d in per_node if node.startswith("solve_system")]
    assert len(solves) == len(subs)
    for (update, delta), sub in zip(solves, subs, strict=True):
        assert delta == _spent(update["ledger"]) == _spent(sub["ledger"])
        assert (
            delta["completion_tokens"] == sub["tokens"] and delta["policy_requests"] == sub["calls"]
        )
    # decompose + difficulty nodes are the overhead
    overhead = [d for node, _, d in per_node if node in ("decompose", "assess_difficulty")]
    summed = {key: sum(d[key] for d in overhead) for key in overhead[0]}
    assert summed == _spent(result["by_mode"]["overhead"])
    # per-mode split adds up to the whole
    for key in COUNTERS:
        parts = sum(result["by_mode"][m].get(key, 0) for m in ("system1", "system2", "overhead"))
        assert parts == final["ledger"][key]
    assert [e["index"] for e in events] == list(range(len(subs)))
    assert final["answer"] is not None
    assert isinstance(is_correct(problem, final["answer"]), bool)
    await policy.aclose()


async def test_model_that_ignores_formats_still_answers_via_fallbacks() -> None:
    with start_server(SimConfig(seed=0, ignore_formats=True)) as server:
        policy = ChatPolicy(server.base_url, "sim-policy")
        graph = create_scale_graph(policy=policy, outline_versions=3, format_retries=1, seed=5)
        problem = make_problems(1, seed=0)[0]
        out = await graph.ainvoke({"problem": problem.text})
        result = out["result"]
        assert out["answer"] is not None
        assert result["outline_versions_valid"] == 0
        assert any(f.startswith("decompose: none of 3") for f in result["fallbacks"])
        [sub] = result["subproblems"]
        assert sub["mode"] == "system2" and sub["difficulty_source"] == "whole_problem"
        stats = server.stats()
        assert stats["chat_kinds"]["decompose"] == 3 * 2
        assert _spent(out["ledger"]) == _served(stats)
        await policy.aclose()


async def test_unparseable_difficulty_over_http_is_treated_as_hard() -> None:
    """The difficulty node alone against a server that answers in prose."""
    from langgraph_tts.scale import ScaleNodes

    with start_server(SimConfig(seed=0, ignore_formats=True)) as server:
        policy = ChatPolicy(server.base_url, "sim-policy")
        nodes = ScaleNodes(policy=policy)
        problem = make_problems(1, seed=0)[0]
        state: Any = {
            "problem": problem.text,
            "current": 0,
            "context": [],
            "subproblems": [
                {"index": 0, "text": problem.subproblems[0].descriptions[0]},
                {"index": 1, "text": problem.text},
            ],
        }

        class Runtime:
            context = ScaleContext(format_retries=2)
            stream_writer = staticmethod(lambda _: None)

        update = await nodes.assess_difficulty(state, Runtime())  # type: ignore[arg-type]
        [sub] = update["subproblems"]
        assert (sub["difficulty"], sub["difficulty_source"]) == (1.0, "fallback")
        assert server.stats()["chat_kinds"]["difficulty"] == 3
        assert "treated as hard" in update["fallbacks"][0]
        await policy.aclose()


async def test_systems_on_two_servers_resolved_from_the_context() -> None:
    """No client objects: System-1 and System-2 come from their own URLs in the context."""
    with (
        start_server(SimConfig(seed=0)) as fast,
        start_server(SimConfig(seed=0, policy_model="sim-thinker")) as slow,
    ):
        graph = create_scale_graph()
        context = ScaleContext(
            strategy="scale",
            base_url=fast.base_url,
            model="sim-policy",
            system2_base_url=slow.base_url,
            system2_model="sim-thinker",
            outline_versions=2,
            tau=0.5,
            seed=3,
        )
        out = await graph.ainvoke({"problem": make_problems(2, seed=0)[1].text}, context=context)
        result = out["result"]
        hard = sum(1 for s in result["subproblems"] if s["mode"] == "system2")
        easy = len(result["subproblems"]) - hard
        fast_kinds, slow_kinds = fast.stats()["chat_kinds"], slow.stats()["chat_kinds"]
        assert slow_kinds == {"solve": hard}
        assert fast_kinds.get("solve", 0) == easy and fast_kinds["decompose"] >= 2
        assert _spent(result["by_mode"]["system2"]) == _served(slow.stats())
        served_fast = _served(fast.stats())
        by_mode = result["by_mode"]
        for key in COUNTERS:
            assert by_mode["system1"].get(key, 0) + by_mode["overhead"][key] == served_fast[key]
