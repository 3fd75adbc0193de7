"""The Celery settings docs/RELIABILITY.md asks of every pool, read from the app as built.

No broker is dialled: `create_app` only configures. The integration tests show what the settings
do under kill -9 and connection blips; this pins that they are set.
"""

from __future__ import annotations

from parjanya.app import create_app
from parjanya.config import ParjanyaConfig, ReliabilityConfig, Settings

SETTINGS = Settings(broker_url="redis://127.0.0.1:1/0")


def test_late_acks_reject_on_lost_worker_and_prefetch_one() -> None:
    conf = create_app(SETTINGS, ParjanyaConfig()).conf
    assert conf.task_acks_late is True  # mode 1
    assert conf.task_reject_on_worker_lost is True  # mode 2
    assert conf.worker_prefetch_multiplier == 1  # mode 4
    assert conf.task_acks_on_failure_or_timeout is True  # mode 8: bodies are total
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True  # mode 5
    assert conf.worker_soft_shutdown_timeout > 0 and conf.worker_enable_soft_shutdown_on_idle


def test_transport_restores_orphans_fast_and_never_hangs_on_a_socket() -> None:
    config = ParjanyaConfig(reliability=ReliabilityConfig(visibility_timeout_s=900))
    options = create_app(SETTINGS, config).conf.broker_transport_options
    assert options["visibility_timeout"] == 900  # mode 4: one value, checked at worker start
    assert options["unacked_restore_throttle"] == 1  # mode 3
    assert options["unacked_restore_interval"] == 90
    assert options["socket_timeout"] and options["health_check_interval"]  # mode 5


def test_celery_results_are_off_the_store_holds_them() -> None:
    conf = create_app(SETTINGS, ParjanyaConfig()).conf
    assert conf.result_backend is None and conf.task_ignore_result is True  # mode 9
    assert conf.broker_transport == "parjanya.broker.transport:Transport"  # mode 11: poison-safe
