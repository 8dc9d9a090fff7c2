"""The operation catalogue is the one place an operation is declared: every entry has a
price, its texts in both languages, a runner, a menu button and a way through the bot's
handlers; and a new operation needs only its entry, its implementation and its texts (a
toy one is added here and goes from the menu button to the delivered result)."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiogram.filters import StateFilter
from PIL import Image, ImageOps
from sqlalchemy import select

from billing import accounts, prices
from billing.models import Operation
from billing.prices import OperationType, Price, price_for
from bot import inputs
from bot.callbacks import Menu
from bot.inputs import Answer, Ready, assess
from bot.keyboards import main_menu
from bot.routers.modes import create_router, queue_operation
from bot.states import mode_state
from imaging._image import MediaResult
from jobqueue import catalogue
from jobqueue.catalogue import Entry, Inputs
from sandbox._common import ServerHandle
from tests.bot.conftest import StartBot, wait_until
from tests.bot.test_inputs import _message
from tests.conftest import make_settings
from texts import i18n
from workers import operations, run, runtime

WITH_FAL = make_settings("sqlite://", FAL_KEY="fal-test-key")


@pytest.mark.parametrize("entry", catalogue.entries(), ids=lambda e: e.type.value)
def test_every_entry_has_a_price_texts_a_runner_a_button_and_a_handler_path(
    entry: Entry,
) -> None:
    name = entry.type.value
    # The price: the money half of the entry.
    assert name in prices.PRICES
    assert price_for(name, WITH_FAL) in (0, prices.PRICES[name].units * WITH_FAL.price_kopecks)
    # Its texts, in each language itself (t() would fall back to Russian).
    for language in ("ru", "en"):
        missing = set(entry.text_keys()) - i18n.keys(language)
        assert not missing, (language, missing)
    # A runner in the worker.
    assert name in operations.LOCAL or name in operations.REMOTE
    assert not (name in operations.LOCAL and name in operations.REMOTE)
    # Its checks exist.
    if entry.text_check is not None:
        assert entry.text_check in inputs.TEXT_CHECKS
    assert all(check in inputs.PHOTO_CHECKS for check in entry.photo_checks)
    # A menu button that opens its mode.
    buttons = {
        Menu.unpack(button.callback_data).action
        for row in main_menu("ru", WITH_FAL).inline_keyboard
        for button in row
        if button.callback_data
    }
    assert name in buttons
    # A handler path: the mode's state reaches the one billed handler, and a complete
    # request in the mode is assessed Ready.
    router = create_router()
    [billed] = [h for h in router.message.handlers if h.callback is queue_operation]
    [state_filter] = [f.callback for f in billed.filters if isinstance(f.callback, StateFilter)]
    assert mode_state(name) in state_filter.states
    assert isinstance(_assess_complete(entry), Ready)


def test_the_two_halves_of_the_catalogue_name_the_same_types() -> None:
    assert list(prices.PRICES) == list(catalogue.CATALOGUE)


def _assess_complete(entry: Entry) -> object:
    """The verdict on a whole request for the entry (a pair: its second photo)."""
    name = entry.type.value
    text = {"prompt": "a ginger cat", "instruction": "ч/б", "caption": "Привет"}
    if entry.inputs is Inputs.TEXT:
        message = _message(text=text[entry.text_check or "prompt"])
    elif entry.inputs is Inputs.PHOTO_AND_TEXT:
        message = _message(photo=(800, 600, 10), caption=text[entry.text_check or "caption"])
    elif entry.inputs is Inputs.PAIR:
        first = assess(name, _message(1, photo=(800, 600, 10)), {}, WITH_FAL, "ru")
        assert isinstance(first, Answer) and first.remember
        return assess(name, _message(2, photo=(800, 600, 10)), first.remember, WITH_FAL, "ru")
    elif entry.inputs is Inputs.SEVERAL:  # two photos, then "✅ Готово"
        data: dict = {}
        for n in (1, 2):
            got = assess(name, _message(n, photo=(800, 600, 10)), data, WITH_FAL, "ru")
            assert isinstance(got, Answer) and got.remember
            data = {**data, **got.remember}
        return assess(name, _message(3, text="✅ Готово"), data, WITH_FAL, "ru")
    else:
        message = _message(photo=(800, 600, 10))
    return assess(name, message, {}, WITH_FAL, "ru")


# --- a toy operation, added as the README says --------------------------------------

TOY_TEXTS = {
    "ru": """
bot-btn-mirror = 🪞 Зеркало
bot-help-mirror = 🪞 <b>Зеркало</b> — фото, отражённое слева направо.
bot-mode-mirror = 🪞 Пришлите фото — я его отражу.
bot-op-queued-mirror = ⏳ В очереди: отражаю фото.
media-result-mirror = 🪞 Отражено: { $width }×{ $height }.
""",
    "en": """
bot-btn-mirror = 🪞 Mirror
bot-help-mirror = 🪞 <b>Mirror</b> — the photo, flipped left to right.
bot-mode-mirror = 🪞 Send a photo — I'll mirror it.
bot-op-queued-mirror = ⏳ Queued: mirroring the photo.
media-result-mirror = 🪞 Mirrored: { $width }×{ $height }.
""",
}


def mirror(photo: bytes) -> MediaResult:
    """The toy's implementation (what would be imaging/mirror.py)."""
    image = ImageOps.mirror(Image.open(io.BytesIO(photo)).convert("RGB"))
    out = io.BytesIO()
    image.save(out, "PNG")
    return MediaResult(
        data=out.getvalue(),
        format="png",
        width=image.width,
        height=image.height,
        op="mirror",
        params={"width": image.width, "height": image.height},
    )


@pytest.fixture
def toy_operation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """The toy's entry (its price and its description), its runner and its texts."""
    monkeypatch.setitem(prices.PRICES, "mirror", Price(units=2))
    toy = Entry(OperationType("mirror"), Inputs.PHOTO, min_side=16)
    monkeypatch.setitem(catalogue.CATALOGUE, "mirror", toy)
    monkeypatch.setitem(
        operations.LOCAL, "mirror", lambda photos, text, settings: mirror(photos[0])
    )
    locales = tmp_path / "locales"
    shutil.copytree(i18n.LOCALES_DIR, locales)
    for language, ftl in TOY_TEXTS.items():
        (locales / language / "mirror.ftl").write_text(ftl, encoding="utf-8")
    monkeypatch.setattr(i18n, "LOCALES_DIR", locales)
    i18n._bundle.cache_clear()
    yield "mirror"
    monkeypatch.undo()
    i18n._bundle.cache_clear()


def test_the_toy_entry_is_complete(toy_operation: str) -> None:
    [toy] = [e for e in catalogue.entries() if e.type == toy_operation]
    test_every_entry_has_a_price_texts_a_runner_a_button_and_a_handler_path(toy)
    tiny = assess(toy_operation, _message(photo=(8, 8, 10)), {}, WITH_FAL, "en")
    assert isinstance(tiny, Answer) and tiny.key == "bot-input-too-small"


async def test_a_new_operation_goes_from_its_button_to_its_result(
    toy_operation: str,
    start_bot: StartBot,
    tg,
    tg_server: ServerHandle,
    photo: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The worker's part below reaches the emulator over HTTP.
    app = await start_bot(FREE_OPERATIONS_COUNT=0, TELEGRAM_API_URL=tg_server.url)
    async with app.sessionmaker() as session:
        account, _ = await accounts.get_or_create_user(
            session, telegram_id=8101, free_operations=0
        )
        await accounts.adjust(session, user_id=account.id, amount=5000, reason="test")
        await session.commit()
    user = tg.user(8101)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="🪞 Зеркало")
    # The price is the entry's units: two of PRICE_PER_OPERATION.
    await user.wait_for_text("Цена: 20 ₽")
    sent = await user.send_photo(photo)
    await user.wait_for_text("В очереди: отражаю фото")
    [operation] = await app.operations()
    assert (operation.type, operation.price, operation.funding) == ("mirror", 2000, "balance")
    assert operation.input_ref["file_ids"] == [sent.file_id]

    # Queued for the worker ("В очереди" is sent before the job is queued, on purpose).
    async def queued() -> bool:
        return bool(app.job_ids())

    await wait_until(queued)

    # The worker's dispatch, in this process: the job runs the toy's runner.
    monkeypatch.setattr(runtime, "_settings", app.settings)
    outcome = await run.run_operation(
        operation.id, operation.input_ref["file_ids"], operation.key_token
    )
    assert outcome["outcome"] == "succeeded", outcome
    result = await user.wait_for(lambda m: bool(m.photo) and "Отражено" in m.text)
    assert "Списано 20 ₽" in result.text

    async def done() -> bool:
        async with app.sessionmaker() as session:
            row = await session.scalar(select(Operation).where(Operation.id == operation.id))
            return row is not None and row.status == "succeeded"

    await wait_until(done)
