"""`make fuzz` writes its latest result into docs/fuzzing.md (CEDROS_FUZZ_REPORT names the
file): each fuzz test replaces the text between its two markers, the rest of the page
stays as written."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path


def record(section: str, body: str) -> None:
    """Put `body` between `<!-- {section} -->` and `<!-- /{section} -->`, if asked to."""
    target = os.environ.get("CEDROS_FUZZ_REPORT")
    if not target:
        return
    path = Path(target)
    text = path.read_text()
    start, end = f"<!-- {section} -->", f"<!-- /{section} -->"
    assert start in text and end in text, f"{path} has no {start} ... {end} section"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    stamp = (f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
             f"(Python {platform.python_version()}).")
    path.write_text(f"{head}{start}\n{stamp}\n\n{body.strip()}\n{end}{tail}")
