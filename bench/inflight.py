"""How many 1-second model calls one worker process carries, against Celery's threads pool.

    python bench/inflight.py [--sizes 500 1000] [--waves 10] [--feeder-batch 0]
                             [--broker amqp://guest:guest@127.0.0.1:5672/parjanya-bench]

For each size N the tier queue is filled with N x waves tasks first (so producers and the
classifier are not measured), then ONE worker process is started and timed from its first pop
off the queue (boot is not throughput) until every task is done.

Three fractions of ideal (N calls in flight, 1 s each: N tasks a second):
- ideal_fraction, the headline: from the moment the first N tasks are done (the warm-up wave, which
  opens N connections to the sim, as the ceiling's warm-up does) to the last task done, all of it
  in: (total - N) / N seconds over the time taken.
- steady: from 2N done to all but the last N done: a full pool, the draining left out.
- whole_run: waves x 1 s over the time from the first pop to the last task done, everything in.
With a fixed latency the N calls of the first wave start and end together, so the worker takes
them in a burst; the bursts spread out over the next waves until completions arrive evenly.

Baseline: bare Celery, threads pool at -c 200, a task that makes the same call with httpx (sync,
one client per thread), max(N, 5 x 200) tasks, measured the same way with a pool of 200. Its
fraction is reported twice: of its own 200 (how well Celery's threads hold their pool) and of the
same N as Parjanya (`baseline_of_n`: the calls a second it completes over N a second), which is
what one process of each gives at this load.
Parjanya: `parjanya worker --tier low --concurrency N` (hops on the event loop, worker/dispatch.py)
through the full tier path: claim, lease, provider adapter, confidence, store commit.
Peak RSS is the worker process's VmHWM; cpu_ms its CPU per task (user + system, every thread) from
its first pop to its last task done. The sim runs in its own process with a fixed 1 s latency.
`--broker amqp://...` runs the baseline and Parjanya on RabbitMQ (`bench/brokers.py`); the
store, and the baseline's counters, are then in a Redis of the bench's own.
Ceiling: a bare aiohttp client (no queue, no store, nothing else running) holding the same N calls
against the same sim, each of its N loops calling back to back: what the sim and the machine allow
any worker to reach. Its CPU per call is the least a call can cost here; `cpu_ratio`, the tier
worker's CPU per task over it, stays comparable across days on which this shared machine's speed
does not (on 2 cores the tier process's one core, its GIL, is what runs out first).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import redis
import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "src"))

from brokers import BenchBroker, open_broker  # noqa: E402
from parjanya import keys  # noqa: E402
from parjanya.client import Client  # noqa: E402
from parjanya.config import load_config  # noqa: E402
from parjanya.queues import queue_for  # noqa: E402
from parjanya.runtime.embedded_redis import free_port  # noqa: E402
from parjanya.sim.config import SimConfig  # noqa: E402
from parjanya.sim.models import FixedLatency  # noqa: E402
from procs import cpu_seconds, stop, wait_log  # noqa: E402
from procs import spawn as _spawn  # noqa: E402

LATENCY_S = 1.0
BASELINE_THREADS = 200


def _in_flight(store: redis.Redis) -> int:
    """Tasks not terminal yet, over every store shard, in one round trip."""
    with store.pipeline(transaction=False) as pipe:
        for shard in keys.all_shards():
            pipe.zcard(keys.inflight(shard))
        return sum(int(n) for n in pipe.execute())


def _per_task_ms(before: float | None, after: float | None, tasks: int) -> float:
    """CPU per task in ms between two `cpu_seconds` readings (nan where they cannot be read)."""
    return float("nan") if before is None or after is None else (after - before) / tasks * 1000


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Completions:
    """When each count of completed tasks was first seen (polled every few milliseconds)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.seen: list[tuple[float, int]] = []

    def see(self, done: int) -> None:
        self.seen.append((time.monotonic() - self.started, done))

    def at(self, count: int) -> float:
        return next(t for t, done in self.seen if done >= count)

    def fractions(self, pool: int, total: int) -> tuple[float, float, float]:
        """(after the warm-up wave, steady, whole run) as fractions of ideal (module docstring)."""
        rate = pool / LATENCY_S
        end = self.seen[-1][0]
        warm = (total - pool) / rate / (end - self.at(pool))
        window = self.at(total - pool) - self.at(2 * pool)
        steady = (total - 3 * pool) / rate / window if window > 0 else float("nan")
        return warm, steady, total / rate / end


class Measured(NamedTuple):
    fraction: float  # ideal_fraction, the headline
    steady: float
    whole_run: float
    rss_mb: float  # peak
    cpu_ms: float  # the worker process's CPU per task, from its first pop to its last task done


def run_baseline(bench: BenchBroker, sim_url: str, tmp: Path, n: int) -> Measured:
    counters = bench.store
    counters.delete("bench.inflight.done", "bench.inflight.failed")
    urls = {
        "BENCH_BROKER_URL": bench.url,
        "BENCH_BACKEND_URL": bench.store_url,
        "BENCH_SIM_URL": sim_url,
    }
    env = {**os.environ, **urls, "PYTHONPATH": str(BENCH)}
    sys.path.insert(0, str(BENCH))
    os.environ.update(urls)
    import bare_celery_calls

    total = max(n, 5 * BASELINE_THREADS)
    for _ in range(total):
        bare_celery_calls.call_model.delay()
    log = tmp / f"baseline-{n}.log"
    worker = _spawn(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bare_celery_calls",
            "worker",
            "-Q",
            "bench.calls",
            "-P",
            "threads",
            "-c",
            str(BASELINE_THREADS),
            "--without-mingle",
            "--without-gossip",
            "-l",
            "INFO",
        ],
        env,
        log,
        BENCH,
    )
    try:
        wait_log(log, "ready.", poll_s=0.02)
        while bench.depth("bench.calls") == total:  # worker boot is not throughput
            time.sleep(0.005)
        cpu_at_start = cpu_seconds(worker.pid)
        completions = Completions()
        while True:
            completions.see(int(counters.get("bench.inflight.done") or 0))
            if completions.seen[-1][1] >= total:
                break
            if completions.seen[-1][0] > 300:
                raise RuntimeError("baseline did not finish in 300 s")
            time.sleep(0.005)
        cpu_ms = _per_task_ms(cpu_at_start, cpu_seconds(worker.pid), total)
        rss = _peak_rss_mb(worker.pid)
        failed = int(counters.get("bench.inflight.failed") or 0)
    finally:
        stop(worker, 20)
    if failed:
        print(f"  (baseline: {failed} of {total} calls failed under load; counted as done)")
    return Measured(*completions.fractions(BASELINE_THREADS, total), rss, cpu_ms)


def run_parjanya(
    bench: BenchBroker,
    sim_url: str,
    tmp: Path,
    n: int,
    waves: int,
    feeder_batch: int | None,
    *,
    loglevel: str = "INFO",
    extra: tuple[str, ...] = (),
) -> Measured:
    raw = yaml.safe_load((REPO / "config" / "parjanya.yaml").read_text())
    if feeder_batch is not None:  # 0: Celery's consumer admits every hop (no batch feeder)
        raw["reliability"]["feeder_batch"] = feeder_batch
    for tier in raw["tiers"].values():
        for deployment in tier["deployments"]:
            deployment["base_url"] = f"{sim_url}/v1"
    raw["cache"]["enabled"] = False  # every call must reach the sim
    config_path = tmp / f"parjanya-{n}.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, **bench.env(), "PARJANYA_CONFIG": str(config_path)}
    python = [sys.executable, "-m", "parjanya", "worker"]
    total = n * waves
    classifier = _spawn(
        [*python, "--classifier", "-c", "2", "--loglevel", "WARNING"],
        env,
        tmp / f"classifier-{n}.log",
        tmp,
    )
    store = bench.store
    try:
        client = Client(bench.url, result_url=bench.store_url, config=load_config(config_path))
        request = {
            "prompt": "Rename the variable tmp to total in cart.py.",
            "min_tier": "low",
            "max_tier": "low",
            "max_output_tokens": 16,
        }
        client.submit_many([request] * total)
        while bench.depth(queue_for("low")) < total:  # classified, waiting for the tier pool
            time.sleep(0.05)
    finally:
        stop(classifier, 20)
    log = tmp / f"low-{n}.log"
    worker = _spawn(
        [*python, "--tier", "low", "--concurrency", str(n), "--loglevel", loglevel, *extra],
        env,
        log,
        tmp,
    )
    try:
        # Celery's "ready." line is an INFO record; the banner's queue list is printed at any level.
        wait_log(log, "ready." if loglevel == "INFO" else "[queues]", poll_s=0.02)
        while bench.depth(queue_for("low")) == total:  # worker boot is not throughput
            time.sleep(0.005)
        cpu_at_start = cpu_seconds(worker.pid)
        completions = Completions()
        while True:
            completions.see(total - _in_flight(store))
            if completions.seen[-1][1] >= total:
                break
            time.sleep(0.005)
        cpu_ms = _per_task_ms(cpu_at_start, cpu_seconds(worker.pid), total)
        rss = _peak_rss_mb(worker.pid)
    finally:
        stop(worker, 20)
        client.close()
    return Measured(*completions.fractions(n, total), rss, cpu_ms)


def run_ceiling(sim_url: str, n: int, waves: int) -> tuple[float, float]:
    """What the sim and this machine allow at all: a bare aiohttp client, no queue, no store.

    N call loops at once, each making `waves` calls back to back, as a worker's N slots do; the
    fraction of ideal it reaches bounds every worker's. Also its CPU per call in ms (this
    process does nothing else meanwhile): the least any worker's call can cost here.
    """
    import asyncio

    import aiohttp

    sys.path.insert(0, str(BENCH))
    from bare_celery_calls import _body as body

    async def go() -> tuple[float, float]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> None:
                async with session.post(f"{sim_url}/v1/chat/completions", json=body) as reply:
                    reply.raise_for_status()
                    await reply.read()

            async def slot() -> None:
                for _ in range(waves):
                    await one()

            await asyncio.gather(*(one() for _ in range(n)))  # connections open, sim warm
            started, cpu = time.monotonic(), time.process_time()
            await asyncio.gather(*(slot() for _ in range(n)))
            cpu_ms = (time.process_time() - cpu) / (n * waves) * 1000
            return waves * LATENCY_S / (time.monotonic() - started), cpu_ms

    return asyncio.run(go())


def _median_run(runs: list[Measured]) -> Measured:
    """The run with the median headline fraction (its other figures come with it)."""
    return sorted(runs, key=lambda run: run.fraction)[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; medians reported")
    parser.add_argument(
        "--broker",
        default=None,
        help="amqp://... for RabbitMQ (a vhost of the bench's own); default: a Redis of its own",
    )
    parser.add_argument(
        "--feeder-batch",
        type=int,
        default=None,
        help="override reliability.feeder_batch (0: Celery's consumer admits every hop)",
    )
    parser.add_argument(
        "--observe",
        action="store_true",
        help="instead: the tier worker quiet (WARNING), with its hop log (INFO), and with the "
        "hop log and Flower's task events (INFO --events), runs interleaved",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        server = open_broker(args.broker, tmp)
        sim_port = free_port()
        sim_env = {**os.environ, **SimConfig(latency=FixedLatency(seconds=LATENCY_S)).to_env()}
        sim = _spawn(
            [sys.executable, "-m", "parjanya", "sim", "--port", str(sim_port)],
            sim_env,
            tmp / "sim.log",
            tmp,
        )
        sim_url = f"http://127.0.0.1:{sim_port}"
        try:
            wait_log(tmp / "sim.log", "simulated provider", poll_s=0.02)
            time.sleep(1.0)
            if args.observe:
                run_observe(server, sim_url, tmp, args.sizes, args.waves, args.repeat)
                return
            rows = []
            for n in args.sizes:
                baselines, tiers = [], []
                for _ in range(args.repeat):
                    baselines.append(run_baseline(server, sim_url, tmp, n))
                    _show(f"celery threads -c {BASELINE_THREADS:<4}", n, baselines[-1])
                    tiers.append(
                        run_parjanya(server, sim_url, tmp, n, args.waves, args.feeder_batch)
                    )
                    _show("parjanya tier  ", n, tiers[-1], args.waves)
                ceiling, ceiling_cpu_ms = run_ceiling(sim_url, n, args.waves)
                print(
                    f"aiohttp alone   in_flight={n:<5} tasks={n * args.waves:<5} "
                    f"whole_run={ceiling:.2f} cpu_ms={ceiling_cpu_ms:.2f}  "
                    "(the ceiling of this sim and machine)",
                    flush=True,
                )
                baseline, tier = _median_run(baselines), _median_run(tiers)
                print(f"median of {args.repeat}:", flush=True)
                _show(f"celery threads -c {BASELINE_THREADS:<4}", n, baseline)
                _show("parjanya tier  ", n, tier, args.waves)
                rows.append((n, tier, baseline, ceiling, ceiling_cpu_ms))
        finally:
            stop(sim, 20)
            server.close(extra_queues=("bench.calls",))
    # cpu_ms: the tier worker's CPU per task; cpu_ratio: that over a bare aiohttp call's (both
    # measured in this run, so the machine's speed of the day divides out).
    for n, tier, baseline, ceiling, ceiling_cpu_ms in rows:
        print(
            f"inflight broker={server.kind} concurrency={n} ideal_fraction={tier.fraction:.2f} "
            f"rss_mb={tier.rss_mb:.0f} "
            f"baseline_fraction={baseline.fraction:.2f} "
            f"baseline_of_n={baseline.fraction * BASELINE_THREADS / n:.2f} "
            f"ceiling={ceiling:.2f} cpu_ms={tier.cpu_ms:.2f} "
            f"cpu_ratio={tier.cpu_ms / ceiling_cpu_ms:.1f}"
        )


#: What each hop costs to watch: (label, log level, extra worker flags).
OBSERVE_VARIANTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("quiet", "WARNING", ()),
    ("hop_log", "INFO", ()),
    ("hop_log_events", "INFO", ("--events",)),
)


def run_observe(
    bench: BenchBroker, sim_url: str, tmp: Path, sizes: list[int], waves: int, repeat: int
) -> None:
    """The tier worker without and with its hop log and task events, interleaved run by run so
    the machine's drift falls on every variant alike; medians and ratios against `quiet`."""
    for n in sizes:
        runs: dict[str, list[Measured]] = {label: [] for label, _, _ in OBSERVE_VARIANTS}
        for _ in range(repeat):
            for label, level, extra in OBSERVE_VARIANTS:
                runs[label].append(
                    run_parjanya(bench, sim_url, tmp, n, waves, None, loglevel=level, extra=extra)
                )
                _show(f"parjanya {label:<15}", n, runs[label][-1], waves)
        medians = {label: _median_run(measured) for label, measured in runs.items()}
        quiet = medians["quiet"].fraction
        hop_log, events = medians["hop_log"].fraction, medians["hop_log_events"].fraction
        print(
            f"observe concurrency={n} quiet={quiet:.2f} "
            f"hop_log={hop_log:.2f} events={events:.2f} "
            f"hop_log_ratio={hop_log / quiet:.2f} "
            f"events_ratio={events / quiet:.2f}",
            flush=True,
        )


def _show(label: str, n: int, run: Measured, waves: int | None = None) -> None:
    tasks = max(n, 5 * BASELINE_THREADS) if waves is None else n * waves
    in_flight = BASELINE_THREADS if waves is None else n
    print(
        f"{label} in_flight={in_flight:<5} tasks={tasks:<5} ideal_fraction={run.fraction:.2f} "
        f"steady={run.steady:.2f} whole_run={run.whole_run:.2f} rss_mb={run.rss_mb:.0f} "
        f"cpu_ms={run.cpu_ms:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
