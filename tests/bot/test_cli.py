"""`eks504` arguments and output: bad input and a broken output get a sentence and exit 2,
never a traceback, before any sandbox or cluster is reached."""

from __future__ import annotations

import argparse
import errno
import io
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli
from checks.errors import InputError

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


# ---- numbers and names in options: ASCII digits, and the Slack app's cluster rule ---------


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h", 3600), ("90", 90), ("1h30m", 5400), (" 2D ", 172800)]
)
def test_window_reads_durations(text: str, seconds: int) -> None:
    assert cli.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\uff11h", "`\uff11h` is not a duration like 1h"),  # fullwidth 1
        ("\u0663\u0660m", "`\u0663\u0660m` is not a duration like 1h"),  # Arabic-Indic 30
        ("\u00b2", "`\u00b2` is not a duration like 1h"),  # superscript 2
        ("9" * 5000 + "d", "the window can be at most 14 days"),
    ],
    ids=["fullwidth", "arabic-indic", "superscript", "long"],
)
def test_window_takes_only_ascii_digits(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        cli.parse_duration(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("name", ["a b/../\u00e9", "", "1prod", "x" * 101, "prod\n"])
def test_cluster_option_is_held_to_the_slack_apps_rule(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["check", "shop/web", "--cluster", name, "--scenario", "s1"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "argument --cluster: `" in err
    assert "is not a valid cluster name: use at most 100 letters, digits, '-' or '_'" in err


@pytest.mark.parametrize("name", ["prod", "eu_west-1b", "P" * 100])
def test_cluster_option_takes_cluster_names(name: str) -> None:
    args = cli.build_parser().parse_args(["check", "shop/web", "--cluster", name])
    assert args.cluster == name


def test_cache_ttl_and_port_take_only_ascii_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKS504_CACHE_TTL", "\u00b2")
    with pytest.raises(InputError, match="EKS504_CACHE_TTL is `\u00b2`, not a number"):
        cli.cache_ttl()
    with pytest.raises(argparse.ArgumentTypeError, match="is not a port"):
        cli._port("\uff18\uff10")
    assert cli._port("8080") == 8080
