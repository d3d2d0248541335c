"""Every message a bad input gets, with its cause and fix: the source of docs/troubleshooting.md.

`tests/test_bad_input.py` runs at least one case of every entry and checks that the message
printed (the command line) or raised (Python) matches the entry's `message`, where `…` stands
for the parts that vary (a path, a port, a list). It also checks that docs/troubleshooting.md
is `markdown()`, so the page cannot drift from what the code says. Regenerate it with
`python -m langgraph_tts.troubleshooting > docs/troubleshooting.md`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ENTRIES", "Trouble", "markdown", "pattern"]


@dataclass(frozen=True, slots=True)
class Trouble:
    key: str
    input: str
    """The bad input."""
    message: str
    """The line printed after `langgraph-tts: ` (and the exception's text); `…` varies."""
    error: str
    """What Python raises (`langgraph_tts.errors`)."""
    fix: str


ENTRIES: tuple[Trouble, ...] = (
    # -- the problem --------------------------------------------------------------------------
    Trouble(
        "empty-problem",
        'An empty or whitespace-only problem (`solve ""`, `solve "  "`).',
        "the problem is empty",
        "ConfigError",
        "Pass the problem text. From Python, `Solver(...)('')` raises `ConfigError: no problem "
        "to solve: …`.",
    ),
    Trouble(
        "long-problem",
        "A problem over 100,000 characters, e.g. a 1 MB file piped to `solve -`.",
        "the problem is … characters long; at most 100000 are accepted (a file or a field "
        "passed by mistake?)",
        "ConfigError",
        "Pass the problem itself (`errors.MAX_PROBLEM_CHARS` is the limit). Long texts belong "
        "in a dataset file, one problem per line.",
    ),
    # -- settings -----------------------------------------------------------------------------
    Trouble(
        "unknown-strategy",
        "A strategy name that does not exist (`--strategy dorra`).",
        "unknown strategy 'dorra'; did you mean 'dora'? Valid: …",
        "ConfigError",
        "Use one of the names listed (`langgraph-tts solve --help` summarises each).",
    ),
    Trouble(
        "unknown-setting",
        "A setting that does not exist (`--set budgett=3`, `SolveContext(budgett=3)`).",
        "unknown setting 'budgett'; did you mean 'budget'? Valid: …",
        "ConfigError",
        "Use the suggested name; docs/configuration.md lists every setting.",
    ),
    Trouble(
        "set-syntax",
        "`--set` without `=` (`--set tau`).",
        "--set expects KEY=VALUE, got 'tau'",
        "ConfigError",
        "Write `--set tau=0.3`.",
    ),
    Trouble(
        "budget-not-positive",
        "A budget of 0 or below (`--budget 0`, `--budget -3`).",
        "invalid setting: budget: Input should be greater than 0",
        "ConfigError",
        "The budget N is the number of rollouts: at least 1.",
    ),
    Trouble(
        "budget-too-large",
        "An absurd budget (`--budget 100000000`).",
        "invalid setting: budget: Input should be less than or equal to 4096",
        "ConfigError",
        "Use at most 4096 rollouts per problem; cap the spend with `max_samples` / "
        "`max_total_tokens` rather than a huge N.",
    ),
    Trouble(
        "budget-not-a-number",
        "A budget that is not an integer (`--budget lots`).",
        "langgraph-tts solve: error: argument --budget: invalid int value: 'lots' (see "
        "langgraph-tts solve --help)",
        "(command line only)",
        "Pass an integer. Every flag's type and range is in `--help`.",
    ),
    Trouble(
        "number-is-boolean",
        "A true/false where a number belongs (`--set max_samples=true`, `budget=True`).",
        "invalid setting: max_samples: expected a number, got true",
        "ConfigError",
        "Pass the number itself; a boolean is not read as 1 or 0.",
    ),
    Trouble(
        "tau-range",
        "A SCALE threshold τ outside [0, 1] (`--set tau=1.5`, `--set tau=-0.1`).",
        "invalid setting: tau: Input should be …",
        "ConfigError",
        "τ is a difficulty in [0, 1]: sub-problems harder than τ go to System 2 (1: none).",
    ),
    Trouble(
        "temperature-range",
        "A temperature below 0 or above 5 (`--set temperature=-1`).",
        "invalid setting: temperature: Input should be …",
        "ConfigError",
        "Use a temperature in [0, 5] (0 is greedy).",
    ),
    Trouble(
        "top-p-range",
        "A top-p of 0 or above 1 (`--set top_p=0`, `--set top_p=1.5`).",
        "invalid setting: top_p: Input should be …",
        "ConfigError",
        "Use a top-p in (0, 1]; 1 keeps every token.",
    ),
    Trouble(
        "max-concurrency",
        "Zero connections (`--set max_concurrency=0`).",
        "invalid setting: max_concurrency: Input should be greater than 0",
        "ConfigError",
        "Use at least 1 (default 64 requests in flight per server).",
    ),
    Trouble(
        "malformed-url",
        "A URL that is not http(s)://host… (`htp:/bad`, `http://`, a space in the host).",
        "invalid setting: base_url: base_url must be an http(s) URL such as "
        "http://127.0.0.1:8000/v1, got …",
        "ConfigError",
        "Give the full URL, scheme and host included: `http://127.0.0.1:8000/v1`.",
    ),
    Trouble(
        "bad-port",
        "A port out of range (`http://127.0.0.1:99999/v1`).",
        "invalid setting: base_url: base_url has an invalid port (Port out of range 0-65535): …",
        "ConfigError",
        "Use the port the server listens on (vLLM's `--port`, 8000 by default).",
    ),
    Trouble(
        "prm-url-v1",
        "A PRM URL ending in /v1.",
        "prm_url is the server root (vLLM serves /pooling there): drop the /v1 from …",
        "ConfigError",
        "Pass the root: `--prm-url http://127.0.0.1:8001`.",
    ),
    # -- servers ------------------------------------------------------------------------------
    Trouble(
        "server-down",
        "Nothing listening at the URL (the server is not started, or another port).",
        "cannot reach the policy server at … Start one with `vllm serve … --port …` (or the "
        "built-in simulator: `langgraph-tts sim-server --port …`).",
        "ServerUnavailableError",
        "Start the server (the message gives the command), or fix the URL.",
    ),
    Trouble(
        "model-not-served",
        "A model name the server does not serve (`--model nope`).",
        "the policy server at … does not serve model 'nope'; it serves … (set --model)",
        "ConfigError",
        "Use one of the names listed (vLLM serves `--served-model-name`, else the model path).",
    ),
    Trouble(
        "html-page",
        "A URL that answers with an HTML page (a web app, a proxy's login or error page).",
        "the policy server at … is not a vLLM (OpenAI-compatible) server: GET …/models answered "
        "an HTML page; set --base-url to vLLM's OpenAI /v1 URL, e.g. http://127.0.0.1:8000/v1",
        "ServerError",
        "Point `--base-url` at vLLM (`…/v1`); check the port and any proxy in between.",
    ),
    Trouble(
        "not-openai-json",
        "A URL that answers 200 with JSON that is not an OpenAI model list.",
        "the policy server at … is not a vLLM (OpenAI-compatible) server: GET …/models answered "
        "JSON that is not a model list: …",
        "ServerError",
        "Point `--base-url` at vLLM's OpenAI-compatible API (`…/v1`), not another service.",
    ),
    Trouble(
        "no-models-route",
        "A URL whose server has no `/models` route (HTTP 404), e.g. the wrong path.",
        "the policy server at … is not a vLLM (OpenAI-compatible) server: GET …/models answered "
        "HTTP 404; …",
        "ServerError",
        "vLLM serves the OpenAI routes under `/v1`: `--base-url http://host:8000/v1`.",
    ),
    # -- a server that fails past the retries ---------------------------------------------------
    Trouble(
        "retries-status",
        "A server that keeps answering 503/429/5xx (overloaded, restarting) past the retries.",
        "policy server at … returned HTTP 503: … (gave up after … attempts)",
        "ServerError",
        "Wait for the server (its log says why); lower `max_concurrency`; in `eval`, run the "
        "same command again: failed problems are retried, finished ones kept.",
    ),
    Trouble(
        "retries-timeout",
        "Responses slower than the read timeout (600 s by default) on every attempt.",
        "policy server at … timed out (…, read timeout …s); gave up after … attempts",
        "ServerError",
        "Lower `max_total_tokens`/`max_step_tokens` or the load on the server, or raise the "
        "client's `timeout_s`.",
    ),
    Trouble(
        "retries-disconnect",
        "A server that drops connections mid-response on every attempt (crashing, a proxy).",
        "policy server at … failed: DisconnectedError: …; gave up after … attempts",
        "ServerError",
        "Check the server's log for crashes (out of memory), and any proxy's limits.",
    ),
    Trouble(
        "retries-malformed",
        "2xx responses that are not JSON (truncated bodies, a proxy's page) on every attempt.",
        "policy server at … returned a body that is not a JSON object (gave up after … "
        "attempts): …",
        "ServerError",
        "Point the URL at vLLM itself; check proxies that cut or rewrite bodies.",
    ),
    Trouble(
        "retries-shape",
        "Replies of the wrong shape on every attempt: another number of choices, `/pooling` "
        "rows or vectors, embeddings of another dimension.",
        "prm server at …: returned 3 step rows for 2 steps (gave up after … attempts)",
        "ServerError",
        "Serve the model the client expects (a STEP-pooling PRM; one embedding model behind "
        "one URL); pass `OpenAIEmbedder(dim=...)` to pin the dimension.",
    ),
    # -- strategy tables ------------------------------------------------------------------------
    Trouble(
        "table-version",
        "A strategy table of another version (or missing fields).",
        "…: invalid strategy table: version: Input should be 1…",
        "ConfigError",
        "Write the table again with this version's `langgraph-tts calibrate`.",
    ),
    Trouble(
        "table-not-json",
        "A strategy table that is not JSON.",
        "…: not valid JSON (…)",
        "ConfigError",
        "Pass the JSON file `langgraph-tts calibrate --out` wrote.",
    ),
    Trouble(
        "table-missing",
        "A strategy table path that does not exist.",
        "strategy table … not found (write one with `langgraph-tts calibrate`)",
        "ConfigError",
        "Check the path, or run `langgraph-tts calibrate` first.",
    ),
    Trouble(
        "table-wrong-strategy",
        "`--table` with a strategy other than compute_optimal.",
        "--table is only used by --strategy compute_optimal",
        "ConfigError",
        "Add `--strategy compute_optimal`, or drop `--table`.",
    ),
    # -- datasets and eval --------------------------------------------------------------------
    Trouble(
        "dataset-unknown",
        "A dataset that is neither a built-in name nor a file.",
        "unknown dataset …: not a built-in name (math500, aime24, aime25, amc23, gsm8k) nor a file",
        "ConfigError",
        "Use a built-in name, `sim:<scenario>`, or the path of a JSONL file.",
    ),
    Trouble(
        "dataset-invalid-json",
        "A dataset line that is not JSON.",
        "…:1: not valid JSON (…)",
        "ConfigError",
        "Fix the line named (file:line); each line is one JSON object.",
    ),
    Trouble(
        "dataset-missing-fields",
        "A dataset line without `problem` or `answer`, with one of them empty, with an `id` "
        "seen before, or that is not an object.",
        "…:1: a record needs 'problem' and 'answer' fields",
        "ConfigError",
        'Each line is `{"id": …, "problem": "…", "answer": "…"}` (`id` optional).',
    ),
    Trouble(
        "dataset-empty",
        "A dataset file with no problems (empty, or blank lines only).",
        "dataset … has no problems",
        "ConfigError",
        "Check the file; `--limit` counts problems from its start.",
    ),
    Trouble(
        "dataset-not-utf8",
        "A dataset file that is not UTF-8 (Latin-1, UTF-16, binary).",
        "…:1: not UTF-8 text (byte … at offset …: …); convert it to UTF-8",
        "ConfigError",
        "Convert it: `iconv -f latin1 -t utf-8 in.jsonl > out.jsonl`.",
    ),
    Trouble(
        "count-flag",
        "`--concurrency` or `--limit` below 1 (0 would hang, or mean every problem).",
        "--concurrency must be at least 1, got 0",
        "ConfigError",
        "Pass a positive number; leave `--limit` out to run every problem.",
    ),
    Trouble(
        "sim-dataset",
        "A simulated dataset with an unknown scenario or a bad seed (`sim:nope`, `sim:default:x`).",
        "unknown simulated scenario 'nope'; known: default, popular_worse, easy, hard",
        "ConfigError",
        "Use `sim:<default|popular_worse|easy|hard>[:<seed>]`, as the sim-server serves.",
    ),
    Trouble(
        "out-unwritable",
        "`--out` where no directory can be made: an existing file, a path under a file, a "
        "read-only place.",
        "cannot use …: …",
        "OSError (FileExistsError, NotADirectoryError, PermissionError)",
        "Pass a directory you can write; the run's results.jsonl and summary.json go there.",
    ),
    Trouble(
        "sim-server-option",
        "A simulator option out of range (`sim-server --fail-rate 2`).",
        "sim-server: invalid option fail_rate: fail_rate must be a probability in [0, 1], got 2.0",
        "pydantic ValidationError from SimConfig",
        "See `langgraph-tts sim-server --help` and docs/simulator.md for each knob's range.",
    ),
)


def pattern(message: str) -> re.Pattern[str]:
    """The regular expression of a message: literal text, `…` for anything."""
    return re.compile(".*".join(re.escape(part) for part in message.split("…")), re.DOTALL)


HEADER = """# Troubleshooting

Every bad input below ends the command line with ONE line on stderr, `langgraph-tts: <message>`
(exit code 2 for a bad setting or input file, 1 for a server or output problem), never a
traceback (`--debug` shows one). From Python the same message is the text of a typed exception of
`langgraph_tts.errors` (`ConfigError` is also a `ValueError`; `ServerError` a `RuntimeError`).
`…` stands for the parts that vary.

Each entry is checked by `tests/test_bad_input.py`, and this page is generated from
`langgraph_tts/troubleshooting.py` (`python -m langgraph_tts.troubleshooting >
docs/troubleshooting.md`; a test fails when it is out of date).

Faults of a server that was working (503/429 bursts, resets, timeouts, malformed replies, a
restart) are retried; see [clients.md](clients.md#retries-timeouts-errors). When the retries
run out, the message names the server, what it did last and the attempts made, e.g. `policy
server at http://…/chat/completions returned HTTP 503: Service Unavailable (gave up after 6
attempts)`; in `eval` that problem's row records the error and the next run retries it.
"""


def markdown() -> str:
    """docs/troubleshooting.md."""
    lines = [HEADER]
    lines.append("| # | bad input | message | raised in Python | what to do |")
    lines.append("|---|---|---|---|---|")
    for i, t in enumerate(ENTRIES, 1):
        message = t.message.replace("|", "\\|")
        lines.append(f"| {i} | {t.input} | `` {message} `` | {t.error} | {t.fix} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(markdown())
