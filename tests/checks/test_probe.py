"""The idle-connection probe against real local HTTP servers, and its pod in the sandbox.

The servers are the standard library's HTTP/1.1 server, whose handler timeout closes an
idle keep-alive connection after a known time, as production servers do. The sandbox's
Kubernetes API server runs no container, so there the pod's spec and its cleanup are tested.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

import checks.probe
from checks.collect.probe import (
    PROBE_LABEL,
    probe_pod_spec,
    probe_target,
    result_from_log,
    run_probe,
)
from checks.errors import AccessError, BackendError, NotFoundError
from checks.probe import ProbeError, ProbeResult, measure_idle_close
from sandbox.kube_server import KubeApiServer

SCENARIOS = Path(__file__).resolve().parents[2] / "sandbox" / "scenarios"
BODY = b"hello from a local server\n"


def _handler(idle_s: float | None, *, chunked: bool = False, close: bool = False) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # StreamRequestHandler applies this to the socket: an idle connection times out
        # waiting for the next request and the server closes it.
        timeout = idle_s

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            if close:
                self.send_header("Connection", "close")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in (BODY[:10], BODY[10:]):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)
            if close:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving(handler: type) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---- measuring --------------------------------------------------------------------------


def test_server_closing_idle_connections_after_1s_is_measured_within_a_second() -> None:
    with serving(_handler(1.0)) as port:
        result = measure_idle_close("127.0.0.1", port, limit_s=5)

    assert result.reuse is True
    assert result.closed_after_s is not None
    assert abs(result.closed_after_s - 1.0) < 1.0
    assert result.detail.startswith(f"GET / answered 200 ({len(BODY)} byte(s)); the server ")


def test_chunked_response_is_read_whole_and_a_2s_close_is_measured() -> None:
    with serving(_handler(2.0, chunked=True)) as port:
        result = measure_idle_close("127.0.0.1", port, path="/report", limit_s=5)

    assert result.reuse is True
    assert result.closed_after_s is not None
    assert abs(result.closed_after_s - 2.0) < 1.0
    assert result.detail.startswith(f"GET /report answered 200 ({len(BODY)} byte(s));")


def test_connection_close_means_no_reuse_not_a_close_after_zero_seconds() -> None:
    with serving(_handler(None, close=True)) as port:
        result = measure_idle_close("127.0.0.1", port, limit_s=5)

    assert result == ProbeResult(
        None,
        False,
        f"GET / answered 200 ({len(BODY)} byte(s)); the server answered with "
        "Connection: close: no reuse",
    )


def test_server_still_open_at_the_limit_gives_no_close_time() -> None:
    with serving(_handler(None)) as port:
        result = measure_idle_close("127.0.0.1", port, limit_s=0.5)

    assert result == ProbeResult(
        None,
        True,
        f"GET / answered 200 ({len(BODY)} byte(s)); the idle connection was still open after 0.5 s",
    )


def test_refused_connection_is_a_probe_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProbeError, match=re.escape(f"could not connect to 127.0.0.1:{port}")):
        measure_idle_close("127.0.0.1", port, limit_s=1)


def test_the_pod_command_runs_the_probe_and_logs_one_json_line() -> None:
    """The exact command the probe pod runs, with this interpreter standing in for the image's."""
    with serving(_handler(1.0)) as port:
        spec = probe_pod_spec(
            name="p",
            namespace="default",
            image="x",
            host="127.0.0.1",
            port=port,
            path="/",
            limit_s=5,
        )
        command = spec["spec"]["containers"][0]["command"]
        assert command[:2] == ["python", "-c"]
        done = subprocess.run(
            [sys.executable, *command[1:]], capture_output=True, text=True, timeout=20, check=False
        )

    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    result = result_from_log(line)
    assert result.reuse is True
    assert result.closed_after_s is not None
    assert abs(result.closed_after_s - 1.0) < 1.0


# ---- the pod ------------------------------------------------------------------------------


def test_probe_pod_spec_runs_this_module_unprivileged_and_bounded() -> None:
    spec = probe_pod_spec(
        name="eks504-idle-probe-1",
        namespace="probes",
        image="python:3.12-alpine",
        host="10.0.11.41",
        port=8000,
        path="/healthz",
        limit_s=65,
        host_header="reports.example.com",
    )

    assert spec["metadata"] == {
        "name": "eks504-idle-probe-1",
        "namespace": "probes",
        "labels": {"app.kubernetes.io/name": PROBE_LABEL, "app.kubernetes.io/managed-by": "eks504"},
    }
    pod = spec["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["activeDeadlineSeconds"] == 60 + 65 + 5 + 30 + 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "python:3.12-alpine"
    assert container["command"] == [
        "python",
        "-c",
        Path(checks.probe.__file__).read_text(encoding="utf-8"),
        "10.0.11.41",
        "8000",
        "--path",
        "/healthz",
        "--limit",
        "65",
        "--host-header",
        "reports.example.com",
    ]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _scenario(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SCENARIOS / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[KubeApiServer, client.ApiClient]]:
    with KubeApiServer(_scenario("x1-nginx-proxy-read-timeout.yaml")["cluster"], {}) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=configuration
        )
        with client.ApiClient(configuration) as api:
            yield server, api


def _target(api: client.ApiClient) -> dict[str, Any]:
    pod = client.CoreV1Api(api).read_namespaced_pod("export-7d9f8-k2m4p", "reports")
    data: dict[str, Any] = api.sanitize_for_serialization(pod)
    return data


def _probe_pods(api: client.ApiClient) -> list[str]:
    pods = client.CoreV1Api(api).list_namespaced_pod(
        "default", label_selector=f"app.kubernetes.io/name={PROBE_LABEL}"
    )
    return [p.metadata.name for p in pods.items]


def test_probe_pod_that_does_not_finish_is_deleted(
    sandbox: tuple[KubeApiServer, client.ApiClient],
) -> None:
    server, api = sandbox
    target = _target(api)

    with pytest.raises(BackendError, match=r"did not finish within 0\.3 s") as raised:
        run_probe(api, target, 8000, limit_s=5, finish_timeout_s=0.3)

    assert _probe_pods(api) == []
    name = str(raised.value.message).split("default/", 1)[1].split(" ", 1)[0]
    assert ("POST", "/api/v1/namespaces/default/pods") in server.requests
    assert ("DELETE", f"/api/v1/namespaces/default/pods/{name}") in server.requests


def test_finished_probe_pod_without_a_result_is_reported_and_deleted(
    sandbox: tuple[KubeApiServer, client.ApiClient],
) -> None:
    server, api = sandbox
    core = client.CoreV1Api(api)
    original = core.read_namespaced_pod

    def finished(name: str, namespace: str, **kwargs: Any) -> Any:
        pod = original(name, namespace, **kwargs)
        pod.status.phase = "Succeeded"
        return pod

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client.CoreV1Api, "read_namespaced_pod", lambda self, n, ns: finished(n, ns))
        with pytest.raises(BackendError, match=r"left no result in its log \(an empty log\)"):
            run_probe(api, _target(api), 8000, limit_s=5, finish_timeout_s=5)

    assert _probe_pods(api) == []
    assert any(method == "GET" and path.endswith("/log") for method, path in server.requests)


def test_forbidden_probe_pod_names_the_rbac_it_needs(
    sandbox: tuple[KubeApiServer, client.ApiClient],
) -> None:
    server, api = sandbox
    server.forbid("create", "pods", "default")

    with pytest.raises(AccessError) as raised:
        run_probe(api, _target(api), 8000, limit_s=5)

    assert raised.value.needs == "RBAC `create` on `pods` in namespace default"
    assert _probe_pods(api) == []


def test_probe_target_is_a_ready_pod_and_its_named_port() -> None:
    objects = _scenario("h0-alb-healthy.yaml")["cluster"]
    service = next(o for o in objects if o["kind"] == "Service")
    pods = [o for o in objects if o["kind"] == "Pod"]
    pods[0]["status"]["conditions"] = [{"type": "Ready", "status": "False"}]

    pod, port = probe_target(pods, service)

    assert (pod["metadata"]["name"], port) == ("catalog-58b9c-bb222", 8000)


def test_no_ready_pod_to_probe_is_not_found() -> None:
    objects = _scenario("h0-alb-healthy.yaml")["cluster"]
    service = next(o for o in objects if o["kind"] == "Service")
    pods = [o for o in objects if o["kind"] == "Pod"]
    for pod in pods:
        pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]

    with pytest.raises(NotFoundError):
        probe_target(pods, service)


def test_result_from_log_reads_the_last_json_line_and_reports_probe_errors() -> None:
    ok = json.dumps({"closed_after_s": 5.02, "reuse": True, "detail": "closed"})
    assert result_from_log(f"noise\n{ok}\n") == ProbeResult(5.02, True, "closed")
    with pytest.raises(BackendError, match=r"could not connect to 10\.0\.11\.41:8000"):
        result_from_log(json.dumps({"error": "could not connect to 10.0.11.41:8000"}))
