"""`serve --workers N`: what may run in several processes, and what makes it refuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cedros_pay.cli import multi_process_problems, worker_config
from cedros_pay.config import Config, load_config

BASE = """
x402:
  network: devnet
  payment_address: 7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ
  token_mint: 4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU
  rpc_url: http://127.0.0.1:9/
paywall:
  product_source: yaml
  resources:
    p: {description: P, crypto_atomic_amount: 1000, crypto_token: USDC}
coupons: {coupon_source: disabled}
"""


def _config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(str(path), environ={}, dotenv_path=None)


def test_one_worker_needs_nothing_shared(tmp_path: Path) -> None:
    assert multi_process_problems(_config(tmp_path, BASE), 1) == []


def test_several_workers_need_redis_for_limits_and_idempotency(tmp_path: Path) -> None:
    problems = multi_process_problems(_config(tmp_path, BASE), 2)
    assert len(problems) == 1
    assert "needs Redis for rate_limit and idempotency" in problems[0]


def test_several_workers_refuse_the_memory_store(tmp_path: Path) -> None:
    text = BASE + 'storage: {backend: memory}\nredis: {url: "redis://127.0.0.1:9/0"}\n'
    problems = multi_process_problems(_config(tmp_path, text), 2)
    assert problems == ["--workers 2 needs a database the processes share, not memory "
                        "(storage.backend, callbacks.backend)"]


def test_database_and_redis_are_enough(tmp_path: Path) -> None:
    text = BASE + ('storage: {backend: postgres, postgres_url: "postgresql://u@127.0.0.1:9/d"}\n'
                   'redis: {url: "redis://127.0.0.1:9/0"}\n')
    assert multi_process_problems(_config(tmp_path, text), 4) == []


def test_archival_and_the_balance_monitor_run_in_worker_0_only(tmp_path: Path) -> None:
    text = BASE + ("storage: {archival: {enabled: true}}\n"
                   'monitoring: {low_balance_alert_url: "http://127.0.0.1:9/alert"}\n')
    config = _config(tmp_path, text)
    first, second = worker_config(config, 0), worker_config(config, 1)
    assert first.storage.archival.enabled and first.monitoring.low_balance_alert_url
    assert not second.storage.archival.enabled
    assert second.monitoring.low_balance_alert_url == ""
    assert second.storage.cleanup_interval == config.storage.cleanup_interval
    assert second.callbacks == config.callbacks  # webhook delivery runs everywhere


def test_serve_refuses_with_one_line_and_exit_1(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(BASE)
    done = subprocess.run(
        [sys.executable, "-m", "cedros_pay.cli", "serve", "--config", str(cfg), "--workers",
         "2"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("config error")]
    assert errors == ["config error: --workers 2 needs Redis for rate_limit and idempotency "
                      "(set redis.url or CEDROS_REDIS_URL): in process memory they would "
                      "not be shared"]
    assert "Traceback" not in done.stderr
