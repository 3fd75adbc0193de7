"""`parjanya up` prints one /metrics URL per process that serves one, from the metrics config."""

from __future__ import annotations

from parjanya.config import MetricsConfig
from parjanya.runtime.up import metrics_urls

CHILDREN = ["sim", "classifier", "worker-low", "worker-mid", "worker-high", "api", "flower"]


def test_one_url_per_pool_and_the_api_at_the_configured_ports() -> None:
    urls = metrics_urls(MetricsConfig(port_base=9900, ports={"mid": 9999}), CHILDREN)
    assert urls == {
        "classifier": "http://127.0.0.1:9900/metrics",
        "worker-low": "http://127.0.0.1:9901/metrics",
        "worker-mid": "http://127.0.0.1:9999/metrics",
        "worker-high": "http://127.0.0.1:9903/metrics",
        "api": "http://127.0.0.1:9904/metrics",
    }


def test_an_all_interfaces_bind_is_shown_as_loopback_and_disabled_shows_none() -> None:
    assert metrics_urls(MetricsConfig(host="0.0.0.0"), ["worker-low"]) == {
        "worker-low": "http://127.0.0.1:9809/metrics"
    }
    assert metrics_urls(MetricsConfig(enabled=False), CHILDREN) == {}
