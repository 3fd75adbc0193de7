"""Every `parjanya` command imports the CLI to register itself, a worker too: the offline commands'
heavy libraries must load only when those commands run (a tier worker's RSS rose from 119 to
213 MB at 500 calls in flight when scikit-learn came in with the CLI)."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_imports_no_fitting_or_plotting_library() -> None:
    probe = (
        "import sys, parjanya.cli.main, parjanya.tasks.tier, parjanya.tasks.intake; "
        "print(sorted(m for m in ('numpy', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
