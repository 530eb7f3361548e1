"""`eks504 lint`: inputs, formats and exit codes."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from bot import cli, lint_cli

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "manifests"
BROKEN = ROOT / "tests" / "fixtures" / "broken-manifests"
SCENARIOS = ROOT / "sandbox" / "scenarios"
IDLE_KEY = "service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout"


def run(paths: list[str], fmt: str = "text", stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = lint_cli.run(paths, fmt, stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_clean_manifest_exits_0() -> None:
    code, out = run([str(FIXTURES / "alb-game-ingress.yaml")])
    assert code == 0
    assert out == "0 finding(s): 0 failing, 0 warning\n"


def test_findings_exit_1_with_file_and_line() -> None:
    path = SCENARIOS / "c12-alb-backend-service-family-annotation.yaml"
    code, out = run([str(path)])
    assert code == 1
    assert out.splitlines()[0] == f"{path}:23: fail ANNOTATION_WRONG_TARGET service/store/api"
    assert "alb.ingress.kubernetes.io/healthcheck-path=/healthz" in out


def test_malformed_yaml_exits_2_naming_file_and_line() -> None:
    path = FIXTURES / "invalid" / "unclosed-quote.yaml"
    code, out = run([str(path)])
    assert code == 2
    assert f"error: {path}:" in out
    line = int(out.split(f"error: {path}:")[1].split(":")[0])
    assert line >= 6


def test_missing_file_exits_2() -> None:
    code, out = run([str(FIXTURES / "no-such-file.yaml")])
    assert code == 2
    assert "cannot read" in out


def test_folder_is_read_recursively(tmp_path: Path) -> None:
    nested = tmp_path / "apps" / "store"
    nested.mkdir(parents=True)
    shutil.copy(SCENARIOS / "c05-alb-unknown-annotation.yaml", nested / "ingress.yml")
    (tmp_path / "README.md").write_text("not read")
    code, out = run([str(tmp_path)], "json")
    assert code == 1
    data = json.loads(out)
    assert {f["code"] for f in data["findings"]} == {
        "ANNOTATION_UNKNOWN",
        "IDLE_TIMEOUT_NOT_APPLIED",
    }
    assert {f["file"] for f in data["findings"]} == {str(nested / "ingress.yml")}


def test_stdin_multi_document() -> None:
    text = (FIXTURES / "helm-rendered-placeholders.yaml").read_text()
    code, out = run(["-"], "json", stdin=text)
    assert code == 1
    data = json.loads(out)
    assert [(f["file"], f["line"], f["code"]) for f in data["findings"]] == [
        ("<stdin>", 17, "ANNOTATION_MALFORMED"),
        ("<stdin>", 17, "ANNOTATION_MALFORMED"),
    ]
    assert data["errors"] == []


def test_json_list_input(tmp_path: Path) -> None:
    docs = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "api",
                    "namespace": "shop",
                    "annotations": {IDLE_KEY: "5000"},
                },
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            }
        ],
    }
    out = io.StringIO()
    path = tmp_path / "services.json"
    path.write_text(json.dumps(docs))
    code = lint_cli.run([str(path)], "json", stdout=out)
    assert code == 1
    codes = sorted(f["code"] for f in json.loads(out.getvalue())["findings"])
    assert codes == ["ANNOTATION_OUT_OF_RANGE", "IDLE_TIMEOUT_NOT_APPLIED"]


def test_github_format_writes_workflow_commands() -> None:
    path = SCENARIOS / "c09-clb-idle-timeout-out-of-range.yaml"
    code, out = run([str(path)], "github")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(
        f"::error file={path},line=6,title=ANNOTATION_OUT_OF_RANGE::service.beta.kubernetes.io"
    )
    assert all(line.startswith("::error ") for line in lines)
    assert all("\n" not in line for line in lines)


def test_github_format_escapes_properties_and_newlines() -> None:
    assert lint_cli._github_escape("a,b:c", property_value=True) == "a%2Cb%3Ac"
    assert lint_cli._github_escape("50%\nnext") == "50%25%0Anext"


def test_notes_do_not_change_the_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "values-and-service.yaml"
    path.write_text(
        (FIXTURES / "not-kubernetes.yaml").read_text()
        + "---\n"
        + (FIXTURES / "eks-workshop-ui-nlb.yaml").read_text()
    )
    code, out = run([str(path)], "github")
    assert code == 0
    assert out.startswith(f"::notice file={path},line=2::not a Kubernetes object")


def test_every_scenario_file_lints_without_crashing() -> None:
    code, out = run([str(SCENARIOS)], "json")
    data = json.loads(out)
    assert code == 1
    assert data["errors"] == []
    assert {Path(f["file"]).stem.split("-")[0] for f in data["findings"]} == {
        "c05",
        "c06",
        "c07",
        "c09",
        "c10",
        "c11",
        "c12",
        "c14",
        "c16",
        "c17",
        "x6",
        "x7",
        "x8",
        "x9",
    }


def test_fixture_folder_with_a_broken_file_exits_2_but_reports_the_rest() -> None:
    code, out = run([str(FIXTURES)], "json")
    data = json.loads(out)
    assert code == 2
    assert len(data["errors"]) == 1 and "unclosed-quote.yaml" in data["errors"][0]
    assert any(f["code"] == "PROXY_PROTOCOL_MISMATCH" for f in data["findings"])


def test_cli_entry_point_dispatches_to_lint(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["lint", str(FIXTURES / "eks-workshop-ui-nlb.yaml"), "--format", "json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


# ---- unusable input: a message and exit 2, never a traceback ----------------------------


@pytest.mark.parametrize(
    ("name", "line", "code"),
    [("nul-byte.yaml", 3, "#x0000"), ("escape-character.yaml", 4, "#x001b")],
)
def test_control_character_is_invalid_yaml_and_other_files_are_still_linted(
    name: str, line: int, code: str
) -> None:
    path = BROKEN / name
    other = SCENARIOS / "c09-clb-idle-timeout-out-of-range.yaml"
    code_, out = run([str(path), str(other)], "json")
    data = json.loads(out)
    assert code_ == 2
    assert data["errors"] == [
        f"{path}:{line}: not valid YAML (control character {code}, which YAML does not "
        "allow; remove it, or check that the file is text)"
    ]
    assert {f["file"] for f in data["findings"]} == {str(other)}


def test_binary_on_stdin_is_refused_with_exit_2() -> None:
    code, out = run(["-"], stdin="\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert code == 2
    assert "error: <stdin>:1: not valid YAML (control character #x0089" in out


def test_file_that_is_not_utf8_says_so() -> None:
    code, out = run([str(BROKEN / "latin1.yaml")])
    assert code == 2
    assert (
        f"error: {BROKEN / 'latin1.yaml'}: cannot read (not UTF-8 text: byte 0xe9 at offset" in out
    )


@pytest.mark.parametrize(
    ("name", "line"), [("alias-bomb.yaml", 6), ("alias-bomb-in-service.yaml", 10)]
)
def test_alias_bomb_is_refused_fast(name: str, line: int) -> None:
    started = time.monotonic()
    code, out = run([str(BROKEN / name)])
    assert time.monotonic() - started < 2.0
    assert code == 2
    assert f"error: {BROKEN / name}:{line}: too many aliases (more than 500 aliases" in out


def test_shared_blocks_through_a_few_aliases_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Service\n"
        "metadata: {name: web, namespace: shop, labels: &labels {app: web}}\n"
        "spec: {type: LoadBalancer, selector: *labels, ports: [{port: 80}]}\n"
    )
    assert run([str(path)]) == (0, "0 finding(s): 0 failing, 0 warning\n")


def test_alias_that_contains_itself_is_refused() -> None:
    code, out = run(["-"], stdin="apiVersion: v1\nkind: List\nitems: &a [*a]\n")
    assert code == 2
    assert "error: <stdin>:3: the alias *a refers to a node that contains it" in out


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".yaml", "a: " + "[" * 500 + "]" * 500 + "\n"),
        (".yaml", "".join(f"{'  ' * i}k{i}:\n" for i in range(150)) + "  " * 150 + "v\n"),
        (".json", "[" * 1000 + "]" * 1000),
        (".json", "[" * 150 + "]" * 150),
    ],
    ids=["yaml-flow-500", "yaml-block-150", "json-1000", "json-150"],
)
def test_deep_nesting_is_refused_without_recursion_error(
    tmp_path: Path, suffix: str, text: str
) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text(text)
    code, out = run([str(path)], "json")
    assert code == 2
    (error,) = json.loads(out)["errors"]
    assert error.startswith(f"{path}")
    assert "nested too deeply (more than 100 levels" in error


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "service-ports-scalar.yaml",
            ":5: invalid: Service shop/web: spec.ports must be a list, not 80;",
        ),
        (
            "service-selector-string.yaml",
            ":5: invalid: Service shop/web: spec.selector must be a mapping of strings, "
            "not 'app=web';",
        ),
        (
            "deployment-containers-mapping.yaml",
            ":14: invalid: Deployment shop/web: spec.template.spec.containers must be a list, "
            "not a mapping;",
        ),
        (
            "deployment-command-number.yaml",
            ":18: invalid: Deployment shop/web: spec.template.spec.containers[0].command must "
            "be a list of strings, not 5;",
        ),
        (
            "configmap-data-list.yaml",
            ":6: invalid: ConfigMap shop/ingress-nginx-controller: data must be a mapping of "
            "strings, not a list;",
        ),
    ],
)
def test_object_of_the_wrong_shape_is_an_invalid_note_and_exit_2(name: str, message: str) -> None:
    path = BROKEN / name
    code, out = run([str(path)])
    assert code == 2
    assert f"{path}{message} the API server rejects this object, so it was not judged\n" in out
    assert "invalid object(s)" in out.splitlines()[-1]


def test_wrong_shape_is_an_error_annotation_on_github() -> None:
    path = BROKEN / "service-ports-scalar.yaml"
    code, out = run([str(path)], "github")
    assert code == 2
    assert out.startswith(f"::error file={path},line=5,title=invalid object::Service shop/web")


def test_unquoted_number_annotation_is_malformed_with_a_quoting_fix() -> None:
    path = BROKEN / "service-annotation-number.yaml"
    code, out = run([str(path)], "json")
    assert code == 1
    (finding,) = json.loads(out)["findings"]
    assert (finding["line"], finding["code"], finding["resource"]) == (
        7,
        "ANNOTATION_MALFORMED",
        "service/shop/web",
    )
    assert finding["fixes"][0]["text"] == (f'metadata:\n  annotations:\n    {IDLE_KEY}: "120"\n')


def test_annotations_as_a_list_are_malformed() -> None:
    code, out = run([str(BROKEN / "service-annotations-list.yaml")], "json")
    assert code == 1
    (finding,) = json.loads(out)["findings"]
    assert finding["code"] == "ANNOTATION_MALFORMED"
    assert finding["summary"].startswith(
        "service/shop/web has metadata.annotations as a list: Kubernetes takes a mapping"
    )


@pytest.mark.parametrize("kind", ["empty folder", "empty file", "folder of non-YAML", "stdin"])
def test_nothing_to_lint_exits_2(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "input"
    if kind == "empty file":
        target = tmp_path / "input.yaml"
        target.write_text("")
    elif kind != "stdin":
        target.mkdir()
    if kind == "folder of non-YAML":
        (target / "README.md").write_text("# docs\n")
    arg = "-" if kind == "stdin" else str(target)
    code, out = run([arg], "json", stdin="---\n")
    assert code == 2
    (error,) = json.loads(out)["errors"]
    shown = "<stdin>" if kind == "stdin" else str(target)
    assert error.startswith(f"no Kubernetes objects found in {shown} (")


def test_huge_annotation_value_is_echoed_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    value = "x" * 5_000_000
    path.write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations:\n"
        f"    {IDLE_KEY}: '{value}'\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
    )
    code, out = run([str(path)])
    assert code == 1
    assert len(out) < 5_000
    assert "'" + "x" * 200 + "\u2026'" in out
    assert "x" * 201 not in out


# ---- reading inputs: only regular files and standard input, in bounded size -------------


def _latin1_manifest() -> bytes:
    return b"apiVersion: v1\nkind: Service\nmetadata: {name: w\xe9b}\n"


def test_stdin_that_is_not_utf8_says_so_like_a_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(_latin1_manifest())
    reason = "cannot read (not UTF-8 text: byte 0xe9 at offset 47); save it as UTF-8"
    # As sys.stdin is: a text stream over the bytes, decoding with surrogateescape.
    stdin = io.TextIOWrapper(
        io.BytesIO(_latin1_manifest()), encoding="utf-8", errors="surrogateescape"
    )
    out = io.StringIO()
    assert lint_cli.run(["-", str(path)], "json", stdin=stdin, stdout=out) == 2
    assert json.loads(out.getvalue())["errors"] == [f"<stdin>: {reason}", f"{path}: {reason}"]
    # A text stream without a binary buffer carries the byte as a lone surrogate.
    code, text = run(["-"], stdin=_latin1_manifest().decode("utf-8", "surrogateescape"))
    assert code == 2
    assert f"error: <stdin>: {reason}\n" in text


def test_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    fifo = tmp_path / "manifests.yaml"
    os.mkfifo(fifo)
    results: list[tuple[int, str]] = []
    reader = threading.Thread(target=lambda: results.append(run([str(fifo)])), daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():
        with open(fifo, "w"):  # let the blocked reader go before failing
            pass
        pytest.fail("lint waited for a writer on a named pipe")
    ((code, out),) = results
    assert code == 2
    assert f"error: {fifo}: cannot read (a named pipe, not a regular file); give manifest" in out


def test_device_is_refused_before_reading_it() -> None:
    # /dev/null, not /dev/zero: read to its end, it ends (/dev/zero would fill the memory).
    if not Path("/dev/null").is_char_device():
        pytest.skip("no /dev/null here")
    code, out = run(["/dev/null"])
    assert code == 2
    assert "error: /dev/null: cannot read (a character device, not a regular file)" in out


def test_input_larger_than_the_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lint_cli, "MAX_INPUT_BYTES", 1024 * 1024)
    path = tmp_path / "big.yaml"
    text = "# padding\n" * 110_000 + (FIXTURES / "alb-game-ingress.yaml").read_text()
    path.write_text(text)
    stdin = io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8")
    out = io.StringIO()
    assert lint_cli.run(["-", str(path)], "json", stdin=stdin, stdout=out) == 2
    assert json.loads(out.getvalue())["errors"] == [
        f"{where}: cannot read (larger than 1 MiB); split the manifests into smaller files"
        for where in ("<stdin>", str(path))
    ]


def test_empty_path_is_refused_not_read_as_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(SCENARIOS / "c05-alb-unknown-annotation.yaml", tmp_path / "ingress.yaml")
    monkeypatch.chdir(tmp_path)
    code, out = run([""], "json")
    assert code == 2
    data = json.loads(out)
    assert data["findings"] == []
    assert data["errors"] == [
        "an empty path was given; name a file or a folder (. for the current one), "
        "or - to read standard input"
    ]


def test_closed_stdin_is_an_unreadable_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", None)
    out = io.StringIO()
    assert lint_cli.run(["-"], "text", stdout=out) == 2
    assert "error: <stdin>: cannot read (standard input is closed)" in out.getvalue()


# ---- numbers too long for Python to convert -----------------------------------------------

LONG = "9" * 5000
LONG_SHOWN = "99999999999999999999\u2026 (5,000 digits)"


def test_annotation_with_a_number_too_long_to_convert_is_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n"
        f'  annotations:\n    {IDLE_KEY}: "{LONG}"\n'
        "spec: {type: LoadBalancer, ports: [{port: 80}]}\n"
    )
    code, out = run([str(path)], "json")
    assert code == 1
    data = json.loads(out)
    assert data["notes"] == [] and data["errors"] == []
    out_of_range = [f for f in data["findings"] if f["code"] == "ANNOTATION_OUT_OF_RANGE"]
    assert [f["summary"] for f in out_of_range] == [
        f"{IDLE_KEY} on service/shop/web asks for {LONG_SHOWN}, but AWS accepts 1-4000 on a "
        "classic load balancer."
    ]


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        (
            "bigint.json",
            '{"apiVersion": "v1", "kind": "Service",\n "spec": {"port": ' + LONG + "}}",
            2,
        ),
        (
            "bigint.yaml",
            "apiVersion: v1\nkind: Service\nspec:\n  ports: [{port: " + LONG + "}]\n",
            4,
        ),
    ],
)
def test_number_too_long_to_convert_is_refused_at_its_line(
    tmp_path: Path, name: str, text: str, line: int
) -> None:
    path = tmp_path / name
    path.write_text(text)
    code, out = run([str(path)], "json")
    assert code == 2
    assert json.loads(out)["errors"] == [
        f"{path}:{line}: the number {LONG_SHOWN} is longer than any field takes "
        "(at most 20 digits); check the value"
    ]


@pytest.mark.parametrize(
    ("body", "line", "action"),
    [
        ("metadata:\n  name: {{ .Values.name }}\n", 4, "{{ .Values.name }}"),
        (
            'metadata:\n  name: web\n  labels:\n    {{- include "labels" . | nindent 4 }}\n',
            6,
            '{{- include "labels" . | nindent 4 }}',
        ),
    ],
    ids=["value", "include"],
)
def test_unrendered_helm_template_gets_a_hint_to_render_it(
    tmp_path: Path, body: str, line: int, action: str
) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("apiVersion: v1\nkind: Service\n" + body)
    code, out = run([str(path)], "json")
    assert code == 2
    (error,) = json.loads(out)["errors"]
    assert error.startswith(f"{path}:{line}: not valid YAML (")
    assert error.endswith(
        f"; it looks like an unrendered Helm template ({action}): render it with "
        "`helm template` first and use the output"
    )


def test_yaml_error_without_template_text_gets_no_helm_hint() -> None:
    code, out = run([str(FIXTURES / "invalid" / "unclosed-quote.yaml")])
    assert code == 2
    assert "Helm" not in out


# ---- objects the API server would reject, and keys given twice ---------------------------


def test_values_the_api_server_rejects_are_invalid_notes_at_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  type: NodePort\n  ports:\n  - port: 70000\n    nodePort: 1\n"
        "---\napiVersion: v1\nkind: Service\n"
        "metadata: {name: Bad_Name!, namespace: ../x}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {}\n"
        "---\napiVersion: v1\nkind: List\nitems: hello\n"
    )
    code, out = run([str(path)], "json")
    assert code == 2
    notes = [
        (n["line"], n["message"].split(";")[0], n["invalid"]) for n in json.loads(out)["notes"]
    ]
    assert [(line, message.split(" must be ")[0], invalid) for line, message, invalid in notes] == [
        (7, "Service shop/web: spec.ports[0].port", True),
        (7, "Service shop/web: spec.ports[0].nodePort", True),
        (12, "Service ../x/Bad_Name!: metadata.namespace", True),
        (12, "Service ../x/Bad_Name!: metadata.name", True),
        (16, "Service (no name): metadata.name is missing", True),
        (18, "List (no name): items", True),
    ]


def test_objects_run_together_are_an_invalid_note_and_the_other_documents_are_judged(
    tmp_path: Path,
) -> None:
    service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: shop\n"
    path = tmp_path / "together.yaml"
    path.write_text(
        service % "web"
        + service % "api"
        + "---\n"
        + service % "out"
        + f"  annotations: {{{IDLE_KEY}: '9999'}}\n"
        + "spec: {type: LoadBalancer, ports: [{port: 80}]}\n"
    )
    code, out = run([str(path)], "json")
    assert code == 2
    data = json.loads(out)
    assert [(n["line"], n["invalid"]) for n in data["notes"]] == [(6, True)]
    assert data["notes"][0]["message"].startswith(
        "the keys `apiVersion`, `kind` and `metadata` are given twice in one mapping "
        "(`apiVersion` first at line 1): YAML keeps only the last value, and kubectl refuses "
        "the file; two objects run together: put a line `---` between them"
    )
    assert {f["resource"] for f in data["findings"]} == {"service/shop/out"}
    assert data["errors"] == []
