"""The built-in simulator in its own process, for the benchmarks (one copy of the start-up)."""

from __future__ import annotations

import re
import subprocess
import sys

__all__ = ["start_sim"]


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
