"""``python -m sandbox`` (``make run``): it comes up with local stand-ins, the bot, the worker
and the web server work together through them, Ctrl-C / SIGTERM stops every process it
started, a crash stops the rest, and a second run finds the first run's data."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest
import redis
from rq import Queue, Worker

from billing.db import make_engine
from billing.settings import Settings
from sandbox import launcher
from sandbox._common import free_port
from sandbox.telegram_client import TelegramEmulatorClient
from tests.conftest import assert_audit_clean
from tests.sandbox_run.conftest import FIXTURES, group_alive, sandbox_env

WAIT = 180.0  # seconds: a generous bound on conditions, never a sleep
CONFIG_PREFIXES = ("BOT_", "YOOKASSA_", "FAL_", "TELEGRAM_", "DATABASE_", "REDIS_", "WEB_")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decisions depend on what is configured: start from nothing configured."""
    import os

    for name in list(os.environ):
        if name.startswith(CONFIG_PREFIXES):
            monkeypatch.delenv(name)


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


async def _audit(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await assert_audit_clean(engine)
    finally:
        await engine.dispose()


async def test_run_command_serves_the_whole_bot_and_ctrl_c_stops_every_process(
    redis_url: str, sandbox_factory
) -> None:
    run = sandbox_factory(env=sandbox_env(redis_url))
    info = run.start()
    assert (info["telegram"], info["yookassa"], info["fal"]) == ("emulator", "emulator", "fake")
    assert info["database_url"] == f"sqlite:///{run.state_dir / 'media_lab.db'}"
    assert info["redis_url"] == redis_url

    banner = run.output()
    assert info["chat_url"] in banner
    assert info["web_url"] in banner
    assert "FAKE image generator" in banner
    assert "logs/{bot,workers,web,sandbox}.log" in banner
    assert "Ctrl-C" in banner
    for name in ("bot", "workers", "web"):
        assert Path(info["logs"][name]).exists()

    status, _ = await _get(info["web_url"] + "/healthz")
    assert status == 200
    status, page = await _get(info["chat_url"])
    assert status == 200 and "Media Lab" in page

    async with TelegramEmulatorClient(info["telegram_url"]) as tg:
        user = tg.user(info["chat_user_id"], first_name="Гость", language="ru")
        await user.send_text("/start")
        menu = await user.wait_for_text("Что сделаем", WAIT)
        assert "🎨 Создать" in menu.button_texts  # the fake generator makes it available
        await user.press(menu, text="⬆️ Улучшить")
        await user.wait_for_text("Пришлите фото", WAIT)
        await user.send_photo((FIXTURES / "astronaut.jpg").read_bytes())
        result = await user.wait_for(lambda m: bool(m.photo), WAIT)
        assert "1024×1024" in result.text
        # 🎨: the job submits to the fake fal and ends; its signed webhook reaches web,
        # which checks it with the fake's keys and enqueues the delivery.
        await user.press(menu, text="🎨 Создать")
        await user.wait_for_text("Опишите картинку", WAIT)
        await user.send_text("рыжий кот-астронавт")
        made = await user.wait_for(lambda m: bool(m.photo) and "создано" in m.text, WAIT)
        assert made.message_id != result.message_id
        assert "recorded (ok)" in Path(info["logs"]["web"]).read_text()

    groups = list(info["processes"].values())
    assert all(group_alive(pgid) for pgid in groups)
    assert run.stop(signal.SIGINT) == 0
    assert [pgid for pgid in groups if group_alive(pgid)] == []
    assert not (run.state_dir / "run.json").exists()
    assert "Stopped." in run.output()
    await _audit(info["database_url"])


async def test_second_run_finds_the_chat_and_the_books_of_the_first(
    redis_url: str, sandbox_factory
) -> None:
    env = sandbox_env(redis_url)
    first = sandbox_factory(env=env)
    info = first.start()
    async with TelegramEmulatorClient(info["telegram_url"]) as tg:
        user = tg.user(2002, first_name="Вера", language="ru")
        await user.send_text("/start")
        await user.wait_for_text("Бесплатных операций: 4 из 4", WAIT)
    assert first.stop(signal.SIGTERM) == 0

    second = sandbox_factory(env=env)  # the same state directory
    info = second.start()
    async with TelegramEmulatorClient(info["telegram_url"]) as tg:
        user = tg.user(2002, first_name="Вера", language="ru")
        before = [m.text for m in await user.messages()]
        assert before[0] == "/start" and "Привет, Вера" in before[1]
        again = await user.send_text("/balance")
        assert again.message_id == len(before) + 1  # ids go on: no collision with old keys
        await user.wait_for_text("Баланс", WAIT)
    assert second.stop() == 0
    await _audit(info["database_url"])


async def test_a_process_that_dies_stops_the_sandbox_with_its_log(
    redis_url: str, sandbox_factory
) -> None:
    run = sandbox_factory(env=sandbox_env(redis_url))
    info = run.start()
    groups = info["processes"]
    launcher_pid = info["pid"]
    import os

    os.killpg(groups["bot"], signal.SIGKILL)
    code = await asyncio.to_thread(run.proc.wait, WAIT)
    assert code == 1
    assert "bot stopped unexpectedly" in run.output()
    assert [g for g in groups.values() if group_alive(g)] == []
    assert not group_alive(launcher_pid)


# ----------------------------------------------------------------------- the decisions


def _options(tmp_path: Path) -> launcher.Options:
    return launcher.Options(state_dir=tmp_path, ports={name: 0 for name in launcher.DEFAULT_PORTS})


def test_configured_services_are_used_as_they_are(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        BOT_TOKEN="123:real-token",
        YOOKASSA_SHOP_ID="555",
        YOOKASSA_SECRET_KEY="live_key",
        FAL_KEY="fal-key",
        DATABASE_URL="postgresql://u:p@db:5432/medialab",
    )
    sandbox = launcher.Sandbox(_options(tmp_path), environ={})
    plan = sandbox.make_plan(settings)
    assert (plan.telegram, plan.yookassa, plan.fal) == ("real", "real", "real")
    assert plan.database_url == "postgresql+asyncpg://u:p@db:5432/medialab"
    assert set(plan.ports) == {"web"}
    plan.redis_url = "redis://127.0.0.1:6379/0"
    env = sandbox.app_env(settings, plan)
    for name in (
        "TELEGRAM_API_URL",
        "YOOKASSA_API_URL",
        "YOOKASSA_SHOP_ID",
        "YOOKASSA_TRUSTED_NETWORKS",
        "FAL_KEY",
        "FAL_API_URL",
    ):
        assert name not in env, name


def test_local_stand_ins_are_wired_to_each_other_and_trust_localhost(tmp_path: Path) -> None:
    settings = Settings(_env_file=None)
    environ = {"YOOKASSA_TRUSTED_NETWORKS": "10.0.0.0/8"}
    sandbox = launcher.Sandbox(_options(tmp_path), environ=environ)
    plan = sandbox.make_plan(settings)
    assert (plan.telegram, plan.yookassa, plan.fal) == ("emulator", "emulator", "fake")
    assert plan.database_url == f"sqlite:///{tmp_path / 'media_lab.db'}"
    assert len(set(plan.ports.values())) == 4
    plan.redis_url = "redis://127.0.0.1:6379/0"
    env = sandbox.app_env(settings, plan)
    assert env["TELEGRAM_API_URL"] == plan.url("telegram")
    assert env["TELEGRAM_WEBHOOK_URL"] == ""
    assert env["YOOKASSA_API_URL"] == plan.url("yookassa") + "/v3"
    assert env["YOOKASSA_WEBHOOK_URL"] == plan.url("web") + "/yookassa/webhook"
    assert env["YOOKASSA_RETURN_URL"] == plan.url("telegram") + "/chat"
    assert env["YOOKASSA_TRUSTED_NETWORKS"] == "10.0.0.0/8,127.0.0.1/32,::1/128"
    assert env["FAL_API_URL"] == plan.url("fal")
    # The fake fal posts its signed webhooks to the web server, checked with its own keys.
    assert env["FAL_JWKS_URL"] == plan.url("fal") + "/.well-known/jwks.json"
    assert env["WEB_PUBLIC_URL"] == plan.url("web")
    assert env["WEB_HOST"] == "127.0.0.1" and env["WEB_PORT"] == str(plan.ports["web"])
    # every value the children get is one the Settings accept
    child = Settings(
        _env_file=None, **{k: v for k, v in env.items() if k in Settings.model_fields}
    )
    assert child.yookassa_configured and child.fal_configured


def test_without_a_key_and_with_no_fake_fal_the_generator_is_off(tmp_path: Path) -> None:
    options = _options(tmp_path)
    options.fake_fal = False
    sandbox = launcher.Sandbox(options, environ={})
    plan = sandbox.make_plan(Settings(_env_file=None))
    plan.redis_url = "redis://127.0.0.1:6379/0"
    assert plan.fal == "off" and "fal" not in plan.ports
    assert sandbox.app_env(Settings(_env_file=None), plan)["FAL_KEY"] == ""


def test_a_busy_default_port_is_replaced_by_a_free_one() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        picked = launcher.pick_port("127.0.0.1", taken)
        assert picked != taken and launcher.port_is_free("127.0.0.1", picked)
    assert launcher.pick_port("127.0.0.1", taken) == taken


# ------------------------------------------------------------------------ Redis choice


def _plan(tmp_path: Path) -> launcher.Plan:
    (tmp_path / "logs").mkdir(parents=True, exist_ok=True)
    return launcher.Plan(
        state_dir=tmp_path, host="127.0.0.1", database_url="sqlite://", database_note=""
    )


def test_a_redis_url_that_answers_is_used(tmp_path: Path, redis_url: str) -> None:
    sandbox = launcher.Sandbox(_options(tmp_path), environ={}, out=lambda _: None)
    plan = _plan(tmp_path)
    sandbox.pick_redis(Settings(_env_file=None, REDIS_URL=redis_url), plan)
    assert plan.redis_url == redis_url and sandbox.helpers == []


def test_no_redis_anywhere_starts_redis_server_with_data_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(launcher, "LOCAL_REDIS_URL", dead)
    said: list[str] = []
    settings = Settings(_env_file=None, REDIS_URL=dead)

    sandbox = launcher.Sandbox(_options(tmp_path), environ={}, out=said.append)
    plan = _plan(tmp_path)
    sandbox.pick_redis(settings, plan)
    try:
        assert "redis-server" in plan.redis_note
        assert any("does not answer" in line for line in said)
        redis.Redis.from_url(plan.redis_url).set("kept", "yes")
    finally:
        asyncio.run(launcher.stop_children(sandbox.helpers, 10))
    assert not launcher.redis_answers(plan.redis_url)

    again = launcher.Sandbox(_options(tmp_path), environ={}, out=said.append)
    plan = _plan(tmp_path)
    again.pick_redis(settings, plan)
    try:
        assert redis.Redis.from_url(plan.redis_url).get("kept") == b"yes"
    finally:
        asyncio.run(launcher.stop_children(again.helpers, 10))


def test_no_redis_server_binary_uses_fakeredis_that_forking_rq_workers_can_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launcher, "LOCAL_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    sandbox = launcher.Sandbox(_options(tmp_path), environ={}, out=lambda _: None)
    plan = _plan(tmp_path)
    sandbox.pick_redis(Settings(_env_file=None), plan)
    try:
        assert "fakeredis" in plan.redis_note
        conn = redis.Redis.from_url(plan.redis_url)
        queue = Queue("sandbox-check", connection=conn)
        job = queue.enqueue("operator.add", 2, 3)
        worker = Worker([queue], connection=conn)  # the forking worker: a horse per job
        assert worker.work(burst=True) is True
        job.refresh()
        assert job.get_status() == "finished"
        assert job.return_value() == 5
    finally:
        asyncio.run(launcher.stop_children(sandbox.helpers, 10))
    assert [c for c in sandbox.helpers if c.group_alive()] == []
