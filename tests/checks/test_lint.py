"""Offline judging of manifests: scenario files and realistic public-style manifests."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.kube import ref as kube_ref
from checks.lint import (
    LINT_CHECKS,
    YamlRefused,
    lint,
    lint_documents,
    read_yaml,
    read_yaml_documents,
    shape_problems,
)

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "sandbox" / "scenarios").glob("*.yaml"))
FIXTURES = ROOT / "tests" / "fixtures" / "manifests"
LINT_CODES = {code for check in LINT_CHECKS for code in check.codes}
FIXTURE_FILES = sorted(p.name for p in FIXTURES.glob("*.yaml"))
IDLE_KEY = "service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout"
CLASSIC_PROTOCOL_KEY = "service.beta.kubernetes.io/aws-load-balancer-backend-protocol"
CLASSIC_CERT_KEY = "service.beta.kubernetes.io/aws-load-balancer-ssl-cert"
CLASSIC_SSL_PORTS_KEY = "service.beta.kubernetes.io/aws-load-balancer-ssl-ports"
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0d3e5f1a-2b4c-4d6e-8f90-a1b2c3d4e5f6"


def scenario_docs(path: Path) -> list[tuple[str, int, dict[str, Any]]]:
    return [(str(path), 1, yaml.safe_load(path.read_text(encoding="utf-8")))]


def fixture_docs(name: str) -> list[tuple[str, int, dict[str, Any]]]:
    path = FIXTURES / name
    return [(name, 1, d) for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def problem_codes(docs: list[tuple[str, int, dict[str, Any]]]) -> set[str]:
    return {f.finding.code for f in lint_documents(docs)}


# What a case's manifests cannot show although lint judges the code elsewhere: the in-tree
# controller gives a Classic LB TCP listeners unless the Service asks for HTTP, and this
# Service does not; its load balancer's HTTP listener exists only in AWS.
NOT_IN_MANIFESTS = {"s2": {"APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"}}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_lint_shows_what_manifests_can(path: Path) -> None:
    expect = yaml.safe_load(path.read_text(encoding="utf-8"))["expect"]
    codes = problem_codes(scenario_docs(path))
    hidden = NOT_IN_MANIFESTS.get(path.stem.split("-")[0], set())
    assert (set(expect["findings"]) & LINT_CODES) - hidden <= codes
    assert not set(expect["absent"]) & codes


def test_scenario_lint_codes_exactly() -> None:
    found = {p.stem.split("-")[0]: problem_codes(scenario_docs(p)) for p in SCENARIOS}
    assert found["c05"] == {"ANNOTATION_UNKNOWN", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c06"] == {"ANNOTATION_MALFORMED", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c07"] == {"INGRESS_GROUP_CONFLICT", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c09"] == {"ANNOTATION_OUT_OF_RANGE", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c10"] == {"ANNOTATION_WRONG_TARGET", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c11"] == {"IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c12"] == {"ANNOTATION_WRONG_TARGET"}
    assert found["c14"] == {"APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"}
    assert found["c16"] == {"APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"}
    assert found["c17"] == {"APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"}
    assert found["x6"] == {"IDLE_TIMEOUT_NOT_APPLIED"}
    # An http backend protocol gives the Classic LB HTTP listeners, which pool connections.
    assert found["x7"] == {"APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"}
    # Config files found from the container's workingDir: Puma's -C, gunicorn's implicit one.
    assert found["x8"] == {"APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"}
    assert found["x9"] == {"APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"}
    for clean in (
        "h0",
        "s1",
        "s2",
        "s3",
        "s5",
        "c01",
        "c19",
        "c21",
        "c23",
        "c25",
    ):
        assert found[clean] == set(), clean


def test_old_controller_release_explains_listener_attributes_offline() -> None:
    (path,) = [p for p in SCENARIOS if p.stem.startswith("c11")]
    (finding,) = lint_documents(scenario_docs(path))
    assert finding.finding.evidence == (
        "reason: the installed AWS Load Balancer Controller is v2.7.2; "
        "aws-load-balancer-listener-attributes.TCP-9094 needs v2.9.0 or later",
    )
    assert "TcpEstablishedTimeout=4000" in finding.finding.fixes[1].text


def test_scenarios_are_judged_apart() -> None:
    docs = [d for p in SCENARIOS for d in scenario_docs(p)]
    by_source = {}
    for item in lint_documents(docs):
        by_source.setdefault(Path(item.source).stem.split("-")[0], set()).add(item.finding.code)
    assert by_source["c05"] == {"ANNOTATION_UNKNOWN", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert "c09" in by_source and "PROXY_PROTOCOL_MISMATCH" not in by_source["c09"]


@pytest.mark.parametrize(
    "name", ["alb-game-ingress.yaml", "ingress-nginx-aws-nlb.yaml", "eks-workshop-ui-nlb.yaml"]
)
def test_well_formed_public_style_manifests_are_clean(name: str) -> None:
    assert lint_documents(fixture_docs(name)) == []


def test_old_ingress_api_is_noted_and_still_judged() -> None:
    result = lint(fixture_docs("legacy-extensions-ingress.yaml"))
    assert [f.finding.code for f in result.findings] == ["ANNOTATION_UNKNOWN"]
    assert "healthcheck-paht" in result.findings[0].finding.summary
    assert any("extensions/v1beta1" in n.message for n in result.notes)


def test_unrendered_template_variables_are_malformed() -> None:
    findings = lint_documents(fixture_docs("helm-rendered-placeholders.yaml"))
    assert sorted(f.finding.summary.split(" holds ")[1].split(":")[0] for f in findings) == [
        "the unrendered template variable $INBOUND_CIDRS",
        "the unrendered template variable ${APP_NAME}",
    ]


def test_classic_proxy_protocol_against_nginx_default() -> None:
    docs = fixture_docs("kubectl-list-clb-proxy.yaml")
    assert docs[0][2]["kind"] == "List"
    findings = lint_documents(docs)
    assert [f.finding.code for f in findings] == ["PROXY_PROTOCOL_MISMATCH"]


def test_value_mistakes_on_an_lbc_nlb() -> None:
    findings = lint_documents(fixture_docs("nlb-value-mistakes.yaml"))
    assert sorted(f.finding.code for f in findings) == [
        "ANNOTATION_MALFORMED",
        "ANNOTATION_OUT_OF_RANGE",
        "ANNOTATION_OUT_OF_RANGE",
        "IDLE_TIMEOUT_NOT_APPLIED",
    ]
    idle = next(f for f in findings if f.finding.code == "IDLE_TIMEOUT_NOT_APPLIED")
    assert idle.finding.fixes == ()


def test_non_kubernetes_document_is_a_note_not_a_crash() -> None:
    result = lint(fixture_docs("not-kubernetes.yaml"))
    assert result.findings == []
    assert [n.message for n in result.notes] == [
        "not a Kubernetes object (no apiVersion/kind): skipped"
    ]


def test_listener_attributes_with_unknown_controller_release_are_noted() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "feed",
            "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                "service.beta.kubernetes.io/aws-load-balancer-listener-attributes.TCP-80": (
                    "tcp.idle_timeout.seconds=900"
                ),
            },
        },
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
    }
    result = lint([("svc.yaml", 3, service)])
    assert result.findings == []
    (note,) = result.notes
    assert (note.source, note.line) == ("svc.yaml", 3)
    assert "needs AWS Load Balancer Controller v2.9.0 or later" in note.message


def test_ingress_and_service_in_different_documents_are_judged_together() -> None:
    docs = fixture_docs("alb-game-ingress.yaml")
    service = next(d for d in docs if d[2]["kind"] == "Service")
    service[2]["metadata"]["annotations"] = {
        "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": "/ready"
    }
    findings = lint_documents(docs)
    assert [(f.finding.code, f.finding.status.value) for f in findings] == [
        ("ANNOTATION_WRONG_TARGET", "fail")
    ]


def _deployment(command: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "ex/web:1", "command": command}]},
            },
        },
    }


def _classic_service(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]},
    }


def test_keepalive_is_judged_from_a_deployment_template_when_no_pod_is_given() -> None:
    docs = fixture_docs("alb-game-ingress.yaml")
    source, _, deployment = next(d for d in docs if d[2]["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["gunicorn", "-k", "gthread", "--keep-alive", "2", "app:app"]
    findings = lint_documents(docs)
    assert [(f.source, f.finding.code, f.finding.resource) for f in findings] == [
        (source, "APP_KEEPALIVE_BELOW_IDLE_TIMEOUT", "deployment/arcade/tiles")
    ]
    assert "gunicorn closes idle connections after 2 s" in findings[0].finding.summary


@pytest.mark.parametrize(
    ("annotations", "code"),
    [
        ({}, None),
        ({CLASSIC_PROTOCOL_KEY: "tcp"}, None),
        ({CLASSIC_PROTOCOL_KEY: "http"}, "APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"),
        ({CLASSIC_PROTOCOL_KEY: "https"}, None),
        (
            {CLASSIC_PROTOCOL_KEY: "https", CLASSIC_CERT_KEY: CERT},
            "APP_KEEPALIVE_BELOW_IDLE_TIMEOUT",
        ),
        (
            {CLASSIC_PROTOCOL_KEY: "http", CLASSIC_CERT_KEY: CERT, CLASSIC_SSL_PORTS_KEY: "443"},
            "APP_KEEPALIVE_BELOW_IDLE_TIMEOUT",
        ),
        ({CLASSIC_PROTOCOL_KEY: "ssl", CLASSIC_CERT_KEY: CERT}, None),
    ],
)
def test_classic_listener_protocol_follows_the_in_tree_controller(
    annotations: dict[str, str], code: str | None
) -> None:
    """Only HTTP and HTTPS listeners pool backend connections, so only they race Node's 5 s."""
    docs = [
        ("svc.yaml", 1, _classic_service(annotations)),
        ("deploy.yaml", 1, _deployment(["node", "server.js"])),
    ]
    assert problem_codes(docs) == ({code} if code else set())


# ---- shapes the checks rely on ----------------------------------------------------------


def _service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"type": "LoadBalancer", **spec},
    }


@pytest.mark.parametrize(
    ("obj", "messages"),
    [
        (_service(ports=80), ["spec.ports must be a list, not 80"]),
        (_service(ports=[{"port": "http"}]), ["spec.ports[0].port must be an integer, not 'http'"]),
        (_service(ports=[None]), ["spec.ports[0] must be a mapping, not null"]),
        (
            _service(selector="app=web"),
            ["spec.selector must be a mapping of strings, not 'app=web'"],
        ),
        (
            _service(selector={"tier": 3}),
            ["spec.selector must be a mapping of strings, not tier is 3"],
        ),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": ["x"]},
            ["data must be a mapping of strings, not a list"],
        ),
        (
            {"apiVersion": 5, "kind": "Pod", "metadata": "x"},
            [
                "apiVersion must be a string, not 5",
                "metadata must be a mapping, not 'x'",
            ],
        ),
    ],
)
def test_shape_problems_name_the_field_and_what_it_holds(
    obj: dict[str, Any], messages: list[str]
) -> None:
    assert [p.message for p in shape_problems(obj)] == messages


def _named(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, **fields}


def _deployment_with_port(port: int) -> dict[str, Any]:
    container = {"name": "web", "image": "nginx", "ports": [{"containerPort": port}]}
    return _named("Deployment", "web", spec={"template": {"spec": {"containers": [container]}}})


@pytest.mark.parametrize(
    ("obj", "messages"),
    [
        (
            _service(ports=[{"port": 70000}]),
            ["spec.ports[0].port must be a port number 1-65535, not 70000"],
        ),
        (
            _service(type="NodePort", ports=[{"port": 80, "nodePort": 1}]),
            [
                "spec.ports[0].nodePort must be a node port 30000-32767 (the range EKS "
                "allocates them from), not 1"
            ],
        ),
        (
            _service(ports=[{"port": 80, "targetPort": 0}]),
            ["spec.ports[0].targetPort must be a port number 1-65535 or a port name, not 0"],
        ),
        (
            _named("Service", "Bad_Name!"),
            [
                "metadata.name must be a DNS label (at most 63 lowercase letters, digits or "
                "'-', starting with a letter and ending with a letter or digit), not 'Bad_Name!'"
            ],
        ),
        (
            {**_service(), "metadata": {"name": "web", "namespace": "../x"}},
            [
                "metadata.namespace must be a DNS label (at most 63 lowercase letters, digits "
                "or '-', starting and ending with a letter or digit), not '../x'"
            ],
        ),
        ({**_service(), "metadata": {}}, ["metadata.name is missing"]),
        ({**_service(), "metadata": {"name": None}}, ["metadata.name is missing"]),
        ({"apiVersion": "v1", "kind": "Pod"}, ["metadata.name is missing"]),
        (
            _named("ConfigMap", "a_b"),
            [
                "metadata.name must be a DNS subdomain (at most 253 lowercase letters, digits, "
                "'-' or '.', each part between dots starting and ending with a letter or "
                "digit), not 'a_b'"
            ],
        ),
        (
            _named("Namespace", "web.shop"),
            [
                "metadata.name must be a DNS label (at most 63 lowercase letters, digits or "
                "'-', starting and ending with a letter or digit), not 'web.shop'"
            ],
        ),
        (
            _deployment_with_port(0),
            [
                "spec.template.spec.containers[0].ports[0].containerPort must be a port number "
                "1-65535, not 0"
            ],
        ),
        (
            _named(
                "Ingress",
                "web",
                spec={"defaultBackend": {"service": {"name": "web", "port": {"number": 0}}}},
            ),
            ["spec.defaultBackend.service.port.number must be a port number 1-65535, not 0"],
        ),
        (
            {"apiVersion": "v1", "kind": "List", "items": "hello"},
            ["items must be a list, not 'hello'"],
        ),
    ],
    ids=[
        "port",
        "node-port",
        "target-port",
        "service-name",
        "namespace",
        "no-name",
        "null-name",
        "no-metadata",
        "configmap-name",
        "namespace-name",
        "container-port",
        "ingress-port",
        "list-items",
    ],
)
def test_values_the_api_server_refuses_are_shape_problems(
    obj: dict[str, Any], messages: list[str]
) -> None:
    assert [p.message for p in shape_problems(obj)] == messages


@pytest.mark.parametrize(
    "obj",
    [
        _service(type="NodePort", ports=[{"port": 80, "nodePort": 30080, "targetPort": "http"}]),
        _service(ports=[{"port": 65535, "nodePort": 0, "targetPort": 8080}]),
        {**_service(), "metadata": {"generateName": "web-", "namespace": "shop"}},
        _named("ConfigMap", "kube-root-ca.crt"),
        _named("Node", "ip-10-0-1-20.ec2.internal"),
        _named("ClusterRole", "system:controller:web"),
        _named("Namespace", "shop"),
    ],
    ids=["node-port", "port-range", "generate-name", "dots", "node", "other-kind", "namespace"],
)
def test_values_the_api_server_takes_are_no_shape_problems(obj: dict[str, Any]) -> None:
    assert shape_problems(obj) == []


def test_well_formed_objects_have_no_shape_problems() -> None:
    objects = [o for p in SCENARIOS for o in yaml.safe_load(p.read_text())["cluster"]]
    objects += [d for name in FIXTURE_FILES for _, _, d in fixture_docs(name)]
    assert [(kube_ref(o), shape_problems(o)) for o in objects if shape_problems(o)] == []


def test_object_of_the_wrong_shape_is_not_judged_and_the_rest_are() -> None:
    broken = _service(ports=80)
    broken["metadata"]["annotations"] = {IDLE_KEY: "9999"}
    fine = _service(ports=[{"port": 80}])
    fine["metadata"] = {"name": "api", "namespace": "shop", "annotations": {IDLE_KEY: "9999"}}
    result = lint([("a.yaml", 1, broken), ("a.yaml", 9, fine)])
    assert {f.finding.resource for f in result.findings} == {"service/shop/api"}
    (note,) = result.notes
    assert (note.line, note.invalid) == (1, True)
    assert note.message == (
        "Service shop/web: spec.ports must be a list, not 80; the API server rejects this "
        "object, so it was not judged"
    )


def test_non_string_annotation_value_is_malformed_and_the_key_is_left_out() -> None:
    service = _service(ports=[{"port": 80}])
    service["metadata"]["annotations"] = {IDLE_KEY: 120, "a": True}
    result = lint([("s.yaml", 1, service)])
    assert sorted((f.finding.code, f.finding.evidence) for f in result.findings) == [
        ("ANNOTATION_MALFORMED", ("annotation a: true (true/false, not a string)",)),
        ("ANNOTATION_MALFORMED", (f"annotation {IDLE_KEY}: 120 (a number, not a string)",)),
    ]
    assert result.notes == []


def test_a_check_that_fails_becomes_an_invalid_note(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(snapshot: object) -> list[object]:
        raise RuntimeError("boom")

    failing = dataclasses.replace(LINT_CHECKS[0], judge=explode)
    monkeypatch.setattr("checks.lint.LINT_CHECKS", (failing, *LINT_CHECKS[1:]))
    service = _service(ports=[{"port": 80}])
    service["metadata"]["annotations"] = {IDLE_KEY: "9999"}
    result = lint([("s.yaml", 4, service)])
    assert [f.finding.code for f in result.findings] == [
        "ANNOTATION_OUT_OF_RANGE",
        "IDLE_TIMEOUT_NOT_APPLIED",
    ]
    (note,) = result.notes
    assert (note.source, note.line, note.invalid) == ("s.yaml", 4, True)
    assert note.message.startswith(
        f"service/shop/web: the check {failing.name} could not judge it (RuntimeError: boom)"
    )


# ---- reading YAML -----------------------------------------------------------------------


def test_read_yaml_keeps_lines_and_walks_an_alias_once() -> None:
    text = "a: &x {k: v}\nb: *x\nc:\n  - {d: 1}\n"
    ((obj, lines),) = read_yaml(text)
    assert obj["a"] is obj["b"]
    assert (lines[id(obj)], lines[id(obj["a"])], lines[id(obj["c"][0])]) == (1, 1, 4)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a: 1\nb: \x00\n", 2, "not valid YAML (control character #x0000"),
        ("a: &a [1]\n" + "".join(f"b{i}: [*a]\n" for i in range(501)), 502, "too many aliases"),
        ("x: " + "[" * 101 + "]" * 101 + "\n", 1, "nested too deeply (more than 100 levels"),
        ("a: &a {b: *a}\n", 1, "the alias *a refers to a node that contains it"),
        (
            "a: 1\nb: " + "9" * 5000 + "\n",
            2,
            "the number 99999999999999999999\u2026 (5,000 digits)",
        ),
    ],
    ids=["nul", "aliases", "depth", "self", "long-number"],
)
def test_read_yaml_refuses_with_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(YamlRefused) as caught:
        read_yaml(text)
    assert caught.value.line == line
    assert caught.value.reason.startswith(reason)


def test_read_yaml_refuses_a_key_given_twice_and_names_both_lines() -> None:
    text = "apiVersion: v1\nkind: Service\napiVersion: v1\nkind: Pod\n"
    with pytest.raises(YamlRefused) as caught:
        read_yaml(text)
    assert caught.value.line == 3
    assert caught.value.reason == (
        "the keys `apiVersion` and `kind` are given twice in one mapping (`apiVersion` first at "
        "line 1): YAML keeps only the last value, and kubectl refuses the file; two objects run "
        "together: put a line `---` between them"
    )


def test_read_yaml_documents_reports_keys_given_twice_and_allows_merged_ones() -> None:
    text = "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  x: 3\n---\ndata:\n  a: 1\n  b: 2\n  a: 3\n"
    merged, repeated = read_yaml_documents(text)
    assert merged.duplicates == [] and merged.obj["merged"] == {"x": 3, "y": 2}
    (duplicate,) = repeated.duplicates
    assert (duplicate.line, duplicate.keys, duplicate.first_line) == (9, ("a",), 7)
    assert not duplicate.objects_run_together


def test_read_yaml_accepts_the_limits_themselves() -> None:
    nested = "x: " + "[" * 99 + "]" * 99 + "\n"
    aliased = "a: &a [1]\n" + "".join(f"b{i}: *a\n" for i in range(500))
    assert read_yaml(nested)[0][0]["x"] == _nest(99)
    assert len(read_yaml(aliased)[0][0]) == 501


def _nest(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


# ---- fuzz: manifests with fields of the wrong type never crash the run --------------------

_ANY_VALUE = st.one_of(
    st.integers(-5, 70000),
    st.text(max_size=6),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=4), st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
    st.lists(st.dictionaries(st.text(max_size=4), st.integers(), max_size=2), max_size=2),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, child in items:
        found.extend(_paths(child, (*prefix, key)))
    return found


def _bundled_worlds() -> list[list[dict[str, Any]]]:
    worlds = [yaml.safe_load(p.read_text())["cluster"] for p in SCENARIOS]
    worlds += [[d for _, _, d in fixture_docs(name)] for name in FIXTURE_FILES]
    return worlds


BUNDLED_WORLDS = _bundled_worlds()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fields_of_the_wrong_type_never_crash_the_lint(data: st.DataObject) -> None:
    world = copy.deepcopy(data.draw(st.sampled_from(BUNDLED_WORLDS)))
    for _ in range(data.draw(st.integers(1, 3))):
        obj = data.draw(st.sampled_from(world))
        path = data.draw(st.sampled_from(_paths(obj)))
        holder = obj
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = data.draw(_ANY_VALUE)
    result = lint([("fuzz.yaml", 1, obj) for obj in world])
    assert [n.message for n in result.notes if "bug in eks504" in n.message] == []


def _scenario(prefix: str) -> Path:
    return next(p for p in SCENARIOS if p.stem.startswith(prefix + "-"))


def test_group_members_asks_get_the_group_fix_not_one_that_repeats_their_own_value() -> None:
    findings = lint_documents(scenario_docs(_scenario("c07")))
    not_applied = [f.finding for f in findings if f.finding.code == "IDLE_TIMEOUT_NOT_APPLIED"]
    assert len(not_applied) == 3
    assert all(f.fixes == () for f in not_applied)
    [conflict] = [f.finding for f in findings if f.finding.code == "INGRESS_GROUP_CONFLICT"]
    assert len(conflict.fixes) == 1


def test_ask_the_controller_is_too_old_for_gets_the_upgrade_with_its_crds() -> None:
    [finding] = [f.finding for f in lint_documents(scenario_docs(_scenario("c11")))]
    upgrade, conntrack = finding.fixes
    assert upgrade.title == "Upgrade the AWS Load Balancer Controller to v2.9.0 or later"
    crds = upgrade.text.index("kubectl apply -k")
    assert "aws-load-balancer-controller/crds" in upgrade.text
    assert crds < upgrade.text.index("helm upgrade aws-load-balancer-controller")
    # 4000 s is above the 350 s the targets' connection tracking may keep idle flows.
    assert "TcpEstablishedTimeout=4000" in conntrack.text
