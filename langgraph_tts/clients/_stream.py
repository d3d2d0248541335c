"""Reading a streamed chat completion with `n` choices, as vLLM sends it, and stopping it early.

vLLM streams the choices of one request interleaved as server-sent events: `data: {...}` lines,
each a `chat.completion.chunk` whose `choices` hold ONE choice (`index`, `delta`, and on its
last chunk `finish_reason`/`stop_reason`), a blank line after each event, and `data: [DONE]` at
the end. With `stream_options: {"include_usage": true, "continuous_usage_stats": true}` every
chunk carries `usage`, whose `completion_tokens` are those of the chunk's choice so far (vLLM's
`previous_num_tokens[i]`), and a last chunk with no choices carries the request's total.

`ChoiceStream` folds those events into per-choice text and token counts. After each event it
tells whether a choice has just finished; the caller then runs its stopping test and may close
the response (vLLM aborts the request's remaining sequences when the client disconnects).
Whatever was read is booked: finished choices become `Sample`s, unfinished ones are counted as
cancelled with the tokens they had generated.

Token counts, in order of preference: the choice's streamed `usage` (exact); else the number
of streamed `token_ids` (exact too); else an upper-leaning estimate, the larger of the
choice's deltas (each carries at least one token) and its characters / 4, flagged by
`Generation.usage_estimated`. Tokens the server generated after the disconnect and before it
noticed are invisible to the client and not counted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from langgraph_tts.clients.types import Generation, Sample, StopTest, Usage

__all__ = ["STREAM_OPTIONS", "ChoiceStream", "StreamBroken", "sse_data"]

STREAM_OPTIONS = {"include_usage": True, "continuous_usage_stats": True}
"""vLLM's `StreamOptions`: usage on every chunk (per choice) and a total at the end."""

_ABORTED = frozenset({"abort", "error"})


class StreamBroken(Exception):
    """The stream cannot be read on (an unparsable event, a choice the server aborted)."""


def sse_data(line: bytes) -> str | None:
    """The payload of one server-sent-events line (`data: ...`), or None for other lines."""
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith("data:"):
        return None
    return text[5:].strip()


@dataclass(slots=True)
class _Choice:
    """What one choice has streamed so far."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = None
    deltas: int = 0
    usage_tokens: int | None = None
    token_ids: int | None = None
    finish_reason: str | None = None
    stop_reason: str | int | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def tokens(self) -> tuple[int, bool]:
        """(tokens generated so far, whether that is an estimate)."""
        if self.usage_tokens is not None:
            return self.usage_tokens, False
        if self.token_ids is not None:
            return self.token_ids, False
        chars = sum(len(t) for t in self.text) + sum(len(r) for r in self.reasoning)
        return max(self.deltas, math.ceil(chars / 4)), True

    def sample(self) -> Sample:
        return Sample(
            text="".join(self.text),
            finish_reason=self.finish_reason,
            stop_reason=self.stop_reason,
            tokens=self.tokens()[0],
            reasoning="".join(self.reasoning) or None,
            logprobs=self.logprobs,
        )


class ChoiceStream:
    """Folds the events of one streamed request for `n` choices into samples and usage.

    It is the `StreamSink` of `HTTPClient.stream`: each line goes to `line`, which runs
    `stop` on the finished choices whenever one more finishes and asks for the response to be
    closed once `stop` says so.

    Args:
        n: The request's `n`.
        stop: The stopping test (None: read every choice to its end).
    """

    def __init__(self, n: int, stop: StopTest | None = None) -> None:
        self.n = n
        self.stop = stop
        self.broken: str | None = None
        self.stopped = False
        self.reset()

    def reset(self) -> None:
        """Forget everything read (a new attempt of the request starts)."""
        self._choices = [_Choice() for _ in range(self.n)]
        self._order: list[int] = []
        self.prompt_tokens: int | None = None
        self.total_completion: int | None = None
        self.done = False
        self.stopped = False
        self.broken = None
        self.events = 0

    # -- StreamSink --------------------------------------------------------------------------

    def begin(self) -> None:
        """A new attempt starts."""
        self.reset()

    def line(self, raw: bytes) -> bool:
        """Read one line; True when the stopping test decided (close the response)."""
        data = sse_data(raw)
        if data is None or self.done or self.stopped:
            return False
        return self._test(self.feed(data))

    def chunk(self, chunk: dict[str, Any]) -> bool:
        """`line` for a chunk already decoded (the in-process simulator)."""
        if self.done or self.stopped:
            return False
        return self._test(self.feed_chunk(chunk))

    def _test(self, ended: bool) -> bool:
        """Run the stopping test when a choice has just ended; True: stop the stream."""
        if not ended or self.stop is None:
            return False
        if len(self._order) < self.n and self.stop(self.finished_samples()):
            self.stopped = True
        return self.stopped

    def ended(self) -> bool:
        """Every choice finished, or the stream was stopped on purpose."""
        return self.stopped or len(self._order) == self.n

    def salvage(self) -> bool:
        """At least one choice finished: keep it rather than retry the request."""
        return bool(self._order)

    @property
    def finished(self) -> list[int]:
        """Indices of the finished choices, in the order they finished."""
        return list(self._order)

    def finished_samples(self) -> list[Sample]:
        """The finished choices as samples, in the order they finished."""
        return [self._choices[i].sample() for i in self._order]

    def feed(self, data: str) -> bool:
        """Read one event's payload; True when a choice finished with it.

        Raises:
            StreamBroken: The payload is not a chunk, or a choice finished with `abort`/`error`.
        """
        if data == "[DONE]":
            self.done = True
            return False
        try:
            chunk = json.loads(data)
        except ValueError as err:
            raise StreamBroken(f"unparsable stream event {data[:100]!r}") from err
        if not isinstance(chunk, dict):
            raise StreamBroken(f"stream event is not a JSON object: {data[:100]!r}")
        return self.feed_chunk(chunk)

    def feed_chunk(self, chunk: dict[str, Any]) -> bool:
        """Read one decoded chunk; True when a choice finished with it (see `feed`)."""
        if isinstance(chunk.get("error"), dict | str):  # vLLM reports a failure mid-stream so
            raise StreamBroken(f"server error in the stream: {json.dumps(chunk['error'])[:200]}")
        self.events += 1
        choices = chunk.get("choices") or []
        usage = chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None
        if usage is not None and usage.get("prompt_tokens") is not None:
            self.prompt_tokens = int(usage["prompt_tokens"])
        if not choices and usage is not None and usage.get("completion_tokens") is not None:
            self.total_completion = int(usage["completion_tokens"])  # the final usage chunk
        ended = False
        for raw in choices if isinstance(choices, list) else []:
            ended = self._feed_choice(raw, usage if len(choices) == 1 else None) or ended
        return ended

    def _feed_choice(self, raw: Any, usage: dict[str, Any] | None) -> bool:
        if not isinstance(raw, dict):
            raise StreamBroken("stream choice is not a JSON object")
        index = raw.get("index")
        if not isinstance(index, int) or not 0 <= index < self.n:
            raise StreamBroken(f"stream choice index {index!r} outside 0..{self.n - 1}")
        choice = self._choices[index]
        if choice.finished:
            return False  # nothing follows a choice's last chunk; ignore a repeat
        delta = raw.get("delta") or {}
        content = delta.get("content")
        reasoning = delta.get("reasoning") or delta.get("reasoning_content")
        if content:
            choice.text.append(str(content))
        if reasoning:
            choice.reasoning.append(str(reasoning))
        if content or reasoning:
            choice.deltas += 1
        ids = raw.get("token_ids")
        if isinstance(ids, list):
            choice.token_ids = (choice.token_ids or 0) + len(ids)
        logprobs = raw.get("logprobs")
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            choice.logprobs = (choice.logprobs or []) + list(logprobs["content"])
        if usage is not None and usage.get("completion_tokens") is not None:
            choice.usage_tokens = max(choice.usage_tokens or 0, int(usage["completion_tokens"]))
        reason = raw.get("finish_reason")
        if reason is None:
            return False
        if reason in _ABORTED:
            raise StreamBroken(f"choice {index} finished with finish_reason={reason!r}")
        choice.finish_reason = str(reason)
        choice.stop_reason = raw.get("stop_reason")
        self._order.append(index)
        return True

    def generation(self) -> Generation:
        """What was read: the finished choices (by index) and usage including the partial
        tokens of the unfinished ones, which are counted as cancelled."""
        finished = sorted(self._order)
        open_ = [i for i in range(self.n) if not self._choices[i].finished]
        counts = [self._choices[i].tokens() for i in range(self.n)]
        completion = sum(t for t, _ in counts)
        estimated = any(e for t, e in counts if t)
        if self.total_completion is not None and self.total_completion >= completion:
            completion = self.total_completion  # the server's own total (a complete stream)
            estimated = False
        cancelled_tokens = sum(counts[i][0] for i in open_)
        return Generation(
            samples=[self._choices[i].sample() for i in finished],
            usage=Usage(
                requests=1,
                prompt_tokens=self.prompt_tokens or 0,
                completion_tokens=completion,
            ),
            cancelled=len(open_),
            cancelled_tokens=cancelled_tokens,
            usage_estimated=estimated,
        )
