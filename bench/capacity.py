"""The capacity story in figures: Redis work per task, and what one Redis or RabbitMQ node carries.

    python bench/capacity.py [--tasks 2000] [--amqp amqp://guest:guest@127.0.0.1:5672//]

Runs the pipeline (classifier pool and low tier pool, instant simulated provider) on a Redis of
its own, and reads Redis's own counters around a batch of tasks:
- commands per task, by command (`INFO commandstats`, reset before the batch);
- Redis CPU seconds per task (`INFO cpu`, user + sys): Redis runs commands on one thread, so one
  core over this figure is the ceiling of one Redis for Parjanya's tasks, network work included;
- the same ceiling from command time alone (`usec_per_call`), an upper bound.
With `--amqp` (or a RabbitMQ answering on the default URL), it also publishes and consumes hop-sized
persistent messages with publisher confirms through kombu, and reports messages/s; a task is two
messages (intake hop, tier hop), so half of it bounds that node in tasks/s. One publisher waiting
for each confirm measures latency as much as the node: a floor of its ceiling, not the ceiling.
Baseline in the same run: the pipeline's own measured throughput on this machine, so each
ceiling prints as a ratio to what two worker processes reach today.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))
sys.path.insert(0, str(BENCH))

from parjanya.client import Client  # noqa: E402
from parjanya.config import load_config  # noqa: E402
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from pipeline import PIPELINE_POOLS, sim_config  # noqa: E402
from procs import spawn as _spawn  # noqa: E402

REQUEST = {
    "prompt": "Rename the variable tmp to total in cart.py.",
    "max_tier": "low",
    "max_output_tokens": 16,
    "cache": False,
}


def _cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_figures(url: str, tmp: Path, tasks: int) -> dict[str, float]:
    sim_port = free_port()
    config_path = sim_config(tmp, sim_port)
    env = {**os.environ, "PARJANYA_BROKER_URL": url, "PARJANYA_CONFIG": str(config_path)}
    python = [sys.executable, "-m", "parjanya"]
    sim = ["sim", "--port", str(sim_port), "--latency-scale", "0"]
    children = [_spawn([*python, *sim], env, tmp / "sim.log", tmp)]
    for name, flags in PIPELINE_POOLS.items():
        threads = ["-c", "8"] if "threads" in flags else []
        argv = [*python, "worker", *flags, *threads, "--loglevel", "WARNING"]
        children.append(_spawn(argv, env, tmp / f"{name}.log", tmp))
    r = redis.Redis.from_url(url)
    try:
        client = Client(url, config=load_config(config_path))
        for handle in [client.submit(REQUEST) for _ in range(50)]:  # warm: pools up, scripts loaded
            handle.result(timeout=120)
        r.config_resetstat()
        cpu0, t0 = _cpu(r), time.perf_counter()
        handles = [client.submit(REQUEST) for _ in range(tasks)]
        for handle in handles:
            assert handle.result(timeout=300).status == "succeeded"
        elapsed, cpu = time.perf_counter() - t0, _cpu(r) - cpu0
        stats = r.info("commandstats")
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(30)
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    usec = sum(float(v["usec"]) for v in stats.values())
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:8]
    print(
        "redis commands per task (Lua scripts' own included):",
        ", ".join(f"{k}={n / tasks:.1f}" for k, n in top),
    )
    return {
        "pipeline_tps": tasks / elapsed,
        "ops_per_task": sum(calls.values()) / tasks,
        "cpu_ms_per_task": cpu / tasks * 1000,
        "ceiling_tps": tasks / cpu if cpu > 0 else float("inf"),
        "command_bound_tps": tasks / (usec / 1e6) if usec > 0 else float("inf"),
    }


def amqp_messages_per_s(url: str, messages: int) -> float | None:
    from kombu import Connection, Exchange, Queue

    body = {"task_id": "x" * 32, "stage": "low", "payload": "y" * 1500}
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
            queue = Queue(
                "parjanya.bench.capacity",
                Exchange("parjanya.bench"),
                "capacity",
                durable=True,
                auto_delete=False,
            )
            producer = conn.Producer(serializer="json")
            channel = producer.channel
            channel.confirm_select()  # publisher confirms: a publish returns once the node has it
            queue(channel).declare()
            queue(channel).purge()
            received = 0

            def on_message(_body: object, message: object) -> None:
                nonlocal received
                received += 1
                message.ack()  # type: ignore[attr-defined]

            t0 = time.perf_counter()
            for _ in range(messages):
                producer.publish(
                    body,
                    exchange=queue.exchange,
                    routing_key="capacity",
                    delivery_mode=2,
                    declare=[queue],
                )
            with conn.Consumer(queue, callbacks=[on_message], prefetch_count=256):
                while received < messages:
                    conn.drain_events(timeout=10)
            rate = 2 * messages / (time.perf_counter() - t0)  # published and consumed
            queue(channel).delete()
            return rate / 2
    except OSError as exc:
        print(f"amqp: skipped, no RabbitMQ answered at {url.split('@')[-1]} ({exc})")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--amqp-messages", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        server = EmbeddedRedis(free_port(), tmp / "redis", appendonly=False).start()
        try:
            figures = redis_figures(server.url, tmp, args.tasks)
        finally:
            server.stop()
    print(
        f"redis ops_per_task={figures['ops_per_task']:.1f} "
        f"cpu_ms_per_task={figures['cpu_ms_per_task']:.3f} "
        f"ceiling_tasks_per_s={figures['ceiling_tps']:.0f} "
        f"command_bound_tasks_per_s={figures['command_bound_tps']:.0f} "
        f"pipeline_tasks_per_s={figures['pipeline_tps']:.0f} "
        f"ceiling_vs_pipeline={figures['ceiling_tps'] / figures['pipeline_tps']:.1f}"
    )
    rate = amqp_messages_per_s(args.amqp, args.amqp_messages)
    if rate is not None:
        print(
            f"rabbitmq confirmed_messages_per_s={rate:.0f} floor_tasks_per_s={rate / 2:.0f} "
            f"ceiling_vs_pipeline={rate / 2 / figures['pipeline_tps']:.1f}"
        )


if __name__ == "__main__":
    main()
