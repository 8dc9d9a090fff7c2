"""env.prod.example: every setting, with true defaults; as-is it is refused in production,
with its placeholders replaced it is a valid production configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from billing.settings import PLACEHOLDERS, Settings, _is_example_url
from tests.deploy.helpers import (
    ACTIVE_LINE,
    COMPOSE_ONLY,
    DEFAULT_LINE,
    ENV_EXAMPLE,
    env_example_active,
    env_example_defaults,
    env_example_names,
)

SEED_NAMES = {
    "PRICE_PER_OPERATION",
    "FREE_OPERATIONS_COUNT",
    "DATABASE_URL",
    "YOOKASSA_SHOP_ID",
    "YOOKASSA_SECRET_KEY",
    "YOOKASSA_RETURN_URL",
    "YOOKASSA_CURRENCY",
    "YOOKASSA_WEBHOOK_URL",
}
REAL_VALUES = {
    "BOT_TOKEN": "7012345678:AAE3xY-real-looking_token_0123456789",
    "YOOKASSA_SHOP_ID": "123456",
    "YOOKASSA_SECRET_KEY": "live_AbCdEf0123456789",
    "POSTGRES_PASSWORD": "k3Jq9x2LmP0v",
    "PUBLIC_HOST": "media.myshop.ru",
    "YOOKASSA_WEBHOOK_URL": "https://media.myshop.ru/yookassa/webhook",
    "YOOKASSA_RETURN_URL": "https://t.me/myshop_media_bot",
}


def _is_placeholder(value: str) -> bool:
    """A secret placeholder, or one of the example addresses (bot.example.com, t.me/your_bot)."""
    return value in PLACEHOLDERS or _is_example_url(value) or _is_example_url(f"https://{value}")


def _settings_fields(values: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if k in Settings.model_fields}


def test_every_name_is_a_setting_or_a_compose_variable() -> None:
    unknown = sorted(env_example_names() - set(Settings.model_fields) - COMPOSE_ONLY)
    assert unknown == [], f"env.prod.example names nothing reads: {unknown}"
    assert SEED_NAMES <= env_example_names()


def _setting_line(line: str) -> str | None:
    match = ACTIVE_LINE.match(line.strip()) or DEFAULT_LINE.match(line.strip())
    return match.group(1) if match else None


def test_no_name_appears_twice() -> None:
    names = [n for n in map(_setting_line, ENV_EXAMPLE.read_text().splitlines()) if n]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_each_setting_is_explained_by_a_comment() -> None:
    """Every name sits under a prose comment (several related names may share one)."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        name = _setting_line(line)
        if name is None:
            continue
        above = index - 1
        while above >= 0 and _setting_line(lines[above]):
            above -= 1
        assert above >= 0 and lines[above].startswith("#") and len(lines[above]) > 2, (
            f"{name} has no comment above it"
        )


def test_the_documented_defaults_are_the_real_defaults() -> None:
    defaults = Settings(_env_file=None)
    for name, value in env_example_defaults().items():
        if name not in Settings.model_fields:
            continue
        actual = getattr(defaults, name)
        if value == "":
            assert actual in (None, [], {}, ""), f"{name}: documented empty, default {actual!r}"
            continue
        parsed = getattr(Settings(_env_file=None, **{name: value}), name)
        assert parsed == actual, f"{name}: documented {value!r}, default {actual!r}"


def test_as_is_it_is_refused_in_production() -> None:
    values = _settings_fields(env_example_active())
    assert values["ENVIRONMENT"] == "production"
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, **values)
    message = str(refused.value)
    for name in ("BOT_TOKEN", "YOOKASSA_SHOP_ID", "YOOKASSA_SECRET_KEY"):
        assert name in message, name
    # each placeholder alone is enough to be refused
    for name in (
        "BOT_TOKEN",
        "YOOKASSA_SHOP_ID",
        "YOOKASSA_SECRET_KEY",
        "YOOKASSA_WEBHOOK_URL",
        "YOOKASSA_RETURN_URL",
    ):
        fixed = {**values, **_settings_fields(REAL_VALUES)}
        fixed[name] = values[name]
        with pytest.raises(ValidationError, match=name):
            Settings(_env_file=None, **fixed)
    assert env_example_active()["POSTGRES_PASSWORD"] in PLACEHOLDERS


def test_with_its_placeholders_replaced_it_is_a_valid_production_configuration() -> None:
    active = env_example_active()
    placeholders = {k for k, v in active.items() if _is_placeholder(v)}
    assert placeholders == set(REAL_VALUES), placeholders
    values = {**active, **REAL_VALUES}
    # what docker compose adds for the app services
    values["DATABASE_URL"] = (
        f"postgresql://medialab:{values['POSTGRES_PASSWORD']}@postgres:5432/medialab"
    )
    values["REDIS_URL"] = "redis://redis:6379/0"
    settings = Settings(_env_file=None, **_settings_fields(values))
    assert settings.ENVIRONMENT == "production"
    assert settings.yookassa_configured
    assert settings.price_kopecks == 1000
    assert settings.FREE_OPERATIONS_COUNT == 4
    assert settings.YOOKASSA_WEBHOOK_URL == f"https://{values['PUBLIC_HOST']}/yookassa/webhook"
    assert active["YOOKASSA_WEBHOOK_URL"] == f"https://{active['PUBLIC_HOST']}/yookassa/webhook"
    assert settings.DATABASE_URL.startswith("postgresql+asyncpg://medialab:")
    assert not settings.WORKER_TEST_HOOKS
