"""Request batching, latency floor and client CPU cost of the search graph, side by side.

The simulator runs in ANOTHER process (so its CPU is not counted) with a fixed latency per
request. Measured in one run:

1. samples per chat request (one request per distinct prefix, `n` = copies), DORA at N=16;
2. PRM requests per rollout with batched `/pooling` (one request per iteration) vs one
   request per candidate;
3. wall time per problem vs the latency floor at N=64 (an iteration needs one policy, one PRM
   and one embedding round trip; PRM and embedding run concurrently);
4. client CPU seconds per rollout of the LangGraph graph vs a minimal hand-written asyncio loop
   that runs the same DORA iterations with raw httpx and the same allocation function;
5. the N=64 wall time against other simulator layouts, as ratios to the single process of 3.:
   `sim-server --workers 2` (two processes on one port) and three servers (policy, PRM and
   embedder each in its own process, as three `vllm serve` would be).

    python benchmarks/throughput.py [--latency-ms 50] [--problems 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import httpx
from _sim import start_sim  # benchmarks/_sim.py

from langgraph_tts import allocation
from langgraph_tts.answers import split_steps
from langgraph_tts.clients.prm import PRM_TEMPLATES
from langgraph_tts.context import SearchContext, with_overrides
from langgraph_tts.prompts import POLICY_SYSTEM_PROMPT
from langgraph_tts.sim.world import make_problems
from langgraph_tts.solve import Solver

qwen_prm = PRM_TEMPLATES["qwen2.5"]


def context(url: str, prm: str | None = None, embed: str | None = None, **kw: Any) -> SearchContext:
    """Settings for the simulator at `url` (PRM and embedder at their own URLs if given)."""
    return SearchContext(
        base_url=url + "/v1",
        model="sim-policy",
        prm_url=prm or url,
        prm_model="sim-prm",
        embed_url=(embed or url) + "/v1",
        embed_model="sim-embed",
        prm_template="qwen2.5",
        **kw,
    )


async def graph_runs(ctx: SearchContext, problems: list[str]) -> dict[str, Any]:
    """Solve the problems one after another with the prebuilt graph; totals and timings."""
    solver = Solver(ctx)
    totals: dict[str, float] = {}
    walls, iterations = [], []
    cpu0 = time.process_time()
    for i, problem in enumerate(problems):
        started = time.perf_counter()
        run_ctx = with_overrides(ctx, seed=1000 + i)
        out = await solver(problem, context=run_ctx)
        walls.append(time.perf_counter() - started)
        iterations.append(out["result"]["iterations"])
        for k, v in out["ledger"].items():
            totals[k] = totals.get(k, 0) + v
    return {
        "cpu_s": time.process_time() - cpu0,
        "walls": walls,
        "iterations": iterations,
        "totals": totals,
    }


async def minimal_dora(client: httpx.AsyncClient, url: str, problem: str, n: int, seed: int) -> int:
    """DORA by hand: raw httpx, dicts, no LangGraph. Returns the rollouts drawn."""
    frontier: dict[str, tuple[int, int]] = {"": (n, 0)}  # prefix -> (copies, tokens so far)
    done = rollouts = 0
    for it in range(40):

        async def chat(
            prefix: str, copies: int, used: int, it: int = it
        ) -> list[tuple[str, int, bool]]:
            messages = [
                {"role": "system", "content": POLICY_SYSTEM_PROMPT},
                {"role": "user", "content": problem},
            ]
            body: dict[str, Any] = {
                "model": "sim-policy",
                "messages": messages,
                "n": copies,
                "temperature": 0.8,
                "top_p": 1.0,
                "max_tokens": min(256, 2048 - used),
                "stop": ["\n\n"],
                "include_stop_str_in_output": True,
                "return_token_ids": True,
                "seed": seed + 7919 * it,
            }
            if prefix:
                messages.append({"role": "assistant", "content": prefix})
                body.update(continue_final_message=True, add_generation_prompt=False)
            data = (await client.post(url + "/v1/chat/completions", json=body)).json()
            out = []
            for c in data["choices"]:
                text = c["message"]["content"] or ""
                finished = c["finish_reason"] != "stop" or c.get("stop_reason") is None or not text
                out.append((prefix + text, used + len(c.get("token_ids") or []), finished))
            return out

        batches = await asyncio.gather(*(chat(p, k, u) for p, (k, u) in frontier.items()))
        children = [c for b in batches for c in b]
        rollouts += len(children)
        done += sum(1 for c in children if c[2])
        active = [c for c in children if not c[2]]
        if done >= n or not active:
            break

        prm, emb = await asyncio.gather(
            client.post(
                url + "/pooling",
                json={
                    "model": "sim-prm",
                    "task": "token_classify",
                    "input": [qwen_prm(problem, split_steps(c[0])) for c in active],
                },
            ),
            client.post(
                url + "/v1/embeddings", json={"model": "sim-embed", "input": [c[0] for c in active]}
            ),
        )
        scores = [row["data"][-1][1] for row in prm.json()["data"]]
        vectors = [d["embedding"] for d in sorted(emb.json()["data"], key=lambda d: d["index"])]
        counts = allocation.dora(scores, n, embeddings=vectors)
        frontier = {}
        for (text, used, _), k in zip(active, counts, strict=True):
            if k:
                prev = frontier.get(text, (0, used))
                frontier[text] = (prev[0] + k, used)
    return rollouts


async def minimal_runs(url: str, problems: list[str], n: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        rollouts = 0
        for i, problem in enumerate(problems):
            rollouts += await minimal_dora(client, url, problem, n, 1000 + i)
        return {
            "cpu_s": time.process_time() - cpu0,
            "wall_s": time.perf_counter() - wall0,
            "rollouts": rollouts,
        }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    problems = [p.text for p in make_problems(args.problems, scenario="default", seed=3)]
    report: dict[str, Any] = {"latency_ms": args.latency_ms, "problems": len(problems)}
    proc, url = start_sim("--latency-ms", str(args.latency_ms))
    try:
        dora16 = await graph_runs(context(url, strategy="dora", budget=16), problems)
        t = dora16["totals"]
        report["samples_per_chat_request_N16"] = t["samples"] / t["policy_requests"]
        unbatched = await graph_runs(
            context(url, strategy="dora", budget=16, prm_batch="off"), problems
        )
        report["prm_requests_per_rollout_batched"] = t["prm_requests"] / t["samples"]
        report["prm_requests_per_rollout_unbatched"] = (
            unbatched["totals"]["prm_requests"] / unbatched["totals"]["samples"]
        )
        dora64 = await graph_runs(context(url, strategy="dora", budget=64), problems)
        lat = args.latency_ms / 1000
        floors3 = [it * 3 * lat for it in dora64["iterations"]]
        floors2 = [it * 2 * lat for it in dora64["iterations"]]
        report["N64_mean_wall_s"] = sum(dora64["walls"]) / len(problems)
        report["N64_wall_over_floor_policy_prm_embed"] = sum(dora64["walls"]) / sum(floors3)
        report["N64_wall_over_floor_policy_max_prm_embed"] = sum(dora64["walls"]) / sum(floors2)
        report["N64_mean_iterations"] = sum(dora64["iterations"]) / len(problems)
        report["N64_iterations"] = dora64["iterations"]
        minimal64 = await minimal_runs(url, problems, 64)
        report["N64_minimal_loop_wall_s"] = minimal64["wall_s"] / len(problems)
        report["N64_wall_over_minimal_loop_wall"] = sum(dora64["walls"]) / minimal64["wall_s"]
        graph_cpu = dora16["cpu_s"] / t["samples"]
        minimal = await minimal_runs(url, problems, 16)
        minimal_cpu = minimal["cpu_s"] / minimal["rollouts"]
        report["client_cpu_ms_per_rollout_graph"] = graph_cpu * 1000
        report["client_cpu_ms_per_rollout_minimal_loop"] = minimal_cpu * 1000
        report["client_cpu_ratio_graph_over_minimal"] = graph_cpu / minimal_cpu
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    await layouts(args.latency_ms, problems, report)
    # the same N=64 runs against a simulator with no latency: what is left is CPU, the
    # client's (measured here) and the simulator's (the rest of the wall time)
    proc, url = start_sim("--latency-ms", "0")
    try:
        zero = await graph_runs(context(url, strategy="dora", budget=64), problems)
        iterations = sum(zero["iterations"])
        wall_it = sum(zero["walls"]) / iterations
        client_it = zero["cpu_s"] / iterations
        report["N64_zero_latency_wall_ms_per_iteration"] = wall_it * 1000
        report["N64_zero_latency_client_cpu_ms_per_iteration"] = client_it * 1000
        report["N64_zero_latency_server_ms_per_iteration"] = (wall_it - client_it) * 1000
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return report


async def layouts(latency_ms: float, problems: list[str], report: dict[str, Any]) -> None:
    """N=64 wall / floor with the simulator split over processes, and its ratio to one process."""
    floor = sum(report["N64_iterations"]) * 3 * latency_ms / 1000
    single = report["N64_mean_wall_s"] * len(problems)
    for name, workers in (("workers2", (2,)), ("three_servers", (1, 1, 1))):
        sims = [start_sim("--latency-ms", str(latency_ms), "--workers", str(w)) for w in workers]
        try:
            policy, prm, embed = ([url for _, url in sims] * 3)[:3]  # one server: all roles
            ctx = context(policy, prm=prm, embed=embed, strategy="dora", budget=64)
            out = await graph_runs(ctx, problems)
        finally:
            for proc, _ in sims:
                proc.terminate()
                proc.wait(timeout=10)
        if out["iterations"] != report["N64_iterations"]:
            raise RuntimeError(f"{name}: the search took other paths than with one process")
        report[f"N64_wall_over_floor_policy_prm_embed_{name}"] = sum(out["walls"]) / floor
        report[f"N64_{name}_wall_over_single_process_wall"] = sum(out["walls"]) / single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--json", help="also write the report to this path")
    args = parser.parse_args()
    os.environ.setdefault("LANGSMITH_TRACING", "false")
    report = asyncio.run(main_async(args))
    width = max(len(k) for k in report)
    for key, value in report.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
