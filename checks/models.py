"""Renderer-neutral results: what a check found, and the report that carries it.

Checks produce :class:`Finding` objects; the CLI, the JSON output and the Slack app render
the same :class:`Report` in their own format. Nothing here knows about Slack or terminals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    FAIL = "fail"
    WARN = "warn"
    PASS = "pass"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


@dataclass(frozen=True)
class KubePatch:
    """A change to one Kubernetes object that the Slack app may offer to apply in one click.

    ``patch_type`` is ``strategic``, ``merge`` or ``json``; ``patch`` the body as the API
    takes it. Patches target what owns the pods (a Deployment's template), never a pod.
    """

    kind: str
    namespace: str
    name: str
    patch_type: str
    patch: Any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fix:
    """A copy-paste fix: `language` is the code block's language (shell, yaml, hcl, ...).

    ``apply`` is set where the fix is one Kubernetes patch that can be applied safely."""

    title: str
    language: str
    text: str
    apply: KubePatch | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"title": self.title, "language": self.language, "text": self.text}
        if self.apply is not None:
            data["apply"] = self.apply.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fix:
        apply = data.get("apply")
        return cls(
            title=str(data["title"]),
            language=str(data["language"]),
            text=str(data["text"]),
            apply=KubePatch(**apply) if isinstance(apply, dict) else None,
        )


@dataclass(frozen=True)
class Rung:
    """One layer of the timeout ladder on the request path (client -> LB -> proxies -> app).

    ``seconds`` is None where the value is unknown; ``source`` says where it comes from."""

    layer: str
    setting: str
    seconds: float | None
    source: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Finding:
    code: str
    status: Status
    severity: Severity
    summary: str
    resource: str = ""
    evidence: tuple[str, ...] = ()
    fixes: tuple[Fix, ...] = ()

    @property
    def is_problem(self) -> bool:
        return self.status in (Status.FAIL, Status.WARN)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "status": self.status.value,
            "severity": self.severity.value,
            "summary": self.summary,
            "resource": self.resource,
            "evidence": list(self.evidence),
            "fixes": [fix.to_dict() for fix in self.fixes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            code=str(data["code"]),
            status=Status(data["status"]),
            severity=Severity(data["severity"]),
            summary=str(data["summary"]),
            resource=str(data.get("resource", "")),
            evidence=tuple(str(e) for e in data.get("evidence", ())),
            fixes=tuple(Fix.from_dict(fix) for fix in data.get("fixes", ())),
        )


@dataclass(frozen=True)
class Target:
    """What the user asked about."""

    namespace: str
    service: str
    cluster: str = "default"

    @property
    def ask(self) -> str:
        return f"{self.namespace}/{self.service}"


@dataclass(frozen=True)
class LoadBalancerSummary:
    """One load balancer in front of the target, as shown at the top of a report."""

    name: str
    type: str
    dns_name: str
    scheme: str
    serves: str
    idle_timeout_s: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChartData:
    """The series behind a metric finding, for renderers that can draw a chart.

    ``series`` (in ``unit``) is drawn on top with ``threshold`` as a line labelled
    ``threshold_label``; ``counts`` (per minute) are drawn under it. Every list has one value
    per entry of ``timestamps`` (seconds since the epoch, or minutes relative to the last
    one for series without timestamps); ``None`` is a minute without a datapoint.
    """

    title: str
    unit: str
    series: dict[str, list[float | None]]
    timestamps: list[float]
    threshold: float | None = None
    threshold_label: str = ""
    counts: dict[str, list[float | None]] = field(default_factory=dict)
    resource: str = ""
    codes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "unit": self.unit,
            "series": {name: list(values) for name, values in self.series.items()},
            "timestamps": list(self.timestamps),
            "threshold": self.threshold,
            "threshold_label": self.threshold_label,
            "counts": {name: list(values) for name, values in self.counts.items()},
            "resource": self.resource,
            "codes": list(self.codes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChartData:
        def values(raw: Any) -> dict[str, list[float | None]]:
            return {
                str(name): [None if v is None else float(v) for v in points]
                for name, points in (raw or {}).items()
            }

        threshold = data.get("threshold")
        return cls(
            title=str(data["title"]),
            unit=str(data.get("unit", "")),
            series=values(data.get("series")),
            timestamps=[float(t) for t in data.get("timestamps", [])],
            threshold=None if threshold is None else float(threshold),
            threshold_label=str(data.get("threshold_label", "")),
            counts=values(data.get("counts")),
            resource=str(data.get("resource", "")),
            codes=tuple(str(c) for c in data.get("codes", ())),
        )


# Severity order used to sort a report: worst first.
_STATUS_ORDER = {Status.FAIL: 0, Status.WARN: 1, Status.UNKNOWN: 2, Status.PASS: 3}
_SEVERITY_ORDER = {s: i for i, s in enumerate(Severity)}


@dataclass
class Report:
    target: Target
    load_balancers: list[LoadBalancerSummary]
    findings: list[Finding]
    path: list[str] = field(default_factory=list)
    ladder: list[Rung] = field(default_factory=list)
    generated_at: float = 0.0
    window_s: int = 3600
    # Metric series behind failing findings, for renderers that draw charts.
    charts: list[ChartData] = field(default_factory=list)

    def sorted_findings(self) -> list[Finding]:
        return sorted(
            self.findings,
            key=lambda f: (_STATUS_ORDER[f.status], _SEVERITY_ORDER[f.severity], f.code),
        )

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.sorted_findings() if f.is_problem]

    @property
    def failed(self) -> bool:
        return any(f.status is Status.FAIL for f in self.findings)

    def verdict(self) -> str:
        fails = sum(1 for f in self.findings if f.status is Status.FAIL)
        warns = sum(1 for f in self.findings if f.status is Status.WARN)
        unknown = sum(1 for f in self.findings if f.status is Status.UNKNOWN)
        if fails or warns:
            codes = ", ".join(dict.fromkeys(f.code for f in self.problems))
            return f"{fails} failing, {warns} warning: {codes}"
        if unknown:
            return f"no problem found; {unknown} check(s) could not look"
        return "no problem found"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": {
                "cluster": self.target.cluster,
                "namespace": self.target.namespace,
                "service": self.target.service,
            },
            "load_balancers": [lb.to_dict() for lb in self.load_balancers],
            "path": list(self.path),
            "ladder": [rung.to_dict() for rung in self.ladder],
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "generated_at": self.generated_at,
            "window_s": self.window_s,
            "charts": [chart.to_dict() for chart in self.charts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        target = data["target"]
        return cls(
            target=Target(
                namespace=target["namespace"],
                service=target["service"],
                cluster=target.get("cluster", "default"),
            ),
            load_balancers=[LoadBalancerSummary(**lb) for lb in data.get("load_balancers", [])],
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            path=list(data.get("path", [])),
            ladder=[Rung(**rung) for rung in data.get("ladder", [])],
            generated_at=float(data.get("generated_at", 0.0)),
            window_s=int(data.get("window_s", 3600)),
            charts=[ChartData.from_dict(chart) for chart in data.get("charts", [])],
        )
