"""Many calls of one Lua script in one round trip, from a thread or from the event loop.

redis-py's pipeline asks SCRIPT EXISTS before every execute that holds a registered script, a
second round trip per batch. These send EVALSHA straight away and load the script only for the
calls Redis answers NOSCRIPT (after a restart), which then run again.

`ScriptBatcher` is the event-loop side: coroutines that each make one call (a tier worker finishing
hundreds of hops a second) are gathered into one pipeline per turn of the loop, without a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript, Script
from redis.exceptions import NoScriptError

__all__ = ["ScriptBatcher", "ScriptCall", "run_batch", "run_batch_async"]

#: One call of a script: its keys and its arguments.
ScriptCall = tuple[list[str], list[Any]]


def _sort(pending: list[int], answers: list[Any], replies: list[Any]) -> list[int]:
    """File answers into `replies`; the indexes Redis answered NOSCRIPT (other errors raise)."""
    missing = []
    for index, answer in zip(pending, answers, strict=True):
        if isinstance(answer, NoScriptError):
            missing.append(index)
        elif isinstance(answer, Exception):
            raise answer
        else:
            replies[index] = answer
    return missing


def run_batch(client: redis.Redis, script: Script, calls: Sequence[ScriptCall]) -> list[Any]:
    replies: list[Any] = [None] * len(calls)
    pending = list(range(len(calls)))
    for _ in range(2):
        with client.pipeline(transaction=False) as pipe:
            for index in pending:
                call_keys, call_args = calls[index]
                pipe.evalsha(script.sha, len(call_keys), *call_keys, *call_args)
            answers = pipe.execute(raise_on_error=False)
        pending = _sort(pending, answers, replies)
        if not pending:
            return replies
        client.script_load(script.script)
    raise NoScriptError("script vanished again right after loading it")


async def run_batch_async(
    client: aioredis.Redis, script: Script | AsyncScript, calls: Sequence[ScriptCall]
) -> list[Any]:
    if len(calls) == 1:  # alone in its turn (an idle process): no pipeline to build
        return [await _run_one(client, script, calls[0])]
    replies: list[Any] = [None] * len(calls)
    pending = list(range(len(calls)))
    for _ in range(2):
        async with client.pipeline(transaction=False) as pipe:
            for index in pending:
                call_keys, call_args = calls[index]
                pipe.evalsha(script.sha, len(call_keys), *call_keys, *call_args)
            answers = await pipe.execute(raise_on_error=False)
        pending = _sort(pending, answers, replies)
        if not pending:
            return replies
        await client.script_load(script.script)
    raise NoScriptError("script vanished again right after loading it")


async def _run_one(client: aioredis.Redis, script: Script | AsyncScript, call: ScriptCall) -> Any:
    call_keys, call_args = call
    try:
        return await client.evalsha(script.sha, len(call_keys), *call_keys, *call_args)
    except NoScriptError:
        await client.script_load(script.script)
        return await client.evalsha(script.sha, len(call_keys), *call_keys, *call_args)


class ScriptBatcher:
    """Calls of one script from many coroutines, sent as one pipeline per turn of the loop.

    A call waits at most for the round trip of the batch it joined: the first call of a batch
    schedules the send for the end of the current turn, and calls made meanwhile ride along.
    Batches in flight do not wait for each other.
    """

    def __init__(self, client: aioredis.Redis, script: Script | AsyncScript) -> None:
        self.client, self.script = client, script
        self._pending: list[tuple[ScriptCall, asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, call_keys: list[str], call_args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._pending.append(((call_keys, call_args), reply))
        if len(self._pending) == 1:
            loop.call_soon(self._send)
        return await reply

    def _send(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._round_trip(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _round_trip(self, batch: list[tuple[ScriptCall, asyncio.Future[Any]]]) -> None:
        try:
            replies = await run_batch_async(self.client, self.script, [call for call, _ in batch])
        except asyncio.CancelledError:
            for _, reply in batch:
                reply.cancel()
            raise
        except Exception as exc:
            for _, reply in batch:
                if not reply.done():
                    reply.set_exception(exc)
            return
        for (_, reply), value in zip(batch, replies, strict=True):
            if not reply.done():
                reply.set_result(value)
