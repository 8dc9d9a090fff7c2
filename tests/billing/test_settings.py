"""Settings are checked at start-up: bad values stop the process with a clear message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from billing.settings import Settings


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///./media_lab.db", "sqlite+aiosqlite:///./media_lab.db"),
        ("postgresql://u:p@db/media", "postgresql+asyncpg://u:p@db/media"),
        ("postgres://u@db/media", "postgresql+asyncpg://u@db/media"),
        ("postgresql+asyncpg://u@db/m", "postgresql+asyncpg://u@db/m"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_url_accepts_the_seeds_forms(given, expected):
    assert settings(DATABASE_URL=given).DATABASE_URL == expected


@pytest.mark.parametrize(
    "values",
    [
        {"PRICE_PER_OPERATION": "0"},
        {"PRICE_PER_OPERATION": "-5"},
        {"PRICE_PER_OPERATION": "10.001"},
        {"FREE_OPERATIONS_COUNT": "-1"},
        {"DATABASE_URL": "mysql://x"},
        {"TELEGRAM_API_URL": "not a url"},
        {"YOOKASSA_WEBHOOK_URL": "ftp://x"},
        {"REDIS_URL": "http://x"},
        {"TOPUP_MIN_RUB": "0"},
        {"YOOKASSA_TRUSTED_NETWORKS": "999.1.1.1/8"},
        {"JOB_RETRY_INTERVALS": "2,-5"},
        {"JOB_RETRY_INTERVALS": ""},
        {"TELEGRAM_RETRY_BACKOFF": "0.5,-1"},
        {"TELEGRAM_RETRY_BACKOFF": "soon"},
    ],
)
def test_bad_values_are_refused(values):
    with pytest.raises(ValidationError):
        settings(**values)


def test_production_refuses_placeholder_secrets():
    with pytest.raises(ValidationError) as info:
        settings(
            ENVIRONMENT="production",
            BOT_TOKEN="changeme",
            YOOKASSA_SHOP_ID="your_shop_id",
            YOOKASSA_SECRET_KEY="your_secret_key",
        )
    text = str(info.value)
    assert "BOT_TOKEN" in text and "YOOKASSA_SECRET_KEY" in text


def test_prices_are_kopecks_and_lists_parse_from_the_environment(monkeypatch):
    monkeypatch.setenv("PRICE_PER_OPERATION", "12.50")
    monkeypatch.setenv("ADMIN_IDS", "1, 2,3")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")
    s = Settings(_env_file=None)
    assert s.price_kopecks == 1250
    assert s.ADMIN_IDS == [1, 2, 3]
    assert s.TRUSTED_PROXIES == ["10.0.0.0/8", "127.0.0.1"]


def test_the_retry_waits_default_to_productions_and_parse_from_the_environment(monkeypatch):
    s = Settings(_env_file=None)
    assert (s.JOB_RETRY_INTERVALS, s.TELEGRAM_RETRY_BACKOFF) == ([2, 5, 15], (0.5, 1.5, 4.0))
    monkeypatch.setenv("JOB_RETRY_INTERVALS", "1, 3")
    monkeypatch.setenv("TELEGRAM_RETRY_BACKOFF", "0.05,0.2")
    s = Settings(_env_file=None)
    assert (s.JOB_RETRY_INTERVALS, s.TELEGRAM_RETRY_BACKOFF) == ([1, 3], (0.05, 0.2))


@pytest.mark.parametrize("environment", ["development", "test", "production"])
@pytest.mark.parametrize("secret", [None, "", "has spaces", "x" * 257, "кириллица"])
def test_webhook_mode_always_needs_a_well_formed_secret(environment, secret):
    """Without it anyone who reaches the route could post a forged update (an admin's
    /grant), so no environment runs webhook mode without one."""
    values = {"ENVIRONMENT": environment, "TELEGRAM_WEBHOOK_URL": "https://bot.shop.ru/tg"}
    if secret is not None:
        values["TELEGRAM_WEBHOOK_SECRET"] = secret
    with pytest.raises(ValidationError, match="TELEGRAM_WEBHOOK_SECRET"):
        settings(**values)


def test_a_well_formed_webhook_secret_is_accepted():
    ok = settings(TELEGRAM_WEBHOOK_URL="https://bot.shop.ru/tg", TELEGRAM_WEBHOOK_SECRET="a-Z_9")
    assert ok.TELEGRAM_WEBHOOK_SECRET.get_secret_value() == "a-Z_9"


REAL = {
    "ENVIRONMENT": "production",
    "BOT_TOKEN": "123456:AAH-real-looking-token",
    "YOOKASSA_SHOP_ID": "512345",
    "YOOKASSA_SECRET_KEY": "live_real-looking-key",
    "DATABASE_URL": "postgresql://media:Str0ng-pass@postgres/media_lab",
    "YOOKASSA_WEBHOOK_URL": "https://bot.shop.ru/yookassa/webhook",
    "YOOKASSA_RETURN_URL": "https://t.me/shop_media_bot",
}


def test_production_accepts_real_looking_values():
    assert settings(**REAL).ENVIRONMENT == "production"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "postgresql://media:changeme@postgres/media_lab"),
        ("YOOKASSA_WEBHOOK_URL", "https://bot.example.com/yookassa/webhook"),
        ("YOOKASSA_RETURN_URL", "https://t.me/your_bot"),
    ],
)
def test_production_refuses_env_prod_example_placeholders(name, value):
    with pytest.raises(ValidationError, match=name):
        settings(**{**REAL, name: value})


def test_stars_alone_need_no_yookassa_account_in_production():
    real = {k: v for k, v in REAL.items() if not k.startswith("YOOKASSA_")}
    with pytest.raises(ValidationError, match="YOOKASSA_SHOP_ID"):
        settings(**real)
    stars_only = settings(**real, PAYMENT_METHODS="stars")
    assert stars_only.stars_enabled and not stars_only.yookassa_enabled


@pytest.mark.parametrize("value", ["", "paypal", "stars,stars", "stars,yookassa,cash"])
def test_payment_methods_must_be_known_and_named_once(value):
    with pytest.raises(ValidationError, match="PAYMENT_METHODS"):
        settings(PAYMENT_METHODS=value)


@pytest.mark.parametrize("value", ["0", "50,10001", "-5"])
def test_stars_packs_are_what_telegram_accepts(value):
    with pytest.raises(ValidationError, match="STARS_PACKS"):
        settings(STARS_PACKS=value)
