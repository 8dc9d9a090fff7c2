"""The Mini App's figures are billing's: the balance against ``billing.wallet.wallet``, the
plans against the catalogue, the history against the ledger (in the chat's words, by kind,
page after page), the operations against their rows; a plan bought from the balance is
bought once per click, however many times the click arrives."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from billing import accounts, operations, wallet
from billing.models import LedgerEntry, UserPlan
from tests.web.conftest import Stack
from tests.web.miniapp import AppCaller, caller
from texts import wallet_texts


async def _user_with_money(stack: Stack, telegram_id: int, amount: int) -> tuple[int, AppCaller]:
    user_id, _ = await stack.new_user(telegram_id, language="en")
    async with stack.sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, reason="test", amount=amount)
        await session.commit()
    return user_id, caller(stack, telegram_id, language="en")


async def _holdings(stack: Stack, user_id: int) -> int:
    async with stack.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(UserPlan).where(UserPlan.user_id == user_id)
            )
        )


async def test_the_same_click_twice_buys_once(stack: Stack) -> None:
    user_id, app = await _user_with_money(stack, 7201, 50_000)
    first, again = await asyncio.gather(
        app.post("/app/api/plans/pack10/buy", {"key": "click-0001"}),
        app.post("/app/api/plans/pack10/buy", {"key": "click-0001"}),
    )
    statuses = sorted(body["status"] for _, body in (first, again))
    assert statuses == ["bought", "duplicate"], (first, again)
    assert await stack.balance(user_id) == 50_000 - 8_000
    assert await _holdings(stack, user_id) == 1
    status, body = await app.post("/app/api/plans/pack10/buy", {"key": "click-0001"})
    assert (status, body["status"]) == (200, "duplicate")
    # Another click is another purchase.
    status, body = await app.post("/app/api/plans/pack10/buy", {"key": "click-0002"})
    assert (status, body["status"], body["balance"]) == (200, "bought", 50_000 - 16_000)
    assert await _holdings(stack, user_id) == 2
    assert await stack.ledger_count("plan_purchase") == 2


async def test_a_purchase_refused_changes_nothing(stack: Stack) -> None:
    user_id, app = await _user_with_money(stack, 7202, 5_000)
    status, body = await app.post("/app/api/plans/pack10/buy", {"key": "click-0003"})
    assert (status, body["status"], body["balance"]) == (409, "insufficient", 5_000)
    for path, body_sent in (
        ("/app/api/plans/free/buy", {"key": "click-0004"}),  # the default plan: not sold
        ("/app/api/plans/nope/buy", {"key": "click-0005"}),
    ):
        status, body = await app.post(path, body_sent)
        assert (status, body["status"]) == (404, "not_for_sale")
    for bad in ({}, {"key": "short"}, {"key": "x" * 65}, {"key": "bad key!"}, [1], "text"):
        status, body = await app.post("/app/api/plans/pack10/buy", bad)
        assert (status, body["error"]) == (400, "bad_request")
    assert await stack.balance(user_id) == 5_000
    assert await _holdings(stack, user_id) == 0
    assert await stack.ledger_count("plan_purchase") == 0


async def test_the_balance_and_the_plans_are_the_wallets(stack: Stack) -> None:
    user_id, app = await _user_with_money(stack, 7203, 50_000)
    assert (await app.post("/app/api/plans/pro/buy", {"key": "click-pro-1"}))[0] == 200
    assert (await app.post("/app/api/plans/pack10/buy", {"key": "click-pack-1"}))[0] == 200
    async with stack.sessionmaker() as session:
        await operations.charge(
            session, stack.settings, user_id=user_id, op_type="upscale", request_key="t:1"
        )
        await session.commit()
        held = await wallet.wallet(session, stack.settings, user_id=user_id)
        catalogue = await wallet.catalogue(session)
    status, body = await app.get("/app/api/balance")
    assert status == 200
    assert body["balance"] == held.balance == 50_000 - 19_900 - 8_000
    assert (body["free_left"], body["free_granted"]) == (held.free_left, held.free_granted)
    sub = body["subscription"]
    assert held.subscription is not None
    assert (sub["plan"], sub["units_left"], sub["units_per_period"]) == (
        "pro",
        held.subscription.units_left,
        30,
    )
    assert held.subscription.ends_at is not None
    assert sub["resets_at"] == held.subscription.ends_at.isoformat()
    assert [(p["plan"], p["units_left"]) for p in body["packages"]] == [
        (p.plan.code, p.units_left) for p in held.packages
    ]
    assert body["package_units"] == held.package_units == 10
    assert body["lines"][0].startswith("📋 Your plan: Pro")  # the chat's words, no markup
    status, listed = await app.get("/app/api/plans")
    assert status == 200
    assert [(p["code"], p["price"], p["units"], p["current"]) for p in listed["plans"]] == [
        (p.code, p.price, p.units, p.code == "pro") for p in catalogue if not p.is_default
    ]
    assert all("<" not in p["text"] for p in listed["plans"])


async def test_the_history_is_the_ledger_page_by_page_and_by_kind(stack: Stack) -> None:
    user_id, app = await _user_with_money(stack, 7204, 50_000)
    for n in range(3):
        status, _ = await app.post("/app/api/plans/pack10/buy", {"key": f"click-h-{n:04d}"})
        assert status == 200
    async with stack.sessionmaker() as session:
        for n in range(4):
            await operations.charge(
                session, stack.settings, user_id=user_id, op_type="retouch", request_key=f"h:{n}"
            )
        await session.commit()
        ledger = await wallet.history(session, user_id=user_id, limit=100)
    assert len(ledger) == 1 + 3 + 4  # the grant, three packs, four charges
    seen: list[dict] = []
    before = None
    while True:
        params = {"limit": 3} | ({"before": before} if before else {})
        status, page = await app.get("/app/api/history", **params)
        assert status == 200 and len(page["items"]) <= 3
        seen += page["items"]
        if page["next"] is None:
            break
        before = page["next"]
    assert [i["id"] for i in seen] == [e.id for e in ledger]
    assert [i["amount"] for i in seen] == [e.amount for e in ledger]
    assert [i["text"] for i in seen] == [wallet_texts.history_what(e, "en") for e in ledger]
    status, bought = await app.get("/app/api/history", kind="plan_purchase")
    purchases = [e.id for e in ledger if e.kind == "plan_purchase"]
    assert [i["id"] for i in bought["items"]] == purchases
    assert bought["next"] is None
    status, two = await app.get("/app/api/history", kind="plan_purchase,adjustment", limit=2)
    assert len(two["items"]) == 2 and two["next"] is not None
    for bad in ({"kind": "nope"}, {"limit": 0}, {"limit": 51}, {"before": "x"}, {"kind": ","}):
        status, body = await app.get("/app/api/history", **bad)
        assert status == 400, bad


async def test_the_operations_say_type_status_price_and_why_refunded(stack: Stack) -> None:
    user_id, app = await _user_with_money(stack, 7205, 10_000)
    async with stack.sessionmaker() as session:
        ids = []
        for n in range(6):  # no free operations (new_user): all from the balance
            result = await operations.charge(
                session, stack.settings, user_id=user_id, op_type="upscale", request_key=f"o:{n}"
            )
            ids.append(result.operation_id)
        await session.commit()
        await operations.refund_operation(session, operation_id=ids[-1], error="timeout: 180 s")
        await session.commit()
        count = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == user_id)
        )
    assert count == 1 + 6 + 1  # the grant, six charges, one refund
    status, first = await app.get("/app/api/operations", limit=4)
    status2, rest = await app.get("/app/api/operations", limit=4, before=first["next"])
    assert (status, status2) == (200, 200)
    items = first["items"] + rest["items"]
    assert rest["next"] is None
    assert [o["id"] for o in items] == list(reversed(ids))
    newest = items[0]
    assert (newest["type"], newest["status"], newest["funding"], newest["price"]) == (
        "upscale",
        "refunded",
        "balance",
        stack.settings.price_kopecks,
    )
    assert newest["refund_reason"] == "processing took too long."
    assert newest["status_text"] == "↩️ refunded"
    assert (items[1]["status"], items[1]["refund_reason"]) == ("queued", None)
    assert items[-1]["funding"] == "balance" and items[-1]["cost_text"] == "10 ₽"
    assert await stack.balance(user_id) == 10_000 - 5 * stack.settings.price_kopecks


async def test_a_stars_invoice_link_names_a_pending_purchase(make_stack) -> None:  # type: ignore[no-untyped-def]
    from billing.models import Payment

    stack = await make_stack(PAYMENT_METHODS="stars,yookassa")
    user_id, app = await _user_with_money(stack, 7206, 100)
    status, body = await app.post("/app/api/stars/invoice", {"plan": "pack10"})
    assert status == 200 and body["link"].startswith("https://t.me/$")
    assert body["stars"] == 80  # 80 ₽ at 1 ₽ a ⭐
    status, body = await app.post("/app/api/stars/invoice", {"pack": 50})
    assert (status, body["stars"]) == (200, 50)
    for bad in ({"pack": 7}, {"pack": True}, {"plan": "pack10", "pack": 50}, {}, [1]):
        status, _ = await app.post("/app/api/stars/invoice", bad)
        assert status == 400, bad
    status, body = await app.post("/app/api/stars/invoice", {"plan": "free"})
    assert (status, body["status"]) == (404, "not_for_sale")
    async with stack.sessionmaker() as session:
        rows = (await session.scalars(select(Payment).where(Payment.user_id == user_id))).all()
    assert sorted((p.stars, str(p.status)) for p in rows) == [(50, "pending"), (80, "pending")]
    assert await stack.balance(user_id) == 100  # nothing credited before a payment


async def test_no_stars_invoice_when_stars_are_not_offered(stack: Stack) -> None:
    _, app = await _user_with_money(stack, 7207, 100)
    status, body = await app.post("/app/api/stars/invoice", {"pack": 50})
    assert (status, body["reason"]) == (400, "Stars are not offered")


async def test_a_period_over_is_renewed_when_the_app_opens_and_the_chat_told(
    stack: Stack,
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from billing.models import utcnow

    user_id, app = await _user_with_money(stack, 7208, 50_000)
    assert (await app.post("/app/api/plans/pro/buy", {"key": "click-renew-1"}))[0] == 200
    async with stack.sessionmaker() as session:
        await session.execute(
            update(UserPlan)
            .where(UserPlan.user_id == user_id)
            .values(ends_at=utcnow() - timedelta(minutes=1))
        )
        await session.commit()
    status, body = await app.get("/app/api/balance")
    assert status == 200
    assert body["balance"] == 50_000 - 2 * 19_900  # bought, then renewed once
    assert body["subscription"]["units_left"] == 30
    texts = await stack.sent_texts(7208)
    assert [x for x in texts if "renewed" in x or "продлена" in x], texts
    assert await stack.ledger_count("renewal") == 1
