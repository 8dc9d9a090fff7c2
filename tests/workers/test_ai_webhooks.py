"""AI operations on fal's queue, end to end: the worker submits with a webhook and ends; the
fal emulator (sandbox/fal.py) runs the model and posts a signed webhook to the real web
server, which checks the signature against the emulator's JWKS, records the outcome once
and enqueues the delivery; the worker sends the photo. The refusals, the lost webhook, the
model that never finishes, each against the real PostgreSQL, Redis, RQ and the Telegram
emulator; the ledger audit runs after every test (the ``engine`` fixture)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from rq.job import Job

from billing import model_calls
from billing.models import LedgerKind
from imaging.fal_webhook import parse_webhook
from jobqueue.queue import job_id_for
from sandbox._common import ServerHandle, free_port
from sandbox.fal import EMU_KEY, FalEmulator, model_output
from sandbox.fal import create_app as create_fal_app
from tests.workers.conftest import Harness
from web.app import create_app as create_web_app

KEY = "fal-test-key"


@dataclass
class AiStack:
    h: Harness
    emu: FalEmulator
    fal_url: str
    web_url: str
    worker_env: dict[str, Any]

    @property
    def webhook(self) -> str:
        return f"{self.web_url}/fal/webhook"

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        async with aiohttp.ClientSession() as session:
            async with session.post(self.webhook, data=body, headers=headers) as response:
                return response.status

    async def request_id(self, operation_id: int) -> str:
        async def check() -> str | None:
            return (await self.h.operation(operation_id)).model_request_id

        return await self.h.wait_until(check, f"operation {operation_id} to be submitted")


@pytest.fixture
async def ai_stack(
    harness_factory: Callable[..., Harness], engine: Any
) -> AsyncIterator[Callable[..., Any]]:
    """``await make(**worker settings)``: the fal emulator, the web server and one worker."""
    stacks: list[tuple[ServerHandle, ServerHandle]] = []

    async def make(**overrides: Any) -> AiStack:
        fal = await ServerHandle(
            create_fal_app(key=KEY, polls_until_done=1, retry_delays=(0.2, 0.5, 1.0, 2.0))
        ).start()
        port = free_port()
        env: dict[str, Any] = {
            "FAL_KEY": KEY,
            "FAL_API_URL": fal.url,
            "FAL_JWKS_URL": f"{fal.url}/.well-known/jwks.json",
            "WEB_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "FAL_POLL_AFTER_SECONDS": 600,  # no poll unless a test asks for one
        }
        env.update(overrides)
        h = harness_factory(FREE_OPERATIONS_COUNT=0, **env)
        web = await ServerHandle(
            create_web_app(h.settings, sessionmaker=h.sessionmaker), port=port
        ).start()
        stacks.append((fal, web))
        h.start_worker(**env)
        return AiStack(h, fal.app[EMU_KEY], fal.url, web.url, env)

    yield make
    for fal, web in stacks:
        await web.stop()
        await fal.stop()


def ok_body(s: AiStack, rid: str) -> bytes:
    """A webhook body as fal posts it for a finished request: status OK, one image."""
    return json.dumps(
        {
            "request_id": rid,
            "gateway_request_id": rid,
            "status": "OK",
            "payload": {"images": [{"url": f"{s.fal_url}/files/x.png"}]},
        }
    ).encode()


async def new_user(s: AiStack) -> Any:
    user = s.h.user()
    await user.send_text("/start")  # the chat exists before the bot writes to it
    return user


async def photos(user: Any) -> list[Any]:
    return [m for m in await user.bot_messages() if m.raw.get("photo")]


async def test_generate_is_delivered_through_the_signed_webhook(ai_stack) -> None:
    s = await ai_stack()
    s.emu.model_seconds = 0.5
    user = await new_user(s)
    operation_id = await s.h.new_operation(
        user, "generate", [], text="кот в космосе", balance=1000
    )
    op = await s.h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{s.h.logs()}"

    # The job ended at the submit: it returned before the model was done.
    job = Job.fetch(job_id_for(operation_id, op.key_token), connection=s.h.redis)
    assert job.return_value()["outcome"] == "submitted"
    assert job.return_value()["request_id"] == op.model_request_id
    # One signed webhook, taken at the first attempt; the result recorded on the operation.
    assert [(w["request_id"], w["status"]) for w in s.emu.webhooks] == [(op.model_request_id, 200)]
    assert op.model_result["ok"] is True
    [photo] = await photos(user)
    assert photo.message_id == op.result_ref["photo_message_id"]
    with Image.open(io.BytesIO(await user.download(photo.file_id))) as img:
        assert img.size == (1024, 1024)  # the emulator's square_hd picture of the prompt
    assert await s.h.entries(operation_id, LedgerKind.REFUND) == 0


@pytest.mark.parametrize(
    ("op_type", "files", "text", "result_size"),
    [
        ("edit", ["hopper.jpg"], "сделай небо розовым", None),
        ("merge", ["hopper.jpg", "coffee.jpg"], "за одним столом", None),
        ("face_swap", ["astronaut.jpg", "hopper.jpg"], None, None),
        ("retouch", ["astronaut.jpg"], None, None),
        ("upscale", ["coffee.jpg"], None, "x2"),
    ],
)
async def test_each_mode_is_delivered_from_its_model(
    ai_stack, images, op_type: str, files: list[str], text: str | None, result_size: str | None
) -> None:
    s = await ai_stack()
    user = s.h.user()
    file_ids = [await s.h.upload(user, images(name)) for name in files]
    operation_id = await s.h.new_operation(user, op_type, file_ids, text=text, balance=1000)
    op = await s.h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{s.h.logs()}"
    job = s.emu.jobs[op.model_request_id]
    kinds = {
        "edit": "edit",
        "merge": "merge",
        "face_swap": "face-swap",
        "retouch": "restore",
        "upscale": "upscale",
    }
    assert job.kind == kinds[op_type]
    if text:
        assert job.body["prompt"] == text
    [photo] = await photos(user)
    delivered = await user.download(photo.file_id)
    with Image.open(io.BytesIO(job.png)) as made:
        made_size = made.size
    with Image.open(io.BytesIO(delivered)) as got:
        assert got.size == made_size  # what the model made is what reached the chat
    if result_size == "x2":
        with Image.open(io.BytesIO(images(files[0]))) as original:
            assert made_size[0] >= 2 * min(original.size[0], 1536) - 2


async def test_unsigned_forged_and_stale_webhooks_are_refused_and_change_nothing(
    ai_stack,
) -> None:
    s = await ai_stack()
    s.emu.script("hang")
    user = await new_user(s)
    operation_id = await s.h.new_operation(user, "generate", [], text="лиса", balance=1000)
    rid = await s.request_id(operation_id)
    body = ok_body(s, rid)

    unsigned = {"Content-Type": "application/json"}
    assert await s.post(body, unsigned) == 401
    # Signed by a key that is not in fal's JWKS.
    forger = FalEmulator(key="x", signing_key=Ed25519PrivateKey.generate())
    assert await s.post(body, forger.sign(rid, body)) == 401
    # fal's own signature, but over another body.
    signed = s.emu.sign(rid, b'{"status": "ERROR"}')
    assert await s.post(body, signed) == 401
    # fal's signature over this very body, ten minutes old: a replay.
    assert await s.post(body, s.emu.sign(rid, body, timestamp=int(time.time()) - 600)) == 401
    # ...and a signed body that names another request than its signed header.
    other = s.emu.sign("another-request", body)
    assert await s.post(body, other) == 400

    op = await s.h.operation(operation_id)
    assert op.status == "running" and op.model_result is None

    # The real one still goes through, once.
    s.emu.complete(rid)
    op = await s.h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{s.h.logs()}"
    assert len(await photos(user)) == 1


async def test_a_webhook_delivered_again_and_again_records_and_sends_once(ai_stack) -> None:
    s = await ai_stack()
    user = await new_user(s)
    operation_id = await s.h.new_operation(user, "generate", [], text="сова", balance=1000)
    op = await s.h.wait_final(operation_id)
    assert op.status == "succeeded"
    [first] = s.emu.webhooks
    # fal's re-deliveries (and a replay within the tolerance): the same signed request.
    statuses = await asyncio.gather(
        *(s.post(first["body"].encode(), first["headers"]) for _ in range(5))
    )
    assert statuses == [200] * 5
    # Each answer came after its enqueue, if any: a second delivery job would have run.
    await s.h.wait_idle()
    assert len(await photos(user)) == 1
    assert (await s.h.operation(operation_id)).status == "succeeded"
    assert await s.h.entries(operation_id, LedgerKind.REFUND) == 0


async def test_a_lost_webhook_is_found_by_polling(ai_stack) -> None:
    s = await ai_stack(FAL_POLL_AFTER_SECONDS=0.5, FAL_POLL_INTERVAL_SECONDS=0.5)
    s.emu.drop_webhooks = 1
    s.emu.model_seconds = 1.0  # a poll may find it still running: it asks again later
    user = await new_user(s)
    operation_id = await s.h.new_operation(user, "generate", [], text="ёж", balance=1000)
    op = await s.h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{s.h.logs()}"
    assert s.emu.webhooks == []  # never sent: the poll found the result
    assert "found by polling" in s.h.logs()
    assert any(c["endpoint"] == "status" for c in s.emu.calls)
    assert len(await photos(user)) == 1


async def test_a_model_that_never_finishes_is_refunded_once_cancelled_and_a_late_webhook_changes_nothing(  # noqa: E501
    ai_stack,
) -> None:
    s = await ai_stack(
        FAL_DEADLINE_SECONDS=1, FAL_POLL_AFTER_SECONDS=0.5, FAL_POLL_INTERVAL_SECONDS=0.5
    )
    s.h.start_worker(**s.worker_env)  # a second worker's sweeper races the first
    s.emu.script("hang")
    user = await new_user(s)
    operation_id = await s.h.new_operation(user, "generate", [], text="дракон", balance=1000)
    rid = await s.request_id(operation_id)
    op = await s.h.wait_final(operation_id)
    assert op.status == "refunded", f"{op.status}: {op.error}\n{s.h.logs()}"
    notice = await s.h.wait_message(user, lambda m: "возвращены" in m.text, "refund notice")
    assert "не выполнилась вовремя" in notice.text

    # The sweeper that refunded it asked fal to drop the request (PUT .../cancel).
    async def cancelled() -> bool:
        return s.emu.jobs[rid].cancelled

    await s.h.wait_until(cancelled, "the model request to be cancelled")
    # So the model, ending at last, posts no webhook...
    s.emu.complete(rid)
    processed = s.emu.jobs[rid].task
    assert processed is not None

    async def ended() -> bool:
        return processed.done()  # the emulator posts a webhook before its task ends

    await s.h.wait_until(ended, "the model to end")
    assert s.emu.webhooks == []
    # ...and one that comes anyway (fal's signature, a result) is taken and changes nothing.
    body = ok_body(s, rid)
    assert await s.post(body, s.emu.sign(rid, body)) == 200
    await s.h.wait_idle()  # the answer came after any enqueue: a delivery job would have run
    op = await s.h.operation(operation_id)
    assert op.status == "refunded" and op.model_result is None
    assert await s.h.entries(operation_id, LedgerKind.REFUND) == 1
    assert await photos(user) == []
    refunds = [m for m in await user.bot_messages() if "возвращены" in m.text]
    assert len(refunds) == 1


@pytest.mark.parametrize("outcome", ["refuse", "nsfw"])
async def test_a_safety_refusal_is_refunded_with_its_reason_and_not_retried(
    ai_stack, outcome: str
) -> None:
    s = await ai_stack(JOB_RETRIES=2)
    s.emu.script(outcome)
    user = await new_user(s)
    operation_id = await s.h.new_operation(user, "generate", [], text="что-то", balance=1000)
    notice = await s.h.wait_message(user, lambda m: "возвращены" in m.text, "refund notice")
    assert notice.text == (
        "❌ Не получилось: сервис отказался это делать: запрос или фото не прошли его "
        "проверку безопасности.\n10 ₽ возвращены на баланс. Баланс: 10 ₽."
    )
    op = await s.h.wait_final(operation_id)
    assert op.status == "refunded" and op.error.startswith("model-refused")
    # Submitted once, delivered (refused) once: no retry of either.
    assert op.attempts == 2
    assert len([c for c in s.emu.calls if c["endpoint"] == "submit"]) == 1
    assert await s.h.entries(operation_id, LedgerKind.REFUND) == 1
    assert await photos(user) == []


async def test_a_rejected_input_is_refunded_with_its_reason(ai_stack, images) -> None:
    s = await ai_stack()
    s.emu.script("invalid")
    user = s.h.user()
    file_id = await s.h.upload(user, images("coffee.jpg"))
    operation_id = await s.h.new_operation(user, "upscale", [file_id], balance=1000)
    notice = await s.h.wait_message(user, lambda m: "возвращены" in m.text, "refund notice")
    assert "сервис не принял эти данные" in notice.text
    op = await s.h.wait_final(operation_id)
    assert op.status == "refunded" and op.error.startswith("model-input")


async def test_the_job_run_again_after_its_submit_submits_nothing_more(ai_stack) -> None:
    s = await ai_stack()
    s.emu.script("hang")
    user = await new_user(s)
    operation_id = await s.h.new_operation(user, "generate", [], text="кит", balance=1000)
    rid = await s.request_id(operation_id)
    token = s.h.tokens[operation_id]

    async def outcome() -> str | None:
        job = Job.fetch(job_id_for(operation_id, token), connection=s.h.redis)
        if job.get_status() != "finished":
            return None
        return job.return_value()["outcome"]

    assert await s.h.wait_until(outcome, "the submit") == "submitted"
    s.h.enqueue(operation_id)  # RQ runs the job again (a retry after its horse died)

    async def again() -> bool:
        return await outcome() == "already submitted"

    await s.h.wait_until(again, "the second run")
    assert len([c for c in s.emu.calls if c["endpoint"] == "submit"]) == 1
    s.emu.complete(rid)
    op = await s.h.wait_final(operation_id)
    assert op.status == "succeeded" and op.model_request_id == rid
    assert len(await photos(user)) == 1


async def test_a_recorded_outcome_whose_delivery_was_lost_is_delivered_by_the_next_webhook(
    ai_stack,
) -> None:
    s = await ai_stack()
    s.emu.drop_webhooks = 1
    user = await new_user(s)
    operation_id = await s.h.new_operation(user, "generate", [], text="енот", balance=1000)
    rid = await s.request_id(operation_id)
    job = s.emu.jobs[rid]

    async def finished() -> bool:
        return job.finished

    await s.h.wait_until(finished, "the model")
    payload = model_output(job, s.fal_url)
    # The web server recorded the outcome and died before it enqueued the delivery.
    async with s.h.sessionmaker() as session:
        outcome = parse_webhook(
            json.dumps({"request_id": rid, "status": "OK", "payload": payload}).encode(), rid
        )
        await model_calls.record_result(session, request_id=rid, result=outcome.as_record())
        await session.commit()
    await s.h.wait_idle()  # nothing delivers an outcome no webhook came with
    assert (await s.h.operation(operation_id)).status == "running"

    # fal's next delivery of the same webhook (the first got no answer).
    body = json.dumps(
        {"request_id": rid, "gateway_request_id": rid, "status": "OK", "payload": payload}
    ).encode()
    assert await s.post(body, s.emu.sign(rid, body)) == 200
    op = await s.h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{s.h.logs()}"
    assert len(await photos(user)) == 1


def _plain(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (240, 240), color).save(out, "PNG")
    return out.getvalue()


async def test_a_merge_of_four_photos_sends_all_four_to_the_model(ai_stack) -> None:
    """🔗 with four photos: the multi-image model gets all four, in the order sent, and the
    picture it makes (the emulator: side by side under the sentence) shows each of them."""
    s = await ai_stack()
    user = s.h.user()
    colors = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 220, 30)]
    file_ids = [await s.h.upload(user, _plain(c)) for c in colors]
    operation_id = await s.h.new_operation(
        user, "merge", file_ids, text="четыре цвета в ряд", balance=1000
    )
    op = await s.h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{s.h.logs()}"
    job = s.emu.jobs[op.model_request_id]
    assert job.kind == "merge" and len(job.body["image_urls"]) == 4
    [photo] = await photos(user)
    with Image.open(io.BytesIO(await user.download(photo.file_id))) as got:
        picture = got.convert("RGB")
    width = picture.width
    for index, color in enumerate(colors):
        seen = picture.getpixel((width * (2 * index + 1) // 8, 20))
        assert all(abs(a - b) < 40 for a, b in zip(seen, color, strict=True)), (index, seen)
    assert await s.h.entries(operation_id, LedgerKind.REFUND) == 0


async def test_a_merge_whose_third_photo_is_too_small_is_refunded_before_the_model(
    ai_stack,
) -> None:
    """The job checks every photo of a merge (the bot refuses small ones before the charge;
    this holds for whatever the job downloaded), the third and fourth too: nothing reaches
    the model, the money comes back once."""
    s = await ai_stack()
    user = s.h.user()
    big, tiny = _plain((200, 30, 30)), io.BytesIO()
    Image.new("RGB", (40, 40), (30, 30, 200)).save(tiny, "PNG")
    file_ids = [await s.h.upload(user, data) for data in (big, big, tiny.getvalue())]
    operation_id = await s.h.new_operation(user, "merge", file_ids, text="втроём", balance=1000)
    op = await s.h.wait_final(operation_id)
    assert op.status == "refunded", f"{op.status}: {op.error}\n{s.h.logs()}"
    assert op.error.startswith("image-too-small"), op.error
    assert op.model_request_id is None and s.emu.jobs == {}
    assert await s.h.entries(operation_id, LedgerKind.REFUND) == 1
