"""No command, log line, table or error shows a URL's password (safeurl.py, used everywhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from parjanya.config import Settings
from parjanya.providers.base import ConnectFailed, redact
from parjanya.runtime import up
from parjanya.runtime.supervisor import Supervisor
from parjanya.safeurl import MASK, mask_url, mask_urls_in

SECRET = "hunter2-SECRET"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}@host:6379/0", f"redis://:{MASK}@host:6379/0"),
        (f"redis://user:{SECRET}@host/1", f"redis://user:{MASK}@host/1"),
        (
            f"rediss://u:{SECRET}@h:1/0?ssl_cert_reqs=none",
            f"rediss://u:{MASK}@h:1/0?ssl_cert_reqs=none",
        ),
        (
            f"sentinel://:{SECRET}@a:1;sentinel://:{SECRET}@b:2/0",
            f"sentinel://:{MASK}@a:1;sentinel://:{MASK}@b:2/0",
        ),
        (f"redis://host/0?password={SECRET}", f"redis://host/0?password={MASK}"),
        (f"unix:///tmp/r.sock?db=1&password={SECRET}", f"unix:///tmp/r.sock?db=1&password={MASK}"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("http://127.0.0.1:8686/v1", "http://127.0.0.1:8686/v1"),
    ],
)
def test_mask_url_hides_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_urls_inside_text_are_masked() -> None:
    text = (
        f"Error connecting to redis://:{SECRET}@10.0.0.1:6379/0 via https://bob:{SECRET}@api.x/v1"
    )
    masked = mask_urls_in(text)
    assert SECRET not in masked
    assert (
        "redis://:********@10.0.0.1:6379/0" in masked and "https://bob:********@api.x/v1" in masked
    )


def test_provider_errors_never_carry_a_url_password() -> None:
    error = ConnectFailed(
        f"ConnectError: https://u:{SECRET}@model.example/v1 refused", deployment="d"
    )
    assert SECRET not in str(error) and SECRET not in redact(f"see http://:{SECRET}@h/")


def _recording(monkeypatch: pytest.MonkeyPatch) -> Console:
    return Console(record=True, width=300)


def test_parjanya_up_prints_the_broker_without_its_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    console = _recording(monkeypatch)
    settings = Settings(
        broker_url=f"redis://:{SECRET}@127.0.0.1:6390/0",
        result_url=f"redis://:{SECRET}@127.0.0.1:6390/1",
    )
    monkeypatch.setattr(up, "is_listening", lambda url: True)
    assert up._ensure_broker(settings, console) is None
    up._print_where(Supervisor(tmp_path / "logs"), settings, console)
    shown = console.export_text()
    assert SECRET not in shown
    assert shown.count(f"redis://:{MASK}@127.0.0.1:6390/") == 3  # the line and both table rows


def test_an_unreachable_broker_is_reported_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    console = _recording(monkeypatch)
    monkeypatch.setattr(up, "is_listening", lambda url: False)
    with pytest.raises(SystemExit):
        up._ensure_broker(Settings(broker_url=f"redis://:{SECRET}@192.0.2.1:6379/0"), console)
    shown = console.export_text()
    assert SECRET not in shown and f"redis://:{MASK}@192.0.2.1:6379/0" in shown


def test_parjanya_up_on_rabbitmq_uses_it_or_stops_but_never_embeds_a_redis_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console = _recording(monkeypatch)
    local = Settings(broker_url=f"amqp://guest:{SECRET}@127.0.0.1:5672/x", result_url="redis://a/0")
    monkeypatch.setattr(up.amqp, "answers", lambda url: True)
    assert up._ensure_broker(local, console) is None
    monkeypatch.setattr(up.amqp, "answers", lambda url: False)
    with pytest.raises(SystemExit):
        up._ensure_broker(
            local, console
        )  # local, yet no redis-server is started on RabbitMQ's port
    shown = console.export_text()
    assert SECRET not in shown and "using the RabbitMQ at" in shown
    assert "no RabbitMQ answers at amqp://guest:" in shown
