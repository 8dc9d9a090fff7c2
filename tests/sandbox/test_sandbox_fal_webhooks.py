"""The fal emulator's queue with webhooks: each model kind's picture shows what was done, a
webhook not answered 2xx is delivered again (signed afresh each time, fal's way), a lost one
is never sent, a refusal is an ERROR webhook, and the client's submit/poll read it all."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from imaging.errors import BackendError
from imaging.fal import FalClient, FalSettings
from imaging.fal_webhook import Jwks, parse_webhook
from sandbox._common import ServerHandle
from sandbox.fal import EMU_KEY, FalEmulator
from sandbox.fal import create_app as create_fal_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEY = "k"


class Receiver:
    """A webhook endpoint that answers ``statuses`` in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.arrived.set()
        return web.Response(status=status)


@pytest.fixture
async def fal() -> AsyncIterator[tuple[ServerHandle, FalEmulator]]:
    app = create_fal_app(key=KEY, polls_until_done=1, retry_delays=(0.05, 0.05, 0.05))
    async with ServerHandle(app) as server:
        yield server, app[EMU_KEY]


async def receiver(statuses: list[int]) -> tuple[Receiver, ServerHandle]:
    hook = Receiver(statuses)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    return hook, await ServerHandle(app).start()


def uri(name: str) -> str:
    return "data:image/jpeg;base64," + base64.b64encode((FIXTURES / name).read_bytes()).decode()


def size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


async def submit(fal: Any, model: str, payload: dict[str, Any], hook_url: str) -> str:
    server, _ = fal
    async with FalClient(FalSettings(key=KEY, api_url=server.url)) as client:
        queued = await client.submit(payload, model=model, webhook_url=hook_url)
    return queued.request_id


async def test_a_webhook_answered_with_errors_is_delivered_again_each_time_signed(fal) -> None:
    server, emu = fal
    hook, hook_server = await receiver([503, 500])
    try:
        rid = await submit(
            fal, "fal-ai/flux/schnell", {"prompt": "сова"}, f"{hook_server.url}/hook"
        )
        await asyncio.wait_for(hook.arrived.wait(), 120)
    finally:
        await hook_server.stop()
    assert [w["status"] for w in emu.webhooks] == [503, 500, 200]
    jwks = Jwks(f"{server.url}/.well-known/jwks.json")
    for headers, body in hook.got:
        assert await jwks.verify(headers, body) == rid
    outcome = parse_webhook(hook.got[-1][1], rid)
    assert outcome.ok and outcome.output["images"][0]["url"].endswith(f"/files/{rid}.png")
    assert jwks.fetches == 1  # cached


async def test_a_dropped_webhook_is_never_sent_and_the_poll_finds_the_result(fal) -> None:
    server, emu = fal
    emu.drop_webhooks = 1
    hook, hook_server = await receiver([])
    try:
        rid = await submit(fal, "fal-ai/flux/schnell", {"prompt": "ёж"}, f"{hook_server.url}/hook")
        async with FalClient(FalSettings(key=KEY, api_url=server.url)) as client:
            request = client.request("fal-ai/flux/schnell", rid)
            seen = None
            while seen is None:
                seen = await client.poll(request)
                await asyncio.sleep(0.05)
    finally:
        await hook_server.stop()
    assert seen[0] == "OK" and seen[1]["images"][0]["width"] == 1024
    assert hook.got == [] and emu.webhooks == []


@pytest.mark.parametrize("outcome", ["refuse", "invalid", "error"])
async def test_a_refusal_is_an_error_webhook_and_an_error_result(fal, outcome: str) -> None:
    server, emu = fal
    emu.script(outcome)
    hook, hook_server = await receiver([])
    try:
        rid = await submit(fal, "fal-ai/flux/schnell", {"prompt": "x"}, f"{hook_server.url}/hook")
        await asyncio.wait_for(hook.arrived.wait(), 120)
        async with FalClient(FalSettings(key=KEY, api_url=server.url)) as client:
            request = client.request("fal-ai/flux/schnell", rid)
            if outcome == "error":  # a 500 may be the gateway's: the poll asks again later
                with pytest.raises(BackendError) as info:
                    await client.poll(request)
                assert info.value.transient
                polled: Any = ("ERROR", None)
            else:
                polled = await client.poll(request)
    finally:
        await hook_server.stop()
    body = json.loads(hook.got[0][1])
    assert body["status"] == "ERROR"
    reason = parse_webhook(hook.got[0][1], rid).reason
    assert reason == {"refuse": "refused", "invalid": "invalid-input", "error": "backend"}[outcome]
    assert polled is not None and polled[0] == "ERROR"


async def test_each_model_kind_draws_what_it_did(fal) -> None:
    _, emu = fal
    hook, hook_server = await receiver([])
    url = f"{hook_server.url}/hook"
    try:
        jobs = {
            "t2i-a": await submit(fal, "fal-ai/flux/schnell", {"prompt": "кот"}, url),
            "t2i-b": await submit(fal, "fal-ai/flux/schnell", {"prompt": "пёс"}, url),
            "merge": await submit(
                fal,
                "fal-ai/flux-pro/kontext/multi",
                {"prompt": "вместе", "image_urls": [uri("hopper.jpg"), uri("coffee.jpg")]},
                url,
            ),
            "upscale": await submit(
                fal, "fal-ai/esrgan", {"image_url": uri("coffee.jpg"), "scale": 2}, url
            ),
            "edit": await submit(
                fal,
                "fal-ai/flux-pro/kontext",
                {"prompt": "розовое небо", "image_url": uri("coffee.jpg")},
                url,
            ),
            "swap": await submit(
                fal,
                "fal-ai/face-swap",
                {"base_image_url": uri("astronaut.jpg"), "swap_image_url": uri("hopper.jpg")},
                url,
            ),
        }

        # Each request's model run (and its webhook) is a task of the emulator's.
        await asyncio.gather(*(emu.jobs[rid].task for rid in jobs.values()))
    finally:
        await hook_server.stop()
    png = {name: emu.jobs[rid].png for name, rid in jobs.items()}
    assert all(png.values())
    assert png["t2i-a"] != png["t2i-b"]  # the prompt is drawn
    hopper, coffee = (
        size((FIXTURES / "hopper.jpg").read_bytes()),
        size((FIXTURES / "coffee.jpg").read_bytes()),
    )
    merged = size(png["merge"])
    height = min(hopper[1], coffee[1])
    assert merged[1] == height  # side by side, one height
    assert merged[0] > max(hopper[0], coffee[0])
    assert size(png["upscale"]) == (coffee[0] * 2, coffee[1] * 2)
    assert size(png["edit"]) == (coffee[0] + 24, coffee[1] + 24)  # framed
    # The face swap boxed the astronaut's face: the box's lime pixels are there.
    with Image.open(io.BytesIO(png["swap"])) as img:
        colours = {c for _, c in img.convert("RGB").getcolors(1 << 24) or []}
    assert (0, 255, 0) in colours
