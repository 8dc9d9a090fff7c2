"""python -m bot: the composition root polls the emulator; with a webhook URL it does not."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from sandbox._common import ServerHandle
from tests.bot.conftest import process_env


async def test_python_m_bot_registers_commands_and_answers_start(
    engine, db_url: str, redis_url: str, tg_server: ServerHandle, tg, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,  # no .env from the working tree
        env=process_env(db_url, redis_url, tg_server.url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        user = tg.user(9301)
        await user.send_text("/start")
        greeting = await user.wait_for_text("Бесплатных операций: 4 из 4", timeout=60)
        assert "✨ Ретушь" in greeting.button_texts
        assert "💰 Оплатить / Баланс" in greeting.button_texts
        commands = await tg.calls("setMyCommands")
        assert {c["params"].get("language_code") for c in commands} == {None, "en"}
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode()


async def test_python_m_bot_does_not_poll_when_a_webhook_url_is_set(
    db_url: str, redis_url: str, tg_server: ServerHandle, tg, tmp_path: Path
) -> None:
    env = process_env(
        db_url,
        redis_url,
        tg_server.url,
        TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram",
        TELEGRAM_WEBHOOK_SECRET="webhook-secret-for-tests",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert b"python -m web" in output
    assert await tg.calls("getUpdates", include_get_updates=True) == []
