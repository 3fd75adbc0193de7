"""`parjanya keys`, `parjanya webhooks`, `parjanya up`'s local key and the webhook sender's thread,
each on fakeredis: the commands' own logic, without a Redis server or a worker."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path

import fakeredis
import pytest
from redis import asyncio as aioredis
from typer.testing import CliRunner

from parjanya.cli.main import app
from parjanya.config import Settings, WebhookConfig
from parjanya.runtime.localkey import local_key
from parjanya.schema import TaskRequest
from parjanya.store import TaskStore
from parjanya.store.apikeys import ApiKeyStore
from parjanya.webhooks.outbox import Outbox
from parjanya.webhooks.sender import WebhookSender


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeServer:
    """Every asyncio Redis a command opens is this in-memory one."""
    shared = fakeredis.FakeServer()

    def from_url(url: str, **kwargs: object) -> fakeredis.FakeAsyncRedis:
        return fakeredis.FakeAsyncRedis(server=shared)

    monkeypatch.setattr(aioredis.Redis, "from_url", staticmethod(from_url))
    return shared


def run(*args: str) -> tuple[int, str]:
    answer = CliRunner().invoke(app, list(args))
    return answer.exit_code, answer.stdout


def test_keys_create_list_secret_revoke(server: fakeredis.FakeServer) -> None:
    code, out = run("keys", "create", "--tenant", "acme", "--rate", "60", "--json")
    assert code == 0
    made = json.loads(out)
    assert made["key"].startswith("pj_") and made["rate_per_minute"] == 60

    code, out = run("keys", "list", "--json")
    assert code == 0 and [(k["id"], k["tenant"]) for k in json.loads(out)] == [(made["id"], "acme")]
    assert made["key"] not in out
    assert run("keys", "list")[1].count(made["id"]) == 1
    assert run("keys", "secret", "--tenant", "acme")[1].strip() == made["webhook_secret"]
    code, out = run("keys", "create", "--tenant", "globex")
    assert code == 0 and "pj_" in out and "whsec_" in out

    assert run("keys", "revoke", made["id"])[0] == 0
    assert run("keys", "revoke", made["id"])[0] == 1
    assert (
        asyncio.run(ApiKeyStore(fakeredis.FakeAsyncRedis(server=server)).lookup(made["key"]))
        is None
    )


def test_keys_create_refuses_an_empty_tenant(server: fakeredis.FakeServer) -> None:
    assert run("keys", "create", "--tenant", " ")[0] != 0


def test_up_reuses_its_local_key_while_the_store_knows_it(
    server: fakeredis.FakeServer, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path)
    first, created = local_key(settings)
    again, created_again = local_key(settings)

    assert created and not created_again and first == again
    path = tmp_path / "api-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    asyncio.run(ApiKeyStore(fakeredis.FakeAsyncRedis(server=server)).revoke(first.split("_")[1]))
    renewed, created_now = local_key(settings)
    assert created_now and renewed != first and path.read_text().strip() == renewed


def test_the_sender_thread_delivers_and_the_webhooks_command_shows_it(
    server: fakeredis.FakeServer,
) -> None:
    store = TaskStore(fakeredis.FakeRedis(server=server))
    task_id = store.create(
        TaskRequest(prompt="hi", callback_url="http://10.0.0.9/hook"), requeue_after_s=60
    ).task_id
    assert store.cancel(task_id, ttl_s=60) == "cancelled"

    sender = WebhookSender("redis://fake", WebhookConfig(poll_interval_s=0.05)).start()
    try:
        outbox = Outbox(fakeredis.FakeAsyncRedis(server=server))
        deadline = time.monotonic() + 10
        while not asyncio.run(outbox.log()):
            assert time.monotonic() < deadline, "the sender never decided the delivery"
            time.sleep(0.05)
    finally:
        sender.stop()

    code, out = run("webhooks", "--json")
    records = json.loads(out)
    assert code == 0 and [(r["task_id"], r["state"]) for r in records] == [(task_id, "refused")]
    code, out = run("webhooks")
    assert code == 0 and "refused" in out and "0 owed" in out
