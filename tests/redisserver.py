"""A real ``redis-server`` for tests, on a free loopback port, in a temporary directory.

Load the fixtures in a test module with::

    pytest_plugins = ["tests.redisserver"]

``redis_server`` is one server for the whole session (give each test its own key prefix);
``private_redis_server`` is a server of the test's own, for tests that stop or restart it.
Both skip the test when ``redis-server`` is not on PATH.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
_START_TIMEOUT_S = 10.0
_PORT_ATTEMPTS = 5


class RedisServerError(RuntimeError):
    pass


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


def _free_port() -> int:
    # redis-server treats port 0 as "no TCP listener", so ask the kernel for a free port and
    # hand it over; the short race with another process is covered by retrying in start().
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process without persistence; restart() keeps its port."""

    def __init__(self, workdir: Path, executable: str = "redis-server") -> None:
        self.workdir = workdir
        self.executable = executable
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RedisServerError("the server has not been started")
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=2.0)

    def start(self) -> None:
        """Start on the port used before, or on a free one the first time."""
        if self.running:
            raise RedisServerError("the server is already running")
        if self.port is not None:
            self._launch(self.port)
            return
        last_error: RedisServerError | None = None
        for _ in range(_PORT_ATTEMPTS):
            port = _free_port()
            try:
                self._launch(port)
            except RedisServerError as exc:
                last_error = exc
                continue
            self.port = port
            return
        raise RedisServerError(f"redis-server did not start: {last_error}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _launch(self, port: int) -> None:
        logfile = self.workdir / f"redis-{port}.log"
        args = [
            self.executable,
            "--port",
            str(port),
            "--bind",
            HOST,
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(logfile),
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = redis.Redis(
            host=HOST,
            port=port,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        try:
            while True:
                if proc.poll() is not None:
                    tail = logfile.read_text() if logfile.exists() else ""
                    raise RedisServerError(
                        f"exited with {proc.returncode} on port {port}: {tail[-500:]}"
                    )
                try:
                    if probe.ping():
                        break
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait(timeout=10)
                    raise RedisServerError(f"no answer on port {port} in {_START_TIMEOUT_S} s")
                time.sleep(0.02)
        finally:
            probe.close()
        self._proc = proc
        logger.info("redis-server started on %s:%s (pid %s)", HOST, port, proc.pid)


def _require_redis_server() -> str:
    path = redis_server_path()
    if path is None:
        pytest.skip("redis-server is not on PATH; install Redis to run the cache tests")
    return path


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), _require_redis_server())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, _require_redis_server())
    server.start()
    try:
        yield server
    finally:
        server.stop()
