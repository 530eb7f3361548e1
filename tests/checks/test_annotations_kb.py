"""The annotation knowledge base and the value parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.annotations.kb import (
    ROLES,
    knowledge_base,
    load,
    parse_version,
)
from checks.annotations.values import (
    key_syntax_error,
    literal_quotes,
    parse_bool,
    parse_int,
    parse_string_map,
    placeholder,
    read_string_map,
)

DOCUMENTED = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "manifests"
    / ("documented-annotation-keys.txt")
)


def documented_keys() -> list[str]:
    lines = DOCUMENTED.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_documented_key_list_is_not_empty() -> None:
    assert len(documented_keys()) > 120


@pytest.mark.parametrize("key", documented_keys())
def test_every_documented_key_is_in_the_knowledge_base(key: str) -> None:
    kb = knowledge_base()
    if key.endswith("."):
        spec = kb.lookup(key + "TCP-443")
        assert spec is not None and spec.pattern and spec.key == key
    else:
        spec = kb.lookup(key)
        assert spec is not None and spec.key == key


def test_missing_documented_key_is_noticed(tmp_path: Path) -> None:
    original = (Path(__file__).resolve().parents[2] / "checks/annotations/known.yaml").read_text()
    trimmed = "\n".join(
        line
        for line in original.splitlines()
        if "alb.ingress.kubernetes.io/ssl-policy," not in line
    )
    reduced = tmp_path / "known.yaml"
    reduced.write_text(trimmed)
    kb = load(reduced)
    missing = [k for k in documented_keys() if not k.endswith(".") and kb.lookup(k) is None]
    assert missing == ["alb.ingress.kubernetes.io/ssl-policy"]


def test_every_key_names_known_roles_and_a_value_type() -> None:
    types = {"string", "boolean", "integer", "stringList", "stringMap", "json", "enum", "port"}
    for spec in knowledge_base().specs:
        assert set(spec.read_by) <= set(ROLES), spec.key
        assert spec.value.type in types, spec.key
        if spec.value.type == "enum":
            assert spec.value.values, spec.key
        if spec.attributes:
            assert knowledge_base().table(spec.attributes) is not None, spec.key


def test_idle_timeout_limits_per_load_balancer_type() -> None:
    kb = knowledge_base()
    clb = kb.lookup("service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout")
    assert clb is not None and clb.value.range == (1, 4000) and clb.read_by == ("clb",)
    alb = kb.table("alb")
    assert alb is not None
    alb_idle = alb.get("idle_timeout.timeout_seconds")
    assert alb_idle is not None and alb_idle.range == (1, 4000)
    nlb = kb.table("nlb_listener")
    assert nlb is not None
    nlb_idle = nlb.get("tcp.idle_timeout.seconds")
    assert nlb_idle is not None and nlb_idle.range == (60, 6000)


def test_listener_attributes_need_v2_9() -> None:
    spec = knowledge_base().lookup(
        "service.beta.kubernetes.io/aws-load-balancer-listener-attributes.TCP-80"
    )
    assert spec is not None and spec.since == (2, 9, 0)


def test_health_check_timeout_range_depends_on_load_balancer_type() -> None:
    spec = knowledge_base().lookup(
        "service.beta.kubernetes.io/aws-load-balancer-healthcheck-timeout"
    )
    assert spec is not None
    assert spec.value.range_for("classic") == (2, 60)
    assert spec.value.range_for("network") == (2, 120)


def test_lbc_alternative_service_prefix_maps_to_the_main_key() -> None:
    spec = knowledge_base().lookup("service.kubernetes.io/aws-load-balancer-scheme")
    assert spec is not None and spec.key == "service.beta.kubernetes.io/aws-load-balancer-scheme"


def test_nearest_key_for_a_typo() -> None:
    assert knowledge_base().nearest("alb.ingress.kubernetes.io/healthcheck-paht") == (
        "alb.ingress.kubernetes.io/healthcheck-path"
    )
    assert knowledge_base().nearest("alb.ingress.kubernetes.com/target-type") == (
        "alb.ingress.kubernetes.io/target-type"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("v2.7.2", (2, 7, 2)), ("2.9", (2, 9, 0)), ("v2.10.1-rc1", (2, 10, 1)), ("latest", None)],
)
def test_parse_version(text: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("False", False), ("1", True), ("yes", None), ('"true"', None)],
)
def test_parse_bool_as_go_does(raw: str, expected: bool | None) -> None:
    assert parse_bool(raw) is expected


def test_parse_int_rejects_units_and_spaces() -> None:
    assert parse_int("300") == 300
    assert parse_int("-5") == -5
    assert parse_int("300s") is None
    assert parse_int(" 300") is None


def test_colon_pairs_are_rejected_and_remembered() -> None:
    parsed = parse_string_map("idle_timeout.timeout_seconds: 300", escaped=False)
    assert not parsed.ok
    assert parsed.colon_pairs == (("idle_timeout.timeout_seconds", "300"),)


def test_older_splitter_drops_a_trailing_comma_newer_keeps_it_in_the_value() -> None:
    raw = "idle_timeout.timeout_seconds=600,"
    assert parse_string_map(raw, escaped=False).pairs == {"idle_timeout.timeout_seconds": "600"}
    assert parse_string_map(raw, escaped=True).pairs == {"idle_timeout.timeout_seconds": "600,"}


def test_older_splitter_keeps_spaces_around_equals() -> None:
    assert parse_string_map("a = 1", escaped=False).pairs == {"a ": " 1"}
    assert parse_string_map("a = 1", escaped=True).pairs == {"a": "1"}


def test_newer_splitter_reads_escaped_commas() -> None:
    parsed = parse_string_map(r"k1=a\,b,k2=c", escaped=True)
    assert parsed.pairs == {"k1": "a,b", "k2": "c"}


def test_unknown_release_with_diverging_readings_is_doubtful() -> None:
    reading = read_string_map("idle_timeout.timeout_seconds=600,", None, (2, 14, 0))
    assert reading.doubt.startswith("controller releases read this value differently")
    same = read_string_map("a=1,b=2", None, (2, 14, 0))
    assert same.doubt == "" and same.parse.pairs == {"a": "1", "b": "2"}
    known = read_string_map("idle_timeout.timeout_seconds=600,", (2, 7, 2), (2, 14, 0))
    assert known.doubt == "" and known.parse.pairs == {"idle_timeout.timeout_seconds": "600"}


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ("${APP_NAME}", "${APP_NAME}"),
        ("$INBOUND_CIDRS", "$INBOUND_CIDRS"),
        ("{{ .Values.scheme }}", "{{ .Values.scheme }}"),
        ("10.0.0.0/8", None),
        ("internet-facing", None),
    ],
)
def test_placeholder(raw: str, found: str | None) -> None:
    assert placeholder(raw) == found


def test_literal_quotes() -> None:
    assert literal_quotes('"300"')
    assert literal_quotes("'true'")
    assert not literal_quotes("300")


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("alb.ingress.kubernetes.io/scheme", False),
        ("alb.ingress.kubernetes.io/scheme:", True),
        ("alb.ingress.kubernetes.io/ scheme", True),
        ("Alb.Ingress.kubernetes.io/scheme", True),
        ("alb.ingress.kubernetes.io//scheme", True),
    ],
)
def test_key_syntax(key: str, bad: bool) -> None:
    assert (key_syntax_error(key) is not None) is bad
