"""The model catalogue from the bot (/models, /model_set, /model_enable, /model_disable) over
the Telegram emulator with the real dispatcher and PostgreSQL: ADMIN_IDS only; a change is
what users see and pay next; every bad input is answered in words and changes nothing."""

from __future__ import annotations

import pytest

from billing import accounts, ai_models
from billing.ai_models import ModelInvalid
from tests.bot.conftest import RunningBot, StartBot
from texts.i18n import keys

ADMIN = 5201
STRANGER = 5202


async def _rows(app: RunningBot) -> list[ai_models.ModelSetting]:
    async with app.sessionmaker() as session:
        return await ai_models.list_models(session)


async def test_the_admin_lists_and_changes_models_and_users_see_and_pay_the_change(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN], FREE_OPERATIONS_COUNT=0)
    admin = tg.user(ADMIN)
    await admin.send_text("/models")
    listing = await admin.wait_for_text("Модели")
    text = listing.text
    assert text.index("generate") < text.index("edit") < text.index("upscale")
    assert "fal-ai/flux/schnell" in text and "сейчас: недоступен (нет FAL_KEY)" in text
    assert "fal-ai/esrgan · 1 ед. (по умолчанию) · включён, сейчас: встроенная обработка" in text

    await admin.send_text("/model_set upscale units=3 model=fal-ai/clarity-upscaler")
    saved = await admin.wait_for_text("Сохранено")
    assert "fal-ai/clarity-upscaler · 3 ед. ·" in saved.text
    [upscale] = [r for r in await _rows(app) if r.type == "upscale"]
    assert (upscale.model_id, upscale.units) == ("fal-ai/clarity-upscaler", 3)

    # A user sees the new price before sending the photo, and pays it.
    async with app.sessionmaker() as session:
        account, _ = await accounts.get_or_create_user(
            session, telegram_id=5203, free_operations=0
        )
        await accounts.adjust(session, user_id=account.id, amount=5000, reason="test")
        await session.commit()
    user = tg.user(5203)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="⬆️ Улучшить")
    prompt = await user.wait_for_text("увеличу в 2 раза")
    assert "Цена: 30 ₽ — или 3 операции" in prompt.text
    await user.send_photo(photo)
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert (operation.type, operation.price, operation.units) == ("upscale", 3000, 3)

    # Turned off: not in the menu, and the menu says so.
    await admin.send_text("/model_disable upscale")
    off = await admin.wait_for(lambda m: "Сохранено" in m.text and "выключен" in m.text)
    assert "не предлагается" in off.text
    await user.send_text("/menu")
    menu = await user.wait_for(lambda m: "Сейчас недоступно" in m.text)
    assert "⬆️ Улучшить (выключено)" in menu.text
    labels = [b.text for row in menu.buttons for b in row]
    assert "⬆️ Улучшить" not in labels
    await admin.send_text("/model_enable upscale")
    await admin.wait_for(lambda m: "Сохранено" in m.text and "включён" in m.text)
    assert all(r.enabled for r in await _rows(app))


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("/model_set", "Формат: /model_set ТИП"),
        ("/model_set upscale", "Формат: /model_set ТИП"),
        ("/model_set paint units=2", "Режима «paint» нет"),
        ("/model_set upscale units=-2", "целое от 0 до 1000 или default, а не «-2»"),
        ("/model_set upscale units=lots", "а не «lots»"),
        ("/model_set upscale model=<b>x</b>", "не id модели fal"),
        ("/model_set generate backend=local", "нет встроенной обработки"),
        ("/model_set add_text backend=fal model=fal-ai/x", "работает только встроенной"),
        ("/model_set upscale colour=red", "Поля «colour» нет"),
        ("/model_set upscale params={oops", "JSON-объект"),
        ("""/model_set upscale params='{"api_key": "x"}'""", "похоже на ключ"),
        ("""/model_set upscale params='{"image_url": "x"}'""", "задаёт сама операция"),
        ("/model_enable", "Формат: /model_enable ТИП"),
        ("/model_disable paint", "Режима «paint» нет"),
    ],
)
async def test_every_bad_model_command_is_answered_and_changes_nothing(
    start_bot: StartBot, tg, command: str, words: str
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    before = await _rows(app)
    admin = tg.user(ADMIN)
    await admin.send_text(command)
    answer = await admin.wait_for_message()
    assert words in answer.text, answer.text
    assert "Сохранено" not in answer.text
    assert await _rows(app) == before


async def test_a_stranger_gets_the_ordinary_answer_and_nothing_changes(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    before = await _rows(app)
    stranger = tg.user(STRANGER)
    for command in ("/models", "/model_set upscale units=0", "/model_disable upscale"):
        await stranger.send_text(command)
        await stranger.wait_for_text("сначала выберите режим")
    assert await _rows(app) == before
    for message in await stranger.bot_messages():
        assert "Модели" not in message.text and "Сохранено" not in message.text


async def test_an_english_admin_reads_english(start_bot: StartBot, tg) -> None:
    await start_bot(ADMIN_IDS=[ADMIN], FAL_KEY="fal-test-key")
    admin = tg.user(ADMIN, language="en")
    await admin.send_text("/models")
    listing = await admin.wait_for_text("Models")
    assert "generate</b> · fal fal-ai/flux/schnell · 1 units (default)" in listing.raw_text
    assert "fal-test-key" not in listing.text
    await admin.send_text("/model_set upscale units=lots")
    answer = await admin.wait_for_message()
    assert answer.text == (
        "The price in units is a whole number from 0 to 1000, or default — not “lots”. "
        "Nothing changed."
    )


def test_every_catalogue_rule_has_its_admin_text_in_both_languages() -> None:
    for language in ("ru", "en"):
        assert {f"admin-model-error-{code}" for code in ModelInvalid.MESSAGES} <= keys(language)
