"""billed(...): a re-delivered update charges once, Redis down at enqueue refunds at once,
a handler failing before the job is queued refunds in the same request, and concurrent
requests with money for one charge once."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis import Redis as SyncRedis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select

from billing import accounts
from billing.models import Funding, LedgerEntry, Operation, OperationStatus
from bot import billed
from bot.app import make_queue
from jobqueue.queue import media_queue
from sandbox._common import free_port
from tests.bot.conftest import StartBot, wait_until
from tests.conftest import close_bot, make_settings


async def _retouch_mode(user):  # type: ignore[no-untyped-def]
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✨ Ретушь")
    await user.wait_for_text("портрет")


async def test_the_same_update_delivered_again_charges_once_and_queues_one_job(
    start_bot: StartBot, tg, photo: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    app = await start_bot()
    user = tg.user(9001)
    await _retouch_mode(user)
    sent = await user.send_photo(photo)
    await user.wait_for_text("В очереди")
    caplog.set_level(logging.INFO, logger="bot.billed")

    for _ in range(2):  # Telegram re-delivers when a webhook answer is late
        await user.redeliver(sent)
    key = f"{user.chat_id}:{sent.message_id}"

    async def both_ignored() -> bool:
        return sum(f"duplicate update {key}" in r.getMessage() for r in caplog.records) == 2

    await wait_until(both_ignored)
    [operation] = await app.operations()
    assert operation.request_key == key
    assert app.job_ids() == [f"op-{operation.id}-{operation.key_token}"]
    account = await app.user(9001)
    assert account is not None and account.free_operations_left == 3
    queued = [m for m in await user.bot_messages() if "В очереди" in m.text]
    assert len(queued) == 1


async def test_redis_down_at_enqueue_refunds_at_once_and_says_try_later(
    start_bot: StartBot, tg, photo: bytes, db_url: str
) -> None:
    # A queue on a port nobody listens on: the RQ enqueue fails to connect. No retries:
    # redis-py's default policy (10, backing off to a second) made the refusal take ~4 s.
    dead = SyncRedis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    app = await start_bot(queue=media_queue(dead, make_settings(db_url)))
    user = tg.user(9002)
    await _retouch_mode(user)
    await user.send_photo(photo)
    status = await user.wait_for_text("Очередь сейчас недоступна")
    assert "не списаны" in status.text

    [operation] = await app.operations()
    assert operation.status == OperationStatus.REFUNDED
    assert operation.status_message_id == status.message_id
    account = await app.user(9002)
    assert account is not None and account.free_operations_left == 4
    async with app.sessionmaker() as session:
        kinds = (await session.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.id))).all()
    assert kinds == ["signup", "charge", "refund"]

    # The mode is still open and the next try, with the queue back, goes through.
    app.queue.connection = SyncRedis.from_url(app.settings.REDIS_URL)
    await user.send_photo(photo)
    await user.wait_for_text("В очереди")

    async def queued() -> bool:  # "В очереди" is sent just before the enqueue
        return len(app.job_ids()) == 1

    await wait_until(queued)


async def test_a_handler_failing_before_its_job_is_queued_is_refunded_in_the_same_request(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    await _fail_before_queueing(app, tg, 9003, photo)
    [operation] = await app.operations()
    assert "handler failed" in (operation.error or "")
    assert app.job_ids() == []


async def _fail_before_queueing(app, tg, user_id: int, photo: bytes) -> None:  # type: ignore[no-untyped-def]
    """A retouch whose handler raises before it enqueues (Telegram fails the "queued"
    message); the user is told the charge was cancelled, refunded, free operations back."""
    user = tg.user(user_id)
    await _retouch_mode(user)
    await tg.fail_next(1, kind="500", methods=["sendMessage"])
    await user.send_photo(photo)
    await user.wait_for_text("Списание отменено")
    [operation] = await app.operations()
    assert operation.status == OperationStatus.REFUNDED
    account = await app.user(user_id)
    assert account is not None and account.free_operations_left == 4


async def test_a_reversal_that_meets_a_database_restart_is_tried_again(
    start_bot: StartBot, tg, photo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler fails before queueing, and the database is restarting: the reversal is
    tried again after short pauses and the user is refunded in the same request (not at the
    operation's deadline by the sweeper)."""
    app = await start_bot()
    tries: list[int] = []
    pauses: list[float] = []
    real = billed.operations.refund_operation

    async def restarting(session, *, operation_id, **kwargs):  # type: ignore[no-untyped-def]
        tries.append(operation_id)
        if len(tries) <= 2:
            raise OSError("the database system is starting up")
        return await real(session, operation_id=operation_id, **kwargs)

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(billed.operations, "refund_operation", restarting)
    monkeypatch.setattr(billed, "_sleep", pause)
    await _fail_before_queueing(app, tg, 9013, photo)
    assert len(tries) == 3 and len(set(tries)) == 1
    assert pauses == list(billed.REVERSAL_RETRY_PAUSES[:2])


async def test_concurrent_requests_with_money_for_one_charge_once(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(FREE_OPERATIONS_COUNT=0)
    user = tg.user(9004)
    await _retouch_mode(user)
    account = await app.user(9004)
    assert account is not None
    async with app.sessionmaker() as session:
        await accounts.adjust(session, user_id=account.id, amount=1000, reason="test: one op")
        await session.commit()

    await asyncio.gather(*(user.send_photo(photo) for _ in range(4)))

    async def all_answered() -> bool:
        texts = [m.text for m in await user.bot_messages()]
        return (
            sum("В очереди" in t for t in texts)
            + sum("Бесплатные операции закончились" in t for t in texts)
        ) == 4

    await wait_until(all_answered)
    texts = [m.text for m in await user.bot_messages()]
    assert sum("В очереди" in t for t in texts) == 1
    assert sum("Бесплатные операции закончились" in t for t in texts) == 3
    [operation] = await app.operations()
    assert operation.funding == Funding.BALANCE and operation.price == 1000
    account = await app.user(9004)
    assert account is not None and account.balance == 0

    async def one_job() -> bool:
        return app.job_ids() == [f"op-{operation.id}-{operation.key_token}"]

    await wait_until(one_job)


async def test_a_paid_operation_takes_the_price_from_the_balance(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(FREE_OPERATIONS_COUNT=0)
    user = tg.user(9005)
    await _retouch_mode(user)
    account = await app.user(9005)
    assert account is not None
    async with app.sessionmaker() as session:
        await accounts.adjust(session, user_id=account.id, amount=2500, reason="test")
        await session.commit()
    await user.send_photo(photo)
    queued = await user.wait_for_text("В очереди")
    assert "Списано 10 ₽" in queued.text and "15 ₽" in queued.text
    assert (await app.user(9005)).balance == 1500  # type: ignore[union-attr]


def test_make_queue_uses_the_configured_queue_and_short_timeouts(db_url: str) -> None:
    settings = make_settings(db_url, RQ_QUEUE="media-test")
    queue = make_queue(settings)
    assert queue.name == "media-test"
    kwargs = queue.connection.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] <= 5 and kwargs["socket_timeout"] <= 5


async def test_an_unexpected_failure_outside_billing_gets_an_apology_not_silence(
    start_bot: StartBot, tg
) -> None:
    await start_bot()
    user = tg.user(9006)
    await tg.fail_next(1, kind="500", methods=["sendMessage"])
    request = await user.send_text("/balance")
    apology = await user.wait_for_text("Что-то пошло не так")
    assert apology.raw["reply_to_message"]["message_id"] == request.message_id


async def test_a_failure_after_a_button_was_answered_still_gets_an_apology(
    start_bot: StartBot, tg
) -> None:
    """💰 answers the button (the spinner stops) before it writes: an error after that
    cannot be an alert any more, so the apology comes as a message, not silence."""
    await start_bot()
    user = tg.user(9007)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await tg.fail_next(1, kind="500", methods=["sendMessage"])
    await user.press(menu, text="💰 Оплатить / Баланс")
    apology = await user.wait_for_text("Что-то пошло не так")
    assert apology.from_bot


async def test_handling_cut_short_before_queueing_reverses_the_charge(
    db_url: str, tg, tg_server
) -> None:
    """A restart cancels the update's handling after the charge, before the enqueue (webhook
    mode: Telegram delivers it again, and the re-delivery charges and queues nothing): the
    charge is reversed on the way out, not left to the sweeper."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from aiogram.types import Chat, Message, User

    from billing.db import make_engine, make_sessionmaker
    from bot.billed import FLAG, BilledMiddleware
    from bot.inputs import MediaInput
    from tests.bot.conftest import BOT_TOKEN
    from tg.factory import make_bot

    settings = make_settings(
        db_url, FREE_OPERATIONS_COUNT=0, TELEGRAM_API_URL=tg_server.url, BOT_TOKEN=BOT_TOKEN
    )
    bot = make_bot(settings)
    await tg.user(9010).send_text("/start")  # the chat exists at the emulator
    engine = make_engine(db_url)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            account, _ = await accounts.get_or_create_user(
                session, telegram_id=9010, free_operations=0
            )
            await accounts.adjust(session, user_id=account.id, amount=5000, reason="test")
            await session.commit()
        user = User(id=9010, is_bot=False, first_name="Тест")
        message = Message(
            message_id=77,
            date=datetime.now(UTC),
            chat=Chat(id=9010, type="private"),
            from_user=user,
            text="x",
        ).as_(bot)

        async def cut_short(event, data):  # type: ignore[no-untyped-def]
            raise asyncio.CancelledError

        async with sessionmaker() as session:
            data = {
                "handler": SimpleNamespace(flags={FLAG: "retouch"}),
                "settings": settings,
                "session": session,
                "lang": "ru",
                "media_input": MediaInput(file_ids=("f1",)),
                "event_from_user": user,
                "queue": None,
            }
            with pytest.raises(asyncio.CancelledError):
                await BilledMiddleware()(cut_short, message, data)
        async with sessionmaker() as session:
            state = await accounts.get_user(session, user_id=account.id)
            [operation] = await session.scalars(select(Operation))
        assert operation.status == OperationStatus.REFUNDED
        assert operation.error == "handling cut short"
        assert state.balance == 5000
        # The re-delivered update will say nothing: the user is told now.
        texts = [m.text for m in await tg.user(9010).bot_messages()]
        assert any("Списание отменено" in text for text in texts), texts
    finally:
        await close_bot(bot)
        await engine.dispose()


async def test_a_reversal_that_keeps_failing_is_left_to_the_sweeper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tries: list[int] = []
    pauses: list[float] = []

    async def down(session, operation_id, reason):  # type: ignore[no-untyped-def]
        tries.append(operation_id)
        raise OSError("connection refused")

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(billed, "refund", down)
    monkeypatch.setattr(billed, "_sleep", pause)
    with pytest.raises(OSError):
        await billed.reverse(None, 7, "handler failed")  # type: ignore[arg-type]
    assert tries == [7] * (len(billed.REVERSAL_RETRY_PAUSES) + 1)
    assert pauses == list(billed.REVERSAL_RETRY_PAUSES)
