"""Human in the loop: stop before the vote, show the candidate answers, then resume.

With a checkpointer, `interrupt_before=["vote"]` pauses the search once its solutions are
finished and scored. A person (here: this script) reads them from the state, may change the
vote rule for the rest of the run with `update_state`, and resumes. Use
`langgraph.checkpoint.sqlite.SqliteSaver` (extra `sqlite`) to resume in another process.

    python examples/human_in_the_loop.py
"""

from __future__ import annotations

from collections import Counter

from langgraph.checkpoint.memory import InMemorySaver

from langgraph_tts import create_search_graph
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems


def main() -> None:
    config = SimConfig(seed=9)
    graph = create_search_graph(
        "rebase",
        policy=SimPolicy(config),
        prm=SimPRM(config),
        embedder=SimEmbedder(config),
        budget=8,
        seed=0,
        checkpointer=InMemorySaver(),
        interrupt_before=["vote"],
    )
    problem = make_problems(1, seed=9)[0]
    thread = {"configurable": {"thread_id": "review-1"}}
    graph.invoke({"problem": problem.text}, thread)
    state = graph.get_state(thread)
    print(f"paused before: {state.next}")
    nodes = state.values["nodes"]
    finished = [nodes[i] for i in state.values["completed"]]
    for answer, count in Counter(n["answer"] for n in finished).most_common():
        best = max(n["score"] or 0.0 for n in finished if n["answer"] == answer)
        print(f"  candidate {answer}: {count} solutions, best PRM score {best:.2f}")
    # the reviewer asks for a plain majority vote instead of the PRM-weighted one
    graph.update_state(thread, {"settings": {"vote": "majority"}})
    out = graph.invoke(None, thread)
    print(f"vote: {out['result']['vote']}")
    print(f"answer: {out['answer']} (truth {problem.answer})")


if __name__ == "__main__":
    main()
