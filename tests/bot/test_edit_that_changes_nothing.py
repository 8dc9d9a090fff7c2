"""✏️ An instruction known before the charge to change nothing ("яркость 0") is refused with
a clear answer and charges nothing; the photo is kept for a corrected instruction."""

from __future__ import annotations

from bot.inputs import Answer, Ready, assess
from tests.bot.conftest import StartBot
from tests.bot.test_inputs import SETTINGS, _message
from texts.i18n import t


def test_a_change_by_zero_is_answered_before_the_charge() -> None:
    verdict = assess(
        "edit", _message(photo=(500, 500, 10), caption="яркость 0"), {}, SETTINGS, "ru"
    )
    assert isinstance(verdict, Answer) and verdict.key == "bot-edit-no-effect"
    assert verdict.remember == {"photo": "photo1"}
    assert "«яркость 0» ничего не изменит" in t(verdict.key, "ru", **verdict.args)
    assert '"brightness 0" would change nothing' in t(
        verdict.key, "en", **{**verdict.args, "fragment": "brightness 0"}
    )
    fixed = assess("edit", _message(text="яркость +20"), verdict.remember, SETTINGS, "ru")
    assert isinstance(fixed, Ready)


async def test_an_edit_by_zero_charges_nothing(start_bot: StartBot, tg, photo: bytes) -> None:
    app = await start_bot()
    user = tg.user(8501)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✏️ Редактировать")
    await user.wait_for_text("подписью-командой")
    entries = await app.ledger_count()
    await user.send_photo(photo, caption="яркость 0")
    await user.wait_for_text("ничего не изменит")
    assert await app.operations() == []
    assert await app.ledger_count() == entries
    await user.send_text("яркость +20")
    await user.wait_for_text("В очереди")
    assert len(await app.operations()) == 1
