"""The sim over real HTTP: a hand-written ASGI app around `SimProvider`, run by uvicorn.

No web framework: the provider already routes, so the app only turns ASGI messages into a
`handle()` call and back. It also watches for the client going away and cancels the request, so a
simulated hang (or 1000 requests held in flight by a benchmark) costs nothing once the client has
given up.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from parjanya.config import DEFAULT_SIM_PORT
from parjanya.sim.config import SimConfig
from parjanya.sim.faults import FaultsConfig
from parjanya.sim.handler import SimProvider

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_HOST = "127.0.0.1"


class SimApp:
    """ASGI 3 application: HTTP requests go to the provider; lifespan is acknowledged."""

    def __init__(self, provider: SimProvider) -> None:
        self.provider = provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        path = scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        # The request runs in this task; a watcher cancels it if the client goes away first.
        this, answered = asyncio.current_task(), False

        def give_up(watcher: asyncio.Future[None]) -> None:
            if not (answered or watcher.cancelled() or this is None):
                this.cancel()

        gone = asyncio.ensure_future(_disconnected(receive))
        gone.add_done_callback(give_up)
        try:
            response = await self.provider.handle(scope["method"], path, b"".join(chunks), headers)
        except asyncio.CancelledError:
            if gone.done() and not gone.cancelled():
                return  # the client gave up; nobody is left to answer
            raise
        finally:
            answered = True
            gone.cancel()
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def uvicorn_config(app: SimApp, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # clients reach the sim directly
        limit_concurrency=None,
        backlog=2048,
        timeout_graceful_shutdown=1,
        lifespan="on",
    )


def serve(
    host: str = DEFAULT_HOST, port: int = DEFAULT_SIM_PORT, config: SimConfig | None = None
) -> None:
    """Run the sim in the foreground until interrupted; `config` defaults to the env JSON."""
    provider = SimProvider(config if config is not None else SimConfig.from_env())
    uvicorn.Server(uvicorn_config(SimApp(provider), host, port)).run()


def run_cli(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_SIM_PORT,
    latency_scale: float | None = None,
    seed: int | None = None,
    faults_path: Path | str | None = None,
) -> None:
    """What `parjanya sim` calls: flags layered over `PARJANYA_SIM_CONFIG` (None = keep)."""
    config = SimConfig.from_env()
    updates: dict[str, Any] = {}
    if latency_scale is not None:
        updates["latency_scale"] = latency_scale
    if seed is not None:
        updates["seed"] = seed
    if faults_path is not None:
        updates["faults"] = FaultsConfig.model_validate_json(Path(faults_path).read_text())
    serve(host, port, SimConfig.model_validate({**config.model_dump(), **updates}))


class SimServer:
    """The sim on a free loopback port in a background thread, for tests and benchmarks.

    >>> with SimServer(SimConfig(latency_scale=0)) as sim:   # doctest: +SKIP
    ...     httpx.post(f"{sim.base_url}/v1/chat/completions", json=...)
    """

    def __init__(
        self, config: SimConfig | None = None, host: str = DEFAULT_HOST, port: int = 0
    ) -> None:
        self.provider = SimProvider(config)
        self._host, self._port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """`http://host:port`, the root of `/v1/...`, `/_sim/...` and `/healthz`."""
        return f"http://{self._host}:{self._port}"

    @property
    def api_base(self) -> str:
        """`http://host:port/v1`, the `base_url` of a deployment of either provider kind."""
        return f"{self.base_url}/v1"

    def start(self, timeout_s: float = 10.0) -> SimServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(SimApp(self.provider), self._host, self._port))
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="parjanya-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the simulated provider did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout_s)
        self._server = self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
