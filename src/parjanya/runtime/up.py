"""`parjanya up`: broker (embedded if none answers), sim, classifier, three tier pools, Flower.

Everything runs as child processes of this one, logs go to `<data dir>/logs/`, and a Ctrl-C or
SIGTERM stops every child (workers get SIGTERM and their soft-shutdown window first).
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from types import FrameType
from urllib.parse import urlparse

from rich.console import Console
from rich.table import Table

from parjanya.broker import amqp
from parjanya.broker.amqp import is_amqp
from parjanya.config import DEFAULT_SIM_PORT, MetricsConfig, MetricsPool, Settings, get_config
from parjanya.queues import TIERS
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port, is_listening, is_local
from parjanya.runtime.supervisor import Supervisor
from parjanya.safeurl import mask_url


@dataclass(frozen=True)
class UpOptions:
    demo_tasks: int = 20
    exit_after_demo: bool = False
    tier_concurrency: int = 200
    flower: bool = True
    flower_port: int = 5555
    sim_port: int = DEFAULT_SIM_PORT
    sim_latency_scale: float = 1.0
    api_port: int = 8000
    #: Serve /metrics from here up (classifier +0, low/mid/high +1..3, API +4) instead of the
    #: metrics config's ports: a second `parjanya up` on one host (a test, a demo) needs its own.
    metrics_port_base: int | None = None


def metrics_of(options: UpOptions) -> MetricsConfig:
    """The metrics ports this `up` serves: the config's, or every pool's from `metrics_port_base`."""
    config = get_config().metrics
    if options.metrics_port_base is None:
        return config
    return config.model_copy(update={"port_base": options.metrics_port_base, "ports": {}})


def _metrics_flag(metrics: MetricsConfig, options: UpOptions, child: str) -> list[str]:
    """`--metrics-port` for a child when `up` was given a base; otherwise it reads the config."""
    if options.metrics_port_base is None or not metrics.enabled:
        return []
    return ["--metrics-port", str(metrics.port_for(METRICS_POOLS[child]))]


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _ensure_broker(settings: Settings, console: Console) -> EmbeddedRedis | None:
    shown = mask_url(settings.broker_url)  # what is printed never carries the password
    kind = "RabbitMQ" if is_amqp(settings.broker_url) else "Redis"
    if (amqp.answers if kind == "RabbitMQ" else is_listening)(settings.broker_url):
        console.print(f"broker: using the {kind} at {shown}")
        return None
    if kind == "RabbitMQ" or not is_local(settings.broker_url):  # only Redis can be embedded
        console.print(f"[red]no {kind} answers at {shown}[/red]")
        raise SystemExit(1)
    port = urlparse(settings.broker_url).port or 6379
    embedded = EmbeddedRedis(port, settings.data_dir / "redis").start()
    console.print(
        f"broker: nothing listened at {shown}, so Parjanya started an embedded "
        f"redis-server there (append-only, fsync always) with data in {embedded.data_dir}"
    )
    return embedded


def _start_children(sup: Supervisor, options: UpOptions, sim_port: int) -> None:
    python = [sys.executable, "-m"]
    sup.start(
        "sim",
        [
            *python,
            "parjanya",
            "sim",
            "--port",
            str(sim_port),
            "--latency-scale",
            str(options.sim_latency_scale),
        ],
        url=f"http://127.0.0.1:{sim_port}/v1",
    )
    events = ["--events"] if options.flower else []
    metrics = metrics_of(options)
    sup.start(
        "classifier",
        [
            *python,
            "parjanya",
            "worker",
            "--classifier",
            "-c",
            "2",
            *events,
            *_metrics_flag(metrics, options, "classifier"),
        ],
        url="queue parjanya.intake",
    )
    for tier in TIERS:
        sup.start(
            f"worker-{tier}",
            [
                *python,
                "parjanya",
                "worker",
                "--tier",
                tier,
                "--pool",
                "threads",
                "-c",
                str(options.tier_concurrency),
                *events,
                *_metrics_flag(metrics, options, f"worker-{tier}"),
            ],
            url=f"queue parjanya.tier.{tier}",
        )
    sup.start(
        "api",
        [
            *python,
            "parjanya",
            "api",
            "--port",
            str(options.api_port),
            *_metrics_flag(metrics, options, "api"),
        ],
        url=f"http://127.0.0.1:{options.api_port}/v1 (OpenAPI: /docs)",
    )
    if options.flower:
        sup.start(
            "flower",
            # Flower with every Parjanya queue, dead letters included (runtime/flower.py).
            [
                *python,
                "parjanya",
                "flower",
                "--port",
                str(options.flower_port),
                "--address",
                "127.0.0.1",
            ],
            url=f"http://127.0.0.1:{options.flower_port}",
        )


def _print_where(
    sup: Supervisor, settings: Settings, console: Console, metrics: MetricsConfig | None = None
) -> None:
    """Where each part runs, for the operator; every URL in it masked."""
    table = Table(title="Parjanya is up")
    for column in ("component", "pid", "where", "log"):
        table.add_column(column)
    if settings.result_url:
        table.add_row("broker", "-", mask_url(settings.broker_url), "-")
        table.add_row("store", "-", mask_url(settings.result_url), "-")
    else:
        table.add_row("broker + store", "-", mask_url(settings.broker_url), "-")
    for child in sup.children:
        pid = str(child.process.pid) if child.process else "-"
        table.add_row(child.name, pid, child.url, str(child.log_path))
    console.print(table)
    _print_metrics(sup, metrics or get_config().metrics, console)
    for child in sup.children:
        if child.name == "flower":
            console.print(f"Flower (workers, every hop, queue lengths): {child.url}")


def _print_key(settings: Settings, api_port: int, console: Console) -> None:
    """The local API key and a request to paste, as Jupyter prints its token."""
    from parjanya.config import get_config
    from parjanya.runtime.localkey import key_file, local_key

    if get_config().api.auth == "off":
        console.print("API: api.auth is off, so no key is needed (local development only)")
        return
    key, created = local_key(settings)
    base = f"http://127.0.0.1:{api_port}"
    said = "created" if created else "reused"
    console.print(f"API key for tenant 'default' ({said}; kept in {key_file(settings)}):")
    console.print(f"    {key}", highlight=False, soft_wrap=True)
    console.print("Try it:", highlight=False)
    console.print(
        f"    curl -s {base}/v1/tasks -H 'Authorization: Bearer {key}' "
        "-H 'Content-Type: application/json' -d '{\"prompt\": \"Say hello\"}'",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f'    OpenAI(base_url="{base}/v1", api_key="{key}")',
        highlight=False,
        soft_wrap=True,
    )


#: Which pool's /metrics port each child of `parjanya up` serves (`metrics.port_for`).
METRICS_POOLS: dict[str, MetricsPool] = {
    "classifier": "intake",
    **{f"worker-{tier}": tier for tier in TIERS},
    "api": "api",
}


def metrics_urls(config: MetricsConfig, names: list[str]) -> dict[str, str]:
    """One Prometheus endpoint per process that serves one, by child name."""
    if not config.enabled:
        return {}
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    return {
        name: f"http://{host}:{config.port_for(METRICS_POOLS[name])}/metrics"
        for name in names
        if name in METRICS_POOLS
    }


def _print_metrics(sup: Supervisor, metrics: MetricsConfig, console: Console) -> None:
    urls = metrics_urls(metrics, [c.name for c in sup.children])
    if not urls:
        return
    table = Table(title="Prometheus metrics (deploy/prometheus/ scrapes these)")
    table.add_column("component")
    table.add_column("metrics")
    for name, url in urls.items():
        table.add_row(name, url)
    console.print(table)


def run_up(options: UpOptions) -> int:
    console = Console()
    from parjanya.runtime.demo import run_demo

    settings = Settings()
    embedded = _ensure_broker(settings, console)
    sim_port = options.sim_port if _port_free(options.sim_port) else free_port()
    sup = Supervisor(
        settings.data_dir / "logs",
        env={
            "PARJANYA_BROKER_URL": settings.broker_url,
            "PARJANYA_SIM_URL": f"http://127.0.0.1:{sim_port}",
            **({"PARJANYA_RESULT_URL": settings.result_url} if settings.result_url else {}),
        },
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    code = 0
    try:
        _start_children(sup, options, sim_port)
        workers = [c for c in sup.children if c.name.startswith(("classifier", "worker-"))]
        if not all(sup.wait_for_log(c, "ready.", 90) for c in workers):
            console.print(f"[red]a worker did not start; see {sup.log_dir}[/red]")
            return 1
        _print_where(sup, settings, console, metrics_of(options))
        _print_key(settings, options.api_port, console)
        if options.demo_tasks > 0:
            code = run_demo(options.demo_tasks, console=console)
        if options.exit_after_demo:
            return code
        console.print("Running. Ctrl-C stops everything.")
        while not stop.wait(1.0):
            for child in sup.dead():
                console.print(f"[yellow]{child.name} exited; see {child.log_path}[/yellow]")
                sup.children.remove(child)
        return code
    finally:
        console.print("stopping...")
        sup.stop_all()
        if embedded is not None:
            embedded.stop()
        console.print("stopped.")


__all__ = ["UpOptions", "run_up"]
