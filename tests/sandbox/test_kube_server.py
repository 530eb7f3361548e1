"""The local Kubernetes API server, driven only through the official ``kubernetes`` client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from sandbox.kube_server import SANDBOX_USER, KubeApiServer

SCENARIOS = Path(__file__).resolve().parents[2] / "sandbox" / "scenarios"
S2_POD = "frontend-5c8b7-q2w3e"
S2_NODE = "ip-10-0-11-20.ec2.internal"


def use(api_class: Callable[[client.ApiClient], object], api: client.ApiClient) -> Any:
    """An API group's client; its models mark every field Optional, so tests read them as Any."""
    return api_class(api)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SCENARIOS / name).read_text(encoding="utf-8"))
    return data


@contextmanager
def running(
    scenario: dict[str, Any], tmp_path: Path, exec_values: dict[str, Any] | None = None
) -> Iterator[tuple[KubeApiServer, client.ApiClient]]:
    values = scenario.get("exec") or {} if exec_values is None else exec_values
    with KubeApiServer(scenario["cluster"], values) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=configuration
        )
        with client.ApiClient(configuration) as api:
            yield server, api


@pytest.fixture
def s2(tmp_path: Path) -> Iterator[tuple[KubeApiServer, client.ApiClient]]:
    with running(load("s2-clb-nginx-keepalive-30s.yaml"), tmp_path) as served:
        yield served


@pytest.fixture
def h0(tmp_path: Path) -> Iterator[tuple[KubeApiServer, client.ApiClient]]:
    with running(load("h0-alb-healthy.yaml"), tmp_path) as served:
        yield served


def run_exec(
    api: client.ApiClient, namespace: str, pod: str, command: list[str], **kwargs: Any
) -> tuple[str, str, dict[str, Any]]:
    """stdout, stderr and the error-channel Status of one exec."""
    ws = stream(
        use(client.CoreV1Api, api).connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=command,
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
        **kwargs,
    )
    ws.run_forever(timeout=10)
    assert not ws.is_open(), "the server must close the exec stream when the command ends"
    stdout, stderr = ws.read_stdout(), ws.read_stderr()
    status: dict[str, Any] = yaml.safe_load(ws.read_channel(3))
    ws.close()
    return stdout, stderr, status


def api_error(call: Callable[[], object]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as caught:
        call()
    body: dict[str, Any] = json.loads(caught.value.body or "null")
    return int(caught.value.status), body


# Reads ---------------------------------------------------------------------------------------


def test_read_service_returns_the_scenario_spec(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    service = use(client.CoreV1Api, api).read_namespaced_service("frontend", "web")

    assert service.metadata.namespace == "web"
    assert service.metadata.uid
    assert service.metadata.resource_version
    assert service.metadata.creation_timestamp is not None
    assert service.spec.type == "LoadBalancer"
    assert service.spec.selector == {"app": "frontend"}
    port = service.spec.ports[0]
    assert (port.name, port.port, port.target_port, port.node_port) == ("http", 80, 8080, 31380)


def test_list_pods_by_label_selector(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    core = use(client.CoreV1Api, api)

    def names(selector: str) -> list[str]:
        pods = core.list_namespaced_pod("web", label_selector=selector)
        return [p.metadata.name for p in pods.items]

    both = ["frontend-5c8b7-q2w3e", "frontend-5c8b7-r4t5y"]
    assert names("app=frontend") == both
    assert names("app in (frontend,other)") == both
    assert names("app") == both
    assert names("app!=frontend") == []
    assert names("!app") == []
    assert names("app=backend") == []


def test_list_items_carry_kind_and_api_version(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    raw = use(client.CoreV1Api, api).list_namespaced_pod("web", _preload_content=False)
    body = json.loads(raw.data)

    assert body["kind"] == "PodList"
    assert body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"]
    assert {(i["kind"], i["apiVersion"]) for i in body["items"]} == {("Pod", "v1")}


def test_field_selectors_across_namespaces(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    server, api = s2
    core = use(client.CoreV1Api, api)

    on_node = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={S2_NODE}")
    by_name = core.list_pod_for_all_namespaces(field_selector=f"metadata.name={S2_POD}")
    elsewhere = core.list_pod_for_all_namespaces(field_selector="metadata.namespace=shop")

    assert [p.metadata.name for p in on_node.items] == [S2_POD]
    assert [p.metadata.namespace for p in by_name.items] == ["web"]
    assert elsewhere.items == []
    assert ("GET", "/api/v1/pods") in server.requests


def test_events_filter_on_involved_object(tmp_path: Path) -> None:
    scenario = load("c07-ingress-group-conflict.yaml")
    events = [o for o in scenario["cluster"] if o["kind"] == "Event"]
    assert events, "the scenario used here must list an Event"
    event = events[0]
    involved = event["involvedObject"]
    with running(scenario, tmp_path) as (_, api):
        core = use(client.CoreV1Api, api)
        found = core.list_namespaced_event(
            involved["namespace"],
            field_selector=f"involvedObject.name={involved['name']},"
            f"involvedObject.kind={involved['kind']}",
        )
        none = core.list_namespaced_event(
            involved["namespace"], field_selector="involvedObject.kind=Deployment"
        )

    assert [e.metadata.name for e in found.items] == [event["metadata"]["name"]]
    assert none.items == []


def test_namespaces_come_from_objects_and_defaults(
    s2: tuple[KubeApiServer, client.ApiClient],
) -> None:
    _, api = s2
    namespaces = use(client.CoreV1Api, api).list_namespace()

    assert [n.metadata.name for n in namespaces.items] == ["default", "kube-system", "web"]
    assert {n.status.phase for n in namespaces.items} == {"Active"}


def test_missing_service_is_404_with_a_status_body(
    s2: tuple[KubeApiServer, client.ApiClient],
) -> None:
    _, api = s2
    code, body = api_error(
        lambda: use(client.CoreV1Api, api).read_namespaced_service("nope", "web")
    )

    assert code == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'services "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "services"},
        "code": 404,
    }


def test_missing_namespace_is_404(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    core = use(client.CoreV1Api, api)

    read_code, read_body = api_error(lambda: core.read_namespaced_service("frontend", "nowhere"))
    ns_code, ns_body = api_error(lambda: core.read_namespace("nowhere"))
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    create_code, create_body = api_error(lambda: core.create_namespaced_pod("nowhere", pod))

    assert (read_code, read_body["reason"]) == (404, "NotFound")
    assert read_body["message"] == 'services "frontend" not found'
    assert (ns_code, ns_body["message"]) == (404, 'namespaces "nowhere" not found')
    assert (create_code, create_body["message"]) == (404, 'namespaces "nowhere" not found')


def test_discovery_names_the_served_groups(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    groups = use(client.ApisApi, api).get_api_versions()
    networking = use(client.NetworkingV1Api, api).get_api_resources()
    core = use(client.CoreV1Api, api).get_api_resources()

    assert {g.name for g in groups.groups} == {
        "apps",
        "networking.k8s.io",
        "discovery.k8s.io",
        "elbv2.k8s.aws",
        "vpcresources.k8s.aws",
    }
    assert {r.name for r in networking.resources} >= {"ingresses", "ingressclasses"}
    exec_resource = next(r for r in core.resources if r.name == "pods/exec")
    assert exec_resource.verbs == ["create", "get"]
    assert use(client.VersionApi, api).get_code().major == "1"


# Endpoints -----------------------------------------------------------------------------------


def test_endpoint_slice_is_derived_from_pods_with_named_port(
    h0: tuple[KubeApiServer, client.ApiClient],
) -> None:
    _, api = h0
    slices = use(client.DiscoveryV1Api, api).list_namespaced_endpoint_slice(
        "shop", label_selector="kubernetes.io/service-name=catalog"
    )

    assert len(slices.items) == 1
    endpoint_slice = slices.items[0]
    assert endpoint_slice.address_type == "IPv4"
    assert [(p.name, p.port, p.protocol) for p in endpoint_slice.ports] == [("http", 8000, "TCP")]
    rows = sorted(
        (e.addresses[0], e.conditions.ready, e.node_name, e.target_ref.name)
        for e in endpoint_slice.endpoints
    )
    assert rows == [
        ("10.0.11.14", True, "ip-10-0-11-20.ec2.internal", "catalog-58b9c-aa111"),
        ("10.0.12.15", True, "ip-10-0-12-40.ec2.internal", "catalog-58b9c-bb222"),
    ]


def test_endpoints_split_ready_and_not_ready_pods(tmp_path: Path) -> None:
    scenario = load("s2-clb-nginx-keepalive-30s.yaml")
    for obj in scenario["cluster"]:
        if obj["kind"] == "Pod" and obj["metadata"]["name"] == S2_POD:
            obj["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    with running(scenario, tmp_path) as (_, api):
        endpoints = use(client.CoreV1Api, api).read_namespaced_endpoints("frontend", "web")

    subset = endpoints.subsets[0]
    assert [a.ip for a in subset.addresses] == ["10.0.12.77"]
    assert [a.ip for a in subset.not_ready_addresses] == ["10.0.11.31"]
    assert subset.not_ready_addresses[0].target_ref.name == S2_POD
    assert [(p.name, p.port) for p in subset.ports] == [("http", 8080)]


# Exec ----------------------------------------------------------------------------------------


def test_exec_sysctl_value_only(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    stdout, stderr, status = run_exec(
        api, "web", S2_POD, ["sysctl", "-n", "net.ipv4.tcp_keepalive_time"]
    )

    assert (stdout, stderr) == ("45\n", "")
    assert status == {"metadata": {}, "status": "Success"}


def test_exec_with_preloaded_content_returns_stdout(
    s2: tuple[KubeApiServer, client.ApiClient],
) -> None:
    _, api = s2
    output = stream(
        use(client.CoreV1Api, api).connect_get_namespaced_pod_exec,
        S2_POD,
        "web",
        command=["sysctl", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_probes"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )

    assert output == "net.ipv4.tcp_keepalive_time = 45\nnet.ipv4.tcp_keepalive_probes = 9\n"


def test_exec_sysctl_unknown_key_fails_with_255(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    stdout, stderr, status = run_exec(
        api, "web", S2_POD, ["sysctl", "-n", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.nope"]
    )

    assert stdout == "75\n"
    assert stderr == "sysctl: cannot stat /proc/sys/net/ipv4/nope: No such file or directory\n"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "255"}]


def test_exec_cat_proc_sys(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    stdout, _, status = run_exec(
        api, "web", S2_POD, ["cat", "/proc/sys/net/ipv4/tcp_keepalive_probes"]
    )

    assert stdout == "9\n"
    assert status["status"] == "Success"


def test_exec_shell_script_runs_each_command(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    script = (
        "sysctl -n net.ipv4.tcp_keepalive_time && cat /proc/sys/net/ipv4/tcp_keepalive_intvl; "
        "cat /proc/sys/net/ipv4/missing 2>/dev/null || echo none"
    )
    stdout, stderr, status = run_exec(api, "web", S2_POD, ["/bin/sh", "-c", script])

    assert (stdout, stderr) == ("45\n75\nnone\n", "")
    assert status["status"] == "Success"


def test_exec_unknown_command_in_shell_is_127(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    _, stderr, status = run_exec(api, "web", S2_POD, ["sh", "-c", "ss -tin"])

    assert stderr == "sh: ss: not found\n"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "127"}]


def test_exec_in_pod_without_values_fails_like_a_missing_executable(tmp_path: Path) -> None:
    scenario = load("s2-clb-nginx-keepalive-30s.yaml")
    values = {k: v for k, v in scenario["exec"].items() if k != f"web/{S2_POD}"}
    with running(scenario, tmp_path, exec_values=values) as (_, api):
        stdout, stderr, status = run_exec(
            api, "web", S2_POD, ["sysctl", "-n", "net.ipv4.tcp_keepalive_time"]
        )

    assert (stdout, stderr) == ("", "")
    assert status["status"] == "Failure"
    assert (status["reason"], status["code"]) == ("InternalError", 500)
    assert 'exec: "sysctl": executable file not found in $PATH' in status["message"]
    assert "executable file not found" in status["details"]["causes"][0]["message"]


def test_exec_v4_protocol_when_the_client_offers_only_v4(
    s2: tuple[KubeApiServer, client.ApiClient],
) -> None:
    _, api = s2
    ws = stream(
        use(client.CoreV1Api, api).connect_get_namespaced_pod_exec,
        S2_POD,
        "web",
        command=["sysctl", "-n", "net.ipv4.tcp_keepalive_time"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
        _headers={"sec-websocket-protocol": "v4.channel.k8s.io"},
    )
    ws.run_forever(timeout=10)

    assert ws.subprotocol == "v4.channel.k8s.io"
    assert ws.read_stdout() == "45\n"
    assert ws.returncode == 0
    ws.close()


def test_exec_on_missing_pod_is_404_before_upgrade(
    s2: tuple[KubeApiServer, client.ApiClient],
) -> None:
    server, api = s2
    with pytest.raises(ApiException) as caught:
        run_exec(api, "web", "ghost", ["sysctl", "-a"])

    assert "404" in str(caught.value.reason)
    assert ("GET", "/api/v1/namespaces/web/pods/ghost/exec") in server.requests


def test_exec_container_parameter(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    stdout, _, _ = run_exec(
        api, "web", S2_POD, ["sysctl", "-n", "net.ipv4.tcp_keepalive_time"], container="nginx"
    )
    with pytest.raises(ApiException) as caught:
        run_exec(api, "web", S2_POD, ["sysctl", "-a"], container="sidecar")

    assert stdout == "45\n"
    assert "400" in str(caught.value.reason)


def test_host_network_pod_reads_its_node(tmp_path: Path) -> None:
    scenario = load("s2-clb-nginx-keepalive-30s.yaml")
    values = dict(scenario["exec"])
    values["node/ip-10-0-12-40.ec2.internal"] = {"net.ipv4.tcp_keepalive_time": 600}
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="node-reader", namespace="default"),
        spec=client.V1PodSpec(
            node_name="ip-10-0-12-40.ec2.internal",
            host_network=True,
            restart_policy="Never",
            containers=[client.V1Container(name="reader", image="busybox:1.36")],
        ),
    )
    with running(scenario, tmp_path, exec_values=values) as (server, api):
        core = use(client.CoreV1Api, api)
        created = core.create_namespaced_pod("default", pod)
        stdout, _, status = run_exec(
            api, "default", "node-reader", ["sysctl", "-n", "net.ipv4.tcp_keepalive_time"]
        )
        deleted = core.delete_namespaced_pod("node-reader", "default")
        left = [p["metadata"]["name"] for p in server.objects("Pod", "default")]

    assert created.status.phase == "Running"
    assert created.spec.node_name == "ip-10-0-12-40.ec2.internal"
    assert created.status.pod_ip.startswith("10.255.")
    assert [c.type for c in created.status.conditions if c.status == "True"].count("Ready") == 1
    assert (stdout, status["status"]) == ("600\n", "Success")
    assert deleted.metadata.deletion_timestamp is not None
    assert left == []


def test_pod_network_pod_without_values_cannot_read(
    s2: tuple[KubeApiServer, client.ApiClient],
) -> None:
    _, api = s2
    body = {
        "metadata": {"name": "plain"},
        "spec": {"nodeName": S2_NODE, "containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    use(client.CoreV1Api, api).create_namespaced_pod("web", body)
    _, _, status = run_exec(api, "web", "plain", ["sh", "-c", "sysctl -a"])

    assert status["reason"] == "InternalError"
    assert 'exec: "sh": executable file not found in $PATH' in status["message"]


# Writes --------------------------------------------------------------------------------------


def _catalog(server: KubeApiServer) -> dict[str, Any]:
    return next(
        d for d in server.objects("Deployment", "shop") if d["metadata"]["name"] == "catalog"
    )


def test_patch_deployment_dry_run_is_not_stored(
    h0: tuple[KubeApiServer, client.ApiClient],
) -> None:
    server, api = h0
    patch = {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 120}}}}
    result = use(client.AppsV1Api, api).patch_namespaced_deployment(
        "catalog", "shop", patch, dry_run="All"
    )

    assert result.spec.template.spec.termination_grace_period_seconds == 120
    assert _catalog(server)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 90


def test_patch_deployment_merges_containers_by_name(
    h0: tuple[KubeApiServer, client.ApiClient],
) -> None:
    server, api = h0
    command = ["uvicorn", "catalog.main:app", "--timeout-keep-alive", "150"]
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "catalog", "command": command}]}}}
    }
    result = use(client.AppsV1Api, api).patch_namespaced_deployment("catalog", "shop", patch)

    stored = _catalog(server)
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert len(stored["spec"]["template"]["spec"]["containers"]) == 1
    assert container["command"] == command
    assert container["image"] == "registry.example/catalog:7.0"
    assert container["ports"] == [{"name": "web", "containerPort": 8000}]
    assert result.metadata.generation == 2
    assert result.metadata.resource_version == stored["metadata"]["resourceVersion"]


def test_merge_patch_and_json_patch(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    server, api = s2
    core = use(client.CoreV1Api, api)

    core.patch_namespaced_config_map(
        "frontend-nginx",
        "web",
        {"data": {"default.conf": None, "extra.conf": "keepalive_timeout 75s;"}},
        _content_type="application/merge-patch+json",
    )
    core.patch_namespaced_service(
        "frontend", "web", [{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 8081}]
    )

    config_map = server.objects("ConfigMap", "web")[0]
    service = server.objects("Service", "web")[0]
    assert config_map["data"] == {"extra.conf": "keepalive_timeout 75s;"}
    assert service["spec"]["ports"][0]["targetPort"] == 8081
    assert service["spec"]["ports"][0]["nodePort"] == 31380


def test_failed_json_patch_test_is_422_and_changes_nothing(
    s2: tuple[KubeApiServer, client.ApiClient],
) -> None:
    server, api = s2
    operations = [
        {"op": "replace", "path": "/spec/type", "value": "NodePort"},
        {"op": "test", "path": "/spec/selector/app", "value": "backend"},
    ]
    code, body = api_error(
        lambda: use(client.CoreV1Api, api).patch_namespaced_service("frontend", "web", operations)
    )

    assert (code, body["reason"]) == (422, "Invalid")
    assert server.objects("Service", "web")[0]["spec"]["type"] == "LoadBalancer"


def test_patch_in_missing_namespace_is_404(h0: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = h0
    code, body = api_error(
        lambda: use(client.AppsV1Api, api).patch_namespaced_deployment(
            "catalog", "nowhere", {"spec": {"replicas": 3}}
        )
    )

    assert (code, body["message"]) == (404, 'deployments.apps "catalog" not found')


# Fault injection -----------------------------------------------------------------------------


def test_forbid_answers_403_with_a_status(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    server, api = s2
    server.forbid("list", "services", "web")
    core = use(client.CoreV1Api, api)

    code, body = api_error(lambda: core.list_namespaced_service("web"))
    still_readable = core.read_namespaced_service("frontend", "web")

    assert code == 403
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        f'services is forbidden: User "{SANDBOX_USER}" cannot list resource "services" in API '
        'group "" in the namespace "web"'
    )
    assert body["details"] == {"kind": "services"}
    assert still_readable.metadata.name == "frontend"


def test_forbid_a_grouped_resource_at_cluster_scope(
    s2: tuple[KubeApiServer, client.ApiClient],
) -> None:
    server, api = s2
    server.forbid("list", "ingressclasses.networking.k8s.io")

    code, body = api_error(lambda: use(client.NetworkingV1Api, api).list_ingress_class())

    assert code == 403
    assert body["message"] == (
        f'ingressclasses.networking.k8s.io is forbidden: User "{SANDBOX_USER}" cannot list '
        'resource "ingressclasses" in API group "networking.k8s.io" at the cluster scope'
    )


def test_forbid_pod_exec(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    server, api = s2
    server.forbid("create", "pods/exec")

    with pytest.raises(ApiException) as caught:
        run_exec(api, "web", S2_POD, ["sysctl", "-a"])

    assert "403" in str(caught.value.reason)


# Every scenario ------------------------------------------------------------------------------

LISTERS: dict[str, Callable[[client.ApiClient], Any]] = {
    "Namespace": lambda api: use(client.CoreV1Api, api).list_namespace(),
    "Node": lambda api: use(client.CoreV1Api, api).list_node(),
    "Service": lambda api: use(client.CoreV1Api, api).list_service_for_all_namespaces(),
    "Pod": lambda api: use(client.CoreV1Api, api).list_pod_for_all_namespaces(),
    "ConfigMap": lambda api: use(client.CoreV1Api, api).list_config_map_for_all_namespaces(),
    "Endpoints": lambda api: use(client.CoreV1Api, api).list_endpoints_for_all_namespaces(),
    "Event": lambda api: use(client.CoreV1Api, api).list_event_for_all_namespaces(),
    "Deployment": lambda api: use(client.AppsV1Api, api).list_deployment_for_all_namespaces(),
    "Ingress": lambda api: use(client.NetworkingV1Api, api).list_ingress_for_all_namespaces(),
    "IngressClass": lambda api: use(client.NetworkingV1Api, api).list_ingress_class(),
    "EndpointSlice": lambda api: use(
        client.DiscoveryV1Api, api
    ).list_endpoint_slice_for_all_namespaces(),
}


@pytest.mark.parametrize("scenario_file", sorted(p.name for p in SCENARIOS.glob("*.yaml")))
def test_every_scenario_object_reads_through_typed_models(
    scenario_file: str, tmp_path: Path
) -> None:
    scenario = load(scenario_file)
    with running(scenario, tmp_path) as (server, api):
        for kind, lister in LISTERS.items():
            listed = lister(api)
            served = server.objects(kind)
            assert [i.metadata.name for i in listed.items] == [
                o["metadata"]["name"] for o in served
            ], kind
        for obj in scenario["cluster"]:
            names = [o["metadata"]["name"] for o in server.objects(obj["kind"])]
            assert obj["metadata"]["name"] in names


# Older and custom API groups -----------------------------------------------------------------


def test_old_ingress_is_served_as_networking_v1(tmp_path: Path) -> None:
    old = {
        "apiVersion": "extensions/v1beta1",
        "kind": "Ingress",
        "metadata": {"namespace": "shop", "name": "legacy"},
        "spec": {
            "backend": {"serviceName": "fallback", "servicePort": 80},
            "rules": [
                {
                    "http": {
                        "paths": [
                            {"path": "/", "backend": {"serviceName": "web", "servicePort": "http"}}
                        ]
                    }
                }
            ],
        },
    }
    with running({"cluster": [old]}, tmp_path) as (_, api):
        ingress = use(client.NetworkingV1Api, api).read_namespaced_ingress("legacy", "shop")

    assert ingress.api_version == "networking.k8s.io/v1"
    assert ingress.spec.default_backend.service.name == "fallback"
    assert ingress.spec.default_backend.service.port.number == 80
    path = ingress.spec.rules[0].http.paths[0]
    assert (path.path_type, path.backend.service.name) == ("ImplementationSpecific", "web")
    assert path.backend.service.port.name == "http"


def test_target_group_bindings_are_custom_objects(tmp_path: Path) -> None:
    binding = {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"namespace": "shop", "name": "k8s-shop-web-80", "labels": {"app": "web"}},
        "spec": {"serviceRef": {"name": "web", "port": 80}, "targetType": "ip"},
    }
    with running({"cluster": [binding]}, tmp_path) as (_, api):
        custom = use(client.CustomObjectsApi, api)
        listed = custom.list_namespaced_custom_object(
            "elbv2.k8s.aws", "v1beta1", "shop", "targetgroupbindings", label_selector="app=web"
        )
        one = custom.get_namespaced_custom_object(
            "elbv2.k8s.aws", "v1beta1", "shop", "targetgroupbindings", "k8s-shop-web-80"
        )

    assert listed["kind"] == "TargetGroupBindingList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["k8s-shop-web-80"]
    assert one["spec"] == binding["spec"]


def test_list_pages_with_limit_and_continue(s2: tuple[KubeApiServer, client.ApiClient]) -> None:
    _, api = s2
    core = use(client.CoreV1Api, api)
    first = core.list_node(limit=1)
    second = core.list_node(limit=1, _continue=first.metadata._continue)

    assert [n.metadata.name for n in first.items] == ["ip-10-0-11-20.ec2.internal"]
    assert first.metadata.remaining_item_count == 1
    assert [n.metadata.name for n in second.items] == ["ip-10-0-12-40.ec2.internal"]
    assert second.metadata._continue is None
