"""Two ``eks504 serve`` processes sharing one real redis-server, as two replicas behind one
Slack app: an event and its retry are answered once, and one check asked on both at once
runs once. Both check the same sandbox world, through a configuration file that names its
cluster (and a role to assume)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from sandbox.scenario import BUNDLED_DIR, load
from sandbox.world import World
from tests.slackfake import BOT_TOKEN, BOT_USER_ID, SlackFake, signed_post

if TYPE_CHECKING:
    from tests.redisserver import RedisServer

pytest_plugins = ["tests.redisserver"]

SECRET = "replica-signing-secret"
ROLE_ARN = "arn:aws:iam::123456789012:role/eks504-reader"
_READY = re.compile(r"serving HTTP on (http://127\.0\.0\.1:\d+/slack/events)")
_START_TIMEOUT_S = 60.0


class Replica:
    """One ``eks504 serve`` subprocess; its log is kept for assertions."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "-v", "serve", "--http", "0", "--host", "127.0.0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            cwd=Path(__file__).resolve().parents[2],
        )
        self.url = self._wait_ready()

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = _READY.search(self.log())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with World(load(BUNDLED_DIR / "s1-alb-idle-timeout-short.yaml")) as running:
        yield running


@pytest.fixture(scope="module")
def fake() -> Iterator[SlackFake]:
    with SlackFake() as running:
        yield running


@pytest.fixture(scope="module")
def replicas(
    world: World,
    fake: SlackFake,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[Replica]]:
    assert world.connection is not None
    workdir = tmp_path_factory.mktemp("replicas")
    config = {
        "clusters": {
            "demo": {
                "kubeconfig": world.connection.kubeconfig,
                "region": world.connection.region,
                "aws_endpoint_url": world.connection.aws_endpoint_url,
                "role_arn": ROLE_ARN,
            }
        },
        "rate_limits": {"per_user": 0, "per_channel": 0},
    }
    config_path = workdir / "eks504.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.url,
        REDIS_URL=redis_server.url,
        EKS504_CONFIG=str(config_path),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        MPLBACKEND="Agg",
        MPLCONFIGDIR=str(workdir / "mpl"),
    )
    started: list[Replica] = []
    try:
        threads = [
            threading.Thread(target=lambda n=n: started.append(Replica(n, env, workdir)))
            for n in ("a", "b")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=_START_TIMEOUT_S + 5)
        assert len(started) == 2, "a replica did not start"
        yield sorted(started, key=lambda r: r.name)
    finally:
        for replica in started:
            replica.stop()


@pytest.fixture(autouse=True)
def empty_redis(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.flushall()


def mention(event_id: str, ts: str, text: str = "check shop/reports") -> str:
    return json.dumps(
        {
            "team_id": "T0001",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(float(ts)),
            "event": {
                "type": "app_mention",
                "user": "U1",
                "text": f"<@{BOT_USER_ID}> {text}",
                "ts": ts,
                "channel": "C1",
                "event_ts": ts,
            },
            "authorizations": [{"team_id": "T0001", "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def at_once(*sends: tuple[str, str, dict[str, str]]) -> list[int]:
    """POST each (url, body, headers) from its own thread at the same moment."""
    statuses: dict[int, int] = {}
    go = threading.Event()

    def send(i: int, url: str, body: str, headers: dict[str, str]) -> None:
        go.wait(5)
        statuses[i] = signed_post(
            url, SECRET, body, "application/json", extra_headers=headers
        ).status

    threads = [threading.Thread(target=send, args=(i, *s)) for i, s in enumerate(sends)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(timeout=20)
    return [statuses.get(i, 0) for i in range(len(sends))]


def verdicts_in_thread(fake: SlackFake, thread_ts: str) -> list[str]:
    """The answers now standing in a thread (progress messages read as what they became)."""
    texts = [fake.message(p.ts).text for p in fake.posts if p.thread_ts == thread_ts]
    return [t for t in texts if t.startswith(":red_circle: shop/reports")]


def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


def service_reads(world: World) -> int:
    assert world.kube is not None
    return sum(1 for r in world.kube.requests if r[1].endswith("/services/reports"))


def test_event_and_its_retry_on_two_replicas_are_answered_once(
    replicas: list[Replica], fake: SlackFake, world: World
) -> None:
    a, b = replicas
    ts = "1700000500.000100"
    body = mention("Ev0REPLICA1", ts)
    reads_before = service_reads(world)
    reactions_before = len(fake.reactions)

    statuses = at_once((a.url, body, {}), (b.url, body, {"X-Slack-Retry-Num": "1"}))
    wait_for(lambda: verdicts_in_thread(fake, ts))
    time.sleep(1.0)

    assert statuses == [200, 200]
    assert len(verdicts_in_thread(fake, ts)) == 1
    assert len(fake.reactions) - reactions_before == 1
    assert service_reads(world) - reads_before == 1
    taken = [r for r in replicas if "was already taken; acknowledged, not answered" in r.log()]
    assert len(taken) == 1


def test_same_check_asked_on_both_replicas_at_once_runs_once(
    replicas: list[Replica], fake: SlackFake, world: World
) -> None:
    a, b = replicas
    first_ts, second_ts = "1700000600.000100", "1700000600.000200"
    reads_before = service_reads(world)

    statuses = at_once(
        (a.url, mention("Ev0REPLICA2", first_ts), {}),
        (b.url, mention("Ev0REPLICA3", second_ts), {}),
    )
    wait_for(lambda: verdicts_in_thread(fake, first_ts) and verdicts_in_thread(fake, second_ts))

    assert statuses == [200, 200]
    assert len(verdicts_in_thread(fake, first_ts)) == 1
    assert len(verdicts_in_thread(fake, second_ts)) == 1
    assert service_reads(world) - reads_before == 1


def test_replicas_upload_the_chart_of_the_idle_timeout_finding(
    replicas: list[Replica], fake: SlackFake
) -> None:
    ts = "1700000700.000100"
    files_before = len(fake.files)

    signed_post(replicas[0].url, SECRET, mention("Ev0REPLICA4", ts), "application/json")
    wait_for(lambda: any(f.thread_ts == ts for f in fake.files[files_before:]))

    (chart,) = [f for f in fake.files[files_before:] if f.thread_ts == ts]
    assert chart.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert "idle timeout 30 s" in chart.alt_txt


def test_replica_logs_hold_no_token_or_secret(replicas: list[Replica]) -> None:
    for replica in replicas:
        log = replica.log()
        assert "serving HTTP on" in log
        assert BOT_TOKEN not in log
        assert SECRET not in log
