"""The fal emulator itself: its picture, its queue shapes, and its command-line runner."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

from imaging.fal import FalClient, FalSettings
from sandbox._common import free_port
from sandbox.fal import render_png

ROOT = Path(__file__).resolve().parents[2]


def test_render_png_is_deterministic_and_shows_the_prompt() -> None:
    a = render_png("Привет", 320, 200)
    assert a == render_png("Привет", 320, 200)
    assert a != render_png("Пока", 320, 200)
    arr = np.asarray(Image.open(io.BytesIO(a)).convert("RGB")).astype(int)
    assert arr.shape == (200, 320, 3)
    # The prompt is written in white with a black outline over a smooth gradient.
    assert (arr.min(axis=2) > 240).any() and (arr.max(axis=2) < 20).any()


async def test_queue_shapes_and_control_api_over_the_command_line_runner() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "sandbox.fal", "--port", str(port), "--key", "k1", "--polls", "2"],
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):  # wait for it to listen (bounded)
                try:
                    async with session.get(f"{base}/_emu/calls") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the emulator did not start")

            headers = {"Authorization": "Key k1"}
            async with session.post(
                f"{base}/fal-ai/flux/schnell", json={"prompt": "x"}, headers=headers
            ) as response:
                assert response.status == 200
                queued = await response.json()
            assert set(queued) >= {"request_id", "status_url", "response_url", "cancel_url"}
            assert queued["status_url"].startswith(f"{base}/fal-ai/flux/requests/")
            async with session.get(queued["response_url"], headers=headers) as response:
                assert response.status == 400  # still in progress
            states = []
            for _ in range(2):
                async with session.get(queued["status_url"], headers=headers) as response:
                    states.append((await response.json())["status"])
            assert states == ["IN_QUEUE", "COMPLETED"]
            async with session.get(queued["status_url"]) as response:
                assert response.status == 401  # no key

            async with session.post(
                f"{base}/_emu/faults", json={"kind": "500", "count": 1}
            ) as response:
                assert (await response.json())["faults"][0]["remaining"] == 1

        client = FalClient(FalSettings(key="k1", api_url=base, poll_interval=0.01))
        async with client:
            try:
                await client.generate("x")
            except Exception as exc:  # noqa: BLE001
                assert getattr(exc, "transient", None) is True
            else:
                raise AssertionError("the injected 500 did not surface")
            result = await client.generate("x", image_size="square")
        assert (result.width, result.height) == (512, 512)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)
