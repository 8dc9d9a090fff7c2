"""A text of characters that draw nothing (U+3164 "ㅤ", zero-width spaces, format characters,
Hangul fillers, the blank Braille pattern) is an empty text in every mode that takes text:
refused before the charge, like an empty one."""

from __future__ import annotations

import pytest

from bot.inputs import Answer, Ready, assess
from imaging.caption import check_text
from imaging.errors import InvalidText
from imaging.instruction import parse_instruction
from imaging.visible_text import visibly_empty
from tests.bot.conftest import StartBot
from tests.bot.test_inputs import SETTINGS, _message

INVISIBLE = [
    "\u3164",  # HANGUL FILLER, the usual "empty message" trick
    "\u200b\u200b",  # zero-width spaces
    "\u2060\ufeff",  # word joiner, BOM
    "\u115f\u1160\uffa0",  # the other Hangul fillers
    "\u2800",  # BRAILLE PATTERN BLANK
    "\u200e\u202e\u2066",  # bidi marks (Cf)
    " \u3164 \u200b ",
    "\u0301\u0301",  # combining marks with nothing to sit on
]


@pytest.mark.parametrize("text", INVISIBLE)
def test_invisible_characters_are_an_empty_text(text: str) -> None:
    assert visibly_empty(text)
    assert not visibly_empty("a\u200b")
    assert not visibly_empty("🙂")


@pytest.mark.parametrize("text", INVISIBLE)
def test_an_invisible_prompt_is_refused(text: str) -> None:
    verdict = assess("generate", _message(text=text), {}, SETTINGS, "ru")
    assert isinstance(verdict, Answer) and verdict.key == "bot-generate-need-text"


@pytest.mark.parametrize("text", INVISIBLE)
def test_an_invisible_edit_instruction_is_an_empty_one(text: str) -> None:
    sent_alone = assess("edit", _message(text=text), {"photo": "p"}, SETTINGS, "ru")
    assert isinstance(sent_alone, Answer) and sent_alone.key == "bot-edit-empty"
    # As a caption: the photo is kept and the instruction asked for.
    captioned = assess("edit", _message(photo=(500, 500, 10), caption=text), {}, SETTINGS, "ru")
    assert isinstance(captioned, Answer) and captioned.key == "bot-edit-need-instruction"
    assert captioned.remember == {"photo": "photo1"}


@pytest.mark.parametrize("text", INVISIBLE)
def test_an_invisible_text_to_draw_is_refused(text: str) -> None:
    sent_alone = assess("add_text", _message(text=text), {"photo": "p"}, SETTINGS, "ru")
    assert isinstance(sent_alone, Answer) and sent_alone.key == "bot-text-empty"
    captioned = assess(
        "add_text", _message(photo=(500, 500, 10), caption=text), {}, SETTINGS, "ru"
    )
    assert isinstance(captioned, Answer) and captioned.key == "bot-text-need-text"
    with pytest.raises(InvalidText):
        check_text(text)


def test_invisible_characters_inside_a_text_are_left_out() -> None:
    assert check_text("С\u200bднём\u2800 рождения\u3164") == "Сднём рождения"
    verdict = assess(
        "edit", _message(text="ч/б\u200b, яркость\u2060 +20"), {"photo": "p"}, SETTINGS, "ru"
    )
    assert isinstance(verdict, Ready)
    assert [step.op for step in parse_instruction("ч/б\u200b, яркость\u2060 +20")] == [
        "grayscale",
        "brightness",
    ]


async def test_an_invisible_prompt_charges_nothing(start_bot: StartBot, tg) -> None:
    app = await start_bot(FAL_KEY="fal-test-key")
    user = tg.user(8301)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="🎨 Создать")
    await user.wait_for_text("Опишите картинку")
    entries = await app.ledger_count()  # the free operations granted on /start
    await user.send_text("\u3164")
    await user.wait_for_text("Опишите картинку текстом")
    await user.send_text("\u200b\u2060")
    await user.wait_for_text("Опишите картинку текстом")
    assert await app.operations() == []
    assert await app.ledger_count() == entries
    account = await app.user(8301)
    assert account is None or account.free_operations_left == 4
