"""`SimEngine`: the simulated vLLM endpoints as plain functions from request body to response.

The HTTP server and the in-process classes both call these methods, so the two can never
disagree. The engine never sleeps and never injects faults; that is the transport's job.
"""

from __future__ import annotations

import base64
import functools
import math
import multiprocessing
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, MutableSequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.embed import embed_text
from langgraph_tts.sim.protocol import (
    Message,
    SimRequestError,
    cached_count_tokens,
    context_error,
    get_bool,
    get_int,
    get_messages,
    new_id,
    parse_qwen_prompt,
    prompt_tokens,
    render_qwen,
    token_ids,
)
from langgraph_tts.sim.requests import (
    CHAT_KINDS,
    Choice,
    GenRequest,
    Task,
    interpret,
    parse_generation,
)
from langgraph_tts.sim.stream import ChatStream
from langgraph_tts.sim.world import (
    SimProblem,
    apparent_value,
    count_tokens,
    hash_normal,
    oracle_value,
    problem_for,
    rng_for,
)

__all__ = ["FAULT_KINDS", "STREAM_KEYS", "USAGE_KEYS", "Outcome", "SimEngine", "SimStats"]

USAGE_KEYS = (
    "samples",
    "prompt_tokens",
    "completion_tokens",
    "prm_items",
    "prm_tokens",
    "embed_inputs",
    "embed_tokens",
)
STEP_TAG = "<extra_0>"
ENDPOINTS = {
    "/v1/chat/completions": "chat_completions",
    "/v1/completions": "completions",
    "/pooling": "pooling",
    "/v1/embeddings": "embeddings",
}


@dataclass(slots=True)
class Outcome:
    """A successful response and what it spent (committed to the stats only if delivered)."""

    payload: dict[str, Any]
    usage: dict[str, int] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)


FAULT_KINDS = (
    "status_503",
    "status_429",
    "malformed",
    "slow",
    "reset",
    "wrong_rows",
    "wrong_dim",
    "outage",
)
_ERROR_STATUSES = range(400, 600)
STREAM_KEYS = ("requests", "aborted", "aborted_choices")
"""Streamed chat requests: how many, how many the client left before they finished
(`aborted`, as vLLM aborts a request whose client disconnected), and their unfinished choices."""


class SimStats:
    """Counters behind `GET /sim/stats`, safe across threads and, when `shared`, processes.

    The counters are one flat array of integers over a fixed set of keys (endpoints, chat
    kinds, usage keys, fault kinds, error statuses). With `shared=True` the array and its lock
    live in shared memory, so the worker processes of `sim-server --workers K` (forked after
    this object was made) count into one set of totals and `/sim/reset` resets them all.
    """

    def __init__(self, *, shared: bool = False) -> None:
        keys = [
            *(("requests", k) for k in ENDPOINTS),
            *(("chat_kinds", k) for k in CHAT_KINDS),
            *(("usage", k) for k in USAGE_KEYS),
            *(("faults", k) for k in FAULT_KINDS),
            *(("errors", str(k)) for k in _ERROR_STATUSES),
            *(("streams", k) for k in STREAM_KEYS),
        ]
        self._index = {key: i for i, key in enumerate(keys)}
        self._values: MutableSequence[int]
        self._lock: AbstractContextManager[Any]
        if shared:
            ctx = multiprocessing.get_context("fork")
            self._values = ctx.RawArray("q", len(keys))
            self._lock = ctx.Lock()
        else:
            self._values = [0] * len(keys)
            self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._values[:] = [0] * len(self._values)

    def _add_locked(self, section: str, key: str, n: int) -> None:
        self._values[self._index[(section, key)]] += n

    def record(self, endpoint: str, outcome: Outcome) -> None:
        with self._lock:
            self._add_locked("requests", endpoint, 1)
            for kind, n in outcome.kinds.items():
                self._add_locked("chat_kinds", kind, n)
            for key, n in outcome.usage.items():
                self._add_locked("usage", key, n)

    def stream(self, *, aborted_choices: int) -> None:
        """One streamed request played out; `aborted_choices` > 0: the client went away."""
        with self._lock:
            self._add_locked("streams", "requests", 1)
            if aborted_choices:
                self._add_locked("streams", "aborted", 1)
                self._add_locked("streams", "aborted_choices", aborted_choices)

    def fault(self, kind: str) -> None:
        with self._lock:
            self._add_locked("faults", kind, 1)

    def error(self, status: int) -> None:
        with self._lock:
            self._add_locked("errors", str(status), 1)

    def snapshot(self) -> dict[str, Any]:
        """Counters as plain JSON; usage counts only requests that were delivered intact."""
        with self._lock:
            values = list(self._values)
        out: dict[str, Any] = {k: 0 for k in USAGE_KEYS}
        out.update(requests={}, chat_kinds={}, faults={}, errors={}, streams={})
        for (section, key), i in self._index.items():
            if section == "usage":
                out[key] = values[i]
            elif values[i]:
                out[section][key] = values[i]
        return out


_TAG_TOKENS = count_tokens(STEP_TAG)


def _tagged_tokens(text: str) -> int:
    """`count_tokens` of a PRM input, per step: the tag starts and ends with a punctuation
    token, so no token crosses it, and each step's count is cached."""
    segments = text.split(STEP_TAG)
    return sum(cached_count_tokens(seg) for seg in segments) + _TAG_TOKENS * (len(segments) - 1)


def _truncate_rows(
    rows: list[list[float]], n_tokens: int, limit: int, side: str
) -> list[list[float]]:
    """The step rows left when an input of `n_tokens` keeps `limit` tokens: vLLM's "right"
    keeps the FIRST tokens (so the last steps lose their rows), "left" the last ones; "strict"
    (no `truncate_prompt_tokens`) refuses an input longer than the window."""
    if n_tokens <= limit:
        return rows
    if side == "strict":
        raise context_error(limit, n_tokens)
    keep = len(rows) * limit // n_tokens
    if keep == 0:
        return []
    return rows[-keep:] if side == "left" else rows[:keep]


def _byte_order(endianness: Any) -> str:
    """numpy's byte-order mark for vLLM's `endianness` ("native", the default, is the
    server's own order)."""
    if endianness is None or endianness == "native":
        return "<" if sys.byteorder == "little" else ">"
    if endianness in ("little", "big"):
        return "<" if endianness == "little" else ">"
    raise SimRequestError(
        400, f"endianness: must be 'native', 'big' or 'little', got {endianness!r}", "endianness"
    )


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class SimEngine:
    """The simulated policy, PRM and embedder behind one set of request handlers."""

    def __init__(self, config: SimConfig | None = None, *, stats: SimStats | None = None) -> None:
        self.config = config or SimConfig()
        self.stats = stats or SimStats()
        # A search re-scores every earlier prefix of every candidate in each iteration; the
        # value of a prefix is a pure function of (tag, problem text, prefix) under this config.
        self._noisy_cached = functools.lru_cache(maxsize=1 << 14)(self._noisy_uncached)

    # --- world views ---------------------------------------------------------------------

    def problem(self, text: str) -> SimProblem:
        """The latent problem behind a problem text under this configuration."""
        return problem_for(text, scenario=self.config.scenario, seed=self.config.seed)

    def _noisy(self, tag: str, problem: SimProblem, solution: str) -> float:
        return self._noisy_cached(tag, problem.text, solution)

    def _noisy_uncached(self, tag: str, problem_text: str, solution: str) -> float:
        cfg = self.config
        problem = self.problem(problem_text)
        noise = cfg.prm_noise if tag == "prm" else cfg.verifier_noise
        if noise == 0:
            return oracle_value(problem, solution)
        v = apparent_value(
            problem,
            solution,
            seed=cfg.seed,
            miss_rate=cfg.prm_miss_rate,
            foresight=cfg.prm_foresight,
        )
        z = hash_normal(tag, cfg.seed, problem.text, solution)
        return _sigmoid(_logit(min(max(v, 0.01), 0.99)) + noise * z)

    def prm_score(self, problem: SimProblem, solution: str) -> float:
        """PRM's P(good) of a prefix: a logit-noisy, sometimes error-blind view of its value."""
        return self._noisy("prm", problem, solution)

    def verifier_yes(self, problem: SimProblem, solution: str) -> float:
        """The generative verifier's P("Yes") (noisier than the PRM by default)."""
        return self._noisy("verifier", problem, solution)

    # --- dispatch ------------------------------------------------------------------------

    def handle(self, path: str, body: Mapping[str, Any]) -> Outcome:
        """Run the POST endpoint at `path` (raises `SimRequestError` for 4xx)."""
        name = ENDPOINTS.get(path)
        if name is None:
            raise SimRequestError(404, f"Not Found: {path}")
        handler = getattr(self, name)
        out: Outcome = handler(body)
        return out

    def _check_model(self, body: Mapping[str, Any], expected: str) -> str:
        model = body.get("model")
        if model is None:
            return expected
        if model != expected:
            raise SimRequestError(404, f"The model `{model}` does not exist.")
        return expected

    def models(self) -> dict[str, Any]:
        """`GET /v1/models`: the three simulated models, OpenAI format."""
        cfg, now = self.config, int(time.time())
        names = (cfg.policy_model, cfg.prm_model, cfg.embed_model)
        data: list[dict[str, Any]] = [
            {
                "id": name,
                "object": "model",
                "created": now,
                "owned_by": "vllm",
                "root": name,
                "parent": None,
                "max_model_len": cfg.max_model_len,
                "permission": [],
            }
            for name in names
        ]
        return {"object": "list", "data": data}

    # --- generation ----------------------------------------------------------------------

    def _sample_rng(self, req: GenRequest, key: str, i: int, nonce: int) -> np.random.Generator:
        if req.sampling.greedy:
            return rng_for("greedy", self.config.seed, key)
        if req.seed is not None:
            return rng_for("sample", self.config.seed, req.seed + i, key)
        return rng_for("fresh", nonce, i)

    def generate(
        self, messages: list[Message], continue_final: bool, req: GenRequest
    ) -> tuple[Task, list[Choice]]:
        """The `n` choices of one prompt (shared by chat and completions)."""
        task = interpret(self, messages, continue_final)
        key = render_qwen(
            messages, add_generation_prompt=not continue_final, continue_final=continue_final
        )
        nonce = random.getrandbits(64)  # only unseeded requests use it; see new_id
        choices = [task.sample(self._sample_rng(req, key, i, nonce), req) for i in range(req.n)]
        return task, choices

    def _chat(
        self, body: Mapping[str, Any]
    ) -> tuple[str, list[Message], bool, int, GenRequest, Task, list[Choice]]:
        """Validate a chat request and draw its choices."""
        model = self._check_model(body, self.config.policy_model)
        messages = get_messages(body)
        cont = get_bool(body, "continue_final_message", False)
        if cont and get_bool(body, "add_generation_prompt", True):
            raise SimRequestError(
                400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
            )
        cont = cont and messages[-1].role == "assistant"
        n_prompt = prompt_tokens(messages)
        req = parse_generation(body, n_prompt, chat=True, max_model_len=self.config.max_model_len)
        task, choices = self.generate(messages, cont, req)
        return model, messages, cont, n_prompt, req, task, choices

    def chat_stream(self, body: Mapping[str, Any]) -> ChatStream:
        """`POST /v1/chat/completions` with `stream: true`: the choices, to be played out step
        by step (`ChatStream.steps`) by the server or the in-process client."""
        model, _, _, n_prompt, req, task, choices = self._chat(body)
        options = body.get("stream_options") or {}
        return ChatStream(
            model=model,
            kind=task.kind,
            n_prompt=n_prompt,
            choices=choices,
            interval=self.config.stream_interval,
            include_usage=bool(options.get("include_usage")),
            continuous_usage=bool(options.get("include_usage"))
            and bool(options.get("continuous_usage_stats")),
            with_token_ids=req.return_token_ids,
        )

    def record_stream(self, stream: ChatStream) -> None:
        """Count a played-out stream: what it generated, and whether it was aborted."""
        usage, kinds = stream.outcome()
        self.stats.record("/v1/chat/completions", Outcome({}, usage, kinds))
        self.stats.stream(aborted_choices=sum(1 for done in stream.finished if not done))

    def chat_completions(self, body: Mapping[str, Any]) -> Outcome:
        """`POST /v1/chat/completions`, answered with one JSON body (also when `stream` is
        set: the engine does not stream, the HTTP server does, see `chat_stream`)."""
        model, messages, cont, n_prompt, req, task, choices = self._chat(body)
        completion = sum(c.tokens for c in choices)
        payload: dict[str, Any] = {
            "id": new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [c.chat_json(i, req.return_token_ids) for i, c in enumerate(choices)],
            "usage": {
                "prompt_tokens": n_prompt,
                "total_tokens": n_prompt + completion,
                "completion_tokens": completion,
                "prompt_tokens_details": None,
            },
            "prompt_logprobs": None,
        }
        if req.return_token_ids:
            payload["prompt_token_ids"] = token_ids(
                render_qwen(messages, add_generation_prompt=not cont, continue_final=cont)
            )
        usage = {"samples": req.n, "prompt_tokens": n_prompt, "completion_tokens": completion}
        return Outcome(payload, usage, Counter({task.kind: 1}))

    def completions(self, body: Mapping[str, Any]) -> Outcome:
        """`POST /v1/completions`: raw prompts; Qwen2.5-templated ones are read as chats."""
        model = self._check_model(body, self.config.policy_model)
        raw = body.get("prompt")
        prompts = [raw] if isinstance(raw, str) else raw
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) for p in prompts)
        ):
            raise SimRequestError(
                400,
                "prompt: must be a string or a non-empty list of strings (token ids are "
                "not supported by the simulator)",
            )
        counts = [cached_count_tokens(p) for p in prompts]
        n_prompt = sum(counts)
        req = parse_generation(
            body, max(counts), chat=False, max_model_len=self.config.max_model_len
        )
        echo = get_bool(body, "echo", False)
        choices_json: list[dict[str, Any]] = []
        kinds: Counter[str] = Counter()
        completion = 0
        for p_index, prompt in enumerate(prompts):
            parsed = parse_qwen_prompt(prompt)
            if parsed is None:
                messages, cont = [Message("user", prompt)], False
            else:
                messages, cont = parsed
            task, choices = self.generate(messages, cont, req)
            kinds[task.kind] += 1
            for i, c in enumerate(choices):
                completion += c.tokens
                choices_json.append(c.completion_json(p_index * req.n + i, prompt if echo else ""))
        payload = {
            "id": new_id("cmpl"),
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices_json,
            "usage": {
                "prompt_tokens": n_prompt,
                "total_tokens": n_prompt + completion,
                "completion_tokens": completion,
                "prompt_tokens_details": None,
            },
        }
        usage = {
            "samples": req.n * len(prompts),
            "prompt_tokens": n_prompt,
            "completion_tokens": completion,
        }
        return Outcome(payload, usage, kinds)

    # --- PRM -----------------------------------------------------------------------------

    def _pooling_items(self, body: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(problem, assistant text, full rendered input) for each item of a pooling request."""
        if body.get("messages") is not None:
            messages = get_messages(body)
            rendered = render_qwen(messages, add_generation_prompt=False, continue_final=False)
            problem = next((m.content for m in reversed(messages) if m.role == "user"), "")
            answer = next((m.content for m in reversed(messages) if m.role == "assistant"), "")
            return [(problem, answer, rendered)]
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(x, str) for x in inputs)
        ):
            raise SimRequestError(
                400, "input: must be a string or a non-empty list of strings (or send messages)"
            )
        items = []
        for text in inputs:
            parsed = parse_qwen_prompt(text)
            if parsed is None:
                items.append(("", text, text))
                continue
            msgs = parsed[0]
            problem = next((m.content for m in reversed(msgs) if m.role == "user"), "")
            answer = next((m.content for m in reversed(msgs) if m.role == "assistant"), "")
            items.append((problem, answer, text))
        return items

    def pooling(self, body: Mapping[str, Any]) -> Outcome:
        """`POST /pooling` with `task: token_classify`: one [P(bad), P(good)] row per step tag."""
        model = self._check_model(body, self.config.prm_model)
        task = body.get("task")
        if task != "token_classify":
            raise SimRequestError(
                400,
                f"Task {task!r} is not supported by this model; supported tasks: "
                '[\'token_classify\']. Send "task": "token_classify".',
            )
        limit, side = self._truncation(body)
        data: list[dict[str, Any]] = []
        n_tokens = 0
        for index, (problem_text, answer, rendered) in enumerate(self._pooling_items(body)):
            problem = self.problem(problem_text)
            item_tokens = _tagged_tokens(rendered)
            segments = answer.split(STEP_TAG)[: answer.count(STEP_TAG)]
            rows, prefix = [], ""
            for seg in segments:
                prefix += seg + "\n\n"
                p = self.prm_score(problem, prefix)
                rows.append([1.0 - p, p])
            rows = _truncate_rows(rows, item_tokens, limit, side)
            n_tokens += min(item_tokens, limit)
            data.append({"index": index, "object": "pooling", "data": rows})
        payload = {
            "id": new_id("pool"),
            "object": "list",
            "created": int(time.time()),
            "model": model,
            "data": data,
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens, "completion_tokens": 0},
        }
        return Outcome(payload, {"prm_items": len(data), "prm_tokens": n_tokens})

    def _truncation(self, body: Mapping[str, Any]) -> tuple[int, str]:
        """(tokens kept, side) of a pooling request, validated as vLLM 0.32 does; without
        `truncate_prompt_tokens` the limit is the window and a longer input is a 400."""
        window = self.config.max_model_len
        side = body.get("truncation_side") or "right"
        if side not in ("left", "right"):
            raise SimRequestError(400, "`truncation_side` must be either 'left' or 'right'.")
        k = get_int(body, "truncate_prompt_tokens", None, lo=-1)
        if k is not None and k > window:
            raise SimRequestError(
                400,
                f"truncate_prompt_tokens={k} cannot be greater than max_model_len = {window}. "
                "Please request a smaller truncation size.",
                "truncate_prompt_tokens",
            )
        return (window if k in (None, -1) else k), ("strict" if k is None else side)

    # --- embeddings ----------------------------------------------------------------------

    def embeddings(self, body: Mapping[str, Any]) -> Outcome:
        """`POST /v1/embeddings`: unit vectors with the direction geometry of the world."""
        model = self._check_model(body, self.config.embed_model)
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise SimRequestError(
                400,
                "input: must be a string or a non-empty list of strings (token ids are not "
                "supported by the simulator)",
            )
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise SimRequestError(400, f"encoding_format: must be 'float' or 'base64', got {fmt!r}")
        order = _byte_order(body.get("endianness"))
        dim = self.config.embed_dim
        dims = get_int(body, "dimensions", None, lo=1)
        if dims is not None and dims != dim:
            raise SimRequestError(
                400,
                f'Model "{model}" does not support matryoshka representation, changing '
                f"output dimensions will lead to poor results (it always returns {dim}).",
            )
        data = []
        for i, text in enumerate(texts):
            vec = embed_text(text, dim=dim, seed=self.config.seed)
            emb: Any = (
                base64.b64encode(vec.astype(f"{order}f4").tobytes()).decode("ascii")
                if fmt == "base64"
                else vec.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": emb})
        n_tokens = sum(cached_count_tokens(t) for t in texts)
        payload = {
            "id": new_id("embd"),
            "object": "list",
            "created": int(time.time()),
            "model": model,
            "data": data,
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens, "completion_tokens": 0},
        }
        return Outcome(payload, {"embed_inputs": len(texts), "embed_tokens": n_tokens})
