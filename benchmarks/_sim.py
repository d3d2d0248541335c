"""The built-in simulator in its own process, for the benchmarks (one copy of the start-up)."""

from __future__ import annotations

import re
import subprocess
import sys

from langgraph_tts.sim.world import SimProblem, make_problems

__all__ = ["start_sim", "world_problems"]


def world_problems(world: str, n: int, seed: int) -> list[tuple[str, SimProblem]]:
    """`n` simulated problems, each with the scenario it lives in.

    `mixed` is half `easy` and half `hard` problems, interleaved (easy, hard, easy, ...) so a
    pool or a calibration sees both kinds from the start: a bimodal difficulty none of the
    scenarios has. The simulator knows a problem by its text, so where an easy and a hard
    problem happen to share one (none do up to n = 400) the later is left out and the list is
    that much shorter.
    """
    if world != "mixed":
        return [(world, p) for p in make_problems(n, scenario=world, seed=seed)]
    easy = make_problems(n - n // 2, scenario="easy", seed=seed)
    hard = make_problems(n // 2, scenario="hard", seed=seed)
    pairs = [
        (w, p) for e, h in zip(easy, hard, strict=False) for w, p in (("easy", e), ("hard", h))
    ]
    seen: set[str] = set()
    unique = []
    for world_name, problem in pairs + [("easy", p) for p in easy[len(hard) :]]:
        if problem.text.strip() not in seen:
            seen.add(problem.text.strip())
            unique.append((world_name, problem))
    return unique


def start_sim(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start `langgraph-tts sim-server ARGS` on a free 127.0.0.1 port; return it and its root URL.

    The server binds port 0 and announces the port it got once it listens, so there is no
    race for the port and no polling.
    """
    command = [sys.executable, "-m", "langgraph_tts.cli", "sim-server"]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"listening on (http://\S+)", line)
    if found is None:
        proc.kill()
        raise RuntimeError(f"the simulator did not start: {line!r}")
    return proc, found.group(1)
