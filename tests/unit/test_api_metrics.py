"""`parjanya api` serves its own /metrics on the API's port of the metrics config."""

from __future__ import annotations

import httpx

from parjanya.cli.api import serve_api_metrics
from parjanya.config import MetricsConfig, ParjanyaConfig, Settings

NOWHERE = Settings(broker_url="redis://127.0.0.1:1/0")  # refused at once: no queue series


def test_the_api_serves_metrics_on_the_port_asked_for() -> None:
    exposition = serve_api_metrics(NOWHERE, ParjanyaConfig(), 0)
    assert exposition is not None
    try:
        body = httpx.get(exposition.url, timeout=10).text
        assert "# TYPE parjanya_tasks_total counter" in body
    finally:
        exposition.close()


def test_disabled_metrics_serve_nothing_unless_a_port_is_given() -> None:
    config = ParjanyaConfig(metrics=MetricsConfig(enabled=False))
    assert serve_api_metrics(NOWHERE, config, None) is None
