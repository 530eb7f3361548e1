from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.cache import (
    Cached,
    MemoryCache,
    RedisCache,
    ResultCache,
    cache_from_env,
    cache_key,
)

if TYPE_CHECKING:
    from tests.redisserver import RedisServer

# Provides the redis_server and private_redis_server fixtures.
pytest_plugins = ["tests.redisserver"]

ROOT = Path(__file__).resolve().parents[2]
KEY = cache_key("arn:aws:eks:eu-west-1:123456789012:cluster/prod", "shop", "web", 600)


class Counter:
    """A compute function that counts its calls and returns which call it was."""

    def __init__(self, sleep_s: float = 0.0) -> None:
        self.sleep_s = sleep_s
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            call = self.calls
        time.sleep(self.sleep_s)
        return {"call": call}


def run_together(*calls: Callable[[], Cached]) -> list[Cached]:
    """Run ``calls`` in threads released at the same moment; results in call order."""
    barrier = threading.Barrier(len(calls))
    results: list[Cached | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Cached]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def warnings_from_cache(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.cache" and r.levelno == logging.WARNING
    ]


def infos_from_cache(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.cache" and r.levelno == logging.INFO
    ]


def stored_text(server: RedisServer, key: str) -> str:
    text = server.client().get(key)
    assert isinstance(text, str)
    return text


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest, prefix: str) -> Iterator[ResultCache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis_cache = RedisCache(server.url, prefix=prefix, retry_after_s=0.0)
    try:
        yield redis_cache
    finally:
        redis_cache.close()


# ------------------------------------------------------------------ both caches


def test_second_call_is_a_hit_carrying_the_first_value_and_its_age(cache: ResultCache) -> None:
    compute = Counter()

    first = cache.get_or_compute(KEY, compute, ttl_s=60)
    time.sleep(0.3)
    second = cache.get_or_compute(KEY, compute, ttl_s=60)

    assert first == Cached(value={"call": 1}, age_s=0.0, hit=False)
    assert second.hit is True
    assert second.value == {"call": 1}
    assert 0.3 <= second.age_s < 1.5
    assert compute.calls == 1


def test_value_expires_after_its_ttl(cache: ResultCache) -> None:
    compute = Counter()

    cache.get_or_compute(KEY, compute, ttl_s=1)
    time.sleep(1.2)
    after = cache.get_or_compute(KEY, compute, ttl_s=1)

    assert after == Cached(value={"call": 2}, age_s=0.0, hit=False)


def test_fresh_bypasses_the_stored_value_and_stores_the_new_one(cache: ResultCache) -> None:
    compute = Counter()

    cache.get_or_compute(KEY, compute, ttl_s=60)
    forced = cache.get_or_compute(KEY, compute, ttl_s=60, fresh=True)
    later = cache.get_or_compute(KEY, compute, ttl_s=60)

    assert forced == Cached(value={"call": 2}, age_s=0.0, hit=False)
    assert later.hit is True
    assert later.value == {"call": 2}


def test_keys_are_cached_separately(cache: ResultCache) -> None:
    compute = Counter()
    other = cache_key("prod", "shop", "api", 600)

    cache.get_or_compute(KEY, compute, ttl_s=60)
    for_other = cache.get_or_compute(other, compute, ttl_s=60)

    assert for_other == Cached(value={"call": 2}, age_s=0.0, hit=False)


def test_a_hit_is_a_copy_the_caller_may_change(cache: ResultCache) -> None:
    cache.get_or_compute(KEY, lambda: {"items": [1]}, ttl_s=60)
    cache.get_or_compute(KEY, lambda: {}, ttl_s=60).value["items"].append(2)

    assert cache.get_or_compute(KEY, lambda: {}, ttl_s=60).value == {"items": [1]}


def test_same_key_asked_twice_at_once_is_computed_once(cache: ResultCache) -> None:
    compute = Counter(sleep_s=0.5)

    def ask() -> Cached:
        return cache.get_or_compute(KEY, compute, ttl_s=60)

    results = run_together(ask, ask)

    assert compute.calls == 1
    assert sorted(result.hit for result in results) == [False, True]
    assert [result.value for result in results] == [{"call": 1}, {"call": 1}]


def test_different_keys_asked_at_once_do_not_wait_for_each_other(cache: ResultCache) -> None:
    compute = Counter(sleep_s=0.5)
    other = cache_key("prod", "shop", "api", 600)

    started = time.monotonic()
    results = run_together(
        lambda: cache.get_or_compute(KEY, compute, ttl_s=60),
        lambda: cache.get_or_compute(other, compute, ttl_s=60),
    )
    elapsed = time.monotonic() - started

    assert compute.calls == 2
    assert [result.hit for result in results] == [False, False]
    assert elapsed < 0.9


def test_compute_error_propagates_and_is_not_cached(cache: ResultCache) -> None:
    def fail() -> dict[str, Any]:
        raise RuntimeError("collector failed")

    with pytest.raises(RuntimeError, match="collector failed"):
        cache.get_or_compute(KEY, fail, ttl_s=60)
    after = cache.get_or_compute(KEY, Counter(), ttl_s=60, wait_s=0.0)

    assert after == Cached(value={"call": 1}, age_s=0.0, hit=False)


def test_waiter_computes_itself_when_the_leader_fails(cache: ResultCache) -> None:
    leader_started = threading.Event()
    leader_error: list[BaseException] = []

    def failing_leader() -> dict[str, Any]:
        leader_started.set()
        time.sleep(0.4)
        raise RuntimeError("leader failed")

    def lead() -> None:
        try:
            cache.get_or_compute(KEY, failing_leader, ttl_s=60)
        except RuntimeError as exc:
            leader_error.append(exc)

    leader = threading.Thread(target=lead)
    leader.start()
    assert leader_started.wait(timeout=10)
    waiter_compute = Counter()
    waited = cache.get_or_compute(KEY, waiter_compute, ttl_s=60)
    leader.join(timeout=10)

    assert [str(exc) for exc in leader_error] == ["leader failed"]
    assert waited == Cached(value={"call": 1}, age_s=0.0, hit=False)
    assert waiter_compute.calls == 1
    assert cache.get_or_compute(KEY, Counter(), ttl_s=60).value == {"call": 1}


def test_waiter_stops_waiting_after_wait_s_and_computes_itself(cache: ResultCache) -> None:
    leader_started = threading.Event()

    def slow_leader() -> dict[str, Any]:
        leader_started.set()
        time.sleep(1.5)
        return {"by": "leader"}

    leader = threading.Thread(target=lambda: cache.get_or_compute(KEY, slow_leader, ttl_s=60))
    leader.start()
    assert leader_started.wait(timeout=10)
    started = time.monotonic()
    waited = cache.get_or_compute(KEY, lambda: {"by": "waiter"}, ttl_s=60, wait_s=0.2)
    elapsed = time.monotonic() - started
    leader.join(timeout=10)

    assert waited == Cached(value={"by": "waiter"}, age_s=0.0, hit=False)
    assert 0.2 <= elapsed < 1.0


def test_fresh_caller_takes_a_value_finished_after_it_asked(cache: ResultCache) -> None:
    compute = Counter(sleep_s=0.5)
    cache.get_or_compute(KEY, compute, ttl_s=60)
    leader_started = threading.Event()

    def leader_compute() -> dict[str, Any]:
        leader_started.set()
        return compute()

    leader = threading.Thread(
        target=lambda: cache.get_or_compute(KEY, leader_compute, ttl_s=60, fresh=True)
    )
    leader.start()
    assert leader_started.wait(timeout=10)
    joined = cache.get_or_compute(KEY, compute, ttl_s=60, fresh=True)
    leader.join(timeout=10)

    assert compute.calls == 2
    assert joined.hit is True
    assert joined.value == {"call": 2}
    assert joined.age_s < 0.5


def test_ttl_below_one_second_is_rejected(cache: ResultCache) -> None:
    with pytest.raises(ValueError, match="ttl_s must be at least 1"):
        cache.get_or_compute(KEY, Counter(), ttl_s=0)


# ------------------------------------------------------------------ redis only


def test_redis_entry_is_json_with_its_creation_time_and_ttl(
    redis_server: RedisServer, prefix: str
) -> None:
    cache = RedisCache(redis_server.url, prefix=prefix)
    client = redis_server.client()
    before = time.time()

    cache.get_or_compute("k", lambda: {"status": "fail"}, ttl_s=90)

    stored = json.loads(stored_text(redis_server, f"{prefix}k"))
    assert stored["value"] == {"status": "fail"}
    assert before <= stored["created"] <= time.time()
    assert 85 <= client.ttl(f"{prefix}k") <= 90
    assert client.exists(f"{prefix}k:lock") == 0


def test_redis_lock_is_held_while_computing_and_gone_after_a_failure(
    redis_server: RedisServer, prefix: str
) -> None:
    cache = RedisCache(redis_server.url, prefix=prefix)
    client = redis_server.client()
    seen: list[int] = []

    def fail() -> dict[str, Any]:
        seen.append(client.exists(f"{prefix}k:lock"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("k", fail, ttl_s=60)

    assert seen == [1]
    assert client.exists(f"{prefix}k:lock") == 0
    assert client.exists(f"{prefix}k") == 0


def test_redis_lock_is_released_only_by_its_owner(redis_server: RedisServer, prefix: str) -> None:
    cache = RedisCache(redis_server.url, prefix=prefix, lock_ttl_s=0.2)
    client = redis_server.client()
    lock_key = f"{prefix}k:lock"
    held_after_expiry: list[int] = []

    def outlive_the_lock() -> dict[str, Any]:
        time.sleep(0.4)
        held_after_expiry.append(client.exists(lock_key))
        client.set(lock_key, "another-leader", px=10_000)
        return {"ok": True}

    cache.get_or_compute("k", outlive_the_lock, ttl_s=60)

    assert held_after_expiry == [0]
    assert client.get(lock_key) == "another-leader"


def test_redis_unreadable_entry_is_recomputed_and_replaced(
    redis_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.cache")
    cache = RedisCache(redis_server.url, prefix=prefix)
    client = redis_server.client()
    client.set(f"{prefix}k", "not json", ex=60)

    got = cache.get_or_compute("k", lambda: {"ok": True}, ttl_s=60)

    assert got == Cached(value={"ok": True}, age_s=0.0, hit=False)
    assert json.loads(stored_text(redis_server, f"{prefix}k"))["value"] == {"ok": True}
    assert warnings_from_cache(caplog) == [
        "ignoring an unreadable cache entry in redis at "
        + (f"redis://127.0.0.1:{redis_server.port}")
    ]


CHILD = """
import json, os, sys, time
from pathlib import Path

import redis

from bot.cache import RedisCache

url, prefix, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
counter = redis.Redis.from_url(url)
cache = RedisCache(url, prefix=prefix)


def compute():
    counter.incr(prefix + "calls")
    time.sleep(0.5)
    return {"pid": os.getpid()}


print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
got = cache.get_or_compute("k", compute, ttl_s=60)
print(json.dumps({"value": got.value, "hit": got.hit}), flush=True)
"""


def test_redis_two_processes_asking_at_once_compute_once(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, str(script), redis_server.url, prefix, str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [child.communicate(timeout=30)[0] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    assert [child.returncode for child in children] == [0, 0]
    results = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    leader_pids = [
        child.pid for child, result in zip(children, results, strict=True) if not result["hit"]
    ]
    assert redis_server.client().get(f"{prefix}calls") == "1"
    assert sorted(result["hit"] for result in results) == [False, True]
    assert [result["value"] for result in results] == [{"pid": leader_pids[0]}] * 2


def test_redis_stopped_midrun_computes_uncached_warns_once_and_recovers(
    private_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.cache")
    server = private_redis_server
    cache = RedisCache(server.url, prefix="t:", retry_after_s=0.0)
    compute = Counter()
    assert cache.get_or_compute("k", compute, ttl_s=60).hit is False
    assert cache.get_or_compute("k", compute, ttl_s=60).hit is True

    server.stop()
    started = time.monotonic()
    while_down = [cache.get_or_compute("k", compute, ttl_s=60) for _ in range(3)]
    elapsed = time.monotonic() - started

    assert while_down == [
        Cached(value={"call": 2}, age_s=0.0, hit=False),
        Cached(value={"call": 3}, age_s=0.0, hit=False),
        Cached(value={"call": 4}, age_s=0.0, hit=False),
    ]
    assert elapsed < 3.0
    warnings = warnings_from_cache(caplog)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"redis at redis://127.0.0.1:{server.port} failed (")

    server.start()
    recovered = cache.get_or_compute("k", compute, ttl_s=60)
    again = cache.get_or_compute("k", compute, ttl_s=60)

    assert recovered == Cached(value={"call": 5}, age_s=0.0, hit=False)
    assert again.hit is True
    assert again.value == {"call": 5}
    assert len(warnings_from_cache(caplog)) == 1
    assert infos_from_cache(caplog) == [
        f"redis is back at redis://127.0.0.1:{server.port}; caching again"
    ]


def test_redis_is_not_asked_again_until_retry_after_s_has_passed(
    private_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.cache")
    server = private_redis_server
    cache = RedisCache(server.url, prefix="t:", retry_after_s=2.0)
    compute = Counter()

    server.stop()
    cache.get_or_compute("k", compute, ttl_s=60)
    server.start()
    within_pause = cache.get_or_compute("k", compute, ttl_s=60)

    assert within_pause == Cached(value={"call": 2}, age_s=0.0, hit=False)
    assert server.client().exists("t:k") == 0
    assert infos_from_cache(caplog) == []

    time.sleep(2.1)
    cache.get_or_compute("k", compute, ttl_s=60)

    assert server.client().exists("t:k") == 1
    assert len(infos_from_cache(caplog)) == 1


def test_redis_unreachable_from_the_start_still_returns_computed_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.cache")
    # Port 1 on loopback: nothing listens there, so connecting is refused at once.
    cache = RedisCache("redis://:secret@127.0.0.1:1/0", retry_after_s=0.0)

    got = [cache.get_or_compute("k", Counter(), ttl_s=60) for _ in range(2)]

    assert got == [Cached(value={"call": 1}, age_s=0.0, hit=False)] * 2
    warnings = warnings_from_cache(caplog)
    assert len(warnings) == 1
    assert "secret" not in warnings[0]


# ------------------------------------------------------------------ construction and keys


def test_cache_from_env_uses_redis_when_redis_url_is_set() -> None:
    assert isinstance(cache_from_env({"REDIS_URL": "redis://127.0.0.1:6379/0"}), RedisCache)


@pytest.mark.parametrize("env", [{}, {"REDIS_URL": ""}, {"REDIS_URL": "  "}])
def test_cache_from_env_uses_memory_without_redis_url(env: dict[str, str]) -> None:
    assert isinstance(cache_from_env(env), MemoryCache)


def test_cache_key_names_every_part_and_keeps_the_cluster_arn_whole() -> None:
    assert KEY == "check:v1:600:shop:web:arn:aws:eks:eu-west-1:123456789012:cluster/prod"


def test_cache_key_differs_when_any_part_differs() -> None:
    keys = {
        cache_key("prod", "shop", "web", 600),
        cache_key("staging", "shop", "web", 600),
        cache_key("prod", "shop2", "web", 600),
        cache_key("prod", "shop", "web2", 600),
        cache_key("prod", "shop", "web", 300),
    }
    assert len(keys) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("prod", "sh:op", "web", 600), "namespace must not contain ':'"),
        (("prod", "shop", "", 600), "service must not be empty"),
        (("prod", "shop", "web", 0), "window_s must be positive"),
    ],
)
def test_cache_key_rejects_parts_that_would_make_keys_ambiguous(
    args: tuple[str, str, str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cache_key(*args)
