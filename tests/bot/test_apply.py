"""The apply flow without Slack: plan, dry run, apply, audit and undo against the local
Kubernetes API server."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.apply import (
    NEVER_A_POD,
    Cluster,
    MemoryPendingStore,
    Pending,
    RedisPendingStore,
    apply,
    changes_between,
    dry_run,
    kubectl_command,
    manager_of,
    manifest_fragment,
    plan,
    undo,
)
from bot.apply_policy import ApplyPolicy, policy_from_env
from bot.audit import (
    APPLIED,
    DRY_RUN_FAILED,
    REFUSED,
    UNCHANGED,
    MemoryAuditLog,
    RedisAuditLog,
)
from checks.collect.settings import Connection
from checks.models import Fix, KubePatch
from sandbox import kube_server
from sandbox.kube_server import KubeApiServer
from sandbox.scenario import BUNDLED_DIR, load

if TYPE_CHECKING:
    from tests.redisserver import RedisServer

pytest_plugins = ["tests.redisserver"]

PRESTOP = {
    "spec": {
        "template": {
            "spec": {
                "terminationGracePeriodSeconds": 45,
                "containers": [
                    {
                        "name": "web",
                        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "15"]}}},
                    }
                ],
            }
        }
    }
}
SYSCTL = {
    "spec": {
        "template": {
            "spec": {
                "securityContext": {
                    "sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "300"}]
                }
            }
        }
    }
}


def _fix(kind: str, name: str, patch_type: str, body: Any, namespace: str = "shop") -> Fix:
    patch = KubePatch(kind, namespace, name, patch_type, body)
    return Fix(title=f"patch {kind} {name}", language="shell", text="", apply=patch)


def _objects(extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    scenario = load(BUNDLED_DIR / "c25-alb-termination-race.yaml")
    return [*copy.deepcopy(scenario.cluster), *(extra or [])]


def _deployment(name: str, labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "namespace": "shop",
            "name": name,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
            },
        },
    }


ARGO = _deployment(
    "argo-web",
    {"app.kubernetes.io/instance": "shop-web"},
    {"argocd.argoproj.io/tracking-id": "shop-web:apps/Deployment:shop/argo-web"},
)
FLUX = _deployment(
    "flux-web",
    {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    },
    {},
)


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer(_objects([ARGO, FLUX]), {}, cluster_name="demo") as running:
        yield running


@pytest.fixture
def cluster(server: KubeApiServer, tmp_path: Path) -> Cluster:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    return Cluster(Connection(kubeconfig=str(kubeconfig), cluster="demo"), "demo")


def _web(server: KubeApiServer, name: str = "web") -> dict[str, Any]:
    return next(d for d in server.objects("Deployment", "shop") if d["metadata"]["name"] == name)


def _patches(server: KubeApiServer) -> list[str]:
    return [path for method, path in server.requests if method == "PATCH"]


# ---------------------------------------------------------------------------
# Plan


def test_plan_of_a_deployment_template_patch_can_be_applied(cluster: Cluster) -> None:
    planned = plan(_fix("deployment", "web", "strategic", PRESTOP), cluster)

    assert planned.applicable
    assert (planned.refusal, planned.manager) == ("", "")
    assert planned.patch.kind == "Deployment"
    assert planned.object_ref == "deployment/shop/web"
    assert planned.command == (
        "kubectl patch deployment web --namespace shop --type strategic --patch "
        + "'"
        + json.dumps(PRESTOP, separators=(",", ":"))
        + "'"
    )


def test_plan_never_patches_a_pod(cluster: Cluster, server: KubeApiServer) -> None:
    planned = plan(
        _fix("Pod", "web-5d6e7-aa", "merge", {"metadata": {"labels": {"a": "b"}}}), cluster
    )

    assert not planned.applicable
    assert planned.refusal == NEVER_A_POD
    assert server.requests == []


def test_plan_refuses_a_kind_it_does_not_patch(cluster: Cluster) -> None:
    planned = plan(_fix("Secret", "creds", "merge", {"data": {}}), cluster)

    assert planned.refusal == "eks504 does not patch Secret objects."


def test_plan_of_a_missing_object_says_it_cannot_read_it(cluster: Cluster) -> None:
    planned = plan(_fix("Deployment", "gone", "strategic", PRESTOP), cluster)

    assert planned.refusal.startswith("Cannot read deployment/shop/gone: ")
    assert 'deployments.apps "gone" not found' in planned.refusal


def test_argo_managed_object_gets_a_git_snippet_and_is_not_patched(
    cluster: Cluster, server: KubeApiServer
) -> None:
    planned = plan(_fix("Deployment", "argo-web", "strategic", PRESTOP), cluster)

    assert not planned.applicable
    assert planned.manager == "Argo CD (application shop-web)"
    assert planned.git_snippet == (
        "# deployment/shop/argo-web: merge into its manifest in Git\n"
        "# (null deletes a field)\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        "      - name: web\n"
        "        lifecycle:\n"
        "          preStop:\n"
        "            exec:\n"
        "              command:\n"
        "              - sleep\n"
        "              - '15'\n"
        "      terminationGracePeriodSeconds: 45\n"
    )
    assert "lifecycle" not in _web(server, "argo-web")["spec"]["template"]["spec"]["containers"][0]


def test_flux_managed_object_is_named_with_its_kustomization() -> None:
    assert manager_of(FLUX) == "Flux (Kustomization flux-system/apps)"
    assert manager_of({"metadata": {"labels": {"helm.toolkit.fluxcd.io/name": "web"}}}) == (
        "Flux (HelmRelease web)"
    )
    assert manager_of({"metadata": {"labels": {"app.kubernetes.io/instance": "web"}}}) == ""


def test_apply_to_an_argo_managed_object_is_refused_and_audited(
    cluster: Cluster, server: KubeApiServer
) -> None:
    audit = MemoryAuditLog()
    before = _web(server, "argo-web")
    planned = plan(_fix("Deployment", "argo-web", "strategic", PRESTOP), cluster)

    entry = apply(planned, cluster, user="U1", audit=audit)

    assert entry.result == REFUSED
    assert entry.detail == (
        "Argo CD (application shop-web) manages deployment/shop/argo-web: a patch would be "
        "reverted at its next sync; change it in Git."
    )
    assert _web(server, "argo-web") == before
    assert audit.entries() == [entry]


@pytest.mark.parametrize(("minor", "applicable"), [("28", False), ("29+", True)])
def test_tcp_keepalive_sysctl_is_offered_only_from_kubernetes_1_29(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, minor: str, applicable: bool
) -> None:
    monkeypatch.setitem(kube_server.SERVER_VERSION, "minor", minor)

    planned = plan(_fix("Deployment", "web", "merge", SYSCTL), cluster)

    assert planned.applicable is applicable
    if not applicable:
        assert planned.refusal == (
            "This cluster runs Kubernetes 1.28, and the net.ipv4.tcp_keepalive_* sysctls are "
            "allowed by default only from Kubernetes 1.29; before that, pods that set them are "
            "rejected unless every kubelet allows them as unsafe sysctls."
        )


def test_sysctl_in_a_json_patch_is_recognised(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(kube_server.SERVER_VERSION, "minor", "27")
    ops = [
        {
            "op": "add",
            "path": "/spec/template/spec/securityContext/sysctls/-",
            "value": {"name": "net.ipv4.tcp_keepalive_intvl", "value": "30"},
        }
    ]

    planned = plan(_fix("Deployment", "web", "json", ops), cluster)

    assert planned.refusal.startswith("This cluster runs Kubernetes 1.27, and the net.ipv4")


def test_prestop_sleep_action_needs_kubernetes_1_30(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(kube_server.SERVER_VERSION, "minor", "29")
    body = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "lifecycle": {"preStop": {"sleep": {"seconds": 15}}}}
    ]}}}}  # fmt: skip

    planned = plan(_fix("Deployment", "web", "strategic", body), cluster)

    assert planned.refusal == (
        "This cluster runs Kubernetes 1.29, and the preStop sleep action is on by default only "
        "from Kubernetes 1.30."
    )


# ---------------------------------------------------------------------------
# Dry run, apply, undo


def test_dry_run_reports_the_changes_and_stores_nothing(
    cluster: Cluster, server: KubeApiServer
) -> None:
    before = _web(server)

    checked = dry_run(plan(_fix("Deployment", "web", "strategic", PRESTOP), cluster), cluster)

    assert checked.ok
    assert [c.path for c in checked.changes] == [
        "/spec/template/spec/containers",
        "/spec/template/spec/terminationGracePeriodSeconds",
    ]
    assert _web(server) == before
    assert _patches(server) == ["/apis/apps/v1/namespaces/shop/deployments/web"]


def test_apply_patches_and_writes_the_previous_values_to_the_redis_stream(
    cluster: Cluster, server: KubeApiServer, private_redis_server: RedisServer
) -> None:
    audit = RedisAuditLog(private_redis_server.url)

    entry = apply(
        plan(_fix("Deployment", "web", "strategic", PRESTOP), cluster),
        cluster,
        user="U1",
        audit=audit,
    )

    spec = _web(server)["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 45
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "15"]}}}
    assert spec["containers"][0]["image"] == "registry.example/shop-web:22.3"
    assert entry.result == APPLIED
    grace = next(c for c in entry.changes if c.path.endswith("terminationGracePeriodSeconds"))
    assert (grace.before, grace.after, grace.was_set) == (30, 45, True)

    stream: Any = private_redis_server.client().xrange("eks504:audit", "-", "+")
    ((stream_id, fields),) = stream
    assert stream_id == entry.id
    assert fields["who"] == "U1"
    assert fields["result"] == "applied"
    assert fields["what"] == "apply deployment/shop/web: patch Deployment web"
    assert abs(float(fields["when"]) - entry.at) < 0.01
    stored = audit.get(entry.id)
    assert stored == entry


def test_apply_twice_changes_nothing_the_second_time(
    cluster: Cluster, server: KubeApiServer
) -> None:
    audit = MemoryAuditLog()
    fix = _fix("Deployment", "web", "strategic", PRESTOP)
    apply(plan(fix, cluster), cluster, user="U1", audit=audit)

    again = apply(plan(fix, cluster), cluster, user="U1", audit=audit)

    assert again.result == UNCHANGED
    assert again.detail == "deployment/shop/web already has this change; nothing was patched."
    assert [e.result for e in audit.entries()] == [APPLIED, UNCHANGED]


def test_forbidden_patch_fails_the_dry_run_and_applies_nothing(
    cluster: Cluster, server: KubeApiServer
) -> None:
    audit = MemoryAuditLog()
    server.forbid("patch", "deployments.apps", "shop")
    before = _web(server)

    entry = apply(
        plan(_fix("Deployment", "web", "strategic", PRESTOP), cluster),
        cluster,
        user="U1",
        audit=audit,
    )

    assert entry.result == DRY_RUN_FAILED
    assert entry.detail.startswith("Kubernetes refused to patch deployments.apps shop/web: ")
    assert entry.detail.endswith("Grant RBAC verb `patch` on `deployments.apps` in namespace shop.")
    assert _web(server) == before
    assert len(_patches(server)) == 1  # the dry run only


def test_undo_restores_the_previous_values_and_is_audited(
    cluster: Cluster, server: KubeApiServer
) -> None:
    audit = MemoryAuditLog()
    original = _web(server)["spec"]
    applied = apply(
        plan(_fix("Deployment", "web", "strategic", PRESTOP), cluster),
        cluster,
        user="U1",
        audit=audit,
    )

    undone = undo(applied, cluster, user="U2", audit=audit)

    assert undone.result == APPLIED
    assert (undone.action, undone.undoes, undone.user) == ("undo", applied.id, "U2")
    assert _web(server)["spec"] == original


def test_undo_of_an_added_annotation_removes_only_that_annotation(
    cluster: Cluster, server: KubeApiServer
) -> None:
    audit = MemoryAuditLog()
    key = "alb.ingress.kubernetes.io/load-balancer-attributes"
    body = {"metadata": {"annotations": {key: "idle_timeout.timeout_seconds=120"}}}
    applied = apply(
        plan(_fix("Ingress", "web", "merge", body), cluster), cluster, user="U1", audit=audit
    )
    assert [c.path for c in applied.changes] == [
        "/metadata/annotations/alb.ingress.kubernetes.io~1load-balancer-attributes"
    ]

    undo(applied, cluster, user="U1", audit=audit)

    (ingress,) = server.objects("Ingress", "shop")
    assert key not in ingress["metadata"]["annotations"]
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == (
        "internet-facing"
    )


def test_undo_after_a_later_change_fails_its_dry_run_and_keeps_that_change(
    cluster: Cluster, server: KubeApiServer
) -> None:
    audit = MemoryAuditLog()
    applied = apply(
        plan(_fix("Deployment", "web", "strategic", PRESTOP), cluster),
        cluster,
        user="U1",
        audit=audit,
    )
    later = _fix("Deployment", "web", "merge", {"spec": {"template": {"spec": {
        "terminationGracePeriodSeconds": 60}}}})  # fmt: skip
    apply(plan(later, cluster), cluster, user="U3", audit=audit)

    undone = undo(applied, cluster, user="U1", audit=audit)

    assert undone.result == DRY_RUN_FAILED
    assert "terminationGracePeriodSeconds" in undone.detail
    assert _web(server)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60


# ---------------------------------------------------------------------------
# Pieces


def test_changes_and_fragment_name_only_what_changed() -> None:
    before = {
        "metadata": {"resourceVersion": "1", "annotations": {"a": "1", "gone": "x"}},
        "spec": {"containers": [{"name": "web", "image": "i:1"}, {"name": "side", "image": "s"}]},
    }
    after = {
        "metadata": {"resourceVersion": "2", "annotations": {"a": "2", "new/key": "y"}},
        "spec": {"containers": [{"name": "web", "image": "i:2"}, {"name": "side", "image": "s"}]},
    }

    changes = changes_between(before, after)

    assert [(c.path, c.was_set, c.is_set) for c in changes] == [
        ("/metadata/annotations/a", True, True),
        ("/metadata/annotations/gone", True, False),
        ("/metadata/annotations/new~1key", False, True),
        ("/spec/containers", True, True),
    ]
    assert manifest_fragment(changes) == {
        "metadata": {"annotations": {"a": "2", "gone": None, "new/key": "y"}},
        "spec": {"containers": [{"name": "web", "image": "i:2"}]},
    }


def test_kubectl_command_quotes_every_value() -> None:
    patch = KubePatch(
        "Service", "shop", "web", "merge", {"metadata": {"annotations": {"k": "it's"}}}
    )

    assert kubectl_command(patch) == (
        "kubectl patch service web --namespace shop --type merge "
        """--patch '{"metadata":{"annotations":{"k":"it'"'"'s"}}}'"""
    )


def test_policy_from_env_keeps_valid_ids_only() -> None:
    policy = policy_from_env(
        {"EKS504_APPLY_USERS": " U1AB, W2CD ,, bob, <!here>", "EKS504_APPLY_GROUPS": "S0ABC,U1AB"}
    )

    assert policy == ApplyPolicy(users=frozenset({"U1AB", "W2CD"}), groups=frozenset({"S0ABC"}))
    assert policy_from_env({}).allows_anyone is False


def test_policy_grants_group_members_and_never_on_a_failed_lookup() -> None:
    policy = ApplyPolicy(users=frozenset({"U1AB"}), groups=frozenset({"S0ABC", "S0DEF"}))

    def members(group: str) -> list[str]:
        if group == "S0ABC":
            raise LookupError("missing_scope")
        return ["U3CD"]

    assert policy.allows("U1AB", members)
    assert policy.allows("U3CD", members)
    assert not policy.allows("U4EF", members)
    assert not policy.allows("", members)


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_pending_offers_round_trip(store: str, private_redis_server: RedisServer) -> None:
    pending_store = (
        MemoryPendingStore() if store == "memory" else RedisPendingStore(private_redis_server.url)
    )
    pending = Pending(
        fix=_fix("Deployment", "web", "strategic", PRESTOP), cluster="demo", ask="shop/web"
    )

    pending_id = pending_store.put(pending)

    assert len(pending_id) == 12
    assert pending_store.get(pending_id) == pending
    assert pending_store.get("nothing-here") is None
