"""The `eks504` command: check a Service, lint manifests, or serve the Slack app."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bot.cache import MemoryCache, ResultCache, cache_from_env
from bot.commands import invalid_cluster, invalid_name, plain_code
from bot.output import OutputError, closed_stdout, write_report
from bot.service import LiveChecker
from checks import numbers
from checks.collect.settings import Connection
from checks.errors import BackendError, Eks504Error, InputError

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")


def parse_duration(text: str) -> int:
    """``1h``, ``30m``, ``90s``, ``1h30m``, ``2d`` or plain seconds -> seconds (at least 60).
    Every number but a lone one carries its unit: ``1h30`` is refused, not read as 1h30s.
    Only ASCII digits count, as everywhere a number is read (see :mod:`checks.numbers`)."""
    text = text.strip().lower()
    if numbers.whole(text) is not None:
        text += "s"
    match = _DURATION.fullmatch(text)
    if not text or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(
            f"{plain_code(text)} is not a duration like 1h, 30m, 1h30m, 90s or 2d"
        )
    days, hours, minutes, seconds = (numbers.whole(g) or 0 if g else 0 for g in match.groups())
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total < 60:
        raise argparse.ArgumentTypeError("the window must be at least one minute")
    if total > 14 * 24 * 3600:
        raise argparse.ArgumentTypeError("the window can be at most 14 days")
    return total


def parse_target(ask: str, namespace: str | None) -> tuple[str, str]:
    """``NS/SVC`` or ``SVC`` with ``-n NS`` -> (namespace, service), validated."""
    if ask.count("/") > 1 or ask.strip("/") != ask:
        raise InputError(
            f"{plain_code(ask)} is not NAMESPACE/SERVICE.",
            "Give one namespace and one Service, e.g. `shop/web`, or `web -n shop`.",
        )
    if "/" in ask:
        ns, _, svc = ask.partition("/")
        if namespace and namespace != ns:
            raise InputError(
                f"{plain_code(ask)} names namespace {plain_code(ns)} but -n says "
                f"{plain_code(namespace)}."
            )
    else:
        if namespace is not None and not namespace.strip():
            raise InputError("-n needs a namespace name.")
        ns, svc = namespace or "default", ask
    for kind, value in (("namespace", ns), ("service", svc)):
        problem = invalid_name(value, kind, plain_code)
        if problem:
            raise InputError(problem, "For example: `eks504 check shop/web`.")
    return ns, svc


def cache_ttl() -> int:
    raw = os.environ.get("EKS504_CACHE_TTL", "300").strip()
    ttl = numbers.whole(raw)
    if ttl is None or ttl < 1:
        raise InputError(
            f"EKS504_CACHE_TTL is {plain_code(raw)}, not a number of seconds.",
            "Set it to a whole number of seconds of at least 1, e.g. 300.",
        )
    return ttl


def result_cache(*, required: bool = False) -> ResultCache:
    """The cache ``REDIS_URL`` names, else an in-process one."""
    if not os.environ.get("REDIS_URL") and not required:
        return MemoryCache()
    try:
        return cache_from_env()
    except ValueError as exc:
        raise InputError(
            f"REDIS_URL is not a Redis URL: {exc}.",
            "Use redis://HOST:PORT/DB (or rediss:// for TLS), or unset it.",
        ) from exc


def resolve_scenario(value: str) -> Path:
    """A scenario path, or the name of a bundled one (``s2``, ``s2-clb-nginx-keepalive-30s``)."""
    from sandbox.scenario import BUNDLED_DIR

    if not value.strip():
        raise InputError(
            "--scenario needs a file or a bundled scenario's name.",
            "For example `--scenario s1`, or leave it out to check the current kube context.",
        )
    path = Path(value)
    if path.is_file():
        return path
    if path.exists():
        raise InputError(
            f"{value} is not a file.",
            "Give a scenario file, e.g. sandbox/scenarios/s1-alb-idle-timeout-short.yaml.",
        )
    bundled = sorted(BUNDLED_DIR.glob("*.yaml"))
    names = ", ".join(p.stem for p in bundled)
    if "/" in value or "\\" in value or value.endswith((".yaml", ".yml")):
        raise InputError(f"No scenario file {value}.", f"Bundled scenarios: {names}.")
    # The start of a name, compared as text: `*` or `[` in it are not patterns.
    matches = [p for p in bundled if p.stem.startswith(value.lower())]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise InputError(
            f"{value} matches several bundled scenarios: "
            + ", ".join(p.stem for p in matches)
            + ".",
            "Give more of the name.",
        )
    raise InputError(f"No scenario file {value}.", f"Bundled scenarios: {names}.")


@contextmanager
def checker_for(args: argparse.Namespace, cache: ResultCache) -> Iterator[tuple[LiveChecker, str]]:
    """A checker for the live cluster, or for a sandbox started from ``--scenario``; yields
    it with the default ask (the scenario's)."""
    window = args.window
    ttl = cache_ttl()
    if args.scenario is not None:  # "" is refused by resolve_scenario, not taken as absent
        from sandbox.scenario import load
        from sandbox.world import World

        scenario = load(resolve_scenario(args.scenario))
        with World(scenario) as world:
            assert world.connection is not None
            yield LiveChecker(world.connection, cache, ttl_s=ttl, window_s=window), scenario.ask
        return
    connection = Connection(
        kubeconfig=os.environ.get("KUBECONFIG") or None,
        context=args.context,
        region=args.region or os.environ.get("AWS_REGION") or None,
        aws_profile=args.profile,
        aws_endpoint_url=os.environ.get("EKS504_AWS_ENDPOINT_URL") or None,
        cluster=args.cluster or args.context or "default",
    )
    yield LiveChecker(connection, cache, ttl_s=ttl, window_s=window), ""


def cmd_check(args: argparse.Namespace) -> int:
    from bot import render_text
    from checks.models import Target

    cache = result_cache()
    if args.target:
        parse_target(args.target, args.namespace)  # bad input is refused before any work
    with checker_for(args, cache) as (checker, default_ask):
        ask = args.target or default_ask
        if not ask:
            raise InputError("Say which Service to check: `eks504 check NAMESPACE/SERVICE`.")
        namespace, service = parse_target(ask, args.namespace)
        outcome = checker.check(
            Target(namespace, service, checker.connection.cluster), fresh=args.fresh
        )
    report = outcome.report
    if args.format == "json":
        out = render_text.render_json(report, cache_hit=outcome.cache_hit, age_s=outcome.age_s)
    elif args.format == "slack":
        from bot import render_slack

        out = render_slack.to_json(
            render_slack.render(report, cache_hit=outcome.cache_hit, age_s=outcome.age_s)
        )
    else:
        out = render_text.render(
            report, cache_hit=outcome.cache_hit, age_s=outcome.age_s, stream=sys.stdout
        )
    write_report(out)
    return EXIT_FINDINGS if report.failed else EXIT_OK


def cmd_lint(args: argparse.Namespace) -> int:
    from bot import lint_cli

    return lint_cli.run(args.paths, args.format)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the Slack app; Slack's refusals and an unreachable Slack are said in plain words."""
    from urllib.error import URLError

    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    try:
        return _serve(args)
    except (BoltError, SlackApiError) as exc:
        raise InputError(
            f"Slack refused the app's credentials: {exc}.",
            "Check SLACK_BOT_TOKEN (and SLACK_APP_TOKEN for Socket Mode) belong to this app.",
        ) from exc
    except (URLError, ConnectionError) as exc:
        raise BackendError(
            f"Cannot reach Slack's Web API: {exc}.",
            "Check network access to slack.com, or SLACK_API_URL if you set it.",
        ) from exc
    except OSError as exc:
        raise BackendError(
            f"Cannot listen on {args.host}:{args.http}: {exc.strerror or exc}.",
            "Pick another --http port (0 picks a free one) or --host.",
        ) from exc


def _serve(args: argparse.Namespace) -> int:
    """One checker per cluster of ``EKS504_CONFIG``, else one for the cluster (or scenario)
    the options name."""
    from bot.clusters import ClusterRouter, checkers_from_config
    from bot.config import config_from_env
    from bot.slack_app import serve, web_api_url

    web_api_url()  # a mistyped SLACK_API_URL is said before anything starts
    config = config_from_env()
    cache = result_cache(required=True)
    if config is not None and config.clusters:
        if any(v is not None for v in (args.scenario, args.context, args.cluster)):
            raise InputError(
                "The configuration names the clusters; --scenario, --context and --cluster "
                "cannot be used with it.",
                "Drop those options, or unset EKS504_CONFIG.",
            )
        ttl = cache_ttl()
        router = checkers_from_config(config, cache, ttl_s=ttl, window_s=args.window)
        serve(router, http_port=args.http, host=args.host, config=config)
        return EXIT_OK
    with checker_for(args, cache) as (checker, _):
        router = ClusterRouter({checker.connection.cluster: checker})
        serve(router, http_port=args.http, host=args.host, config=config)
    return EXIT_OK


def _port(text: str) -> int:
    port = numbers.whole(text)
    if port is None or not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"{plain_code(text)} is not a port (0-65535; 0 picks a free one)"
        )
    return port


def _cluster_name(text: str) -> str:
    """A --cluster name, held to the rule the Slack app holds one to."""
    problem = invalid_cluster(text, plain_code)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eks504")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eks504",
        description="Find why a Service on Amazon EKS returns 504/502 behind an AWS load "
        "balancer, and how to fix it.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def where(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--scenario",
            help="run against the sandbox seeded from this scenario "
            "file (or a bundled scenario's name) instead of a cluster",
        )
        p.add_argument(
            "--window",
            type=parse_duration,
            default=3600,
            help="how far back to read metrics (default 1h)",
        )
        p.add_argument("--context", help="kubeconfig context (default: the current one)")
        p.add_argument("--region", help="AWS region (default: as the AWS CLI would)")
        p.add_argument("--profile", help="AWS profile (default: as the AWS CLI would)")
        p.add_argument(
            "--cluster",
            type=_cluster_name,
            help="name for the cluster in reports and cache keys (letters, digits, '-', '_')",
        )

    check = sub.add_parser("check", help="diagnose one Service")
    check.add_argument(
        "target", nargs="?", default="", help="NAMESPACE/SERVICE, or SERVICE with -n"
    )
    check.add_argument("-n", "--namespace", help="the Service's namespace (default: default)")
    check.add_argument("--format", choices=("text", "json", "slack"), default="text")
    check.add_argument("--fresh", action="store_true", help="ignore a cached result")
    where(check)
    check.set_defaults(func=cmd_check)

    lint = sub.add_parser("lint", help="judge manifests offline (for CI)")
    lint.add_argument("paths", nargs="+", help="files, folders, or - for stdin")
    lint.add_argument("--format", choices=("text", "json", "github"), default="text")
    lint.set_defaults(func=cmd_lint)

    serve = sub.add_parser("serve", help="run the Slack app")
    serve.add_argument(
        "--http",
        type=_port,
        default=3000,
        metavar="PORT",
        help="HTTP mode port when SLACK_APP_TOKEN is not set (default 3000; 0 picks a free one)",
    )
    serve.add_argument(
        "--host", default="0.0.0.0", help="HTTP mode address to listen on (default 0.0.0.0)"
    )
    where(serve)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # A server says what it is doing; a one-shot check only what went wrong.
    quiet = logging.INFO if args.command == "serve" else logging.WARNING
    level = {0: quiet, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        # moto and werkzeug log every sandbox request at INFO.
        for noisy in ("werkzeug", "moto", "aiohttp.access", "botocore", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if sys.stdout is None and args.command in ("check", "lint"):
            raise closed_stdout()  # before any work: the report would have nowhere to go
        return int(args.func(args))
    except OutputError as err:
        if str(err):
            _say(f"eks504: {err}\n")
        return EXIT_ERROR
    except Eks504Error as err:
        _say(f"eks504: {err}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
    except Exception as exc:  # the last guard: a user sees a sentence, not a traceback
        logger.debug("unexpected error", exc_info=True)
        _say(
            f"eks504: unexpected error: {type(exc).__name__}: {str(exc)[:300]}. This is a bug "
            "in eks504: run the same command with -vv for details and report it.\n"
        )
        return EXIT_ERROR


def _say(text: str) -> None:
    """Write to stderr, unless it is closed too (then the exit status says it all)."""
    if sys.stderr is None:
        return
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError:
        logger.debug("stderr refused the message", exc_info=True)


if __name__ == "__main__":
    sys.exit(main())
