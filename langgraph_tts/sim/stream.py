"""A streamed chat completion (`stream: true`) with `n` choices, sent as vLLM sends it.

vLLM decodes the `n` sequences of a request together, one token each per engine step, and
streams every choice's new text as its own `chat.completion.chunk` (one choice per chunk,
interleaved by step): first one chunk per choice with `delta: {"role": "assistant",
"content": ""}`, then the deltas, the last one of a choice with its `finish_reason` and
`stop_reason`; with `stream_options.include_usage` a final chunk without choices carries the
request's usage, and with `continuous_usage_stats` every chunk carries `usage` whose
`completion_tokens` are the chunk's choice's tokens so far. `data: [DONE]` ends the stream.

Here the choices are drawn whole (as the non-streamed endpoint draws them) and then played out
step by step: at step k every unfinished choice has generated min(k x `stream_interval`, its
tokens) tokens, so a short choice finishes first, as on a GPU. What a stream has emitted when
the client goes away is what it generated (`ChatStream.outcome`).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from langgraph_tts.sim.protocol import new_id, piece_ids
from langgraph_tts.sim.requests import Choice

__all__ = ["ChatStream", "sse"]

_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])")


def sse(event: dict[str, Any] | str) -> bytes:
    """One server-sent event: `data: <json>` and a blank line."""
    data = event if isinstance(event, str) else json.dumps(event)
    return f"data: {data}\n\n".encode()


def _pieces(text: str) -> list[str]:
    """The token pieces of `text`, concatenating to `text` exactly (trailing space kept)."""
    out = [m.group(0) for m in _PIECE_RE.finditer(text)]
    rest = len("".join(out))
    if rest < len(text):
        if out:
            out[-1] += text[rest:]
        else:
            out = [text]
    return out


@dataclass
class ChatStream:
    """The chunks of one streamed chat request, played out step by step.

    `steps()` yields, per decoding step, the events of that step; `emitted` says how many
    tokens each choice has generated so far, `finished` which choices are done.
    """

    model: str
    kind: str
    n_prompt: int
    choices: list[Choice]
    interval: int = 1
    include_usage: bool = False
    continuous_usage: bool = False
    with_token_ids: bool = False
    id: str = field(default_factory=lambda: new_id("chatcmpl"))
    created: int = field(default_factory=lambda: int(time.time()))
    emitted: list[int] = field(init=False)
    finished: list[bool] = field(init=False)

    def __post_init__(self) -> None:
        self.emitted = [0] * len(self.choices)
        self.finished = [False] * len(self.choices)

    @property
    def complete(self) -> bool:
        return all(self.finished)

    @property
    def n_steps(self) -> int:
        """How many lists `steps()` yields in all."""
        longest = max((c.tokens for c in self.choices), default=0)
        decoding = max(1, -(-longest // self.interval)) if self.choices else 0
        return 1 + decoding + int(self.include_usage)

    def steps(self) -> Iterator[list[dict[str, Any]]]:
        """Events step by step: the role chunks, then one list per decoding step, then the
        final usage chunk (when asked for)."""
        yield [self._chunk(i, {"role": "assistant", "content": ""}) for i in self._open()]
        pieces = [_pieces(c.text) for c in self.choices]
        step = 0
        while not self.complete:
            step += 1
            yield [self._advance(i, step, pieces[i]) for i in self._open()]
        if self.include_usage:
            yield [self._base([], self._usage(sum(self.emitted)))]

    def _open(self) -> list[int]:
        return [i for i, done in enumerate(self.finished) if not done]

    def _advance(self, i: int, step: int, pieces: list[str]) -> dict[str, Any]:
        """Choice i's chunk of decoding step `step`."""
        choice = self.choices[i]
        start = self.emitted[i]
        end = min(choice.tokens, step * self.interval)
        last = end >= choice.tokens
        hi = len(pieces) if last else min(end, len(pieces))
        lo = min(start, hi)
        text = "".join(pieces[lo:hi])
        delta: dict[str, Any] = {"content": text}
        if start == 0 and choice.reasoning:
            delta["reasoning"] = choice.reasoning
        self.emitted[i] = end
        extra: dict[str, Any] = {}
        if choice.logprobs is not None:
            extra["logprobs"] = {"content": choice.logprobs[lo:hi]}
        if self.with_token_ids:
            extra["token_ids"] = piece_ids(pieces[lo:hi])
        if last:
            self.finished[i] = True
            extra["finish_reason"] = choice.finish_reason
            extra["stop_reason"] = choice.stop_reason
        return self._chunk(i, delta, **extra)

    def _chunk(self, i: int, delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": i, "delta": delta, "logprobs": None}
        choice["finish_reason"] = None
        choice.update(extra)
        usage = self._usage(self.emitted[i]) if self.continuous_usage else None
        return self._base([choice], usage)

    def _base(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return out

    def _usage(self, completion: int) -> dict[str, Any]:
        return {
            "prompt_tokens": self.n_prompt,
            "total_tokens": self.n_prompt + completion,
            "completion_tokens": completion,
        }

    def outcome(self) -> tuple[dict[str, int], Counter[str]]:
        """(usage, chat kinds) of what was generated: finished choices count as samples, the
        tokens of every choice so far as completion tokens."""
        usage = {
            "samples": sum(self.finished),
            "prompt_tokens": self.n_prompt,
            "completion_tokens": sum(self.emitted),
        }
        return usage, Counter({self.kind: 1})
