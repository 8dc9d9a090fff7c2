"""bot.inputs.assess: what each mode accepts before any charge (pure, no Telegram)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from aiogram.types import Chat, Document, Message, PhotoSize

from bot.inputs import Answer, Ignore, MediaInput, Ready, assess, image_of, parse_email
from tests.conftest import make_settings
from texts.edit_texts import known_commands
from texts.i18n import t

SETTINGS = make_settings("sqlite://", MAX_INPUT_FILE_BYTES=1000, MAX_OUTPUT_PIXELS=2000 * 2000)


def _message(
    message_id: int = 1,
    *,
    text: str | None = None,
    caption: str | None = None,
    photo: tuple[int, int, int] | None = None,
    document: Document | None = None,
    group: str | None = None,
) -> Message:
    sizes = None
    if photo is not None:
        w, h, size = photo
        sizes = [
            PhotoSize(
                file_id=f"small{message_id}",
                file_unique_id="s",
                width=w // 4,
                height=h // 4,
                file_size=size // 8,
            ),
            PhotoSize(
                file_id=f"photo{message_id}", file_unique_id="p", width=w, height=h, file_size=size
            ),
        ]
    return Message(
        message_id=message_id,
        date=datetime.now(UTC),
        chat=Chat(id=77, type="private"),
        text=text,
        caption=caption,
        photo=sizes,
        document=document,
        media_group_id=group,
    )


def test_a_pair_from_an_album_handled_out_of_order_keeps_the_sent_order() -> None:
    first = assess("face_swap", _message(11, photo=(100, 100, 10), group="g"), {}, SETTINGS, "ru")
    assert isinstance(first, Answer) and first.key == "" and first.remember is not None
    second = _message(10, photo=(100, 100, 10), group="g")
    verdict = assess("face_swap", second, first.remember, SETTINGS, "ru")
    assert isinstance(verdict, Ready)
    assert verdict.media == MediaInput(("photo10", "photo11"))
    third = _message(12, photo=(100, 100, 10), group="g")
    extra = assess("face_swap", third, verdict.remember, SETTINGS, "ru")
    assert isinstance(extra, Answer) and extra.key == "bot-album-extra"  # said once
    assert extra.remember is not None
    fourth = _message(13, photo=(100, 100, 10), group="g")
    told = {**verdict.remember, **extra.remember}
    assert isinstance(assess("face_swap", fourth, told, SETTINGS, "ru"), Ignore)


def test_the_largest_photo_size_is_used_and_its_byte_size_checked() -> None:
    ok = image_of(_message(photo=(640, 480, 900)), SETTINGS)
    assert ok is not None and not isinstance(ok, Answer) and ok.file_id == "photo1"
    too_big = image_of(_message(photo=(640, 480, 1001)), SETTINGS)
    assert isinstance(too_big, Answer) and too_big.key == "bot-input-too-big"


@pytest.mark.parametrize(
    ("mime", "size", "key"),
    [
        ("image/heic", 10, "bot-input-not-image"),
        ("application/pdf", 10, "bot-input-not-image"),
        (None, 10, "bot-input-not-image"),
        ("image/png", 0, "bot-input-not-image"),
        ("image/png", 1001, "bot-input-too-big"),
    ],
)
def test_documents_that_are_not_usable_images_are_refused(
    mime: str | None, size: int, key: str
) -> None:
    document = Document(file_id="d", file_unique_id="d", mime_type=mime, file_size=size)
    verdict = assess("retouch", _message(document=document), {}, SETTINGS, "ru")
    assert isinstance(verdict, Answer) and verdict.key == key


def test_upscale_refuses_a_photo_whose_output_would_pass_the_limit() -> None:
    assert isinstance(
        assess("upscale", _message(photo=(1000, 1000, 10)), {}, SETTINGS, "ru"), Ready
    )
    verdict = assess("upscale", _message(photo=(1001, 1000, 10)), {}, SETTINGS, "ru")
    assert isinstance(verdict, Answer) and verdict.key == "bot-upscale-too-big"


def test_an_edit_instruction_is_parsed_before_any_charge() -> None:
    data = {"photo": "p"}
    ok = assess("edit", _message(text="sepia, blur 3"), data, SETTINGS, "en")
    assert isinstance(ok, Ready) and ok.media == MediaInput(("p",), "sepia, blur 3")
    bad = assess("edit", _message(text="<make it pretty>"), data, SETTINGS, "en")
    assert isinstance(bad, Answer) and bad.key == "bot-edit-unknown"
    assert "&lt;make it pretty&gt;" in bad.args["fragment"]  # escaped for HTML


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_list_of_edit_commands_is_catalogue_text(lang: str) -> None:
    bad = assess("edit", _message(text="make it pretty"), {"photo": "p"}, SETTINGS, lang)
    assert isinstance(bad, Answer)
    lines = bad.args["commands"].split("\n")
    assert lines == [
        t("bot-edit-command-line", lang, command=html.escape(line))
        for line in known_commands(lang)
    ]
    assert len(lines) == 12
    if lang == "en":
        assert "grayscale (b&amp;w, black and white)" in bad.args["commands"]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("anya@example.ru", True),
        (" a.b+c@mail.co.uk ", True),
        ("anya@example", False),
        ("no at sign", False),
        ("a@b@c.ru", False),
        ("<a>@b.ru", False),
        ("x" * 250 + "@a.ru", False),
    ],
)
def test_receipt_email_is_validated(text: str, ok: bool) -> None:
    assert (parse_email(text) is not None) is ok


@pytest.mark.parametrize("text", ["/imagine a cat", "/foo", "  /settings@media_lab_bot", "/"])
def test_an_unknown_command_is_not_taken_as_a_prompt(text: str) -> None:
    verdict = assess("generate", _message(text=text), {}, SETTINGS, "ru")
    assert isinstance(verdict, Answer) and verdict.key == "bot-input-command"
    assert verdict.args["command"] == text.split()[0]
    assert t(verdict.key, "en", **verdict.args)


@pytest.mark.parametrize("mode", ["edit", "add_text"])
def test_an_unknown_command_is_neither_an_instruction_nor_a_caption_text(mode: str) -> None:
    sent_alone = assess(mode, _message(text="/pretty <b>"), {"photo": "p"}, SETTINGS, "en")
    assert isinstance(sent_alone, Answer) and sent_alone.key == "bot-input-command"
    assert sent_alone.remember is None  # the photo waiting for its text stays
    no_photo_yet = assess(mode, _message(text="/foo"), {}, SETTINGS, "en")
    assert isinstance(no_photo_yet, Answer) and no_photo_yet.key == "bot-input-command"
    captioned = assess(mode, _message(photo=(100, 100, 10), caption="/sepia"), {}, SETTINGS, "en")
    assert isinstance(captioned, Answer) and captioned.key == "bot-input-command"
    assert captioned.remember == {"photo": "photo1"}  # a corrected text alone is enough
    # A slash inside the text is just a character.
    ok = assess(mode, _message(text="ч/б"), {"photo": "p"}, SETTINGS, "ru")
    assert isinstance(ok, Ready)


def test_a_long_unknown_command_is_shortened_and_escaped_in_the_answer() -> None:
    verdict = assess("generate", _message(text="/<b>" + "x" * 100), {}, SETTINGS, "ru")
    assert isinstance(verdict, Answer)
    assert verdict.args["command"].startswith("/&lt;b&gt;") and len(verdict.args["command"]) < 60
