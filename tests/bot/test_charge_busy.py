"""A charge that lost the race for its source on every try (``ChargeConflict``) is answered:
nothing charged, nothing queued, the user told to send it again."""

from __future__ import annotations

import pytest

from billing import operations
from tests.bot.conftest import StartBot


@pytest.mark.parametrize(("language", "words"), [("ru", "Отправьте её ещё раз"), ("en", "again")])
async def test_a_charge_that_keeps_losing_its_source_is_answered_and_charges_nothing(
    start_bot: StartBot,
    tg,
    photo: bytes,
    monkeypatch: pytest.MonkeyPatch,
    language: str,
    words: str,
) -> None:
    app = await start_bot()
    user = tg.user(5031, language=language)
    await user.send_text("/start")
    menu = await user.wait_for_message()
    await user.press(menu, text="✨ Ретушь" if language == "ru" else "✨ Retouch")
    await user.wait_for_message()
    # No try left: the charge gives up at once, as after ten lost races.
    monkeypatch.setattr(operations, "CHARGE_TRIES", 0)
    await user.send_photo(photo)
    answer = await user.wait_for_text(words)
    assert "⏳" in answer.text
    assert await app.operations() == []
    assert app.job_ids() == []
    monkeypatch.undo()
    await user.send_photo(photo)
    await user.wait_for_text("В очереди" if language == "ru" else "Queued")
    assert len(await app.operations()) == 1
