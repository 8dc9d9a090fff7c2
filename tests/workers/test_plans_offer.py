"""After a result, a user on the default plan with at most one free operation left gets one
line offering the plans, with a 📋 button, in the result's own caption (no extra message),
at most once a day — two results finishing at once show it once. A result paid from a plan
says what it took from it and what is left."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from billing import accounts, offers
from billing.models import User, utcnow
from tests.billing.holdings import give_holding
from tg.buttons import MENU_PLANS, RESULT_FILE

OFFER_RU = "💡 Бесплатные операции закончились. В тарифах операции дешевле: /plans"


async def _result(h, user, operation_id: int):  # type: ignore[no-untyped-def]
    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    ref = op.result_ref or {}
    message_id = ref.get("photo_message_id") or ref.get("document_message_id")
    return {m.message_id: m for m in await user.bot_messages()}[message_id]


async def _account_id(h, user) -> int:  # type: ignore[no-untyped-def]
    async with h.sessionmaker() as session:
        return int(await session.scalar(select(User.id).where(User.telegram_id == user.user_id)))


async def test_the_offer_goes_in_the_caption_once_a_day(harness_factory, images) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=1)
    h.start_worker()
    user = h.user()
    photo = images("astronaut.jpg")
    first = await h.new_operation(user, "upscale", [await h.upload(user, photo)], hook="noop")
    result = await _result(h, user, first)
    assert result.text.endswith(OFFER_RU)
    # upscale's 📎 (the lossless file on a tap) first, then the offer's button
    assert [(b.text, b.callback_data) for row in result.buttons for b in row] == [
        ("📎 Файл без сжатия", RESULT_FILE),
        ("📋 Тарифы", MENU_PLANS),
    ]
    # No message of its own: the offer is the result's.
    assert [m.message_id for m in await user.bot_messages() if "💡" in m.text] == [
        result.message_id
    ]

    # The same day: no offer.
    second = await h.new_operation(
        user, "upscale", [await h.upload(user, photo)], hook="noop", balance=1000
    )
    again = await _result(h, user, second)
    assert "💡" not in again.text and again.button_texts == ["📎 Файл без сжатия"]
    # A day later: the offer again.
    account = await _account_id(h, user)
    async with h.sessionmaker() as session:
        await session.execute(
            update(User)
            .where(User.id == account)
            .values(offer_shown_at=utcnow() - timedelta(days=1, minutes=1))
        )
        await session.commit()
    third = await h.new_operation(
        user, "upscale", [await h.upload(user, photo)], hook="noop", balance=1000
    )
    assert (await _result(h, user, third)).text.endswith(OFFER_RU)


async def test_in_english_and_with_one_free_operation_left(harness_factory, images) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=2)
    h.start_worker()
    user = h.user(language="en")
    op = await h.new_operation(
        user, "upscale", [await h.upload(user, images("astronaut.jpg"))], hook="noop"
    )
    result = await _result(h, user, op)
    assert result.text.endswith(
        "💡 One free operation left. Plans make operations cheaper: /plans"
    )
    assert result.button_texts == ["📎 Uncompressed file", "📋 Plans"]


async def test_no_offer_with_free_operations_to_spare_or_a_plan(harness_factory, images) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=3)
    h.start_worker()
    photo = images("astronaut.jpg")
    spare = h.user()
    op = await h.new_operation(spare, "upscale", [await h.upload(spare, photo)], hook="noop")
    assert "💡" not in (await _result(h, spare, op)).text  # two left

    subscribed = h.user()
    async with h.sessionmaker() as session:
        account, _ = await accounts.get_or_create_user(
            session, telegram_id=subscribed.user_id, free_operations=0
        )
        await give_holding(session, account.id, "pro", units_left=5)
        await session.commit()
    op = await h.new_operation(
        subscribed, "upscale", [await h.upload(subscribed, photo)], hook="noop", free=0
    )
    result = await _result(h, subscribed, op)
    assert "💡" not in result.text and result.button_texts == ["📎 Файл без сжатия"]
    # Paid from the plan: the caption says so, and what is left.
    assert "Списано 1 операция из подписки, осталось 4." in result.text


async def test_two_claims_at_once_show_the_offer_once(engine) -> None:  # type: ignore[no-untyped-def]
    from billing.db import make_sessionmaker

    sm = make_sessionmaker(engine)
    async with sm() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=18001, free_operations=0)
        await session.commit()

    async def claim() -> int | None:
        async with sm() as session:
            got = await offers.claim_plans_offer(session, user_id=user.id)
            await session.commit()
            return got

    results = await asyncio.gather(*(claim() for _ in range(8)))
    assert sorted(results, key=lambda r: r is None) == [0] + [None] * 7
