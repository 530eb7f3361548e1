"""The check service end to end: sandbox world, real collectors, real Redis cache."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from bot.cache import MemoryCache, RedisCache
from bot.service import LiveChecker
from checks.models import Target
from sandbox.scenario import BUNDLED_DIR, load
from sandbox.world import World

if TYPE_CHECKING:
    from tests.redisserver import RedisServer

pytest_plugins = ["tests.redisserver"]

TARGET = Target("shop", "reports", "demo")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with World(load(BUNDLED_DIR / "s1-alb-idle-timeout-short.yaml")) as running:
        yield running


def _checker(world: World, cache: MemoryCache | RedisCache) -> LiveChecker:
    assert world.connection is not None
    return LiveChecker(world.connection, cache, ttl_s=300, window_s=3600)


def test_second_check_is_served_from_redis(world: World, private_redis_server: RedisServer) -> None:
    checker = _checker(world, RedisCache(private_redis_server.url))
    first = checker.check(TARGET)
    second = checker.check(TARGET)
    assert first.cache_hit is False
    assert second.cache_hit is True
    assert 0.0 <= second.age_s < 60.0
    assert second.report.to_dict()["findings"] == first.report.to_dict()["findings"]
    assert any(f.code == "IDLE_TIMEOUT_REACHED" for f in second.report.problems)


def test_fresh_check_bypasses_the_cache(world: World, private_redis_server: RedisServer) -> None:
    checker = _checker(world, RedisCache(private_redis_server.url))
    checker.check(TARGET)
    again = checker.check(TARGET, fresh=True)
    assert again.cache_hit is False


def test_redis_stopped_the_check_still_answers_uncached(
    world: World, private_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    checker = _checker(world, RedisCache(private_redis_server.url))
    checker.check(TARGET)
    private_redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="bot.cache"):
        outcome = checker.check(TARGET)
    assert outcome.cache_hit is False
    assert any(f.code == "IDLE_TIMEOUT_REACHED" for f in outcome.report.problems)
    assert sum(1 for r in caplog.records if r.levelno == logging.WARNING) == 1


def test_two_identical_checks_at_once_collect_once(world: World) -> None:
    checker = _checker(world, MemoryCache())
    assert world.kube is not None
    before = len([r for r in world.kube.requests if r[1].endswith("/services/reports")])
    results = []

    def run() -> None:
        results.append(checker.check(TARGET))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    after = len([r for r in world.kube.requests if r[1].endswith("/services/reports")])
    assert after - before == 1
    assert sorted(r.cache_hit for r in results) == [False, True]
