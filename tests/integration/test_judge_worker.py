"""Tier workers configured with `confidence.checker: judge` escalate on the judge's rating.

Answers come from the sim; the judge is a small fake grader on its own loopback port that rates
sim-small's answers 2/10 and anything else 9/10. The prompt is easy, so sim-small answers it with
confident logprobs and the default checker would finish at the low tier: only the judge's rating
can send it up, which shows the worker awaits the configured checker, not the default one.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from parjanya.client import Client
from parjanya.schema import TaskStatus
from parjanya.sim.server import SimServer

from .conftest import Cluster, SimControl, make_cluster

pytestmark = pytest.mark.integration


class FakeJudge:
    """An OpenAI-shaped chat endpoint that rates by which sim model wrote the graded answer."""

    def __init__(self) -> None:
        self.graded: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, interface="asgi3", log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        graded = json.loads(body)["messages"][-1]["content"]
        self.graded.append(graded)
        rating = 2 if "[sim-small]" in graded else 9
        choice = {"index": 0, "message": {"role": "assistant", "content": f"Ok. [[{rating}]]"}}
        reply = {"id": "j", "model": "fake-judge", "choices": [{**choice, "finish_reason": "stop"}]}
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(reply).encode()})

    def __enter__(self) -> FakeJudge:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the fake judge did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(5)


@pytest.fixture(scope="module")
def fake_judge() -> Iterator[FakeJudge]:
    with FakeJudge() as judge:
        yield judge


@pytest.fixture(scope="module")
def judged(
    redis_url: str,
    sim: SimServer,
    fake_judge: FakeJudge,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    def judge_config(raw: dict[str, Any]) -> None:
        # The judge must be a configured deployment: a high-tier secondary, never reached here.
        spare = {
            **raw["tiers"]["high"]["deployments"][0],
            "name": "fake-judge",
            "model": "fake-judge",
            "base_url": f"http://127.0.0.1:{fake_judge.port}/v1",
        }
        raw["tiers"]["high"]["deployments"].append(spare)
        raw["confidence"] = {"checker": "judge", "judge_deployment": "fake-judge"}

    cluster = make_cluster(redis_url, sim, tmp_path_factory.mktemp("judge"), mutate=judge_config)
    try:
        for stage in ("intake", "low", "mid"):
            cluster.start(stage)
        yield cluster
    finally:
        cluster.stop()


def test_a_low_rating_escalates_an_answer_the_default_would_keep(
    redis_url: str, judged: Cluster, fake_judge: FakeJudge, sim_control: SimControl
) -> None:
    prompt = "Fix the typo in the CHANGELOG title. [[sim:difficulty=0.1]]"
    with Client(redis_url, config=judged.config) as client:
        result = client.submit(prompt).result(timeout=30)

    assert result.status == TaskStatus.succeeded
    assert result.tier_path == ["low", "mid"] and result.escalations == 1
    assert result.previous_answers[0].confidence == pytest.approx(1 / 9)  # rated 2/10
    assert result.confidence == pytest.approx(8 / 9) and not result.low_confidence  # rated 9/10
    assert [a.outcome for a in result.attempts if a.tier and a.stage != "intake"] == [
        "low_confidence",
        "ok",
    ]
    mine = [g for g in fake_judge.graded if "CHANGELOG" in g]
    assert len(mine) == 2 and "[sim-small]" in mine[0] and "[sim-medium]" in mine[1]
