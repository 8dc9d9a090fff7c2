"""Admin commands (/user, /grant, /debit, /audit) over the Telegram emulator with the real
dispatcher and PostgreSQL: only ADMIN_IDS see them, a grant/debit is one ledger entry with
its reason and is applied once per Telegram update, bad input changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from billing import accounts, operations
from billing.models import LedgerEntry, LedgerKind, User
from bot.routers.admin import AdminInputError, parse_adjust, parse_kopecks
from tests.bot.conftest import RunningBot, StartBot, wait_until
from texts.i18n import keys

ADMIN = 5001
TARGET = 5002
EN_TARGET = 5003
STRANGER = 5004


async def _adjustments(app: RunningBot) -> list[LedgerEntry]:
    async with app.sessionmaker() as session:
        rows = await session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.kind == LedgerKind.ADJUSTMENT.value)
            .order_by(LedgerEntry.id)
        )
        return list(rows.all())


async def _balance(app: RunningBot, telegram_id: int) -> int:
    account = await app.user(telegram_id)
    assert account is not None
    return account.balance


async def _started(tg, telegram_id: int, language: str = "ru"):  # type: ignore[no-untyped-def]
    user = tg.user(telegram_id, language=language)
    await user.send_text("/start")
    await user.wait_for_text("Привет" if language == "ru" else "Hi")
    return user


async def test_admin_grant_changes_the_balance_books_the_reason_and_tells_the_user(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    target = await _started(tg, TARGET)
    admin = tg.user(ADMIN)

    sent = await admin.send_text(f"/grant {TARGET} 50 компенсация за сбой <b>&</b>")
    done = await admin.wait_for_text("Начислено 50 ₽")
    assert "Новый баланс: 50 ₽" in done.text
    assert "компенсация за сбой <b>&</b>" in done.text  # escaped, shown as typed

    notice = await target.wait_for_text("Администратор начислил 50 ₽")
    assert notice.text == "Администратор начислил 50 ₽: компенсация за сбой <b>&</b>"
    assert await _balance(app, TARGET) == 5000
    [entry] = await _adjustments(app)
    assert entry.amount == 5000 and entry.free_delta == 0
    assert entry.balance_after == 5000
    assert entry.reason == f"admin {ADMIN}: компенсация за сбой <b>&</b>"
    assert entry.idempotency_key == f"admin-adjust:{admin.chat_id}:{sent.message_id}"


async def test_admin_debit_takes_money_and_an_english_user_reads_english(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    target = await _started(tg, EN_TARGET, language="en")
    admin = tg.user(ADMIN)
    await admin.send_text(f"/grant {EN_TARGET} 100 welcome bonus")
    await admin.wait_for_text("Новый баланс: 100 ₽")
    await admin.send_text(f"/debit {EN_TARGET} 30,50 refund by card")
    done = await admin.wait_for_text("Списано 30,50 ₽")
    assert "Новый баланс: 69,50 ₽" in done.text

    await target.wait_for_text("An administrator took 30,50 ₽: refund by card")
    texts = [m.text for m in await target.bot_messages()]
    assert "An administrator added 100 ₽: welcome bonus" in texts
    assert await _balance(app, EN_TARGET) == 6950
    assert [(e.amount, e.balance_after) for e in await _adjustments(app)] == [
        (10000, 10000),
        (-3050, 6950),
    ]


async def test_redelivered_grant_update_applies_once(start_bot: StartBot, tg) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    target = await _started(tg, TARGET)
    admin = tg.user(ADMIN)
    sent = await admin.send_text(f"/grant {TARGET} 75 тикет 42")
    await admin.wait_for_text("Начислено 75 ₽")
    await target.wait_for_text("Администратор начислил 75 ₽")

    for _ in range(2):  # Telegram re-delivers an update whose answer was late
        await admin.redeliver(sent)

    async def both_answered() -> bool:
        texts = [m.text for m in await admin.bot_messages()]
        return sum("уже выполнена" in text for text in texts) == 2

    await wait_until(both_answered)
    assert await _balance(app, TARGET) == 7500
    assert len(await _adjustments(app)) == 1
    notices = [m for m in await target.bot_messages() if "Администратор" in m.text]
    assert len(notices) == 1
    confirmations = [m for m in await admin.bot_messages() if "Начислено" in m.text]
    assert len(confirmations) == 1


async def test_a_non_admin_gets_the_ordinary_answer_and_nothing_is_written(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    target = await _started(tg, TARGET)
    stranger = await _started(tg, STRANGER)
    ledger_before = await app.ledger_count()

    for command in (
        f"/grant {TARGET} 50 дай денег",
        f"/grant {STRANGER} 50 себе",
        f"/debit {TARGET} 1 штраф",
        f"/user {TARGET}",
        "/audit",
        "/grant",
    ):
        await stranger.send_text(command)
        await stranger.wait_for_text("сначала выберите режим")

    assert await app.ledger_count() == ledger_before
    assert await _adjustments(app) == []
    assert await _balance(app, TARGET) == 0 and await _balance(app, STRANGER) == 0
    admin_words = ("Начислено", "Списано", "Формат", "Аудит", "Баланс: ", "Администратор")
    for user in (stranger, target):
        for message in await user.bot_messages():
            assert not any(word in message.text for word in admin_words), message.text


BAD_INPUTS = [
    ("/grant", "Формат: /grant TELEGRAM_ID РУБЛИ ПРИЧИНА"),
    (f"/grant {TARGET}", "Формат: /grant"),
    (f"/grant {TARGET} 50", "Формат: /grant"),
    (f"/grant {TARGET} 50    ", "Формат: /grant"),
    ("/grant abc 50 причина", "«abc» — не Telegram id"),
    ("/grant -5002 50 причина", "не Telegram id"),
    (f"/grant {TARGET} abc причина", "«abc» — не сумма"),
    (f"/grant {TARGET} 1e3 причина", "«1e3» — не сумма"),
    (f"/grant {TARGET} NaN причина", "не сумма"),
    (f"/grant {TARGET} ５０ причина", "не сумма"),
    (f"/grant {TARGET} -5 причина", "Сумма должна быть положительной: «-5»"),
    (f"/debit {TARGET} -5 причина", "Сумма должна быть положительной"),
    (f"/grant {TARGET} 0 причина", "больше нуля"),
    (f"/grant {TARGET} 0.00 причина", "больше нуля"),
    (f"/grant {TARGET} 1.005 причина", "больше двух знаков"),
    (f"/grant {TARGET} 10,999 причина", "больше двух знаков"),
    (f"/grant {TARGET} 2000000 причина", "Слишком большая сумма"),
    (f"/grant {TARGET} 50 {'x' * 501}", "Причина слишком длинная"),
    ("/grant 999999 50 причина", "Пользователя с Telegram id 999999 нет"),
    ("/debit 999999 5 причина", "Пользователя с Telegram id 999999 нет"),
    (f"/debit {TARGET} 10.01 причина", "Нельзя списать 10,01 ₽: на балансе только 10 ₽"),
    ("/user", "Формат: /user TELEGRAM_ID"),
    ("/user abc", "Формат: /user"),
    ("/user 999999", "Пользователя с Telegram id 999999 нет"),
]


async def test_every_bad_admin_input_gets_a_clear_answer_and_writes_nothing(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    target = await _started(tg, TARGET)
    admin = tg.user(ADMIN)
    await admin.send_text(f"/grant {TARGET} 10 стартовый")
    await admin.wait_for_text("Новый баланс: 10 ₽")
    ledger_before = await app.ledger_count()

    for text, expected in BAD_INPUTS:
        await admin.send_text(text)
        reply = await admin.wait_for_text(expected)
        assert "Начислено" not in reply.text and "Списано" not in reply.text, text

    assert await app.ledger_count() == ledger_before
    assert await _balance(app, TARGET) == 1000
    assert await app.user(999999) is None
    notices = [m for m in await target.bot_messages() if "Администратор" in m.text]
    assert len(notices) == 1  # only the first, good grant

    # The whole balance can go; one kopeck more could not (above).
    await admin.send_text(f"/debit {TARGET} 10 обнуление")
    await admin.wait_for_text("Новый баланс: 0 ₽")
    assert await _balance(app, TARGET) == 0


async def test_user_shows_balance_free_operations_and_the_last_ten_operations(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    await _started(tg, TARGET)
    admin = tg.user(ADMIN, language="en")
    await admin.send_text(f"/user {TARGET}")
    empty = await admin.wait_for_text("Free operations: 4 of 4")
    assert "Balance: 0 ₽" in empty.text and "— none —" in empty.text

    account = await app.user(TARGET)
    assert account is not None
    async with app.sessionmaker() as session:
        await accounts.adjust(session, user_id=account.id, amount=20000, reason="test money")
        charged = []
        for i in range(12):
            result = await operations.charge(
                session,
                app.settings,
                user_id=account.id,
                op_type="retouch",
                request_key=f"{TARGET}:{1000 + i}",
                chat_id=TARGET,
            )
            await operations.complete_operation(session, operation_id=result.operation_id)
            charged.append(result.operation_id)
        await session.commit()

    await admin.send_text(f"/user {TARGET}")
    reply = await admin.wait_for_text("Free operations: 0 of 4")
    assert "Balance: 120 ₽" in reply.text  # 200 − 8 paid × 10
    lines = [line for line in reply.text.splitlines() if line.startswith("#")]
    assert len(lines) == 10
    assert lines[0].startswith(f"#{charged[-1]} retouch · succeeded · balance · 10 ₽ · ")
    assert lines[-1].startswith(f"#{charged[2]} retouch")
    assert f"#{charged[1]} " not in reply.text
    assert lines[-1].split(" · ")[2] == "free"  # the first four were free
    free_line = next(line for line in lines if line.startswith(f"#{charged[3]} "))
    assert " · free · 0 ₽ · " in free_line and free_line.endswith(" UTC")


async def test_audit_answers_clean_then_the_first_twenty_problems(start_bot: StartBot, tg) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    await _started(tg, TARGET)
    admin = tg.user(ADMIN)
    await admin.send_text("/audit")
    await admin.wait_for_text("Аудит: всё чисто")

    async def shift_balances(delta: int) -> None:  # behind the ledger's back
        async with app.sessionmaker() as session:
            await session.execute(update(User).values(balance=User.balance + delta))
            await session.commit()

    async with app.sessionmaker() as session:
        for telegram_id in range(6000, 6010):
            await accounts.get_or_create_user(session, telegram_id=telegram_id, free_operations=4)
        await session.commit()
    await shift_balances(1)  # 11 users, two problems each
    try:
        await admin.send_text("/audit")
        reply = await admin.wait_for_text("Аудит: проблем — 22. Первые 20:")
        bullets = [line for line in reply.text.splitlines() if line.startswith("• ")]
        assert len(bullets) == 20
        assert any("balance 1 != ledger sum 0" in line for line in bullets)
    finally:
        await shift_balances(-1)
    await admin.send_text("/audit")
    await admin.wait_for_text("Аудит: всё чисто")


def test_admin_texts_have_the_same_keys_in_russian_and_english() -> None:
    ru = {k for k in keys("ru") if k.startswith("admin-")}
    en = {k for k in keys("en") if k.startswith("admin-")}
    assert ru == en and "admin-grant-notice" in ru


LIMIT = 100_000_000  # 1 000 000 ₽


@pytest.mark.parametrize(
    ("value", "kopecks"),
    [("50", 5000), ("9.90", 990), ("9,9", 990), ("0.01", 1), ("1.500", 150), ("1000000", LIMIT)],
)
def test_amounts_in_rubles_become_kopecks(value: str, kopecks: int) -> None:
    assert parse_kopecks(value, limit=LIMIT) == kopecks


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ("1 50", "admin-adjust-usage"),
        ("1 +50 x", "admin-amount-not-number"),
        ("1 50. x", "admin-amount-not-number"),
        ("1 .5 x", "admin-amount-not-number"),
        ("1 −5 x", "admin-amount-negative"),
        ("1 1000000.01 x", "admin-amount-too-big"),
        ("0 5 x", "admin-bad-telegram-id"),
        ("99999999999999999999 5 x", "admin-bad-telegram-id"),
    ],
)
def test_bad_adjust_arguments_are_named(args: str, key: str) -> None:
    with pytest.raises(AdminInputError) as caught:
        parse_adjust("grant", args, limit=LIMIT)
    assert caught.value.key == key
