"""The HTTP API over real sockets: `parjanya api` in its own process, in front of real workers.

A classifier and the low and mid pools run from the start, the high pool does not: a task pinned to
high waits on its queue, which is what the cancel test needs. The official `openai` client talks to
the API exactly as it would to OpenAI, with only `base_url` changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI

from parjanya.runtime.embedded_redis import free_port
from parjanya.sim import SimServer, latency_marker, tool_marker
from parjanya.sim.ledger import prompt_key

from .conftest import Cluster, SimControl, make_cluster, serving_api

pytestmark = pytest.mark.integration

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_ticket",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def api_cluster(
    redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    running = make_cluster(
        redis_url,
        sim,
        tmp_path_factory.mktemp("api-cluster"),
        # The receiver of the webhook tests listens on loopback; nothing else is let through.
        mutate=lambda raw: raw["webhooks"].update(allow_networks=["127.0.0.0/8"]),
    )
    with running.serving("intake", "low", "mid"):
        yield running


@pytest.fixture(scope="module")
def api_url(api_cluster: Cluster) -> Iterator[str]:
    with serving_api(api_cluster, free_port()) as url:
        yield url


def cli(cluster: Cluster, *args: str) -> str:
    """`parjanya ...` as an operator runs it, against the cluster's store."""
    done = subprocess.run(
        [sys.executable, "-m", "parjanya", *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def new_key(cluster: Cluster, tenant: str, *extra: str) -> str:
    made = json.loads(cli(cluster, "keys", "create", "--tenant", tenant, "--json", *extra))
    assert made["tenant"] == tenant and made["key"].startswith("pj_")
    return str(made["key"])


@pytest.fixture(scope="module")
def api_key(api_cluster: Cluster) -> str:
    return new_key(api_cluster, "acme")


@pytest.fixture
def http(api_url: str, api_key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=api_url, timeout=60, headers=headers) as client:
        yield client


@pytest.fixture
def openai_client(api_url: str, api_key: str) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{api_url}/v1", api_key=api_key, max_retries=0, timeout=60) as client:
        yield client


def test_the_openai_client_gets_a_completion_with_routing_headers(openai_client: OpenAI) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model="parjanya-auto",
        messages=[{"role": "user", "content": "Fix the typo in the README title."}],
    )
    completion = raw.parse()

    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-parjanya-tier"] == "low"
    assert 1 <= float(raw.headers["x-parjanya-complexity"]) <= 10
    assert raw.headers["x-parjanya-escalations"] == "0"
    task_id = raw.headers["x-parjanya-task-id"]
    assert completion.id == f"chatcmpl-{task_id}"
    extra: dict[str, Any] = completion.model_extra or {}
    assert extra["parjanya"]["task_id"] == task_id and extra["parjanya"]["tier_path"] == ["low"]


def test_a_pinned_model_runs_on_its_tier(openai_client: OpenAI) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model="parjanya-mid",
        messages=[{"role": "user", "content": "Rename a variable in utils.py."}],
    )
    assert raw.headers["x-parjanya-tier-path"] == "mid"
    assert raw.parse().model.startswith("sim-medium")


def test_tools_round_trip_through_the_openai_client(openai_client: OpenAI) -> None:
    messages: list[Any] = [
        {"role": "user", "content": f"Open ticket 42 please. {tool_marker('lookup_ticket')}"}
    ]
    first = openai_client.chat.completions.create(
        model="parjanya-low", messages=messages, tools=[LOOKUP]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "lookup_ticket"
    json.loads(call.function.arguments)

    messages += [
        choice.message,  # the client's own response object, echoed back as agent loops do
        {"role": "tool", "tool_call_id": call.id, "content": '{"status": "open"}'},
    ]
    second = openai_client.chat.completions.create(
        model="parjanya-low", messages=messages, tools=[LOOKUP]
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


def test_json_mode_answers_json(openai_client: OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="parjanya-low",
        messages=[{"role": "user", "content": "List two release steps as JSON."}],
        response_format={"type": "json_object"},
    )
    content = completion.choices[0].message.content
    assert content is not None and isinstance(json.loads(content), dict)


def test_stream_true_is_a_400_the_client_raises(openai_client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as raised:
        openai_client.chat.completions.create(
            model="parjanya-auto", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert raised.value.status_code == 400
    assert "stream" in raised.value.message


def test_a_submitted_task_is_202_with_location_and_a_long_poll_returns_it(
    http: httpx.Client,
) -> None:
    submitted = http.post("/v1/tasks", json={"prompt": "Summarise the changelog in one line."})
    assert submitted.status_code == 202
    task_id = submitted.json()["id"]
    assert submitted.headers["location"] == f"/v1/tasks/{task_id}"

    started = time.monotonic()
    finished = http.get(submitted.headers["location"], params={"wait": 30})
    assert finished.status_code == 200
    assert finished.json()["status"] == "succeeded" and finished.json()["output"]
    assert time.monotonic() - started < 25  # woken when it ended, not at the end of the wait
    assert http.get("/v1/tasks/0123456789abcdef").status_code == 404


def test_invalid_and_oversized_bodies_are_refused_and_never_enqueued(
    http: httpx.Client, api_cluster: Cluster
) -> None:
    invalid = http.post("/v1/tasks", json={"prompt": "hi", "sla": "urgent"})
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "sla"]

    limit = api_cluster.config.api.max_body_bytes
    oversized = http.post("/v1/tasks", json={"prompt": "x" * (limit + 1)})
    assert oversized.status_code == 413
    assert oversized.json()["error"]["type"] == "request_too_large"


def test_cancel_of_a_queued_task_ends_it_cancelled_and_it_never_runs(
    http: httpx.Client, api_cluster: Cluster, sim_control: SimControl
) -> None:
    prompt = "Draft the migration plan for the billing schema."
    task_id = http.post(
        "/v1/tasks", json={"prompt": prompt, "min_tier": "high", "max_tier": "high"}
    ).json()["id"]
    deadline = time.monotonic() + 30
    while [t["stage"] for t in http.get(f"/v1/tasks/{task_id}").json()["timings"]] != [
        "intake",
        "high",
    ]:
        assert time.monotonic() < deadline, "the task was never routed to the high queue"
        time.sleep(0.1)

    cancelled = http.delete(f"/v1/tasks/{task_id}")
    assert cancelled.status_code == 200 and cancelled.json()["outcome"] == "cancelled"
    assert http.get(f"/v1/tasks/{task_id}", params={"wait": 1}).json()["status"] == "cancelled"
    assert http.delete(f"/v1/tasks/{task_id}").status_code == 409

    api_cluster.start("high")  # its worker now takes the cancelled task's message, and skips it
    later = http.post(
        "/v1/tasks", json={"prompt": "Plan the cache rollout.", "min_tier": "high"}
    ).json()["id"]
    assert http.get(f"/v1/tasks/{later}", params={"wait": 30}).json()["status"] == "succeeded"
    assert http.get(f"/v1/tasks/{task_id}").json()["status"] == "cancelled"
    per_prompt = sim_control.stats()["per_prompt"]
    assert isinstance(per_prompt, dict) and prompt_key(prompt) not in per_prompt


def test_cancel_of_a_running_task_ends_it_at_the_hop_boundary_before_escalating(
    http: httpx.Client, sim_control: SimControl
) -> None:
    # A hopeless answer on low would escalate to mid; the cancel lands while low is answering.
    prompt = f"Fix the typo in the CHANGELOG heading. [[sim:difficulty=0.99]] {latency_marker(2)}"
    task_id = http.post("/v1/tasks", json={"prompt": prompt, "max_tier": "mid"}).json()["id"]
    deadline = time.monotonic() + 30
    while http.get(f"/v1/tasks/{task_id}").json()["status"] != "running":
        assert time.monotonic() < deadline, "the task never started running"
        time.sleep(0.05)

    requested = http.delete(f"/v1/tasks/{task_id}")
    assert requested.status_code == 202 and requested.json()["outcome"] == "requested"

    ended = http.get(f"/v1/tasks/{task_id}", params={"wait": 30}).json()
    assert ended["status"] == "cancelled"
    assert [a["tier"] for a in ended["attempts"] if a["stage"] != "intake"] == ["low"]
    per_prompt = sim_control.stats()["per_prompt"]
    assert isinstance(per_prompt, dict)
    entry = per_prompt[prompt_key(prompt)]
    assert (entry["total"] if isinstance(entry, dict) else entry) == 1  # mid was never called


def test_the_api_logs_one_json_event_per_request_and_no_prompt_text(
    http: httpx.Client, api_cluster: Cluster
) -> None:
    prompt = "Summarise the access-log check notes, kept out of every log line 5519."
    task_id = http.post("/v1/tasks", json={"prompt": prompt}).json()["id"]
    assert http.get(f"/v1/tasks/{task_id}", params={"wait": 30}).json()["status"] == "succeeded"

    log = api_cluster.log_dir / "api.log"  # a file, not a terminal: JSON lines
    deadline = time.monotonic() + 10
    while True:  # each line is written once its response has gone out
        events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        mine = [e for e in events if e["event"] == "request" and e.get("task_id") == task_id]
        if len(mine) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(e["method"], e["route"], e["status"]) for e in mine] == [
        ("POST", "/v1/tasks", 202),
        ("GET", "/v1/tasks/{task_id}", 200),
    ]
    assert all(e["tenant"] == "acme" and e["logger"] == "parjanya.api" for e in mine)
    assert mine[1]["ms"] >= 0 and "timestamp" in mine[1]
    assert any(e.get("logger", "").startswith("uvicorn") for e in events)  # its records too
    assert prompt not in log.read_text()


def test_readyz_sees_every_pool(http: httpx.Client, api_cluster: Cluster) -> None:
    if not any(p.stage == "high" and p.alive for p in api_cluster.pools):
        api_cluster.start("high")
    deadline = time.monotonic() + 10
    while (ready := http.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ready.status_code == 200, ready.json()
    assert all(n >= 1 for n in ready.json()["workers"].values())


# --- tenants and keys (issue 13, point 2) -------------------------------------------------------


def test_without_a_key_every_route_but_health_is_a_401(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=30) as anonymous:
        for method, path in (("GET", "/v1/models"), ("POST", "/v1/tasks"), ("GET", "/v1/tasks/x")):
            response = anonymous.request(method, path, json={"prompt": "hi"})
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].startswith("Bearer")
        revoked = anonymous.get("/v1/models", headers={"Authorization": "Bearer pj_00_revoked"})
        assert revoked.status_code == 401
        assert anonymous.get("/healthz").status_code == 200


def test_a_second_tenant_gets_404_on_the_first_tenants_task(
    http: httpx.Client, api_url: str, api_cluster: Cluster
) -> None:
    # The body names another tenant: the key decides.
    submitted = http.post("/v1/tasks", json={"prompt": "Say hi.", "tenant": "globex"})
    task_id = submitted.json()["id"]
    assert http.get(f"/v1/tasks/{task_id}", params={"wait": 30}).json()["tenant"] == "acme"

    other = {"Authorization": f"Bearer {new_key(api_cluster, 'globex')}"}
    with httpx.Client(base_url=api_url, timeout=30, headers=other) as globex:
        for method, params in (("GET", {}), ("GET", {"wait": 2}), ("DELETE", {})):
            response = globex.request(method, f"/v1/tasks/{task_id}", params=params)
            assert response.status_code == 404, method
            assert response.json()["error"]["type"] == "task_not_found"
    assert http.get(f"/v1/tasks/{task_id}").json()["status"] == "succeeded"


def test_a_key_over_its_rate_gets_429_with_retry_after(api_url: str, api_cluster: Cluster) -> None:
    slow = {"Authorization": f"Bearer {new_key(api_cluster, 'acme', '--rate', '1')}"}
    with httpx.Client(base_url=api_url, timeout=30, headers=slow) as client:
        assert client.get("/v1/models").status_code == 200
        refused = client.get("/v1/models")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["type"] == "rate_limited"


# --- webhooks (issue 13, point 3) ---------------------------------------------------------------


class Receiver:
    """A webhook receiver on loopback that keeps every POST it gets."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout_s: float = 45) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.got) < count:
            assert time.monotonic() < deadline, f"{len(self.got)} of {count} webhooks arrived"
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def verify_as_the_readme_says(secret: str, header: str, body: bytes) -> bool:
    """The README's verification snippet, independent of Parjanya's own `verify`."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    signed = fields["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


def test_a_webhook_arrives_signed_and_verifies(
    http: httpx.Client, api_cluster: Cluster, receiver: Receiver
) -> None:
    task_id = http.post(
        "/v1/tasks", json={"prompt": "Say hello.", "callback_url": receiver.url}
    ).json()["id"]

    receiver.wait_for(1)
    headers, body = receiver.got[0]
    secret = cli(api_cluster, "keys", "secret", "--tenant", "acme").strip()
    assert verify_as_the_readme_says(secret, headers["parjanya-signature"], body)
    event = json.loads(body)
    assert event["type"] == "task.succeeded" and headers["parjanya-event-type"] == event["type"]
    assert event["data"]["id"] == task_id and event["data"]["tenant"] == "acme"
    assert event["data"]["output"]


def test_a_callback_to_a_private_address_is_refused_and_recorded(
    http: httpx.Client, api_cluster: Cluster, receiver: Receiver
) -> None:
    bad = http.post("/v1/tasks", json={"prompt": "hi", "callback_url": "ftp://example.com/"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "callback_url"]

    # 10.0.0.0/8 is private and not in this cluster's allow list (the default allows nothing).
    private = http.post(
        "/v1/tasks", json={"prompt": "Say hello.", "callback_url": "http://10.255.255.1:9/hook"}
    ).json()["id"]
    allowed = http.post(
        "/v1/tasks", json={"prompt": "Say hi.", "callback_url": receiver.url}
    ).json()["id"]
    receiver.wait_for(1)
    deadline = time.monotonic() + 45
    while not (refused := [r for r in webhook_log(api_cluster) if r["task_id"] == private]):
        assert time.monotonic() < deadline, "the private callback was never decided"
        time.sleep(0.2)
    assert refused[0]["state"] == "refused" and "10.255.255.1" in refused[0]["error"]
    assert [json.loads(body)["data"]["id"] for _, body in receiver.got] == [allowed]


def webhook_log(cluster: Cluster) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(cli(cluster, "webhooks", "--json"))
    return records
