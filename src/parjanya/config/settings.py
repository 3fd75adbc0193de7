"""Process environment: where the broker, the store and the config file are (`PARJANYA_*`).

Only locations and switches live here, never routing policy; read when a process starts
(`get_settings()`), never at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_SIM_PORT = 8686


class Settings(BaseSettings):
    """Process environment. Only locations and switches live here, never routing policy."""

    model_config = SettingsConfigDict(env_prefix="PARJANYA_", extra="ignore")

    broker_url: str = DEFAULT_BROKER_URL
    result_url: str | None = None  # the store; defaults to the broker's Redis
    config: Path | None = None  # YAML policy file; see `load_config`
    data_dir: Path = Path(".parjanya")
    # Per-process overrides of `reliability.max_inflight` / `admitting_threads` (`parjanya worker
    # -c` sets the first); read when a worker builds its context, not at import.
    max_inflight: int | None = Field(default=None, gt=0)
    admitting_threads: int | None = Field(default=None, gt=0)
    # Where a worker writes its liveness heartbeat (`parjanya alive` reads it); unset:
    # `<data_dir>/alive/<host>-<pid>.json`.
    liveness_file: Path | None = None
    # Reliability drills only: a worker kills itself on a hop whose prompt contains this string
    # (worker/chaos.py). Unset, no hook is installed at all.
    chaos_kill_on: str | None = None
    # Log lines (observe/logs.py): `auto` is readable columns on a terminal and JSON lines
    # otherwise; `json` / `console` force one. `log_text` lets fields that may hold prompt or
    # answer text through (debugging only; off, they are logged as `[hidden]`).
    log_format: Literal["auto", "json", "console"] = "auto"
    log_text: bool = False
    # OpenTelemetry spans per hop (the `otel` extra; observe/tracing.py). Off by default;
    # exporters are configured by OpenTelemetry's own `OTEL_*` variables.
    otel: bool = False
    # The port a worker pool serves /metrics on (`parjanya worker` sets it from --metrics-port or
    # the `metrics` config; 0: any free port, logged). Unset: no /metrics in this process.
    metrics_port: int | None = Field(default=None, ge=0, le=65_535)

    @property
    def store_url(self) -> str:
        return self.result_url or self.broker_url
