"""🎨 FalClient against the local fal queue emulator (sandbox/fal.py) on a real port."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from imaging.errors import BackendError, InvalidText
from imaging.fal import FalClient, FalSettings, check_prompt, data_uri
from sandbox._common import free_port
from sandbox.fal import EMU_KEY, FalEmulator, create_app

KEY = "sandbox-key"


class Sandbox:
    def __init__(self, url: str, emu: FalEmulator) -> None:
        self.url = url
        self.emu = emu

    def settings(self, **overrides: object) -> FalSettings:
        values: dict[str, object] = {
            "key": KEY,
            "api_url": self.url,
            "poll_interval": 0.01,
            "timeout": 10.0,
            "request_timeout": 5.0,
            "image_size": "square",
        }
        values.update(overrides)
        return FalSettings(**values)  # type: ignore[arg-type]

    def endpoints(self) -> list[str]:
        return [call["endpoint"] for call in self.emu.calls]


@pytest.fixture
async def fal() -> AsyncIterator[Sandbox]:
    app = create_app(key=KEY, polls_until_done=3)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield Sandbox(f"http://127.0.0.1:{port}", app[EMU_KEY])
    finally:
        await runner.cleanup()


async def test_generate_returns_the_image(fal: Sandbox) -> None:
    async with FalClient(fal.settings()) as client:
        result = await client.generate("Кот в космосе, акварель")
    assert result.op == "generate"
    assert result.format == "png"
    assert (result.width, result.height) == (512, 512)
    with Image.open(io.BytesIO(result.data)) as img:
        assert img.format == "PNG" and img.size == (512, 512)
    assert result.params["model"] == "fal-ai/flux/schnell"
    assert result.params["prompt"] == "Кот в космосе, акварель"
    assert isinstance(result.params["seed"], int)
    # submit, polls until COMPLETED (IN_QUEUE, IN_PROGRESS, COMPLETED), result, download
    assert fal.endpoints() == ["submit", "status", "status", "status", "result", "file"]


async def test_same_prompt_same_picture_other_prompt_other_picture(fal: Sandbox) -> None:
    async with FalClient(fal.settings()) as client:
        first = await client.generate("a red fox")
        again = await client.generate("a red fox")
        other = await client.generate("a blue whale", image_size="landscape_16_9")
    assert first.data == again.data
    assert other.data != first.data
    assert (other.width, other.height) == (1024, 576)


async def test_wrong_key_is_a_permanent_error(fal: Sandbox) -> None:
    async with FalClient(fal.settings(key="wrong")) as client:
        with pytest.raises(BackendError) as info:
            await client.generate("anything")
    assert info.value.transient is False
    assert info.value.status == 401
    assert fal.endpoints() == ["submit"]


async def test_rejected_input_is_a_permanent_error(fal: Sandbox) -> None:
    async with FalClient(fal.settings()) as client:
        with pytest.raises(BackendError) as info:
            await client.generate("a fox", image_size={"width": 10, "height": 10})
    assert info.value.transient is False
    assert info.value.status == 422
    assert "image_size" in str(info.value)


async def test_server_errors_on_submit_are_transient(fal: Sandbox) -> None:
    fal.emu.inject("500", 2)
    async with FalClient(fal.settings()) as client:
        with pytest.raises(BackendError) as info:
            await client.generate("a fox")
        assert info.value.transient is True
        assert info.value.status == 500
        with pytest.raises(BackendError):  # the second injected 500
            await client.generate("a fox")
        result = await client.generate("a fox")  # faults used up: it works again
    assert result.width == 512


@pytest.mark.parametrize("endpoint", ["status", "result", "file"])
async def test_server_errors_later_in_the_flow_are_transient(fal: Sandbox, endpoint: str) -> None:
    fal.emu.inject("502", 1, endpoints=[endpoint])
    async with FalClient(fal.settings()) as client:
        with pytest.raises(BackendError) as info:
            await client.generate("a fox")
    assert info.value.transient is True
    assert info.value.status == 502


async def test_rate_limit_is_transient(fal: Sandbox) -> None:
    fal.emu.inject("429", 1, endpoints=["submit"])
    async with FalClient(fal.settings()) as client:
        with pytest.raises(BackendError) as info:
            await client.generate("a fox")
    assert info.value.transient is True and info.value.status == 429


async def test_total_timeout_is_transient_and_cancels_the_request(fal: Sandbox) -> None:
    fal.emu.inject("delay", 1, endpoints=["status"], delay=3.0)
    async with FalClient(fal.settings(timeout=0.3)) as client:
        with pytest.raises(BackendError) as info:
            await client.generate("a slow fox")
    assert info.value.transient is True
    assert info.value.status is None
    assert "did not finish" in str(info.value)
    assert "cancel" in fal.endpoints()
    job = next(iter(fal.emu.jobs.values()))
    assert job.cancelled


async def test_slow_single_request_is_transient(fal: Sandbox) -> None:
    fal.emu.inject("delay", 1, endpoints=["submit"], delay=3.0)
    async with FalClient(fal.settings(request_timeout=0.2)) as client:
        with pytest.raises(BackendError) as info:
            await client.generate("a fox")
    assert info.value.transient is True
    assert "timed out" in str(info.value)


@pytest.mark.parametrize("endpoint", ["submit", "status"])
async def test_dropped_connection_is_transient(fal: Sandbox, endpoint: str) -> None:
    # aiohttp silently retries an idempotent GET once on a dropped keep-alive
    # connection, so drop a few in a row.
    fal.emu.inject("disconnect", 3, endpoints=[endpoint])
    async with FalClient(fal.settings()) as client:
        with pytest.raises(BackendError) as info:
            await client.generate("a fox")
    assert info.value.transient is True
    assert info.value.status is None


async def test_nobody_listening_is_transient() -> None:
    settings = FalSettings(key=KEY, api_url=f"http://127.0.0.1:{free_port()}", timeout=5)
    async with FalClient(settings) as client:
        with pytest.raises(BackendError) as info:
            await client.generate("a fox")
    assert info.value.transient is True


async def test_shared_session_is_not_closed(fal: Sandbox) -> None:
    async with aiohttp.ClientSession() as session:
        async with FalClient(fal.settings(), session=session) as client:
            await client.generate("a fox")
        assert not session.closed


async def test_image_to_image_sends_a_data_uri(fal: Sandbox, astronaut: bytes) -> None:
    uri = data_uri(astronaut)
    assert uri.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == astronaut  # small JPEG: sent as is
    reduced = base64.b64decode(data_uri(astronaut, max_side=256).split(",", 1)[1])
    assert Image.open(io.BytesIO(reduced)).size == (256, 256)
    async with FalClient(fal.settings()) as client:
        result = await client.generate("make it a painting", image=astronaut)
    assert result.width > 0 and result.op == "generate"


def test_key_is_only_sent_to_the_queue_origin() -> None:
    client = FalClient(FalSettings(key="k", api_url="https://queue.example.test"))
    assert client._auth_headers("https://queue.example.test/x/y") == {"Authorization": "Key k"}
    assert client._auth_headers("https://cdn.example.test/file.png") == {}
    assert client._own_url("https://evil.example.test/s", "fallback") == "fallback"


def test_settings_from_env_and_prompt_check() -> None:
    settings = FalSettings.from_env(
        {"FAL_KEY": "abc", "FAL_API_URL": "http://127.0.0.1:9", "FAL_TIMEOUT": "30"}
    )
    assert settings.key == "abc" and settings.api_url == "http://127.0.0.1:9"
    assert settings.timeout == 30.0 and settings.model == "fal-ai/flux/schnell"
    assert "abc" not in repr(settings)
    defaults = FalSettings.from_env({"FAL_KEY": "abc"})
    assert defaults.api_url == "https://queue.fal.run"
    with pytest.raises(ValueError):
        FalClient(FalSettings.from_env({}))
    assert check_prompt("  a   fox  ") == "a fox"
    with pytest.raises(InvalidText):
        check_prompt("   ")
    with pytest.raises(InvalidText):
        check_prompt("x" * 1001)
