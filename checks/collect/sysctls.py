"""Reads TCP keepalive settings inside pods (pod exec) and on nodes.

Sysctls under ``net.ipv4`` are per network namespace: a pod has its own, and only pods in
the host network see the node's. A node is read through a short-lived pod in the node's
host network, deleted afterwards. Needs RBAC ``create`` on ``pods/exec`` in the Service's
namespace, and ``create``/``get``/``delete`` on ``pods`` in the probe namespace for nodes.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from urllib3.exceptions import HTTPError

from checks import kube, numbers
from checks.collect import late
from checks.collect.settings import Connection
from checks.snapshot import KubeObject, Sysctls

logger = logging.getLogger(__name__)

KEEPALIVE_KEYS = (
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
)
_POD_START_TIMEOUT_S = 30.0
GAVE_UP = "not read: the report stopped waiting at its deadline"


def _parse(output: str) -> dict[str, int]:
    values: dict[str, int] = {}
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for key, line in zip(KEEPALIVE_KEYS, lines, strict=False):
        value = numbers.whole(line.split("=", 1)[-1].strip())
        if value is not None:
            values[key] = value
    return values


def _exit_status(error_channel: str) -> tuple[int | None, str]:
    """Exit code and message from the exec error channel's Status (empty = still running)."""
    if not error_channel.strip():
        return None, ""
    try:
        status = json.loads(error_channel)
    except ValueError:
        return 1, error_channel.strip()
    if status.get("status") == "Success":
        return 0, ""
    causes = (status.get("details") or {}).get("causes") or []
    for cause in causes:
        code = numbers.whole(str(cause.get("message", "")))
        if cause.get("reason") == "ExitCode" and code is not None:
            return code, str(status.get("message", ""))
    return 1, str(status.get("message", ""))


_HANDSHAKE_STATUS = re.compile(r"Handshake status (\d{3})")
# websocket-client joins the parts of a refused handshake with this separator.
_HANDSHAKE_PARTS = " -+-+- "


def _exec_failure(namespace: str, status: int | None, text: str) -> str:
    """Plain words for an exec the API server refused or that failed before it ran."""
    head, _, rest = text.partition(_HANDSHAKE_PARTS)
    found = _HANDSHAKE_STATUS.search(head)
    code = status or (int(found.group(1)) if found else 0)
    if code in (401, 403):
        return (
            "Kubernetes refused to exec in the pod: needs RBAC `create` on `pods/exec` in "
            f"namespace {namespace}"
        )
    message = _status_message(rest.rpartition(_HANDSHAKE_PARTS)[2]) if rest else ""
    if code:
        return f"exec failed with HTTP {code}: {message or head}"[:200]
    return f"exec failed: {head}"[:200]


def _status_message(body: str) -> str:
    """The ``message`` of a Kubernetes Status body, or "" when the body is not one."""
    try:
        status = json.loads(body)
    except ValueError:
        return ""
    return str(status.get("message") or "") if isinstance(status, dict) else ""


def _exec(
    core: k8s.CoreV1Api, namespace: str, pod: str, container: str, command: list[str]
) -> tuple[str, str]:
    """Run ``command`` in ``pod``; returns (stdout, error). Error is "" on success."""
    started = time.monotonic()
    # stream() swaps the request method of the client it is given while it runs: a client
    # of its own keeps concurrent plain calls off the websocket path.
    exec_core = k8s.CoreV1Api(k8s.ApiClient(core.api_client.configuration))
    try:
        ws = stream(
            exec_core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=command,
            container=container or None,
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            _preload_content=False,
        )
        ws.run_forever(timeout=15)
        out = ws.read_stdout() if ws.peek_stdout() else ""
        err = ws.read_stderr() if ws.peek_stderr() else ""
        code, message = _exit_status(ws.read_channel(3))
        ws.close()
    except ApiException as exc:
        # The client reports a refused websocket upgrade as HTTP 0 with the handshake's
        # status line, headers and body joined in ``reason``.
        logger.info("kubernetes exec %s/%s -> HTTP %s", namespace, pod, exc.status)
        return "", _exec_failure(namespace, exc.status, str(exc.reason or ""))
    except Exception as exc:  # the websocket layer raises plain exceptions
        logger.info("kubernetes exec %s/%s -> %s", namespace, pod, str(exc)[:200])
        return "", _exec_failure(namespace, None, str(exc))
    logger.info(
        "kubernetes exec %s/%s %s -> exit %s in %.3f s",
        namespace,
        pod,
        command[0],
        code,
        time.monotonic() - started,
    )
    if code == 0:
        return out, ""
    text = " ".join((message or err or out).split())
    if "executable file not found" in text or "no such file or directory" in text.lower():
        return "", f"no `{command[0]}` in the container (exec failed: {text[:160]})"
    if code is None:
        return out, "the command did not finish in time"
    return out, f"exit {code}: {text[:160] or 'no output'}"


def read_pod(core: k8s.CoreV1Api, pod: KubeObject) -> Sysctls:
    namespace, name = kube.namespace(pod), kube.name(pod)
    subject = f"{namespace}/{name}"
    if late.stopped():
        return Sysctls(subject=subject, values={}, error=GAVE_UP)
    # Containers of a pod share its network namespace: the first one answers for all.
    first = next(iter(kube.containers(pod)), {})
    container = str(first.get("name", ""))
    out, error = _exec(core, namespace, name, container, ["sysctl", "-n", *KEEPALIVE_KEYS])
    values = _parse(out) if not error else {}
    if error.startswith("no `sysctl` in the container"):
        # Images without sysctl often still have cat.
        cat_values: dict[str, int] = {}
        for key in KEEPALIVE_KEYS:
            if late.stopped():
                break
            path = "/proc/sys/" + key.replace(".", "/")
            cat_out, cat_error = _exec(core, namespace, name, container, ["cat", path])
            if cat_error:
                break
            cat_value = numbers.whole(cat_out.strip())
            if cat_value is not None:
                cat_values[key] = cat_value
        if len(cat_values) == len(KEEPALIVE_KEYS):
            return Sysctls(subject=subject, values=cat_values)
    if len(values) != len(KEEPALIVE_KEYS) and not error:
        error = f"unexpected sysctl output: {out.strip()[:100]!r}"
    return Sysctls(subject=subject, values=values if not error else {}, error=error)


def _probe_pod(node: str, namespace: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"eks504-node-read-{uuid.uuid4().hex[:8]}",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "eks504-node-read"},
        },
        "spec": {
            "nodeName": node,
            "hostNetwork": True,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "activeDeadlineSeconds": 120,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": "read",
                    "image": image,
                    "command": ["sleep", "120"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


def read_node(core: k8s.CoreV1Api, node: str, connection: Connection) -> Sysctls:
    subject = f"node/{node}"
    namespace = connection.probe_namespace
    body = _probe_pod(node, namespace, connection.probe_image)
    name = body["metadata"]["name"]
    if late.stopped():
        return Sysctls(subject=subject, values={}, error=GAVE_UP)
    try:
        core.create_namespaced_pod(namespace, body)  # type: ignore[arg-type]
    except ApiException as exc:
        logger.info(
            "kubernetes create pod %s/%s -> HTTP %s %s", namespace, name, exc.status, exc.reason
        )
        need = f"RBAC `create` on `pods` in namespace {namespace}"
        return Sysctls(subject=subject, values={}, error=f"could not start a reading pod ({need})")
    except (HTTPError, OSError) as exc:
        logger.info("kubernetes create pod %s/%s -> %s", namespace, name, exc)
        return Sysctls(subject=subject, values={}, error="could not reach the Kubernetes API")
    try:
        deadline = time.monotonic() + _POD_START_TIMEOUT_S
        while True:
            if late.stopped():
                return Sysctls(subject=subject, values={}, error=GAVE_UP)
            try:
                pod = core.read_namespaced_pod(name, namespace)
            except ApiException as exc:
                need = f"RBAC `get` on `pods` in namespace {namespace}"
                return Sysctls(
                    subject=subject,
                    values={},
                    error=f"could not watch the reading pod start (HTTP {exc.status}; {need})",
                )
            except (HTTPError, OSError) as exc:
                logger.info("kubernetes get pod %s/%s -> %s", namespace, name, exc)
                return Sysctls(
                    subject=subject, values={}, error="could not reach the Kubernetes API"
                )
            if pod.status and pod.status.phase == "Running":
                break
            if time.monotonic() > deadline:
                return Sysctls(subject=subject, values={}, error="the reading pod did not start")
            time.sleep(0.5)
        read = read_pod(core, body)
        return Sysctls(subject=subject, values=read.values, error=read.error)
    finally:
        # Deleted even when the report stopped waiting: a live cluster would keep it.
        _delete_reading_pod(core, name, namespace)


def _delete_reading_pod(core: k8s.CoreV1Api, name: str, namespace: str) -> None:
    try:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    except (ApiException, HTTPError, OSError) as exc:
        why = f"HTTP {exc.status}" if isinstance(exc, ApiException) else str(exc)
        # Late, the API may be gone (the sandbox stops with the report): nothing to tell.
        log = logger.debug if late.stopped() else logger.warning
        log("could not delete reading pod %s/%s: %s", namespace, name, why)


def read_all(
    api: k8s.ApiClient,
    pods: list[KubeObject],
    nodes: list[str],
    connection: Connection,
    stop: threading.Event | None = None,
) -> dict[str, Sysctls]:
    """Every ready pod's and node's settings; once ``stop`` is set (the report stopped
    waiting), the reads still running give up at their next call, quietly."""
    core = k8s.CoreV1Api(api)
    stop = stop or threading.Event()
    results: dict[str, Sysctls] = {}
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="sysctls") as pool:
        pod_futures = [
            pool.submit(late.run_until, stop, read_pod, core, p) for p in pods if kube.pod_ready(p)
        ]
        node_futures = (
            [pool.submit(late.run_until, stop, read_node, core, n, connection) for n in nodes]
            if connection.read_nodes
            else []
        )
        for future in pod_futures + node_futures:
            result = future.result()
            results[result.subject] = result
    return results
