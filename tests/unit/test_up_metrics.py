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


def test_a_metrics_port_base_given_to_up_moves_every_pool_and_the_api() -> None:
    from parjanya.runtime.up import UpOptions, _metrics_flag, metrics_of

    options = UpOptions(metrics_port_base=20_000)
    metrics = metrics_of(options)
    assert metrics_urls(metrics, CHILDREN)["api"] == "http://127.0.0.1:20004/metrics"
    assert _metrics_flag(metrics, options, "worker-mid") == ["--metrics-port", "20002"]
    assert _metrics_flag(metrics, options, "classifier") == ["--metrics-port", "20000"]
    default = UpOptions()  # the children read the metrics config themselves
    assert _metrics_flag(metrics_of(default), default, "worker-mid") == []
