"""The whole flow over HTTP: the bot charges and queues, a real `python -m workers` process
takes the jobs from RQ, downloads the photos from the emulator and delivers the results."""

from __future__ import annotations

from pathlib import Path

from billing.models import OperationStatus
from imaging.merge import merge_layout
from sandbox._common import ServerHandle
from tests.bot.conftest import StartBot, run_worker_burst, wait_until


async def test_queued_operations_are_delivered_by_a_real_worker(
    start_bot: StartBot,
    tg,
    tg_server: ServerHandle,
    photo: bytes,
    photo2: bytes,
    db_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    app = await start_bot(polling=True, TELEGRAM_API_URL=tg_server.url)
    user = tg.user(9401)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✏️ Редактировать")
    await user.wait_for_text("подписью-командой")
    await user.send_photo(photo, caption="ч/б, повернуть вправо")
    await user.wait_for_text("В очереди")
    await user.send_text("/menu")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="🔗 Объединить")
    await user.wait_for_text("от 2 до 4 фотографий")
    before = user.mark
    # 🔗 three photos one by one (each answered with the count), then "✅ Готово". (Albums:
    # tests/bot/test_modes.py.)
    for data, said in ((photo, "хотя бы одно"), (photo2, "Фото: 2 из 4"), (photo, "3 из 4")):
        await user.send_photo(data)
        await user.wait_for_text(said, since=before)
    await user.send_text("✅ Готово")
    await user.wait_for_text("В очереди", since=before)

    async def two_jobs() -> bool:
        return len(app.job_ids()) == 2

    await wait_until(two_jobs)

    output = await run_worker_burst(tmp_path, db_url, redis_url, tg_server.url)

    operations = await app.operations()
    assert [op.status for op in operations] == [OperationStatus.SUCCEEDED] * 2, (
        [(op.type, op.status, op.error) for op in operations],
        output[-3000:],
    )
    results = [m for m in await user.bot_messages() if m.photo or m.document]
    assert len(results) == 2
    # The collage of all three photos, side by side (512×512, 512×600, 512×512).
    merged = next(op for op in operations if op.type == "merge")
    *widths, height = merge_layout((512, 512), (512, 600), (512, 512))
    ref = merged.result_ref or {}
    assert len(merged.input_ref["file_ids"]) == 3
    assert (ref["width"], ref["height"]) == (sum(widths), height)
    account = await app.user(9401)
    assert account is not None and account.free_operations_left == 2
