"""Small readers for Kubernetes objects kept as JSON (``KubeObject``)."""

import ipaddress
from typing import Any

from checks.snapshot import KubeObject


def meta(obj: KubeObject) -> dict[str, Any]:
    value = obj.get("metadata") or {}
    return value if isinstance(value, dict) else {}


def name(obj: KubeObject) -> str:
    return str(meta(obj).get("name", ""))


def namespace(obj: KubeObject) -> str:
    return str(meta(obj).get("namespace", ""))


def annotations(obj: KubeObject) -> dict[str, str]:
    value = meta(obj).get("annotations") or {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def labels(obj: KubeObject) -> dict[str, str]:
    value = meta(obj).get("labels") or {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def spec(obj: KubeObject) -> dict[str, Any]:
    value = obj.get("spec") or {}
    return value if isinstance(value, dict) else {}


def status(obj: KubeObject) -> dict[str, Any]:
    value = obj.get("status") or {}
    return value if isinstance(value, dict) else {}


def ref(obj: KubeObject) -> str:
    """``kind/namespace/name`` in lower case, as scenario files and findings name objects."""
    kind = str(obj.get("kind", "")).lower()
    ns = namespace(obj)
    return f"{kind}/{ns}/{name(obj)}" if ns else f"{kind}/{name(obj)}"


def pod_ready(pod: KubeObject) -> bool:
    conditions = status(pod).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (a pod's ``status.podIP`` should be)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def containers(pod_or_template: KubeObject) -> list[dict[str, Any]]:
    return list(spec(pod_or_template).get("containers") or [])


def pod_template(workload: KubeObject) -> KubeObject:
    """The pod template of a Deployment, StatefulSet or DaemonSet."""
    template = spec(workload).get("template") or {}
    return template if isinstance(template, dict) else {}


def node_zone(node: KubeObject) -> str:
    zone = labels(node).get("topology.kubernetes.io/zone") or labels(node).get(
        "failure-domain.beta.kubernetes.io/zone", ""
    )
    if not zone:
        provider = str(spec(node).get("providerID", ""))
        parts = provider.removeprefix("aws:///").split("/")
        zone = parts[0] if len(parts) == 2 else ""
    return zone


def node_instance_id(node: KubeObject) -> str:
    provider = str(spec(node).get("providerID", ""))
    return provider.rsplit("/", 1)[-1] if provider.startswith("aws://") else ""


def selector_matches(selector: dict[str, str], obj_labels: dict[str, str]) -> bool:
    return bool(selector) and all(obj_labels.get(k) == v for k, v in selector.items())
