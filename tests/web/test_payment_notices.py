"""The payment messages' outbox: a message the web server never got out (it died after the
commit, or Telegram stayed down through its retries) is sent by a worker's maintenance pass
after PAYMENT_NOTICE_GRACE_SECONDS — once, even with passes running side by side; a message
the web did send is never sent again; a user who blocked the bot is not retried.

Real PostgreSQL, the YooKassa and Telegram emulators, the real web server; the pass is
``workers.notices.deliver_due_notices`` (what every worker runs in its maintenance step),
given a ``now`` past the grace period instead of a sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import select, update

from billing import notices
from billing.models import LedgerKind, NoticeKind, NoticeOutcome, PaymentNotice, utcnow
from jobqueue.queue import media_queue
from tests.web.conftest import Stack
from tests.web.test_refunds import refund
from web import notify
from web.keys import NOTIFIER
from workers.notices import GIVE_UP_AFTER, deliver_due_notices
from workers.worker import MediaWorker


def lose_web_messages(stack: Stack) -> list[tuple[int, str]]:
    """The web server dies right after its commit: its background message never starts."""
    lost: list[tuple[int, str]] = []

    def dropped(chat_id: int, text: str, **_: object) -> None:
        lost.append((chat_id, text))

    stack.server.app[NOTIFIER].send = dropped  # type: ignore[method-assign]
    return lost


def after_grace(stack: Stack, extra: float = 1.0):  # type: ignore[no-untyped-def]
    return utcnow() + timedelta(seconds=stack.settings.PAYMENT_NOTICE_GRACE_SECONDS + extra)


async def send_calls(stack: Stack, chat_id: int) -> list[dict]:
    """Every sendMessage to the chat, refused ones included."""
    return await stack.tg.calls("sendMessage", chat_id=chat_id)


async def notice_rows(stack: Stack) -> list[PaymentNotice]:
    async with stack.sessionmaker() as session:
        return list(await session.scalars(select(PaymentNotice).order_by(PaymentNotice.id)))


async def paid(  # type: ignore[no-untyped-def]
    stack: Stack, telegram_id: int, amount: int = 10_000, *, blocked: bool = False, **kw: str
):
    """A user pays and YooKassa notifies the web server (which credits and answers 200)."""
    user_id, tg_user = await stack.new_user(telegram_id, **kw)
    if blocked:
        await stack.tg.block(telegram_id)
    started = await stack.topup(user_id, amount=amount)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    return user_id, tg_user, started


async def test_a_lost_credit_message_is_sent_by_the_pass_after_the_grace_period_once(
    stack: Stack,
) -> None:
    lost = lose_web_messages(stack)
    user_id, _, started = await paid(stack, 9801, 15_000)
    assert len(lost) == 1 and await stack.sent_texts(9801) == []
    assert await stack.balance(user_id) == 15_000

    # Within the grace period the message is the web server's: the pass leaves it alone.
    assert await deliver_due_notices(stack.settings) == []
    assert await send_calls(stack, 9801) == []

    ledger_before = await stack.ledger_count()
    done = await deliver_due_notices(stack.settings, now=after_grace(stack))
    assert [(d.key, d.outcome) for d in done] == [
        (notices.credited_key(started.payment_id), NoticeOutcome.SENT)
    ]
    texts = await stack.sent_texts(9801)
    assert texts == [lost[0][1]]  # the very text the web would have sent
    assert "Баланс пополнен на 150 ₽" in texts[0] and "150 ₽." in texts[0]

    # Sent is sent: later passes find nothing.
    assert await deliver_due_notices(stack.settings, now=after_grace(stack, 3600)) == []
    assert len(await send_calls(stack, 9801)) == 1
    # No money moved in this path.
    assert await stack.balance(user_id) == 15_000
    assert await stack.ledger_count() == ledger_before
    (row,) = await notice_rows(stack)
    assert (row.kind, row.outcome, row.attempts) == (NoticeKind.CREDITED, NoticeOutcome.SENT, 1)
    assert row.done_at is not None


async def test_concurrent_passes_send_each_lost_message_exactly_once(stack: Stack) -> None:
    lose_web_messages(stack)
    chats = list(range(9811, 9817))
    for chat in chats:
        await paid(stack, chat)
    now = after_grace(stack)

    passes = await asyncio.gather(
        *(deliver_due_notices(stack.settings, now=now) for _ in range(3))
    )
    sent = [d.key for done in passes for d in done if d.outcome == NoticeOutcome.SENT]
    assert len(sent) == len(set(sent)) == len(chats)
    for chat in chats:
        assert len(await send_calls(stack, chat)) == 1, chat
    assert all(row.outcome == NoticeOutcome.SENT for row in await notice_rows(stack))
    assert await stack.ledger_count(LedgerKind.TOPUP) == len(chats)


async def test_a_message_the_web_sent_is_never_sent_again(stack: Stack) -> None:
    _, tg_user, started = await paid(stack, 9821)
    await tg_user.wait_for_text("пополнен")
    await stack.settle()
    (row,) = await notice_rows(stack)
    assert row.key == notices.credited_key(started.payment_id)
    assert row.outcome == NoticeOutcome.SENT and row.attempts == 0  # marked by the web

    assert await deliver_due_notices(stack.settings, now=after_grace(stack, 86_400)) == []
    assert len(await send_calls(stack, 9821)) == 1


async def test_telegram_down_through_the_web_retries_then_the_pass_delivers(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The web's four tries, shorter apart (0.5, 1 and 2 s in production: 3.5 s of this test).
    monkeypatch.setattr(notify, "POLICY", dataclasses.replace(notify.POLICY, backoff=(0.05,)))
    await stack.tg.fail_next(4, kind="500", methods=["sendMessage"])  # every web attempt
    await paid(stack, 9831)
    await stack.settle()
    assert await stack.sent_texts(9831) == []
    (row,) = await notice_rows(stack)
    assert row.done_at is None

    await deliver_due_notices(stack.settings, now=after_grace(stack))
    assert len(await stack.sent_texts(9831)) == 1
    assert (await notice_rows(stack))[0].outcome == NoticeOutcome.SENT


async def test_a_transient_failure_releases_the_claim_for_the_next_pass(stack: Stack) -> None:
    lose_web_messages(stack)
    await paid(stack, 9841)
    await stack.tg.fail_next(1, kind="500", methods=["sendMessage"])

    grace = stack.settings.PAYMENT_NOTICE_GRACE_SECONDS
    done = await deliver_due_notices(stack.settings, now=after_grace(stack))
    assert [d.outcome for d in done] == ["released"]
    (row,) = await notice_rows(stack)
    assert row.done_at is None and row.claimed_at is not None and row.attempts == 1
    assert "TelegramServerError" in (row.last_error or "")
    # Not again at once (every worker runs a pass every few seconds): one grace period later.
    assert await deliver_due_notices(stack.settings, now=after_grace(stack, 2)) == []

    await stack.tg.fail_next(1, kind="429", retry_after=5, methods=["sendMessage"])
    done = await deliver_due_notices(stack.settings, now=after_grace(stack, grace + 2))
    assert [d.outcome for d in done] == ["released"]

    done = await deliver_due_notices(stack.settings, now=after_grace(stack, 2 * grace + 3))
    assert [d.outcome for d in done] == [NoticeOutcome.SENT]
    assert len(await stack.sent_texts(9841)) == 1
    assert (await notice_rows(stack))[0].attempts == 3


async def test_a_user_who_blocked_the_bot_is_marked_done_not_retried(stack: Stack) -> None:
    # The web's own message meets the block: done at once.
    await paid(stack, 9851, blocked=True)
    await stack.settle()
    (row,) = await notice_rows(stack)
    assert row.outcome == NoticeOutcome.BLOCKED

    # A lost message meets the block in the pass: done, and no later pass asks Telegram again.
    lose_web_messages(stack)
    await paid(stack, 9852, blocked=True)
    done = await deliver_due_notices(stack.settings, now=after_grace(stack))
    assert [d.outcome for d in done] == [NoticeOutcome.BLOCKED]
    for hours in (1, 24, 240):
        assert (
            await deliver_due_notices(stack.settings, now=after_grace(stack, hours * 3600)) == []
        )
    assert len(await send_calls(stack, 9852)) == 1
    assert len(await send_calls(stack, 9851)) == 1
    assert {r.outcome for r in await notice_rows(stack)} == {NoticeOutcome.BLOCKED}


async def test_the_claim_of_a_pass_that_died_is_taken_over_one_grace_period_later(
    stack: Stack,
) -> None:
    lose_web_messages(stack)
    await paid(stack, 9861)
    grace = timedelta(seconds=stack.settings.PAYMENT_NOTICE_GRACE_SECONDS)
    died_at = after_grace(stack)
    async with stack.sessionmaker() as session:  # a pass claims, then dies before sending
        (notice_id,) = await notices.due(session, now=died_at, grace=grace)
        assert await notices.claim(session, notice_id, now=died_at, grace=grace) is not None
        await session.commit()

    assert await deliver_due_notices(stack.settings, now=died_at + grace / 2) == []
    assert await send_calls(stack, 9861) == []
    done = await deliver_due_notices(stack.settings, now=died_at + grace + timedelta(seconds=1))
    assert [d.outcome for d in done] == [NoticeOutcome.SENT]
    assert len(await stack.sent_texts(9861)) == 1


async def test_the_pass_writes_in_the_users_language(stack: Stack) -> None:
    lose_web_messages(stack)
    await paid(stack, 9871, 20_000, language="en")
    await deliver_due_notices(stack.settings, now=after_grace(stack))
    (text,) = await stack.sent_texts(9871)
    assert "Your balance was topped up by 200 ₽" in text


async def test_a_lost_cancel_message_is_sent_by_the_pass(stack: Stack) -> None:
    lost = lose_web_messages(stack)
    user_id, _ = await stack.new_user(9881)
    started = await stack.topup(user_id, amount=25_000)
    await stack.yk.mark_canceled(started.yookassa_payment_id, reason="insufficient_funds")
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200  # again
    assert len(lost) == 1

    done = await asyncio.gather(
        *(deliver_due_notices(stack.settings, now=after_grace(stack)) for _ in range(2))
    )
    assert sorted(d.key for pass_ in done for d in pass_) == [
        notices.canceled_key(started.payment_id)
    ]
    (text,) = await stack.sent_texts(9881)
    assert text == lost[0][1]
    assert "не прошла" in text and "250 ₽" in text and "недостаточно денег" in text
    assert await stack.balance(user_id) == 0


async def test_a_lost_refund_message_is_sent_by_the_pass_with_its_own_balance(
    stack: Stack,
) -> None:
    await stack.yk.configure(auto_notify=False)
    user_id, tg_user, started = await paid(stack, 9891, 30_000)
    await tg_user.wait_for_text("пополнен")
    await stack.settle()

    lost = lose_web_messages(stack)
    first = await refund(stack, started.yookassa_payment_id, 10_000)
    note = await stack.yk.notify(started.yookassa_payment_id, event="refund.succeeded")
    assert note["status"] == 200
    second = await refund(stack, started.yookassa_payment_id, 5_000)
    note = await stack.yk.notify(started.yookassa_payment_id, event="refund.succeeded")
    assert note["status"] == 200
    assert len(lost) == 2 and await stack.balance(user_id) == 15_000

    done = await asyncio.gather(
        *(deliver_due_notices(stack.settings, now=after_grace(stack)) for _ in range(2))
    )
    assert sorted(d.key for pass_ in done for d in pass_) == sorted(
        [notices.refunded_key(first["id"]), notices.refunded_key(second["id"])]
    )
    texts = [t for t in await stack.sent_texts(9891) if "возврат" in t]
    assert texts == [text for _, text in lost]  # in order, each with the balance it left
    assert "100 ₽" in texts[0] and "200 ₽" in texts[0]
    assert "50 ₽" in texts[1] and "150 ₽" in texts[1]
    assert await stack.ledger_count(LedgerKind.PAYMENT_REFUND) == 2


async def test_a_notice_failing_for_two_days_is_given_up(stack: Stack) -> None:
    """Given up by age, not by a count of tries: a few minutes of Telegram trouble with many
    workers running passes must not use up a message's chances."""
    lose_web_messages(stack)
    await paid(stack, 9901)
    await stack.tg.fail_next(1, kind="500", methods=["sendMessage"])
    done = await deliver_due_notices(stack.settings, now=after_grace(stack))
    assert [d.outcome for d in done] == ["released"]  # a fresh notice: tried again later

    late = utcnow() + GIVE_UP_AFTER + timedelta(minutes=1)
    await stack.tg.fail_next(1, kind="500", methods=["sendMessage"])
    done = await deliver_due_notices(stack.settings, now=late)
    assert [d.outcome for d in done] == [NoticeOutcome.GAVE_UP]
    assert await deliver_due_notices(stack.settings, now=late + timedelta(hours=1)) == []
    assert await stack.sent_texts(9901) == []
    (row,) = await notice_rows(stack)
    assert row.outcome == NoticeOutcome.GAVE_UP and row.attempts == 2


async def test_the_worker_maintenance_step_runs_the_pass(
    stack: Stack, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    lose_web_messages(stack)
    await paid(stack, 9911)
    settings = stack.settings.model_copy(
        update={"PAYMENT_NOTICE_GRACE_SECONDS": 0.5, "RQ_QUEUE": "notices-test"}
    )
    # The notice is older than the worker's grace: written a second earlier, not waited for.
    async with stack.sessionmaker() as session:
        await session.execute(
            update(PaymentNotice).values(
                created_at=PaymentNotice.created_at - timedelta(seconds=1)
            )
        )
        await session.commit()
    connection = Redis.from_url(redis_url)
    try:
        worker = MediaWorker(
            [media_queue(connection, settings)], connection=connection, settings=settings
        )
        await asyncio.to_thread(worker.run_maintenance_tasks)
        await asyncio.to_thread(worker.run_maintenance_tasks)
    finally:
        connection.close()
    assert len(await stack.sent_texts(9911)) == 1
    assert (await notice_rows(stack))[0].outcome == NoticeOutcome.SENT


async def test_the_web_gives_up_at_half_the_grace_period_and_the_pass_delivers(
    make_stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack = await make_stack(PAYMENT_NOTICE_GRACE_SECONDS=2.0)
    # Flood control longer than the web's deadline (1 s): its attempt is cut short.
    await stack.tg.fail_next(1, kind="429", retry_after=30, methods=["sendMessage"])
    started = asyncio.get_running_loop().time()
    await paid(stack, 9921)
    await stack.settle()
    assert asyncio.get_running_loop().time() - started < 10
    assert any("left to the maintenance pass" in r.getMessage() for r in caplog.records)
    (row,) = await notice_rows(stack)
    assert row.done_at is None

    await deliver_due_notices(stack.settings, now=after_grace(stack))
    assert len(await stack.sent_texts(9921)) == 1


async def test_a_refund_that_overtakes_the_payment_tells_both_and_leaves_nothing_open(
    stack: Stack,
) -> None:
    await stack.yk.configure(auto_notify=False)
    user_id, tg_user = await stack.new_user(9931)
    started = await stack.topup(user_id, amount=10_000)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)  # its notification is lost
    await refund(stack, started.yookassa_payment_id, 4_000)
    note = await stack.yk.notify(started.yookassa_payment_id, event="refund.succeeded")
    assert note["status"] == 200
    await tg_user.wait_for_text("возврат")
    await stack.settle()
    texts = await stack.sent_texts(9931)
    assert len(texts) == 2 and "пополнен на 100 ₽" in texts[0] and "возврат 40 ₽" in texts[1]
    assert {r.outcome for r in await notice_rows(stack)} == {NoticeOutcome.SENT}
    assert await deliver_due_notices(stack.settings, now=after_grace(stack)) == []
