"""The reference ledger's standard-library-only modules: settings, retry policy, metrics.

The app runs on Debian's aiohttp/redis inside its image; these modules import neither, so they
are tested here directly (the rest is covered by tests/integration/test_reference_images.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "targets" / "reference" / "app"))

from ledger.config import Config, ConfigError, seed_account_id  # noqa: E402
from ledger.metrics import Metrics  # noqa: E402
from ledger.retry import Budget, is_retryable_reply, needs_rediscovery, reply_of  # noqa: E402


def test_config_reads_sentinels_and_knobs():
    cfg = Config.from_env({
        "SENTINELS": "sentinel-1:26379, sentinel-2 ,sentinel-3:26380",
        "LEDGER_WAIT_REPLICAS": "0",
        "LEDGER_WRITE_BUDGET_S": "1.5",
    })
    assert cfg.sentinels == (("sentinel-1", 26379), ("sentinel-2", 26379), ("sentinel-3", 26380))
    assert cfg.wait_replicas == 0
    assert cfg.write_budget_s == 1.5
    assert cfg.master_name == "ledger"


@pytest.mark.parametrize("env", [
    {"LEDGER_WAIT_REPLICAS": "one"},
    {"LEDGER_WRITE_BUDGET_S": "-1"},
    {"SENTINELS": "sentinel-1:port"},
    # A WAIT that may last longer than the socket timeout would look like a dead connection.
    {"LEDGER_WAIT_TIMEOUT_MS": "900", "LEDGER_REDIS_TIMEOUT_S": "0.6"},
])
def test_config_refuses_bad_values(env):
    with pytest.raises(ConfigError):
        Config.from_env(env)


def test_seed_ids_match_the_load_profile():
    assert seed_account_id(0) == "acc-000" and seed_account_id(99) == "acc-099"


@pytest.mark.parametrize("reply,retry,rediscover", [
    ("READONLY You can't write against a read only replica.", True, True),
    ("NOREPLICAS Not enough good replicas to write.", True, True),
    ("LOADING Redis is loading the dataset in memory", True, True),
    ("TRYAGAIN", True, False),
    ("ERR Error running script", False, False),
    ("WRONGTYPE Operation against a key holding the wrong kind of value", False, False),
])
def test_retry_policy(reply, retry, rediscover):
    assert is_retryable_reply(reply) is retry
    assert needs_rediscovery(reply) is rediscover


def test_replies_the_client_library_stripped_of_their_code_are_retried_and_rediscovered():
    # redis-py 4.3's classes for READONLY and LOADING drop the code from the message.
    class ReadOnlyError(Exception):
        pass

    class BusyLoadingError(Exception):
        pass
    readonly = ReadOnlyError("You can't write against a read only replica.")
    assert not is_retryable_reply(str(readonly))        # what the app used to read: "YOU"
    assert reply_of(readonly) == "READONLY You can't write against a read only replica."
    assert is_retryable_reply(reply_of(readonly)) and needs_rediscovery(reply_of(readonly))
    assert needs_rediscovery(reply_of(BusyLoadingError("Redis is loading the dataset in memory")))
    # A reply that kept its code, or any other error, is left as it is.
    assert reply_of(ReadOnlyError("READONLY x")) == "READONLY x"
    assert reply_of(ValueError("ERR boom")) == "ERR boom"


def test_budget_backoff_never_passes_the_deadline():
    now = [100.0]
    budget = Budget(1.0, clock=lambda: now[0])
    assert budget.backoff(0) == pytest.approx(0.05)
    assert budget.backoff(5) == pytest.approx(0.2)       # capped
    now[0] = 100.9
    assert budget.backoff(3) == pytest.approx(0.05)      # leaves 50 ms margin
    now[0] = 100.96
    assert budget.expired() and budget.backoff(0) == 0.0


def test_budget_counts_time_spent_queued():
    budget = Budget(1.0, started=10.0, clock=lambda: 10.7)
    assert budget.remaining() == pytest.approx(0.3)


def test_metrics_render_prometheus_text():
    m = Metrics()
    m.inc("ledger_http_requests_total", route="/transfers", code="201")
    m.inc("ledger_http_requests_total", route="/transfers", code="201")
    m.inc("ledger_transfers_total", result='we"ird')
    text = m.render()
    assert '# TYPE ledger_http_requests_total counter' in text
    assert 'ledger_http_requests_total{code="201",route="/transfers"} 2' in text
    assert 'ledger_transfers_total{result="we\\"ird"} 1' in text
    assert "ledger_redis_retries_total 0" in text
    assert text.endswith("\n")
