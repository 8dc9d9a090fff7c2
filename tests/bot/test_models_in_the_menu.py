"""What each mode uses and costs is shown before the user sends anything (issue 15): the
mode's prompt and /help name the model or the built-in processing and the price; without
FAL_KEY the modes with a local fallback are offered and the menu says they run without
their model, generate is not offered and the menu says why; the editor takes free words
when its model runs it. Real dispatcher, the Telegram emulator, PostgreSQL."""

from __future__ import annotations

from billing import ai_models
from tests.bot.conftest import StartBot
from texts.i18n import t

FALLBACK_MODES = "✏️ Редактировать, 🔗 Объединить, 🔄 Заменить лицо, ✨ Ретушь, ⬆️ Улучшить"


def _labels(message) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.text for row in message.buttons for b in row]


async def test_without_fal_key_the_menu_names_the_fallbacks_and_what_is_missing(
    start_bot: StartBot, tg
) -> None:
    await start_bot()
    user = tg.user(8301)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    assert f"⚙️ Без ИИ-модели, встроенной обработкой: {FALLBACK_MODES}." in menu.text
    assert "🚫 Сейчас недоступно: 🎨 Создать (модель не подключена)." in menu.text
    assert "🎨 Создать" not in _labels(menu) and "⬆️ Улучшить" in _labels(menu)

    await user.press(menu, text="⬆️ Улучшить")
    prompt = await user.wait_for_text("увеличу в 2 раза")
    assert "ИИ-модель сейчас не подключена — работает встроенная обработка" in prompt.text
    assert "Цена: 10 ₽" in prompt.text


async def test_with_fal_key_every_mode_names_its_model_and_price(start_bot: StartBot, tg) -> None:
    await start_bot(FAL_KEY="fal-test-key")
    user = tg.user(8302)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    assert "Без ИИ-модели" not in menu.text and "недоступно" not in menu.text
    assert "🎨 Создать" in _labels(menu)

    await user.press(menu, text="✨ Ретушь")
    prompt = await user.wait_for_text("Пришлите портрет")
    assert "🤖 Модель: fal-ai/codeformer" in prompt.text and "Цена: 10 ₽" in prompt.text

    await user.send_text("/help")
    help_message = await user.wait_for_text("Что я умею")
    for model in ("fal-ai/flux/schnell", "fal-ai/flux-pro/kontext", "fal-ai/esrgan"):
        assert model in help_message.text
    assert "Встроенная обработка · бесплатно" in help_message.text  # add_text
    assert "своими словами" in help_message.text  # the editor's free-words line


async def test_the_english_menu_says_the_same(start_bot: StartBot, tg) -> None:
    await start_bot()
    user = tg.user(8303, language="en")
    await user.send_text("/menu")
    menu = await user.wait_for_text("What shall we do?")
    assert "🚫 Not available now: 🎨 Create (model not connected)." in menu.text
    assert "⚙️ Without their AI model, on built-in processing:" in menu.text


async def test_the_editor_takes_free_words_with_its_model_and_commands_without(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(FAL_KEY="fal-test-key")
    user = tg.user(8304)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✏️ Редактировать")
    prompt = await user.wait_for_text("своими словами")
    assert "🤖 Модель: fal-ai/flux-pro/kontext" in prompt.text
    await user.send_photo(photo)
    await user.wait_for_text("напишите своими словами, что изменить")
    await user.send_text("сделай небо закатным")  # no command of the local editor
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert operation.input_ref["text"] == "сделай небо закатным"
    assert operation.input_ref["model"] == {
        "backend": "fal",
        "model_id": "fal-ai/flux-pro/kontext",
        "params": {},
    }

    # Switched to local by the operator: the command list again, free words refused.
    async with app.sessionmaker() as session:
        await ai_models.set_model(session, "edit", backend="local")
        await session.commit()
    await user.send_text("/start")
    menu = await user.wait_for(
        lambda m: "Что сделаем?" in m.text and m.message_id > prompt.message_id
    )
    await user.press(menu, text="✏️ Редактировать")
    local = await user.wait_for_text("подписью-командой")
    assert t("models-uses-local", "ru") in local.text
    await user.send_photo(photo, caption="сделай небо закатным")
    await user.wait_for_text("Не понял")
    assert len(await app.operations()) == 1


async def test_an_operator_price_in_units_shows_in_the_prompt_and_help(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot()
    async with app.sessionmaker() as session:
        await ai_models.set_model(session, "retouch", units=2)
        await ai_models.set_model(session, "add_text", units=1)
        await session.commit()
    user = tg.user(8305)
    await user.send_text("/help")
    help_message = await user.wait_for_text("Что я умею")
    assert "20 ₽ (2 операции)" in help_message.text
    # The cost line is the catalogue's: add_text is no longer "free" when the operator
    # prices it (its help line says only what it does).
    add_text = help_message.text.split("Добавить текст", 1)[1].split("\n")[:2]
    assert add_text[1].strip() == "⚙️ Встроенная обработка · 10 ₽ (1 операция)"
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✨ Ретушь")
    prompt = await user.wait_for_text("Пришлите портрет")
    assert "Цена: 20 ₽ — или 2 операции" in prompt.text
