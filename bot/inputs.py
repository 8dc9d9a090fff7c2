"""What each mode needs, checked before any charge.

``assess(mode, message, data, settings, lang, header)`` is pure: it looks at the message
(and the header of its image document, when one was read) and the mode's FSM data and
says what to do — ``Ready`` (charge and queue), ``Answer`` (reply,
maybe remember something in the FSM data, charge nothing, the mode stays open) or
``Ignore``. The billed handlers run behind the ``ReadyInput`` filter (so the charge only
happens for a ``Ready``); the mode's fallback handler acts on the other outcomes.

``assess_message(..., bot)`` is what the bot runs (once per message, before the filters):
for an image sent as a document — which has no width or height, and whose name and MIME
type prove nothing — it first reads the file's header through the Bot API
(``bot.image_header``), so an unreadable file or one too large for the mode is refused
before the charge. Photos carry their size: nothing is downloaded for them.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.types import Message

from billing.settings import Settings
from bot.image_header import FileTooBig, HeaderUnavailable, read_image_header
from imaging.caption import check_text
from imaging.errors import ImageTooLarge, InstructionError, InvalidImage, InvalidText
from imaging.header import MAX_INPUT_PIXELS, MAX_INPUT_SIDE, ImageInfo, check_upscale
from imaging.instruction import MAX_STEPS, parse_instruction
from imaging.visible_text import visibly_empty, without_invisible
from jobqueue import catalogue
from jobqueue.catalogue import Entry, Inputs, min_side, too_small
from texts.edit_texts import known_commands
from texts.i18n import t

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 1000
MAX_COMMAND_SHOWN = 32  # an unknown command is named in the answer, this long at most
MAX_CAPTION_SHOWN = 40  # an unused caption is quoted, this long at most
# What Pillow in the worker reads (imaging._image); HEIC/SVG/... are refused up front.
IMAGE_MIME_TYPES = frozenset(
    {"image/jpeg", "image/jpg", "image/png", "image/webp", "image/bmp", "image/gif", "image/tiff"}
)
_CURRENCY_SUFFIX = re.compile(r"\s*(?:₽|руб(?:\.|лей|ля|ль)?|р\.?|rub|rur)\s*$")
_WHOLE = re.compile(r"[0-9]+|[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+")
_GROUP_SEPARATORS = re.compile(r"[ \u00a0\u202f]")
_FRACTION = re.compile(r"[0-9]+[.,][0-9]+")
_NEGATIVE = re.compile(r"[-−–]\s*[0-9]+")
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>.]{2,}")


Note = tuple[str, tuple[tuple[str, Any], ...]]
"""A line added to the "queued" message: a text key and its arguments."""


@dataclass(frozen=True)
class MediaInput:
    """What the operation row's input_ref carries to the worker (and ``notes``: what the
    user is told with the "queued" message about input that was not used)."""

    file_ids: tuple[str, ...] = ()
    text: str | None = None
    notes: tuple[Note, ...] = ()
    # The input came through the "➕ Добавить / ✅ Готово" keyboard: "queued" takes it away.
    close_keyboard: bool = False

    def input_ref(self, language: str) -> dict[str, Any]:
        return {"file_ids": list(self.file_ids), "text": self.text, "language": language}


@dataclass(frozen=True)
class Ready:
    media: MediaInput
    remember: dict[str, Any] = field(default_factory=dict)  # FSM data after the operation


@dataclass(frozen=True)
class Answer:
    key: str
    args: dict[str, Any] = field(default_factory=dict)
    remember: dict[str, Any] | None = None  # merged into the FSM data
    # The answer's keyboard: None the "🏠 Меню" button, "several" "➕ Добавить / ✅ Готово"
    # (a mode that takes several photos), "remove" none (that keyboard goes away).
    keyboard: str | None = None


@dataclass(frozen=True)
class Ignore:
    """A message of an album that was already answered the same (one answer per album)."""


Assessment = Ready | Answer | Ignore


@dataclass(frozen=True)
class ImageRef:
    file_id: str
    width: int | None
    height: int | None


def image_of(
    message: Message, settings: Settings, header: ImageInfo | None = None
) -> ImageRef | Answer | None:
    """The image in a message (a photo, or a document that is an image), a refusal, or
    None when the message carries no photo or document at all. A document's size is
    known only from its ``header`` (read by :func:`assess_message`)."""
    limit_mb = settings.MAX_INPUT_FILE_BYTES // (1024 * 1024)
    if message.photo:
        largest = max(message.photo, key=lambda p: p.width * p.height)
        if largest.file_size and largest.file_size > settings.MAX_INPUT_FILE_BYTES:
            return Answer("bot-input-too-big", {"limit": limit_mb})
        return ImageRef(largest.file_id, largest.width, largest.height)
    if message.document:
        document = message.document
        mime = (document.mime_type or "").lower()
        if mime not in IMAGE_MIME_TYPES:
            return Answer("bot-input-not-image")
        if document.file_size is not None and document.file_size > settings.MAX_INPUT_FILE_BYTES:
            return Answer("bot-input-too-big", {"limit": limit_mb})
        if document.file_size == 0:
            return Answer("bot-input-not-image")
        if header is not None:
            return ImageRef(document.file_id, header.width, header.height)
        return ImageRef(document.file_id, None, None)
    return None


async def read_header(bot: Bot, file_id: str, settings: Settings) -> ImageInfo | Answer:
    """The header of an image document, or the answer when it cannot be used: not an
    image we read, too many pixels, too big a file, or Telegram failing (try again)."""
    try:
        return await read_image_header(bot, file_id, max_bytes=settings.MAX_INPUT_FILE_BYTES)
    except InvalidImage:
        return Answer("bot-input-unreadable")
    except ImageTooLarge:
        return Answer(
            "bot-input-too-many-pixels",
            {"megapixels": str(MAX_INPUT_PIXELS // 1_000_000), "side": str(MAX_INPUT_SIDE)},
        )
    except FileTooBig:
        return Answer(
            "bot-input-too-big", {"limit": settings.MAX_INPUT_FILE_BYTES // (1024 * 1024)}
        )
    except HeaderUnavailable as exc:
        log.warning("image header of %s not read: %s", file_id, exc)
        return Answer("bot-input-download-failed")


def _instruction_error(exc: InstructionError, lang: str) -> Answer:
    commands = "\n".join(
        t("bot-edit-command-line", lang, command=html.escape(line))
        for line in known_commands(lang)
    )
    key = {
        "empty": "bot-edit-empty",
        "unknown": "bot-edit-unknown",
        "bad-value": "bot-edit-bad-value",
        "too-many": "bot-edit-too-many",
        "too-long": "bot-edit-too-long",
        "no-effect": "bot-edit-no-effect",
    }.get(exc.reason, "bot-edit-unknown")
    args = {"fragment": html.escape(exc.fragment or ""), "commands": commands, "max": MAX_STEPS}
    return Answer(key, args)


def _check_instruction(text: str, lang: str) -> Answer | None:
    if visibly_empty(text):
        return _instruction_error(InstructionError("empty instruction", reason="empty"), lang)
    try:
        parse_instruction(text)
    except InstructionError as exc:
        return _instruction_error(exc, lang)
    return None


def _command_in(text: str) -> Answer | None:
    """A text that starts with "/" is a command (one no router knew), never a prompt, an
    instruction or a caption: refused with its name, so a typo costs nothing."""
    stripped = without_invisible(text).strip()
    if not stripped.startswith("/"):
        return None
    command = stripped.split(maxsplit=1)[0]
    if len(command) > MAX_COMMAND_SHOWN:
        command = command[: MAX_COMMAND_SHOWN - 1] + "…"
    return Answer("bot-input-command", {"command": html.escape(command)})


def _check_caption(text: str) -> tuple[str | None, Answer | None]:
    try:
        return check_text(text), None
    except InvalidText as exc:
        key = "bot-text-too-long" if exc.reason == "too-long" else "bot-text-empty"
        return None, Answer(key, {"max": exc.max_length})


def _too_small(mode: str, image: ImageRef) -> Answer | None:
    """The mode's minimum size (jobqueue.catalogue), checked before the charge."""
    if image.width is None or image.height is None:
        return None  # a document whose header was not read: the job checks the bytes
    if not too_small(mode, image.width, image.height):
        return None
    return Answer(
        "bot-input-too-small",
        {"width": str(image.width), "height": str(image.height), "min": str(min_side(mode))},
    )


def _album_done(message: Message, data: dict[str, Any]) -> bool:
    return bool(message.media_group_id) and data.get("done_group") == message.media_group_id


def _after(message: Message) -> dict[str, Any]:
    """FSM data once an operation is queued: the mode stays open, its inputs are cleared,
    and the rest of the same album is not used (the user is told once)."""
    return {
        "photo": None,
        "photo_group": None,
        "first": None,
        "first_mid": None,
        "unused_caption": None,
        "pair": None,
        "photos": None,
        "photos_caption": None,
        "photos_group": None,
        "done_group": message.media_group_id,
    }


def _extra_photos(mode: str) -> Answer:
    """A photo of an album past what the mode takes: not used, not charged, and said so."""
    entry = catalogue.entry(mode)
    if entry.most_photos > entry.photos:
        return Answer("bot-several-too-many", {"max": entry.most_photos})
    return Answer("bot-album-extra", {"count": entry.photos})


def _caption_notes(caption: str | None) -> tuple[Note, ...]:
    """A caption in a mode that takes none (it may ask for something else): said to be unused."""
    if visibly_empty(caption):
        return ()
    assert caption is not None
    shown = " ".join(caption.split())
    if len(shown) > MAX_CAPTION_SHOWN:
        shown = shown[: MAX_CAPTION_SHOWN - 1] + "…"
    return (("bot-caption-unused", (("caption", html.escape(shown)),)),)


def _once_per_album(message: Message, data: dict[str, Any], verdict: Assessment) -> Assessment:
    """An album arrives as one message per photo: an answer the album already got is not
    sent again (three photos too small: one "too small")."""
    group = message.media_group_id
    if not group or not isinstance(verdict, Answer) or not verdict.key:
        return verdict
    album = data.get("album") or {}
    said = list(album.get("said") or []) if album.get("group") == group else []
    if verdict.key in said:
        # Not said again; what it remembers still counts (the photos of an album collected).
        return Answer("", remember=verdict.remember) if verdict.remember else Ignore()
    remember = {
        **(verdict.remember or {}),
        "album": {"group": group, "said": [*said, verdict.key]},
    }
    return Answer(verdict.key, verdict.args, remember, verdict.keyboard)


# --- the named pre-charge checks of the catalogue's entries ----------------------------

TextCheck = Callable[[str, Entry, str], "str | Answer"]
"""(text, entry, lang) → the text to use (cleaned), or the refusal."""
PhotoCheck = Callable[[ImageRef, Settings], "Answer | None"]
"""(image, settings) → the refusal, or None."""


def _prompt(text: str, entry: Entry, lang: str) -> str | Answer:
    prompt = text.strip()
    if visibly_empty(prompt):  # "ㅤ", zero-width spaces...: nothing to draw from
        return Answer(_ask_text(entry))
    if len(prompt) > MAX_PROMPT_CHARS:
        return Answer("bot-text-too-long", {"max": MAX_PROMPT_CHARS})
    return prompt


def _instruction(text: str, entry: Entry, lang: str) -> str | Answer:
    problem = _check_instruction(text, lang)
    return text.strip() if problem is None else problem


def _caption(text: str, entry: Entry, lang: str) -> str | Answer:
    cleaned, problem = _check_caption(text)
    if problem is not None:
        return problem
    assert cleaned is not None
    return cleaned


def _upscale_fits(image: ImageRef, settings: Settings) -> Answer | None:
    if not (image.width and image.height):
        return None  # a document whose header was not read: the job checks the bytes
    try:
        check_upscale(image.width, image.height, max_output_pixels=settings.MAX_OUTPUT_PIXELS)
    except ImageTooLarge:
        return Answer("bot-upscale-too-big", {"width": image.width, "height": image.height})
    return None


TEXT_CHECKS: dict[str, TextCheck] = {
    "prompt": _prompt,
    "instruction": _instruction,
    "caption": _caption,
}
PHOTO_CHECKS: dict[str, PhotoCheck] = {
    "upscale-fits": _upscale_fits,
}


def _ask_text(entry: Entry) -> str:
    assert entry.ask_text is not None  # an entry that takes text has one (Entry checks)
    return entry.ask_text


def _check_text(entry: Entry, text: str, lang: str) -> str | Answer:
    """A command first (never a text to use), then the entry's text check."""
    command = _command_in(text)
    if command is not None:
        return command
    if entry.text_check is None:
        return text.strip()
    return TEXT_CHECKS[entry.text_check](text, entry, lang)


def _check_photo(entry: Entry, image: ImageRef, settings: Settings) -> Answer | None:
    """The entry's minimum size, then its other photo checks."""
    small = _too_small(entry.type, image)
    if small is not None:
        return small
    for name in entry.photo_checks:
        problem = PHOTO_CHECKS[name](image, settings)
        if problem is not None:
            return problem
    return None


# --- one assessment per kind of input ------------------------------------------------


def _assess_text(entry: Entry, message: Message, data: dict[str, Any]) -> Assessment:
    """A TEXT entry (generate): one message of text."""
    if message.text is None:
        return Answer(_ask_text(entry))
    text = _check_text(entry, message.text, "")
    if isinstance(text, Answer):
        return text
    return Ready(MediaInput((), text), _after(message))


def _assess_single(
    entry: Entry,
    message: Message,
    data: dict[str, Any],
    settings: Settings,
    header: ImageInfo | None,
) -> Assessment:
    mode = entry.type
    image = image_of(message, settings, header)
    if image is None:
        return Answer("bot-need-photo")
    if isinstance(image, Answer):
        return image
    if _album_done(message, data):
        return _extra_photos(mode)
    problem = _check_photo(entry, image, settings)
    if problem is not None:
        return problem
    notes = _caption_notes(message.caption)
    return Ready(MediaInput((image.file_id,), notes=notes), _after(message))


def _assess_pair(
    entry: Entry,
    message: Message,
    data: dict[str, Any],
    settings: Settings,
    header: ImageInfo | None,
) -> Assessment:
    mode = entry.type
    image = image_of(message, settings, header)
    if image is None:
        return Answer("bot-pair-need-second" if data.get("first") else "bot-need-photo")
    if isinstance(image, Answer):
        return image
    if _album_done(message, data):
        return _extra_photos(mode)
    problem = _check_photo(entry, image, settings)
    if problem is not None:
        return problem
    first = data.get("first")
    caption = message.caption if not visibly_empty(message.caption) else None
    if not first:
        remember = {
            "first": image.file_id,
            "first_mid": message.message_id,
            "unused_caption": caption,
        }
        # In an album the second photo is already on its way: no "now the second" prompt.
        if message.media_group_id:
            return Answer("", remember=remember)
        return Answer("bot-pair-need-second", remember=remember)
    files = (first, image.file_id)
    # Album updates reaching different replicas (or queued behind a handler that hung past
    # the lock's expiry) may be handled out of order: the photo sent first is the first one.
    if data.get("first_mid") and message.message_id < int(data["first_mid"]):
        files = (image.file_id, first)
    notes = _caption_notes(caption or data.get("unused_caption"))
    return Ready(MediaInput(files, notes=notes), _after(message))


def _assess_pair_and_text(
    entry: Entry,
    message: Message,
    data: dict[str, Any],
    settings: Settings,
    lang: str,
    header: ImageInfo | None,
) -> Assessment:
    """Two photos (as a pair) and a sentence: the caption of either, or a message after
    them (merge by a multi-image model)."""
    if message.text is not None:
        command = _command_in(message.text)
        if command is not None:
            return command
        pair = data.get("pair")
        if not pair:
            return Answer("bot-pair-need-second" if data.get("first") else "bot-need-photo")
        text = _check_text(entry, message.text, lang)
        if isinstance(text, Answer):
            return text
        return Ready(MediaInput(tuple(pair), text), _after(message))
    verdict = _assess_pair(entry, message, data, settings, header)
    if isinstance(verdict, Answer) and verdict.remember and "first" in verdict.remember:
        # A new first photo starts a new pair: an older one waiting for its words is dropped.
        return Answer(verdict.key, verdict.args, remember={**verdict.remember, "pair": None})
    if not isinstance(verdict, Ready):
        return verdict
    files = verdict.media.file_ids
    caption = message.caption if not visibly_empty(message.caption) else None
    caption = caption or data.get("unused_caption")
    waiting = {"pair": list(files), "first": None, "first_mid": None, "unused_caption": None}
    if not caption:
        return Answer(_ask_text(entry), remember=waiting)
    text = _check_text(entry, caption, lang)
    if isinstance(text, Answer):
        # Keep the pair: a corrected sentence on its own is enough.
        return Answer(text.key, text.args, remember=waiting)
    return Ready(MediaInput(files, text), verdict.remember)


# The "➕ Добавить / ✅ Готово" keyboard's buttons send their labels; the words alone work
# too, in either language ("готово", "done").
DONE_BUTTON = "bot-btn-done"
ADD_BUTTON = "bot-btn-add-photo"


_MARKS = re.compile(r"^[\W_]+|[\W_]+$")


def _words(text: str) -> str:
    """A button's words: no emoji or marks around them, any case."""
    return _MARKS.sub("", without_invisible(text).strip()).casefold()


def _is_button(text: str, key: str) -> bool:
    return _words(text) in {_words(t(key, lang)) for lang in ("ru", "en")}


def _several(data: dict[str, Any]) -> list[tuple[str, int]]:
    """The photos collected so far, in the order sent (album updates may be handled out of
    order: the message ids say which came first)."""
    kept = [(str(f), int(m)) for f, m in data.get("photos") or []]
    return sorted(kept, key=lambda item: item[1])


def _assess_several(
    entry: Entry,
    message: Message,
    data: dict[str, Any],
    settings: Settings,
    lang: str,
    header: ImageInfo | None,
) -> Assessment:
    """Two to ``entry.most_photos`` photos (merge), one by one or as albums: each is
    counted; "✅ Готово" (or the most it takes) completes them. With a text (a multi-image
    model) a sentence is needed too: a caption, or a message after the photos, which also
    says they are all there. Nothing is charged until the request is complete."""
    most = entry.most_photos
    words = entry.takes_text
    # Once the request is complete, a photo of an album it took that comes later (album
    # updates may be handled after the "✅ Готово" that followed them) is said not to be
    # added, instead of starting a new request.
    after = {**_after(message), "done_group": message.media_group_id or data.get("photos_group")}
    photos = _several(data)
    caption = data.get("photos_caption")
    files = tuple(f for f, _ in photos)
    if message.text is not None:
        command = _command_in(message.text)
        if command is not None:
            return command
        done = _is_button(message.text, DONE_BUTTON)
        if not photos and (done or _is_button(message.text, ADD_BUTTON)):
            return Answer("bot-several-need-photos", {"max": most}, keyboard="remove")
        if not photos:
            return Answer("bot-several-need-photos", {"max": most})
        if len(photos) < entry.photos:
            return Answer("bot-several-need-more", {"max": most})
        if _is_button(message.text, ADD_BUTTON):
            return Answer("bot-several-add", {"count": len(photos), "max": most})
        if not words:
            if not done:  # words the local collage cannot use: the buttons say what to do
                return Answer("bot-several-no-words", keyboard="several")
            notes = _caption_notes(caption)
            return Ready(MediaInput(files, notes=notes, close_keyboard=True), after)
        sentence = caption if done else message.text
        if done and not caption:
            return Answer(_ask_text(entry), keyboard="remove")
        text = _check_text(entry, sentence or "", lang)
        if isinstance(text, Answer):
            return text
        return Ready(MediaInput(files, text, close_keyboard=True), after)
    image = image_of(message, settings, header)
    if image is None:
        return Answer("bot-need-photo")
    if isinstance(image, Answer):
        return image
    if _album_done(message, data):
        return _extra_photos(entry.type)
    if len(photos) >= most:
        return Answer("bot-several-too-many", {"max": most})
    problem = _check_photo(entry, image, settings)
    if problem is not None:
        return problem  # this one is not added; the others stay
    photos = sorted([*photos, (image.file_id, message.message_id)], key=lambda item: item[1])
    files = tuple(f for f, _ in photos)
    if not visibly_empty(message.caption):
        caption = message.caption
    remember: dict[str, Any] = {"photos": [list(p) for p in photos], "photos_caption": caption}
    album = message.media_group_id
    if album:
        remember["photos_group"] = album
    if len(photos) == most:  # the most it takes: nothing more to wait for
        if not words:
            notes = _caption_notes(caption)
            return Ready(MediaInput(files, notes=notes, close_keyboard=True), after)
        if not caption:
            return Answer(_ask_text(entry), remember=remember, keyboard="remove")
        text = _check_text(entry, caption, lang)
        if isinstance(text, Answer):  # keep the photos: a corrected sentence is enough
            return Answer(text.key, text.args, remember=remember)
        return Ready(MediaInput(files, text, close_keyboard=True), after)
    if len(photos) < entry.photos:
        # In an album the next photo is already on its way: no "send another" prompt.
        key = "" if album else "bot-several-need-more"
        return Answer(key, {"max": most}, remember=remember)
    suffix = "-words" if words else ""
    if album:  # one answer per album, whatever its size
        return Answer(f"bot-several-got-album{suffix}", {"max": most}, remember, "several")
    count = {"count": len(photos), "max": most}
    return Answer(f"bot-several-got{suffix}", count, remember, "several")


def _assess_photo_and_text(
    entry: Entry,
    message: Message,
    data: dict[str, Any],
    settings: Settings,
    lang: str,
    header: ImageInfo | None,
) -> Assessment:
    """A photo and a text (edit: an instruction, add_text: a caption): a captioned photo,
    or a photo first and the text after it."""
    mode = entry.type
    ask_text = _ask_text(entry)
    if message.text is not None:
        command = _command_in(message.text)
        if command is not None:
            return command
        photo = data.get("photo")
        if not photo:
            return Answer("bot-need-photo-first")
        text = _check_text(entry, message.text, lang)
        if isinstance(text, Answer):
            return text
        return Ready(MediaInput((photo,), text), _after(message))
    image = image_of(message, settings, header)
    if image is None:
        return Answer("bot-need-photo")
    if isinstance(image, Answer):
        return image
    if _album_done(message, data):
        return _extra_photos(mode)
    problem = _check_photo(entry, image, settings)
    if problem is not None:
        # An earlier photo is dropped too: a text sent next must not go to that one.
        return Answer(problem.key, problem.args, remember={"photo": None})
    remember: dict[str, Any] = {"photo": image.file_id}
    if message.media_group_id:
        remember["photo_group"] = message.media_group_id
    caption = (message.caption or "").strip()
    if visibly_empty(caption):
        group = message.media_group_id
        if group and data.get("photo") and data.get("photo_group") == group:
            # An album without a caption: its first photo waits for the text; not this one.
            return _extra_photos(mode)
        return Answer(ask_text, remember=remember)
    text = _check_text(entry, caption, lang)
    if isinstance(text, Answer):
        # Keep the photo: the user can send a corrected text on its own.
        return Answer(text.key, text.args, remember=remember)
    return Ready(MediaInput((image.file_id,), text), _after(message))


def assess(
    mode: str,
    message: Message,
    data: dict[str, Any],
    settings: Settings,
    lang: str,
    header: ImageInfo | None = None,
    backend: str = "local",
) -> Assessment:
    """What to do with ``message`` in ``mode``; ``header``: that of the message's image
    document, when it was read (see :func:`assess_message`); ``backend``: what runs the
    mode now (a fal model may take other text than the local code: free words)."""
    try:
        entry = catalogue.entry(mode)
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}") from None
    entry = entry.for_backend(backend)
    if entry.inputs is Inputs.TEXT:
        verdict = _assess_text(entry, message, data)
    elif entry.inputs is Inputs.PHOTO:
        verdict = _assess_single(entry, message, data, settings, header)
    elif entry.inputs is Inputs.PAIR:
        verdict = _assess_pair(entry, message, data, settings, header)
    elif entry.inputs is Inputs.PAIR_AND_TEXT:
        verdict = _assess_pair_and_text(entry, message, data, settings, lang, header)
    elif entry.inputs in (Inputs.SEVERAL, Inputs.SEVERAL_AND_TEXT):
        verdict = _assess_several(entry, message, data, settings, lang, header)
    else:
        verdict = _assess_photo_and_text(entry, message, data, settings, lang, header)
    return _once_per_album(message, data, verdict)


async def assess_message(
    mode: str,
    message: Message,
    data: dict[str, Any],
    settings: Settings,
    lang: str,
    bot: Bot,
    backend: str = "local",
) -> Assessment:
    """:func:`assess`, with the header of an image document read first (through the Bot
    API), so that what the charge depends on is known before it. Only a document that
    passed the cheap checks (an image MIME type, within the byte limit) in a mode that
    takes images is fetched, and only until its header is readable; photos never."""
    header: ImageInfo | None = None
    takes_photos = catalogue.entry(mode).photos > 0
    if takes_photos and message.document is not None and not _album_done(message, data):
        image = image_of(message, settings)
        if isinstance(image, ImageRef):
            found = await read_header(bot, image.file_id, settings)
            if isinstance(found, Answer):
                return found
            header = found
    return assess(mode, message, data, settings, lang, header, backend)


def parse_rub_amount(text: str | None, *, minimum: int, maximum: int) -> int | Answer:
    """A custom top-up amount in whole rubles, or the reason it is refused.

    Accepted: ASCII digits, optionally grouped by thousands with a space ("1 000"), and
    optionally followed by a ruble sign or word ("100₽", "100 ₽", "100 руб", "100 р.",
    "100 rub") — people type those, and the meaning is unambiguous. Refused: fractions
    ("10.5", "10,5"), signs ("-5", "+5"), exponents ("1e9"), non-ASCII digits ("١٠٠"),
    anything else, and amounts outside [minimum, maximum].
    """
    if text is None:
        return Answer("bot-topup-amount-not-number", {"min": minimum, "max": maximum})
    value = text.strip().lower()
    value = _CURRENCY_SUFFIX.sub("", value).strip()
    if _FRACTION.fullmatch(value):
        return Answer("bot-topup-amount-fraction", {"min": minimum, "max": maximum})
    if _NEGATIVE.fullmatch(value):
        return Answer("bot-topup-amount-too-small", {"min": minimum, "max": maximum})
    if not _WHOLE.fullmatch(value):
        return Answer("bot-topup-amount-not-number", {"min": minimum, "max": maximum})
    digits = _GROUP_SEPARATORS.sub("", value)
    if len(digits) > 12:  # a 30-digit number: too big, without building a huge int
        return Answer("bot-topup-amount-too-large", {"min": minimum, "max": maximum})
    amount = int(digits)
    if amount < minimum:
        return Answer("bot-topup-amount-too-small", {"min": minimum, "max": maximum})
    if amount > maximum:
        return Answer("bot-topup-amount-too-large", {"min": minimum, "max": maximum})
    return amount


def parse_email(text: str | None) -> str | None:
    """A plausible e-mail for the receipt (YooKassa checks it further), or None."""
    if text is None:
        return None
    value = text.strip()
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        return None
    return value
