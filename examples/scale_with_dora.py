"""SCALE with DORA inside its System-2 sub-problems, streamed as it goes.

Easy sub-problems get one fast System-1 sample; hard ones (difficulty > tau) are searched by
DORA with its own budget. The search is a subgraph of the SCALE graph, so its per-iteration
events surface next to SCALE's per-sub-problem ones with `subgraphs=True`.

    python examples/scale_with_dora.py
"""

from __future__ import annotations

from langgraph_tts import create_scale_graph
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems


def main() -> None:
    config = SimConfig(seed=7)
    graph = create_scale_graph(
        policy=SimPolicy(config),
        prm=SimPRM(config),
        embedder=SimEmbedder(config),
        tau=0.5,
        outline_versions=2,
        system2_strategy="dora",
        system2_budget=8,
        seed=0,
    )
    problem = make_problems(1, seed=7)[0]
    final: dict = {}
    for namespace, mode, chunk in graph.stream(
        {"problem": problem.text}, stream_mode=["custom", "values"], subgraphs=True
    ):
        if mode == "custom" and chunk["event"] == "subproblem":
            print(
                f"sub-problem {chunk['index'] + 1}/{chunk['of']}: difficulty "
                f"{chunk['difficulty']} -> {chunk['mode']}, answer {chunk['answer']}"
            )
        elif mode == "custom" and chunk["event"] == "iteration":
            print(
                f"    DORA ({namespace[-1].split(':')[0]}) iteration {chunk['iteration']}: "
                f"{chunk['active']} active, {chunk['finished']} finished"
            )
        elif mode == "values" and not namespace:
            final = chunk
    by_mode = final["result"]["by_mode"]
    print(f"answer: {final['answer']} (truth {problem.answer})")
    print(
        f"tokens: System-1 {by_mode['system1'].get('completion_tokens', 0)}, System-2 "
        f"{by_mode['system2'].get('completion_tokens', 0)}, overhead "
        f"{by_mode['overhead'].get('completion_tokens', 0)}"
    )


if __name__ == "__main__":
    main()
