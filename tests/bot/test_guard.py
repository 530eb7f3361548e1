"""Event ids and rate limits shared through a real redis-server, and in process memory."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import pytest

from bot.guard import (
    MemoryLedger,
    MemoryRateLimiter,
    RedisLedger,
    RedisRateLimiter,
    Verdict,
    _RedisState,
    shared_from_env,
)

if TYPE_CHECKING:
    from tests.redisserver import RedisServer

pytest_plugins = ["tests.redisserver"]


def test_memory_ledger_claims_each_event_once_until_it_expires() -> None:
    now = [0.0]
    ledger = MemoryLedger(ttl_s=10, clock=lambda: now[0])

    assert [ledger.claim("Ev1"), ledger.claim("Ev1"), ledger.claim("Ev2")] == [True, False, True]
    now[0] = 11.0
    assert ledger.claim("Ev1") is True


def test_memory_rate_limiter_counts_per_key_and_says_when_the_window_resets() -> None:
    limiter = MemoryRateLimiter(clock=lambda: 125.0)

    verdicts = [limiter.hit("user:U1", 2, 60) for _ in range(3)]

    assert verdicts == [Verdict(True, 1), Verdict(True, 2), Verdict(False, 3, 55)]
    assert limiter.hit("user:U2", 2, 60) == Verdict(True, 1)


def test_two_replicas_claim_one_event_once_through_redis(redis_server: RedisServer) -> None:
    replica_a = RedisLedger(_RedisState(redis_server.url), prefix="test-ledger:")
    replica_b = RedisLedger(_RedisState(redis_server.url), prefix="test-ledger:")
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim(ledger: RedisLedger) -> None:
        barrier.wait(5)
        results.append(ledger.claim("Ev0SHARED"))

    threads = [threading.Thread(target=claim, args=(r,)) for r in [replica_a, replica_b] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)

    assert sorted(results) == [False] * 7 + [True]
    with redis_server.client() as client:
        assert 0 < client.ttl("test-ledger:event:Ev0SHARED") <= 3600


def test_rate_limit_counts_are_shared_between_replicas(redis_server: RedisServer) -> None:
    replica_a = RedisRateLimiter(_RedisState(redis_server.url), prefix="test-rate:")
    replica_b = RedisRateLimiter(_RedisState(redis_server.url), prefix="test-rate:")

    counts = [r.hit("user:U1", 3, 60) for r in (replica_a, replica_b, replica_a, replica_b)]

    assert [v.count for v in counts] == [1, 2, 3, 4]
    assert [v.allowed for v in counts] == [True, True, True, False]
    assert 1 <= counts[3].retry_after_s <= 60


def test_redis_down_falls_back_to_memory_says_so_once_and_recovers(
    private_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    state = _RedisState(private_redis_server.url, retry_after_s=0.0)
    ledger = RedisLedger(state, prefix="test-down:")
    assert ledger.claim("Ev1") is True

    private_redis_server.stop()
    with caplog.at_level(logging.INFO, logger="bot.guard"):
        during = [ledger.claim("Ev2"), ledger.claim("Ev2"), ledger.claim("Ev3")]
        private_redis_server.start()
        after = ledger.claim("Ev4")

    assert during == [True, False, True]
    assert after is True
    messages = [r.getMessage() for r in caplog.records]
    assert sum("failed during event ids" in m for m in messages) == 1
    assert sum("redis is back" in m for m in messages) == 1
    with private_redis_server.client() as client:
        assert client.exists("test-down:event:Ev4") == 1


def test_shared_state_is_in_memory_without_redis_url() -> None:
    shared = shared_from_env({})

    assert isinstance(shared.ledger, MemoryLedger)
    assert isinstance(shared.limiter, MemoryRateLimiter)
