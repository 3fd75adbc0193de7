"""kombu's Redis channel, Parjanya's way: entries are checked with the bounded decoder before delivery."""

from __future__ import annotations

import pytest

from parjanya.broker.decode import DEFAULT_LIMITS
from parjanya.broker.poison import RawDeadLetters
from parjanya.broker.transport import checked
from parjanya.queues import INTAKE_QUEUE, queue_for
from parjanya.store import DeadLetterStore, TaskStore

from .test_admission import HOSTILE
from .test_decode import real_message


@pytest.fixture
def sink(store: TaskStore) -> TaskStore:
    """The store dead letters go to: the sink is passed to `checked`, never installed."""
    return store


def test_a_hop_message_is_delivered_as_its_envelope(sink: TaskStore) -> None:
    payload = checked(real_message(), queue_for("low"), DEFAULT_LIMITS, RawDeadLetters(sink))
    assert payload is not None and payload["headers"]["task"] == "parjanya.tier"
    assert sink.redis.llen("parjanya.dlq.low") == 0


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_entries_are_dead_lettered_once_and_not_delivered(
    sink: TaskStore, raw: bytes
) -> None:
    assert checked(raw, INTAKE_QUEUE, DEFAULT_LIMITS, RawDeadLetters(sink)) is None
    assert sink.redis.llen("parjanya.dlq.intake") == 1


def test_a_tier_hop_on_the_intake_queue_is_an_unknown_task_there(sink: TaskStore) -> None:
    assert checked(real_message(), INTAKE_QUEUE, DEFAULT_LIMITS, RawDeadLetters(sink)) is None
    [letter] = DeadLetterStore(sink.redis).list()
    assert "unknown task" in letter.reason and letter.queue == "parjanya.dlq.intake"


def test_celery_s_own_queues_only_need_a_kombu_envelope(sink: TaskStore) -> None:
    reply = b'{"body": "e30=", "headers": {}, "properties": {"body_encoding": "base64"}}'
    assert (
        checked(reply, "celery@host.reply.celery.pidbox", DEFAULT_LIMITS, RawDeadLetters(sink))
        is not None
    )
