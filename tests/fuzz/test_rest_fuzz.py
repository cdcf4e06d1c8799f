"""schemathesis against /openapi.json of a real `cedros-pay serve --sandbox` (SQLite).

Every operation, every check (server errors, status codes, content types, headers and
bodies against the document, schema-valid data accepted, schema-violating data rejected,
405 with Allow, admin auth enforced), the coverage, fuzzing and stateful phases. 0
failures: the document tells the truth and bad input never gets a 500.

The number of examples per operation is bounded for `make test` (CEDROS_FUZZ_EXAMPLES,
default 12); `make fuzz` runs 1,000 and writes its summary to docs/fuzzing.md.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import httpx
from fuzz.report import record
from fuzz.server import ADMIN_KEY, fuzz_server

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
DEFAULT_EXAMPLES = 12
DEFAULT_SEED = "20261202"


def _operations(doc: dict[str, object]) -> int:
    paths = doc["paths"]
    assert isinstance(paths, dict)
    return sum(len(ops) for ops in paths.values())


async def test_schemathesis_finds_no_failure_in_any_operation(tmp_path: Path) -> None:
    examples = os.environ.get("CEDROS_FUZZ_EXAMPLES", str(DEFAULT_EXAMPLES))
    seed = os.environ.get("CEDROS_FUZZ_SEED", DEFAULT_SEED)
    async with fuzz_server(tmp_path) as server:
        async with httpx.AsyncClient() as client:
            documented = _operations((await client.get(f"{server.url}/openapi.json")).json())
        env = {**os.environ, "CEDROS_FUZZ_ADMIN_KEY": ADMIN_KEY,
               "SCHEMATHESIS_HOOKS": "fuzz.hooks",
               "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
        args = ["--config-file", str(HERE / "schemathesis.toml"), "run",
                f"{server.url}/openapi.json", "--checks", "all", "--max-examples", examples,
                "--workers", "2", "--no-color", "--generation-database", "none",
                "--request-timeout", "30"]
        if seed != "random":
            args += ["--seed", seed]
        started = time.monotonic()
        run = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), *args, cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await run.communicate()
        seconds = time.monotonic() - started
        log = server.log.read_text(errors="replace")
    text = out.decode(errors="replace")
    summary = text[text.find("API Operations:"):] if "API Operations:" in text else text[-3000:]
    record("rest", f"`schemathesis run --checks all --max-examples {examples}` "
                   f"({documented} operations, {seconds:.0f} s), exit code {run.returncode}:"
                   f"\n\n```\n{summary.strip()}\n```")
    assert run.returncode == 0, text[-25000:]
    # Every operation it loaded was tested; it loads all the document has (one, the
    # document's own GET /openapi.json, may be left out of a run's count).
    counts = re.search(r"Selected:\s+(\d+)/(\d+)\s+Tested:\s+(\d+)", text)
    assert counts is not None, text[-5000:]
    selected, total, tested = map(int, counts.groups())
    assert selected == total == tested >= documented - 1, text[-5000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}", text), f"{phase} phase did not pass\n{text[-5000:]}"
    assert "unhandled exception" not in log and "Traceback" not in log, log[-10000:]
