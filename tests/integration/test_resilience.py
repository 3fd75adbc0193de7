"""Issue 4 end to end: real tier worker processes, the sim over HTTP in each fault mode.

The low tier here has two deployments on two wire protocols: `sim-small` over the OpenAI API
(primary) and `sim-medium` over the Anthropic Messages API (secondary), so every fallback also
crosses adapters. Faults are set per model on the running sim.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from parjanya import keys
from parjanya.client import Client
from parjanya.schema import TaskResult, TaskStatus
from parjanya.sim.ledger import prompt_key
from parjanya.sim.server import SimServer

from .conftest import Cluster, SimControl, make_cluster

pytestmark = pytest.mark.integration

SECRET = "sk-parjanya-test-SECRET-0123456789"


def _two_protocol_low_tier(raw: dict[str, Any]) -> None:
    primary = raw["tiers"]["low"]["deployments"][0]
    primary["timeout_s"] = 3.0
    primary["api_key_env"] = "PARJANYA_TEST_PRIMARY_KEY"
    secondary = {
        **raw["tiers"]["mid"]["deployments"][0],
        "name": "sim-medium-anthropic",
        "provider": "anthropic",
        "timeout_s": 5.0,
    }
    raw["tiers"]["low"]["deployments"].append(secondary)
    raw["breaker"].update({"failure_threshold": 3, "reset_after_s": 2.0})
    raw["retry"].update({"backoff_s": 0.01, "max_backoff_s": 0.05, "max_retry_after_s": 2.0})


@pytest.fixture(scope="module")
def resilient(
    redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    cluster = make_cluster(
        redis_url, sim, tmp_path_factory.mktemp("resilience"), mutate=_two_protocol_low_tier
    )
    cluster.env["PARJANYA_TEST_PRIMARY_KEY"] = SECRET
    try:
        cluster.start("intake")
        cluster.start("low")
        cluster.start("low")  # two processes share breakers, limits and disabled deployments
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def producer(redis_url: str, resilient: Cluster) -> Iterator[Client]:
    with Client(redis_url, config=resilient.config) as client:
        yield client


def _low(client: Client, prompt: str) -> TaskResult:
    return client.submit({"prompt": prompt, "min_tier": "low", "max_tier": "low"}).result(60)


def _tries(result: TaskResult, deployment: str) -> list[str | None]:
    return [a.error_type or a.outcome for a in result.attempts if a.deployment == deployment]


def _reset_breakers(client: Client) -> None:
    """What an operator's reset does: the records go, and every worker's view is told."""
    redis = client.store.redis
    for key in redis.scan_iter("parjanya:breaker:{*}"):
        redis.delete(key)
        redis.publish(keys.BREAKER_CHANGES, key.decode().split("{")[1].rstrip("}"))


@pytest.mark.parametrize(
    ("fault", "primary_tries"),
    [
        ({"rate_500": 1.0}, ["server_error"]),  # 5xx: fall back at once
        ({"rate_timeout": 1.0, "hang_s": 6.0}, ["timeout", "timeout"]),  # one retry, then fall back
        ({"rate_malformed": 1.0}, ["malformed_response", "malformed_response"]),  # one retry
        ({"rate_429": 1.0, "retry_after_s": 0.2}, ["rate_limited", "rate_limited"]),  # waits once
        ({"outage": True}, ["server_error"]),
    ],
)
def test_each_error_of_the_primary_falls_back_to_the_secondary_as_the_matrix_says(
    producer: Client, sim_control: SimControl, fault: dict[str, Any], primary_tries: list[str]
) -> None:
    _reset_breakers(producer)
    sim_control.set_faults({"models": {"sim-small": fault}})
    result = _low(producer, f"Rename the helper in utils.py ({fault}).")
    assert result.status == TaskStatus.succeeded, [
        (a.deployment, a.outcome, a.error_type, a.error) for a in result.attempts
    ]
    assert result.deployment == "sim-medium-anthropic" and result.tier_path == ["low"]
    assert _tries(result, "sim-small") == primary_tries
    assert _tries(result, "sim-medium-anthropic") == ["ok"]


def test_context_too_long_goes_to_a_deployment_with_a_larger_window(producer: Client) -> None:
    _reset_breakers(producer)
    long_context = "Summarise this log.\n" + "line of build output with some detail\n" * 2200
    result = _low(producer, long_context)  # ~20k tokens: over sim-small's 16k window
    assert result.status == TaskStatus.succeeded, result.error
    assert result.deployment == "sim-medium-anthropic"
    assert _tries(result, "sim-small") == ["context_too_long"]  # skipped, not called
    assert result.truncated is None


def _calls_to(sim_control: SimControl, prompts: list[str], model: str) -> int:
    """Calls that reached `model` for these prompts (immune to stragglers of earlier tests)."""
    per_prompt = sim_control.stats()["per_prompt"]
    return sum(per_prompt.get(prompt_key(p), {}).get("by_model", {}).get(model, 0) for p in prompts)


def test_an_open_breaker_is_skipped_by_every_worker_and_half_open_lets_one_probe_through(
    producer: Client, sim_control: SimControl, resilient: Cluster
) -> None:
    _reset_breakers(producer)
    sim_control.set_faults({"models": {"sim-small": {"rate_500": 1.0}}})
    opening = [f"Add a type hint to parse_{i}." for i in range(4)]
    for prompt in opening:  # three failures open it (threshold 3); the fourth is refused
        _low(producer, prompt)
    assert _calls_to(sim_control, opening, "sim-small") == 3
    while_open = [f"Add a docstring to load_{i}." for i in range(10)]
    handles = [
        producer.submit({"prompt": p, "min_tier": "low", "max_tier": "low"}) for p in while_open
    ]
    skipped = [h.result(60) for h in handles]
    assert _calls_to(sim_control, while_open, "sim-small") == 0  # no worker called it
    assert all(_tries(r, "sim-small") == ["circuit_open"] for r in skipped)

    sim_control.set_faults({"models": {"sim-small": {"rate_500": 0.0}}})
    time.sleep(resilient.config.breaker.reset_after_s + 0.5)  # open -> half-open
    probing = [f"Explain retry_{i} briefly. [[sim:latency=2]]" for i in range(8)]
    slow = [producer.submit({"prompt": p, "min_tier": "low", "max_tier": "low"}) for p in probing]
    results = [h.result(60) for h in slow]
    tries = [a for r in results for a in r.attempts if a.deployment == "sim-small"]
    # An attempt's started_at is stamped before the rate limiter and the breaker, so stamps do not
    # order admissions; a refusal is recorded the moment it happens (its finished_at), and the
    # probe is the call that finished first.
    calls = sorted((a.finished_at, a.started_at) for a in tries if a.error_type is None)
    probe_finished, probe_started = calls[0]
    # Every other call was let through only after the probe had closed the breaker, so it ended a
    # full sim latency (2 s) after the probe; one let through during half-open would end sooner.
    assert all(finished - probe_finished >= timedelta(seconds=1.5) for finished, _ in calls[1:])
    refused = [a for a in tries if a.error_type == "circuit_open"]
    assert all(probe_started <= a.finished_at <= probe_finished for a in refused)
    assert len(refused) >= 5
    assert _calls_to(sim_control, probing, "sim-small") == len(calls)
    assert all(r.status == TaskStatus.succeeded for r in results)
    after = _low(producer, "Rename the constant in config.py after the probe.")
    assert after.deployment == "sim-small"  # the probe's success closed it


def test_an_unset_key_disables_the_deployment_and_keys_never_leak(
    producer: Client,
    sim_control: SimControl,
    resilient: Cluster,
    redis_url: str,
    sim: SimServer,
    tmp_path: Path,
) -> None:
    # The primary's key is set for the cluster; errors of every kind were logged above. The key
    # must appear nowhere: worker logs, results, dead letters.
    for pool in resilient.pools:
        assert SECRET not in pool.log.read_text(errors="replace")
    dumped = " ".join(
        producer.store.redis.get(k).decode()
        for k in producer.store.redis.scan_iter("parjanya:dlq:entry:*")
    )
    tasks = " ".join(
        str(producer.store.redis.hget(k, "doc"))
        for k in producer.store.redis.scan_iter("parjanya:task:*")
    )
    assert SECRET not in dumped and SECRET not in tasks

    # Now a worker whose key variable is missing: 401-equivalent -> disabled + alert, no retry.
    keyless = make_cluster(redis_url, sim, tmp_path, mutate=_two_protocol_low_tier)
    keyless.env.pop("PARJANYA_TEST_PRIMARY_KEY", None)
    for pool in resilient.pools:
        if pool.stage == "low" and pool.alive:
            pool.kill9()
    try:
        keyless.start("low")
        first = _low(producer, "Fix the import order in main.py.")
        second = _low(producer, "Fix the import order in app.py.")
        assert _tries(first, "sim-small") == ["auth_error"]
        assert _tries(second, "sim-small") == ["deployment_disabled"]
        assert first.status == second.status == TaskStatus.succeeded
        assert "ALERT" in keyless.pools[0].log.read_text()
    finally:
        keyless.stop()
        for key in producer.store.redis.scan_iter("parjanya:disabled:*"):
            producer.store.redis.delete(key)
        resilient.start("low")
        resilient.start("low")


def test_the_response_cache_answers_a_repeat_for_free_unless_the_task_opts_out(
    redis_url: str, sim: SimServer, sim_control: SimControl, tmp_path: Path
) -> None:
    cached = make_cluster(redis_url, sim, tmp_path, cache=True)
    try:
        cached.start("intake")
        cached.start("mid")
        with Client(redis_url, config=cached.config) as client:
            ask = {
                "prompt": "Compare two caching strategies for a session store.",
                "min_tier": "mid",
                "max_tier": "mid",
            }
            first = client.submit(ask).result(30)
            second = client.submit(ask).result(30)
            fresh = client.submit({**ask, "cache": False}).result(30)
        assert not first.cached and first.cost_usd > 0
        assert second.cached and second.cost_usd == 0 and second.output == first.output
        assert not fresh.cached and fresh.cost_usd > 0
        assert sim_control.stats()["by_model"]["sim-medium"] == 2
    finally:
        cached.stop()


def _rpm_limited_low_tier(raw: dict[str, Any]) -> None:
    raw["tiers"]["low"]["deployments"][0]["rpm"] = 60


@pytest.mark.slow  # three one-minute windows: `pytest -m slow`
def test_three_worker_processes_share_60_rpm_in_every_minute_window(
    redis_url: str, sim: SimServer, sim_control: SimControl, tmp_path: Path, resilient: Cluster
) -> None:
    for pool in resilient.pools:  # only the rate-limited pools may serve the low tier now
        if pool.stage == "low" and pool.alive:
            pool.kill9()
    limited = make_cluster(redis_url, sim, tmp_path, mutate=_rpm_limited_low_tier)
    try:
        limited.start("intake")
        for _ in range(3):
            limited.start("low")
        limited.start("mid")  # refused calls fail over to the next tier instead of waiting forever
        sim_control.reset()
        with Client(redis_url, config=limited.config) as client:
            handles = []
            started = time.monotonic()
            while time.monotonic() - started < 70:  # ~3 tasks a second for 70 s
                handles.append(
                    client.submit(
                        {"prompt": f"Format date {len(handles)} as ISO.", "max_tier": "mid"}
                    )
                )
                time.sleep(0.33)
            results = [h.result(60) for h in handles]
        stats = sim_control.http.get("/_sim/stats", params={"window_s": 60}).json()
        busiest_minute = stats["max_in_window"]["by_model"]["sim-small"]
        assert busiest_minute <= 60, stats["max_in_window"]
        assert stats["by_model"]["sim-small"] >= 60  # the budget was used, not just avoided
        assert all(r.status == TaskStatus.succeeded for r in results)
        assert any(r.tier_path == ["low", "mid"] for r in results)  # refused -> next tier
    finally:
        limited.stop()
