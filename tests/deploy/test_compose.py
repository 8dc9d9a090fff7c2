"""docker-compose.yml, read as docker compose reads it (PyYAML with merge keys; no engine
here): the services, their healthchecks, start order, restart policies, scaling, and that
every setting reaches the processes that read it."""

from __future__ import annotations

import re

import pytest

from billing.settings import Settings
from tests.deploy.helpers import (
    APP_SERVICES,
    LONG_RUNNING,
    compose,
    depends,
    env_example_active,
    env_example_names,
    env_files,
    healthcheck_command,
    interpolated_names,
    seconds,
)


@pytest.fixture(scope="module")
def services() -> dict:
    return compose()["services"]


def test_the_services_are_there_with_their_commands(services: dict) -> None:
    assert {"postgres", "redis", "migrate", "web", "bot", "worker"} <= set(services)
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["web"]["command"] == ["python", "-m", "web"]
    assert services["bot"]["command"] == ["python", "-m", "bot"]
    assert services["worker"]["command"] == ["python", "-m", "workers"]
    for name in APP_SERVICES:
        assert services[name]["image"] == "media-lab:latest"
        assert services[name]["build"] == "."


def test_postgres_keeps_its_data_and_redis_appends_every_write(services: dict) -> None:
    volumes = compose()["volumes"]
    pg = services["postgres"]
    assert any(
        v.endswith(":/var/lib/postgresql/data") and v.split(":")[0] in volumes
        for v in pg["volumes"]
    )
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") and v.split(":")[0] in volumes for v in redis["volumes"])


def test_every_long_running_service_has_a_healthcheck_of_its_own(services: dict) -> None:
    for name in LONG_RUNNING:
        assert "healthcheck" in services[name], name
        assert services[name]["healthcheck"].get("retries", 0) >= 3, name
    assert "pg_isready" in healthcheck_command(services["postgres"])
    assert "redis-cli ping" in healthcheck_command(services["redis"])
    web = healthcheck_command(services["web"])
    assert "http://127.0.0.1:8080/healthz" in web
    # the bot and the worker are not judged by another service's health
    assert "web:8080" not in healthcheck_command(services["bot"])
    worker = healthcheck_command(services["worker"])
    assert "Worker.all" in worker and "gethostname" in worker
    # the image has no curl: every app healthcheck runs Python
    for name in ("web", "bot", "worker"):
        assert services[name]["healthcheck"]["test"][:2] == ["CMD", "python"], name


def test_the_apps_start_after_the_database_redis_and_the_migration(services: dict) -> None:
    assert depends(services["migrate"]) == {"postgres": "service_healthy"}
    for name in ("web", "bot", "worker"):
        assert depends(services[name]) == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
        }, name
    assert depends(services["proxy"]) == {"web": "service_healthy"}


def test_restart_policies(services: dict) -> None:
    assert str(services["migrate"]["restart"]) == "no"  # one shot: never restarted
    for name in (*LONG_RUNNING, "proxy"):
        assert services[name]["restart"] in ("unless-stopped", "always"), name


def test_worker_and_web_scale_out(services: dict) -> None:
    for name in ("worker", "web", "bot"):
        assert "container_name" not in services[name], name  # a fixed name forbids --scale
    assert "ports" not in services["worker"]
    # one host port per web replica: a range, so --scale web=N does not collide
    (published,) = services["web"]["ports"]
    host, container = published.rsplit(":", 1)
    assert container == "8080"
    default = re.search(r"\$\{WEB_PUBLISH:-([^}]*)\}", host)
    assert default is not None
    low, high = default.group(1).rsplit(":", 1)[1].split("-")
    assert int(high) > int(low)
    assert default.group(1).startswith("127.0.0.1:")  # /metrics is not public by default


def test_the_worker_may_finish_its_job_before_it_is_killed(services: dict) -> None:
    grace = seconds(services["worker"]["stop_grace_period"])
    assert grace > Settings.model_fields["JOB_TIMEOUT_SECONDS"].default


def test_every_app_service_reads_the_env_file(services: dict) -> None:
    for name in APP_SERVICES:
        assert env_files(services[name]) == [".env"], name


def test_every_setting_the_code_reads_is_documented_and_reaches_the_apps(
    services: dict,
) -> None:
    documented = env_example_names()
    missing = sorted(set(Settings.model_fields) - documented)
    assert missing == [], f"settings missing from env.prod.example: {missing}"
    # What compose sets itself overrides .env: only these, with values the Settings accept.
    for name in APP_SERVICES:
        overrides = services[name].get("environment", {})
        assert set(overrides) <= {"DATABASE_URL", "REDIS_URL", "WEB_HOST", "WEB_PORT"}, name
        assert set(overrides) <= set(Settings.model_fields), name
        values = {
            k: v.replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", "pw")
            for k, v in overrides.items()
        }
        Settings(_env_file=None, **values)
    assert services["web"]["environment"]["WEB_PORT"] == "8080"
    assert (
        services["migrate"]["environment"]["DATABASE_URL"]
        == services["web"]["environment"]["DATABASE_URL"]
    )
    for name in ("web", "bot", "worker"):
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0", name


def test_every_variable_compose_interpolates_is_in_the_example() -> None:
    active = env_example_active()
    for name in interpolated_names():
        assert name in env_example_names(), name
    assert "POSTGRES_PASSWORD" in active and "PUBLIC_HOST" in active


def test_the_proxy_is_opt_in_trusted_and_hides_metrics(services: dict) -> None:
    proxy = services["proxy"]
    assert proxy["profiles"] == ["proxy"]
    address = proxy["networks"]["default"]["ipv4_address"]
    subnet = compose()["networks"]["default"]["ipam"]["config"][0]["subnet"]
    import ipaddress

    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    trusted = Settings(
        _env_file=None, TRUSTED_PROXIES=env_example_active()["TRUSTED_PROXIES"]
    ).TRUSTED_PROXIES
    assert any(ipaddress.ip_address(address) in ipaddress.ip_network(n) for n in trusted)
    caddyfile = compose()["configs"]["caddyfile"]["content"]
    assert "${PUBLIC_HOST" in caddyfile
    assert "respond @private 404" in caddyfile and "/metrics" in caddyfile
    assert "name web" in caddyfile and "port 8080" in caddyfile
