"""A result that cannot be delivered is refunded once: after the last attempt when Telegram
keeps failing (5xx), at once when it refuses for good (the user blocked the bot)."""

from __future__ import annotations

from billing.models import LedgerKind


async def test_result_telegram_keeps_refusing_is_refunded_once(harness_factory, images):
    # Telegram's retries within an attempt as short as can be: how long they wait is not what
    # this proves, that each attempt's retries and then RQ's retry were all used up is.
    h = harness_factory(
        JOB_RETRIES=1, FREE_OPERATIONS_COUNT=0, TELEGRAM_RETRY_BACKOFF=(0.01, 0.01, 0.01)
    )
    user = h.user()
    file_id = await h.upload(user, images("astronaut.jpg"))
    await h.tg.fail_next(
        1000, kind="502", methods=["editMessageMedia", "sendPhoto", "sendDocument"]
    )
    h.start_worker()
    operation_id = await h.new_operation(user, "upscale", [file_id], balance=3000)

    notice = await h.wait_message(user, lambda m: "возвращены" in m.text, "notice")
    assert notice.text == (
        "❌ Не получилось: не удалось отправить результат.\n"
        "10 ₽ возвращены на баланс. Баланс: 30 ₽."
    )
    op = await h.wait_final(operation_id)
    assert op.status == "refunded" and op.attempts == 2
    assert op.error.startswith("undeliverable")
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
    assert not [m for m in await user.bot_messages() if m.photo or m.document]


async def test_result_for_a_user_who_blocked_the_bot_is_refunded_at_once(harness_factory, images):
    h = harness_factory(JOB_RETRIES=2, FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    user = h.user()
    file_id = await h.upload(user, images("astronaut.jpg"))
    operation_id = await h.new_operation(user, "retouch", [file_id], balance=1000, enqueue=False)
    await h.tg.block(user.user_id)
    h.enqueue(operation_id)

    op = await h.wait_final(operation_id)
    assert op.status == "refunded" and op.attempts == 1
    assert op.error.startswith("undeliverable")
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
    assert "refund notice not delivered" in h.logs()
    async with h.sessionmaker() as session:
        from billing import accounts

        account = await accounts.get_user(session, user_id=op.user_id)
    assert account.balance == 1000
