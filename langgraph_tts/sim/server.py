"""The simulator as a vLLM-compatible HTTP server (stdlib `ThreadingHTTPServer`, keep-alive).

One thread per connection, so `latency_ms` sleeps overlap and hundreds of concurrent requests
are served in parallel. Faults (failure bursts, malformed bodies, slow responses) are injected
here, on model endpoints only; the world itself lives in `SimEngine`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.engine import ENDPOINTS, SimEngine
from langgraph_tts.sim.protocol import SimRequestError

__all__ = ["SimConfig", "SimServer", "add_arguments", "run_from_args", "start_server"]

_MAX_BODY = 64 * 1024 * 1024
_IDLE_TIMEOUT_S = 300.0


class _Faults:
    """Decides, per model request, whether to fail it, garble it or slow it (seeded, locked)."""

    def __init__(self, config: SimConfig) -> None:
        self._cfg = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._burst_left = 0
        self._recovering = False

    def draw(self) -> tuple[bool, bool, bool]:
        """(fail with the fault status, send a malformed body, delay by slow_ms)."""
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
            malformed = (
                not fail and cfg.malformed_rate > 0 and self._rng.random() < cfg.malformed_rate
            )
            slow = not fail and cfg.slow_rate > 0 and self._rng.random() < cfg.slow_rate
        return fail, malformed, slow


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr: tuple[str, int], engine: SimEngine) -> None:
        self.engine = engine
        self.faults = _Faults(engine.config)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        # headers and body go out in separate writes; without this, Nagle + delayed ACK add
        # ~40 ms to every keep-alive request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._conns_lock:
            self._conns.add(sock)
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so a stopped server really stops answering."""
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "langgraph-tts-sim/0.1"
    timeout = _IDLE_TIMEOUT_S
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request."""

    def _send(self, status: int, body: bytes | None, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), headers)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise SimRequestError(400, f"request body too large ({length} bytes)")
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        engine = self.server.engine
        if path == "/health":
            self._send(200, None)
        elif path in ("/v1/models", "/models"):
            self._send_json(200, engine.models())
        elif path == "/sim/stats":
            self._send_json(200, engine.stats.snapshot())
        else:
            self._send_json(404, SimRequestError(404, f"Not Found: {path}").body())

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        engine = self.server.engine
        try:
            raw = self._read_body()
        except (ValueError, SimRequestError) as err:
            self._send_json(400, SimRequestError(400, f"bad request body: {err}").body())
            self.close_connection = True
            return
        if path == "/sim/reset":
            engine.stats.reset()
            self._send_json(200, {"status": "ok"})
            return
        if path not in ENDPOINTS:
            self._send_json(404, SimRequestError(404, f"Not Found: {path}").body())
            return
        self._model_request(path, raw)

    def _model_request(self, path: str, raw: bytes) -> None:
        engine, cfg = self.server.engine, self.server.engine.config
        if cfg.latency_ms > 0:
            time.sleep(cfg.latency_ms / 1000.0)
        fail, malformed, slow = self.server.faults.draw()
        if fail:
            engine.stats.fault(f"status_{cfg.fail_status}")
            headers = {"Retry-After": "0"} if cfg.fail_status == 429 else None
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
            self._send_json(cfg.fail_status, body, headers)
            return
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise SimRequestError(400, "the request body must be a JSON object")
            outcome = engine.handle(path, body)
        except json.JSONDecodeError as err:
            engine.stats.error(400)
            self._send_json(400, SimRequestError(400, f"JSON decode error: {err}").body())
            return
        except SimRequestError as err:
            engine.stats.error(err.status)
            self._send_json(err.status, err.body())
            return
        except Exception as err:  # never let a bug kill the connection silently
            engine.stats.error(500)
            self._send_json(500, SimRequestError(500, f"simulator error: {err!r}").body())
            return
        data = json.dumps(outcome.payload).encode("utf-8")
        if malformed:
            engine.stats.fault("malformed")
            self._send(200, data[: max(1, len(data) // 2)])
            return
        if slow:
            engine.stats.fault("slow")
            time.sleep(cfg.slow_ms / 1000.0)
        engine.stats.record(path, outcome)
        self._send(200, data)


class SimServer:
    """Handle of a running simulator (background thread). Use as a context manager."""

    def __init__(self, httpd: _HTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        host, port = httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        self.port: int = int(port)
        self.url: str = f"http://{host}:{self.port}"
        self.base_url: str = self.url + "/v1"
        self.config: SimConfig = httpd.engine.config
        self._stopped = False

    @property
    def engine(self) -> SimEngine:
        """The engine behind the server (shared stats; for in-process use next to HTTP)."""
        return self._httpd.engine

    def stats(self) -> dict[str, Any]:
        """Same as `GET /sim/stats`."""
        return self._httpd.engine.stats.snapshot()

    def reset_stats(self) -> None:
        self._httpd.engine.stats.reset()

    def stop(self) -> None:
        """Stop serving and close every connection (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
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
    httpd = _HTTPServer((host, port), SimEngine(config or SimConfig()))
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="sim-server", daemon=True
    )
    thread.start()
    return SimServer(httpd, thread)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `sim-server` command-line options (one per `SimConfig` field, plus host/port)."""
    d = SimConfig()
    a = parser.add_argument
    a("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1, local only)")
    a("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    a("--scenario", choices=["default", "popular_worse", "easy", "hard"], default=d.scenario)
    a("--seed", type=int, default=d.seed, help="world seed")
    a("--latency-ms", type=float, default=d.latency_ms, help="delay added to every model request")
    a("--fail-rate", type=float, default=d.fail_rate, help="probability a request starts a burst")
    a("--fail-status", type=int, choices=[503, 429], default=d.fail_status)
    a("--burst-len", type=int, default=d.burst_len, help="failures per burst")
    a("--malformed-rate", type=float, default=d.malformed_rate, help="truncated JSON bodies")
    a("--slow-rate", type=float, default=d.slow_rate, help="probability of a slow response")
    a("--slow-ms", type=float, default=d.slow_ms, help="extra delay of a slow response")
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
    try:
        server = start_server(config, host=args.host, port=args.port)
    except OSError as err:
        sys.stderr.write(f"sim-server: cannot listen on {args.host}:{args.port}: {err}\n")
        return 1
    sys.stdout.write(
        f"simulator listening on {server.url} (policy model {config.policy_model}, "
        f"PRM {config.prm_model}, embedder {config.embed_model})\n"
    )
    sys.stdout.flush()
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
