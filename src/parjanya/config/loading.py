"""Loading the policy: YAML with `${VAR:-default}` expansion, found once per process."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from parjanya.config.model import ParjanyaConfig
from parjanya.config.settings import Settings

_ENV_PATTERN = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")


def expand_env(value: Any) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree."""
    if isinstance(value, str):
        return _ENV_PATTERN.sub(
            lambda m: os.environ.get(m["name"], m["default"] if m["default"] is not None else ""),
            value,
        )
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


def default_config_path() -> Path | None:
    """`config/parjanya.yaml` in the working directory, else the one of this source checkout."""
    for candidate in (
        Path.cwd() / "config" / "parjanya.yaml",
        Path(__file__).resolve().parents[3] / "config" / "parjanya.yaml",
    ):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None) -> ParjanyaConfig:
    path = path or Settings().config or default_config_path()
    if path is None:
        return ParjanyaConfig()
    raw = yaml.safe_load(Path(path).read_text()) or {}
    return ParjanyaConfig.model_validate(expand_env(raw))


@lru_cache(maxsize=1)
def get_config() -> ParjanyaConfig:
    """The process-wide policy, loaded once. Tests that change it call `get_config.cache_clear()`."""
    return load_config()


def get_settings() -> Settings:
    return Settings()
