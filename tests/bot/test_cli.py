"""`eks504` arguments and output: bad input and a broken output get a sentence and exit 2,
never a traceback, before any sandbox or cluster is reached."""

from __future__ import annotations

import errno
import io
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "tests" / "fixtures" / "manifests" / "eks-workshop-ui-nlb.yaml"


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert "unexpected error" not in err and "Traceback" not in err
    return code, err


@pytest.mark.parametrize("name", ["*", "s2*", "**", "[", "s?"])
def test_scenario_name_with_pattern_characters_is_not_found(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _main(["check", "--scenario", name], capsys)
    assert code == 2
    assert err.startswith(f"eks504: No scenario file {name}. Bundled scenarios: c01-")


class _Refusing(io.StringIO):
    def __init__(self, error: OSError) -> None:
        super().__init__()
        self.error = error

    def flush(self) -> None:
        raise self.error


@pytest.mark.parametrize("command", [["lint", str(MANIFEST)], ["check", "--scenario", "s1"]])
def test_closed_stdout_is_said_before_any_work(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", None)
    code, err = _main(command, capsys)
    assert code == 2
    assert err == (
        "eks504: Standard output is closed, so the report has nowhere to go. "
        "Run eks504 with its output on a terminal, a file or a pipe.\n"
    )


def test_full_output_is_said_in_words(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", _Refusing(OSError(errno.ENOSPC, "No space left on device")))
    code, err = _main(["lint", str(MANIFEST)], capsys)
    assert code == 2
    assert err.startswith(
        "eks504: Cannot write the report to standard output: No space left on device."
    )


def test_reader_that_went_away_ends_the_run_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", _Refusing(BrokenPipeError(errno.EPIPE, "Broken pipe")))
    assert _main(["lint", str(MANIFEST)], capsys) == (2, "")


def test_dev_full_as_stdout_gives_one_line_and_exit_2() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "lint", str(MANIFEST)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    # Nothing more at exit: the text still buffered is not flushed into the full device again.
    assert result.stderr == (
        "eks504: Cannot write the report to standard output: No space left on device. "
        "Check where the output goes: a full disk, a closed descriptor, a device.\n"
    )


@pytest.mark.parametrize("target", [[], ["shop/web"]])
def test_empty_scenario_option_is_refused_not_taken_as_the_live_cluster(
    target: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(ROOT / "no-such-kubeconfig"))
    code, err = _main(["check", *target, "--scenario", ""], capsys)
    assert code == 2
    assert err.startswith("eks504: --scenario needs a file or a bundled scenario's name.")


@pytest.mark.parametrize(
    ("argv", "shown", "reason"),
    [
        (["a" * 300], "a" * 79, "is not a valid service name: it is 300 characters long"),
        (["shop/" + "b" * 300], "b" * 79, "is not a valid service name: it is 300 characters"),
        (["web", "-n", "N" * 300], "N" * 79, "is not a valid namespace name: it is 300 char"),
        (["a/" + "b" * 300, "-n", "x"], "a/" + "b" * 77, "names namespace `a` but -n says `x`"),
    ],
    ids=["service", "service-in-namespace", "namespace", "namespace-mismatch"],
)
def test_long_target_is_echoed_cut_short(
    argv: list[str], shown: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _main(["check", *argv, "--scenario", "s1"], capsys)
    assert code == 2
    assert f"`{shown}\u2026` {reason}" in err
    assert len(err) < 400


def test_name_with_a_trailing_newline_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _main(["check", "shop/web\n", "--scenario", "s1"], capsys)
    assert code == 2
    assert "is not a valid service name: it contains" in err
