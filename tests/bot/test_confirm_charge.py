"""Confirmation before a charge (/settings, or CONFIRM_CHARGES_DEFAULT): the request is kept
and the user sees what would be taken from where; "Подтвердить" charges once (a double tap
too), "Отмена" charges nothing, a late tap (the request expired, or the balance or the plan
changed so the quote no longer holds) charges nothing and says why."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from billing import accounts
from billing.models import Funding, OperationStatus
from bot.confirm import PREFIX
from tests.billing.holdings import give_holding
from tests.bot.conftest import RunningBot, StartBot, wait_until


async def _user(app: RunningBot, telegram_id: int, *, balance: int = 0, confirm: bool = True):  # type: ignore[no-untyped-def]
    async with app.sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(
            session, telegram_id=telegram_id, free_operations=app.settings.FREE_OPERATIONS_COUNT
        )
        if balance:
            await accounts.adjust(session, user_id=user.id, amount=balance, reason="test")
        await accounts.set_confirm_charges(session, user_id=user.id, on=confirm)
        await session.commit()
        return user.id


async def _retouch(user):  # type: ignore[no-untyped-def]
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✨ Ретушь")
    await user.wait_for_text("портрет")


async def _pending_keys(redis: Redis) -> list[bytes]:
    return [k for k in await redis.keys(f"{PREFIX}:*") if b":asked:" not in k]


async def test_confirm_a_free_operation_charges_it_once_even_tapped_twice(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    await _user(app, 15001)
    user = tg.user(15001)
    await _retouch(user)
    await user.send_photo(photo)
    ask = await user.wait_for_text("Подтвердить?")
    assert "✨ Ретушь: Спишется 1 бесплатная операция, останется 3. Подтвердить?" in ask.text
    assert ask.button_texts == ["✅ Подтвердить", "✖️ Отмена"]
    assert await app.operations() == []  # nothing charged while asking

    confirm_data = ask.button("Подтвердить").callback_data
    first = await user.press(ask, data=confirm_data)
    second = await user.press(ask, data=confirm_data, forge=True)  # before the edit lands
    queued = await user.wait_for_text("В очереди")
    assert queued.message_id == ask.message_id  # the question became the status message
    assert "осталось 3 из 4" in queued.text
    answer = await user.wait_for_answer(second)
    await user.wait_for_answer(first)
    assert answer.get("text") in ("Уже подтверждено.", None)

    [operation] = await app.operations()
    assert operation.funding == Funding.FREE and operation.status == OperationStatus.QUEUED
    assert operation.status_message_id == ask.message_id
    account = await app.user(15001)
    assert account is not None and account.free_operations_left == 3

    async def queued_once() -> bool:
        return app.job_ids() == [f"op-{operation.id}-{operation.key_token}"]

    await wait_until(queued_once)
    # A tap on "Отмена" after the charge (sent before the keyboard was gone) changes nothing.
    cancel_data = ask.button("Отмена").callback_data
    late_cancel = await user.press(ask, data=cancel_data, forge=True)
    assert (await user.wait_for_answer(late_cancel)).get("text") == "Уже подтверждено."
    assert len(await app.operations()) == 1


async def test_cancel_charges_nothing_and_a_confirm_after_it_is_too_late(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    await _user(app, 15002)
    user = tg.user(15002)
    await _retouch(user)
    await user.send_photo(photo)
    ask = await user.wait_for_text("Подтвердить?")
    await user.press(ask, text="Отмена")
    canceled = await user.wait_for_text("Отменено, ничего не списано")
    assert canceled.message_id == ask.message_id and canceled.button_texts == []
    # The old button, pressed on a client that had not yet seen the keyboard go.
    await user.press(ask, data=ask.button("Подтвердить").callback_data, forge=True)
    await user.wait_for_text("устарело")
    assert await app.operations() == []
    account = await app.user(15002)
    assert account is not None and account.free_operations_left == 4


async def test_a_confirmation_whose_request_expired_charges_nothing(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    await _user(app, 15003)
    user = tg.user(15003)
    await _retouch(user)
    await user.send_photo(photo)
    ask = await user.wait_for_text("Подтвердить?")
    [key] = await _pending_keys(app.redis)
    assert 0 < await app.redis.ttl(key) <= 15 * 60
    await app.redis.delete(key)  # what its expiry does
    await user.press(ask, text="Подтвердить")
    late = await user.wait_for_text("устарело")
    assert "Ничего не списано" in late.text
    assert await app.operations() == []


async def test_money_quote_and_a_balance_changed_meanwhile(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    # Seed 003's words: an operation of 2 units = 20 ₽ from the balance.
    app = await start_bot(FREE_OPERATIONS_COUNT=0, OPERATION_UNITS="retouch=2")
    user_id = await _user(app, 15004, balance=10000)
    user = tg.user(15004)
    await _retouch(user)
    await user.send_photo(photo)
    ask = await user.wait_for_text("Подтвердить?")
    assert "Спишется 20 ₽, останется 80 ₽" in ask.text

    async with app.sessionmaker() as session:  # a payment lands while the user decides
        await accounts.adjust(session, user_id=user_id, amount=5000, reason="test top-up")
        await session.commit()
    await user.press(ask, text="Подтвердить")
    changed = await user.wait_for_text("условия больше не действуют")
    assert "Ничего не списано" in changed.text
    assert "Спишется 20 ₽, останется 130 ₽" in changed.text  # asked again, with the new quote
    assert await app.operations() == []

    await user.press(changed, text="Подтвердить")
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert operation.funding == Funding.BALANCE and operation.price == 2000
    account = await app.user(15004)
    assert account is not None and account.balance == 13000


async def test_a_quota_quote_in_both_languages(start_bot: StartBot, tg, photo: bytes) -> None:
    app = await start_bot(FREE_OPERATIONS_COUNT=0, OPERATION_UNITS="retouch=2")
    for telegram_id in (15005, 15006):
        user_id = await _user(app, telegram_id)
        async with app.sessionmaker() as session:
            await give_holding(session, user_id, "pro", units_left=20)
            await session.commit()
    ru = tg.user(15005)
    await _retouch(ru)
    await ru.send_photo(photo)
    ask = await ru.wait_for_text("Подтвердить?")
    assert "Спишется 2 операции из подписки, останется 18" in ask.text
    await ru.press(ask, text="Подтвердить")
    queued = await ru.wait_for_text("В очереди")
    assert "Списано 2 операции из подписки, осталось 18" in queued.text

    en = tg.user(15006, language="en")
    await en.send_text("/menu")
    menu = await en.wait_for_text("Pick a mode")
    await en.press(menu, text="✨ Retouch")
    await en.wait_for_text("portrait")
    await en.send_photo(photo)
    ask_en = await en.wait_for_text("Confirm?")
    assert "2 operations will be taken from the subscription, 18 left" in ask_en.text
    assert ask_en.button_texts == ["✅ Confirm", "✖️ Cancel"]
    await en.press(ask_en, text="Cancel")
    await en.wait_for_text("Canceled, nothing was charged")
    assert [op.funding for op in await app.operations()] == [Funding.SUBSCRIPTION]


async def test_a_quota_that_ran_out_meanwhile_says_what_would_be_taken_now(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(FREE_OPERATIONS_COUNT=0)
    user_id = await _user(app, 15007, balance=5000)
    async with app.sessionmaker() as session:
        await give_holding(session, user_id, "pack10", units_left=1, ends_in=timedelta(days=3))
        await session.commit()
    user = tg.user(15007)
    await _retouch(user)
    first = await user.send_photo(photo)
    ask_one = await user.wait_for_text("Подтвердить?")
    assert "Спишется 1 операция из пакета «Пакет 10 операций», останется 0" in ask_one.text
    await user.send_photo(photo)
    ask_two = await user.wait_for(
        lambda m: "Подтвердить?" in m.text and m.message_id != ask_one.message_id
    )
    assert "из пакета" in ask_two.text  # the same quote: nothing was taken yet
    await user.press(ask_one, text="Подтвердить")
    await user.wait_for_text("В очереди")
    await user.press(ask_two, text="Подтвердить")
    changed = await user.wait_for_text("условия больше не действуют")
    assert "Спишется 10 ₽, останется 40 ₽" in changed.text
    [operation] = await app.operations()
    assert operation.funding == Funding.PACKAGE
    assert operation.request_key == f"{user.chat_id}:{first.message_id}"


async def test_a_re_delivered_update_asks_once(start_bot: StartBot, tg, photo: bytes) -> None:
    app = await start_bot()
    await _user(app, 15008)
    user = tg.user(15008)
    await _retouch(user)
    sent = await user.send_photo(photo)
    await user.wait_for_text("Подтвердить?")
    await user.redeliver(sent)
    assert app.feed is not None
    await app.feed.idle()  # the re-delivered update is handled
    asks = [m for m in await user.bot_messages() if "Подтвердить?" in m.text]
    assert len(asks) == 1
    assert len(await _pending_keys(app.redis)) == 1
