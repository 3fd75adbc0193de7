"""The simulated provider through `mock_transport()`: its answers, faults, knobs and ledger.

No sockets: every request goes through `SimProvider.handle` via `httpx.MockTransport`, the same
code the loopback server runs (see tests/integration/test_sim_server.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from parjanya.sim import (
    Fault,
    FixedLatency,
    MarkerError,
    SimConfig,
    SimProvider,
    difficulty,
    difficulty_marker,
    error_marker,
    latency_marker,
    parse_markers,
    prompt_key,
    tool_marker,
)
from parjanya.sim.answers import HEDGES, tokenize
from parjanya.sim.ledger import max_in_window

T = TypeVar("T")

FAST = SimConfig(latency_scale=0)


def run(
    make: Callable[[httpx.AsyncClient], Awaitable[T]],
    config: SimConfig = FAST,
    timeout_s: float = 1.0,
) -> T:
    """Run `make(client)` against a fresh provider; the client times out after `timeout_s`."""
    provider = SimProvider(config)
    return run_with(provider, make, timeout_s)


def run_with(
    provider: SimProvider,
    make: Callable[[httpx.AsyncClient], Awaitable[T]],
    timeout_s: float = 1.0,
) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(
            transport=provider.mock_transport(), base_url="http://sim", timeout=timeout_s
        ) as client:
            return await make(client)

    return asyncio.run(main())


def chat(model: str, prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}


async def complete(
    client: httpx.AsyncClient, model: str, prompt: str, **extra: Any
) -> httpx.Response:
    return await client.post("/v1/chat/completions", json=chat(model, prompt, **extra))


def confidence(body: dict[str, Any]) -> float:
    tokens = body["choices"][0]["logprobs"]["content"]
    return math.exp(sum(t["logprob"] for t in tokens) / len(tokens))


def content(body: dict[str, Any]) -> str:
    text: str = body["choices"][0]["message"]["content"]
    return text


PROMPTS = [f"Task {i}: explain item {i} of the list in plain words." for i in range(24)]


# --- difficulty and markers ----------------------------------------------------------------------


def test_difficulty_is_deterministic_bounded_and_grows_with_the_task() -> None:
    easy = "What is the capital of France?"
    hard = (
        "Design a distributed consensus algorithm for a multi-region database.\n"
        "- It must tolerate partitions\n- It must ensure linearizability\n"
        "- Explain the trade-offs\n- Prove the safety invariant\n"
        + "Consider the following operational details carefully. "
        * 40
    )
    assert difficulty(easy) == difficulty(easy)
    assert 0.0 <= difficulty(easy) < 0.35 < 0.65 < difficulty(hard) <= 1.0
    for text in PROMPTS:
        assert 0.0 <= difficulty(text) <= 1.0


def test_difficulty_marker_overrides_and_other_markers_do_not_shift_it() -> None:
    text = "What is the capital of France?"
    assert difficulty(f"{text} {difficulty_marker(0.83)}") == 0.83
    assert difficulty(f"{text}{error_marker('500')}") == difficulty(text)
    assert parse_markers(f"{latency_marker(0.5)} {error_marker(Fault.timeout)}").latency_s == 0.5


@pytest.mark.parametrize(
    "text",
    [
        "[[sim:difficulty=1.5]]",
        "[[sim:difficulty=hard]]",
        "[[sim:error=418]]",
        "[[sim:colour=red]]",
        "[[sim:difficulty]]",
    ],
)
def test_malformed_markers_are_errors(text: str) -> None:
    with pytest.raises(MarkerError):
        difficulty(text)


def test_tokens_join_back_to_the_text() -> None:
    text = '{"answer": "[sim-small] It\'s fine.\n- yes", "n": 1}'
    assert "".join(tokenize(text)) == text


# --- answers -------------------------------------------------------------------------------------


def test_capable_model_is_confident_and_incapable_one_is_not() -> None:
    prompt = f"Summarise the incident report. {difficulty_marker(0.5)}"

    async def both(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
        small = await complete(client, "sim-small", prompt, logprobs=True)
        large = await complete(client, "sim-large", prompt, logprobs=True, top_logprobs=3)
        assert small.status_code == large.status_code == 200
        return small.json(), large.json()

    small, large = run(both)
    assert confidence(large) > 0.85
    assert confidence(small) < 0.5
    assert content(small).startswith("[sim-small] ")
    assert content(large).startswith("[sim-large] ") and "imulated" in content(large)
    first = large["choices"][0]["logprobs"]["content"][0]
    assert first["bytes"] is None and len(first["top_logprobs"]) == 3
    assert first["top_logprobs"][0]["token"] == first["token"]
    assert small["choices"][0]["finish_reason"] == "stop"
    assert large["object"] == "chat.completion" and large["model"] == "sim-large"


def test_answers_are_deterministic_and_incapable_ones_sometimes_hedge() -> None:
    async def answers(client: httpx.AsyncClient) -> list[tuple[str, str, str]]:
        out = []
        for prompt in PROMPTS:
            hard = f"{prompt} {difficulty_marker(0.9)}"
            weak = content((await complete(client, "sim-small", hard)).json())
            again = content((await complete(client, "sim-small", hard)).json())
            strong = content((await complete(client, "sim-large", hard)).json())
            assert weak == again
            out.append((weak, again, strong))
        return out

    results = run(answers)
    hedged = [w for w, _, _ in results if any(h in w for h in HEDGES)]
    assert 0 < len(hedged) < len(results)
    assert not any(any(h in s for h in HEDGES) for _, _, s in results)


def test_no_logprobs_unless_asked_and_usage_counts_characters() -> None:
    prompt = "x" * 40

    async def one(client: httpx.AsyncClient) -> dict[str, Any]:
        body = chat("sim-medium", prompt)
        body["messages"].insert(0, {"role": "system", "content": "y" * 20})
        reply: dict[str, Any] = (await client.post("/v1/chat/completions", json=body)).json()
        return reply

    body = run(one)
    assert body["choices"][0]["logprobs"] is None
    usage = body["usage"]
    assert usage["prompt_tokens"] == 15
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == len(tokenize(content(body)))


def test_json_mode_capable_is_valid_and_incapable_sometimes_is_not() -> None:
    fmt = {"type": "json_object"}

    async def answers(client: httpx.AsyncClient) -> tuple[list[str], list[str]]:
        strong, weak = [], []
        for prompt in PROMPTS:
            hard = f"{prompt} {difficulty_marker(0.6)}"
            strong.append(
                content((await complete(client, "sim-medium", hard, response_format=fmt)).json())
            )
            weak.append(
                content((await complete(client, "sim-small", hard, response_format=fmt)).json())
            )
        return strong, weak

    strong, weak = run(answers)
    for text in strong:
        assert json.loads(text)["simulated"] is True

    def parses(text: str) -> bool:
        try:
            return isinstance(json.loads(text), dict)
        except json.JSONDecodeError:
            return False

    assert 0 < sum(parses(t) for t in weak) < len(weak)


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    async def two(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
        short = await complete(client, "sim-large", "Hello", max_tokens=5, logprobs=True)
        newer = await complete(client, "sim-large", "Hello", max_tokens=50, max_completion_tokens=3)
        return short.json(), newer.json()

    short, newer = run(two)
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["usage"]["completion_tokens"] == 5
    assert len(short["choices"][0]["logprobs"]["content"]) == 5
    assert newer["usage"]["completion_tokens"] == 3


def test_stop_sequence_cuts_the_answer() -> None:
    async def one(client: httpx.AsyncClient) -> dict[str, Any]:
        reply: dict[str, Any] = (
            await complete(client, "sim-large", "Hello", stop=["x", "answer"])
        ).json()
        return reply

    body = run(one)
    assert content(body) == "[sim-large] Simulated"
    assert body["choices"][0]["finish_reason"] == "stop"


# --- refusals ------------------------------------------------------------------------------------


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"message", "type", "code"} and error["message"]
    return error


def test_bad_requests_get_openai_style_errors() -> None:
    async def all_of(client: httpx.AsyncClient) -> list[httpx.Response]:
        post = client.post
        return [
            await post("/v1/chat/completions", content=b"{not json"),
            await post("/v1/chat/completions", json={"model": "sim-small"}),
            await post("/v1/chat/completions", json=chat("sim-small", "hi", stream=True)),
            await complete(client, "gpt-unknown", "hi"),
            await complete(client, "sim-small", "hi [[sim:difficulty=2]]"),
            await complete(client, "sim-small", "word " * 80_000),
            await client.get("/v1/chat/completions"),
            await client.get("/v2/nothing"),
        ]

    bad_json, missing, stream, unknown, marker, too_long, method, route = run(all_of)
    assert _error(bad_json, 400)["type"] == "invalid_request_error"
    assert "messages" in _error(missing, 400)["message"]
    _error(stream, 400)
    assert _error(unknown, 404)["code"] == "model_not_found"
    assert "difficulty" in _error(marker, 400)["message"]
    assert _error(too_long, 400)["code"] == "context_length_exceeded"
    _error(method, 405)
    _error(route, 404)


def test_models_list_and_health() -> None:
    async def two(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
        return (await client.get("/v1/models")).json(), (await client.get("/healthz")).json()

    models, health = run(two)
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [
        "sim-small",
        "sim-medium",
        "sim-large",
        "sim-local",
    ]
    assert health["status"] == "ok"


# --- faults --------------------------------------------------------------------------------------


def test_error_markers_force_each_fault() -> None:
    async def faults(client: httpx.AsyncClient) -> dict[str, Any]:
        got: dict[str, Any] = {}
        for fault in ("429", "500", "503", "malformed"):
            got[fault] = await complete(client, "sim-large", f"hi {error_marker(fault)}")
        try:
            await client.post(
                "/v1/chat/completions",
                json=chat("sim-small", f"hi {error_marker(Fault.timeout)}"),
                timeout=0.2,
            )
        except httpx.ReadTimeout as exc:
            got["timeout"] = exc
        return got

    got = run(faults)
    limited = got["429"]
    assert _error(limited, 429)["type"] == "rate_limit_error"
    assert float(limited.headers["retry-after"]) == 1.0
    _error(got["500"], 500)
    _error(got["503"], 503)
    malformed = got["malformed"]
    assert malformed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    assert isinstance(got["timeout"], httpx.ReadTimeout)


def test_rates_draw_from_the_seeded_rng_reproducibly() -> None:
    config = SimConfig.model_validate(
        {"latency_scale": 0, "seed": 7, "faults": {"default": {"rate_500": 0.3, "rate_429": 0.2}}}
    )

    async def statuses(client: httpx.AsyncClient) -> list[int]:
        return [(await complete(client, "sim-small", f"q{i}")).status_code for i in range(60)]

    first, second = run(statuses, config), run(statuses, config)
    assert first == second
    assert 8 < first.count(500) < 30 and 4 < first.count(429) < 22 and first.count(200) > 15
    other = run(statuses, config.model_copy(update={"seed": 8}))
    assert other != first


def test_runtime_fault_update_merges_per_model_and_validates() -> None:
    async def steps(client: httpx.AsyncClient) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["set"] = await client.post(
            "/_sim/faults", json={"models": {"sim-small": {"outage": True}}}
        )
        out["small"] = await complete(client, "sim-small", "hi")
        out["medium"] = await complete(client, "sim-medium", "hi")
        out["unknown_field"] = await client.post("/_sim/faults", json={"default": {"rate_5xx": 1}})
        out["unknown_model"] = await client.post("/_sim/faults", json={"models": {"gpt": {}}})
        out["too_much"] = await client.post(
            "/_sim/faults", json={"default": {"rate_500": 0.8, "rate_429": 0.5}}
        )
        out["retry"] = await client.post(
            "/_sim/faults",
            json={
                "default": {"rate_429": 1.0, "retry_after_s": 7},
                "models": {"sim-small": {"outage": None}},
            },
        )
        out["limited"] = await complete(client, "sim-small", "hi")
        out["get"] = await client.get("/_sim/faults")
        out["reset"] = await client.post("/_sim/reset")
        out["after"] = await complete(client, "sim-small", "hi")
        return out

    out = run(steps)
    assert out["set"].json()["effective"]["sim-small"]["outage"] is True
    assert out["set"].json()["effective"]["sim-medium"]["outage"] is False
    _error(out["small"], 503)
    assert out["medium"].status_code == 200
    for key in ("unknown_field", "unknown_model", "too_much"):
        _error(out[key], 400)
    assert out["limited"].headers["retry-after"] == "7"
    state = out["get"].json()
    assert state["models"] == {} and state["default"]["rate_500"] == 0.0
    assert out["reset"].status_code == 200 and out["after"].status_code == 200


def test_per_model_config_faults_and_outage_beat_markers() -> None:
    config = SimConfig.model_validate(
        {"latency_scale": 0, "faults": {"models": {"sim-large": {"outage": True}}}}
    )

    async def two(client: httpx.AsyncClient) -> list[int]:
        return [
            (await complete(client, "sim-large", f"hi {error_marker('429')}")).status_code,
            (await complete(client, "sim-small", "hi")).status_code,
        ]

    assert run(two, config) == [503, 200]


# --- ledger --------------------------------------------------------------------------------------


def test_stats_ledger_counts_per_prompt_model_and_status() -> None:
    async def steps(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
        for _ in range(3):
            await complete(client, "sim-small", "count me")
        await complete(client, "sim-large", "count me")
        await complete(client, "sim-large", f"other {error_marker('500')}")
        await complete(client, "nope", "count me")
        stats = (await client.get("/_sim/stats", params={"window_s": 60, "calls": 1})).json()
        await client.post("/_sim/reset")
        return stats, (await client.get("/_sim/stats")).json()

    stats, after = run(steps)
    assert stats["total"] == 6
    assert stats["by_model"] == {"sim-small": 3, "sim-large": 2}
    assert stats["by_status"] == {"200": 4, "500": 1, "404": 1}
    assert stats["by_fault"] == {"500": 1}
    entry = stats["per_prompt"][prompt_key("count me")]
    assert entry["total"] == 5 and entry["by_model"] == {"sim-small": 3, "sim-large": 1, "?": 1}
    assert (
        stats["max_in_window"]["all"] == 6 and stats["max_in_window"]["by_model"]["sim-small"] == 3
    )
    assert len(stats["calls"]) == 6
    assert after["total"] == 0 and after["per_prompt"] == {}


def test_max_in_window() -> None:
    assert max_in_window([], 60) == 0
    assert max_in_window([0, 10, 59.9, 60, 61, 200], 60) == 4
    assert max_in_window([5, 1, 3], 1) == 1


def test_ledger_is_readable_in_process() -> None:
    provider = SimProvider(FAST)
    run_with(provider, lambda c: complete(c, "sim-small", "in process"))
    assert provider.ledger.count(prompt_key("in process")) == 1
    assert [c.status for c in provider.ledger.calls(prompt_key("in process"))] == [200]


# --- latency and config --------------------------------------------------------------------------


def test_latency_is_async_so_requests_overlap() -> None:
    """50 calls of 0.3 s each, at once: one after another they would take 15 s. The bound leaves
    a slow, shared machine room (the CPU of 50 calls), and still fails anything near serial."""
    config = SimConfig(latency=FixedLatency(seconds=0.3))

    async def many(client: httpx.AsyncClient) -> list[int]:
        replies = await asyncio.gather(*(complete(client, "sim-small", f"p{i}") for i in range(50)))
        return [r.status_code for r in replies]

    started = time.monotonic()
    statuses = run(many, config, timeout_s=30.0)
    elapsed = time.monotonic() - started
    assert statuses == [200] * 50
    assert 0.3 <= elapsed < 5.0


def test_latency_scale_zero_is_instant_and_marker_sets_exact_latency() -> None:
    config = SimConfig(latency=FixedLatency(seconds=5.0), latency_scale=0)

    async def timed(client: httpx.AsyncClient) -> tuple[float, float]:
        t0 = time.monotonic()
        await complete(client, "sim-large", "fast")
        t1 = time.monotonic()
        await complete(client, "sim-large", f"slow {latency_marker(0.2)}")
        return t1 - t0, time.monotonic() - t1

    instant, marked = run(timed, config)
    # far from the 5 s configured, with room for a slow, shared machine
    assert instant < 1.0 and 0.2 <= marked < 2.0


def test_config_merges_models_over_defaults_and_round_trips_env() -> None:
    config = SimConfig.model_validate(
        {
            "models": {
                "sim-large": {"capability": 0.9},
                "sim-xl": {"capability": 1.0, "latency": {"kind": "uniform", "lo": 0.1, "hi": 0.2}},
            }
        }
    )
    assert list(config.models) == ["sim-small", "sim-medium", "sim-large", "sim-local", "sim-xl"]
    assert config.models["sim-large"].capability == 0.9
    assert config.models["sim-large"].context_window == 200_000
    assert SimConfig.from_env(config.to_env()) == config
    assert SimConfig.from_env({}) == SimConfig()
    with pytest.raises(ValueError):
        SimConfig.model_validate({"latency_scale": 1, "fault": {}})


def test_sync_transport_for_sync_clients() -> None:
    provider = SimProvider(FAST)
    with httpx.Client(transport=provider.sync_mock_transport(), base_url="http://sim") as client:
        response = client.post("/v1/chat/completions", json=chat("sim-medium", "sync"))
    assert response.status_code == 200 and content(response.json()).startswith("[sim-medium] ")


def test_sim_is_independent_of_the_classifier_and_exports_what_it_names() -> None:
    import ast
    from pathlib import Path

    import parjanya.sim as sim

    for path in Path(sim.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.startswith("parjanya.classify") for n in names), path.name
    assert all(hasattr(sim, name) for name in sim.__all__)


# --- Anthropic Messages API ----------------------------------------------------------------------


def anthropic(model: str, prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


async def message(
    client: httpx.AsyncClient, model: str, prompt: str, **extra: Any
) -> httpx.Response:
    return await client.post("/v1/messages", json=anthropic(model, prompt, **extra))


def _anthropic_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error" and body["request_id"].startswith("req_")
    error: dict[str, Any] = body["error"]
    assert set(error) == {"type", "message"} and error["message"]
    return error


def test_messages_reply_shape_usage_and_same_answer_as_chat_completions() -> None:
    system, prompt = "Answer briefly.", "Summarise the incident report."

    async def both(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
        reply = await client.post(
            "/v1/messages",
            json=anthropic("sim-large", prompt, system=[{"type": "text", "text": system}]),
        )
        chat_body = chat("sim-large", prompt)
        chat_body["messages"].insert(0, {"role": "system", "content": system})
        completion = await client.post("/v1/chat/completions", json=chat_body)
        return reply.json(), completion.json()

    body, completion = run(both)
    assert body["id"].startswith("msg_") and body["type"] == "message"
    assert body["role"] == "assistant" and body["model"] == "sim-large"
    (block,) = body["content"]
    assert block["type"] == "text" and block["text"].startswith("[sim-large] ")
    assert block["text"] == content(completion)  # same model, same prompt, same answer
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert body["usage"] == {
        "input_tokens": (len(system) + len(prompt) + 3) // 4,
        "output_tokens": len(tokenize(block["text"])),
    }
    assert "logprobs" not in body


def test_messages_stop_sequences_and_max_tokens() -> None:
    async def two(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
        stopped = await message(client, "sim-large", "Hello", stop_sequences=["x", "answer"])
        short = await message(client, "sim-large", "Hello", max_tokens=5)
        return stopped.json(), short.json()

    stopped, short = run(two)
    assert stopped["content"][0]["text"] == "[sim-large] Simulated"
    assert (stopped["stop_reason"], stopped["stop_sequence"]) == ("stop_sequence", "answer")
    assert (short["stop_reason"], short["stop_sequence"]) == ("max_tokens", None)
    assert short["usage"]["output_tokens"] == 5


def test_messages_json_when_the_system_prompt_asks_for_it() -> None:
    async def two(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
        asked = await message(client, "sim-large", "Colours?", system="Reply with a JSON object.")
        plain = await message(client, "sim-large", "Colours?", system="Reply in prose.")
        return asked.json(), plain.json()

    asked, plain = run(two)
    assert json.loads(asked["content"][0]["text"])["simulated"] is True
    assert plain["content"][0]["text"].startswith("[sim-large] ")


def test_messages_bad_requests_get_anthropic_style_errors() -> None:
    async def all_of(client: httpx.AsyncClient) -> list[httpx.Response]:
        post = client.post
        no_max = anthropic("sim-small", "hi")
        del no_max["max_tokens"]
        system_role = anthropic("sim-small", "hi")
        system_role["messages"].insert(0, {"role": "system", "content": "x"})
        return [
            await post("/v1/messages", content=b"{not json"),
            await post("/v1/messages", json=no_max),
            await message(client, "sim-small", "hi", stream=True),
            await message(client, "sim-small", "hi", temperature=1.5),
            await post("/v1/messages", json=system_role),
            await message(client, "claude-unknown", "hi"),
            await message(client, "sim-small", "hi [[sim:difficulty=2]]"),
            await message(client, "sim-small", "word " * 80_000),
        ]

    bad_json, no_max, stream, hot, system_role, unknown, marker, too_long = run(all_of)
    assert _anthropic_error(bad_json, 400)["type"] == "invalid_request_error"
    assert "max_tokens" in _anthropic_error(no_max, 400)["message"]
    assert "stream" in _anthropic_error(stream, 400)["message"]
    assert "temperature" in _anthropic_error(hot, 400)["message"]
    assert "role" in _anthropic_error(system_role, 400)["message"]
    assert _anthropic_error(unknown, 404)["type"] == "not_found_error"
    assert "difficulty" in _anthropic_error(marker, 400)["message"]
    assert _anthropic_error(too_long, 400)["message"].startswith("prompt is too long: ")


def test_messages_faults_in_anthropic_shapes_and_one_shared_ledger() -> None:
    provider = SimProvider(FAST)

    async def faults(client: httpx.AsyncClient) -> dict[str, Any]:
        got: dict[str, Any] = {}
        for fault in ("429", "500", "503", "malformed"):
            got[fault] = await message(client, "sim-large", f"hi {error_marker(fault)}")
        try:
            await client.post(
                "/v1/messages",
                json=anthropic("sim-small", f"hi {error_marker(Fault.timeout)}"),
                timeout=0.2,
            )
        except httpx.ReadTimeout as exc:
            got["timeout"] = exc
        await client.post("/_sim/faults", json={"models": {"sim-medium": {"outage": True}}})
        got["outage"] = await message(client, "sim-medium", "shared prompt")
        got["chat"] = await complete(client, "sim-large", "shared prompt")
        got["messages"] = await message(client, "sim-large", "shared prompt")
        return got

    got = run_with(provider, faults)
    limited = got["429"]
    assert _anthropic_error(limited, 429)["type"] == "rate_limit_error"
    assert float(limited.headers["retry-after"]) == 1.0
    assert _anthropic_error(got["500"], 500)["type"] == "api_error"
    assert _anthropic_error(got["503"], 529)["type"] == "overloaded_error"
    assert _anthropic_error(got["outage"], 529)["type"] == "overloaded_error"
    assert got["malformed"].status_code == 200
    with pytest.raises(json.JSONDecodeError):
        got["malformed"].json()
    assert isinstance(got["timeout"], httpx.ReadTimeout)
    assert got["chat"].status_code == got["messages"].status_code == 200
    assert provider.ledger.count(prompt_key("shared prompt")) == 3
    stats = provider.ledger.stats()
    assert stats["by_status"]["529"] == 2 and stats["by_fault"]["503"] == 2


# --- context and filter markers, both APIs -------------------------------------------------------


def test_context_and_filtered_markers_in_each_apis_shape() -> None:
    provider = SimProvider(FAST)

    async def four(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await complete(client, "sim-large", f"hi {error_marker('context')}"),
            await message(client, "sim-large", f"hi {error_marker('context')}"),
            await complete(client, "sim-large", f"hi {error_marker('filtered')}"),
            await message(client, "sim-large", f"hi {error_marker('filtered')}"),
        ]

    chat_long, msg_long, chat_filtered, msg_filtered = run_with(provider, four)
    assert _error(chat_long, 400)["code"] == "context_length_exceeded"
    assert _anthropic_error(msg_long, 400)["message"] == (
        "prompt is too long: 200001 tokens > 200000 maximum"
    )
    choice = chat_filtered.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] == ""
    refused = msg_filtered.json()
    assert (refused["stop_reason"], refused["content"]) == ("refusal", [])
    assert provider.ledger.stats()["by_fault"] == {"context": 2, "filtered": 2}


# --- tool calls, both APIs -----------------------------------------------------------------------

TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
ANTHROPIC_TOOL = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
ASK_TOOL = f"Weather in Pune? {tool_marker('get_weather')}"


def test_tool_marker_makes_a_capable_model_call_the_tool() -> None:
    async def both(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
        chat_reply = await complete(client, "sim-large", ASK_TOOL, tools=[TOOL], logprobs=True)
        msg_reply = await message(client, "sim-large", ASK_TOOL, tools=[ANTHROPIC_TOOL])
        return chat_reply.json(), msg_reply.json()

    completion, reply = run(both)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["logprobs"] is None
    assert choice["message"]["content"] is None
    (called,) = choice["message"]["tool_calls"]
    assert called["id"].startswith("call_") and called["type"] == "function"
    assert called["function"]["name"] == "get_weather"
    assert json.loads(called["function"]["arguments"]) == {"query": "Weather in Pune"}
    assert completion["usage"]["completion_tokens"] > 0

    assert reply["stop_reason"] == "tool_use"
    (block,) = reply["content"]
    assert block["type"] == "tool_use" and block["id"] == f"toolu_{called['id'][5:]}"
    assert (block["name"], block["input"]) == ("get_weather", {"query": "Weather in Pune"})


def test_no_tool_call_when_incapable_not_offered_declined_or_already_answered() -> None:
    hard = f"{ASK_TOOL} {difficulty_marker(0.9)}"
    chat_result = [
        {"role": "user", "content": ASK_TOOL},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 31}'},
    ]
    messages_result = [
        {"role": "user", "content": ASK_TOOL},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "x"}]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "31 C"}],
        },
    ]

    async def cases(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await complete(client, "sim-small", hard, tools=[TOOL]),
            await complete(client, "sim-large", ASK_TOOL),
            await complete(client, "sim-large", ASK_TOOL, tools=[TOOL], tool_choice="none"),
            await client.post(
                "/v1/chat/completions",
                json={"model": "sim-large", "messages": chat_result, "tools": [TOOL]},
            ),
            await message(client, "sim-small", hard, tools=[ANTHROPIC_TOOL]),
            await message(client, "sim-large", ASK_TOOL),
            await message(
                client, "sim-large", ASK_TOOL, tools=[ANTHROPIC_TOOL], tool_choice={"type": "none"}
            ),
            await client.post(
                "/v1/messages",
                json={
                    "model": "sim-large",
                    "max_tokens": 64,
                    "messages": messages_result,
                    "tools": [ANTHROPIC_TOOL],
                },
            ),
        ]

    replies = [r.json() for r in run(cases)]
    for body in replies[:4]:
        assert body["choices"][0]["finish_reason"] == "stop"
        assert "tool_calls" not in body["choices"][0]["message"]
        assert content(body).startswith("[sim-")
    for body in replies[4:]:
        assert body["stop_reason"] == "end_turn"
        assert [b["type"] for b in body["content"]] == ["text"]


def test_tool_marker_naming_a_tool_not_offered_is_a_400() -> None:
    other = {"type": "function", "function": {"name": "get_time"}}

    async def two(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        return (
            await complete(client, "sim-large", ASK_TOOL, tools=[other]),
            await message(client, "sim-large", ASK_TOOL, tools=[{"name": "get_time"}]),
        )

    chat_reply, msg_reply = run(two)
    assert "get_weather" in _error(chat_reply, 400)["message"]
    assert "get_weather" in _anthropic_error(msg_reply, 400)["message"]


@pytest.mark.parametrize("text", ["[[sim:tool=get.weather]]", f"[[sim:tool={'x' * 65}]]"])
def test_malformed_tool_markers_are_errors(text: str) -> None:
    with pytest.raises(MarkerError):
        parse_markers(text)
    assert parse_markers(tool_marker("get_weather-2")).tool == "get_weather-2"


# --- headers -------------------------------------------------------------------------------------


def test_headers_are_never_echoed() -> None:
    secret = "sk-ant-test-SECRET123"
    headers = {"x-api-key": secret, "authorization": f"Bearer {secret}"}

    async def some(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await client.post("/v1/messages", json=anthropic("sim-large", "hi"), headers=headers),
            await client.post("/v1/messages", json={"model": "x"}, headers=headers),
            await client.post(
                "/v1/messages",
                json=anthropic("sim-large", f"hi {error_marker(429)}"),
                headers=headers,
            ),
            await client.post(
                "/v1/chat/completions", json=chat("sim-large", "hi"), headers=headers
            ),
            await client.get("/_sim/stats", params={"calls": 1}, headers=headers),
        ]

    for response in run(some):
        assert secret not in response.text
        assert all(secret not in value for value in response.headers.values())


def test_the_http_app_stops_work_when_the_client_goes_away() -> None:
    from parjanya.sim.server import SimApp

    class SlowProvider:
        cancelled = False

        async def handle(self, *args: object) -> object:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                SlowProvider.cancelled = True
                raise
            raise AssertionError("not reached")

    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]
    sent: list[object] = []

    async def receive() -> dict[str, object]:
        if messages:
            return messages.pop()
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def send(message: object) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}

    async def go() -> float:
        started = time.monotonic()
        await SimApp(SlowProvider()).__call__(scope, receive, send)  # type: ignore[arg-type]
        return time.monotonic() - started

    assert asyncio.run(go()) < 5
    assert SlowProvider.cancelled and sent == []
