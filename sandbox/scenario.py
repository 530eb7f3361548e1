"""Loads a scenario file: one simulated EKS world (see docs/scenario-format.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checks.errors import ScenarioError

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO = BUNDLED_DIR / "s2-clb-nginx-keepalive-30s.yaml"


@dataclass
class Scenario:
    id: str
    summary: str
    ask: str
    cluster_name: str
    cluster: list[dict[str, Any]]
    aws: dict[str, Any]
    exec: dict[str, dict[str, Any]]
    expect_findings: list[str] = field(default_factory=list)
    expect_absent: list[str] = field(default_factory=list)
    path: Path | None = None


def _require_mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} must be a mapping, not {type(value).__name__}.")
    return value


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file; errors say which file and key is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(
            f"Cannot read scenario file {path}: {exc.strerror or exc}.",
            "Check the path; bundled scenarios are in sandbox/scenarios/.",
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(f"Scenario file {path} is not valid YAML{where}.") from exc
    data = _require_mapping(data, f"Scenario file {path}")
    cluster = data.get("cluster") or []
    if not isinstance(cluster, list) or not all(isinstance(o, dict) for o in cluster):
        raise ScenarioError(f"{path}: `cluster` must be a list of Kubernetes objects.")
    for index, obj in enumerate(cluster):
        if not obj.get("kind") or not (obj.get("metadata") or {}).get("name"):
            raise ScenarioError(f"{path}: cluster object #{index + 1} has no kind or name.")
    expect = _require_mapping(data.get("expect"), f"{path}: `expect`")
    scenario = Scenario(
        id=str(data.get("id", path.stem)),
        summary=" ".join(str(data.get("summary", "")).split()),
        ask=str(data.get("ask", "")),
        cluster_name=str(data.get("cluster_name", "demo")),
        cluster=cluster,
        aws=_require_mapping(data.get("aws"), f"{path}: `aws`"),
        exec={str(k): dict(v or {}) for k, v in _require_mapping(data.get("exec"), "exec").items()},
        expect_findings=list(expect.get("findings") or []),
        expect_absent=list(expect.get("absent") or []),
        path=path,
    )
    logger.debug("loaded scenario %s from %s", scenario.id, path)
    return scenario
