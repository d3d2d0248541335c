"""The built-in simulator: a latent math world served over vLLM's HTTP protocol or in-process.

`start_server` runs a vLLM-compatible policy + PRM + embedder on 127.0.0.1 with a world in
which test-time-scaling strategies behave meaningfully (directions of different quality,
clustered wrong answers, a noisy PRM, paraphrase-aware embeddings, SCALE sub-problems).
`SimPolicy`, `SimPRM` and `SimEmbedder` give the same world without sockets.
See docs/simulator.md.
"""

from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.engine import SimEngine
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM, sim_clients
from langgraph_tts.sim.server import SimServer, add_arguments, run_from_args, start_server
from langgraph_tts.sim.world import (
    Direction,
    SimProblem,
    SubProblem,
    count_tokens,
    is_correct,
    make_problems,
    oracle_value,
    problem_for,
)

__all__ = [
    "Direction",
    "SimConfig",
    "SimEmbedder",
    "SimEngine",
    "SimPRM",
    "SimPolicy",
    "SimProblem",
    "SimServer",
    "SubProblem",
    "add_arguments",
    "count_tokens",
    "is_correct",
    "make_problems",
    "oracle_value",
    "problem_for",
    "run_from_args",
    "sim_clients",
    "start_server",
]
