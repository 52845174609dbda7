"""docker-compose.yml, checked without a Docker engine: its services, commands, environment
names and ports must agree with the project's CLI and config, and with docker-compose itself
where Debian's ``docker-compose`` is installed."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
import yaml

from experiments.config import compose_config, to_config
from experiments.study import prepare
from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
_VAR = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def interpolate(node, env: dict[str, str]):
    """Compose's variable substitution: ``${X}``, ``${X:-default}``, ``${X:?error}``, ``$$``."""
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name", "op", "arg")
        value = env.get(name)
        if op and op.endswith("?") and not value:
            raise KeyError(f"{name}: {arg}")
        if op and op.endswith("-") and (value is None or (op == ":-" and value == "")):
            return arg
        return value or ""

    return _VAR.sub(sub, node)


def stack(env: dict[str, str] | None = None) -> dict:
    raw = yaml.safe_load(COMPOSE.read_text())
    return interpolate(raw, {"POSTGRES_PASSWORD": "pw"} if env is None else env)


def test_the_stack_is_postgres_mlflow_dashboard_workers_and_a_model_server() -> None:
    s = stack()
    assert set(s["services"]) == {"postgres", "mlflow", "dashboard", "worker", "serve"}
    pg = s["services"]["postgres"]
    assert "healthcheck" in pg and any(v.startswith("pgdata:") for v in pg["volumes"])
    init = next(v for v in pg["volumes"] if "docker-entrypoint-initdb.d" in v)
    sql = (REPO / init.split(":")[0]).read_text().lower()
    assert "create database optuna;" in sql and "create database mlflow;" in sql
    assert {"pgdata", "mlartifacts"} <= set(s["volumes"])
    for name in ("mlflow", "dashboard", "worker"):  # none starts before PostgreSQL is ready
        assert s["services"][name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "serve"):
        assert s["services"][name]["depends_on"]["mlflow"]["condition"] == "service_healthy"


def test_the_tracking_server_serves_artifacts_from_postgresql() -> None:
    mlflow = stack()["services"]["mlflow"]
    cmd = mlflow["command"]
    assert cmd[:2] == ["mlflow", "server"] and "--serve-artifacts" in cmd
    destination = cmd[cmd.index("--artifacts-destination") + 1]
    assert any(v.endswith(f":{destination}") for v in mlflow["volumes"])
    backend = urlsplit(mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"])
    assert backend.scheme.startswith("postgresql") and (backend.hostname, backend.port) == ("postgres", 5432)
    assert backend.path == "/mlflow"
    dockerfile = (REPO / mlflow["build"]["context"] / mlflow["build"]["dockerfile"]).read_text()
    assert "FROM ghcr.io/mlflow/mlflow" in dockerfile and "psycopg2" in dockerfile


@pytest.mark.parametrize("env", [{"POSTGRES_PASSWORD": "pw"}, env_example()], ids=["unset", "example"])
def test_published_ports_bind_to_loopback_unless_the_user_says_so(env: dict[str, str]) -> None:
    services = stack(env)["services"]
    listens = {"postgres": 5432, "mlflow": _arg(services["mlflow"]["command"], "--port"),
               "dashboard": _dashboard_port(), "serve": _arg(services["serve"]["command"], "--port")}
    for name, port in listens.items():
        (mapping,) = services[name]["ports"]
        host, _, container = mapping.split(":")
        assert host == "127.0.0.1" and int(container) == int(port), (name, mapping)
    assert "ports" not in services["worker"]
    opened = stack({**env, "BIND_ADDRESS": "10.0.0.5"})["services"]
    assert all(opened[n]["ports"][0].startswith("10.0.0.5:") for n in listens)


def test_the_worker_runs_the_sweep_cli_with_overrides_the_config_accepts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_example()
    services = stack(env)["services"]
    worker = services["worker"]
    cmd = worker["command"]
    assert cmd[:3] == ["python", "-m", "experiments.sweep"]
    assert importlib.util.find_spec("experiments.sweep") is not None
    assert env["POSTGRES_PASSWORD"] not in " ".join(cmd)  # read from the environment instead
    for key, value in worker["environment"].items():
        monkeypatch.setenv(key, str(value))
    cfg = to_config(compose_config(cmd[3:]))
    assert cfg.sweep.storage == worker["environment"]["OPTUNA_STORAGE"]
    assert cfg.mlflow.tracking_uri == worker["environment"]["MLFLOW_TRACKING_URI"]
    assert (cfg.sweep.n_trials, cfg.sweep.study_name) == (int(env["SWEEP_N_TRIALS"]), env["SWEEP_STUDY_NAME"])
    assert not prepare(cmd[3:]).space.is_empty  # the search space it names exists
    storage, tracking = urlsplit(cfg.sweep.storage), urlsplit(cfg.mlflow.tracking_uri)
    assert (storage.hostname, storage.port, storage.path) == ("postgres", 5432, "/optuna")
    mlflow_port = int(_arg(services["mlflow"]["command"], "--port"))
    assert (tracking.hostname, tracking.port) == ("mlflow", mlflow_port)
    host_allowed = services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert tracking.netloc in host_allowed  # MLflow's host-header check lets workers in
    dashboard = urlsplit(services["dashboard"]["environment"]["OPTUNA_STORAGE"])
    assert (dashboard.hostname, dashboard.path) == ("postgres", "/optuna")


def test_the_model_server_serves_the_best_alias_of_the_study_the_workers_register() -> None:
    """``serve`` runs ``mlflow models serve`` on the workers' image (torch and mlflow inside, no
    environment to build), on the registered model named after the workers' study."""
    env = env_example()
    services = stack(env)["services"]
    serve, worker = services["serve"], services["worker"]
    cmd = serve["command"]
    assert cmd[:3] == ["mlflow", "models", "serve"] and _arg(cmd, "--env-manager") == "local"
    assert _arg(cmd, "--host") == "0.0.0.0"  # reachable through the published port
    assert _arg(cmd, "--model-uri") == f"models:/{env['SWEEP_STUDY_NAME']}@best"
    assert serve["image"] == worker["image"] and serve["profiles"] == ["serve"]
    assert serve["environment"]["MLFLOW_TRACKING_URI"] == worker["environment"]["MLFLOW_TRACKING_URI"]
    assert str(_arg(cmd, "--port")) in " ".join(serve["healthcheck"]["test"])
    allowed = services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert urlsplit(serve["environment"]["MLFLOW_TRACKING_URI"]).netloc in allowed


def test_every_variable_is_in_env_example_and_no_credential_is_baked_in() -> None:
    names = {m.group("name") for m in _VAR.finditer(COMPOSE.read_text()) if m.group("name")}
    names -= {"oc"}  # ``$${oc.env:...}`` is for Hydra, not compose
    assert names == set(env_example())
    for path in [REPO / "Dockerfile", *(REPO / "docker").glob("*Dockerfile")]:
        text = path.read_text()
        assert "PASSWORD" not in text and not re.search(r"://[^/\s:@]+:[^@\s]+@", text), path
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored


def test_checkpoints_are_only_loaded_with_weights_only() -> None:
    calls = [(path, m.group(0)) for path in [*REPO.glob("mlp/**/*.py"), *REPO.glob("experiments/**/*.py")]
             for m in re.finditer(r"torch\.load\([^)]*\)", path.read_text())]
    assert all("weights_only=True" in call for _, call in calls), calls


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="docker-compose (Debian package) not installed")
def test_docker_compose_config_accepts_the_file() -> None:
    proc = subprocess.run(["docker-compose", "--env-file", ".env.example", "--profile", "serve", "config"],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin:/usr/local/bin"})
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    assert set(services) == {"postgres", "mlflow", "dashboard", "worker", "serve"}
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for p in published)


def _arg(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def _dashboard_port() -> int:
    text = (REPO / "docker" / "dashboard.Dockerfile").read_text()
    return int(re.search(r"port=(\d+)", text).group(1))
