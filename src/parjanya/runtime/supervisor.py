"""Start child processes, watch them, and stop every one of them cleanly.

SIGTERM first (Celery workers then finish or hand back their current tasks within the soft-shutdown
window), SIGKILL only after a grace period. Each child gets its own process group so a Ctrl-C in
the terminal reaches the supervisor alone, which then stops children in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    url: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Supervisor:
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str], *, url: str = "") -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child = Child(name, argv, self.log_dir / f"{name}.log", url)
        log = child.log_path.open("ab")
        child.process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log.close()
        self.children.append(child)
        return child

    def dead(self) -> list[Child]:
        return [c for c in self.children if not c.alive]

    def wait_for_log(self, child: Child, marker: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.log_path.exists() and marker in child.log_path.read_text(errors="replace"):
                return True
            if not child.alive:
                return False
            time.sleep(0.2)
        return False

    def stop_all(self, grace_s: float = 45.0) -> None:
        for child in reversed(self.children):
            if child.alive and child.process is not None:
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
