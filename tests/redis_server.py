"""Redis for the tests: the server named by $SHOWCASE_TEST_REDIS, or one started here.

``.ci/run`` starts a Redis with ``appendfsync always`` and sets SHOWCASE_TEST_REDIS; on a
workstation the default is a local Redis, DB 13. Tests that restart Redis start their own
``redis-server`` on a free port in a temporary directory. When Redis cannot be reached
the tests fail and say so: they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

TEST_REDIS = os.environ.get("SHOWCASE_TEST_REDIS", "redis://127.0.0.1:6379/13")


def reachable(url: str = TEST_REDIS) -> redis.Redis:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"the Redis tests need a Redis server at {url} ($SHOWCASE_TEST_REDIS): "
                    f"{exc}. Start one (redis-server --port 6379) or run .ci/run, which does.")
    return client


@pytest.fixture
def redis_stream() -> Iterator[tuple[str, str]]:
    """(url, stream key) of a fresh stream on the test Redis, deleted afterwards."""
    client = reachable()
    stream = f"showcase:test:{uuid.uuid4().hex[:12]}"
    try:
        yield TEST_REDIS, stream
    finally:
        client.delete(stream, f"{stream}:format")
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of our own, durable as production runs it, restartable."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "these tests need redis-server: apt-get install redis-server (.ci/run does)"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder).start()
    try:
        yield server
    finally:
        server.stop()
