"""The simulated provider as a plain async function: (method, path, body, headers) -> response.

Nothing here knows about sockets. The same `SimProvider.handle` answers behind an
`httpx.MockTransport` (unit tests, no network) and behind the ASGI app of `server.py` (integration
tests, the demo), so both exercise identical behaviour. Routes are one table in `SimProvider`;
an API is a wire module (`openai_api`, `anthropic_api`: a `wire.WireFormat`) plus one entry there,
and every API runs the same `_model_call`, so models, markers, faults and ledger are shared.

Order of a model call: parse (400) -> model (404) -> markers (400) -> context window (400) ->
fault draw (429 / 500 / outage at once, a marker's context-too-long 400, or a hang, or a malformed
or filtered 200) -> latency -> answer (text, or a tool call). Headers are never read or kept.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import ValidationError

from parjanya.sim import anthropic_api, openai_api
from parjanya.sim.answers import compose
from parjanya.sim.config import SimConfig
from parjanya.sim.difficulty import difficulty
from parjanya.sim.exchange import (
    Route,
    SimRequest,
    SimResponse,
    json_response,
    validation_message,
)
from parjanya.sim.faults import Fault, FaultState, FaultsUpdate
from parjanya.sim.ledger import Call, Ledger, prompt_key
from parjanya.sim.markers import MarkerError, Markers, parse_markers, strip_markers
from parjanya.sim.models import SimModel
from parjanya.sim.openai_api import error_response, models_body
from parjanya.sim.wire import ModelCall, WireFormat

__all__ = ["SimProvider", "SimRequest", "SimResponse"]

#: Faults answered at once, in the API's own error shape.
_IMMEDIATE = (Fault.rate_limited, Fault.server_error, Fault.unavailable)


class SimProvider:
    """One simulated provider: its config, live fault knobs, seeded RNGs and call ledger."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.ledger = Ledger()
        self.reset()
        self._routes: dict[tuple[str, str], Route] = {
            ("POST", "/v1/chat/completions"): self._model_route(openai_api.WIRE),
            ("POST", "/v1/messages"): self._model_route(anthropic_api.WIRE),
            ("GET", "/v1/models"): self._models,
            ("GET", "/healthz"): self._health,
            ("GET", "/_sim/faults"): self._get_faults,
            ("POST", "/_sim/faults"): self._set_faults,
            ("POST", "/_sim/reset"): self._reset,
            ("GET", "/_sim/stats"): self._stats,
        }

    def reset(self) -> None:
        """Back to the state of construction: configured faults, empty ledger, reseeded RNGs."""
        self.faults = FaultState(self.config.faults, list(self.config.models))
        self.ledger.clear()
        self._fault_rng = random.Random(self.config.seed)
        self._latency_rng = random.Random(self.config.seed + 1)

    def update_faults(self, update: FaultsUpdate | Mapping[str, Any]) -> dict[str, Any]:
        """Merge a partial update into the live knobs (`ValueError` if invalid); return them."""
        if not isinstance(update, FaultsUpdate):
            update = FaultsUpdate.model_validate(update)
        self.faults.apply(update)
        return self.faults.snapshot()

    async def handle(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> SimResponse:
        """Answer one HTTP request; `path` may carry a query string."""
        url = urlsplit(path)
        route_path = url.path.rstrip("/") or "/"
        route = self._routes.get((method.upper(), route_path))
        if route is None:
            if any(p == route_path for _, p in self._routes):
                return error_response(
                    405, f"{method} not allowed here", "invalid_request_error", None
                )
            return error_response(404, f"no route {route_path}", "not_found_error", "unknown_url")
        query = dict(parse_qsl(url.query))
        return await route(SimRequest(method.upper(), route_path, query, body, headers or {}))

    def mock_transport(self) -> httpx.MockTransport:
        """A transport for `httpx.AsyncClient`: the sim without sockets.

        The client's read timeout is honoured (as `httpx.ReadTimeout`), so a simulated hang looks
        the same as over a real connection.
        """

        async def respond(request: httpx.Request) -> httpx.Response:
            return await self._respond(request)

        return httpx.MockTransport(respond)

    def sync_mock_transport(self) -> httpx.MockTransport:
        """The same for a sync `httpx.Client`; each request runs in its own event loop."""

        def respond(request: httpx.Request) -> httpx.Response:
            return asyncio.run(self._respond(request))

        return httpx.MockTransport(respond)

    async def _respond(self, request: httpx.Request) -> httpx.Response:
        body = request.content  # MockTransport has read the body already
        work = self.handle(
            request.method, request.url.raw_path.decode("ascii"), body, request.headers
        )
        read_timeout = request.extensions.get("timeout", {}).get("read")
        try:
            result = await asyncio.wait_for(work, read_timeout)
        except TimeoutError:
            raise httpx.ReadTimeout(
                "the simulated provider did not answer in time", request=request
            ) from None
        return httpx.Response(result.status, headers=result.headers, content=result.body)

    # --- model routes -------------------------------------------------------------------------

    def _model_route(self, wire: WireFormat) -> Route:
        async def route(request: SimRequest) -> SimResponse:
            return await self._model_call(wire, request)

        return route

    def _refuse(self, t: float, call: ModelCall | None, response: SimResponse) -> SimResponse:
        """Record a request turned away before any fault draw, and return its error response."""
        model = prompt = None
        if call is not None:
            model = call.model if call.model in self.config.models else None
            prompt = prompt_key(call.last_user_text)
        self.ledger.record(Call(t, model, response.status, None, prompt))
        return response

    @staticmethod
    def _read(call: ModelCall) -> tuple[Markers, float]:
        """The prompt's markers and hidden difficulty; `MarkerError` if they cannot apply."""
        markers, hidden = parse_markers(call.text), difficulty(call.text)
        if markers.tool is not None and call.tools and markers.tool not in call.tools:
            offered = ", ".join(call.tools)
            raise MarkerError(f"sim marker tool={markers.tool}: the request offers {offered}")
        return markers, hidden

    async def _model_call(self, wire: WireFormat, request: SimRequest) -> SimResponse:
        t = self.ledger.now()
        try:
            call = wire.parse(request.body)
        except ValidationError as exc:
            return self._refuse(t, None, wire.error("invalid_request", validation_message(exc)))
        spec = self.config.models.get(call.model)
        if spec is None:
            message = f"The model `{call.model}` does not exist (simulated provider)."
            return self._refuse(t, call, wire.error("model_not_found", message))
        try:
            markers, hidden = self._read(call)
        except MarkerError as exc:
            return self._refuse(t, call, wire.error("invalid_request", str(exc)))
        if call.prompt_tokens > spec.context_window:
            return self._refuse(t, call, wire.too_long(call.prompt_tokens, spec.context_window))
        return await self._answer(wire, call, spec, markers, hidden, t)

    async def _answer(
        self,
        wire: WireFormat,
        call: ModelCall,
        spec: SimModel,
        markers: Markers,
        hidden: float,
        t: float,
    ) -> SimResponse:
        """Past every refusal: draw the fault, then fail, hang or answer after the latency."""
        knobs = self.faults.effective(call.model)
        drawn = knobs.draw(self._fault_rng)
        fault = Fault.unavailable if knobs.outage else markers.error or drawn
        latency = (self.config.latency or spec.latency).draw(self._latency_rng)
        delay = (
            markers.latency_s
            if markers.latency_s is not None
            else latency * self.config.latency_scale
        )

        def record(status: int) -> None:
            key = prompt_key(call.last_user_text)
            self.ledger.record(Call(t, call.model, status, fault.value if fault else None, key))

        early: SimResponse | None = None
        if fault in _IMMEDIATE:
            early = wire.fault(fault, knobs.retry_after_s)
        elif fault is Fault.context_too_long:
            window = spec.context_window
            early = wire.too_long(max(call.prompt_tokens, window + 1), window)
        if early is not None:
            record(early.status)
            return early
        if fault is Fault.timeout:
            record(504)
            await asyncio.sleep(knobs.hang_s)
            return wire.error("timeout", "Simulated timeout.")

        tool = markers.tool if markers.tool in call.tools and not call.after_tool_result else None
        answer = compose(
            model=call.model,
            capability=spec.capability,
            difficulty=hidden,
            prompt=strip_markers(call.text),
            topic=strip_markers(call.last_user_text),
            json_mode=call.json_mode,
            max_tokens=call.max_tokens,
            stop=call.stops,
            top_logprobs=call.top_logprobs,
            tool=tool,
            blind=spec.blind_to(strip_markers(call.text)),
        )
        response = wire.answer(call, answer.filtered() if fault is Fault.filtered else answer)
        record(200)
        # The latency runs from arrival: parsing and composing happen within it, as at a provider.
        await asyncio.sleep(max(0.0, t + delay - self.ledger.now()))
        if fault is Fault.malformed:
            return SimResponse(200, response.headers, response.body[: len(response.body) // 2])
        return response

    async def _models(self, request: SimRequest) -> SimResponse:
        return json_response(200, models_body(list(self.config.models)))

    async def _health(self, request: SimRequest) -> SimResponse:
        return json_response(
            200, {"status": "ok", "simulated": True, "models": list(self.config.models)}
        )

    # --- control routes (/_sim) ---------------------------------------------------------------

    async def _get_faults(self, request: SimRequest) -> SimResponse:
        return json_response(200, self.faults.snapshot())

    async def _set_faults(self, request: SimRequest) -> SimResponse:
        try:
            update = FaultsUpdate.model_validate_json(request.body or b"{}")
            return json_response(200, self.update_faults(update))
        except ValidationError as exc:
            message = validation_message(exc)
        except ValueError as exc:
            message = str(exc)
        return error_response(400, message, "invalid_request_error", None)

    async def _reset(self, request: SimRequest) -> SimResponse:
        self.reset()
        return json_response(200, {"reset": True})

    async def _stats(self, request: SimRequest) -> SimResponse:
        try:
            window_s = float(request.query.get("window_s", "60"))
        except ValueError:
            window_s = -1.0
        if not window_s > 0:
            return error_response(
                400, "window_s must be a positive number", "invalid_request_error", None
            )
        include = request.query.get("calls", "").lower() in ("1", "true", "yes")
        return json_response(200, self.ledger.stats(window_s=window_s, include_calls=include))
