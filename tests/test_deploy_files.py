"""The deployment files under deploy/: they parse, they grant no more than the collectors
need, and they agree with the names the code uses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import build_parser
from bot.listeners.slash import COMMAND
from checks.collect.settings import Connection

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
READ_VERBS = {"get", "list", "watch"}
# What the collectors read, as (API group, resource, verb).
NEEDED_READS = [
    ("", "namespaces", "get"),
    *(
        ("", r, v)
        for r in ("services", "pods", "configmaps", "events", "endpoints", "nodes")
        for v in ("get", "list")
    ),
    ("discovery.k8s.io", "endpointslices", "list"),
    ("networking.k8s.io", "ingresses", "list"),
    ("networking.k8s.io", "ingressclasses", "list"),
    ("apps", "deployments", "list"),
    ("apps", "statefulsets", "list"),
    ("apps", "daemonsets", "list"),
    ("elbv2.k8s.aws", "ingressclassparams", "get"),
    ("elbv2.k8s.aws", "targetgroupbindings", "list"),
]
# boto3 client names the collector uses -> the IAM service prefix.
IAM_PREFIX = {
    "elb": "elasticloadbalancing",
    "elbv2": "elasticloadbalancing",
    "ec2": "ec2",
    "cloudwatch": "cloudwatch",
}


def _documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as stream:
        return [d for d in yaml.safe_load_all(stream) if d is not None]


def _kube_objects() -> list[dict[str, Any]]:
    return [d for p in sorted(KUBERNETES.glob("*.yaml")) for d in _documents(p)]


def _one(kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in _kube_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _grants(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r.get("apiGroups", []) and resource in r["resources"] and verb in r["verbs"]
        for r in rules
    )


def _manifest() -> dict[str, Any]:
    [manifest] = _documents(DEPLOY / "slack-app-manifest.yaml")
    assert isinstance(manifest, dict)
    return manifest


# ---- every file ---------------------------------------------------------------------------


def test_deploy_holds_the_expected_yaml_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    assert "slack-app-manifest.yaml" in names
    assert {n for n in names if n.startswith("kubernetes/")} == {
        "kubernetes/00-namespace.yaml",
        "kubernetes/10-rbac.yaml",
        "kubernetes/20-redis.yaml",
        "kubernetes/30-eks504.yaml",
    }


@pytest.mark.parametrize("path", YAML_FILES, ids=[p.name for p in YAML_FILES])
def test_yaml_file_parses_into_mappings(path: Path) -> None:
    documents = _documents(path)
    assert documents
    assert all(isinstance(d, dict) for d in documents)


def test_every_kubernetes_object_has_api_version_kind_and_name() -> None:
    objects = _kube_objects()
    assert len(objects) >= 10
    for obj in objects:
        assert obj.get("apiVersion"), obj
        assert obj.get("kind"), obj
        assert (obj.get("metadata") or {}).get("name"), obj


def test_namespaced_objects_live_in_eks504_except_the_node_reader_role() -> None:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    placed = {
        (o["kind"], o["metadata"]["name"]): o["metadata"].get("namespace")
        for o in _kube_objects()
        if o["kind"] not in cluster_scoped
    }
    elsewhere = {k: ns for k, ns in placed.items() if ns != "eks504"}
    assert elsewhere == {
        ("Role", "eks504-node-reader"): "default",
        ("RoleBinding", "eks504-node-reader"): "default",
    }


# ---- RBAC ---------------------------------------------------------------------------------


def test_cluster_role_grants_no_write_verb_except_create_on_pod_exec() -> None:
    rules = _one("ClusterRole", "eks504-read")["rules"]
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        writes = set(rule["verbs"]) - READ_VERBS
        if writes:
            assert writes == {"create"}, rule
            assert rule["resources"] == ["pods/exec"], rule
            assert rule["apiGroups"] == [""], rule


def test_cluster_role_grants_every_read_the_collectors_make() -> None:
    rules = _one("ClusterRole", "eks504-read")["rules"]
    missing = [n for n in NEEDED_READS if not _grants(rules, *n)]
    assert missing == []
    # Exec opens as a WebSocket GET: older API servers check `get`, newer ones `create`.
    assert _grants(rules, "", "pods/exec", "get")
    assert _grants(rules, "", "pods/exec", "create")


def test_node_reader_role_sits_in_the_probe_namespace_and_only_manages_pods() -> None:
    role = _one("Role", "eks504-node-reader")
    assert role["metadata"]["namespace"] == Connection().probe_namespace
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "delete"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]


@pytest.mark.parametrize(
    ("kind", "name", "role_kind", "role_name"),
    [
        ("ClusterRoleBinding", "eks504-read", "ClusterRole", "eks504-read"),
        ("RoleBinding", "eks504-node-reader", "Role", "eks504-node-reader"),
    ],
)
def test_binding_gives_the_role_to_the_eks504_service_account(
    kind: str, name: str, role_kind: str, role_name: str
) -> None:
    binding = _one(kind, name)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": role_kind,
        "name": role_name,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "eks504", "namespace": "eks504"}
    ]


def test_service_account_carries_an_irsa_role_arn() -> None:
    account = _one("ServiceAccount", "eks504")
    arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", arn)


# ---- the Deployment -----------------------------------------------------------------------


def _bot_container() -> dict[str, Any]:
    deployment = _one("Deployment", "eks504")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_bot_runs_serve_with_two_replicas_as_its_service_account() -> None:
    deployment = _one("Deployment", "eks504")
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert spec["serviceAccountName"] == "eks504"
    args = _bot_container()["args"]
    assert args[0] == "serve"
    parsed = build_parser().parse_args(args)
    assert parsed.command == "serve"


def test_bot_takes_slack_settings_from_the_secret() -> None:
    env = {e["name"]: e for e in _bot_container()["env"]}
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("eks504-slack", name)
    assert "value" not in env["SLACK_BOT_TOKEN"]


def test_redis_url_points_at_the_redis_service_in_the_manifests() -> None:
    url = {e["name"]: e.get("value") for e in _bot_container()["env"]}["REDIS_URL"]
    service = _one("Service", "eks504-redis")
    [port] = service["spec"]["ports"]
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert url == f"redis://{host}:{port['port']}/0"
    redis = _one("Deployment", "eks504-redis")
    assert service["spec"]["selector"] == redis["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("name", ["eks504", "eks504-redis"])
def test_containers_run_non_root_on_a_read_only_filesystem_with_limits(name: str) -> None:
    pod = _one("Deployment", name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert "memory" in container["resources"]["limits"]


# ---- IAM ----------------------------------------------------------------------------------


def _policy_actions() -> list[str]:
    policy = json.loads((DEPLOY / "iam-policy.json").read_text(encoding="utf-8"))
    assert policy["Version"] == "2012-10-17"
    actions: list[str] = []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions.extend([listed] if isinstance(listed, str) else listed)
    return actions


def test_iam_policy_allows_only_describe_and_get_actions() -> None:
    actions = _policy_actions()
    assert actions
    bad = [a for a in actions if not re.fullmatch(r"[a-z0-9]+:(Describe|Get)[A-Za-z]+", a)]
    assert bad == []


def test_iam_policy_covers_every_aws_call_of_the_collector() -> None:
    source = (ROOT / "checks" / "collect" / "aws.py").read_text(encoding="utf-8")
    calls = set(re.findall(r'"(elb|elbv2|ec2|cloudwatch)",\s*"([a-z]+_[a-z_]+)"', source))
    assert len(calls) >= 15
    needed = {
        f"{IAM_PREFIX[client]}:{''.join(w.title() for w in method.split('_'))}"
        for client, method in calls
    }
    assert needed - set(_policy_actions()) == set()


# ---- Slack --------------------------------------------------------------------------------


def test_slack_manifest_declares_the_slash_command_the_bot_registers() -> None:
    commands = _manifest()["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [COMMAND]
    assert commands[0]["usage_hint"] == "check NAMESPACE/SERVICE | help"


def test_slack_manifest_subscribes_to_app_mention_over_socket_mode() -> None:
    manifest = _manifest()
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert "app_mentions:read" in manifest["oauth_config"]["scopes"]["bot"]
    assert "commands" in manifest["oauth_config"]["scopes"]["bot"]


def test_slack_manifest_declares_the_message_shortcut() -> None:
    shortcuts = _manifest()["features"]["shortcuts"]
    assert [(s["type"], s["callback_id"], s["name"]) for s in shortcuts] == [
        ("message", "eks504_check_message", "Check with eks504")
    ]


# ---- image --------------------------------------------------------------------------------


def test_dockerfile_runs_eks504_serve_as_a_numeric_non_root_user() -> None:
    lines = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
    instructions = [line for line in lines if line and not line.startswith(("#", " "))]
    assert instructions[0] == "FROM python:3.11-slim"
    assert 'ENTRYPOINT ["eks504"]' in instructions
    assert instructions[-1] == 'CMD ["serve"]'
    [user] = [line for line in instructions if line.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
