"""Runs the idle-connection probe from inside the cluster, in a short-lived pod of its own.

The probe (:mod:`checks.probe`, standard library only) runs with ``python -c`` in a stock
Python image, against one ready pod of the asked Service, by pod IP and container port. It
prints one JSON line, read back from the pod's log; the pod is deleted afterwards whatever
happened, and ``activeDeadlineSeconds`` stops it should eks504 itself die first (leftovers
carry the label ``app.kubernetes.io/name=eks504-idle-probe``).

What it needs:

* RBAC in the probe namespace: ``create``, ``get`` and ``delete`` on ``pods``, and ``get``
  on ``pods/log``; in the Service's namespace, ``get``/``list`` on ``pods`` (as the report).
* NetworkPolicy: the probe pod must be allowed egress to the target pod's IP and port, and
  the target namespace must admit ingress on that port from pods labelled
  ``app.kubernetes.io/name=eks504-idle-probe`` in the probe namespace (a ``namespaceSelector``
  with that ``podSelector``). It resolves no names, so it needs no DNS egress.
* The nodes must be able to pull the probe image (a Python 3.10 or later image).

It is opt-in and slow by nature (it waits up to the load balancer's idle timeout plus a
margin), so it runs apart from the report's deadline.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from checks import kube, numbers
from checks import probe as probe_module
from checks.errors import AccessError, BackendError, NotFoundError
from checks.probe import CONNECT_TIMEOUT_S, RESPONSE_TIMEOUT_S, ProbeResult
from checks.snapshot import KubeObject

logger = logging.getLogger(__name__)

PROBE_IMAGE = "public.ecr.aws/docker/library/python:3.12-alpine"
PROBE_LABEL = "eks504-idle-probe"
# Time for the probe pod to be scheduled and its image pulled.
START_TIMEOUT_S = 60.0
_POLL_S = 1.0
_NOBODY = 65534


def probe_target(pods: list[KubeObject], service: KubeObject | None) -> tuple[KubeObject, int]:
    """One ready pod of the Service and the container port its first Service port targets."""
    ports = kube.spec(service).get("ports") or [] if service is not None else []
    target = (ports[0].get("targetPort", ports[0].get("port")) if ports else None) or ""
    for pod in pods:
        if not kube.pod_ready(pod) or not kube.status(pod).get("podIP"):
            continue
        number = numbers.whole(str(target))
        if number is not None:
            return pod, number
        container_ports = [
            (str(port.get("name", "")), numbers.whole(str(port.get("containerPort", ""))))
            for container in kube.containers(pod)
            for port in container.get("ports") or []
        ]
        for name, port_number in container_ports:
            if target and name == str(target) and port_number is not None:
                return pod, port_number
        first = next((n for _, n in container_ports if n is not None), None)
        if first is not None and not target:
            return pod, first
    raise NotFoundError(
        "No ready pod with an IP and a resolvable port to probe.",
        "Probe again when the Service has ready endpoints.",
    )


def probe_pod_spec(
    *,
    name: str,
    namespace: str,
    image: str,
    host: str,
    port: int,
    path: str,
    limit_s: float,
    host_header: str | None = None,
) -> KubeObject:
    """The probe pod: unprivileged, no service account token, gone after a deadline."""
    source = Path(probe_module.__file__).read_text(encoding="utf-8")
    args = [host, str(port), "--path", path, "--limit", f"{limit_s:g}"]
    if host_header:
        args += ["--host-header", host_header]
    deadline = int(START_TIMEOUT_S + limit_s + CONNECT_TIMEOUT_S + RESPONSE_TIMEOUT_S) + 30
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": PROBE_LABEL,
                "app.kubernetes.io/managed-by": "eks504",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "activeDeadlineSeconds": deadline,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": _NOBODY,
                "runAsGroup": _NOBODY,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "command": ["python", "-c", source, *args],
                    "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"memory": "64Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def result_from_log(text: str) -> ProbeResult:
    """The probe's result: the last JSON line of its pod's log."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            data: Any = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "error" in data:
            raise BackendError(f"The probe could not measure: {data['error']}.")
        if isinstance(data, dict) and "reuse" in data:
            return ProbeResult.from_dict(data)
    shown = lines[-1][:200] if lines else "an empty log"
    raise BackendError(f"The probe pod left no result in its log ({shown}).")


def run_probe(
    api: k8s.ApiClient,
    target_pod: KubeObject,
    port: int,
    *,
    limit_s: float,
    namespace: str = "default",
    image: str = PROBE_IMAGE,
    path: str = "/",
    host_header: str | None = None,
    finish_timeout_s: float | None = None,
) -> ProbeResult:
    """Probe ``target_pod`` on ``port`` from a pod started in ``namespace``; the pod is
    deleted before this returns or raises."""
    core = k8s.CoreV1Api(api)
    host = str(kube.status(target_pod).get("podIP", ""))
    if not host:
        raise NotFoundError(f"Pod {kube.namespace(target_pod)}/{kube.name(target_pod)} has no IP.")
    name = f"{PROBE_LABEL}-{uuid.uuid4().hex[:8]}"
    body = probe_pod_spec(
        name=name,
        namespace=namespace,
        image=image,
        host=host,
        port=port,
        path=path,
        limit_s=limit_s,
        host_header=host_header,
    )
    started = time.monotonic()
    try:
        core.create_namespaced_pod(namespace, body)  # type: ignore[arg-type]
    except ApiException as exc:
        logger.info("kubernetes create pod %s/%s -> HTTP %s", namespace, name, exc.status)
        if exc.status in (401, 403):
            raise AccessError(
                f"Not allowed to start the probe pod in namespace {namespace}.",
                f"RBAC `create` on `pods` in namespace {namespace}",
            ) from exc
        raise BackendError(
            f"Could not start the probe pod in {namespace}: HTTP {exc.status} {exc.reason}."
        ) from exc
    logger.info("kubernetes create pod %s/%s -> created", namespace, name)
    try:
        budget = (
            finish_timeout_s
            if finish_timeout_s is not None
            else START_TIMEOUT_S + limit_s + CONNECT_TIMEOUT_S + RESPONSE_TIMEOUT_S
        )
        phase = _wait_finished(core, namespace, name, started + budget)
        if phase is None:
            raise BackendError(
                f"The probe pod {namespace}/{name} did not finish within {budget:g} s.",
                "Check that its image can be pulled and that a NetworkPolicy lets it reach "
                "the pod.",
            )
        try:
            log = core.read_namespaced_pod_log(name, namespace)
        except ApiException as exc:
            raise AccessError(
                f"Could not read the probe pod's log in {namespace}.",
                f"RBAC `get` on `pods/log` in namespace {namespace}",
            ) from exc
        result = result_from_log(str(log))
        logger.info(
            "probe of %s:%s from %s/%s -> %s in %.1f s",
            host,
            port,
            namespace,
            name,
            result.detail,
            time.monotonic() - started,
        )
        return result
    finally:
        _delete(core, namespace, name)


def _wait_finished(core: k8s.CoreV1Api, namespace: str, name: str, deadline: float) -> str | None:
    while True:
        try:
            pod = core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            raise BackendError(
                f"Could not read the probe pod {namespace}/{name}: HTTP {exc.status}."
            ) from exc
        phase = pod.status.phase if pod.status else None
        if phase in ("Succeeded", "Failed"):
            return str(phase)
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))


def _delete(core: k8s.CoreV1Api, namespace: str, name: str) -> None:
    try:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        logger.info("kubernetes delete pod %s/%s -> deleted", namespace, name)
    except ApiException as exc:
        logger.warning(
            "could not delete probe pod %s/%s: HTTP %s (label app.kubernetes.io/name=%s)",
            namespace,
            name,
            exc.status,
            PROBE_LABEL,
        )
