"""Bad input (issue 11, item 3): one clear line at the command line, a typed exception in Python.

Every case belongs to an entry of `langgraph_tts.troubleshooting.ENTRIES` (the source of
docs/troubleshooting.md) and must produce that entry's message: on the command line as the
only line on stderr (`langgraph-tts: <message>`, no traceback, non-zero exit), in Python as
the text of the entry's exception. Cases that need a fix in the evaluation runner are marked
`xfail(strict=True)`, so they fail loudly once the fix lands and the mark can go.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from langgraph_tts import cli
from langgraph_tts.errors import ConfigError, ServerError, ServerUnavailableError
from langgraph_tts.troubleshooting import ENTRIES, markdown, pattern

DOC = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"
ENTRY = {t.key: t for t in ENTRIES}
NEEDS_EVAL_FIX = "needs the evaluation runner's fix (listed in the issue 11 report)"


# -- servers that are not vLLM ----------------------------------------------------------------


class _Fake(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {
        "/html/v1/models": (200, "text/html", b"<!DOCTYPE html><html><body>Login</body></html>"),
        "/json/v1/models": (200, "application/json", b'{"status": "ok", "version": "1.2"}'),
    }

    def do_GET(self) -> None:
        status, kind, body = self.routes.get(self.path, (404, "text/plain", b"Not Found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that is not vLLM: an HTML page, other JSON, 404s."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "nonutf8.jsonl").write_bytes(b'{"problem": "caf\xe9 1+1?", "answer": "2"}\n')
    (d / "utf16.jsonl").write_text('{"problem": "1+1?", "answer": "2"}\n', encoding="utf-16")
    (d / "badjson.jsonl").write_text('{"problem": "1+1?", "answer": 2\n')
    (d / "missing.jsonl").write_text('{"problem": "1+1?"}\n')
    (d / "notobject.jsonl").write_text('["1+1?", "2"]\n')
    (d / "empty.jsonl").write_text("")
    (d / "blank.jsonl").write_text("\n  \n\n")
    (d / "emptyfield.jsonl").write_text('{"problem": "  ", "answer": "2"}\n')
    (d / "dup.jsonl").write_text(
        '{"id": "a", "problem": "1+1?", "answer": "2"}\n'
        '{"id": "a", "problem": "2+2?", "answer": "4"}\n'
    )
    (d / "table_v2.json").write_text(json.dumps({"version": 2}))
    (d / "table_bad.json").write_text("not json")
    (d / "afile").write_text("a file, not a directory\n")
    return d


# -- the cases ----------------------------------------------------------------------------------


@dataclass
class Case:
    key: str
    run: Callable[[Any], Any]
    """Given the fixtures, a list of CLI arguments (plus stdin text), or a Python callable."""
    kind: str = "cli"
    exc: type[BaseException] | tuple[type[BaseException], ...] = ConfigError
    message: str | None = None
    """Overrides the entry's message (Python-side wording that differs from the CLI's)."""
    xfail: str | None = None


def _sim_flags(sim: Any) -> list[str]:
    return ["--base-url", sim.base_url, "--model", "sim-policy", "--quiet"]


def _solve(*extra: str, problem: str = "What is 1+1?") -> Callable[[Any], Any]:
    return lambda fx: (["solve", problem, *_sim_flags(fx["sim"]), *extra], None)


def _eval(dataset: str, *extra: str) -> Callable[[Any], Any]:
    def args(fx: Any) -> Any:
        path = dataset.format(d=fx["files"])
        out = fx["files"] / "out"
        return (
            ["eval", "--dataset", path, "--out", str(out), *_sim_flags(fx["sim"]), *extra],
            None,
        )

    return args


def _ctx(**kw: Any) -> Callable[[Any], Any]:
    from langgraph_tts.context import SolveContext

    return lambda fx: SolveContext(**kw)


def _solver(problem: str) -> Callable[[Any], Any]:
    def run(fx: Any) -> Any:
        from langgraph_tts.context import SolveContext
        from langgraph_tts.solve import Solver

        ctx = SolveContext(strategy="cot", base_url=fx["sim"].base_url, model="sim-policy")
        return asyncio.run(Solver(ctx)(problem))

    return run


def _preflight(url: str, **kw: Any) -> Callable[[Any], Any]:
    def run(fx: Any) -> Any:
        from langgraph_tts.context import SolveContext
        from langgraph_tts.preflight import check_servers

        base = url.format(fake=fx["fake"], sim=fx["sim"].base_url, dead=_dead_port())
        ctx = SolveContext(strategy="cot", base_url=base, **{"model": "sim-policy", **kw})
        return asyncio.run(check_servers(ctx))

    return run


def _dataset(name: str) -> Callable[[Any], Any]:
    def run(fx: Any) -> Any:
        from langgraph_tts.evaluation import load_dataset

        return load_dataset(name.format(d=fx["files"]))

    return run


def _table(name: str) -> Callable[[Any], Any]:
    def run(fx: Any) -> Any:
        from langgraph_tts.compute_optimal.tablefile import load_table

        return load_table(name.format(d=fx["files"]))

    return run


def _faulty(role: str, **faults: Any) -> Callable[[Any], Any]:
    """A request to a simulator that fails every attempt in one way (fast retries)."""

    def run(fx: Any) -> Any:
        from langgraph_tts.clients import Backoff, ChatPolicy, PoolingPRM
        from langgraph_tts.sim.server import SimConfig, start_server

        fast = Backoff(initial_s=0.001, max_s=0.01, retry_after_cap_s=0.01)
        with start_server(SimConfig(**faults)) as srv:
            if role == "prm":
                prm = PoolingPRM(srv.url, "sim-prm", backoff=fast, max_retries=2)
                return prm.score_sync("1+1?", [["one\n\n", "two\n\n"]])
            policy = ChatPolicy(
                srv.base_url,
                "sim-policy",
                max_model_len=4096,
                backoff=fast,
                max_retries=2,
                timeout_s=0.1,
            )
            return policy.generate_sync([{"role": "user", "content": "1+1?"}])

    return run


BIG = "Find x. " * 150_000  # 1.2 MB
CASES: list[Case] = [
    Case("empty-problem", _solve(problem="")),
    Case("empty-problem", _solve(problem="  \n\t ")),
    Case(
        "empty-problem",
        _solver("   "),
        "py",
        message="no problem to solve: pass {'problem': '...'} or chat messages",
    ),
    Case("long-problem", lambda fx: (["solve", "-", *_sim_flags(fx["sim"])], BIG)),
    Case("long-problem", _solver(BIG), "py"),
    Case("unknown-strategy", _solve("--strategy", "dorra")),
    Case("unknown-strategy", _ctx(strategy="dorra"), "py"),
    Case("unknown-setting", _solve("--set", "budgett=3")),
    Case("unknown-setting", _ctx(budgett=3), "py"),
    Case("set-syntax", _solve("--set", "tau")),
    Case("budget-not-positive", _solve("--budget", "0")),
    Case("budget-not-positive", _solve("--budget", "-3")),
    Case("budget-not-positive", _ctx(budget=0), "py"),
    Case("budget-too-large", _solve("--budget", "100000000")),
    Case("budget-too-large", _ctx(budget=10**9), "py"),
    Case("budget-not-a-number", _solve("--budget", "lots")),
    Case("number-is-boolean", _solve("--set", "max_samples=true")),
    Case("tau-range", _solve("--strategy", "scale", "--set", "tau=1.5")),
    Case("tau-range", _solve("--strategy", "scale", "--set", "tau=-0.1")),
    Case("tau-range", _ctx(strategy="scale", tau=2.0), "py"),
    Case("temperature-range", _solve("--set", "temperature=-1")),
    Case("temperature-range", _solve("--set", "temperature=100")),
    Case("temperature-range", _ctx(temperature=-0.5), "py"),
    Case("top-p-range", _solve("--set", "top_p=0")),
    Case("top-p-range", _solve("--set", "top_p=1.5")),
    Case("top-p-range", _ctx(top_p=2), "py"),
    Case("max-concurrency", _solve("--set", "max_concurrency=0")),
    Case("malformed-url", _solve("--base-url", "htp:/bad")),
    Case("malformed-url", _solve("--base-url", "http://")),
    Case("malformed-url", _solve("--base-url", "http://exa mple.com/v1")),
    Case("malformed-url", _ctx(base_url="127.0.0.1:8000/v1"), "py"),
    Case("bad-port", _solve("--base-url", "http://127.0.0.1:99999/v1")),
    Case("bad-port", _ctx(base_url="http://127.0.0.1:99999/v1"), "py"),
    Case("prm-url-v1", lambda fx: _solve("--prm-url", fx["sim"].base_url)(fx)),
    Case("server-down", lambda fx: _solve("--base-url", f"http://127.0.0.1:{_dead_port()}/v1")(fx)),
    Case("server-down", _preflight("http://127.0.0.1:{dead}/v1"), "py", ServerUnavailableError),
    Case("model-not-served", _solve("--model", "nope")),
    Case("model-not-served", _preflight("{sim}", model="nope"), "py"),
    Case("html-page", lambda fx: _solve("--base-url", fx["fake"] + "/html/v1")(fx)),
    Case("html-page", _preflight("{fake}/html/v1"), "py", ServerError),
    Case("not-openai-json", lambda fx: _solve("--base-url", fx["fake"] + "/json/v1")(fx)),
    Case("not-openai-json", _preflight("{fake}/json/v1"), "py", ServerError),
    Case("no-models-route", lambda fx: _solve("--base-url", fx["fake"] + "/v1")(fx)),
    Case("no-models-route", _preflight("{fake}/api"), "py", ServerError),
    Case("retries-status", _faulty("policy", fail_rate=1.0, burst_len=1000), "py", ServerError),
    Case("retries-timeout", _faulty("policy", slow_rate=1.0, slow_ms=300), "py", ServerError),
    Case("retries-disconnect", _faulty("policy", reset_rate=1.0), "py", ServerError),
    Case("retries-malformed", _faulty("policy", malformed_rate=1.0), "py", ServerError),
    Case("retries-shape", _faulty("prm", wrong_rows_rate=1.0), "py", ServerError),
    Case(
        "table-version",
        lambda fx: _solve(
            "--strategy", "compute_optimal", "--table", str(fx["files"] / "table_v2.json")
        )(fx),
    ),
    Case("table-version", _table("{d}/table_v2.json"), "py"),
    Case(
        "table-not-json",
        lambda fx: _solve(
            "--strategy", "compute_optimal", "--table", str(fx["files"] / "table_bad.json")
        )(fx),
    ),
    Case("table-not-json", _table("{d}/table_bad.json"), "py"),
    Case(
        "table-missing", _solve("--strategy", "compute_optimal", "--table", "/nonexistent/t.json")
    ),
    Case("table-missing", _table("/nonexistent/t.json"), "py"),
    Case(
        "table-wrong-strategy",
        lambda fx: _solve("--strategy", "dora", "--table", str(fx["files"] / "table_v2.json"))(fx),
    ),
    Case("dataset-unknown", _eval("nosuch")),
    Case("dataset-unknown", _dataset("nosuch"), "py"),
    Case("dataset-invalid-json", _eval("{d}/badjson.jsonl")),
    Case("dataset-invalid-json", _dataset("{d}/badjson.jsonl"), "py"),
    Case("dataset-missing-fields", _eval("{d}/missing.jsonl")),
    Case("dataset-missing-fields", _eval("{d}/notobject.jsonl")),
    Case("dataset-missing-fields", _dataset("{d}/missing.jsonl"), "py"),
    Case("dataset-empty", _eval("{d}/empty.jsonl")),
    Case("dataset-empty", _eval("{d}/blank.jsonl")),
    Case("dataset-empty", _dataset("{d}/blank.jsonl"), "py"),
    Case("dataset-not-utf8", _eval("{d}/nonutf8.jsonl")),
    Case("dataset-not-utf8", _eval("{d}/utf16.jsonl")),
    Case(
        "dataset-not-utf8",
        _dataset("{d}/nonutf8.jsonl"),
        "py",
        message="…nonutf8.jsonl…not UTF-8…",
    ),
    Case(
        "dataset-missing-fields",
        _dataset("{d}/emptyfield.jsonl"),
        "py",
        message="…emptyfield.jsonl:1: …empty…",
    ),
    Case(
        "dataset-missing-fields",
        _dataset("{d}/dup.jsonl"),
        "py",
        message="…dup.jsonl:2: duplicate id 'a'…",
    ),
    Case("sim-dataset", _eval("sim:nope")),
    Case("sim-dataset", _dataset("sim:nope"), "py"),
    Case("count-flag", _eval("sim:default", "--concurrency", "0")),
    Case(
        "count-flag",
        _eval("sim:default", "--limit", "-3"),
        message="--limit must be at least 1, got -3",
    ),
    Case("out-unwritable", _eval("sim:default", "--limit", "1", "--out", "{d}/afile")),
    Case("out-unwritable", _eval("sim:default", "--limit", "1", "--out", "{d}/afile/sub")),
    Case("out-unwritable", _eval("sim:default", "--limit", "1", "--out", "/proc/langgraph-tts")),
    Case("sim-server-option", lambda fx: (["sim-server", "--fail-rate", "2"], None)),
]


def _id(case: Case) -> str:
    return f"{case.key}-{case.kind}-{CASES.index(case)}"


@pytest.fixture
def fx(sim: Any, fake: str, files: Path) -> dict[str, Any]:
    return {"sim": sim, "fake": fake, "files": files}


def _cli(argv: list[str], stdin: str | None, capsys: pytest.CaptureFixture[str], mp: Any) -> Any:
    if stdin is not None:
        mp.setattr("sys.stdin", io.StringIO(stdin))
    try:  # `--out` given twice (a case's own comes last): argparse keeps the last
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    return code, capsys.readouterr()


PARAMS = [
    pytest.param(
        c, id=_id(c), marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
    )
    for c in CASES
]


@pytest.mark.parametrize("case", PARAMS)
def test_bad_input_gets_its_documented_message(
    case: Case, fx: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    entry = ENTRY[case.key]
    expected = pattern(case.message or entry.message)
    if case.kind == "cli":
        argv, stdin = case.run(fx)
        argv = [a.format(d=fx["files"]) for a in argv]
        code, out = _cli(argv, stdin, capsys, monkeypatch)
        err_lines = [line for line in out.err.splitlines() if line.strip()]
        assert code not in (0, None), out
        assert "Traceback" not in out.err
        assert len(err_lines) == 1, out.err
        line = err_lines[-1]
        prefix = "sim-server: " if argv[0] == "sim-server" else "langgraph-tts: "
        assert line.startswith(prefix) or "error: " in line, line
        assert expected.search(line), (line, entry.message)
    else:
        with pytest.raises(case.exc) as info:
            case.run(fx)
        text = str(info.value)
        assert "\n" not in text.strip(), text
        assert expected.search(text), (text, entry.message)


def test_at_least_30_cases_and_every_entry_is_tried() -> None:
    assert len(CASES) >= 30
    assert {c.key for c in CASES} == set(ENTRY)
    assert len({t.key for t in ENTRIES}) == len(ENTRIES)


def test_troubleshooting_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == markdown(), (
        "docs/troubleshooting.md is out of date: "
        "python -m langgraph_tts.troubleshooting > docs/troubleshooting.md"
    )
