"""Queue wait of critical tasks against batch tasks submitted earlier, on a saturated high tier.

    python bench/priority.py [--batch 400] [--critical 40] [--concurrency 20] [--latency 0.5]

One high-tier worker process holds --concurrency calls of --latency seconds each (the sim in its
own process with a fixed latency), so it completes about concurrency / latency hops a second.
First --batch tasks of SLA class `batch` are submitted, all pinned to the high tier, and the bench
waits until the classifier has put every one of them on the high queue: the tier is saturated,
with a backlog of batch / (concurrency / latency) seconds. Then --critical tasks of class
`critical` arrive one every --spacing seconds while that backlog drains. Every task's queue wait
on the tier is read from its result (`timings`: queued on the tier to started there).

The baseline is in the same run: the batch tasks that were queued first. Without class priorities
a critical task would wait behind all of them (FIFO); with them, the feeder deals free slots 8:3:1
(`admission.class_weights`), so a critical task waits about one call. The last line is

    priority critical_p99_wait_s=<x> batch_p50_wait_s=<y>

and the target is x < y.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "src"))

from parjanya.client import Client, TaskHandle  # noqa: E402
from parjanya.config import load_config  # noqa: E402
from parjanya.governance.deadlines import quantile  # noqa: E402
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from parjanya.schema import TaskResult, TaskStatus  # noqa: E402
from parjanya.sim.config import SimConfig  # noqa: E402
from parjanya.sim.models import FixedLatency  # noqa: E402
from procs import spawn as _spawn  # noqa: E402
from procs import stop as _stop  # noqa: E402
from procs import wait_log as _wait_log  # noqa: E402


def tier_wait_s(result: TaskResult) -> float:
    """Queued on the high tier to started there (the hop after the classifier's)."""
    timing = next(t for t in result.timings if t.stage == "high")
    assert timing.wait_s is not None, result.id
    return timing.wait_s


def _request(sla: str, index: int) -> dict[str, object]:
    return {
        "prompt": f"Summarise ticket {sla}-{index}. [[sim:difficulty=0.05]]",
        "sla": sla,
        "min_tier": "high",
        "max_tier": "high",
        "max_output_tokens": 16,
    }


def _all_classified(client: Client, handles: list[TaskHandle]) -> bool:
    return all(any(t.stage == "high" for t in client.status(h.id).timings) for h in handles)


def run(args: argparse.Namespace, url: str, sim_url: str, tmp: Path) -> tuple[float, float]:
    raw = yaml.safe_load((REPO / "config" / "parjanya.yaml").read_text())
    for tier in raw["tiers"].values():
        for deployment in tier["deployments"]:
            deployment["base_url"] = f"{sim_url}/v1"
    raw["cache"]["enabled"] = False  # every call must reach the sim
    raw["routing"]["scorer"] = "heuristic"
    config_path = tmp / "parjanya.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PARJANYA_BROKER_URL": url, "PARJANYA_CONFIG": str(config_path)}
    python = [sys.executable, "-m", "parjanya", "worker"]
    pools = [
        _spawn(
            [*python, "--classifier", "-c", "4", "--loglevel", "WARNING"],
            env,
            tmp / "classifier.log",
            tmp,
        ),
        _spawn(
            [*python, "--tier", "high", "-c", str(args.concurrency), "--loglevel", "INFO"],
            env,
            tmp / "high.log",
            tmp,
        ),
    ]
    client = Client(url, config=load_config(config_path))
    try:
        _wait_log(tmp / "high.log", "ready.")
        batch = client.submit_many(_request("batch", i) for i in range(args.batch))
        deadline = time.monotonic() + 120
        while not _all_classified(client, batch):
            if time.monotonic() > deadline:
                raise RuntimeError("the batch tasks were not classified within 120 s")
            time.sleep(0.1)
        critical = []
        for i in range(args.critical):
            critical.append(client.submit(_request("critical", i)))
            time.sleep(args.spacing)
        results = {h.id: h.result(timeout=600) for h in batch + critical}
    finally:
        for pool in pools:
            _stop(pool)
        client.close()
    failed = [r for r in results.values() if r.status != TaskStatus.succeeded]
    if failed:
        raise RuntimeError(
            f"{len(failed)} tasks did not succeed: {failed[0].status} {failed[0].error}"
        )
    batch_waits = [tier_wait_s(results[h.id]) for h in batch]
    critical_waits = [tier_wait_s(results[h.id]) for h in critical]
    for name, waits in (("batch", batch_waits), ("critical", critical_waits)):
        print(
            f"{name:<8} tasks={len(waits):<4} wait p50={quantile(waits, 0.5):.2f}s "
            f"p99={quantile(waits, 0.99):.2f}s max={max(waits):.2f}s",
            flush=True,
        )
    return quantile(critical_waits, 0.99), quantile(batch_waits, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--critical", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per simulated call")
    parser.add_argument(
        "--spacing", type=float, default=0.05, help="seconds between critical tasks"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        server = EmbeddedRedis(free_port(), tmp / "redis", appendonly=False).start()
        sim_port = free_port()
        sim_env = {**os.environ, **SimConfig(latency=FixedLatency(seconds=args.latency)).to_env()}
        sim = _spawn(
            [sys.executable, "-m", "parjanya", "sim", "--port", str(sim_port)],
            sim_env,
            tmp / "sim.log",
            tmp,
        )
        try:
            _wait_log(tmp / "sim.log", "simulated provider")
            critical_p99, batch_p50 = run(args, server.url, f"http://127.0.0.1:{sim_port}", tmp)
        finally:
            _stop(sim)
            server.stop()
    print(f"priority critical_p99_wait_s={critical_p99:.3f} batch_p50_wait_s={batch_p50:.3f}")


if __name__ == "__main__":
    main()
