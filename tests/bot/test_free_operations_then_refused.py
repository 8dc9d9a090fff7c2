"""A newcomer's /start → the free operations → the next one refused with a top-up button."""

from __future__ import annotations

from rq.job import Job

from billing.models import Funding, OperationStatus
from jobqueue.queue import HOSTED
from tests.bot.conftest import StartBot


async def test_newcomer_uses_four_free_operations_and_the_fifth_is_refused_with_top_up(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(5001, first_name="Аня", language="ru")

    await user.send_text("/start")
    menu = await user.wait_for_text("Бесплатных операций: 4 из 4")
    assert "10 ₽" in menu.text
    for label in (
        "✏️ Редактировать",
        "🔗 Объединить",
        "🔄 Заменить лицо",
        "✨ Ретушь",
        "⬆️ Улучшить",
        "📝 Добавить текст",
        "💰 Оплатить / Баланс",
    ):
        assert label in menu.button_texts
    assert "🎨 Создать" not in menu.button_texts  # FAL_KEY not set: generate not offered

    await user.press(menu, text="✨ Ретушь")
    await user.wait_for_text("портрет")
    for left in (3, 2, 1, 0):
        await user.send_photo(photo)
        queued = await user.wait_for_text("В очереди")
        assert f"осталось {left} из 4" in queued.text

    await user.send_photo(photo)
    refused = await user.wait_for_text("Бесплатные операции закончились")
    assert "10 ₽" in refused.text and "0 ₽" in refused.text
    assert "💳 Пополнить баланс" in refused.button_texts

    operations = await app.operations()
    assert len(operations) == 4
    assert all(
        op.funding == Funding.FREE and op.status == OperationStatus.QUEUED for op in operations
    )
    assert all(op.status_message_id is not None for op in operations)
    assert all(
        op.input_ref["language"] == "ru" and len(op.input_ref["file_ids"]) == 1
        for op in operations
    )
    # Each job is named by the operation's id and key token, and the row records that name.
    assert sorted(app.job_ids()) == sorted(f"op-{op.id}-{op.key_token}" for op in operations)
    assert all(op.job_id == f"op-{op.id}-{op.key_token}" for op in operations)
    job = Job.fetch(operations[0].job_id, connection=app.queue.connection)
    assert job.func_name == "workers.jobs.run_operation"
    assert not job.meta.get(HOSTED)  # run locally (no FAL_KEY): in a forked work-horse
    # The operation id, its inputs' file ids for the worker to fetch while it claims, and
    # the key token its Redis keys carry.
    assert job.args == (
        operations[0].id,
        operations[0].input_ref["file_ids"],
        operations[0].key_token,
    )
    account = await app.user(5001)
    assert account is not None
    assert account.free_operations_left == 0 and account.balance == 0
    # signup + four charges: the refused fifth wrote nothing
    assert await app.ledger_count() == 5
