"""🎨 generate goes to fal.ai's queue API (here the local fake, sandbox/fal.py) when FAL_KEY
is set; a key fal.ai refuses is a permanent failure, refunded at once."""

from __future__ import annotations

import io

from PIL import Image

from billing.models import LedgerKind
from sandbox._common import ServerHandle
from sandbox.fal import create_app as create_fal_app


async def test_generate_delivers_the_image_fal_made(harness_factory) -> None:
    async with ServerHandle(create_fal_app(key="fal-test-key")) as fal:
        h = harness_factory(FREE_OPERATIONS_COUNT=0)
        # No WEB_PUBLIC_URL: no webhook, the status polls bring the result.
        h.start_worker(
            FAL_KEY="fal-test-key",
            FAL_API_URL=fal.url,
            FAL_POLL_AFTER_SECONDS=0.2,
            FAL_POLL_INTERVAL_SECONDS=0.2,
        )
        user = h.user()
        await user.send_text("кот в космосе")  # the prompt, as the bot received it
        operation_id = await h.new_operation(
            user, "generate", [], text="кот в космосе", balance=1000
        )
        op = await h.wait_final(operation_id)
        assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"

    messages = {m.message_id: m for m in await user.bot_messages()}
    photo = messages[op.result_ref["photo_message_id"]]
    assert photo.text == (
        "🎨 Изображение создано: 1024×1024.\nСписано 10 ₽. Баланс: 0 ₽.\n"
        # No free operations left, on the default plan: the plans offer (once a day).
        "💡 Бесплатные операции закончились. В тарифах операции дешевле: /plans"
    )
    with Image.open(io.BytesIO(await user.download(photo.file_id))) as img:
        assert img.size == (1024, 1024)  # fal's square_hd
    # a PNG from fal: its lossless file on the 📎 button, the "queued" message the photo
    assert op.result_ref["format"] == "png" and op.result_ref["file_button"] is True
    assert photo.message_id == op.status_message_id and "document_message_id" not in op.result_ref
    # Its file id too: /start op_<id> sends the result again by it when the message is gone.
    assert op.result_ref["file_id"] == photo.file_id
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0


async def test_generate_with_a_refused_key_is_refunded_at_once(harness_factory) -> None:
    async with ServerHandle(create_fal_app(key="the-right-key")) as fal:
        h = harness_factory(JOB_RETRIES=2, FREE_OPERATIONS_COUNT=0)
        h.start_worker(FAL_KEY="a-wrong-key", FAL_API_URL=fal.url)
        user = h.user()
        await user.send_text("кот в космосе")  # the prompt, as the bot received it
        operation_id = await h.new_operation(
            user, "generate", [], text="кот в космосе", balance=1000
        )
        notice = await h.wait_message(user, lambda m: "возвращены" in m.text, "notice")

    assert notice.text == (
        "❌ Не получилось: сервис генерации не справился с запросом.\n"
        "10 ₽ возвращены на баланс. Баланс: 10 ₽."
    )
    op = await h.wait_final(operation_id)
    assert op.status == "refunded" and op.attempts == 1 and op.error.startswith("backend")
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
