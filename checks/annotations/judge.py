"""Judges every load-balancer annotation of a snapshot's Service and Ingresses against the
knowledge base, once; the rule modules each report the codes they own.

An :class:`Issue` is one problem with one key (or one attribute inside a key's value). Where
the key plainly asks for an idle timeout, ``idle_seconds`` carries the number asked, so the
idle-timeout check can say why that ask is not in effect.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from checks import kube, numbers
from checks.annotations import roles
from checks.annotations.kb import (
    ALB_PREFIX,
    ROLE_WORDS,
    SERVICE_PREFIX,
    AnnotationSpec,
    AttributeTable,
    KnowledgeBase,
    ValueSpec,
    Version,
    format_version,
    is_load_balancer_key,
    knowledge_base,
)
from checks.annotations.values import (
    json_error,
    key_syntax_error,
    literal_quotes,
    parse_bool,
    parse_int,
    placeholder,
    read_string_map,
)
from checks.annotations_idle import (
    ALB_IDLE_KEY,
    ALB_LB_ATTRIBUTES,
    CLB_IDLE_TIMEOUT,
    NLB_IDLE_KEY,
    NLB_LISTENER_ATTRIBUTES_PREFIX,
)
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.snapshot import KubeObject, Snapshot

logger = logging.getLogger(__name__)

UNKNOWN = "ANNOTATION_UNKNOWN"
MALFORMED = "ANNOTATION_MALFORMED"
OUT_OF_RANGE = "ANNOTATION_OUT_OF_RANGE"
WRONG_TARGET = "ANNOTATION_WRONG_TARGET"

# A Service-of-type-LoadBalancer key and the ALB key that says the same for a target group.
ALB_EQUIVALENT = {
    "aws-load-balancer-healthcheck-path": "healthcheck-path",
    "aws-load-balancer-healthcheck-port": "healthcheck-port",
    "aws-load-balancer-healthcheck-protocol": "healthcheck-protocol",
    "aws-load-balancer-healthcheck-interval": "healthcheck-interval-seconds",
    "aws-load-balancer-healthcheck-timeout": "healthcheck-timeout-seconds",
    "aws-load-balancer-healthcheck-healthy-threshold": "healthy-threshold-count",
    "aws-load-balancer-healthcheck-unhealthy-threshold": "unhealthy-threshold-count",
    "aws-load-balancer-healthcheck-success-codes": "success-codes",
    "aws-load-balancer-backend-protocol": "backend-protocol",
    "aws-load-balancer-target-group-attributes": "target-group-attributes",
    "aws-load-balancer-target-node-labels": "target-node-labels",
}
_LISTENER_SUFFIX = re.compile(r"(TCP|UDP|TCP_UDP|TLS|HTTP|HTTPS|QUIC|TCP_QUIC)-([0-9]+)")
_SECONDS = re.compile(r"\s*['\"]?\s*([0-9]+)\s*s?\s*['\"]?\s*")


@dataclass(frozen=True)
class Issue:
    code: str
    status: Status
    obj: KubeObject
    key: str
    summary: str
    evidence: tuple[str, ...] = ()
    fixes: tuple[Fix, ...] = ()
    idle_seconds: int | None = None
    reason: str = ""

    def finding(self, severity: Severity) -> Finding:
        return Finding(
            self.code,
            self.status,
            severity,
            self.summary,
            kube.ref(self.obj),
            self.evidence,
            self.fixes,
        )


@dataclass
class Context:
    """One object and who reads it."""

    obj: KubeObject
    is_ingress: bool
    roles: set[str]
    lb_type: str | None  # classic | network | application
    alb_backend: bool | None  # None: could not tell (offline, no Ingress seen)
    other_controller: bool = False
    service_ports: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class Evaluation:
    issues: tuple[Issue, ...]
    judged: tuple[tuple[KubeObject, str], ...]  # every (object, key) looked at
    version: Version | None
    # (object, key, since): keys the installed controller predates
    too_new: tuple[tuple[KubeObject, str, Version], ...]


def contexts(snapshot: Snapshot) -> list[Context]:
    found: list[Context] = []
    service = snapshot.service
    if service is not None:
        own = roles.service_lb(snapshot, service)
        backend_of = roles.alb_ingresses_of(snapshot, service)
        alb_backend: bool | None = bool(backend_of)
        if not backend_of and roles.offline(snapshot):
            alb_backend = None
        role_set = {own.role} if own is not None and own.role else set()
        if backend_of:
            role_set.add("alb-backend")
        found.append(
            Context(
                obj=service,
                is_ingress=False,
                roles=role_set,
                lb_type=own.type if own is not None else ("application" if backend_of else None),
                alb_backend=alb_backend,
                other_controller=own is not None and own.controller == "other",
                service_ports=[
                    p for p in kube.spec(service).get("ports") or [] if isinstance(p, dict)
                ],
            )
        )
    for ingress in snapshot.ingresses:
        alb = roles.is_alb_ingress(ingress, snapshot.ingress_classes)
        found.append(
            Context(
                obj=ingress,
                is_ingress=True,
                roles={"alb-ingress"} if alb is not False else set(),
                lb_type="application",
                alb_backend=None,
                other_controller=alb is False,
            )
        )
    return found


def findings_for(snapshot: Snapshot, code: str, severity: Severity, clean: str) -> list[Finding]:
    """The issues of one code, or one pass naming the objects judged; ``clean`` is the pass
    summary with ``{objects}`` where their names go."""
    evaluation = evaluate(snapshot)
    findings = [i.finding(severity) for i in evaluation.issues if i.code == code]
    if findings or not evaluation.judged:
        return findings
    objects = sorted({kube.ref(obj) for obj, _ in evaluation.judged})
    summary = clean.format(objects=", ".join(objects))
    return [Finding(code, Status.PASS, severity, summary, objects[0])]


def evaluate(snapshot: Snapshot, kb: KnowledgeBase | None = None) -> Evaluation:
    kb = kb or knowledge_base()
    version = roles.controller_version(snapshot)
    issues: list[Issue] = []
    judged: list[tuple[KubeObject, str]] = []
    too_new: list[tuple[KubeObject, str, Version]] = []
    for ctx in contexts(snapshot):
        for key, value in sorted(kube.annotations(ctx.obj).items()):
            if not is_load_balancer_key(key):
                continue
            judged.append((ctx.obj, key))
            found = _judge_key(kb, ctx, key, value, version)
            issues.extend(found)
            spec = kb.lookup(key)
            if (
                spec is not None
                and spec.since is not None
                and version is not None
                and version < spec.since
                and not found
            ):
                too_new.append((ctx.obj, key, spec.since))
    logger.debug(
        "annotations: %d key(s) judged, %d issue(s), controller %s",
        len(judged),
        len(issues),
        format_version(version) if version else "unknown",
    )
    return Evaluation(tuple(issues), tuple(judged), version, tuple(too_new))


def _judge_key(
    kb: KnowledgeBase, ctx: Context, key: str, value: str, version: Version | None
) -> list[Issue]:
    obj = ctx.obj
    syntax = key_syntax_error(key)
    if syntax is not None:
        near = kb.nearest(key.strip().rstrip(":").strip())
        return [
            Issue(
                MALFORMED,
                Status.FAIL,
                obj,
                key,
                f"{kube.ref(obj)} has the annotation key {key!r}, which is not a valid key "
                f"({syntax}); no controller reads it.",
                (f"annotation {key!r}: {value!r}",) + ((f"did you mean {near}?",) if near else ()),
                _rename_fix(obj, key, near, value) if near else (),
                idle_seconds=_idle_from_unknown(key, value),
                reason=f"the key is not valid ({syntax})",
            )
        ]
    spec = kb.lookup(key)
    if spec is None:
        seconds = _idle_from_unknown(key, value)
        home = _idle_home(ctx, seconds) if seconds is not None else None
        near = home[0] if home else kb.nearest(key)
        hint = f" Did you mean {near}?" if near else ""
        return [
            Issue(
                UNKNOWN,
                Status.FAIL,
                obj,
                key,
                f"{kube.ref(obj)} has the annotation {key}, which no AWS controller reads: "
                f"it is silently ignored.{hint}",
                (f"annotation {key}: {value!r}",)
                + ((f"nearest known key: {near}",) if near else ()),
                _rename_fix(obj, key, near, home[1] if home else value) if near else (),
                idle_seconds=seconds,
                reason=f"{key} is not a key any controller reads"
                + (f" (the nearest is {near})" if near else ""),
            )
        ]
    wrong = _wrong_target(ctx, spec, key, value)
    if wrong is not None:
        return [] if not wrong.summary else [wrong]
    return _judge_value(kb, ctx, spec, key, value, version)


# ---- where a key stands ----------------------------------------------------------------


def _wrong_target(ctx: Context, spec: AnnotationSpec, key: str, value: str) -> Issue | None:
    """An issue when ``key`` is not read on this object; an issue with an empty summary
    when whether it is read cannot be told (skip the key); None when it is read."""
    obj = ctx.obj
    ref = kube.ref(obj)
    if ctx.roles & set(spec.read_by):
        return None
    skip = Issue(WRONG_TARGET, Status.PASS, obj, key, "")
    where = "; ".join(ROLE_WORDS[r] for r in spec.read_by)
    idle = _idle_from_misplaced(key, value)
    if ctx.is_ingress:
        if ctx.other_controller and key.startswith(ALB_PREFIX):
            return Issue(
                WRONG_TARGET,
                Status.WARN,
                obj,
                key,
                f"{ref} is served by another ingress controller (class "
                f"{roles.ingress_class(obj) or 'default'}), so the AWS Load Balancer "
                f"Controller never reads {key}.",
                (f"annotation {key}: {value!r}", f"{key} is read on: {where}"),
                idle_seconds=idle,
                reason="the Ingress is not of an ALB class",
            )
        return Issue(
            WRONG_TARGET,
            Status.FAIL,
            obj,
            key,
            f"{key} is a Service annotation; on {ref} no controller reads it.",
            (f"annotation {key}: {value!r}", f"{key} is read on: {where}"),
            idle_seconds=idle,
            reason="a Service key placed on an Ingress",
        )
    if ctx.other_controller and not key.startswith(ALB_PREFIX):
        return skip
    if key.startswith(ALB_PREFIX):
        if "alb-backend" in spec.read_by and ctx.alb_backend is None:
            return skip
        if "alb-backend" in spec.read_by:
            reason = "no ALB Ingress routes to this Service"
        else:
            reason = "the controller reads it only from the Ingress, never from a Service"
        return Issue(
            WRONG_TARGET,
            Status.FAIL if ctx.alb_backend or "alb-backend" not in spec.read_by else Status.WARN,
            obj,
            key,
            f"{key} on {ref} is not read: {reason}.",
            (f"annotation {key}: {value!r}", f"{key} is read on: {where}"),
            _move_to_ingress_fix(key, value) if "alb-ingress" in spec.read_by else (),
            idle_seconds=idle,
            reason=reason,
        )
    # A Service-of-type-LoadBalancer key.
    if not ctx.roles or ctx.roles == {"alb-backend"}:
        service_type = kube.spec(obj).get("type", "ClusterIP")
        if ctx.alb_backend:
            name = key.removeprefix(SERVICE_PREFIX)
            equivalent = ALB_EQUIVALENT.get(name)
            evidence = [
                f"annotation {key}: {value!r}",
                f"{ref} is of type {service_type} and the backend of an ALB Ingress; ALB "
                "target groups take their settings from alb.ingress.kubernetes.io/ keys",
            ]
            fixes: tuple[Fix, ...] = ()
            if equivalent:
                alb_key = ALB_PREFIX + equivalent
                evidence.append(f"the ALB key for this setting: {alb_key}")
                fixes = _rename_fix(obj, key, alb_key, _alb_value(equivalent, value))
            return Issue(
                WRONG_TARGET,
                Status.FAIL,
                obj,
                key,
                f"{ref} is only an ALB backend, so {key} configures nothing: the AWS Load "
                "Balancer Controller never reads service.beta.kubernetes.io/ keys for an "
                "ALB target group.",
                tuple(evidence),
                fixes,
                idle_seconds=idle,
                reason="a Service-of-type-LoadBalancer key on a Service that is only an ALB "
                "backend",
            )
        return Issue(
            WRONG_TARGET,
            Status.WARN,
            obj,
            key,
            f"{ref} is of type {service_type}, so it has no load balancer of its own and "
            f"{key} configures nothing.",
            (f"annotation {key}: {value!r}", f"{key} is read on: {where}"),
            idle_seconds=idle,
            reason=f"the Service is of type {service_type}",
        )
    words = ", ".join(ROLE_WORDS[r] for r in sorted(ctx.roles))
    if spec.read_by == ("clb",):
        why = "it is read only for a Classic LB"
    elif set(spec.read_by) <= {"nlb-lbc"}:
        why = "only the AWS Load Balancer Controller reads it, and it does not manage this Service"
    else:
        why = f"it is read only on {where}"
    return Issue(
        WRONG_TARGET,
        Status.FAIL,
        obj,
        key,
        f"{key} does nothing on {ref}, which is {words}: {why}.",
        (f"annotation {key}: {value!r}", f"{key} is read on: {where}"),
        _idle_relocation_fix(ctx, key, idle),
        idle_seconds=idle,
        reason=f"{why}",
    )


# ---- what a value says -----------------------------------------------------------------


def _judge_value(
    kb: KnowledgeBase,
    ctx: Context,
    spec: AnnotationSpec,
    key: str,
    value: str,
    version: Version | None,
) -> list[Issue]:
    obj = ctx.obj
    ref = kube.ref(obj)
    evidence = (f"annotation {key}: {value!r}",)
    unrendered = placeholder(value)
    if unrendered is not None:
        return [
            Issue(
                MALFORMED,
                Status.FAIL,
                obj,
                key,
                f"{key} on {ref} holds the unrendered template variable {unrendered}: the "
                "controller reads it literally.",
                evidence,
                reason=f"the value holds the unrendered {unrendered}",
            )
        ]
    issues: list[Issue] = []
    if spec.pattern and key.startswith(NLB_LISTENER_ATTRIBUTES_PREFIX):
        issues.extend(_listener_port(ctx, key, value))
    kind = spec.value.type
    if kind == "stringMap":
        return issues + _judge_map(kb, ctx, spec, key, value, version)
    if kind in ("boolean", "integer", "enum", "port") and literal_quotes(value):
        return [
            Issue(
                MALFORMED,
                Status.FAIL,
                obj,
                key,
                f"{key} on {ref} is {value!r}, with the quotes inside the value; the "
                "controller cannot read it.",
                evidence,
                _value_fix(obj, key, value.strip()[1:-1]),
                idle_seconds=_seconds(value) if spec.value.idle else None,
                reason="the value carries literal quotes",
            )
        ]
    if kind in ("string", "stringList") and literal_quotes(value):
        return [
            Issue(
                MALFORMED,
                Status.WARN,
                obj,
                key,
                f"{key} on {ref} is {value!r}: the quotes are part of the value the controller "
                "passes to AWS.",
                evidence,
                _value_fix(obj, key, value.strip()[1:-1]),
                reason="the value carries literal quotes",
            )
        ]
    problem = _scalar_problem(spec.value, value.strip() if kind == "enum" else value, ctx.lb_type)
    if problem is not None:
        code, text, fixed = problem
        issues.append(
            Issue(
                code,
                Status.FAIL,
                obj,
                key,
                f"{key} on {ref} {text}.",
                evidence,
                _value_fix(obj, key, fixed) if fixed is not None else (),
                idle_seconds=_seconds(value) if spec.value.idle else None,
                reason=text,
            )
        )
    elif kind == "json":
        error = json_error(value)
        if error:
            issues.append(
                Issue(
                    MALFORMED,
                    Status.FAIL,
                    obj,
                    key,
                    f"{key} on {ref} is not valid JSON ({error}).",
                    evidence,
                    reason="the value is not valid JSON",
                )
            )
    if key == roles.GROUP_KEY and not re.match(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$", value):
        issues.append(
            Issue(
                MALFORMED,
                Status.FAIL,
                obj,
                key,
                f"{key} on {ref} is {value!r}: a group name is at most 63 lower-case letters, "
                "digits, '-' or '.', starting and ending with a letter or digit.",
                evidence,
            )
        )
    return issues


def _scalar_problem(
    value_spec: ValueSpec, raw: str, lb_type: str | None
) -> tuple[str, str, str | None] | None:
    """(code, what is wrong, a corrected value or None) for a scalar value."""
    kind = value_spec.type
    if kind == "boolean" and parse_bool(raw) is None:
        return MALFORMED, f"is {raw!r}, not true or false", None
    if kind == "enum" and raw not in value_spec.values:
        allowed = " | ".join(value_spec.values)
        return MALFORMED, f"is {raw!r}, not one of {allowed}", None
    if kind == "port":
        if raw == "traffic-port":
            return None
        number = parse_int(raw)
        if number is None:
            return MALFORMED, f"is {raw!r}, not a port number or traffic-port", None
        if not 1 <= number <= 65535:
            return OUT_OF_RANGE, f"is {number}, outside the port range 1-65535", None
        return None
    if kind == "integer":
        number = parse_int(raw)
        if number is None:
            return MALFORMED, f"is {raw!r}, not an integer", _digits(raw)
        limits = value_spec.range_for(lb_type)
        if limits is not None and not limits[0] <= number <= limits[1]:
            low, high = limits
            clamped = str(min(max(number, low), high))
            where = f" on a {lb_type} load balancer" if lb_type else ""
            return (
                OUT_OF_RANGE,
                f"asks for {number}, but AWS accepts {low}-{high}{where}",
                clamped,
            )
    return None


def _judge_map(
    kb: KnowledgeBase,
    ctx: Context,
    spec: AnnotationSpec,
    key: str,
    value: str,
    version: Version | None,
) -> list[Issue]:
    obj = ctx.obj
    ref = kube.ref(obj)
    evidence: tuple[str, ...] = (f"annotation {key}: {value!r}",)
    if version is not None:
        evidence += (f"AWS Load Balancer Controller {format_version(version)}",)
    reading = read_string_map(value, version, kb.escaped_comma_since)
    parse = reading.parse
    table = kb.table(spec.attributes)
    status = Status.WARN if reading.doubt else Status.FAIL
    if not parse.ok:
        if parse.colon_pairs:
            fixed = ",".join(f"{k}={v}" for k, v in parse.colon_pairs)
            summary = (
                f"{key} on {ref} is written 'key: value' ({value!r}); the controller "
                f"expects key=value pairs, so it rejects the annotation."
            )
            return [
                Issue(
                    MALFORMED,
                    status,
                    obj,
                    key,
                    summary,
                    evidence + ((reading.doubt,) if reading.doubt else ()),
                    _value_fix(obj, key, fixed),
                    idle_seconds=_idle_in_pairs(dict(parse.colon_pairs), table),
                    reason="the value uses 'key: value' where key=value is expected",
                )
            ]
        return [
            Issue(
                MALFORMED,
                status,
                obj,
                key,
                f"{key} on {ref} cannot be read as key=value pairs: {parse.error}.",
                evidence + ((reading.doubt,) if reading.doubt else ()),
                reason=f"the value cannot be parsed ({parse.error})",
            )
        ]
    issues = _judge_attributes(ctx, key, parse.pairs, table, evidence) if table else []
    if reading.doubt:
        # Which release runs decides, so none of this is certain.
        issues = [
            Issue(
                i.code,
                Status.WARN,
                i.obj,
                i.key,
                i.summary,
                (*i.evidence, reading.doubt),
                i.fixes,
                i.idle_seconds,
                i.reason,
            )
            for i in issues
        ] or [
            Issue(
                MALFORMED,
                Status.WARN,
                obj,
                key,
                f"{key} on {ref} is read differently by different controller releases.",
                (*evidence, reading.doubt),
                reason=reading.doubt,
            )
        ]
    return issues


def _judge_attributes(
    ctx: Context,
    key: str,
    pairs: dict[str, str],
    table: AttributeTable,
    evidence: tuple[str, ...],
) -> list[Issue]:
    obj = ctx.obj
    ref = kube.ref(obj)
    issues: list[Issue] = []
    listener_protocol = _listener_protocol(key)
    for attribute, raw in pairs.items():
        attr_spec = table.get(attribute)
        shown = f"{attribute}={raw}"
        if attr_spec is None:
            near = table.nearest(attribute.strip())
            issues.append(
                Issue(
                    MALFORMED,
                    Status.WARN,
                    obj,
                    key,
                    f"{key} on {ref} sets {attribute!r}, which is not a {_table_words(table)} "
                    "attribute AWS knows; AWS rejects the whole change."
                    + (f" Did you mean {near}?" if near else ""),
                    evidence,
                    idle_seconds=_seconds(raw) if near in (ALB_IDLE_KEY, NLB_IDLE_KEY) else None,
                    reason=f"the attribute name {attribute!r} is not one AWS knows",
                )
            )
            continue
        if literal_quotes(raw) and attr_spec.type != "string":
            issues.append(
                Issue(
                    MALFORMED,
                    Status.FAIL,
                    obj,
                    key,
                    f"{key} on {ref} sets {shown} with quotes inside the value.",
                    evidence,
                    idle_seconds=_seconds(raw) if attr_spec.idle else None,
                    reason="an attribute value carries literal quotes",
                )
            )
            continue
        if attr_spec.idle and listener_protocol in ("TLS", "UDP"):
            fixed_s = 350 if listener_protocol == "TLS" else None
            asked = parse_int(raw)
            if asked != fixed_s:
                issues.append(
                    Issue(
                        OUT_OF_RANGE,
                        Status.FAIL,
                        obj,
                        key,
                        f"{key} on {ref} asks a {listener_protocol} listener for "
                        f"{attribute}={raw}; AWS keeps "
                        + ("TLS listeners at 350 s." if fixed_s else "no TCP idle timeout on UDP."),
                        evidence,
                        idle_seconds=asked,
                        reason=f"a {listener_protocol} listener's idle timeout is fixed",
                    )
                )
            continue
        problem = _scalar_problem(attr_spec, raw, ctx.lb_type)
        if problem is not None:
            code, text, fixed = problem
            new_pairs = dict(pairs)
            if fixed is not None:
                new_pairs[attribute] = fixed
            issues.append(
                Issue(
                    code,
                    Status.FAIL,
                    obj,
                    key,
                    f"{key} on {ref}: {attribute} {text}.",
                    evidence,
                    _value_fix(obj, key, ",".join(f"{k}={v}" for k, v in new_pairs.items()))
                    if fixed is not None
                    else (),
                    idle_seconds=_seconds(raw) if attr_spec.idle else None,
                    reason=f"{attribute} {text}",
                )
            )
    return issues


def _listener_port(ctx: Context, key: str, value: str) -> list[Issue]:
    suffix = key[len(NLB_LISTENER_ATTRIBUTES_PREFIX) :]
    match = _LISTENER_SUFFIX.fullmatch(suffix)
    ref = kube.ref(ctx.obj)
    if match is None:
        return [
            Issue(
                MALFORMED,
                Status.FAIL,
                ctx.obj,
                key,
                f"{key} on {ref}: the part after listener-attributes. must be PROTOCOL-PORT "
                "(for example TCP-443).",
                (f"annotation {key}: {value!r}",),
                idle_seconds=_idle_in_value(value),
                reason="the listener is not named PROTOCOL-PORT",
            )
        ]
    protocol, port = match.group(1), numbers.whole(match.group(2)) or 0
    ports = {
        number
        for p in ctx.service_ports
        if (number := numbers.whole(str(p.get("port", "")))) is not None
    }
    if ports and port not in ports:
        return [
            Issue(
                WRONG_TARGET,
                Status.FAIL,
                ctx.obj,
                key,
                f"{key} on {ref} names listener {protocol}-{port}, but the Service exposes "
                f"port(s) {', '.join(str(p) for p in sorted(ports))}: no listener gets it.",
                (f"annotation {key}: {value!r}",),
                idle_seconds=_idle_in_value(value),
                reason=f"no listener on port {port}",
            )
        ]
    return []


# ---- idle-timeout asks hidden in problem keys --------------------------------------------


def _seconds(raw: str) -> int | None:
    match = _SECONDS.fullmatch(raw)
    return numbers.whole(match.group(1)) if match else None


def _idle_from_unknown(key: str, value: str) -> int | None:
    name = key.lower()
    if "idle" in name and "timeout" in name:
        return _seconds(value)
    return _idle_in_value(value)


def _idle_in_value(value: str) -> int | None:
    match = re.search(
        rf"(?:{re.escape(ALB_IDLE_KEY)}|{re.escape(NLB_IDLE_KEY)})\s*[=:]\s*['\"]?([0-9]+)", value
    )
    return numbers.whole(match.group(1)) if match else None


def _idle_in_pairs(pairs: dict[str, str], table: AttributeTable | None) -> int | None:
    if table is None:
        return None
    for name, raw in pairs.items():
        spec = table.get(name)
        if spec is not None and spec.idle:
            return _seconds(raw)
    return None


def _idle_from_misplaced(key: str, value: str) -> int | None:
    if key == CLB_IDLE_TIMEOUT:
        return _seconds(value)
    if key == ALB_LB_ATTRIBUTES or key.startswith(NLB_LISTENER_ATTRIBUTES_PREFIX):
        return _idle_in_value(value)
    return None


def _idle_home(ctx: Context, seconds: int) -> tuple[str, str] | None:
    """The key and value that ask ``seconds`` of this object's load balancer."""
    if "alb-ingress" in ctx.roles:
        return ALB_LB_ATTRIBUTES, f"{ALB_IDLE_KEY}={seconds}"
    if "clb" in ctx.roles:
        return CLB_IDLE_TIMEOUT, str(seconds)
    port = next((p.get("port") for p in ctx.service_ports), None)
    if "nlb-lbc" in ctx.roles and port is not None:
        return f"{NLB_LISTENER_ATTRIBUTES_PREFIX}TCP-{port}", f"{NLB_IDLE_KEY}={seconds}"
    return None


def _listener_protocol(key: str) -> str | None:
    if not key.startswith(NLB_LISTENER_ATTRIBUTES_PREFIX):
        return None
    match = _LISTENER_SUFFIX.match(key[len(NLB_LISTENER_ATTRIBUTES_PREFIX) :])
    return match.group(1) if match else None


# ---- fixes -------------------------------------------------------------------------------


def _kind(obj: KubeObject) -> str:
    return str(obj.get("kind", "")).lower() or "service"


def _rename_fix(obj: KubeObject, old: str, new: str | None, value: str) -> tuple[Fix, ...]:
    if not new or new.endswith("."):
        return ()
    return (
        fix(
            f"Rename {old} to {new}",
            "shell",
            "annotation_rename.sh.j2",
            kind=_kind(obj),
            namespace=kube.namespace(obj) or "default",
            name=kube.name(obj),
            old=old,
            new=new,
            value=value,
        ),
    )


def _value_fix(obj: KubeObject, key: str, value: str) -> tuple[Fix, ...]:
    return (
        fix(
            f"Set {key} to a value the controller reads",
            "yaml",
            "annotation_yaml.j2",
            key=key,
            value=value,
        ),
    )


def _move_to_ingress_fix(key: str, value: str) -> tuple[Fix, ...]:
    return (
        fix(
            f"Put {key} on the Ingress instead",
            "yaml",
            "annotation_yaml.j2",
            key=key,
            value=value,
        ),
    )


def _alb_value(equivalent: str, value: str) -> str:
    return value.upper() if equivalent == "backend-protocol" else value


def _idle_relocation_fix(ctx: Context, key: str, seconds: int | None) -> tuple[Fix, ...]:
    """Where an idle timeout belongs on this Service's own load balancer."""
    if seconds is None:
        return ()
    if "nlb-lbc" in ctx.roles:
        port = next((p.get("port") for p in ctx.service_ports), None)
        if port is None:
            return ()
        new = f"{NLB_LISTENER_ATTRIBUTES_PREFIX}TCP-{port}"
        return _rename_fix(ctx.obj, key, new, f"{NLB_IDLE_KEY}={max(60, min(seconds, 6000))}")
    if "clb" in ctx.roles:
        return _rename_fix(ctx.obj, key, CLB_IDLE_TIMEOUT, str(max(1, min(seconds, 4000))))
    if "nlb-intree" in ctx.roles:
        port = next((p.get("port") for p in ctx.service_ports), None)
        if port is None:
            return ()
        # The in-tree controller cannot set an NLB idle timeout; the LBC can. It makes new
        # NLBs internal unless told, and takes a Service over only when it is re-created.
        internal = kube.annotations(ctx.obj).get(roles.INTREE_INTERNAL_KEY, "") in (
            "true",
            "0.0.0.0/0",
        )
        return (
            fix(
                "Hand the Service to the AWS Load Balancer Controller and set the listener's "
                "idle timeout: re-create the Service with these annotations (this replaces the "
                "NLB and its DNS name)",
                "yaml",
                "annotation_set.j2",
                annotations={
                    roles.TYPE_KEY: "external",
                    roles.SCHEME_KEY: "internal" if internal else "internet-facing",
                    roles.NLB_TARGET_TYPE_KEY: "instance",
                    f"{NLB_LISTENER_ATTRIBUTES_PREFIX}TCP-{port}": (
                        f"{NLB_IDLE_KEY}={max(60, min(seconds, 6000))}"
                    ),
                },
            ),
        )
    return ()


def _table_words(table: AttributeTable) -> str:
    return {
        "alb": "load balancer (ALB)",
        "nlb": "load balancer (NLB)",
        "alb_tg": "target group (ALB)",
        "nlb_tg": "target group (NLB)",
        "nlb_listener": "listener (NLB)",
        "alb_listener": "listener (ALB)",
    }.get(table.name, table.name)


def _digits(raw: str) -> str | None:
    seconds = _seconds(raw)
    return str(seconds) if seconds is not None else None


def problems(snapshot: Snapshot, code: str) -> list[Issue]:
    return [i for i in evaluate(snapshot).issues if i.code == code]
