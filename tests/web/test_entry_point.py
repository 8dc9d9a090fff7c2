"""`python -m web` serves on WEB_HOST:WEB_PORT and stops cleanly on SIGINT / SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sandbox._common import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_python_m_web_serves_and_stops(
    engine: AsyncEngine, db_url: str, redis_url: str, sig: signal.Signals
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
        "YOOKASSA_SHOP_ID": "",
        "TELEGRAM_WEBHOOK_URL": "",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                assert proc.returncode is None, "python -m web exited"
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        body = await resp.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("python -m web did not start")
            assert resp.status == 200 and body["status"] == "ok"
            async with http.get(f"http://127.0.0.1:{port}/yookassa/health") as resp:
                assert resp.status == 503  # no credentials in this environment
        proc.send_signal(sig)
        _, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr.decode()
        assert b"Traceback" not in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
