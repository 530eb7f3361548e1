"""Measures how long an HTTP server keeps an idle keep-alive connection open.

:func:`measure_idle_close` opens one HTTP/1.1 connection, sends one request, reads the whole
response (by Content-Length or chunked), then waits, bounded by ``limit_s``, until the server
closes the idle connection. A response that says ``Connection: close`` (or cannot be
followed by another on the same connection) means the server offers no reuse at all, which
is not the same as closing after 0 s.

This module uses only the standard library, so that it can run unchanged inside a plain
Python container: :mod:`checks.collect.probe` starts it in a short-lived pod next to the
server (``python -c`` with this file's text), and reads the JSON line it prints.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import socket
import sys
import time
from dataclasses import asdict, dataclass

logger = logging.getLogger(__name__)

USER_AGENT = "eks504-idle-probe"
CONNECT_TIMEOUT_S = 5.0
# Time allowed for the one response to arrive, apart from the idle wait.
RESPONSE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ProbeResult:
    """``closed_after_s``: seconds from the end of the response to the server's close, None
    when it did not close within the limit or offered no reuse; ``reuse``: whether the
    server kept the connection open for another request."""

    closed_after_s: float | None
    reuse: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ProbeResult:
        closed = data.get("closed_after_s")
        return cls(
            closed_after_s=float(closed) if isinstance(closed, int | float) else None,
            reuse=bool(data.get("reuse")),
            detail=str(data.get("detail", "")),
        )


class ProbeError(Exception):
    """The probe could not connect, or the server did not answer with HTTP."""


def _request(path: str, host: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        f"User-Agent: {USER_AGENT}",
        "Accept: */*",
        "Connection: keep-alive",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("latin-1")


def _no_reuse_reason(response: http.client.HTTPResponse) -> str:
    tokens = {t.strip().lower() for t in (response.getheader("Connection") or "").split(",")}
    if "close" in tokens:
        return "the server answered with Connection: close"
    if response.version == 10 and "keep-alive" not in tokens:
        return "the server answered with HTTP/1.0 and no keep-alive"
    return "the response has no length, so only closing the connection ends it"


def _wait_for_close(sock: socket.socket, limit_s: float) -> tuple[float | None, str]:
    """Seconds until the peer closes (FIN or reset), or None when ``limit_s`` passes first."""
    started = time.monotonic()
    extra = 0
    while True:
        remaining = limit_s - (time.monotonic() - started)
        if remaining <= 0:
            return None, ""
        sock.settimeout(remaining)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return None, ""
        except ConnectionResetError:
            return time.monotonic() - started, "reset"
        if not data:
            note = f"; it sent {extra} byte(s) before closing" if extra else ""
            return time.monotonic() - started, f"closed{note}"
        # Some servers send a last response (e.g. 408) on an idle connection before closing.
        extra += len(data)


def measure_idle_close(
    host: str,
    port: int,
    *,
    path: str = "/",
    limit_s: float,
    host_header: str | None = None,
) -> ProbeResult:
    """Send one request to ``host:port`` on a keep-alive connection and time the server's
    close of the idle connection, waiting at most ``limit_s`` seconds for it."""
    if not path.startswith("/"):
        raise ProbeError(f"the path must start with '/', not {path!r}")
    authority = host_header or (host if port == 80 else f"{host}:{port}")
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise ProbeError(f"could not connect to {host}:{port}: {exc}") from exc
    with sock:
        sock.settimeout(RESPONSE_TIMEOUT_S)
        try:
            sock.sendall(_request(path, authority))
            response = http.client.HTTPResponse(sock, method="GET")
            response.begin()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ProbeError(f"no HTTP response from {host}:{port}: {exc}") from exc
        status = f"GET {path} answered {response.status} ({len(body)} byte(s))"
        if response.will_close:
            reason = _no_reuse_reason(response)
            logger.info("probe %s:%s: %s; %s", host, port, status, reason)
            return ProbeResult(None, False, f"{status}; {reason}: no reuse")
        closed_after, how = _wait_for_close(sock, limit_s)
    if closed_after is None:
        detail = f"{status}; the idle connection was still open after {limit_s:g} s"
    else:
        detail = f"{status}; the server {how} the idle connection after {closed_after:.1f} s"
    logger.info("probe %s:%s: %s", host, port, detail)
    return ProbeResult(closed_after, True, detail)


def main(argv: list[str] | None = None) -> int:
    """Run one probe and print its result as one JSON line (what the probe pod logs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--path", default="/")
    parser.add_argument("--limit", type=float, required=True, help="seconds to wait at most")
    parser.add_argument("--host-header", default=None)
    args = parser.parse_args(argv)
    try:
        result = measure_idle_close(
            args.host,
            args.port,
            path=args.path,
            limit_s=args.limit,
            host_header=args.host_header,
        )
    except ProbeError as exc:
        sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        return 1
    sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
