"""The simulator as a vLLM-compatible HTTP/1.1 server (asyncio, keep-alive, stdlib only).

One event loop per process: `latency_ms` sleeps overlap, so hundreds of concurrent requests
are served in parallel, and `--workers K` forks K such processes onto one listening socket.
Faults (failure bursts, malformed bodies, slow responses) are injected here, on model endpoints
only; the world itself lives in `SimEngine`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.engine import ENDPOINTS, SimEngine, SimStats
from langgraph_tts.sim.protocol import SimRequestError
from langgraph_tts.sim.stream import ChatStream, sse

__all__ = ["SimConfig", "SimServer", "add_arguments", "run_from_args", "start_server"]

_MAX_BODY = 64 * 1024 * 1024
_IDLE_TIMEOUT_S = 300.0
_BACKLOG = 1024
_SERVER_VERSION = "langgraph-tts-sim/0.1"


class _Faults:
    """Decides, per model request, whether to fail it, garble it or slow it (seeded, locked).

    Each worker process has its own draws (worker 0 has the single-process ones) and bursts.
    """

    def __init__(self, config: SimConfig, worker: int = 0) -> None:
        self._cfg = config
        self._rng = random.Random(config.seed if worker == 0 else f"{config.seed}:{worker}")
        self._lock = threading.Lock()
        self._burst_left = 0
        self._recovering = False

    def draw(self) -> _Draw:
        """Which faults hit this model request (at most one of fail, malformed, reset)."""
        cfg = self._cfg
        with self._lock:
            fail = False
            if self._burst_left > 0:
                self._burst_left -= 1
                fail = True
                self._recovering = self._burst_left == 0
            elif self._recovering:
                self._recovering = False
            elif cfg.fail_rate > 0 and self._rng.random() < cfg.fail_rate:
                self._burst_left = cfg.burst_len - 1
                self._recovering = self._burst_left == 0
                fail = True
            if fail:
                return _Draw(fail=True)
            rng = self._rng
            return _Draw(
                malformed=cfg.malformed_rate > 0 and rng.random() < cfg.malformed_rate,
                slow=cfg.slow_rate > 0 and rng.random() < cfg.slow_rate,
                reset=cfg.reset_rate > 0 and rng.random() < cfg.reset_rate,
                wrong_rows=cfg.wrong_rows_rate > 0 and rng.random() < cfg.wrong_rows_rate,
                wrong_dim=cfg.wrong_dim_rate > 0 and rng.random() < cfg.wrong_dim_rate,
            )


@dataclass(frozen=True, slots=True)
class _Draw:
    """The faults drawn for one model request."""

    fail: bool = False
    malformed: bool = False
    slow: bool = False
    reset: bool = False
    wrong_rows: bool = False
    wrong_dim: bool = False


class _Reset(Exception):
    """Send `partial` (headers and half the body), then reset the connection."""

    def __init__(self, partial: bytes) -> None:
        super().__init__("simulated connection reset")
        self.partial = partial


class _Request:
    """One parsed HTTP request."""

    __slots__ = ("body", "keep_alive", "method", "path")

    def __init__(self, method: str, path: str, body: bytes, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.keep_alive = keep_alive


class _BadRequest(Exception):
    """A request that cannot be read; answered with a 400 and the connection is closed."""


def _response(status: int, body: bytes | None, headers: dict[str, str] | None = None) -> bytes:
    """Status line, headers and body as one buffer (one write, one TCP segment when small)."""
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Server: {_SERVER_VERSION}",
        f"Date: {formatdate(usegmt=True)}",
    ]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
    lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> bytes:
    return _response(status, json.dumps(obj).encode("utf-8"), headers)


def _error(status: int, message: str) -> bytes:
    return _json(status, SimRequestError(status, message).body())


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _Request:
    """Read one request (keep-alive; `Content-Length` or chunked body; `Expect: 100-continue`).

    Raises `asyncio.IncompleteReadError` at a clean end of the connection, `_BadRequest` on
    garbage.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as err:
        raise _BadRequest("request headers too large") from err
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _BadRequest(f"bad request line {lines[0][:100]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(f"bad header line {line[:100]!r}")
            headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        else:
            length = int(headers.get("content-length") or 0)
            if length > _MAX_BODY:
                raise _BadRequest(f"request body too large ({length} bytes)")
            body = await reader.readexactly(length) if length > 0 else b""
    except ValueError as err:
        raise _BadRequest(f"bad request body: {err}") from err
    return _Request(method, target.split("?", 1)[0], body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        total += size
        if total > _MAX_BODY:
            raise _BadRequest(f"request body too large ({total} bytes)")
        parts.append(await reader.readexactly(size))
        await reader.readline()


class _Server:
    """The simulator's HTTP/1.1 server: one asyncio event loop, keep-alive connections.

    A single thread, not a thread per connection: `latency_ms` sleeps still overlap (they are
    `asyncio.sleep`s), and the ~40 requests of a search iteration no longer fight over the GIL
    (with threads, that cost as much CPU as answering them).
    """

    def __init__(self, engine: SimEngine, faults: _Faults, worker: int | None = None) -> None:
        self.engine = engine
        self.faults = faults
        # worker processes name themselves in a header (which worker served a connection)
        self._worker_header = b"" if worker is None else f"X-Sim-Worker: {worker}\r\n".encode()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._address: tuple[str, int] = ("127.0.0.1", 0)
        self._outages: asyncio.Task[None] | None = None

    async def start(self, listener: socket.socket, *, outages: bool = True) -> None:
        self._address = listener.getsockname()[:2]
        self._server = await asyncio.start_server(self._connection, sock=listener)
        every = self.engine.config.outage_every_s
        if outages and every > 0:
            self._outages = asyncio.create_task(self._outage_loop(every))

    async def aclose(self) -> None:
        """Stop accepting and drop every connection, idle or not."""
        if self._outages is not None:
            self._outages.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def go_down(self) -> None:
        """A replica dying: stop listening (connects are refused) and reset every connection."""
        self.engine.stats.fault("outage")
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def come_up(self) -> None:
        """The replica back on the same address."""
        if self._server is None:
            host, port = self._address
            self._server = await asyncio.start_server(self._connection, sock=_listen(host, port))

    async def outage(self, seconds: float) -> None:
        await self.go_down()
        await asyncio.sleep(seconds)
        await self.come_up()

    async def _outage_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.outage(self.engine.config.outage_s)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(_IDLE_TIMEOUT_S):
                        request = await _read_request(reader, writer)
                except _BadRequest as err:
                    writer.write(_error(400, str(err)))
                    await writer.drain()
                    return
                try:
                    reply = await self._reply(request)
                except _Reset as reset:
                    writer.write(reset.partial)
                    await writer.drain()
                    writer.transport.abort()
                    return
                if isinstance(reply, _Streamed):
                    if not await self._stream(reply, reader, writer) or not request.keep_alive:
                        return
                    continue
                if self._worker_header:  # after the status line
                    head, _, rest = reply.partition(b"\r\n")
                    reply = head + b"\r\n" + self._worker_header + rest
                writer.write(reply)
                await writer.drain()
                if not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:  # the server stopping mid-request: end quietly
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _reply(self, request: _Request) -> bytes | _Streamed:
        engine, path = self.engine, request.path
        if request.method == "GET":
            if path == "/health":
                return _response(200, None)
            if path in ("/v1/models", "/models"):
                return _json(200, engine.models())
            if path == "/sim/stats":
                return _json(200, engine.stats.snapshot())
            return _error(404, f"Not Found: {path}")
        if request.method != "POST":
            return _error(501, f"Unsupported method ({request.method!r})")
        if path == "/sim/reset":
            engine.stats.reset()
            return _json(200, {"status": "ok"})
        if path not in ENDPOINTS:
            return _error(404, f"Not Found: {path}")
        return await self._model_request(path, request.body)

    async def _model_request(self, path: str, raw: bytes) -> bytes | _Streamed:
        engine, cfg = self.engine, self.engine.config
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000.0)
        draw = self.faults.draw()
        if draw.fail:
            engine.stats.fault(f"status_{cfg.fail_status}")
            headers = None
            if cfg.fail_status == 429 or cfg.retry_after_s > 0:
                headers = {"Retry-After": f"{cfg.retry_after_s:g}"}
            message = "Too Many Requests" if cfg.fail_status == 429 else "Service Unavailable"
            err_type = "RateLimitError" if cfg.fail_status == 429 else "ServiceUnavailableError"
            body = {
                "error": {
                    "message": f"{message} (simulated fault)",
                    "type": err_type,
                    "param": None,
                    "code": cfg.fail_status,
                }
            }
            return _json(cfg.fail_status, body, headers)
        try:
            request = json.loads(raw or b"null")
            if not isinstance(request, dict):
                raise SimRequestError(400, "the request body must be a JSON object")
            if path == "/v1/chat/completions" and request.get("stream") is True:
                return _Streamed(engine.chat_stream(request), draw)
            outcome = engine.handle(path, request)
        except json.JSONDecodeError as err:
            engine.stats.error(400)
            return _error(400, f"JSON decode error: {err}")
        except SimRequestError as err:
            engine.stats.error(err.status)
            return _json(err.status, err.body())
        except Exception as err:  # never let a bug kill the connection silently
            engine.stats.error(500)
            return _error(500, f"simulator error: {err!r}")
        # at most one fault per response (the first that applies); a malformed, reset or
        # wrongly shaped response is not counted as usage
        data = json.dumps(outcome.payload).encode("utf-8")
        if draw.malformed:
            engine.stats.fault("malformed")
            return _response(200, data[: max(1, len(data) // 2)])
        if draw.reset:
            engine.stats.fault("reset")
            full = _response(200, data)
            raise _Reset(full[: len(full) - max(1, len(data) // 2)])
        if draw.wrong_rows and path == "/pooling":
            engine.stats.fault("wrong_rows")
            return _json(200, _extra_row(outcome.payload))
        if draw.wrong_dim and path == "/v1/embeddings":
            engine.stats.fault("wrong_dim")
            return _json(200, _half_dim(outcome.payload))
        engine.stats.record(path, outcome)
        if draw.slow:  # delivered late, but delivered: counted as usage too
            engine.stats.fault("slow")
            await asyncio.sleep(cfg.slow_ms / 1000.0)
        return _response(200, data)

    async def _stream(
        self, reply: _Streamed, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Send a streamed chat completion step by step, as vLLM does (chunked SSE).

        Stops generating as soon as the client has gone (its end of the connection closed),
        as vLLM aborts a request whose client disconnected; what was generated until then is
        counted (`SimStats.stream`). Faults: `slow` delays the stream, `reset` resets the
        connection halfway, `malformed` sends a garbled event halfway and then resets it
        (neither counted as usage, as for other responses).
        Returns whether the connection can serve another request.
        """
        engine, cfg, stream, draw = self.engine, self.engine.config, reply.stream, reply.draw
        head = [
            "HTTP/1.1 200 OK",
            f"Server: {_SERVER_VERSION}",
            f"Date: {formatdate(usegmt=True)}",
            "Content-Type: text/event-stream; charset=utf-8",
            "Cache-Control: no-cache",
            "Transfer-Encoding: chunked",
        ]
        writer.write(("\r\n".join(head) + "\r\n").encode("latin-1") + self._worker_header)
        writer.write(b"\r\n")
        if draw.slow:
            engine.stats.fault("slow")
            await asyncio.sleep(cfg.slow_ms / 1000.0)
        faulty = draw.reset or draw.malformed
        half = stream.n_steps // 2 if faulty else -1
        gone = False
        try:
            for k, events in enumerate(stream.steps()):
                if k == half:
                    engine.stats.fault("malformed" if draw.malformed else "reset")
                    if draw.malformed:
                        writer.write(_chunked(b'data: {"id": "chatcmpl-garbled", "cho\n\n'))
                        await writer.drain()
                    writer.transport.abort()
                    gone = True
                    break
                writer.write(_chunked(b"".join(sse(e) for e in events)))
                await writer.drain()
                if cfg.decode_ms > 0:
                    await asyncio.sleep(cfg.decode_ms / 1000.0)
                else:
                    await asyncio.sleep(0)
                if reader.at_eof() or writer.transport.is_closing():
                    gone = True
                    break
            if not gone:
                writer.write(_chunked(sse("[DONE]")) + _chunked(b""))
                await writer.drain()
        except ConnectionError:
            gone = True
        finally:
            if not faulty:  # like any faulty response, not counted as usage
                engine.record_stream(stream)
        return not gone


@dataclass(frozen=True, slots=True)
class _Streamed:
    """A chat request to answer with a stream (`_Server._stream`), and its drawn faults."""

    stream: ChatStream
    draw: _Draw


def _chunked(data: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body (the empty one ends the body)."""
    return f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n"


def _extra_row(payload: dict[str, Any]) -> dict[str, Any]:
    """A `/pooling` payload whose every result has one step row more than steps scored."""
    data = [
        {**item, "data": [*item["data"], item["data"][-1] if item["data"] else [0.5, 0.5]]}
        for item in payload["data"]
    ]
    return {**payload, "data": data}


def _half_dim(payload: dict[str, Any]) -> dict[str, Any]:
    """An `/v1/embeddings` payload whose vectors have half the dimension (base64 or floats)."""
    data = []
    for item in payload["data"]:
        vector = item["embedding"]
        if isinstance(vector, str):
            raw = base64.b64decode(vector)
            half = base64.b64encode(raw[: (len(raw) // 8) * 4]).decode("ascii")
            data.append({**item, "embedding": half})
        else:
            data.append({**item, "embedding": vector[: len(vector) // 2]})
    return {**payload, "data": data}


def _listen(host: str, port: int) -> socket.socket:
    return socket.create_server((host, port), backlog=_BACKLOG)


class SimServer:
    """Handle of a running simulator (event loop in a background thread); a context manager."""

    def __init__(
        self, server: _Server, listener: socket.socket, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._server = server
        self._listener = listener
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="sim-server", daemon=True)
        host, port = listener.getsockname()[:2]
        self.port: int = int(port)
        self.url: str = f"http://{host}:{self.port}"
        self.base_url: str = self.url + "/v1"
        self.config: SimConfig = server.engine.config
        self._stopped = False
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._server.start(self._listener))
        except BaseException as err:  # reported to the thread that called start_server
            self._start_error = err
            self._loop.close()
            return
        finally:
            self._started.set()
        self._loop.run_forever()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    @property
    def engine(self) -> SimEngine:
        """The engine behind the server (shared stats; for in-process use next to HTTP)."""
        return self._server.engine

    def stats(self) -> dict[str, Any]:
        """Same as `GET /sim/stats`."""
        return self._server.engine.stats.snapshot()

    def reset_stats(self) -> None:
        self._server.engine.stats.reset()

    def outage(self, seconds: float) -> None:
        """Make the server die now and come back on the same port after `seconds`: connects
        are refused meanwhile and every open connection is reset. Returns once it is down."""
        down = asyncio.run_coroutine_threadsafe(self._server.go_down(), self._loop)
        down.result(timeout=5)
        self._loop.call_soon_threadsafe(self._come_up_later, seconds)

    def _come_up_later(self, seconds: float) -> None:
        self._loop.call_later(seconds, lambda: self._loop.create_task(self._server.come_up()))

    def stop(self) -> None:
        """Stop serving and close every connection (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        asyncio.run_coroutine_threadsafe(self._server.aclose(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> SimServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SimServer(url={self.url!r}, scenario={self.config.scenario!r})"


def start_server(
    config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> SimServer:
    """Start the simulator on `host:port` (port 0 picks a free one) in a daemon thread."""
    engine = SimEngine(config or SimConfig())
    listener = _listen(host, port)
    return SimServer(_Server(engine, _Faults(engine.config)), listener, asyncio.new_event_loop())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `sim-server` command-line options (one per `SimConfig` field, plus host/port)."""
    d = SimConfig()
    a = parser.add_argument
    a("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1, local only)")
    a("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    a(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (default 1; more use more CPU cores)",
    )
    a("--scenario", choices=["default", "popular_worse", "easy", "hard"], default=d.scenario)
    a("--seed", type=int, default=d.seed, help="world seed")
    a("--latency-ms", type=float, default=d.latency_ms, help="delay added to every model request")
    a("--fail-rate", type=float, default=d.fail_rate, help="probability a request starts a burst")
    a("--fail-status", type=int, choices=[503, 429], default=d.fail_status)
    a("--burst-len", type=int, default=d.burst_len, help="failures per burst")
    a("--malformed-rate", type=float, default=d.malformed_rate, help="truncated JSON bodies")
    a("--slow-rate", type=float, default=d.slow_rate, help="probability of a slow response")
    a("--slow-ms", type=float, default=d.slow_ms, help="extra delay of a slow response")
    a("--retry-after-s", type=float, default=d.retry_after_s, help="Retry-After of failures")
    a("--reset-rate", type=float, default=d.reset_rate, help="connections reset mid-response")
    a("--wrong-rows-rate", type=float, default=d.wrong_rows_rate, help="/pooling: a row too many")
    a("--wrong-dim-rate", type=float, default=d.wrong_dim_rate, help="embeddings of half the dim")
    a(
        "--outage-every-s",
        type=float,
        default=d.outage_every_s,
        help="every this many seconds the server dies for --outage-s (0 = never; 1 worker)",
    )
    a("--outage-s", type=float, default=d.outage_s, help="how long each outage lasts")
    a("--prm-noise", type=float, default=d.prm_noise, help="PRM logit noise (0 = oracle)")
    a(
        "--prm-miss-rate",
        type=float,
        default=None,
        help="P(PRM misses a wrong step); default: per direction",
    )
    a(
        "--prm-foresight",
        type=float,
        default=d.prm_foresight,
        help="share of future risk the PRM sees",
    )
    a("--verifier-noise", type=float, default=d.verifier_noise)
    a("--ramble-rate", type=float, default=d.ramble_rate, help="steps that run past 256 tokens")
    a("--embed-dim", type=int, default=d.embed_dim)
    a(
        "--max-model-len",
        type=int,
        default=d.max_model_len,
        help="context window reported and enforced as vLLM does (vLLM's --max-model-len)",
    )
    a(
        "--eos-id-share",
        type=float,
        default=d.eos_id_share,
        help="solutions ending at stop token id 151643 (integer stop_reason)",
    )
    a(
        "--decode-ms",
        type=float,
        default=d.decode_ms,
        help="streamed requests: delay per decoding step (per --stream-interval tokens)",
    )
    a(
        "--stream-interval",
        type=int,
        default=d.stream_interval,
        help="streamed requests: tokens per chunk of a choice (vLLM's --stream-interval)",
    )
    a("--ignore-formats", action="store_true", help="SCALE replies in prose (tests fallbacks)")
    a("--policy-model", default=d.policy_model)
    a("--prm-model", default=d.prm_model)
    a("--embed-model", default=d.embed_model)


def _config_from_args(args: argparse.Namespace) -> SimConfig:
    fields = set(SimConfig.model_fields)
    return SimConfig(**{k: v for k, v in vars(args).items() if k in fields})


def run_from_args(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C exits 0); 2 on a bad option, 1 if the port is taken."""
    try:
        config = _config_from_args(args)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        sys.stderr.write(f"sim-server: invalid option {field}: {message}\n")
        return 2
    workers = int(getattr(args, "workers", 1))
    if workers < 1 or (workers > 1 and "fork" not in multiprocessing.get_all_start_methods()):
        sys.stderr.write(
            f"sim-server: invalid option workers: {workers} (at least 1; more than 1 needs a "
            "platform with fork)\n"
        )
        return 2
    if workers > 1:
        return _serve_workers(config, args.host, args.port, workers)
    try:
        server = start_server(config, host=args.host, port=args.port)
    except OSError as err:
        sys.stderr.write(f"sim-server: cannot listen on {args.host}:{args.port}: {err}\n")
        return 1
    _announce(server.url, config, workers)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _announce(url: str, config: SimConfig, workers: int) -> None:
    extra = f", {workers} worker processes" if workers > 1 else ""
    sys.stdout.write(
        f"simulator listening on {url} (policy model {config.policy_model}, "
        f"PRM {config.prm_model}, embedder {config.embed_model}{extra})\n"
    )
    sys.stdout.flush()


def _serve_workers(config: SimConfig, host: str, port: int, workers: int) -> int:
    """Pre-fork `workers` processes that accept on one listening socket.

    One Python process answers requests one at a time (the GIL), so the simulator's CPU
    becomes the bottleneck of a fast client; K processes use K cores. The world is a pure
    function of (text, scenario, seed), so workers share nothing but the counters, which live
    in shared memory (`SimStats(shared=True)`).
    """
    try:
        listener = _listen(host, port)
    except OSError as err:
        sys.stderr.write(f"sim-server: cannot listen on {host}:{port}: {err}\n")
        return 1
    stats = SimStats(shared=True)
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_worker, args=(config, listener, stats, i), daemon=True)
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    bound_host, bound_port = listener.getsockname()[:2]
    _announce(f"http://{bound_host}:{bound_port}", config, workers)
    # SIGTERM (a supervisor, `Popen.terminate`) stops the workers too, like Ctrl-C does
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while all(proc.is_alive() for proc in procs):
            time.sleep(0.5)
        sys.stderr.write("sim-server: a worker process died; stopping\n")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
        listener.close()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _worker(config: SimConfig, listener: socket.socket, stats: SimStats, index: int) -> None:
    """One worker process: the server on the shared socket, until terminated (or orphaned: a
    parent killed with SIGKILL cannot stop its workers)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()

    def exit_when_orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=exit_when_orphaned, daemon=True).start()
    server = _Server(SimEngine(config, stats=stats), _Faults(config, index), worker=index)

    async def serve() -> None:
        await server.start(listener, outages=False)  # the listener is shared by the workers
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
