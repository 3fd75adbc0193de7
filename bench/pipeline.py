"""Pipeline overhead against bare Celery, measured in one run on one broker.

    python bench/pipeline.py [--tasks 400] [--latency-samples 100] [--concurrency 8]
                             [--broker amqp://guest:guest@127.0.0.1:5672/parjanya-bench]

Baseline: a bare Celery no-op task, one hop, result via Celery's Redis backend, served by as many
worker processes as Parjanya's pipeline runs (one per entry of `PIPELINE_POOLS`, each --concurrency
threads on the one queue), so neither side gets more processes, and cores, than the other.
Parjanya: intake -> classifier pool -> tier pool (instant simulated provider over HTTP) -> result
in the store, with every reliability feature on (claims, leases, fencing, history). The classifier
pool runs like a baseline process (--concurrency threads); the tier pool runs as `parjanya up`
starts it, with hops on its event loop, so --concurrency does not cap its calls.
Prints throughput (tasks/s, N tasks submitted at once; the median of three batches), p50
end-to-end latency (one task at a time, samples taken between the batches), the classifier's
median microseconds per task, and the ratios. Medians everywhere: this machine is shared and noisy.

`--broker amqp://...` runs both on RabbitMQ (`bench/brokers.py`): bare Celery's results and
Parjanya's store go to a Redis of the bench's own, as a RabbitMQ deployment keeps them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "src"))

from brokers import BenchBroker, open_broker  # noqa: E402
from parjanya.classify import build_scorer, classify  # noqa: E402
from parjanya.client import Client  # noqa: E402
from parjanya.config import ParjanyaConfig, load_config  # noqa: E402
from parjanya.runtime.embedded_redis import free_port  # noqa: E402
from parjanya.runtime.workload import demo_workload  # noqa: E402
from procs import spawn as _spawn  # noqa: E402

#: Parjanya's worker processes in this bench; the baseline starts as many (the sim is not a worker).
PIPELINE_POOLS: dict[str, list[str]] = {
    "classifier": ["--classifier", "--pool", "threads"],
    "low": ["--tier", "low"],
}

ROUNDS = 3  # throughput is the median of this many batches; latency samples alternate with them


def _measure(
    submit_and_wait_all: Callable[[int], None], one: Callable[[], None], tasks: int, samples: int
) -> tuple[float, float]:
    for _ in range(10):
        one()  # waits for the workers to be up, then warms connections and imports
    throughputs, latencies = [], []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        submit_and_wait_all(tasks)
        throughputs.append(tasks / (time.perf_counter() - started))
        for _ in range(samples):
            t0 = time.perf_counter()
            one()
            latencies.append(time.perf_counter() - t0)
    return statistics.median(throughputs), statistics.median(latencies)


def bench_bare(broker: BenchBroker, tmp: Path, args: argparse.Namespace) -> tuple[float, float]:
    url = broker.url
    env = {
        **os.environ,
        "BENCH_BROKER_URL": url,
        "BENCH_BACKEND_URL": broker.store_url,
        "PYTHONPATH": str(BENCH),
    }
    workers = [
        _spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bare_celery",
                "worker",
                "-Q",
                "bench.bare",
                "-n",
                f"bare{i}@%h",
                "-P",
                "threads",
                "-c",
                str(args.concurrency),
                "--without-mingle",
                "--without-gossip",
                "-l",
                "WARNING",
            ],
            env,
            tmp / f"bare{i}.log",
            BENCH,
        )
        for i in range(len(PIPELINE_POOLS))
    ]
    try:
        sys.path.insert(0, str(BENCH))
        os.environ["BENCH_BROKER_URL"] = url
        os.environ["BENCH_BACKEND_URL"] = broker.store_url
        import bare_celery

        def all_at_once(n: int) -> None:
            results = [bare_celery.noop.delay(i) for i in range(n)]
            for result in results:
                result.get(timeout=120)

        def one() -> None:
            bare_celery.noop.delay(1).get(timeout=60)

        return _measure(all_at_once, one, args.tasks, args.latency_samples)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)


def sim_config(tmp: Path, sim_port: int) -> Path:
    """The shipped config with every deployment pointed at a sim on `sim_port`."""
    raw = yaml.safe_load((REPO / "config" / "parjanya.yaml").read_text())
    for tier in raw["tiers"].values():
        for deployment in tier["deployments"]:
            deployment["base_url"] = f"http://127.0.0.1:{sim_port}/v1"
    config_path = tmp / "parjanya.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    return config_path


def bench_pipeline(broker: BenchBroker, tmp: Path, args: argparse.Namespace) -> tuple[float, float]:
    url = broker.url
    sim_port = free_port()
    config_path = sim_config(tmp, sim_port)
    env = {**os.environ, **broker.env(), "PARJANYA_CONFIG": str(config_path)}
    python = [sys.executable, "-m", "parjanya"]
    children = [
        _spawn(
            [*python, "sim", "--port", str(sim_port), "--latency-scale", "0"],
            env,
            tmp / "sim.log",
            tmp,
        )
    ]
    # The classifier pool runs like a baseline process: `--concurrency` threads. The tier pool
    # runs as `parjanya up` starts it: hops on its event loop, up to its default in flight.
    for name, flags in PIPELINE_POOLS.items():
        threads = ["-c", str(args.concurrency)] if "threads" in flags else []
        argv = [*python, "worker", *flags, *threads, "--loglevel", "WARNING"]
        children.append(_spawn(argv, env, tmp / f"{name}.log", tmp))
    try:
        config = load_config(config_path)
        client = Client(url, result_url=broker.store_url, config=config)
        # A routine prompt and a short answer: this measures the pipeline's own overhead (two
        # hops, store, HTTP), not escalations or the sim's cost of rendering long answers.
        # "cache": False makes every task call the provider: the response cache would otherwise
        # answer every repeat of this one prompt and flatter the figures.
        request = {
            "prompt": "Rename the variable tmp to total in cart.py.",
            "max_tier": "low",
            "max_output_tokens": 16,
            "cache": False,
        }

        def all_at_once(n: int) -> None:
            handles = [client.submit(request) for _ in range(n)]
            for handle in handles:
                assert handle.result(timeout=120).status == "succeeded"

        def one() -> None:
            client.submit(request).result(timeout=60)

        return _measure(all_at_once, one, args.tasks, args.latency_samples)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(30)


def classifier_median_us(config: ParjanyaConfig, rounds: int = 20) -> float:
    """Median classify() time with the configured scorer, built once as a worker builds it."""
    requests = [r for _, r in demo_workload(200)]
    scorer = build_scorer(config.routing)
    timings = []
    for _ in range(rounds):
        for request in requests:
            t0 = time.perf_counter_ns()
            classify(request, config, scorer)
            timings.append(time.perf_counter_ns() - t0)
    return statistics.median(timings) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--latency-samples", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--broker",
        default=None,
        help="amqp://... for RabbitMQ (a vhost of the bench's own); default: a Redis of its own",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        broker = open_broker(args.broker, tmp)
        try:
            bare_tps, bare_p50 = bench_bare(broker, tmp, args)
            print(
                f"bare_celery     throughput={bare_tps:8.1f} tasks/s  p50={bare_p50 * 1000:7.2f} ms"
                f"  ({len(PIPELINE_POOLS)} worker processes, as the pipeline)"
            )
            pipe_tps, pipe_p50 = bench_pipeline(broker, tmp, args)
            print(
                f"parjanya        throughput={pipe_tps:8.1f} tasks/s  p50={pipe_p50 * 1000:7.2f} ms"
                "  (intake -> classifier -> tier -> result)"
            )
        finally:
            broker.close(extra_queues=("bench.bare",))
    classifier_us = classifier_median_us(load_config())
    print(f"classifier      median={classifier_us:.1f} us/task")
    print(
        f"pipeline_vs_bare broker={broker.kind} throughput_ratio={pipe_tps / bare_tps:.2f} "
        f"p50_ratio={pipe_p50 / bare_p50:.2f} classifier_us={classifier_us:.1f}"
    )


if __name__ == "__main__":
    main()
