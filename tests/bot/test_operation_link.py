"""/start op_<id>, the Mini App's link back to an operation: the bot replies to the message
the result was delivered as; that message gone, it sends the result again by its file id;
another user's operation (or one without a result) gets a plain refusal."""

from __future__ import annotations

from aiogram.types import BufferedInputFile
from sqlalchemy import select

from billing import operations
from billing.models import User
from tests.bot.conftest import RunningBot, StartBot


async def _delivered(running: RunningBot, telegram_id: int, photo: bytes) -> tuple[int, int, str]:
    """An operation of the user, charged and delivered as a photo in their chat, as the worker
    records it: (operation id, the result's message id, its file id)."""
    sent = await running.bot.send_photo(telegram_id, BufferedInputFile(photo, "result.jpg"))
    assert sent.photo
    file_id = sent.photo[-1].file_id
    async with running.sessionmaker() as session:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
        charged = await operations.charge(
            session, running.settings, user_id=user_id, op_type="upscale", chat_id=telegram_id
        )
        assert await operations.complete_operation(
            session,
            operation_id=charged.operation_id,
            result_ref={"format": "jpeg", "photo_message_id": sent.message_id, "file_id": file_id},
        )
        await session.commit()
    return charged.operation_id, sent.message_id, file_id


async def test_the_link_replies_to_the_result_or_sends_it_again(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    running = await start_bot()
    user = tg.user(6101)
    await user.send_text("/start")
    await user.wait_for_text("Привет")
    operation_id, message_id, file_id = await _delivered(running, 6101, photo)

    await user.send_text(f"/start op_{operation_id}")
    said = await user.wait_for_text(f"Результат операции №{operation_id}")
    assert said.raw["reply_to_message"]["message_id"] == message_id
    assert not said.photo  # a pointer to the result, not a second copy

    # The result's message deleted: the file again, by its id (no upload).
    await running.bot.delete_message(6101, message_id)
    await user.send_text(f"/start op_{operation_id}")
    again = await user.wait_for_photo()
    assert again.file_id == file_id and f"№{operation_id}" in again.text


async def test_another_users_operation_is_refused(start_bot: StartBot, tg, photo: bytes) -> None:
    running = await start_bot()
    owner, other = tg.user(6102), tg.user(6103, language="en")
    for someone in (owner, other):
        await someone.send_text("/start")
        await someone.wait_for_message()
    operation_id, _, _ = await _delivered(running, 6102, photo)
    await other.send_text(f"/start op_{operation_id}")
    refused = await other.wait_for_text("no such operation")
    assert refused.text == "You have no such operation with a result."
    assert not refused.photo and "reply_to_message" not in refused.raw
    await other.send_text("/start op_99999999")
    await other.wait_for_text("no such operation")
    # An ordinary /start with another payload is the greeting, as before.
    await other.send_text("/start hello")
    await other.wait_for_text("Hi, User 6103")
