"""An operator's refund of a YooKassa payment (billing.refunds, `python -m billing
refund-payment`): through YooKassa's refunds API with the request's own idempotence key,
stored before the call and sent again on every retry — one refund however often the command
runs — and debited the way a refund YooKassa notifies of is (a debt recorded when the money
was spent). The web server of the stack takes YooKassa's refund notifications meanwhile."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select

from billing import accounts, payments, refunds
from billing.models import LedgerKind, PaymentNotice, PaymentRefund, PaymentStatus
from billing.payments import reconcile_payment
from tests.web.conftest import SECRET_KEY, SHOP_ID, Stack, wait_until
from tests.web.test_refunds import credited_payment, refund

Cli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
async def quiet(make_stack) -> Stack:  # type: ignore[no-untyped-def]
    """The stack with YooKassa's own notifications off: only the command debits."""
    stack = await make_stack()
    await stack.yk.configure(auto_notify=False)
    return stack


@pytest.fixture
def cli(monkeypatch, billing_cli, db_url: str, emulators) -> Cli:  # type: ignore[no-untyped-def]
    yk_handle, _ = emulators
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("YOOKASSA_SHOP_ID", SHOP_ID)
    monkeypatch.setenv("YOOKASSA_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("YOOKASSA_API_URL", f"{yk_handle.url}/v3")
    monkeypatch.setenv("YOOKASSA_TIMEOUT", "5")
    return functools.partial(billing_cli, "refund-payment")


async def requests_of(stack: Stack) -> list[PaymentRefund]:
    async with stack.sessionmaker() as session:
        rows = await session.scalars(select(PaymentRefund).order_by(PaymentRefund.id))
        return list(rows.all())


async def refund_calls(stack: Stack) -> list[dict]:
    return await stack.yk.requests("/v3/refunds", method="POST")


async def made(stack: Stack, started) -> list[dict]:  # type: ignore[no-untyped-def]
    """The refunds YooKassa made of this payment."""
    return [r for r in await stack.yk.refunds() if r["payment_id"] == started.yookassa_payment_id]


async def test_a_full_refund_returns_the_payment_and_debits_the_balance_once(
    quiet: Stack, cli: Cli
) -> None:
    user_id, tg_user, started = await credited_payment(quiet, 9701, 30_000)

    code, out, err = await cli(str(started.payment_id))
    assert (code, err) == (0, "")
    assert out.startswith(f"refunded 300 ₽ of payment {started.payment_id} (refund ")
    assert "balance 0 ₽" in out

    [request] = await requests_of(quiet)
    [refunded] = await made(quiet, started)
    assert (request.status, request.amount, request.requested_by) == ("succeeded", 30_000, "cli")
    assert request.yookassa_refund_id == refunded["id"]
    assert refunded["amount"] == {"value": "300.00", "currency": "RUB"}
    # The key was the stored one.
    [call] = await refund_calls(quiet)
    assert call["headers"]["Idempotence-Key"] == request.idempotence_key
    assert await quiet.balance(user_id) == 0
    assert await quiet.ledger_count(LedgerKind.PAYMENT_REFUND) == 1
    row = await quiet.payment_row(started.payment_id)
    assert (row.status, row.refunded_amount) == (PaymentStatus.REFUNDED, 30_000)
    # The user's message is on record (a worker sends it: the CLI has no bot).
    async with quiet.sessionmaker() as session:
        notice = await session.scalar(
            select(PaymentNotice).where(PaymentNotice.key == f"refunded:{refunded['id']}")
        )
    assert (notice.kind, notice.amount, notice.balance_after) == ("refunded", 30_000, 0)

    # The same command again: no second refund.
    code, out, err = await cli(str(started.payment_id))
    assert code == 0 and out.startswith("already refunded: 300 ₽"), (out, err)
    assert len(await refund_calls(quiet)) == 1 and len(await made(quiet, started)) == 1
    assert await quiet.balance(user_id) == 0
    # By its YooKassa id too.
    code, out, _ = await cli(started.yookassa_payment_id)
    assert code == 0 and out.startswith("already refunded")
    assert len(await refund_calls(quiet)) == 1


async def test_partial_refunds_each_once_then_the_rest(quiet: Stack, cli: Cli) -> None:
    user_id, _, started = await credited_payment(quiet, 9702, 30_000)

    code, out, _ = await cli(str(started.payment_id), "99.90")
    assert code == 0 and out.startswith("refunded 99,90 ₽"), out
    assert await quiet.balance(user_id) == 20_010
    # Repeated: the same refund, reported.
    code, out, _ = await cli(str(started.payment_id), "99,9")
    assert code == 0 and out.startswith("already refunded: 99,90 ₽"), out
    assert len(await made(quiet, started)) == 1 and await quiet.balance(user_id) == 20_010
    # --again: another of the same amount.
    code, out, _ = await cli(str(started.payment_id), "99.90", "--again")
    assert code == 0 and out.startswith("refunded 99,90 ₽"), out
    assert await quiet.balance(user_id) == 10_020
    # More than is left: refused, nothing asked.
    code, _, err = await cli(str(started.payment_id), "200")
    assert code == 1 and "only 100,20 ₽ of payment" in err and "not 200 ₽" in err
    # The rest.
    code, out, _ = await cli(str(started.payment_id))
    assert code == 0 and out.startswith("refunded 100,20 ₽"), out
    assert await quiet.balance(user_id) == 0
    code, _, err = await cli(str(started.payment_id), "1")
    assert code == 1 and "refunded in full already" in err

    assert len(await made(quiet, started)) == 3
    assert len(await refund_calls(quiet)) == 3
    assert await quiet.ledger_count(LedgerKind.PAYMENT_REFUND) == 3
    assert [r.status for r in await requests_of(quiet)] == ["succeeded"] * 3
    row = await quiet.payment_row(started.payment_id)
    assert (row.status, row.refunded_amount) == (PaymentStatus.REFUNDED, 30_000)


async def test_an_answer_lost_then_the_command_again_makes_one_refund(
    quiet: Stack, cli: Cli
) -> None:
    user_id, _, started = await credited_payment(quiet, 9703, 10_000)
    # YooKassa makes the refund, and the answer is lost.
    await quiet.yk.drop_next(1, only="refund", after_processing=True)
    code, _, err = await cli(str(started.payment_id))
    assert code == 1 and "Run the same command again" in err, err
    assert len(await made(quiet, started)) == 1
    [request] = await requests_of(quiet)
    assert request.status == "new" and request.yookassa_refund_id is None
    assert await quiet.balance(user_id) == 10_000  # not debited: nobody knows of it yet

    code, out, err = await cli(str(started.payment_id))
    assert code == 0 and out.startswith("refunded 100 ₽"), (out, err)
    assert len(await made(quiet, started)) == 1
    keys = {c["headers"]["Idempotence-Key"] for c in await refund_calls(quiet)}
    assert keys == {request.idempotence_key}
    assert await quiet.balance(user_id) == 0
    assert await quiet.ledger_count(LedgerKind.PAYMENT_REFUND) == 1
    [request] = await requests_of(quiet)
    assert request.status == "succeeded"


async def test_two_runs_at_once_make_one_refund(quiet: Stack) -> None:
    user_id, _, started = await credited_payment(quiet, 9704, 10_000)

    async def run() -> refunds.OperatorRefund | Exception:
        try:
            return await refunds.refund_payment(
                quiet.sessionmaker, quiet.gateway, payment=started.payment_id, requested_by="t"
            )
        except refunds.RefundRefused as exc:
            return exc

    results = await asyncio.gather(*(run() for _ in range(4)))
    assert len(await made(quiet, started)) == 1
    assert await quiet.balance(user_id) == 0
    assert await quiet.ledger_count(LedgerKind.PAYMENT_REFUND) == 1
    done = [r for r in results if isinstance(r, refunds.OperatorRefund)]
    assert done and {r.yookassa_refund_id for r in done} == {(await made(quiet, started))[0]["id"]}
    assert len(await requests_of(quiet)) == 1


async def test_yookassas_notification_of_the_same_refund_debits_nothing_more(
    stack: Stack, cli: Cli
) -> None:
    user_id, tg_user, started = await credited_payment(stack, 9705, 20_000)
    # YooKassa notifies of the refund at once (auto_notify): the webhook and the command meet.
    code, out, err = await cli(str(started.payment_id), "50")
    assert code == 0 and out.startswith("refunded 50 ₽"), (out, err)
    [refunded] = await made(stack, started)

    async def notified() -> bool:
        notes = await stack.yk.notifications(refunded["id"])
        return bool(notes) and all(n["done"] for n in notes)

    await wait_until(notified)
    await stack.settle()
    assert await stack.balance(user_id) == 15_000
    assert await stack.ledger_count(LedgerKind.PAYMENT_REFUND) == 1
    async with stack.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(PaymentNotice)
            .where(PaymentNotice.key == f"refunded:{refunded['id']}")
        )
    assert count == 1
    [request] = await requests_of(stack)
    assert request.status == "succeeded"


async def test_a_refund_of_money_already_spent_records_a_debt(quiet: Stack, cli: Cli) -> None:
    user_id, _, started = await credited_payment(quiet, 9706, 10_000)
    async with quiet.sessionmaker() as session:  # 70 ₽ of it spent
        await accounts.adjust(session, user_id=user_id, amount=-7_000, reason="spent in test")
        await session.commit()
    code, out, _ = await cli(str(started.payment_id))
    assert code == 0 and "balance −70 ₽" in out, out
    assert await quiet.balance(user_id) == -7_000
    async with quiet.sessionmaker() as session:
        notice = await session.scalar(
            select(PaymentNotice).where(PaymentNotice.kind == "refunded")
        )
    assert notice.balance_after == -7_000


async def test_unknown_or_unpaid_payments_are_refused_and_nothing_changes(
    quiet: Stack, cli: Cli
) -> None:
    user_id, _ = await quiet.new_user(9707)
    pending = await quiet.topup(user_id, amount=10_000)
    canceled = await quiet.topup(user_id, amount=10_000)
    await quiet.yk.mark_canceled(canceled.yookassa_payment_id)

    code, _, err = await cli("424242")
    assert code == 1 and "there is no payment 424242" in err
    code, _, err = await cli("2a2c5e1b-000f-5000-8000-1a2b3c4d5e6f")
    assert code == 1 and "there is no payment 2a2c5e1b-000f-5000-8000-1a2b3c4d5e6f" in err
    code, _, err = await cli(str(pending.payment_id))
    assert code == 1 and f"payment {pending.payment_id} is not paid (pending)" in err
    code, _, err = await cli(str(canceled.payment_id))
    assert code == 1 and f"payment {canceled.payment_id} is not paid (canceled)" in err
    code, _, err = await cli("not a payment!")
    assert code == 2 and "not a payment number or a YooKassa payment id" in err
    code, _, err = await cli(str(pending.payment_id), "-5")
    assert code == 2

    assert await refund_calls(quiet) == []
    assert await requests_of(quiet) == []
    assert await quiet.balance(user_id) == 0
    assert await quiet.ledger_count(LedgerKind.PAYMENT_REFUND) == 0


async def test_a_payment_refunded_in_yookassa_already_is_refused_by_yookassa(
    quiet: Stack, cli: Cli
) -> None:
    """Refunded from YooKassa's dashboard and its notification lost: our row does not know,
    YooKassa does — it refuses, and nothing is debited twice."""
    user_id, _, started = await credited_payment(quiet, 9708, 10_000)
    await refund(quiet, started.yookassa_payment_id, 10_000)

    code, _, err = await cli(str(started.payment_id))
    assert code == 1 and "YooKassa refused to refund payment" in err, err
    assert "exceeds the amount left to refund" in err
    [request] = await requests_of(quiet)
    assert request.status == "rejected" and "exceeds" in (request.error or "")
    assert len(await made(quiet, started)) == 1
    assert await quiet.balance(user_id) == 10_000
    assert await quiet.ledger_count(LedgerKind.PAYMENT_REFUND) == 0
    # Once YooKassa's notification of its own refund comes, the balance follows.
    assert (await quiet.yk.notify(started.yookassa_payment_id, event="refund.succeeded"))[
        "status"
    ] == 200
    assert await quiet.balance(user_id) == 0


async def test_a_paid_payment_whose_notification_never_came_is_credited_then_refunded(
    quiet: Stack,
) -> None:
    user_id, _ = await quiet.new_user(9709)
    started = await quiet.topup(user_id, amount=10_000)
    await quiet.yk.mark_succeeded(started.yookassa_payment_id)  # nobody told

    done = await refunds.refund_payment(
        quiet.sessionmaker, quiet.gateway, payment=started.payment_id, requested_by="t"
    )
    assert done.outcome is refunds.RefundDone.REFUNDED
    assert done.notice_keys == (
        f"credited:{started.payment_id}",
        f"refunded:{done.yookassa_refund_id}",
    )
    assert await quiet.balance(user_id) == 0
    assert await quiet.ledger_count(LedgerKind.TOPUP) == 1
    assert await quiet.ledger_count(LedgerKind.PAYMENT_REFUND) == 1
    # The late notification changes nothing.
    assert (await quiet.yk.notify(started.yookassa_payment_id))["status"] == 200
    again = await reconcile_payment(
        quiet.sessionmaker, quiet.gateway, payment_id=started.payment_id
    )
    assert again.outcome.value == "already_credited"
    assert await quiet.balance(user_id) == 0


async def test_a_refund_yookassa_has_not_finished_is_debited_when_it_goes_through(
    quiet: Stack, cli: Cli
) -> None:
    user_id, _, started = await credited_payment(quiet, 9710, 20_000)
    await quiet.yk.configure(refund_status="pending")

    code, out, _ = await cli(str(started.payment_id), "80")
    assert code == 0 and "has not finished it (pending)" in out, out
    [request] = await requests_of(quiet)
    [pending] = await made(quiet, started)
    assert (request.status, request.yookassa_refund_id) == ("pending", pending["id"])
    assert await quiet.balance(user_id) == 20_000  # nothing returned yet, nothing debited
    # Run again meanwhile: the same refund is looked up, no new one is made.
    code, out, _ = await cli(str(started.payment_id), "80")
    assert code == 0 and "has not finished it" in out
    assert len(await refund_calls(quiet)) == 1
    # Another amount while this one is unfinished: refused.
    code, _, err = await cli(str(started.payment_id), "10")
    assert code == 1 and "a refund of 80 ₽ of payment" in err and "unfinished" in err

    # YooKassa finishes it and tells the web server: debited once, the request is done.
    note = await quiet.yk.finish_refund(pending["id"], notify=True)
    assert note["notification"]["status"] == 200
    assert await quiet.balance(user_id) == 12_000
    [request] = await requests_of(quiet)
    assert request.status == "succeeded"
    code, out, _ = await cli(str(started.payment_id), "80")
    assert code == 0 and out.startswith("already refunded: 80 ₽")
    assert await quiet.ledger_count(LedgerKind.PAYMENT_REFUND) == 1


async def test_a_pending_refund_whose_notification_is_lost_is_finished_by_the_command(
    quiet: Stack, cli: Cli
) -> None:
    user_id, _, started = await credited_payment(quiet, 9711, 20_000)
    await quiet.yk.configure(refund_status="pending")
    code, _, _ = await cli(str(started.payment_id))
    assert code == 0
    [pending] = await made(quiet, started)
    await quiet.yk.finish_refund(pending["id"])  # and nobody is told
    code, out, _ = await cli(str(started.payment_id))
    assert code == 0 and out.startswith("refunded 200 ₽"), out
    assert await quiet.balance(user_id) == 0
    assert len(await refund_calls(quiet)) == 1


async def test_a_refund_yookassa_cancels_returns_nothing_and_may_be_asked_again(
    quiet: Stack, cli: Cli
) -> None:
    user_id, _, started = await credited_payment(quiet, 9712, 20_000)
    await quiet.yk.configure(refund_status="canceled")
    code, out, _ = await cli(str(started.payment_id))
    assert code == 1 and "YooKassa canceled the refund of 200 ₽" in out, out
    assert "rejected_by_payee" in out
    [request] = await requests_of(quiet)
    assert (request.status, request.error) == ("canceled", "rejected_by_payee")
    assert await quiet.balance(user_id) == 20_000

    await quiet.yk.configure(refund_status="succeeded")
    code, out, _ = await cli(str(started.payment_id))
    assert code == 0 and out.startswith("refunded 200 ₽"), out
    first, second = await requests_of(quiet)
    assert first.idempotence_key != second.idempotence_key  # a new request, a new key
    assert await quiet.balance(user_id) == 0
    assert await quiet.ledger_count(LedgerKind.PAYMENT_REFUND) == 1


async def test_a_payment_credited_not_through_yookassa_is_refused(quiet: Stack, cli: Cli) -> None:
    user_id, _ = await quiet.new_user(9713)
    async with quiet.sessionmaker() as session:  # paid some other way: no YooKassa id
        row = await payments.create_payment(session, user_id=user_id, amount=5_000, currency="RUB")
        await payments.credit_payment(session, payment_id=row.id, amount=5_000, currency="RUB")
        await session.commit()
    code, _, err = await cli(str(row.id))
    assert code == 1 and f"payment {row.id} was not paid through YooKassa" in err, err
    assert await refund_calls(quiet) == [] and await requests_of(quiet) == []
    assert await quiet.balance(user_id) == 5_000
