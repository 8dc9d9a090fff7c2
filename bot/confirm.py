"""A charge waiting for the user's "Подтвердить": its input, kept in Redis with an expiry.

When the user turned "confirm before a charge" on (/settings, or the operator's
CONFIRM_CHARGES_DEFAULT), the billed middleware does not charge a complete request: it keeps
the request here under a random token (what the operation needs: type, the Telegram update's
key, the inputs, the language) with the quote the user was shown, and asks. Nothing is
written to the database until the user confirms (``bot.billed.confirm_charge``).

* Expired (``CONFIRM_TTL_SECONDS``) or canceled: the key is gone, a late tap charges nothing.
* The quote is part of what is kept: a confirmation is charged only if the quote read again
  under the user's lock is the same promise (``billing.wallet.Quote.key``).
* The Telegram update's key is the operation's request key, as without confirmation: a
  double tap, or a tap on two replicas, charges once (the unique key), and a re-delivered
  update asks once (``asked`` below).

Redis keys carry the Telegram user's id and a random token, never a database id.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

CONFIRM_TTL_SECONDS = 15 * 60
PREFIX = "confirm"


@dataclass(frozen=True)
class Pending:
    token: str
    telegram_id: int
    op_type: str
    request_key: str
    chat_id: int
    lang: str
    quote_key: list[Any]
    file_ids: tuple[str, ...] = ()
    text: str | None = None
    notes: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Pending:
        value = json.loads(raw)
        notes = tuple(
            (str(key), tuple((str(k), v) for k, v in args)) for key, args in value["notes"]
        )
        return cls(
            token=value["token"],
            telegram_id=int(value["telegram_id"]),
            op_type=value["op_type"],
            request_key=value["request_key"],
            chat_id=int(value["chat_id"]),
            lang=value["lang"],
            quote_key=list(value["quote_key"]),
            file_ids=tuple(value["file_ids"]),
            text=value["text"],
            notes=notes,
        )


def new_token() -> str:
    return secrets.token_hex(8)


def _key(telegram_id: int, token: str) -> str:
    return f"{PREFIX}:{telegram_id}:{token}"


def _asked_key(request_key: str) -> str:
    return f"{PREFIX}:asked:{request_key}"


def quote_key(key: tuple[Any, ...]) -> list[Any]:
    """A quote's key as JSON keeps it (a list), for comparing with one read again."""
    return json.loads(json.dumps(list(key)))


async def keep(redis: Redis, pending: Pending) -> bool:
    """Keep a request until it is confirmed or expires. False when this Telegram update was
    already asked about (a re-delivery): ask nothing again."""
    first = await redis.set(
        _asked_key(pending.request_key), pending.token, nx=True, ex=CONFIRM_TTL_SECONDS
    )
    if not first:
        return False
    await redis.set(
        _key(pending.telegram_id, pending.token), pending.to_json(), ex=CONFIRM_TTL_SECONDS
    )
    return True


async def load(redis: Redis, telegram_id: int, token: str) -> Pending | None:
    """The request kept under ``token`` for this user (None: expired, canceled, or not
    theirs: the key carries the Telegram id of whoever presses)."""
    raw = await redis.get(_key(telegram_id, token))
    return Pending.from_json(raw) if raw is not None else None


async def requote(redis: Redis, pending: Pending, key: tuple[Any, ...]) -> Pending:
    """The user is asked again with a new quote: keep it, in the time that is left."""
    updated = Pending(**{**asdict(pending), "quote_key": quote_key(key)})
    await redis.set(
        _key(pending.telegram_id, pending.token), updated.to_json(), xx=True, keepttl=True
    )
    return updated


async def drop(redis: Redis, pending: Pending) -> bool:
    """Forget it (canceled, or nothing can pay for it any more). True if it was still kept."""
    return bool(await redis.delete(_key(pending.telegram_id, pending.token)))
