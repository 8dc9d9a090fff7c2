"""Reading the deployment files the way docker compose would (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "env.prod.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

APP_SERVICES = ("migrate", "web", "bot", "worker")
LONG_RUNNING = ("postgres", "redis", "web", "bot", "worker")
# Variables only docker compose uses (interpolation in docker-compose.yml), not Settings.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "PUBLIC_HOST", "WEB_PUBLISH"}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
ACTIVE_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
DEFAULT_LINE = re.compile(r"^#\s?([A-Z][A-Z0-9_]*)=(.*)$")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def interpolated_names() -> set[str]:
    return set(INTERPOLATION.findall(COMPOSE.read_text()))


def env_example_active() -> dict[str, str]:
    """The NAME=value lines (what an operator sets), parsed as docker compose's env_file."""
    return {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}


def env_example_defaults() -> dict[str, str]:
    """The commented ``# NAME=value`` lines: the documented defaults."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = DEFAULT_LINE.match(line.strip())
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def env_example_names() -> set[str]:
    return set(env_example_active()) | set(env_example_defaults())


def env_files(service: dict[str, Any]) -> list[str]:
    value = service.get("env_file", [])
    items = value if isinstance(value, list) else [value]
    return [item["path"] if isinstance(item, dict) else item for item in items]


def depends(service: dict[str, Any]) -> dict[str, str]:
    value = service.get("depends_on") or {}
    if isinstance(value, list):
        return {name: "service_started" for name in value}
    return {name: spec.get("condition", "service_started") for name, spec in value.items()}


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def seconds(value: str) -> float:
    """A compose duration ("200s", "1m30s", "500ms") in seconds."""
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total
