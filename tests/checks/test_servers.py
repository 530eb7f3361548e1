"""How each server's keep-alive idle timeout is read from a container spec."""

from __future__ import annotations

from typing import Any

import pytest

from checks.servers import ServerKeepAlive, detect
from checks.servers.base import view
from checks.servers.nginx import parse, parse_time


def _pod(container: dict[str, Any], volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"namespace": "web", "name": "app-1"},
        "spec": {"containers": [container], "volumes": volumes or []},
    }


def _detect(
    image: str = "registry.example/app:1",
    command: list[str] | None = None,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    files: dict[str, dict[str, str]] | None = None,
    mounts: list[dict[str, str]] | None = None,
    working_dir: str = "",
) -> ServerKeepAlive:
    """``files``: ConfigMap name -> data; ``mounts``: (ConfigMap name, mountPath[, subPath])."""
    container: dict[str, Any] = {"name": "app", "image": image}
    if working_dir:
        container["workingDir"] = working_dir
    if command is not None:
        container["command"] = command
    if args is not None:
        container["args"] = args
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    volumes = []
    if mounts:
        container["volumeMounts"] = []
        for i, mount in enumerate(mounts):
            volumes.append({"name": f"v{i}", "configMap": {"name": mount["configmap"]}})
            entry = {"name": f"v{i}", "mountPath": mount["path"]}
            if "subPath" in mount:
                entry["subPath"] = mount["subPath"]
            container["volumeMounts"].append(entry)
    configmaps = {
        name: {"kind": "ConfigMap", "metadata": {"namespace": "web", "name": name}, "data": data}
        for name, data in (files or {}).items()
    }
    return detect(container, _pod(container, volumes), configmaps)


# ---- gunicorn ---------------------------------------------------------------------------


def test_gunicorn_keep_alive_flag_with_separate_value() -> None:
    found = _detect(command=["gunicorn", "-k", "gthread", "--keep-alive", "75", "app:app"])
    assert (found.server, found.idle_timeout_s, found.source) == (
        "gunicorn",
        75.0,
        "--keep-alive 75",
    )
    assert found.reuses_connections and not found.assumed_default
    assert (found.origin.kind, found.origin.field, found.origin.index) == ("argv", "command", 4)


def test_gunicorn_keep_alive_flag_with_equals_in_args() -> None:
    found = _detect(command=["gunicorn"], args=["--worker-class=gevent", "--keep-alive=30", "a:b"])
    assert (found.idle_timeout_s, found.source) == (30.0, "--keep-alive=30")
    assert (found.origin.field, found.origin.index, found.origin.text) == (
        "args",
        1,
        "--keep-alive=30",
    )


def test_gunicorn_threaded_worker_without_flag_assumes_two_second_default() -> None:
    found = _detect(command=["gunicorn", "--worker-class", "gthread", "app:app"])
    assert found.idle_timeout_s == 2.0
    assert found.source == "gunicorn's default (2 s)"
    assert found.assumed_default and found.reuses_connections


def test_gunicorn_default_sync_worker_does_not_reuse_connections() -> None:
    found = _detect(command=["gunicorn", "--bind", "0.0.0.0:8000", "app:app"])
    assert found.reuses_connections is False
    assert found.source == "gunicorn's default worker"
    assert found.note == "the sync worker closes each connection after its response"


def test_gunicorn_sync_worker_with_threads_runs_as_gthread() -> None:
    found = _detect(command=["gunicorn", "--threads", "4", "app:app"])
    assert found.reuses_connections is True
    assert found.idle_timeout_s == 2.0
    assert found.note == "worker gthread (sync worker with 4 threads runs as gthread)"


def test_gunicorn_short_worker_flag_joined_value() -> None:
    found = _detect(command=["python", "-m", "gunicorn", "-kgevent", "--keep-alive", "9", "a:b"])
    assert found.reuses_connections and found.idle_timeout_s == 9.0
    assert found.note == "worker gevent (--worker-class gevent)"


def test_gunicorn_cmd_args_environment_variable() -> None:
    found = _detect(
        command=["gunicorn", "app:app"],
        env={"GUNICORN_CMD_ARGS": "--worker-class uvicorn.workers.UvicornWorker --keep-alive 65"},
    )
    assert (found.idle_timeout_s, found.source) == (65.0, "GUNICORN_CMD_ARGS (--keep-alive 65)")
    assert (found.origin.kind, found.origin.name) == ("env", "GUNICORN_CMD_ARGS")


def test_gunicorn_command_line_wins_over_cmd_args() -> None:
    found = _detect(
        command=["gunicorn", "-k", "gthread", "--keep-alive", "20", "app:app"],
        env={"GUNICORN_CMD_ARGS": "--keep-alive 65"},
    )
    assert (found.idle_timeout_s, found.source) == (20.0, "--keep-alive 20")


def test_gunicorn_inside_shell_script() -> None:
    found = _detect(
        command=["/bin/sh", "-c", "cd /app && exec gunicorn -k gthread --keep-alive 10 app:app"]
    )
    assert (found.server, found.idle_timeout_s) == ("gunicorn", 10.0)
    assert (found.origin.kind, found.origin.field, found.origin.index) == ("shell", "command", 2)


def test_gunicorn_config_file_from_configmap() -> None:
    found = _detect(
        command=["gunicorn", "-c", "/etc/gunicorn/conf.py", "app:app"],
        files={"gconf": {"conf.py": "worker_class = 'gthread'\nkeepalive = 20\n"}},
        mounts=[{"configmap": "gconf", "path": "/etc/gunicorn"}],
    )
    assert found.idle_timeout_s == 20.0
    assert found.source == "keepalive = 20, /etc/gunicorn/conf.py line 2, ConfigMap web/gconf"


def test_gunicorn_relative_config_path_starts_at_working_dir() -> None:
    found = _detect(
        command=["gunicorn", "-c", "conf/gunicorn.py", "app:app"],
        files={"gconf": {"gunicorn.py": "worker_class = 'gthread'\nkeepalive = 4\n"}},
        mounts=[{"configmap": "gconf", "path": "/srv/conf"}],
        working_dir="/srv",
    )
    assert (found.idle_timeout_s, found.source) == (
        4.0,
        "keepalive = 4, /srv/conf/gunicorn.py line 2, ConfigMap web/gconf",
    )


def test_gunicorn_reads_gunicorn_conf_py_in_working_dir_without_config_flag() -> None:
    found = _detect(
        command=["gunicorn", "catalog.wsgi"],
        files={"gconf": {"gunicorn.conf.py": 'worker_class = "gthread"\nkeepalive = 2\n'}},
        mounts=[
            {"configmap": "gconf", "path": "/app/gunicorn.conf.py", "subPath": "gunicorn.conf.py"}
        ],
        working_dir="/app",
    )
    assert (found.reuses_connections, found.idle_timeout_s) == (True, 2.0)
    assert (
        found.note == "worker gthread (worker_class in /app/gunicorn.conf.py, ConfigMap web/gconf)"
    )


def test_gunicorn_conf_py_elsewhere_than_working_dir_is_not_read() -> None:
    found = _detect(
        command=["gunicorn", "catalog.wsgi"],
        files={"gconf": {"gunicorn.conf.py": "worker_class = 'gthread'\n"}},
        mounts=[{"configmap": "gconf", "path": "/etc/gunicorn"}],
        working_dir="/app",
    )
    assert (found.reuses_connections, found.source) == (False, "gunicorn's default worker")


def test_gunicorn_config_flag_in_cmd_args_environment() -> None:
    found = _detect(
        command=["gunicorn", "app:app"],
        env={"GUNICORN_CMD_ARGS": "-c /etc/g/conf.py"},
        files={"gconf": {"conf.py": "worker_class = 'gevent'\nkeepalive = 30\n"}},
        mounts=[{"configmap": "gconf", "path": "/etc/g"}],
    )
    assert found.idle_timeout_s == 30.0


def test_a_default_that_an_unread_configmap_might_override_is_unknown() -> None:
    mounted = {"configmap": "site-conf", "path": "/etc/nginx/conf.d"}
    found = _detect(image="nginx:1.27", mounts=[mounted])
    assert (found.server, found.idle_timeout_s) == ("nginx", None)
    assert "ConfigMap web/site-conf at /etc/nginx/conf.d" in found.note
    read = _detect(image="nginx:1.27", mounts=[mounted], files={"site-conf": {"x.conf": ""}})
    assert read.idle_timeout_s is not None


def test_gunicorn_config_file_not_visible_is_unknown() -> None:
    found = _detect(command=["gunicorn", "-c", "/app/gunicorn.conf.py", "app:app"])
    assert found.server == "gunicorn"
    assert found.idle_timeout_s is None


# ---- uvicorn ----------------------------------------------------------------------------


def test_uvicorn_flag() -> None:
    found = _detect(command=["uvicorn", "main:app", "--timeout-keep-alive", "130"])
    assert (found.server, found.idle_timeout_s, found.source) == (
        "uvicorn",
        130.0,
        "--timeout-keep-alive 130",
    )


def test_uvicorn_environment_variable() -> None:
    found = _detect(command=["uvicorn", "main:app"], env={"UVICORN_TIMEOUT_KEEP_ALIVE": "90"})
    assert (found.idle_timeout_s, found.source) == (90.0, "UVICORN_TIMEOUT_KEEP_ALIVE=90")


def test_uvicorn_flag_wins_over_environment() -> None:
    found = _detect(
        command=["python", "-m", "uvicorn", "main:app", "--timeout-keep-alive=70"],
        env={"UVICORN_TIMEOUT_KEEP_ALIVE": "90"},
    )
    assert (found.idle_timeout_s, found.source) == (70.0, "--timeout-keep-alive=70")


def test_uvicorn_default_is_five_seconds() -> None:
    found = _detect(command=["uvicorn", "main:app", "--host", "0.0.0.0"])
    assert (found.idle_timeout_s, found.source, found.assumed_default) == (
        5.0,
        "uvicorn's default (5 s)",
        True,
    )


def test_gunicorn_with_uvicorn_worker_is_gunicorn() -> None:
    found = _detect(command=["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "main:app"])
    assert (found.server, found.idle_timeout_s) == ("gunicorn", 2.0)


# ---- node -------------------------------------------------------------------------------


def test_node_assumes_http_server_default() -> None:
    found = _detect(image="node:20-alpine", command=["node", "dist/server.js"])
    assert (found.server, found.idle_timeout_s, found.assumed_default) == ("Node.js", 5.0, True)
    assert found.source == "Node.js http.Server default keepAliveTimeout (5 s)"


def test_npm_start_in_node_image_is_node() -> None:
    assert _detect(image="docker.io/library/node:22", command=["npm", "start"]).server == "Node.js"


def test_npm_in_other_image_is_not_guessed() -> None:
    found = _detect(image="registry.example/web:1", command=["npm", "start"])
    assert (found.server, found.idle_timeout_s) == ("unknown", None)


# ---- nginx ------------------------------------------------------------------------------

SERVER_30 = """\
server {
    listen 8080;
    # keepalive_timeout 5s;
    keepalive_timeout 30s; # shorter than the default
    location / { root /usr/share/nginx/html; }
}
"""


def test_nginx_server_block_in_conf_d_configmap() -> None:
    found = _detect(
        image="nginxinc/nginx-unprivileged:1.27",
        files={"frontend-nginx": {"default.conf": SERVER_30}},
        mounts=[{"configmap": "frontend-nginx", "path": "/etc/nginx/conf.d"}],
    )
    assert (found.server, found.idle_timeout_s, found.assumed_default) == ("nginx", 30.0, False)
    assert found.source == (
        "keepalive_timeout 30s, /etc/nginx/conf.d/default.conf line 4, ConfigMap web/frontend-nginx"
    )
    assert (found.origin.configmap, found.origin.key, found.origin.line) == (
        "web/frontend-nginx",
        "default.conf",
        4,
    )


def test_nginx_official_image_without_directive_uses_shipped_65() -> None:
    found = _detect(
        image="nginx:1.27",
        files={"site": {"site.conf": "server {\n  listen 80;\n}\n"}},
        mounts=[{"configmap": "site", "path": "/etc/nginx/conf.d"}],
    )
    assert (found.idle_timeout_s, found.assumed_default) == (65.0, True)
    assert found.source == (
        "keepalive_timeout 65 in the http block of the nginx image's /etc/nginx/nginx.conf "
        "(image default)"
    )
    assert (found.origin.kind, found.origin.configmap) == ("default", "web/site")


def test_nginx_location_value_shorter_than_server_wins() -> None:
    conf = "server {\n keepalive_timeout 90s;\n location /api {\n  keepalive_timeout 1m;\n }\n}\n"
    found = _detect(
        image="nginx:1.27",
        files={"c": {"api.conf": conf}},
        mounts=[{"configmap": "c", "path": "/etc/nginx/conf.d"}],
    )
    assert found.idle_timeout_s == 60.0
    assert found.source.startswith("keepalive_timeout 1m, /etc/nginx/conf.d/api.conf line 4,")


def test_nginx_mounted_main_conf_http_block_applies_to_servers_without_value() -> None:
    main = (
        "events {}\n"
        "http {\n"
        "    keepalive_timeout 20;\n"
        "    server { listen 80; }\n"
        "    server { listen 81; keepalive_timeout 120s; }\n"
        "}\n"
    )
    found = _detect(
        image="registry.example/proxy:2",
        command=["nginx", "-g", "daemon off;"],
        files={"main": {"nginx.conf": main}},
        mounts=[{"configmap": "main", "path": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"}],
    )
    assert found.idle_timeout_s == 20.0
    assert found.source == "keepalive_timeout 20, /etc/nginx/nginx.conf line 3, ConfigMap web/main"


def test_nginx_main_conf_without_directive_uses_compiled_default() -> None:
    found = _detect(
        image="nginx:1.27",
        files={"main": {"nginx.conf": "events {}\nhttp {\n server { listen 80; }\n}\n"}},
        mounts=[{"configmap": "main", "path": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"}],
    )
    assert (found.idle_timeout_s, found.assumed_default) == (75.0, True)


def test_nginx_directive_in_other_block_does_not_count() -> None:
    # A stream server is not an HTTP server: its directive must not be taken as http's.
    main = (
        "events {}\n"
        "stream { server { listen 5432; } }\n"
        "http {\n  keepalive_timeout 40s;\n  server { listen 80; }\n}\n"
    )
    found = _detect(
        image="nginx:1.27",
        files={"main": {"nginx.conf": main}},
        mounts=[{"configmap": "main", "path": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"}],
    )
    assert found.idle_timeout_s == 40.0


def test_nginx_keepalive_zero_turns_reuse_off() -> None:
    found = _detect(
        image="nginx:1.27",
        files={"c": {"default.conf": "server { keepalive_timeout 0; }"}},
        mounts=[{"configmap": "c", "path": "/etc/nginx/conf.d"}],
    )
    assert (found.reuses_connections, found.idle_timeout_s) == (False, 0.0)


def test_nginx_unofficial_image_without_visible_config_is_unknown() -> None:
    found = _detect(image="bitnami/nginx:1.27")
    assert (found.server, found.idle_timeout_s) == ("nginx", None)


def test_ingress_nginx_controller_is_not_plain_nginx() -> None:
    found = _detect(
        image="registry.k8s.io/ingress-nginx/controller:v1.11.2",
        args=["/nginx-ingress-controller", "--ingress-class=nginx"],
    )
    assert found.server == "unknown"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("75", 75.0), ("30s", 30.0), ("1m", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("x", None)],
)
def test_nginx_time_units(text: str, seconds: float | None) -> None:
    assert parse_time(text) == seconds


def test_nginx_parser_ignores_comments_and_quoted_braces() -> None:
    parsed = parse(
        'server { # keepalive_timeout 1s; {\n  return 200 "}"; keepalive_timeout 9s;\n}',
        ("http",),
    )
    timeouts = [d for d in parsed.directives if d.name == "keepalive_timeout"]
    assert [(d.args, d.line, d.blocks) for d in timeouts] == [(("9s",), 2, ("http", "server"))]
    assert parsed.servers == (0,)


# ---- apache, tomcat, puma, envoy --------------------------------------------------------


def test_apache_default_is_five_seconds() -> None:
    found = _detect(image="httpd:2.4")
    assert (found.server, found.idle_timeout_s, found.assumed_default) == ("apache", 5.0, True)


def test_apache_keepalive_timeout_and_virtual_host() -> None:
    conf = (
        "# KeepAliveTimeout 1\n"
        "KeepAliveTimeout 65\n"
        "<VirtualHost *:80>\n"
        "  KeepAliveTimeout 500ms\n"
        "</VirtualHost>\n"
    )
    found = _detect(
        image="httpd:2.4",
        files={"a": {"httpd.conf": conf}},
        mounts=[{"configmap": "a", "path": "/usr/local/apache2/conf"}],
    )
    assert found.idle_timeout_s == 0.5
    assert found.source == (
        "KeepAliveTimeout 500ms, /usr/local/apache2/conf/httpd.conf line 4, ConfigMap web/a"
    )


def test_apache_keepalive_off() -> None:
    found = _detect(
        image="php:8.3-apache",
        files={"a": {"keepalive.conf": "KeepAlive Off\n"}},
        mounts=[{"configmap": "a", "path": "/etc/apache2/conf-enabled"}],
    )
    assert (found.server, found.reuses_connections) == ("apache", False)


def test_tomcat_shipped_server_xml_is_twenty_seconds() -> None:
    found = _detect(image="tomcat:10.1-jdk21")
    assert (found.server, found.idle_timeout_s, found.assumed_default) == ("tomcat", 20.0, True)


def test_tomcat_server_xml_keepalive_timeout_overrides_connection_timeout() -> None:
    xml = (
        "<Server><Service>"
        '<Connector port="8080" protocol="HTTP/1.1" connectionTimeout="20000" '
        'keepAliveTimeout="90000"/>'
        '<Connector port="8009" protocol="AJP/1.3" connectionTimeout="1000"/>'
        "</Service></Server>"
    )
    found = _detect(
        image="tomcat:10.1",
        files={"t": {"server.xml": xml}},
        mounts=[
            {"configmap": "t", "path": "/usr/local/tomcat/conf/server.xml", "subPath": "server.xml"}
        ],
    )
    assert found.idle_timeout_s == 90.0
    assert found.source.startswith('keepAliveTimeout="90000", /usr/local/tomcat/conf/server.xml')


def test_puma_default_env_and_config() -> None:
    assert _detect(command=["bundle", "exec", "puma"]).idle_timeout_s == 20.0
    found = _detect(command=["puma"], env={"PUMA_PERSISTENT_TIMEOUT": "95"})
    assert (found.idle_timeout_s, found.source) == (95.0, "PUMA_PERSISTENT_TIMEOUT=95")
    found = _detect(
        command=["puma", "-C", "/app/config/puma.rb"],
        env={"PUMA_PERSISTENT_TIMEOUT": "95"},
        files={"p": {"puma.rb": "threads 5, 5\npersistent_timeout 70\n"}},
        mounts=[{"configmap": "p", "path": "/app/config"}],
    )
    assert (found.idle_timeout_s, found.source) == (
        70.0,
        "persistent_timeout 70, /app/config/puma.rb line 2, ConfigMap web/p",
    )


def test_puma_relative_config_path_starts_at_working_dir() -> None:
    found = _detect(
        command=["bundle", "exec", "puma", "-C", "config/puma.rb"],
        files={"p": {"puma.rb": "workers 2\n"}},
        mounts=[{"configmap": "p", "path": "/rails/config"}],
        working_dir="/rails",
    )
    assert (found.idle_timeout_s, found.assumed_default) == (20.0, True)
    without_working_dir = _detect(
        command=["bundle", "exec", "puma", "-C", "config/puma.rb"],
        files={"p": {"puma.rb": "workers 2\n"}},
        mounts=[{"configmap": "p", "path": "/rails/config"}],
    )
    assert without_working_dir.idle_timeout_s is None


def test_puma_without_config_flag_reads_environment_file_then_config_puma_rb() -> None:
    files = {"p": {"production.rb": "persistent_timeout 75\n", "puma.rb": "persistent_timeout 9\n"}}
    found = _detect(
        command=["bundle", "exec", "puma"],
        env={"RAILS_ENV": "production"},
        files=files,
        mounts=[
            {
                "configmap": "p",
                "path": "/rails/config/puma/production.rb",
                "subPath": "production.rb",
            },
            {"configmap": "p", "path": "/rails/config/puma.rb", "subPath": "puma.rb"},
        ],
        working_dir="/rails",
    )
    assert found.idle_timeout_s == 75.0
    found = _detect(
        command=["bundle", "exec", "puma"],
        files=files,
        mounts=[{"configmap": "p", "path": "/rails/config/puma.rb", "subPath": "puma.rb"}],
        working_dir="/rails",
    )
    assert found.idle_timeout_s == 9.0


HCM_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
ENVOY = """\
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {hcm}
          stat_prefix: ingress
{extra}
"""


def test_envoy_without_visible_configuration_is_unknown() -> None:
    found = _detect(image="registry.example/gateway-envoy:1.30")
    assert (found.server, found.idle_timeout_s) == ("envoy", None)
    assert found.note == "Envoy's bootstrap configuration is not visible"


@pytest.mark.parametrize(
    ("extra", "seconds"),
    [
        ("          common_http_protocol_options: {idle_timeout: 45s}", 45.0),
        ("", 3600.0),
    ],
)
def test_envoy_idle_timeout_from_mounted_config(extra: str, seconds: float) -> None:
    found = _detect(
        image="envoyproxy/envoy:v1.30",
        command=["envoy", "-c", "/etc/envoy/envoy.yaml"],
        files={"e": {"envoy.yaml": ENVOY.format(extra=extra, hcm=HCM_TYPE)}},
        mounts=[{"configmap": "e", "path": "/etc/envoy"}],
    )
    assert (found.server, found.idle_timeout_s) == ("envoy", seconds)


def test_unrecognised_container_is_unknown_without_a_value() -> None:
    found = _detect(image="registry.example/pgbouncer:1.22")
    assert (found.server, found.idle_timeout_s, found.assumed_default) == ("unknown", None, False)
    assert found.source == "image registry.example/pgbouncer:1.22, command (the image's own)"


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("nginx", "nginx"),
        ("docker.io/library/nginx:1.27@sha256:abc", "nginx"),
        ("public.ecr.aws/nginx/nginx:1.27", "nginx/nginx"),
        ("localhost:5000/team/app:1", "team/app"),
        ("nginxinc/nginx-unprivileged:1.27", "nginxinc/nginx-unprivileged"),
    ],
)
def test_image_repository(image: str, repository: str) -> None:
    assert view({"name": "c", "image": image}, _pod({}), {}).image_repository == repository


@pytest.mark.parametrize(
    ("volumes", "container"),
    [
        ([{"name": "conf", "configMap": "frontend-nginx"}], {}),
        (["conf"], {}),
        ([{"name": "conf", "projected": {"sources": ["frontend-nginx"]}}], {}),
        ([{"name": "conf", "configMap": {"name": "frontend-nginx", "items": "all"}}], {}),
        ([], {"volumeMounts": ["conf"]}),
        ([], {"env": ["PORT=8080"], "envFrom": [{"configMapRef": "frontend-nginx"}]}),
    ],
    ids=["configmap-string", "volume-string", "source-string", "items-string", "mount", "env"],
)
def test_odd_volumes_and_env_are_left_unread_not_a_crash(
    volumes: list[Any], container: dict[str, Any]
) -> None:
    """A live object may hold what the API schema forbids: such entries are not read."""
    spec = {"name": "c", "image": "nginx:1.27", **container}
    spec.setdefault("volumeMounts", [{"name": "conf", "mountPath": "/etc/nginx/conf.d"}])
    configmaps = {"frontend-nginx": {"data": {"default.conf": "keepalive_timeout 30s;"}}}

    found = view(spec, _pod(spec, volumes), configmaps)

    assert found.files == ()
    assert found.env == {}
