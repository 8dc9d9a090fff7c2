"""The lossless file of a result, kept for its "📎 Файл без сжатия" button.

The result reaches the chat as ONE message (the "queued" message edited into the photo):
every message sent or edited is Telegram capacity (about 30 a second for the whole bot), so
the uncompressed copy is sent only when the user asks for it. The worker keeps the bytes
here under the result message (bot, chat, message: Telegram's identity, not a database id)
for ``RESULT_FILE_KEEP_SECONDS``; the bot sends them on the tap and then keeps only
Telegram's file id, so another tap re-sends without an upload. Redis only helps: a file no
longer kept is said so.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

PREFIX = "medialab:result-file:"
SENDING_SECONDS = 60  # one tap's upload at a time; a second tap meanwhile is told to wait


def key(bot_id: int, chat_id: int, message_id: int) -> str:
    return f"{PREFIX}{bot_id}:{chat_id}:{message_id}"


def keep(
    redis: Redis,
    bot_id: int,
    chat_id: int,
    message_id: int,
    data: bytes,
    filename: str,
    *,
    seconds: int,
) -> None:
    """Keep a result's bytes for its button (the worker, before the result is shown)."""
    name = key(bot_id, chat_id, message_id)
    with redis.pipeline() as pipe:
        pipe.hset(name, mapping={"data": data, "filename": filename})
        pipe.expire(name, seconds)
        pipe.execute()


def forget(redis: Redis, bot_id: int, chat_id: int, message_id: int) -> None:
    redis.delete(key(bot_id, chat_id, message_id))


@dataclass(frozen=True)
class Kept:
    filename: str
    data: bytes | None  # the bytes, until Telegram has the file
    file_id: str | None  # Telegram's, once sent


async def load(redis: AsyncRedis, bot_id: int, chat_id: int, message_id: int) -> Kept | None:
    values = await redis.hgetall(key(bot_id, chat_id, message_id))
    if not values or (b"data" not in values and b"file_id" not in values):
        return None
    file_id = values.get(b"file_id")
    return Kept(
        filename=values.get(b"filename", b"result").decode(),
        data=values.get(b"data"),
        file_id=file_id.decode() if file_id else None,
    )


async def start_sending(redis: AsyncRedis, bot_id: int, chat_id: int, message_id: int) -> bool:
    """Whether this tap may send (no other send of this file under way)."""
    lock = key(bot_id, chat_id, message_id) + ":sending"
    return bool(await redis.set(lock, b"1", nx=True, ex=SENDING_SECONDS))


async def sent(
    redis: AsyncRedis, bot_id: int, chat_id: int, message_id: int, file_id: str | None
) -> None:
    """The file is in the chat: keep Telegram's file id instead of the bytes."""
    name = key(bot_id, chat_id, message_id)
    async with redis.pipeline(transaction=True) as pipe:
        if file_id:
            pipe.hset(name, "file_id", file_id)
            pipe.hdel(name, "data")
        pipe.delete(name + ":sending")
        await pipe.execute()


async def done_sending(redis: AsyncRedis, bot_id: int, chat_id: int, message_id: int) -> None:
    await redis.delete(key(bot_id, chat_id, message_id) + ":sending")
