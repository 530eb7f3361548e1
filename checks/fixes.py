"""Fix snippets rendered from the Jinja2 templates under ``templates/fixes``.

Every value reaches a snippet through a filter that fits the snippet's language:
``shq`` shell-quotes (for commands), ``yq`` renders a YAML scalar, ``tojson`` a JSON value.
Templates never interpolate a raw value into a command line.
"""

from __future__ import annotations

import json
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from checks.models import Fix, KubePatch

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def _yaml_scalar(value: object) -> str:
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["shq"] = lambda v: shlex.quote(str(v))
    env.filters["yq"] = _yaml_scalar
    env.filters["tojson"] = lambda v: json.dumps(v)
    return env


def render(template_name: str, /, **context: Any) -> str:
    """Render ``templates/NAME`` with ``context``."""
    return environment().get_template(template_name).render(**context).strip() + "\n"


def fix(
    title: str, language: str, template: str, /, *, apply: KubePatch | None = None, **context: Any
) -> Fix:
    """A :class:`Fix` whose text is ``templates/fixes/TEMPLATE``; ``apply`` where the fix is one
    Kubernetes patch."""
    return Fix(
        title=title, language=language, text=render(f"fixes/{template}", **context), apply=apply
    )
