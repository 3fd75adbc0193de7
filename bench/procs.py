"""Child processes of a bench: start one with its output in a log, wait for a line, read the
CPU it has used, stop it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def spawn(argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start `argv` in a session of its own (so a stop reaches its children), output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )


def wait_log(log: Path, marker: str, timeout_s: float = 60, poll_s: float = 0.05) -> None:
    """Wait until `marker` is in `log`; the log's tail is in the error if it never comes."""
    deadline = time.monotonic() + timeout_s
    while marker not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{log.name}: no {marker!r}:\n{log.read_text()[-2000:]}")
        time.sleep(poll_s)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far, every thread (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
