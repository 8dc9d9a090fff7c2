"""A card payment (YooKassa) from the Mini App: created by the chat's own function
(billing.payments.start_yookassa_payment), one payment per click, its state on the page, and
credited once whichever of the app, the chat's check and the webhook sees it paid first."""

from __future__ import annotations

from sqlalchemy import func, select

from billing.models import LedgerEntry, Payment, PaymentNotice, UserPlan
from billing.payments import Outcome, reconcile_payment, start_yookassa_payment
from tests.web.conftest import Stack
from tests.web.miniapp import AppCaller, caller


async def _counts(stack: Stack, user_id: int) -> tuple[int, int, int]:
    """(payments, top-up entries, plan holdings) of the user."""
    async with stack.sessionmaker() as session:
        rows = await session.scalar(
            select(func.count()).select_from(Payment).where(Payment.user_id == user_id)
        )
        topups = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.user_id == user_id, LedgerEntry.kind == "topup")
        )
        holdings = await session.scalar(
            select(func.count()).select_from(UserPlan).where(UserPlan.user_id == user_id)
        )
    return int(rows), int(topups), int(holdings)


async def _notices_left(stack: Stack) -> int:
    """Payment messages on record and not yet sent (what a maintenance pass would send)."""
    async with stack.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(PaymentNotice)
                .where(PaymentNotice.done_at.is_(None))
            )
        )


async def _top_up_from_the_app(
    stack: Stack, telegram_id: int, amount_rub: int, key: str, language: str = "ru"
) -> tuple[int, AppCaller, int, str]:
    """A new user's card top-up started in the Mini App: (user id, the app's client, our
    payment id, YooKassa's payment id)."""
    user_id, _ = await stack.new_user(telegram_id, language=language)
    app = caller(stack, telegram_id, language=language)
    status, body = await app.post("/app/api/card/payment", {"amount_rub": amount_rub, "key": key})
    assert status == 200, body
    payment_id = body["payment"]["id"]
    row = await stack.payment_row(payment_id)
    return user_id, app, payment_id, row.yookassa_payment_id


async def test_a_plan_bought_by_card_in_the_app_is_credited_once(stack: Stack) -> None:
    user_id, _ = await stack.new_user(9901)
    app = caller(stack, 9901)
    status, body = await app.post("/app/api/card/payment", {"plan": "pack10", "key": "k" * 16})
    assert status == 200, body
    paid = body["payment"]
    assert paid["amount"] == 8_000 and paid["state"] == "pending" and not paid["credited"]
    assert paid["confirmation_url"].startswith("http")
    # The same click again (a double tap): the same payment, no second one.
    status, again = await app.post("/app/api/card/payment", {"plan": "pack10", "key": "k" * 16})
    assert (status, again["payment"]["id"]) == (200, paid["id"])
    assert await _counts(stack, user_id) == (1, 0, 0)
    # Its metadata names the plan: the chat's function made it.
    row = await stack.payment_row(paid["id"])
    remote = (await stack.yk.payment(row.yookassa_payment_id))["payment"]
    assert remote["metadata"]["plan_id"] and remote["metadata"]["payment_row_id"] == str(row.id)

    status, shown = await app.get(f"/app/api/card/payment/{paid['id']}")
    assert (status, shown["payment"]["state"]) == (200, "pending")
    assert shown["payment"]["state_text"] == "⏳ ждёт оплаты"

    await stack.yk.mark_succeeded(row.yookassa_payment_id)
    status, shown = await app.get(f"/app/api/card/payment/{paid['id']}")
    assert status == 200 and shown["payment"]["credited"]
    assert shown["payment"]["state"] == "succeeded"
    # The app's check made the credit: the chat is told now, not a grace period later by a
    # worker's maintenance pass (PAYMENT_NOTICE_GRACE_SECONDS, 5 minutes by default).
    await stack.settle()
    told = await stack.sent_texts(9901)
    assert len(told) == 1 and "Пакет 10 операций" in told[0], told
    assert await _notices_left(stack) == 0
    # The chat's "Проверить оплату" and the webhook after it: nothing more, no second message.
    checked = await reconcile_payment(stack.sessionmaker, stack.gateway, payment_id=paid["id"])
    assert checked.outcome is Outcome.ALREADY_CREDITED
    assert (await stack.yk.notify(row.yookassa_payment_id))["status"] == 200
    await stack.settle()
    assert await stack.sent_texts(9901) == told
    assert await _counts(stack, user_id) == (1, 1, 1)
    assert await stack.balance(user_id) == 0  # 80 ₽ in, the package bought with them


async def test_a_top_up_started_in_the_chat_and_checked_in_the_app_is_credited_once(
    stack: Stack,
) -> None:
    user_id, _ = await stack.new_user(9902, language="en")
    # What the chat's top-up menu calls (bot.card_payment).
    started = await start_yookassa_payment(
        stack.sessionmaker, stack.gateway, stack.settings, user_id=user_id, amount_rub=300
    )
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    # The webhook first, then the app: the app shows it credited, credits nothing more.
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    await stack.settle()
    app = caller(stack, 9902, language="en")
    status, shown = await app.get(f"/app/api/card/payment/{started.payment_id}")
    assert status == 200 and shown["payment"]["credited"]
    assert shown["payment"]["state_text"] == "✅ paid and credited"
    assert await _counts(stack, user_id) == (1, 1, 0)
    assert await stack.balance(user_id) == 30_000


async def test_a_top_up_started_in_the_app_and_checked_in_the_chat_is_credited_once(
    stack: Stack,
) -> None:
    user_id, app, payment_id, yookassa_id = await _top_up_from_the_app(stack, 9903, 500, "a" * 20)
    await stack.yk.mark_succeeded(yookassa_id)
    checked = await reconcile_payment(stack.sessionmaker, stack.gateway, payment_id=payment_id)
    assert checked.outcome is Outcome.CREDITED
    status, shown = await app.get(f"/app/api/card/payment/{payment_id}")
    assert status == 200 and shown["payment"]["credited"]
    assert (await stack.yk.notify(yookassa_id))["status"] == 200
    await stack.settle()
    assert await _counts(stack, user_id) == (1, 1, 0)
    assert await stack.balance(user_id) == 50_000
    # The chat's check made the credit (bot/routers/topup.py tells of it; here it is called
    # bare): the app and the webhook after it neither send its message nor mark it sent.
    assert await stack.sent_texts(9903) == []
    assert await _notices_left(stack) == 1


async def test_a_top_up_paid_and_first_seen_by_the_app_is_told_in_the_chat_once(
    stack: Stack,
) -> None:
    user_id, app, payment_id, yookassa_id = await _top_up_from_the_app(
        stack, 9904, 250, "b" * 20, language="en"
    )
    await stack.yk.mark_succeeded(yookassa_id)
    # The page asks twice (a poll and a tap on "check"), the webhook comes last.
    for _ in range(2):
        status, shown = await app.get(f"/app/api/card/payment/{payment_id}")
        assert status == 200 and shown["payment"]["credited"]
    assert (await stack.yk.notify(yookassa_id))["status"] == 200
    await stack.settle()
    told = await stack.sent_texts(9904)
    assert len(told) == 1 and "250" in told[0], told
    assert await _notices_left(stack) == 0
    assert await _counts(stack, user_id) == (1, 1, 0)
    assert await stack.balance(user_id) == 25_000


async def test_a_payment_canceled_and_first_seen_by_the_app_is_told_in_the_chat_once(
    stack: Stack,
) -> None:
    user_id, app, payment_id, yookassa_id = await _top_up_from_the_app(stack, 9905, 300, "c" * 20)
    await stack.yk.mark_canceled(yookassa_id)
    for _ in range(2):  # a poll, then a tap on "check"
        status, shown = await app.get(f"/app/api/card/payment/{payment_id}")
        assert (status, shown["payment"]["state"]) == (200, "canceled")
    assert (await stack.yk.notify(yookassa_id))["status"] == 200
    await stack.settle()
    told = await stack.sent_texts(9905)
    assert len(told) == 1 and "300" in told[0], told
    assert await _notices_left(stack) == 0
    assert await _counts(stack, user_id) == (1, 0, 0)
    assert await stack.balance(user_id) == 0


async def test_bad_card_requests_are_refused_and_write_nothing(stack: Stack) -> None:
    owner_id, _ = await stack.new_user(9904)
    other_id, _ = await stack.new_user(9905)
    app = caller(stack, 9904)
    for body in (
        {"amount_rub": 5, "key": "b" * 16},  # below TOPUP_MIN_RUB
        {"amount_rub": 10**9, "key": "b" * 16},
        {"amount_rub": 100, "plan": "pack10", "key": "b" * 16},
        {"amount_rub": True, "key": "b" * 16},
        {"amount_rub": 100},  # no key
        {"plan": "pack10", "key": "short"},
    ):
        status, answer = await app.post("/app/api/card/payment", body)
        assert status == 400, (body, answer)
    status, answer = await app.post("/app/api/card/payment", {"plan": "nope", "key": "c" * 16})
    assert (status, answer["status"]) == (404, "not_for_sale")
    assert await _counts(stack, owner_id) == (0, 0, 0)
    # Another user's payment is not found, not shown.
    theirs = await start_yookassa_payment(
        stack.sessionmaker, stack.gateway, stack.settings, user_id=other_id, amount_rub=100
    )
    status, _ = await app.get(f"/app/api/card/payment/{theirs.payment_id}")
    assert status == 404


async def test_no_card_payments_when_payment_methods_leave_yookassa_out(
    make_stack: object,
) -> None:
    stack = await make_stack(PAYMENT_METHODS="stars")  # type: ignore[operator]
    await stack.new_user(9906)
    app = caller(stack, 9906)
    status, me = await app.get("/app/api/me")
    assert status == 200 and me["card"] is False and me["topup_presets"] == []
    status, _ = await app.post("/app/api/card/payment", {"amount_rub": 100, "key": "d" * 16})
    assert status == 400
