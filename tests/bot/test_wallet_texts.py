"""The wallet in words (texts/wallet_texts.py): every kind of ledger entry reads plainly in
both languages, quotes and dates."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from billing.models import Funding
from billing.wallet import HistoryItem, Holding, PlanInfo, Quote, Wallet
from tests.conftest import make_settings
from texts import wallet_texts

WHEN = datetime(2026, 12, 7, 21, 30, tzinfo=UTC)  # 8 Dec 00:30 in Moscow


def _plan(**fields: object) -> PlanInfo:
    values: dict[str, object] = {
        "id": 2,
        "code": "pro",
        "kind": "subscription",
        "name_ru": "Про",
        "name_en": "Pro",
        "price": 19900,
        "period": "month",
        "units": 30,
        "expires_days": None,
        "discount_percent": 10,
        "unlocks": None,
        "free_operations": 0,
        "trial_days": 0,
        "is_default": False,
        "sort_order": 10,
        "archived": False,
    }
    values.update(fields)
    return PlanInfo(**values)  # type: ignore[arg-type]


def _item(kind: str, **fields: object) -> HistoryItem:
    values: dict[str, object] = {
        "id": 1,
        "created_at": WHEN,
        "kind": kind,
        "amount": 0,
        "free_delta": 0,
        "units_delta": 0,
        "balance_after": 0,
        "free_after": 0,
        "units_after": None,
        "reason": None,
        "op_type": None,
        "funding": None,
        "plan": None,
        "end_reason": None,
    }
    values.update(fields)
    return HistoryItem(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("item", "ru", "en"),
    [
        (
            _item("plan_purchase", plan=_plan(trial_days=7), units_delta=30),
            "📋 «Про»: пробный период: +30 операций",
            "📋 Pro: free trial: +30 operations",
        ),
        (
            _item("plan_purchase", plan=_plan(), amount=-19900, units_delta=30),
            "📋 Покупка «Про»: −199 ₽, +30 операций",
            "📋 Bought Pro: −199 ₽, +30 operations",
        ),
        (
            _item("renewal", plan=_plan(), amount=-19900, units_delta=22),
            "🔁 Продление «Про»: −199 ₽, +22 операции",
            "🔁 Pro renewed: −199 ₽, +22 operations",
        ),
        (
            _item("plan_end", plan=_plan(), units_delta=-5, end_reason="no_money"),
            "⏹ «Про» закончился: на балансе не хватило денег на продление, сгорело 5 операций",
            "⏹ Pro ended: the balance did not cover the renewal, 5 operations lapsed",
        ),
        (
            _item("free_renewal", free_delta=3),
            "🎁 Бесплатные операции обновлены: +3 бесплатные операции",
            "🎁 Free operations renewed: +3 free operations",
        ),
        (
            _item("payment_refund", amount=-5000),
            "↩️ Возврат на карту: −50 ₽",
            "↩️ Refund to the card: −50 ₽",
        ),
        (
            _item("adjustment", amount=-1050, free_delta=2),
            "🛠 Корректировка: −10,50 ₽, +2 бесплатные операции",
            "🛠 Adjustment: −10,50 ₽, +2 free operations",
        ),
        (
            _item("refund", op_type="retouch", funding="subscription", plan=_plan()),
            "↩️ ✨ Ретушь: операция не удалась, но период подписки уже закончился — операции не "
            "переносятся",
            "↩️ ✨ Retouch: the operation failed, but the subscription period had already ended "
            "— operations are not carried over",
        ),
        (
            _item(
                "refund",
                op_type="upscale",
                funding="package",
                plan=_plan(name_ru="Пакет", name_en="Pack", kind="package"),
            ),
            "↩️ ⬆️ Улучшить: операция не удалась, но пакет «Пакет» уже закончился — вернуть некуда",
            "↩️ ⬆️ Upscale: the operation failed, but the package Pack had already ended — nothing "
            "to return to",
        ),
        (
            _item("refund", op_type="edit", funding="subscription", plan=_plan(), units_delta=2),
            "↩️ Возврат за ✏️ Редактировать: +2 операции в «Про» — операция не удалась",
            "↩️ Refund for ✏️ Edit: +2 operations to Pro — the operation failed",
        ),
    ],
)
def test_each_kind_of_entry_reads_plainly(item: HistoryItem, ru: str, en: str) -> None:
    assert wallet_texts.history_what(item, "ru") == ru
    assert wallet_texts.history_what(item, "en") == en


def test_dates_are_moscow_time() -> None:
    line = wallet_texts.history_line(_item("topup", amount=10000), "ru")
    assert line == "08.12.2026 00:30 · 💳 Пополнение: +100 ₽"
    assert wallet_texts.date_text(WHEN, "en") == "8 Dec 2026"


def test_dates_follow_bot_timezone() -> None:
    """A process's root sets BOT_TIMEZONE once (settings.zone); Moscow until it does."""
    zone = make_settings("sqlite://", BOT_TIMEZONE="Asia/Vladivostok").zone
    try:
        wallet_texts.use_timezone(zone)
        line = wallet_texts.history_line(_item("topup", amount=10000), "ru")
        assert line == "08.12.2026 07:30 · 💳 Пополнение: +100 ₽"
    finally:
        wallet_texts.use_timezone(ZoneInfo("Europe/Moscow"))
    assert wallet_texts.datetime_text(WHEN, "ru") == "08.12.2026 00:30"
    assert wallet_texts.datetime_text(WHEN, "ru", ZoneInfo("UTC")) == "07.12.2026 21:30"


@pytest.mark.parametrize("value", ["Moscow", "MSK+3", "", "../etc/passwd"])
def test_bot_timezone_must_be_a_zone(value: str) -> None:
    with pytest.raises(ValidationError, match="BOT_TIMEZONE must be an IANA time zone"):
        make_settings("sqlite://", BOT_TIMEZONE=value)


def test_a_balance_quote_with_a_discount() -> None:
    quote = Quote(
        op_type="retouch",
        units=2,
        price=1800,
        full_price=2000,
        discount_percent=10,
        source=Funding.BALANCE,
        takes=1800,
        left=8200,
        balance=10000,
    )
    assert wallet_texts.quote_text(quote, "ru") == "Спишется 18 ₽ (скидка 10 %), останется 82 ₽"
    assert wallet_texts.confirm_text(quote, "en") == (
        "❓ ✨ Retouch: 18 ₽ will be taken (10 % off), 82 ₽ left. Confirm?"
    )


def _subscription(**fields: object) -> Holding:
    values: dict[str, object] = {
        "id": 7,
        "kind": "subscription",
        "plan": _plan(),
        "units_left": 29,
        "units_per_period": 30,
        "price": 19900,
        "period": "month",
        "period_no": 1,
        "period_start": WHEN,
        "ends_at": WHEN,
        "auto_renew": True,
        "trial": False,
        "next_plan": None,
    }
    values.update(fields)
    return Holding(**values)  # type: ignore[arg-type]


def _quota_lines(sub: Holding, lang: str) -> tuple[str, str]:
    """The quota's line on /plans and on /balance."""
    held = Wallet(
        user_id=1,
        balance=0,
        free_left=0,
        free_granted=0,
        default_plan=None,
        subscription=sub,
        packages=(),
        discount_percent=0,
        allowed=None,
        confirm_charges=False,
    )
    return wallet_texts.subscription_lines(sub, lang)[1], wallet_texts.balance_lines(held, lang)[0]


def test_the_quota_resets_only_when_the_subscription_renews() -> None:
    assert _quota_lines(_subscription(), "ru") == (
        "📊 Осталось 29 из 30 — обновится 08.12.2026",
        "📊 Подписка «Про»: осталось 29 из 30, обновится 08.12.2026",
    )
    # Auto-renewal off, or a plan no longer sold: the quota does not start again, the
    # subscription ends that day (the line under it says so).
    for sub in (_subscription(auto_renew=False), _subscription(plan=_plan(archived=True))):
        assert _quota_lines(sub, "ru") == (
            "📊 Осталось 29 из 30 — до 08.12.2026",
            "📊 Подписка «Про»: осталось 29 из 30, до 08.12.2026",
        )
        assert _quota_lines(sub, "en") == (
            "📊 29 of 30 left — until 8 Dec 2026",
            "📊 Subscription Pro: 29 of 30 left, until 8 Dec 2026",
        )
    # A change chosen for the next period renews into the new plan.
    change = _subscription(next_plan=_plan(id=4, code="max", name_ru="Макс", name_en="Max"))
    assert "обновится" in _quota_lines(change, "ru")[0]
