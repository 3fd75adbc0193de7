"""The docs tell the truth: every test docs/RELIABILITY.md cites exists, by file and name."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"`(tests/[\w/]+\.py)?::(test_\w+)`|`(tests/[\w/]+\.py)`")


def cited_tests(text: str) -> list[tuple[str, str | None]]:
    """(file, test name or None) for each citation; `::name` alone means the file cited last."""
    cited: list[tuple[str, str | None]] = []
    last = ""
    for match in CITATION.finditer(text):
        path, name, bare = match.groups()
        last = path or bare or last
        cited.append((last, name))
    return cited


def test_every_test_the_reliability_doc_cites_exists() -> None:
    cited = cited_tests((REPO / "docs" / "RELIABILITY.md").read_text())
    assert len(cited) > 30
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not (REPO / path).is_file()
        or (name is not None and f"def {name}(" not in (REPO / path).read_text())
    ]
    assert missing == []


def test_source_cites_the_reliability_doc_by_its_path() -> None:
    """Outside the runtime packages being reworked (tasks/, store/, broker/), cite the file."""
    reworked = ("tasks", "store", "broker")
    stale = [
        f"{path.relative_to(REPO)}:{number}"
        for path in (REPO / "src" / "parjanya").rglob("*.py")
        if path.relative_to(REPO / "src" / "parjanya").parts[0] not in reworked
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "RELIABILITY" in line and "docs/RELIABILITY.md" not in line
    ]
    assert stale == []
