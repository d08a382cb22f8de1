"""The deployment files (issue 17, item 1) name only what exists: every `tidings`
command and option they run, every TIDINGS_ setting they or docs/operations.md set;
and they have the shape operators expect (multi-stage non-root image with a health
check and a data volume, a migrate step of its own, N API processes and M workers,
the inbound SMTP listener's port published). The container tooling does not run on
this machine, so this is what can be checked here."""

from __future__ import annotations

import re
import shlex
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tests.support.processes import TIDINGS
from tidings.http.ops import OPS_PATHS
from tidings.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
UNITS = {path.name: path.read_text() for path in (DEPLOY / "systemd").glob("*.service")}
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def _dockerfile_json(instruction: str) -> list[str]:
    match = re.search(rf"^{instruction} (\[.*\])$", DOCKERFILE, re.M)
    assert match, instruction
    return list(yaml.safe_load(match.group(1)))


def tidings_commands() -> list[list[str]]:
    """Every argument list the files give the `tidings` program."""
    found = [_dockerfile_json("CMD")]
    for service in COMPOSE["services"].values():
        if service.get("image", "").startswith("tidings") and "command" in service:
            found.append(list(service["command"]))
    for text in UNITS.values():
        for line in re.findall(r"^ExecStart=(.*)$", text, re.M):
            program, *args = shlex.split(line)
            assert program == "/opt/tidings/bin/tidings"
            found.append(args)
    return found


@cache
def help_text(command: str) -> str:
    result = subprocess.run(
        [*TIDINGS, command, "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"tidings {command}: {result.stderr}"
    return result.stdout


@pytest.mark.parametrize("args", tidings_commands(), ids=" ".join)
def test_every_command_and_option_exists(args: list[str]) -> None:
    command, *rest = args
    text = help_text(command)
    for option in (arg for arg in rest if arg.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), (command, option)


def setting_exists(variable: str) -> bool:
    path = variable.removeprefix("TIDINGS_").lower().split("__")
    model: type[BaseModel] = Settings
    for index, name in enumerate(path):
        field = model.model_fields.get(name)
        if field is None:
            return False
        if index < len(path) - 1:
            annotation = field.annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def named_settings() -> set[str]:
    texts = [DOCKERFILE, (DEPLOY / "compose.yaml").read_text(), *UNITS.values(), OPERATIONS]
    texts += [path.read_text() for path in DEPLOY.rglob("*.example")]
    names: set[str] = set()
    for text in texts:
        names.update(re.findall(r"\bTIDINGS_[A-Z0-9_]*[A-Z0-9]", text))
    # Families written in prose ("TIDINGS_SERVER__*"), and the test suite's own variable.
    return {
        name for name in names if not name.endswith("__") and name != "TIDINGS_TEST_POSTGRES_DSN"
    }


def test_every_setting_named_exists() -> None:
    names = named_settings()
    assert "TIDINGS_INBOUND_SMTP__PORT" in names and "TIDINGS_DATABASE_URL" in names
    assert sorted(name for name in names if not setting_exists(name)) == []


def test_the_image_is_multi_stage_non_root_with_a_health_check_and_a_data_volume() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) >= 2
    assert "COPY --from=build" in DOCKERFILE
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert user and user[-1] not in ("root", "0")
    health = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", DOCKERFILE, re.M | re.S)
    assert health and any(path in health.group(1) for path in OPS_PATHS)
    data_dir = re.search(r"TIDINGS_DATA_DIR=(\S+)", DOCKERFILE)
    assert data_dir and _dockerfile_json("VOLUME") == [data_dir.group(1)]
    assert _dockerfile_json("ENTRYPOINT") == ["tidings"]
    # The servers never migrate in the scale-out mode: migrate is its own step.
    assert "migrate" not in _dockerfile_json("CMD")


def test_compose_runs_postgres_a_migration_api_processes_workers_and_the_listener() -> None:
    services = COMPOSE["services"]
    assert services["postgres"]["image"].startswith("postgres")
    assert services["migrate"]["command"] == ["migrate"]
    api, worker, bounces = services["api"], services["worker"], services["bounces"]
    assert api["command"][:2] == ["serve", "--no-dispatch"]
    assert worker["command"] == ["worker"] and bounces["command"] == ["worker"]
    for service in (api, worker, bounces):
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["environment"]["TIDINGS_DATABASE_URL"].startswith("postgresql+asyncpg")
    assert api["deploy"]["replicas"] >= 2 and worker["deploy"]["replicas"] >= 1
    # The listener runs in one process only, and its port is published and exposed.
    listener = str(bounces["environment"]["TIDINGS_INBOUND_SMTP__PORT"])
    assert "TIDINGS_INBOUND_SMTP__PORT" not in worker["environment"]
    assert any(mapping.endswith(f":{listener}") for mapping in bounces["ports"])
    assert listener in re.search(r"^EXPOSE (.*)$", DOCKERFILE, re.M).group(1).split()  # type: ignore[union-attr]
    # Only the proxy's forwarded headers are believed, and it has that address.
    proxy_address = services["proxy"]["networks"]["tidings"]["ipv4_address"]
    assert api["environment"]["TIDINGS_TRUSTED_PROXIES"] == proxy_address


def test_systemd_units_migrate_first_and_run_one_listener() -> None:
    for name in ("tidings-api@.service", "tidings-worker@.service", "tidings-bounces.service"):
        assert "Requires=tidings-migrate.service" in UNITS[name], name
        assert "User=tidings" in UNITS[name]
    assert "Type=oneshot" in UNITS["tidings-migrate.service"]
    assert "TIDINGS_INBOUND_SMTP__PORT" in UNITS["tidings-bounces.service"]
    assert "TIDINGS_INBOUND_SMTP__PORT" not in UNITS["tidings-worker@.service"]


def test_operations_walks_through_each_file() -> None:
    for name in ("deploy/Dockerfile", "deploy/compose.yaml", "deploy/systemd/", "TLS"):
        assert name in OPERATIONS, name
