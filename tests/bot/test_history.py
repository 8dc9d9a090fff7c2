"""/history: the user's own ledger in plain words, newest first, ten to a page, ◀ ▶ in place."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from billing import accounts, operations
from billing.models import EndReason, HoldingStatus, LedgerKind, UserPlan, utcnow
from tests.billing.holdings import give_holding
from tests.bot.conftest import RunningBot, StartBot


async def _user(app: RunningBot, telegram_id: int) -> int:
    async with app.sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(
            session, telegram_id=telegram_id, free_operations=1
        )
        await session.commit()
        return user.id


async def test_history_in_plain_words_newest_first(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user_id = await _user(app, 17001)
    async with app.sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, amount=50000, reason="test: a grant")
        settings = app.settings
        await operations.charge(session, settings, user_id=user_id, op_type="upscale")  # free
        paid = await operations.charge(session, settings, user_id=user_id, op_type="retouch")
        await operations.refund_operation(session, operation_id=paid.operation_id)
        holding = await give_holding(session, user_id, "pack10", units_left=10)
        await operations.charge(session, settings, user_id=user_id, op_type="edit")
        await session.commit()
    user = tg.user(17001)
    await user.send_text("/history")
    page = await user.wait_for_text("История")
    lines = page.text.split("\n")
    assert lines[0] == "🧾 История (новое сверху)"
    body = [line.split(" · ", 1)[1] for line in lines[2:]]
    assert body == [
        "✏️ Редактировать: −1 операция из пакета «Пакет 10 операций»",
        "📋 Покупка «Пакет 10 операций»: +10 операций",
        "↩️ Возврат за ✨ Ретушь: +10 ₽ — операция не удалась",
        "✨ Ретушь: −10 ₽",
        "⬆️ Улучшить: −1 бесплатная операция",
        "🛠 Корректировка: +500 ₽",
        "🎁 Подарок при регистрации: +1 бесплатная операция",
    ]
    assert page.button_texts == ["🏠 Меню"]  # one page: no ◀ ▶

    en = tg.user(17001, language="en")
    await en.send_text("/history")
    english = await en.wait_for_text("History")
    assert "Edit: −1 operation from the package Pack of 10 operations" in english.text
    assert "Refund for ✨ Retouch: +10 ₽ — the operation failed" in english.text
    assert "Welcome gift: +1 free operation" in english.text
    assert holding


async def test_history_pages_back_and_forth_in_place(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user_id = await _user(app, 17002)
    async with app.sessionmaker() as session:
        for rubles in range(1, 24):  # 23 grants + the signup: 24 entries, three pages
            await accounts.adjust(session, user_id=user_id, amount=rubles * 100, reason="t")
        await session.commit()
    user = tg.user(17002)
    await user.send_text("/history")
    first = await user.wait_for_text("История")
    assert "+23 ₽" in first.text and "+14 ₽" in first.text and "+13 ₽" not in first.text
    assert first.button_texts == ["Старше ▶️", "🏠 Меню"]
    await user.press(first, text="Старше ▶️")
    second = await user.wait_for_text("+13 ₽")
    assert second.message_id == first.message_id  # turned in place
    assert "+4 ₽" in second.text and "+3 ₽" not in second.text and "+14 ₽" not in second.text
    assert second.button_texts == ["◀️ Новее", "Старше ▶️", "🏠 Меню"]
    await user.press(second, text="Старше ▶️")
    third = await user.wait_for_text("Подарок при регистрации")
    assert "+3 ₽" in third.text and "+1 ₽" in third.text
    assert third.button_texts == ["◀️ Новее", "🏠 Меню"]
    await user.press(third, text="◀️ Новее")
    back = await user.wait_for_text("+4 ₽")
    assert "+13 ₽" in back.text and "+14 ₽" not in back.text
    await user.press(back, text="◀️ Новее")
    newest = await user.wait_for_text("+23 ₽")
    assert newest.button_texts == ["Старше ▶️", "🏠 Меню"]


async def test_a_forged_page_shows_only_the_users_own_entries(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    other = await _user(app, 17003)
    async with app.sessionmaker() as session:
        await accounts.adjust(session, user_id=other, amount=777700, reason="someone else's")
        await session.commit()
    await _user(app, 17004)
    user = tg.user(17004)
    await user.send_text("/history")
    mine = await user.wait_for_text("История")
    await user.press(mine, data="hist:o:999999", forge=True)
    await user.press(mine, data="hist:n:1", forge=True)
    assert app.feed is not None
    await app.feed.idle()  # both presses handled
    for message in await user.bot_messages():
        assert "7\u202f777" not in message.text and "777" not in message.text


async def test_plan_renewals_and_ends_read_plainly(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user_id = await _user(app, 17005)
    async with app.sessionmaker() as session:
        holding = await give_holding(session, user_id, "pack10", units_left=3)
        # The package ends with 3 units unused: its plan_end entry, as the roll-over writes it.
        from billing import ledger

        await session.execute(
            update(UserPlan)
            .where(UserPlan.id == holding)
            .values(
                status=HoldingStatus.ENDED.value,
                units_left=0,
                ended_at=utcnow(),
                end_reason=EndReason.EXPIRED.value,
                ends_at=utcnow() - timedelta(minutes=1),
            )
        )
        await ledger.run(
            session,
            [
                ledger.Step("moved", lambda _: ledger.balance_step(user_id)),
                ledger.Step(
                    "entry",
                    lambda p: ledger.entry(
                        p["moved"],
                        kind=LedgerKind.PLAN_END,
                        amount=0,
                        free_delta=0,
                        units_delta=-3,
                        units_after=0,
                        holding_id=holding,
                        key=f"plan_end:{holding}",
                    ),
                ),
            ],
        )
        await session.commit()
    user = tg.user(17005)
    await user.send_text("/history")
    page = await user.wait_for_text("История")
    assert "⏹ «Пакет 10 операций» закончился: истёк срок, сгорело 3 операции" in page.text


async def test_history_rolls_over_first_so_an_end_that_is_due_is_on_it(
    start_bot: StartBot, tg
) -> None:
    """A package past its end that nothing rolled over yet: /history ends it first (once,
    as every read does), so its end is the newest line, not missing until the next charge."""
    app = await start_bot()
    user_id = await _user(app, 17006)
    async with app.sessionmaker() as session:
        await give_holding(session, user_id, "pack10", units_left=4, ends_in=-timedelta(minutes=1))
        await session.commit()
    user = tg.user(17006)
    await user.send_text("/history")
    page = await user.wait_for_text("История")
    newest = page.text.split("\n")[2]
    assert "«Пакет 10 операций» закончился: истёк срок, сгорело 4 операции" in newest, page.text
