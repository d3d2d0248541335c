"""Stream a search as it runs: one event per iteration, over real HTTP to the simulator.

python examples/streaming.py
"""

from __future__ import annotations

import asyncio

from langgraph_tts import ChatPolicy, OpenAIEmbedder, PoolingPRM, create_solve_graph
from langgraph_tts.sim.server import SimConfig, start_server
from langgraph_tts.sim.world import make_problems


async def main() -> None:
    with start_server(SimConfig(seed=10)) as sim:
        graph = create_solve_graph(
            "dora",
            policy=ChatPolicy(sim.base_url, "sim-policy"),
            prm=PoolingPRM(sim.url, "sim-prm", template="qwen2.5"),
            embedder=OpenAIEmbedder(sim.base_url, "sim-embed"),
            budget=16,
            seed=0,
        )
        problem = make_problems(1, seed=10)[0]
        async for namespace, mode, chunk in graph.astream(
            {"problem": problem.text}, stream_mode=["custom", "values"], subgraphs=True
        ):
            if mode == "custom":
                rollouts = sorted(chunk["subtrees"].values(), reverse=True)
                print(
                    f"[{namespace[0].split(':')[0]}] iteration {chunk['iteration']}: "
                    f"{chunk['active']:>2} active, {chunk['finished']:>2} finished, "
                    f"{chunk['completion_tokens']:>5} tokens, next rollouts per subtree {rollouts}"
                )
            elif not namespace:
                out = chunk
        print(f"answer: {out['answer']} (truth {problem.answer})")


if __name__ == "__main__":
    asyncio.run(main())
