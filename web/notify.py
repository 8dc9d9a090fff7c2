"""Telling users about their money from the web server: credited, canceled, refunded.

The message is sent after the database commit, in the background, so a slow or failing
Telegram never delays the answer to YooKassa (a late answer would make it deliver the
notification again, and the money is already in). Each kind of message is sent only by the
request that made the change (the once-only credit / cancel / refund), so 20 concurrent
deliveries of one notification produce one message.

Each message is also on record as a ``payment_notices`` row, written in the transaction of the
change (:mod:`billing.notices`). When Telegram took the message (or the user blocked the bot)
the notifier marks that row done; a message this process never got out — it crashed or
restarted after the commit, or Telegram stayed down through its retries — is sent by a
worker's maintenance pass (:mod:`workers.notices`) after PAYMENT_NOTICE_GRACE_SECONDS. The
notifier gives up at half of that period, so the pass never sends what it may still send.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import notices
from billing.models import NoticeOutcome
from billing.payments import ReconcileResult
from texts import money_texts, plan_texts
from tg.errors import Kind, classify
from tg.retry import RetryPolicy, retry_call

log = logging.getLogger(__name__)

# A payment message: retried in place within the notifier's deadline; a longer flood wait,
# or one that would end past the deadline, is left to the maintenance pass.
POLICY = RetryPolicy(
    attempts=4,
    backoff=(0.5, 1.0, 2.0),
    max_retry_after=30.0,
    flood_budget=30.0,
    flood_jitter=0.5,
    retry_network=True,
)


def warm_up_telegram_models() -> None:
    """Build the pydantic schemas a sendMessage round trip needs, at startup, and keep them.

    aiogram builds some of them lazily (the ``Response[Message]`` generic is parametrized on
    the first call), which would block the event loop for the first paying user instead.
    pydantic caches a parametrized generic only in a ``WeakValueDictionary``: with nothing
    else holding it, the garbage collector frees the class and the next ``check_response``
    builds its schema again (~1-2 ms of CPU on the event loop, every few hundred messages).
    ``tg.response_models`` keeps it for the life of the process.
    """
    from aiogram.methods import SendMessage

    from tg.response_models import pin

    SendMessage(chat_id=1, text="-").model_dump()
    # What check_response parametrizes, kept (tg/response_models.py).
    pin(SendMessage).model_validate(
        {"ok": True, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}}
    )


class UserNotifier:
    """Sends messages in background tasks; ``drain`` waits for them at shutdown.

    With a ``sessionmaker``, a message sent with a ``notice`` key marks that recorded notice
    done once Telegram took it (or refused it for good). ``deadline`` bounds the whole
    attempt, retries included: past it the message is left to the maintenance pass.
    """

    def __init__(
        self,
        bot: Bot,
        *,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.bot = bot
        self.sessionmaker = sessionmaker
        self.deadline = deadline
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(
        self, chat_id: int, text: str, *, what: str, notice: str | None = None
    ) -> asyncio.Task[bool]:
        task = asyncio.create_task(self._send_and_mark(chat_id, text, what=what, notice=notice))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send_and_mark(
        self, chat_id: int, text: str, *, what: str, notice: str | None
    ) -> bool:
        until = None
        if self.deadline is not None:
            until = asyncio.get_running_loop().time() + self.deadline
        try:
            async with asyncio.timeout(self.deadline):
                outcome = await self._send(chat_id, text, what=what, until=until)
        except TimeoutError:
            log.warning(
                "%s message to chat %s: gave up after %.0f s, left to the maintenance pass",
                what,
                chat_id,
                self.deadline or 0,
            )
            return False
        if outcome is not None and notice is not None and self.sessionmaker is not None:
            await notices.mark_done_safely(self.sessionmaker, notice, outcome)
        return outcome is NoticeOutcome.SENT

    async def _send(
        self, chat_id: int, text: str, *, what: str, until: float | None
    ) -> NoticeOutcome | None:
        """SENT, BLOCKED or REFUSED (final), or None: not delivered, worth another try."""
        label = f"{what} message to chat {chat_id}"
        try:
            await retry_call(
                lambda: self.bot.send_message(chat_id=chat_id, text=text),
                POLICY,
                what=label,
                logger=log,
                until=until,
            )
            return NoticeOutcome.SENT
        except Exception as exc:
            kind = classify(exc)
            if kind is None:
                raise
            if kind is Kind.BLOCKED:
                log.info("%s not delivered: the chat blocked the bot", label)
                return NoticeOutcome.BLOCKED
            if kind.transient:
                log.error("%s not delivered: %s, left to the maintenance pass", label, exc)
                return None
            log.error("%s refused: %s", label, exc)
            # A wrong token, a conflict: ours to fix, so the maintenance pass retries it.
            return None if kind is Kind.UNEXPECTED else NoticeOutcome.REFUSED

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Let messages in flight finish (at shutdown); cancel what is still stuck."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, stuck = await asyncio.wait(tasks, timeout=timeout)
        for task in stuck:
            task.cancel()
        if stuck:
            log.warning("%d user messages not sent before shutdown", len(stuck))


def tell_credited(notifier: UserNotifier, result: ReconcileResult) -> None:
    """The "credited" message of a credit the caller has just made, whichever path made it (a
    YooKassa notification, the Mini App's payment card): its notice is on record, and the
    maintenance pass would send it only a grace period later. A plan's payment says what
    became of the plan."""
    assert result.telegram_id is not None and result.payment_id is not None
    if result.plan is not None:
        text = plan_texts.plan_payment_text(
            result.plan, amount=result.amount, language=result.language
        )
    else:
        text = money_texts.credited_text(
            amount=result.amount, balance=result.balance_after or 0, language=result.language
        )
    notifier.send(
        result.telegram_id, text, what="top-up", notice=notices.credited_key(result.payment_id)
    )


def tell_canceled(notifier: UserNotifier, result: ReconcileResult) -> None:
    """The "canceled" message of a payment the caller has just marked canceled (a YooKassa
    notification, the Mini App's payment card): its notice is on record, as for a credit."""
    assert result.telegram_id is not None and result.payment_id is not None
    text = money_texts.canceled_text(
        amount=result.amount, reason=result.cancellation_reason, language=result.language
    )
    notifier.send(
        result.telegram_id, text, what="cancel", notice=notices.canceled_key(result.payment_id)
    )
