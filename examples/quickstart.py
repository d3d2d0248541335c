"""Quickstart: the DORA search graph on the built-in simulator, from Python (no GPU).

Swap the simulator URLs for your vLLM servers (README "Real set-up") and nothing else changes.

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio

from langgraph_tts import ChatPolicy, OpenAIEmbedder, PoolingPRM, create_search_graph
from langgraph_tts.sim.server import SimConfig, start_server
from langgraph_tts.sim.world import make_problems


async def main() -> None:
    # a vLLM-compatible server on a free 127.0.0.1 port; its world and the problems share a seed
    with start_server(SimConfig(seed=1)) as sim:
        graph = create_search_graph(
            "dora",
            policy=ChatPolicy(sim.base_url, "sim-policy"),
            prm=PoolingPRM(sim.url, "sim-prm", template="qwen2.5"),
            embedder=OpenAIEmbedder(sim.base_url, "sim-embed"),
            budget=16,
            seed=0,
        )
        problem = make_problems(1, seed=1)[0]
        out = await graph.ainvoke({"problem": problem.text})
        ledger = out["ledger"]
        print(f"problem: {problem.text}")
        print(f"answer:  {out['answer']} (truth {problem.answer})")
        print(f"votes:   {out['result']['groups'][:3]}")
        print(
            f"spent:   {ledger['samples']} samples in {ledger['policy_requests']} requests, "
            f"{ledger['completion_tokens']} completion tokens, {ledger['prm_requests']} PRM "
            f"requests, {len(out['nodes']) - 1} tree nodes"
        )


if __name__ == "__main__":
    asyncio.run(main())
