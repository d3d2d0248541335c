"""Generation requests: vLLM sampling fields, what kind of request a prompt is, and its choices.

`interpret` recognises the package's prompts by their `*_MARKER` phrases (verifier, SCALE
decompose / select / difficulty / solve); anything else is a step-by-step policy request.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from langgraph_tts import prompts
from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.generation import Sampling, finish, solution_chunks
from langgraph_tts.sim.protocol import (
    GENERATION_EOS_ID,
    MAX_MODEL_LEN,
    Message,
    SimRequestError,
    context_error,
    get_bool,
    get_float,
    get_int,
    get_stop,
    token_ids,
    token_pieces,
)
from langgraph_tts.sim.scale_world import (
    decompose_reply,
    difficulty_reply,
    locate_subproblem,
    parse_difficulty_request,
    parse_solve_request,
    select_reply,
    solve_reply,
)
from langgraph_tts.sim.world import SimProblem, SubProblem


class Engine(Protocol):
    """What a task needs of the engine (`SimEngine`): its config and its latent problems."""

    config: SimConfig

    def problem(self, text: str) -> SimProblem: ...

    def verifier_yes(self, problem: SimProblem, solution: str) -> float: ...


__all__ = ["CHAT_KINDS", "Choice", "GenRequest", "Task", "interpret", "parse_generation"]

CHAT_KINDS = ("policy", "verifier", "decompose", "select", "difficulty", "solve", "cot")
"""Every `Task.kind` that `interpret` gives (the `chat_kinds` counters of `/sim/stats`)."""

COMPLETIONS_DEFAULT_MAX_TOKENS = 16
"""vLLM's (and OpenAI's) default for `/v1/completions`."""
_EMPTY_THINK = "<think>\n\n</think>"
_VERIFIER_RE_PARTS = ("Problem:\n", "\n\nSolution so far:\n", "\n\nIs every step so far correct?")
_ALTERNATIVES = (" the", ",", " we", " is", " of", ".", " and", " to", " a", " this")


@dataclass(frozen=True, slots=True)
class GenRequest:
    """The sampling fields of a chat or completions request, validated like vLLM does."""

    n: int
    sampling: Sampling
    seed: int | None
    max_tokens: int
    stop: tuple[str, ...]
    include_stop: bool
    thinking: bool | None
    logprobs: int | None
    """How many top alternatives to report per token; None when logprobs were not requested."""
    return_token_ids: bool


def max_tokens_of(
    body: Mapping[str, Any], n_prompt: int, *, chat: bool, max_model_len: int = MAX_MODEL_LEN
) -> int:
    """`max_tokens` as vLLM 0.32 settles it: 400 when the prompt fills the window or
    `max_tokens` exceeds `max_model_len`; lowered to the room the prompt leaves otherwise."""
    if n_prompt >= max_model_len:
        raise context_error(max_model_len, n_prompt)
    room = max_model_len - n_prompt
    name = "max_completion_tokens" if chat and "max_completion_tokens" in body else "max_tokens"
    default = room if chat else COMPLETIONS_DEFAULT_MAX_TOKENS
    max_tokens = get_int(body, name, default, lo=1) or default
    if max_tokens > max_model_len:
        raise SimRequestError(
            400,
            f"{name}={max_tokens} cannot be greater than max_model_len={max_model_len}. "
            "Please request fewer output tokens.",
            name,
        )
    return min(max_tokens, room)


def parse_generation(
    body: Mapping[str, Any], n_prompt: int, *, chat: bool, max_model_len: int = MAX_MODEL_LEN
) -> GenRequest:
    """Validate the sampling fields of `body` (400 on anything vLLM would refuse)."""
    stream = get_bool(body, "stream", False)
    if stream and not chat:
        raise SimRequestError(
            400, "stream=true is supported by the simulator's chat completions only."
        )
    options = body.get("stream_options")
    if options is not None and not stream:
        raise SimRequestError(400, "Stream options can only be defined when `stream=True`.")
    if options is not None and not isinstance(options, dict):
        raise SimRequestError(400, "stream_options: must be an object")
    n = get_int(body, "n", 1, lo=1) or 1
    temperature = get_float(body, "temperature", 1.0, lo=0.0)
    if 0.0 < temperature < 0.01:
        temperature = 0.01
    if temperature == 0.0 and n > 1:
        raise SimRequestError(400, f"n must be 1 when using greedy sampling, got {n}.")
    top_k = get_int(body, "top_k", 0, lo=-1) or 0
    sampling = Sampling(
        temperature=temperature,
        top_p=get_float(body, "top_p", 1.0, lo=0.0, hi=1.0, lo_open=True),
        top_k=max(top_k, 0),
        min_p=get_float(body, "min_p", 0.0, lo=0.0, hi=1.0),
    )
    seed = get_int(body, "seed", None)
    max_tokens = max_tokens_of(body, n_prompt, chat=chat, max_model_len=max_model_len)
    kwargs = body.get("chat_template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise SimRequestError(400, "chat_template_kwargs: must be an object")
    thinking = kwargs.get("enable_thinking")
    if chat:
        top = get_int(body, "top_logprobs", None, lo=0)
        if top is not None and top > 20:
            raise SimRequestError(400, f"top_logprobs must be at most 20, got {top}.")
        wants = get_bool(body, "logprobs", False)
        if top and not wants:
            raise SimRequestError(400, "when using `top_logprobs`, `logprobs` must be set to true.")
        logprobs = (top or 0) if wants else None
    else:
        logprobs = get_int(body, "logprobs", None, lo=0)
        if logprobs is not None and logprobs > 20:
            raise SimRequestError(400, f"logprobs must be at most 20, got {logprobs}.")
    return GenRequest(
        n=n,
        sampling=sampling,
        seed=None if seed == -1 else seed,
        max_tokens=max_tokens,
        stop=tuple(get_stop(body)),
        include_stop=get_bool(body, "include_stop_str_in_output", False),
        thinking=bool(thinking) if thinking is not None else None,
        logprobs=logprobs,
        return_token_ids=get_bool(body, "return_token_ids", False),
    )


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def _text_logprobs(text: str, rng: np.random.Generator, top: int) -> list[dict[str, Any]]:
    """Plausible per-token logprobs (the chosen token is always the most likely one)."""
    out = []
    for piece in token_pieces(text):
        lp = -float(abs(rng.normal(0.0, 0.4)))
        alts = [_entry(piece, lp)]
        for j, alt in enumerate(a for a in _ALTERNATIVES if a != piece):
            if len(alts) >= top:
                break
            alts.append(_entry(alt, lp - 1.5 - j))
        out.append({**_entry(piece, lp), "top_logprobs": alts[:top]})
    return out


@dataclass(frozen=True, slots=True)
class Choice:
    """One generated choice, ready to be written in chat or completions format."""

    text: str
    finish_reason: str
    stop_reason: str | int | None
    tokens: int
    reasoning: str | None = None
    logprobs: list[dict[str, Any]] | None = None
    hidden_stop: str = ""
    """A matched stop string left out of `text` (still generated, so still counted)."""

    def chat_json(self, index: int, with_token_ids: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": index,
            "message": {
                "role": "assistant",
                "content": self.text,
                "reasoning": self.reasoning,
                "tool_calls": [],
            },
            "logprobs": None if self.logprobs is None else {"content": self.logprobs},
            "finish_reason": self.finish_reason,
            "stop_reason": self.stop_reason,
        }
        if with_token_ids:
            out["token_ids"] = token_ids(f"{self.reasoning or ''} {self.text} {self.hidden_stop}")
        return out

    def completion_json(self, index: int, echo: str) -> dict[str, Any]:
        lp = None
        if self.logprobs is not None:
            offsets, pos = [], len(echo)
            for e in self.logprobs:
                offsets.append(pos)
                pos += len(e["token"])
            lp = {
                "tokens": [e["token"] for e in self.logprobs],
                "token_logprobs": [e["logprob"] for e in self.logprobs],
                "top_logprobs": [
                    {a["token"]: a["logprob"] for a in e["top_logprobs"]} for e in self.logprobs
                ],
                "text_offset": offsets,
            }
        return {
            "index": index,
            "text": echo + self.text,
            "logprobs": lp,
            "finish_reason": self.finish_reason,
            "stop_reason": self.stop_reason,
            "prompt_logprobs": None,
        }


@dataclass(frozen=True)
class Task:
    """What a prompt asks for, and the latent problem behind it."""

    kind: str
    engine: Engine
    problem: SimProblem
    prefix: str = ""
    solution: str = ""
    question: str | None = None
    context: str = ""
    sub: SubProblem | None = None
    user: str = ""
    template_thinking: bool | None = None

    def sample(self, rng: np.random.Generator, req: GenRequest) -> Choice:
        """Draw one choice; `rng` fixes everything random about it."""
        cfg = self.engine.config
        sampling = replace(req.sampling, ramble_rate=cfg.ramble_rate)
        if self.kind == "verifier":
            return self._verify(rng, req)
        if self.kind in ("solve", "cot"):
            thinking = req.thinking if req.thinking is not None else self.template_thinking
            r = solve_reply(
                self.problem,
                self.question,
                self.context,
                rng,
                thinking=thinking is not False,
                max_tokens=req.max_tokens,
            )
            lps = None if req.logprobs is None else _text_logprobs(r.content, rng, req.logprobs)
            stop = self._eos_reason(r.content, r.finish_reason, None)
            return Choice(r.content, r.finish_reason, stop, r.tokens, r.reasoning, lps)
        if self.kind == "policy":
            chunks: Any = solution_chunks(self.problem, self.prefix, rng, sampling)
        elif self.kind == "decompose":
            chunks = [decompose_reply(self.problem, rng, ignore_formats=cfg.ignore_formats)]
        elif self.kind == "select":
            chunks = [select_reply(self.user, rng, ignore_formats=cfg.ignore_formats)]
        else:
            chunks = [difficulty_reply(self.sub, rng, ignore_formats=cfg.ignore_formats)]
        c = finish(chunks, stop=req.stop, include_stop=req.include_stop, max_tokens=req.max_tokens)
        lps = None if req.logprobs is None else _text_logprobs(c.text, rng, req.logprobs)
        hidden = c.stop_reason or "" if not req.include_stop else ""
        stop = self._eos_reason(c.text, c.finish_reason, c.stop_reason)
        return Choice(c.text, c.finish_reason, stop, c.tokens, None, lps, hidden)

    def _eos_reason(self, text: str, finish_reason: str, stop: str | None) -> str | int | None:
        """`stop` unless the choice ended at EOS, where a share `eos_id_share` of texts (by a
        hash of the text, so no random draw is spent) ends at the generation-config EOS id."""
        if finish_reason != "stop" or stop is not None:
            return stop
        share = self.engine.config.eos_id_share
        return GENERATION_EOS_ID if zlib.crc32(text.encode()) % 1000 < share * 1000 else None

    def _verify(self, rng: np.random.Generator, req: GenRequest) -> Choice:
        p_yes = min(max(self.engine.verifier_yes(self.problem, self.solution), 1e-6), 1 - 1e-6)
        t = req.sampling.temperature
        if t == 0.0:
            yes = p_yes >= 0.5
        else:
            a, b = p_yes ** (1.0 / t), (1.0 - p_yes) ** (1.0 / t)
            yes = bool(rng.random() < a / (a + b))
        word = "Yes" if yes else "No"
        c = finish([word], stop=req.stop, include_stop=req.include_stop, max_tokens=req.max_tokens)
        lps = None
        if req.logprobs is not None:
            ranked = sorted([("Yes", p_yes), ("No", 1.0 - p_yes)], key=lambda x: -x[1])
            top = [_entry(tok, math.log(p)) for tok, p in ranked]
            chosen = math.log(p_yes if yes else 1.0 - p_yes)
            lps = [{**_entry(word, chosen), "top_logprobs": top}]
        return Choice(c.text, c.finish_reason, c.stop_reason, c.tokens, None, lps)


def _verifier_parts(user: str) -> tuple[str, str]:
    head, sol_mark, q_mark = _VERIFIER_RE_PARTS
    if user.startswith(head) and sol_mark in user:
        problem, rest = user[len(head) :].split(sol_mark, 1)
        return problem, rest.rsplit(q_mark, 1)[0]
    return user, ""


def interpret(engine: Engine, messages: list[Message], continue_final: bool) -> Task:
    """Classify a prompt by its system message and rebuild the latent problem it is about."""
    system = next((m.content for m in messages if m.role == "system"), "")
    user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    prefix = messages[-1].content if continue_final and messages[-1].role == "assistant" else ""
    template_thinking = None
    if continue_final and prefix.lstrip().startswith(_EMPTY_THINK):
        template_thinking = False
        prefix = prefix.lstrip()[len(_EMPTY_THINK) :].lstrip("\n")
    if prompts.VERIFIER_MARKER in system:
        problem_text, solution = _verifier_parts(user)
        return Task("verifier", engine, engine.problem(problem_text), solution=solution)
    if prompts.DECOMPOSE_MARKER in system:
        return Task("decompose", engine, engine.problem(user), user=user)
    if prompts.SELECT_MARKER in system:
        return Task("select", engine, engine.problem(user), user=user)
    if prompts.DIFFICULTY_MARKER in system:
        parts = parse_difficulty_request(user)
        problem = engine.problem(parts[0] if parts else user)
        idx = locate_subproblem(problem, parts[2]) if parts else None
        sub = problem.subproblems[idx] if idx is not None else None
        return Task("difficulty", engine, problem, sub=sub, user=user)
    if system.strip() == prompts.SOLVE_SUBPROBLEM_SYSTEM_PROMPT.strip():
        solve = parse_solve_request(user)
        if solve is None:
            return Task("cot", engine, engine.problem(user), template_thinking=template_thinking)
        conditions, context, question = solve
        return Task(
            "solve",
            engine,
            engine.problem(conditions),
            question=question,
            context=context,
            template_thinking=template_thinking,
        )
    # a search over one SCALE sub-problem (System-2 by search) is about the whole problem
    solve = parse_solve_request(user)
    latent = engine.problem(solve[0] if solve is not None else user)
    return Task("policy", engine, latent, prefix=prefix, user=user)
