"""Each mode asks for what it needs and checks it before any charge; a bad input gets a clear
answer, no charge, and the mode stays open."""

from __future__ import annotations

import io

from PIL import Image
from rq.job import Job

from billing.models import Funding
from jobqueue.queue import HOSTED
from tests.bot.conftest import StartBot, wait_until


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


async def _open_mode(user, label: str, expected: str):  # type: ignore[no-untyped-def]
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text=label)
    return await user.wait_for_text(expected)


async def test_edit_with_an_unknown_instruction_lists_the_commands_and_charges_nothing(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8001)
    await _open_mode(user, "✏️ Редактировать", "подписью-командой")
    await user.send_photo(photo, caption="сделай красиво")
    reply = await user.wait_for_text("Не понял")
    assert "сделай красиво" in reply.text and "•" in reply.text
    assert await app.operations() == []
    # The photo is kept: a corrected instruction alone is enough.
    await user.send_text("ч/б, яркость +20")
    queued = await user.wait_for_text("В очереди")
    assert "осталось 3 из 4" in queued.text
    [operation] = await app.operations()
    assert operation.type == "edit"
    assert operation.input_ref["text"] == "ч/б, яркость +20"
    assert len(operation.input_ref["file_ids"]) == 1


async def test_edit_with_a_captioned_photo_is_queued_at_once(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8002)
    await _open_mode(user, "✏️ Редактировать", "подписью-командой")
    sent = await user.send_photo(photo, caption="повернуть вправо")
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert operation.input_ref["file_ids"] == [sent.file_id]
    assert operation.request_key == f"{user.chat_id}:{sent.message_id}"


async def test_edit_text_before_any_photo_asks_for_the_photo(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user = tg.user(8003)
    await _open_mode(user, "✏️ Редактировать", "подписью-командой")
    await user.send_text("ч/б")
    await user.wait_for_text("Сначала пришлите фото")
    assert await app.operations() == []


async def test_merge_takes_two_photos_sent_as_an_album_in_order(
    start_bot: StartBot, tg, photo: bytes, photo2: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8004)
    await _open_mode(user, "🔗 Объединить", "от 2 до 4 фотографий")
    first, second = await user.send_album([photo, photo2])
    await user.wait_for_text("Фото из альбома добавлены")
    assert await app.operations() == []  # more may come: "✅ Готово" says they are all here
    done = await user.send_text("✅ Готово")
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert operation.type == "merge"
    assert operation.input_ref["file_ids"] == [first.file_id, second.file_id]
    assert operation.request_key == f"{user.chat_id}:{done.message_id}"


async def test_an_album_of_three_in_merge_makes_one_operation_of_three(
    start_bot: StartBot, tg, photo: bytes, photo2: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8005)
    await _open_mode(user, "🔗 Объединить", "от 2 до 4 фотографий")
    before = user.mark  # the answer may come between the album's photos
    album = await user.send_album([photo, photo2, photo])
    await user.wait_for_text("Фото из альбома добавлены", since=before)
    # The album's last photo says nothing more: wait until every update handed over is
    # handled.
    assert app.feed is not None
    await app.feed.idle()
    await user.send_text("✅ Готово")
    await user.wait_for_text("В очереди", since=before)
    [operation] = await app.operations()
    assert operation.input_ref["file_ids"] == [m.file_id for m in album]
    answers = [m for m in await user.bot_messages() if "из альбома добавлены" in m.text]
    assert len(answers) == 1


async def test_face_swap_takes_two_photos_one_after_the_other(
    start_bot: StartBot, tg, photo: bytes, photo2: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8006)
    await _open_mode(user, "🔄 Заменить лицо", "откуда взять лицо")
    first = await user.send_photo(photo)
    await user.wait_for_text("Теперь пришлите второе")
    assert await app.operations() == []
    await user.send_text("а что дальше?")
    await user.wait_for_text("Теперь пришлите второе")
    second = await user.send_photo(photo2)
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert operation.type == "face_swap"
    assert operation.input_ref["file_ids"] == [first.file_id, second.file_id]


async def test_a_document_that_is_an_image_is_accepted(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8007)
    await _open_mode(user, "✨ Ретушь", "портрет")
    sent = await user.send_document(photo, "portrait.jpg", mime_type="image/jpeg")
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert operation.input_ref["file_ids"] == [sent.file_id]


async def test_a_document_that_is_not_an_image_is_refused_and_the_mode_stays(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8008)
    await _open_mode(user, "✨ Ретушь", "портрет")
    await user.send_document(b"%PDF-1.4 not a picture", "report.pdf", mime_type="application/pdf")
    await user.wait_for_text("не похоже на картинку")
    await user.send_text("привет")
    await user.wait_for_text("нужна фотография")
    assert await app.operations() == []
    await user.send_photo(photo)  # the mode is still open
    await user.wait_for_text("В очереди")
    assert len(await app.operations()) == 1


async def test_an_oversized_file_is_refused_without_a_charge(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(MAX_INPUT_FILE_BYTES=len(photo) - 1)
    user = tg.user(8009)
    await _open_mode(user, "✨ Ретушь", "портрет")
    await user.send_document(photo, "big.jpg", mime_type="image/jpeg")
    await user.wait_for_text("слишком большой")
    assert await app.operations() == []


async def test_upscale_checks_the_output_size_before_charging(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(MAX_OUTPUT_PIXELS=200 * 200)
    user = tg.user(8010)
    await _open_mode(user, "⬆️ Улучшить", "увеличу в 2 раза")
    await user.send_photo(photo)
    reply = await user.wait_for_text("слишком большое для увеличения")
    assert "×" in reply.text
    assert await app.operations() == []


async def test_upscale_reads_an_image_documents_size_before_charging(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(MAX_OUTPUT_PIXELS=200 * 200)
    user = tg.user(8016)
    await _open_mode(user, "⬆️ Улучшить", "увеличу в 2 раза")
    ledger = await app.ledger_count()
    await user.send_document(photo, "astronaut.jpg", mime_type="image/jpeg")
    reply = await user.wait_for_text("слишком большое для увеличения")
    assert "512×512" in reply.text
    assert await app.operations() == []
    assert await app.ledger_count() == ledger
    small = await user.send_document(_png(80, 64), "small.png", mime_type="image/png")
    await user.wait_for_text("В очереди")  # the mode stayed open
    [operation] = await app.operations()
    assert operation.input_ref["file_ids"] == [small.file_id]


async def test_a_document_whose_bytes_are_no_image_is_refused_before_the_charge(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8017)
    await _open_mode(user, "⬆️ Улучшить", "увеличу в 2 раза")
    ledger = await app.ledger_count()
    fake = b"\xff\xd8\xff\xe0 this is not really a JPEG" + b"\x00" * 200_000
    await user.send_document(fake, "holiday.jpg", mime_type="image/jpeg")
    await user.wait_for_text("Не получается открыть этот файл как картинку")
    await _open_mode(user, "🔄 Заменить лицо", "откуда взять лицо")
    await user.send_document(b"GIF89a broken", "face.gif", mime_type="image/gif")
    await user.wait_for_text("Не получается открыть")
    assert await app.operations() == []
    assert await app.ledger_count() == ledger
    # The broken file was not taken as the first photo of the pair.
    await user.send_photo(photo)
    await user.wait_for_text("Теперь пришлите второе")
    await user.send_document(photo, "second.jpg", mime_type="image/jpeg")
    await user.wait_for_text("В очереди")
    assert len(await app.operations()) == 1


async def test_telegram_failing_while_the_header_is_read_charges_nothing(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8018)
    await _open_mode(user, "✨ Ретушь", "портрет")
    ledger = await app.ledger_count()
    await tg.fail_next(1, kind="500", methods=["getFile"])
    await user.send_document(photo, "portrait.jpg", mime_type="image/jpeg")
    await user.wait_for_text("Не получилось получить файл из Telegram")
    assert await app.operations() == []
    assert await app.ledger_count() == ledger
    await user.send_document(photo, "portrait.jpg", mime_type="image/jpeg")  # again
    await user.wait_for_text("В очереди")
    assert len(await app.operations()) == 1


async def test_the_bot_downloads_nothing_for_a_photo(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8019)
    await _open_mode(user, "⬆️ Улучшить", "увеличу в 2 раза")
    await user.send_photo(photo)
    await user.wait_for_text("В очереди")
    assert len(await app.operations()) == 1
    assert await tg.calls("getFile") == []


async def test_add_text_is_free_and_takes_the_photo_then_the_text(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8011)
    prompt = await _open_mode(user, "📝 Добавить текст", "напишу этот текст")
    assert "Бесплатно" in prompt.text
    await user.send_photo(photo)
    await user.wait_for_text("Теперь пришлите текст")
    await user.send_text("🙂🙂")
    await user.wait_for_text("Текст пустой")
    await user.send_text("x" * 5000)
    await user.wait_for_text("Слишком длинно")
    assert await app.operations() == []
    await user.send_text("С днём рождения!")
    queued = await user.wait_for_text("В очереди")
    assert "Бесплатно" in queued.text
    [operation] = await app.operations()
    assert operation.funding == Funding.NONE and operation.price == 0
    assert operation.input_ref["text"] == "С днём рождения!"
    account = await app.user(8011)
    assert account is not None and account.free_operations_left == 4


async def test_generate_is_offered_only_when_fal_is_configured(start_bot: StartBot, tg) -> None:
    app = await start_bot(FAL_KEY="fal-test-key")
    user = tg.user(8012)
    await _open_mode(user, "🎨 Создать", "Опишите картинку")
    await user.send_text("x" * 1001)
    await user.wait_for_text("Слишком длинно")
    assert await app.operations() == []
    await user.send_text("кот-астронавт, акварель")
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert operation.type == "generate"
    assert operation.input_ref == {
        "file_ids": [],
        "text": "кот-астронавт, акварель",
        "language": "ru",
        # The model the prompt named, for the job (billing.ai_models).
        "model": {
            "backend": "fal",
            "model_id": "fal-ai/flux/schnell",
            "params": {"image_size": "square_hd"},
        },
    }

    # A hosted model's job: the worker submits it in its own process, without a fork.
    async def queued() -> bool:  # "В очереди" is sent before the job is queued, on purpose
        return bool(app.job_ids())

    await wait_until(queued)
    [job_id] = app.job_ids()
    assert job_id == f"op-{operation.id}-{operation.key_token}"
    job = Job.fetch(job_id, connection=app.queue.connection)
    assert job.meta[HOSTED] is True


async def test_an_unknown_command_in_generate_is_refused_without_a_charge(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(FAL_KEY="fal-test-key")
    user = tg.user(8015)
    await _open_mode(user, "🎨 Создать", "Опишите картинку")
    await user.send_text("/imagine кот-астронавт")
    reply = await user.wait_for_text("такой команды у меня нет")
    assert "/imagine" in reply.text
    assert await app.operations() == []
    account = await app.user(8015)
    assert account is None or account.free_operations_left == 4
    await user.send_text("кот-астронавт")  # the mode is still open
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert operation.input_ref["text"] == "кот-астронавт"


async def test_generate_button_forged_without_fal_is_refused(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user = tg.user(8013)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    query = await user.press(menu, "menu:generate", forge=True)
    answer = await user.wait_for_answer(query)
    assert "недоступен" in answer["text"]
    await user.send_text("кот")
    await user.wait_for_text("сначала выберите режим")
    assert await app.operations() == []


async def test_help_explains_each_mode_and_its_price(start_bot: StartBot, tg) -> None:
    await start_bot()
    user = tg.user(8014)
    await user.send_text("/help")
    help_message = await user.wait_for_text("Что я умею")
    for word in (
        "Редактировать",
        "Объединить",
        "Заменить лицо",
        "Ретушь",
        "Улучшить",
        "Добавить текст",
        "10 ₽",
        "бесплатно",
    ):
        assert word in help_message.text
    # Not offered without FAL_KEY, and said so (never silently).
    assert "картинка по текстовому описанию" not in help_message.text
    assert "Сейчас недоступно: 🎨 Создать (модель не подключена)" in help_message.text
