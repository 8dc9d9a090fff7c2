"""Telegram Bot API emulator.

A local aiohttp server that speaks the Bot API (``/bot{token}/{method}``, ``/file/bot...``)
closely enough for aiogram's real ``AiohttpSession`` pointed at it with
``TelegramAPIServer.from_base(url)``, plus a control API under ``/_emu/`` that lets a test, a
load script or a browser page act as Telegram users and inspect what the bot did.

Run it:  ``python -m sandbox.telegram --host 127.0.0.1 --port 8081``

All state lives in memory on the server's event loop (image work runs in threads and is
merged back on the loop), so concurrent users need no locks. See ``sandbox/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import io
import json
import logging
import math
import mimetypes
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import (
    BodyPartReader,
    ClientError,
    ClientResponse,
    ClientSession,
    ClientTimeout,
    MultipartReader,
    web,
)

from sandbox._common import Notifier, drop_connection, dumps, json_response
from sandbox._tg_text import EntityParseError, auto_entities, format_text, u16len

log = logging.getLogger("sandbox.telegram")

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # getFile limit of the public Bot API
MAX_UPLOAD_SIZE = 50 * 1024 * 1024  # multipart upload limit for bots
MAX_PHOTO_SIZE = 10 * 1024 * 1024
MAX_TEXT = 4096
MAX_CAPTION = 1024
PHOTO_LIMITS = (90, 320, 800, 1280)  # thumbnail sides Telegram generates
PHOTO_MAX_SIDE = 2560
TOKEN_RE = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{1,100}$")
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
DEFAULT_UPDATE_TYPES = None  # None = everything except the opt-in ones
OPT_IN_UPDATE_TYPES = {"chat_member", "message_reaction", "message_reaction_count"}

INT_PARAMS = {
    "message_id",
    "offset",
    "limit",
    "timeout",
    "cache_time",
    "max_connections",
    "reply_to_message_id",
    "message_thread_id",
    "duration",
    "width",
    "height",
    "user_id",
    "from_chat_id",
}
BOOL_PARAMS = {
    "ok",
    "disable_notification",
    "protect_content",
    "show_alert",
    "drop_pending_updates",
    "has_spoiler",
    "disable_content_type_detection",
    "allow_sending_without_reply",
    "disable_web_page_preview",
    "show_caption_above_media",
    "allow_paid_broadcast",
}
JSON_PARAMS = {
    "prices",
    "reply_markup",
    "entities",
    "caption_entities",
    "allowed_updates",
    "commands",
    "scope",
    "media",
    "reply_parameters",
    "link_preview_options",
    "menu_button",
}


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad_request(message: str) -> ApiError:
    return ApiError(400, f"Bad Request: {message}")


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra

    def payload(self) -> dict[str, Any]:
        return {"ok": False, "error": str(self), **self.extra}


@dataclass
class Upload:
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str  # photo | document
    file_path: str
    size: int
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    data: bytes | None = None
    disk_path: Path | None = None

    def photo_size(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "width": self.width,
            "height": self.height,
        }

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.file_name:
            doc["file_name"] = self.file_name
        if self.mime_type:
            doc["mime_type"] = self.mime_type
        doc["file_size"] = self.size
        return doc


@dataclass
class MessageRecord:
    message: dict[str, Any]
    from_bot: bool
    version: int
    deleted: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)
    raw_text: str | None = None
    parse_mode: str | None = None
    reply_keyboard: dict | None = None
    update_id: int | None = None
    # An invoice's payment as the payer's app shows it (its ⭐ Pay button becomes a receipt):
    # {"charge_id", "refunded"}; None until paid.
    invoice_state: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        view = dict(self.message)
        view.update(
            deleted=self.deleted,
            from_bot=self.from_bot,
            version=self.version,
            edits=self.edits,
            raw_text=self.raw_text,
            parse_mode=self.parse_mode,
        )
        if self.reply_keyboard is not None:
            view["reply_keyboard"] = self.reply_keyboard
        if self.update_id is not None:
            view["update_id"] = self.update_id
        if self.invoice_state is not None:
            view["invoice_state"] = dict(self.invoice_state)
        return view


@dataclass
class Chat:
    id: int
    info: dict[str, Any]
    messages: dict[int, MessageRecord] = field(default_factory=dict)
    next_message_id: int = 1
    version: int = 0
    callback_answers: list[dict[str, Any]] = field(default_factory=list)
    chat_actions: list[dict[str, Any]] = field(default_factory=list)
    reply_keyboard: dict | None = None
    notifier: Notifier = field(default_factory=Notifier)

    def bump(self) -> int:
        self.version += 1
        self.notifier.notify()
        return self.version

    def view(self) -> dict[str, Any]:
        return {
            "chat": self.info,
            "version": self.version,
            "messages": [
                r.view()
                for r in sorted(self.messages.values(), key=lambda r: r.message["message_id"])
            ],
            "callback_answers": self.callback_answers,
            "chat_actions": self.chat_actions,
            "reply_keyboard": self.reply_keyboard,
        }


@dataclass
class QueuedUpdate:
    update: dict[str, Any]
    forced: bool = False  # a re-delivery: returned once even if below the offset
    in_flight: bool = False
    attempts: int = 0


@dataclass
class Fault:
    # "lost": the call is done, then the connection drops before its answer (a retry of a
    # call that changed something meets the change).
    kind: str  # "429" | "404" | "500" | "502" | "delay" | "disconnect" | "lost"
    remaining: int
    # Lower-case names; None = all but getUpdates. "file" (the download ``/file/bot…``)
    # only when named: a fault meant for the API calls leaves the downloads alone.
    methods: set[str] | None = None
    retry_after: int = 1
    delay: float = 0.0
    token: str | None = None

    def matches(self, token: str, method: str) -> bool:
        if self.remaining <= 0 or (self.token and self.token != token):
            return False
        if self.methods is None:
            return method not in ("getupdates", FILE_DOWNLOAD)
        return method in self.methods


MEDIA_KEYS = ("photo", "document")  # the media the sandbox keeps in a message
FILE_DOWNLOAD = "file"  # the name faults give the file download

DEFAULT_STARS = 1000  # an emulated user's ⭐ balance until a test sets it
PRE_CHECKOUT_TIMEOUT = 10.0  # Telegram's: a pre-checkout not answered by then fails
INVOICE_LINK_PREFIX = "https://t.me/$"  # createInvoiceLink: the link, then its slug


FLOOD_METHODS = {
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "editMessageText",
    "editMessageCaption",
    "editMessageMedia",
    "editMessageReplyMarkup",
}


@dataclass
class FloodLimits:
    """At most ``per_chat`` messages per chat in ``per_chat_window`` seconds and ``global_``
    per bot in ``global_window`` seconds (0 = no limit). Telegram's own guidance is about
    1 message per second per chat and 30 per second overall."""

    per_chat: int = 0
    per_chat_window: float = 1.0
    global_: int = 0
    global_window: float = 1.0


class BotState:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self.id = int(token.split(":", 1)[0]) if token else 0
        self.first_name = "Media Lab (sandbox)"
        self.username = f"sandbox_{self.id}_bot" if token else "sandbox_bot"
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, Chat] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.photo_groups: dict[str, list[StoredFile]] = {}  # any size's file_id -> sizes
        self.queue: list[QueuedUpdate] = []
        self.updates: dict[int, dict[str, Any]] = {}
        self.next_update_id = 100_000_001
        self.updates_notifier = Notifier()
        self.poll_generation = 0
        self.allowed_updates: list[str] | None = None
        self.webhook: dict[str, Any] | None = None
        self.webhook_tasks: list[asyncio.Task] = []
        self.webhook_log: list[dict[str, Any]] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}  # chat id (None: all) → button
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.blocked: set[int] = set()
        self.file_counter = 0
        self.bound = token is not None
        # Payments (Telegram Stars): each emulated user's ⭐ balance, the invoices sent
        # ((chat id, message id) → payload and price), the invoice links made (the link's
        # slug → the same), the pre-checkout queries asked and the charges made
        # (telegram_payment_charge_id → charge).
        self.stars: dict[int, int] = {}
        self.invoices: dict[tuple[int, int], dict[str, Any]] = {}
        self.invoice_links: dict[str, dict[str, Any]] = {}
        self.pre_checkouts: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}

    def stars_of(self, user_id: int) -> int:
        return self.stars.setdefault(user_id, DEFAULT_STARS)

    def bind(self, token: str) -> None:
        self.token = token
        self.id = int(token.split(":", 1)[0])
        self.username = f"sandbox_{self.id}_bot"
        self.bound = True
        for chat in self.chats.values():
            for rec in chat.messages.values():
                if rec.from_bot:
                    rec.message["from"] = self.user_json()

    def user_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def me(self) -> dict[str, Any]:
        return {
            **self.user_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def chat(self, chat_id: int) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat


def _now() -> int:
    return int(time.time())


def _new_id(prefix: str, nbytes: int = 24) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def _coerce(name: str, value: Any) -> Any:
    if name == "chat_id":
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        return value
    if name in INT_PARAMS and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise bad_request(f"invalid {name} specified") from None
    if name in BOOL_PARAMS and isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    if name in JSON_PARAMS and isinstance(value, str):
        if name == "allowed_updates" and not value.startswith("["):
            return [v for v in value.split(",") if v]
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None
    return value


class Params(dict):
    """Request parameters (coerced) and the uploaded files of one Bot API call."""

    def __init__(
        self,
        values: dict[str, Any],
        files: dict[str, Upload],
        *,
        raw: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__({k: v if k in raw else _coerce(k, v) for k, v in values.items()})
        self.files = files

    def int(self, name: str, required: bool = True) -> int | None:
        value = self.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty" if name != "chat_id" else "chat_id is empty")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"invalid {name} specified")
        return value

    def log_view(self) -> dict[str, Any]:
        view = dict(self)
        for key, up in self.files.items():
            view[f"attach://{key}"] = {
                "file_name": up.filename,
                "size": len(up.data),
                "content_type": up.content_type,
            }
        return view


CANONICAL_METHODS = [
    "getMe",
    "logOut",
    "close",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "editMessageCaption",
    "editMessageMedia",
    "deleteMessage",
    "deleteMessages",
    "answerCallbackQuery",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "getFile",
    "sendChatAction",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setChatMenuButton",
    "getChatMenuButton",
    "sendInvoice",
    "createInvoiceLink",
    "answerPreCheckoutQuery",
    "refundStarPayment",
]
METHOD_NAMES = {m.lower(): m for m in CANONICAL_METHODS}


class TelegramEmulator:
    def __init__(
        self,
        files_dir: Path | None = None,
        *,
        max_calls: int = 100_000,
        webhook_max_attempts: int = 5,
        webhook_backoff: float = 0.2,
    ) -> None:
        self.files_dir = files_dir
        self.bots: dict[str, BotState] = {}
        self.default_bot: BotState | None = None
        self.calls: deque[dict[str, Any]] = deque(maxlen=max_calls)
        self.call_seq = 0
        self.faults: list[Fault] = []
        self.closing = False
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_backoff = webhook_backoff
        self._http: ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closed = asyncio.Event()
        self.callback_seq = 0
        self.flood: FloodLimits | None = None
        self._flood_chat: dict[tuple[int, Any], deque[float]] = {}
        self._flood_global: dict[int, deque[float]] = {}
        self.receivers: dict[str, Callable[[dict[str, Any]], None]] = {}

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep that ends early when the server shuts down."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    # ------------------------------------------------------------------ bots
    def bot_for_token(self, token: str) -> BotState:
        bot = self.bots.get(token)
        if bot is None:
            if self.default_bot is not None and not self.default_bot.bound:
                bot = self.default_bot
                bot.bind(token)
            else:
                bot = BotState(token)
                if self.default_bot is None:
                    self.default_bot = bot
            self.bots[token] = bot
        return bot

    def bot_for_control(self, token: str | None) -> BotState:
        if token:
            if not TOKEN_RE.match(token):
                raise ControlError("invalid token")
            return self.bot_for_token(token)
        if self.default_bot is None:
            self.default_bot = BotState(None)
        return self.default_bot

    def reset(self) -> None:
        for bot in self.bots.values():
            self._stop_webhook(bot)
        if self.default_bot is not None:
            self._stop_webhook(self.default_bot)
        self.bots.clear()
        self.default_bot = None
        self.calls.clear()
        self.faults.clear()
        self._flood_chat.clear()
        self._flood_global.clear()

    async def http(self) -> ClientSession:
        if self._http is None or self._http.closed:
            self._http = ClientSession(timeout=ClientTimeout(total=30))
        return self._http

    def spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def shutdown(self) -> None:
        self.closing = True
        self._closed.set()
        for bot in list(self.bots.values()):
            bot.updates_notifier.notify()
            for chat in bot.chats.values():
                chat.notifier.notify()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._http is not None:
            await self._http.close()

    # ------------------------------------------------------------- updates
    def push_updates(self, token: str, receive: Callable[[dict[str, Any]], None] | None) -> None:
        """Hand the bot's updates to ``receive`` the moment they happen, instead of keeping
        them for getUpdates or the webhook (a test that feeds its dispatcher directly);
        those kept so far go first. ``None``: keep them again."""
        if receive is None:
            self.receivers.pop(token, None)
            return
        bot = self.bot_for_token(token)
        self.receivers[token] = receive
        kept, bot.queue = bot.queue, []
        for entry in kept:
            receive(entry.update)

    def enqueue_update(self, bot: BotState, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": bot.next_update_id, **payload}
        bot.next_update_id += 1
        bot.updates[update["update_id"]] = update
        kind = next(iter(payload))
        if not self._allowed(bot, kind):
            return update
        receive = self.receivers.get(bot.token or "")
        if receive is not None:
            receive(update)
            return update
        bot.queue.append(QueuedUpdate(update))
        bot.updates_notifier.notify()
        return update

    @staticmethod
    def _allowed(bot: BotState, kind: str) -> bool:
        if bot.allowed_updates:
            return kind in bot.allowed_updates
        return kind not in OPT_IN_UPDATE_TYPES

    def redeliver(self, bot: BotState, update_id: int) -> dict[str, Any]:
        update = bot.updates.get(update_id)
        if update is None:
            raise ControlError(f"update {update_id} not found", 404)
        receive = self.receivers.get(bot.token or "")
        if receive is not None:
            receive(update)
            return update
        bot.queue.append(QueuedUpdate(update, forced=True))
        bot.updates_notifier.notify()
        return update

    # --------------------------------------------------------------- files
    def _file_path(self, bot: BotState, kind: str, ext: str) -> str:
        bot.file_counter += 1
        folder = "photos" if kind == "photo" else "documents"
        return f"{folder}/file_{bot.file_counter}{ext}"

    def store_file(
        self,
        bot: BotState,
        kind: str,
        data: bytes,
        *,
        ext: str,
        mime_type: str | None = None,
        file_name: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> StoredFile:
        prefix = "AgACAgIAAxkBAAI" if kind == "photo" else "BQACAgIAAxkBAAI"
        stored = StoredFile(
            file_id=_new_id(prefix),
            file_unique_id="AQAD" + secrets.token_urlsafe(9),
            kind=kind,
            file_path=self._file_path(bot, kind, ext),
            size=len(data),
            mime_type=mime_type,
            file_name=file_name,
            width=width,
            height=height,
        )
        if self.files_dir is not None:
            path = self.files_dir / str(bot.id) / stored.file_path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            stored.disk_path = path
        else:
            stored.data = data
        bot.files[stored.file_id] = stored
        bot.files_by_path[stored.file_path] = stored
        return stored

    def downloadable(self, token: str, path: str) -> StoredFile | None:
        """The file served at ``/file/bot{token}/{path}``; None: Telegram answers 404."""
        bot = self.bots.get(token)
        stored = bot.files_by_path.get(path) if bot else None
        return None if stored is None or stored.size > MAX_DOWNLOAD_SIZE else stored

    async def read_file(self, stored: StoredFile) -> bytes:
        if stored.data is not None:
            return stored.data
        assert stored.disk_path is not None
        return await asyncio.to_thread(stored.disk_path.read_bytes)

    async def store_photo(self, bot: BotState, data: bytes) -> list[StoredFile]:
        if not data:
            raise bad_request("file must be non-empty")
        if len(data) > MAX_PHOTO_SIZE:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        sizes = await asyncio.to_thread(_photo_sizes, data)
        stored = [
            self.store_file(
                bot, "photo", blob, ext=".jpg", mime_type="image/jpeg", width=w, height=h
            )
            for blob, w, h in sizes
        ]
        for s in stored:
            bot.photo_groups[s.file_id] = stored
        return stored

    def store_document(
        self, bot: BotState, data: bytes, file_name: str | None, mime_type: str | None
    ) -> StoredFile:
        if not data:
            raise bad_request("file must be non-empty")
        guessed = mimetypes.guess_type(file_name or "")[0]
        if not mime_type or mime_type == "application/octet-stream":
            mime_type = guessed or mime_type or "application/octet-stream"
        ext = Path(file_name or "").suffix or (mimetypes.guess_extension(mime_type) or "")
        return self.store_file(
            bot, "document", data, ext=ext, mime_type=mime_type, file_name=file_name or None
        )

    async def _input_file(self, bot: BotState, p: Params, name: str) -> Upload | StoredFile:
        value = p.get(name)
        if name in p.files and not (isinstance(value, str) and value):
            return p.files[name]
        if isinstance(value, str) and value.startswith("attach://"):
            key = value[len("attach://") :]
            if key not in p.files:
                raise bad_request(f"wrong HTTP URL specified: attach://{key} not found")
            return p.files[key]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return await self._fetch_url(value)
        if isinstance(value, str) and value:
            stored = bot.files.get(value)
            if stored is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            return stored
        raise bad_request(f"there is no {name} in the request")

    async def _fetch_url(self, url: str) -> Upload:
        try:
            session = await self.http()
            async with session.get(url, timeout=ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    raise bad_request("failed to get HTTP URL content")
                data = await resp.read()
                name = url.rsplit("/", 1)[-1] or "file"
                return Upload(name, resp.content_type, data)
        except (ClientError, TimeoutError):
            raise bad_request("failed to get HTTP URL content") from None

    async def photo_from(self, bot: BotState, source: Upload | StoredFile) -> list[StoredFile]:
        if isinstance(source, StoredFile):
            group = bot.photo_groups.get(source.file_id)
            if group is None:
                raise bad_request("type of file mismatch")
            return group
        return await self.store_photo(bot, source.data)

    def document_from(self, bot: BotState, source: Upload | StoredFile) -> StoredFile:
        if isinstance(source, StoredFile):
            if source.kind != "document":
                raise bad_request("type of file mismatch")
            return source
        if len(source.data) > MAX_UPLOAD_SIZE:
            raise ApiError(413, "Request Entity Too Large")
        return self.store_document(bot, source.data, source.filename, source.content_type)

    # -------------------------------------------------------------- chats
    def ensure_user(self, bot: BotState, user_id: int, **info: Any) -> dict[str, Any]:
        user = bot.users.get(user_id)
        if user is None:
            user = {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
            bot.users[user_id] = user
        for key in ("first_name", "last_name", "username", "language_code"):
            if info.get(key):
                user[key] = info[key]
        user.setdefault("language_code", "ru")
        if user_id in bot.chats and bot.chats[user_id].info["type"] == "private":
            bot.chats[user_id].info.update(_private_chat(user))
        return user

    def ensure_chat(
        self, bot: BotState, user: dict[str, Any], chat_id: int | None, title: str | None = None
    ) -> Chat:
        cid = user["id"] if chat_id is None else chat_id
        chat = bot.chats.get(cid)
        if chat is None:
            if cid == user["id"]:
                info = _private_chat(user)
            elif cid < 0:
                info = {"id": cid, "title": title or f"Group {cid}", "type": "group"}
            else:
                raise ControlError("chat_id of a new chat must be the user's id or negative")
            chat = Chat(cid, info)
            bot.chats[cid] = chat
        return chat

    def add_message(
        self,
        chat: Chat,
        message: dict[str, Any],
        *,
        from_bot: bool,
        raw_text: str | None = None,
        parse_mode: str | None = None,
        reply_keyboard: dict | None = None,
    ) -> MessageRecord:
        mid = chat.next_message_id
        chat.next_message_id += 1
        msg = {"message_id": mid, **message}
        record = MessageRecord(
            msg,
            from_bot=from_bot,
            version=0,
            raw_text=raw_text,
            parse_mode=parse_mode,
            reply_keyboard=reply_keyboard,
        )
        chat.messages[mid] = record
        record.version = chat.bump()
        return record

    def user_message(
        self, bot: BotState, user: dict[str, Any], chat: Chat, content: dict[str, Any]
    ) -> tuple[dict[str, Any], MessageRecord]:
        message = {"from": dict(user), "chat": dict(chat.info), "date": _now(), **content}
        record = self.add_message(
            chat, message, from_bot=False, raw_text=content.get("text") or content.get("caption")
        )
        update = self.enqueue_update(bot, {"message": record.message})
        record.update_id = update["update_id"]
        return update, record

    # ------------------------------------------------------------ webhook
    def _stop_webhook(self, bot: BotState) -> None:
        for task in bot.webhook_tasks:
            task.cancel()
        bot.webhook_tasks = []
        for entry in bot.queue:
            entry.in_flight = False

    def _start_webhook(self, bot: BotState) -> None:
        self._stop_webhook(bot)
        assert bot.webhook is not None
        workers = max(1, min(int(bot.webhook.get("max_connections") or 40), 100))
        bot.webhook_tasks = [self.spawn(self._webhook_worker(bot)) for _ in range(workers)]

    async def _webhook_worker(self, bot: BotState) -> None:
        while not self.closing and bot.webhook is not None:
            entry = await bot.updates_notifier.wait_until(
                lambda: next((e for e in bot.queue if not e.in_flight), None),
                30,
                closing=lambda: self.closing or bot.webhook is None,
            )
            if entry is None:
                continue
            entry.in_flight = True
            try:
                delivered = await self._deliver(bot, entry)
            finally:
                entry.in_flight = False
            if delivered or entry.attempts >= self.webhook_max_attempts:
                with contextlib.suppress(ValueError):
                    bot.queue.remove(entry)
                bot.updates_notifier.notify()
            else:
                await self.sleep(self.webhook_backoff * 2 ** (entry.attempts - 1))

    async def _deliver(self, bot: BotState, entry: QueuedUpdate) -> bool:
        hook = bot.webhook
        assert hook is not None
        entry.attempts += 1
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
        record: dict[str, Any] = {
            "update_id": entry.update["update_id"],
            "url": hook["url"],
            "attempt": entry.attempts,
            "time": time.time(),
        }
        bot.webhook_log.append(record)
        if len(bot.webhook_log) > 10_000:
            del bot.webhook_log[:1000]
        try:
            session = await self.http()
            async with session.post(
                hook["url"],
                data=dumps(entry.update),
                headers=headers,
                timeout=ClientTimeout(total=60),
            ) as resp:
                record["status"] = resp.status
                if 200 <= resp.status < 300:
                    await self._webhook_reply(bot, resp)
                    return True
                hook["last_error_date"] = _now()
                hook["last_error_message"] = (
                    f"Wrong response from the webhook: {resp.status} {resp.reason}"
                )
        except (ClientError, TimeoutError, OSError) as exc:
            record["status"] = None
            record["error"] = f"{type(exc).__name__}: {exc}"
            hook["last_error_date"] = _now()
            hook["last_error_message"] = (
                "Connection refused" if isinstance(exc, (ConnectionError, OSError)) else str(exc)
            )
        return False

    async def _webhook_reply(self, bot: BotState, resp: ClientResponse) -> None:
        """A webhook may answer with a Bot API call in its response body (JSON or, as
        aiogram does, multipart/form-data with a "method" field); Telegram runs it."""
        values: dict[str, Any] = {}
        files: dict[str, Upload] = {}
        if resp.content_type.startswith("multipart/"):
            await _read_multipart(MultipartReader(resp.headers, resp.content), values, files)
        elif resp.content_type == "application/json":
            try:
                payload = json.loads(await resp.read() or b"null")
            except ValueError:
                return
            if isinstance(payload, dict):
                values = payload
        method = values.pop("method", None)
        if not isinstance(method, str) or not method:
            return
        assert bot.token is not None
        await self.call(bot.token, method, Params(values, files), via="webhook_reply")

    # ------------------------------------------------------- api dispatch
    async def call(
        self, token: str, method: str, params: Params, via: str = "http"
    ) -> tuple[int, dict[str, Any]]:
        """Run one Bot API method; return (HTTP status, response JSON)."""
        bot = self.bot_for_token(token)
        name = METHOD_NAMES.get(method.lower())
        self.call_seq += 1
        entry: dict[str, Any] = {
            "seq": self.call_seq,
            "time": time.time(),
            "bot_id": bot.id,
            "method": name or method,
            "params": params.log_view(),
            "via": via,
        }
        if "chat_id" in params:
            entry["chat_id"] = params["chat_id"]
        self.calls.append(entry)
        try:
            if name is None:
                raise ApiError(404, "Not Found: method not found")
            self._flood_check(bot, name, params)
            handler = getattr(self, f"m_{name}")
            result = await handler(bot, params)
            extra = {}
            if isinstance(result, tuple):
                result, extra = result
            response = {"ok": True, "result": result, **extra}
            status = 200
        except ApiError as exc:
            response = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.parameters:
                response["parameters"] = exc.parameters
            status = exc.code
        entry["status"] = status
        entry["ok"] = response["ok"]
        if not response["ok"]:
            entry["error"] = response["description"]
        return status, response

    def _flood_check(self, bot: BotState, name: str, p: Params) -> None:
        """Telegram's flood control, when enabled: too many messages → 429 retry_after."""
        limits = self.flood
        if limits is None or name not in FLOOD_METHODS:
            return
        now = time.monotonic()
        windows: list[tuple[deque[float], int, float]] = []
        if limits.per_chat and "chat_id" in p:
            key = (bot.id, p["chat_id"])
            windows.append(
                (
                    self._flood_chat.setdefault(key, deque()),
                    limits.per_chat,
                    limits.per_chat_window,
                )
            )
        if limits.global_:
            windows.append(
                (
                    self._flood_global.setdefault(bot.id, deque()),
                    limits.global_,
                    limits.global_window,
                )
            )
        wait = 0.0
        for stamps, limit, window in windows:
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) >= limit:
                wait = max(wait, stamps[0] + window - now)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
        for stamps, _, _ in windows:
            stamps.append(now)

    async def control(self, method: str, path: str, values: dict[str, Any]) -> tuple[int, Any]:
        """A control API request (``/_emu/...``) answered in-process: (status, payload)."""
        return await control(self, method, path, values)

    def take_fault(self, token: str, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(token, method.lower()):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------- methods
    async def m_getMe(self, bot: BotState, p: Params) -> Any:
        return bot.me()

    async def m_logOut(self, bot: BotState, p: Params) -> Any:
        return True

    async def m_close(self, bot: BotState, p: Params) -> Any:
        return True

    async def m_getUpdates(self, bot: BotState, p: Params) -> Any:
        if bot.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is "
                "active; use deleteWebhook to delete the webhook first",
            )
        offset = p.int("offset", required=False) or 0
        limit = max(1, min(p.int("limit", required=False) or 100, 100))
        timeout = max(0, min(p.int("timeout", required=False) or 0, 50))
        if "allowed_updates" in p and p["allowed_updates"] is not None:
            bot.allowed_updates = list(p["allowed_updates"]) or None
        self._confirm(bot, offset)
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.updates_notifier.notify()  # terminates an older long poll

        def ready() -> list[QueuedUpdate] | None:
            if bot.poll_generation != generation:
                return None
            return [e for e in bot.queue if e.forced or e.update["update_id"] >= offset][:limit]

        found = await bot.updates_notifier.wait_until(
            lambda: ready() or (bot.poll_generation != generation),
            timeout,
            closing=lambda: self.closing,
        )
        if bot.poll_generation != generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure "
                "that only one bot instance is running",
            )
        entries = found if isinstance(found, list) else (ready() or [])
        for e in entries:
            if e.forced:  # a re-delivery is returned once, whatever the offset
                with contextlib.suppress(ValueError):
                    bot.queue.remove(e)
        return [e.update for e in entries]

    @staticmethod
    def _confirm(bot: BotState, offset: int) -> None:
        if offset < 0:
            keep = bot.queue[offset:]
            bot.queue = keep
        elif offset > 0:
            bot.queue = [e for e in bot.queue if e.forced or e.update["update_id"] >= offset]

    async def m_setWebhook(self, bot: BotState, p: Params) -> Any:
        url = p.get("url") or ""
        if not url:
            return await self.m_deleteWebhook(bot, p)
        if not re.match(r"^https?://", url):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            bot.queue.clear()
        if p.get("allowed_updates") is not None:
            bot.allowed_updates = list(p["allowed_updates"]) or None
        bot.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": p.int("max_connections", required=False) or 40,
        }
        bot.poll_generation += 1
        bot.updates_notifier.notify()
        self._start_webhook(bot)
        return True, {"description": "Webhook was set"}

    async def m_deleteWebhook(self, bot: BotState, p: Params) -> Any:
        was = bot.webhook is not None
        bot.webhook = None
        self._stop_webhook(bot)
        if p.get("drop_pending_updates"):
            bot.queue.clear()
        bot.updates_notifier.notify()
        return True, {
            "description": "Webhook was deleted" if was else "Webhook is already deleted"
        }

    async def m_getWebhookInfo(self, bot: BotState, p: Params) -> Any:
        info: dict[str, Any] = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.queue),
        }
        if bot.webhook:
            info["url"] = bot.webhook["url"]
            info["max_connections"] = bot.webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            for key in ("last_error_date", "last_error_message"):
                if key in bot.webhook:
                    info[key] = bot.webhook[key]
            if bot.allowed_updates:
                info["allowed_updates"] = bot.allowed_updates
        return info

    def _target_chat(self, bot: BotState, p: Params) -> Chat:
        chat_id = p.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if not isinstance(chat_id, int):
            raise bad_request("chat not found")
        chat = bot.chat(chat_id)
        if chat_id in bot.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _markup(self, chat: Chat, markup: Any) -> tuple[dict | None, dict | None]:
        """Validate reply_markup; return (inline markup to echo, reply keyboard state)."""
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list):
                raise bad_request("can't parse inline keyboard markup JSON object")
            for row in rows:
                if not isinstance(row, list):
                    raise bad_request(
                        "can't parse inline keyboard button: "
                        "InlineKeyboardButton must be an Object"
                    )
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        raise bad_request(
                            "can't parse inline keyboard button: Text "
                            "buttons are unallowed in the inline keyboard"
                        )
                    data = button.get("callback_data")
                    if data is not None and not (1 <= len(str(data).encode()) <= 64):
                        raise bad_request("BUTTON_DATA_INVALID")
                    actions = [k for k in button if k != "text" and k != "style"]
                    if not actions:
                        raise bad_request(
                            "can't parse inline keyboard button: Text "
                            "buttons are unallowed in the inline keyboard"
                        )
                    url = button.get("url")
                    if url is not None and not re.match(r"^(https?|tg)://\S+$", str(url)):
                        raise bad_request(
                            f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL"
                        )
            if not rows or not any(rows):
                return None, None
            return markup, None
        if "keyboard" in markup:
            chat.reply_keyboard = markup
            return None, markup
        if markup.get("remove_keyboard"):
            chat.reply_keyboard = None
            return None, markup
        if markup.get("force_reply"):
            return None, markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    def _reply_to(self, chat: Chat, p: Params) -> dict | None:
        target = p.get("reply_to_message_id")
        allow = bool(p.get("allow_sending_without_reply"))
        params = p.get("reply_parameters")
        if isinstance(params, dict) and params.get("message_id"):
            target = int(params["message_id"])
            allow = allow or bool(params.get("allow_sending_without_reply"))
        if not target:
            return None
        record = chat.messages.get(int(target))
        if record is None or record.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return {k: v for k, v in record.message.items() if k != "reply_to_message"}

    def _format(self, text: str, p: Params, entities_key: str) -> tuple[str, list]:
        try:
            return format_text(text, p.get("parse_mode"), p.get(entities_key))
        except EntityParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None

    def _bot_message(
        self, bot: BotState, chat: Chat, p: Params, content: dict[str, Any], raw_text: str | None
    ) -> dict[str, Any]:
        inline, keyboard = self._markup(chat, p.get("reply_markup"))
        message: dict[str, Any] = {
            "from": bot.user_json(),
            "chat": dict(chat.info),
            "date": _now(),
        }
        reply = self._reply_to(chat, p)
        if reply is not None:
            message["reply_to_message"] = reply
        message.update(content)
        if inline is not None:
            message["reply_markup"] = inline
        record = self.add_message(
            chat,
            message,
            from_bot=True,
            raw_text=raw_text,
            parse_mode=p.get("parse_mode"),
            reply_keyboard=keyboard,
        )
        return record.message

    def _text_content(
        self, p: Params, key: str, limit: int, entities_key: str, *, required: bool
    ) -> dict[str, Any]:
        raw = p.get(key)
        if raw is None or raw == "":
            if required:
                raise bad_request("message text is empty")
            return {}
        raw = str(raw)
        text, entities = self._format(raw, p, entities_key)
        if not text:
            if required:
                raise bad_request("message text is empty")
            return {}
        if u16len(text) > limit:
            raise bad_request(
                "message is too long" if key == "text" else "message caption is too long"
            )
        content: dict[str, Any] = {key: text}
        if entities:
            content[entities_key] = entities
        return content

    async def m_sendMessage(self, bot: BotState, p: Params) -> Any:
        chat = self._target_chat(bot, p)
        content = self._text_content(p, "text", MAX_TEXT, "entities", required=True)
        link_preview = p.get("link_preview_options")
        if isinstance(link_preview, dict) and link_preview:
            content["link_preview_options"] = link_preview
        return self._bot_message(bot, chat, p, content, raw_text=str(p.get("text")))

    async def m_sendPhoto(self, bot: BotState, p: Params) -> Any:
        chat = self._target_chat(bot, p)
        caption = self._text_content(p, "caption", MAX_CAPTION, "caption_entities", required=False)
        sizes = await self.photo_from(bot, await self._input_file(bot, p, "photo"))
        content: dict[str, Any] = {"photo": [s.photo_size() for s in sizes], **caption}
        if p.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return self._bot_message(bot, chat, p, content, raw_text=p.get("caption"))

    async def m_sendDocument(self, bot: BotState, p: Params) -> Any:
        chat = self._target_chat(bot, p)
        caption = self._text_content(p, "caption", MAX_CAPTION, "caption_entities", required=False)
        doc = self.document_from(bot, await self._input_file(bot, p, "document"))
        content = {"document": doc.document(), **caption}
        return self._bot_message(bot, chat, p, content, raw_text=p.get("caption"))

    async def m_sendMediaGroup(self, bot: BotState, p: Params) -> Any:
        chat = self._target_chat(bot, p)
        media = p.get("media")
        if not isinstance(media, list):
            raise bad_request("media must be an array")
        if not 2 <= len(media) <= 10:
            raise bad_request("wrong number of media in the group: must include 2-10 items")
        kinds = {m.get("type") for m in media if isinstance(m, dict)}
        if not kinds <= {"photo", "video", "document", "audio"}:
            raise bad_request("can't parse InputMedia: unsupported media type")
        if "document" in kinds and len(kinds) > 1:
            raise bad_request("documents can't be mixed with other media types")
        reply = self._reply_to(chat, p)
        group_id = str(10_000_000_000_000_000 + secrets.randbelow(10**16))
        prepared = []
        for item in media:
            sub = Params(
                {k: v for k, v in item.items() if k != "type"}, p.files, raw=frozenset({"media"})
            )
            caption = self._text_content(
                sub, "caption", MAX_CAPTION, "caption_entities", required=False
            )
            source = await self._input_file(bot, sub, "media")
            if item["type"] == "photo":
                sizes = await self.photo_from(bot, source)
                content = {"photo": [s.photo_size() for s in sizes], **caption}
            elif item["type"] == "document":
                content = {"document": self.document_from(bot, source).document(), **caption}
            else:
                raise bad_request(f"{item['type']} is not supported by the sandbox")
            prepared.append((content, sub.get("caption")))
        result = []
        for content, raw in prepared:
            message: dict[str, Any] = {
                "from": bot.user_json(),
                "chat": dict(chat.info),
                "date": _now(),
                "media_group_id": group_id,
            }
            if reply is not None:
                message["reply_to_message"] = reply
            message.update(content)
            record = self.add_message(chat, message, from_bot=True, raw_text=raw)
            result.append(record.message)
        return result

    def _editable(self, bot: BotState, p: Params) -> tuple[Chat, MessageRecord]:
        if p.get("inline_message_id"):
            raise bad_request("inline messages are not supported by the sandbox")
        chat = self._target_chat(bot, p)
        mid = p.int("message_id")
        record = chat.messages.get(mid)  # type: ignore[arg-type]
        if record is None or record.deleted:
            raise bad_request("message to edit not found")
        if not record.from_bot:
            raise bad_request("message can't be edited")
        return chat, record

    def _apply_edit(
        self,
        chat: Chat,
        record: MessageRecord,
        changes: dict[str, Any],
        remove: tuple[str, ...],
        raw_text: str | None,
        p: Params,
    ) -> dict:
        msg = record.message
        new = dict(msg)
        for key in remove:
            new.pop(key, None)
        new.update(changes)
        comparable = (
            "text",
            "entities",
            "caption",
            "caption_entities",
            "reply_markup",
            *MEDIA_KEYS,
        )
        if all(new.get(k) == msg.get(k) for k in comparable):
            raise bad_request(
                "message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and "
                "reply markup of the message"
            )
        record.edits.append({k: msg[k] for k in comparable + ("edit_date",) if k in msg})
        new["edit_date"] = _now()
        record.message = new
        if raw_text is not None:
            record.raw_text = raw_text
            record.parse_mode = p.get("parse_mode")
        record.version = chat.bump()
        return new

    async def m_editMessageText(self, bot: BotState, p: Params) -> Any:
        chat, record = self._editable(bot, p)
        if "text" not in record.message:
            raise bad_request("there is no text in the message to edit")
        content = self._text_content(p, "text", MAX_TEXT, "entities", required=True)
        inline, _ = self._markup(chat, p.get("reply_markup"))
        remove = ("entities", "reply_markup")
        if inline is not None:
            content["reply_markup"] = inline
        return self._apply_edit(chat, record, content, remove, str(p.get("text")), p)

    async def m_editMessageCaption(self, bot: BotState, p: Params) -> Any:
        chat, record = self._editable(bot, p)
        if "text" in record.message:
            raise bad_request("there is no caption in the message to edit")
        content = self._text_content(p, "caption", MAX_CAPTION, "caption_entities", required=False)
        inline, _ = self._markup(chat, p.get("reply_markup"))
        if inline is not None:
            content["reply_markup"] = inline
        return self._apply_edit(
            chat,
            record,
            content,
            ("caption", "caption_entities", "reply_markup"),
            p.get("caption") or "",
            p,
        )

    async def m_editMessageMedia(self, bot: BotState, p: Params) -> Any:
        """Telegram's rules (Bot API 10.x): a photo or a document message gets new media, and
        a text message may be replaced with media; in an album a photo stays a photo (or a
        video) and a document a document. The new media's caption replaces the old one (none
        given: no caption) and so does the keyboard (none given: none). The sandbox keeps
        photos and documents."""
        chat, record = self._editable(bot, p)
        media = p.get("media")
        if not isinstance(media, dict):
            raise bad_request("can't parse InputMedia: media is not an object")
        kind = media.get("type")
        if kind not in ("photo", "video", "animation", "audio", "document"):
            raise bad_request("can't parse InputMedia: unsupported media type")
        if kind not in ("photo", "document"):
            raise bad_request(f"{kind} is not supported by the sandbox")
        msg = record.message
        if msg.get("media_group_id"):
            album_document = "document" in msg
            if (kind == "document") != album_document:
                raise bad_request(
                    "can't edit a document in an album to other media"
                    if album_document
                    else "can't edit a media in an album to a document"
                )
        elif not ({"text", *MEDIA_KEYS} & msg.keys()):
            raise bad_request("there is no media in the message to edit")
        sub = Params(
            {k: v for k, v in media.items() if k != "type"}, p.files, raw=frozenset({"media"})
        )
        caption = self._text_content(
            sub, "caption", MAX_CAPTION, "caption_entities", required=False
        )
        source = await self._input_file(bot, sub, "media")
        content: dict[str, Any]
        if kind == "photo":
            sizes = await self.photo_from(bot, source)
            content = {"photo": [s.photo_size() for s in sizes], **caption}
            if sub.get("has_spoiler"):
                content["has_media_spoiler"] = True
        else:
            content = {"document": self.document_from(bot, source).document(), **caption}
        inline, _ = self._markup(chat, p.get("reply_markup"))
        if inline is not None:
            content["reply_markup"] = inline
        remove = (
            "text",
            "entities",
            "link_preview_options",
            "caption",
            "caption_entities",
            "has_media_spoiler",
            "reply_markup",
            *MEDIA_KEYS,
        )
        return self._apply_edit(chat, record, content, remove, sub.get("caption") or "", sub)

    async def m_editMessageReplyMarkup(self, bot: BotState, p: Params) -> Any:
        chat, record = self._editable(bot, p)
        inline, _ = self._markup(chat, p.get("reply_markup"))
        changes = {"reply_markup": inline} if inline is not None else {}
        return self._apply_edit(chat, record, changes, ("reply_markup",), None, p)

    async def m_deleteMessage(self, bot: BotState, p: Params) -> Any:
        chat = self._target_chat(bot, p)
        record = chat.messages.get(p.int("message_id"))  # type: ignore[arg-type]
        if record is None or record.deleted:
            raise bad_request("message to delete not found")
        record.deleted = True
        record.version = chat.bump()
        return True

    async def m_deleteMessages(self, bot: BotState, p: Params) -> Any:
        chat = self._target_chat(bot, p)
        ids = p.get("message_ids")
        if isinstance(ids, str):
            ids = json.loads(ids)
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must be an array of 1-100 identifiers")
        for mid in ids:
            record = chat.messages.get(int(mid))
            if record is not None and not record.deleted:
                record.deleted = True
                record.version = chat.bump()
        return True

    async def m_answerCallbackQuery(self, bot: BotState, p: Params) -> Any:
        query_id = str(p.get("callback_query_id") or "")
        query = bot.callback_queries.get(query_id)
        if query is None or query["answered"]:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = p.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        query["answered"] = True
        answer = {
            "callback_query_id": query_id,
            "text": text,
            "show_alert": bool(p.get("show_alert")),
            "url": p.get("url"),
            "cache_time": p.get("cache_time"),
            "message_id": query.get("message_id"),
            "data": query.get("data"),
            "time": time.time(),
        }
        chat = bot.chats.get(query["chat_id"])
        if chat is not None:
            chat.callback_answers.append(answer)
            answer["version"] = chat.bump()
        return True

    # ----------------------------------------------------------- payments (Stars)
    async def m_sendInvoice(self, bot: BotState, p: Params) -> Any:
        """sendInvoice as the Bot API documents it for Telegram Stars: currency XTR, no
        provider token (empty), exactly one price; the payload (1-128 bytes) stays with us
        and comes back in the pre-checkout query and the successful payment."""
        chat = self._target_chat(bot, p)
        invoice, stored = self._stars_invoice(p)
        message = self._bot_message(bot, chat, p, {"invoice": invoice}, raw_text=invoice["title"])
        bot.invoices[(chat.id, message["message_id"])] = stored
        return message

    async def m_createInvoiceLink(self, bot: BotState, p: Params) -> Any:
        """createInvoiceLink: the same invoice as sendInvoice, as a link (a string,
        ``https://t.me/$<slug>``) that anyone may open and pay (/_emu/pay_link); the
        successful payment then comes in the payer's private chat with the bot."""
        _, stored = self._stars_invoice(p)
        slug = secrets.token_urlsafe(16)
        bot.invoice_links[slug] = stored
        return f"{INVOICE_LINK_PREFIX}{slug}"

    def _stars_invoice(self, p: Params) -> tuple[dict[str, Any], dict[str, Any]]:
        """The checked invoice of sendInvoice / createInvoiceLink: (what a message shows,
        what a payment of it needs)."""
        title, description = str(p.get("title") or ""), str(p.get("description") or "")
        payload = str(p.get("payload") or "")
        currency = str(p.get("currency") or "")
        if not 1 <= len(title) <= 32:
            raise bad_request("INVOICE_TITLE_INVALID" if title else "title is empty")
        if not 1 <= len(description) <= 255:
            raise bad_request("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode()) <= 128:
            raise bad_request("INVOICE_PAYLOAD_INVALID")
        if currency != "XTR":
            raise bad_request("CURRENCY_INVALID: the emulator takes Telegram Stars (XTR) only")
        if p.get("provider_token"):
            raise bad_request("PROVIDER_TOKEN_INVALID: Stars invoices take no provider token")
        prices = p.get("prices")
        if not isinstance(prices, list) or len(prices) != 1:
            raise bad_request("STARS_INVOICE_INVALID: exactly one price is needed for XTR")
        try:
            total = int(prices[0]["amount"])
            label = str(prices[0]["label"])
        except (KeyError, TypeError, ValueError):
            raise bad_request("can't parse prices: each needs a label and an amount") from None
        if not 1 <= total <= 10_000:
            raise bad_request("STARS_INVOICE_INVALID: 1 to 10000 stars")
        invoice = {
            "title": title,
            "description": description,
            "start_parameter": str(p.get("start_parameter") or ""),
            "currency": currency,
            "total_amount": total,
        }
        stored = {"payload": payload, "currency": currency, "total_amount": total, "label": label}
        return invoice, stored

    async def m_answerPreCheckoutQuery(self, bot: BotState, p: Params) -> Any:
        query_id = str(p.get("pre_checkout_query_id") or "")
        query = bot.pre_checkouts.get(query_id)
        if query is None or query["answered"]:
            raise bad_request("QUERY_ID_INVALID")
        ok = p.get("ok") is True
        error = p.get("error_message")
        if not ok and not error:
            raise bad_request("error_message is required when ok is false")
        query.update(answered=True, ok=ok, error_message=None if ok else str(error))
        query["event"].set()
        return True

    async def m_refundStarPayment(self, bot: BotState, p: Params) -> Any:
        """Stars back to the user; CHARGE_ALREADY_REFUNDED for a charge refunded before."""
        user_id = p.int("user_id")
        charge_id = str(p.get("telegram_payment_charge_id") or "")
        charge = bot.charges.get(charge_id)
        if charge is None or charge["user_id"] != user_id:
            raise bad_request("CHARGE_NOT_FOUND")
        if charge["refunded"]:
            raise bad_request("CHARGE_ALREADY_REFUNDED")
        self.refund_charge(bot, charge)
        return True

    def refund_charge(
        self, bot: BotState, charge: dict[str, Any], *, notify: bool = True
    ) -> dict[str, Any] | None:
        """The charge's Stars back to the user, and (Bot API 9.0) a ``refunded_payment``
        service message in their chat; returns its update (``notify=False``: that update is
        lost, as when the bot missed it)."""
        charge["refunded"] = True
        bot.stars[charge["user_id"]] = bot.stars_of(charge["user_id"]) + charge["total_amount"]
        self._mark_invoice(bot, charge)
        if not notify:
            self.stars_changed(bot, charge["user_id"])
            return None
        chat = bot.chats.get(charge["chat_id"])
        user = bot.users.get(charge["user_id"])
        if chat is None or user is None:
            return None
        refunded = {
            "currency": charge["currency"],
            "total_amount": charge["total_amount"],
            "invoice_payload": charge["payload"],
            "telegram_payment_charge_id": charge["charge_id"],
        }
        update, _ = self.user_message(bot, user, chat, {"refunded_payment": refunded})
        return update

    def _mark_invoice(self, bot: BotState, charge: dict[str, Any]) -> None:
        """Show the charge on its invoice message (paid, or refunded)."""
        chat = bot.chats.get(charge["chat_id"])
        record = chat.messages.get(charge.get("message_id") or 0) if chat else None
        if chat is None or record is None:
            return
        record.invoice_state = {"charge_id": charge["charge_id"], "refunded": charge["refunded"]}
        record.version = chat.bump()

    @staticmethod
    def stars_changed(bot: BotState, user_id: int) -> None:
        """Wake the long polls of the user's private chat (the chat page shows the balance)."""
        chat = bot.chats.get(user_id)
        if chat is not None:
            chat.bump()

    async def pay(
        self, bot: BotState, user: dict[str, Any], chat: Chat, message_id: int, hold: bool = False
    ) -> dict[str, Any]:
        """What the user's ⭐ Pay button does: a pre_checkout_query to the bot, its answer
        awaited (Telegram waits 10 s), then the Stars taken and a successful_payment message."""
        invoice = bot.invoices.get((chat.id, message_id))
        if invoice is None:
            raise ControlError(f"message {message_id} in chat {chat.id} is no invoice", 404)
        return await self._pay(bot, user, chat, invoice, hold, message_id)

    async def pay_link(
        self, bot: BotState, user: dict[str, Any], chat: Chat, link: str, hold: bool = False
    ) -> dict[str, Any]:
        """An invoice link opened and paid (a Mini App's openInvoice): the same as the ⭐ Pay
        button of an invoice message; the successful_payment comes in ``chat`` (the payer's
        private chat with the bot)."""
        slug = link.removeprefix(INVOICE_LINK_PREFIX)
        invoice = bot.invoice_links.get(slug)
        if invoice is None:
            raise ControlError(f"{link!r} is no invoice link of this bot", 404)
        return await self._pay(bot, user, chat, invoice, hold, None)

    async def _pay(
        self,
        bot: BotState,
        user: dict[str, Any],
        chat: Chat,
        invoice: dict[str, Any],
        hold: bool,
        message_id: int | None,  # the invoice message paid (None: a link)
    ) -> dict[str, Any]:
        total = invoice["total_amount"]
        if bot.stars_of(user["id"]) < total:
            return {"ok": False, "error": "not enough stars", "stars": bot.stars_of(user["id"])}
        self.callback_seq += 1
        query_id = str(5_000_000_000_000_000_000 + self.callback_seq * 7919)
        query = {
            "id": query_id,
            "from": dict(user),
            "currency": invoice["currency"],
            "total_amount": total,
            "invoice_payload": invoice["payload"],
        }
        state: dict[str, Any] = {
            "answered": False,
            "ok": None,
            "error_message": None,
            "event": asyncio.Event(),
            "query": query,
        }
        bot.pre_checkouts[query_id] = state
        self.enqueue_update(bot, {"pre_checkout_query": query})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state["event"].wait(), PRE_CHECKOUT_TIMEOUT)
        if not state["answered"]:
            state["answered"] = True  # too late now, as in Telegram
            return {"ok": False, "error": "pre_checkout_query not answered in time"}
        if not state["ok"]:
            return {"ok": False, "error_message": state["error_message"]}
        state.update(user=user, chat_id=chat.id, invoice=invoice, message_id=message_id)
        if hold:
            # Approved, not charged yet: what a second device's payment of the same invoice
            # looks like while the first is being charged (/_emu/complete_payment).
            return {"ok": True, "approved": query_id}
        return self.charge(bot, query_id)

    def charge(self, bot: BotState, query_id: str) -> dict[str, Any]:
        """Take the Stars of an approved pre-checkout and send the successful_payment."""
        state = bot.pre_checkouts.get(query_id)
        if state is None or not state.get("ok") or state.get("charged"):
            raise ControlError(f"no approved, uncharged pre-checkout {query_id}", 404)
        state["charged"] = True
        user, invoice = state["user"], state["invoice"]
        chat = bot.chat(state["chat_id"])
        total = invoice["total_amount"]
        if bot.stars_of(user["id"]) < total:
            return {"ok": False, "error": "not enough stars", "stars": bot.stars_of(user["id"])}
        bot.stars[user["id"]] = bot.stars_of(user["id"]) - total
        charge_id = "stxemu" + secrets.token_hex(16)
        charge = {
            "charge_id": charge_id,
            "user_id": user["id"],
            "chat_id": chat.id,
            "currency": invoice["currency"],
            "total_amount": total,
            "payload": invoice["payload"],
            "refunded": False,
            "message_id": state.get("message_id"),
        }
        bot.charges[charge_id] = charge
        self._mark_invoice(bot, charge)
        paid = {
            "currency": invoice["currency"],
            "total_amount": total,
            "invoice_payload": invoice["payload"],
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
        }
        update, record = self.user_message(bot, user, chat, {"successful_payment": paid})
        return {
            "ok": True,
            "charge_id": charge_id,
            "update": update,
            "message": record.message,
            "stars": bot.stars_of(user["id"]),
        }

    async def m_sendChatAction(self, bot: BotState, p: Params) -> Any:
        chat = self._target_chat(bot, p)
        action = p.get("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        chat.chat_actions.append({"action": action, "time": time.time()})
        chat.bump()
        return True

    async def m_getFile(self, bot: BotState, p: Params) -> Any:
        file_id = str(p.get("file_id") or "")
        stored = bot.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > MAX_DOWNLOAD_SIZE:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    @staticmethod
    def _commands_key(p: Params) -> str:
        scope = p.get("scope") or {"type": "default"}
        return dumps({"scope": scope, "lang": p.get("language_code") or ""})

    async def m_setMyCommands(self, bot: BotState, p: Params) -> Any:
        commands = p.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("commands must be an array of at most 100 commands")
        for c in commands:
            if not isinstance(c, dict) or not re.fullmatch(
                r"[a-z0-9_]{1,32}", str(c.get("command", ""))
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description") or "")) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        bot.commands[self._commands_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def m_getMyCommands(self, bot: BotState, p: Params) -> Any:
        return bot.commands.get(self._commands_key(p), [])

    async def m_deleteMyCommands(self, bot: BotState, p: Params) -> Any:
        bot.commands.pop(self._commands_key(p), None)
        return True

    async def m_setMyDescription(self, bot: BotState, p: Params) -> Any:
        return True

    async def m_setMyShortDescription(self, bot: BotState, p: Params) -> Any:
        return True

    async def m_setMyName(self, bot: BotState, p: Params) -> Any:
        return True

    async def m_setChatMenuButton(self, bot: BotState, p: Params) -> Any:
        # One default for every chat (a chat_id sets that chat's own); none: the default.
        button = p.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "commands",
            "web_app",
            "default",
        ):
            raise bad_request("can't parse menu button JSON object")
        if button["type"] == "web_app":
            url = str((button.get("web_app") or {}).get("url") or "")
            if not button.get("text") or not re.match(r"^https?://\S+$", url):
                raise bad_request(
                    "BUTTON_TEXT_INVALID" if not button.get("text") else "URL_INVALID"
                )
        key = int(p["chat_id"]) if p.get("chat_id") not in (None, "") else None
        if key is not None and button["type"] == "default":
            bot.menu_buttons.pop(key, None)  # no value of the chat's own: the bot's default
        else:
            bot.menu_buttons[key] = button
        return True

    async def m_getChatMenuButton(self, bot: BotState, p: Params) -> Any:
        key = int(p["chat_id"]) if p.get("chat_id") not in (None, "") else None
        button = bot.menu_buttons.get(key) or bot.menu_buttons.get(None)
        if button is None or button.get("type") == "default":
            return {"type": "commands"}
        return button


def _private_chat(user: dict[str, Any]) -> dict[str, Any]:
    info = {"id": user["id"], "first_name": user["first_name"], "type": "private"}
    for key in ("last_name", "username"):
        if user.get(key):
            info[key] = user[key]
    return info


def _photo_sizes(data: bytes) -> list[tuple[bytes, int, int]]:
    """Telegram-like PhotoSize set: thumbnails up to 90/320/800/1280 px plus the full image.

    The full size keeps the uploaded bytes when they already are a JPEG no larger than
    2560 px; otherwise it is re-encoded to JPEG like Telegram does.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError):
        raise bad_request("IMAGE_PROCESS_FAILED") from None
    fmt = img.format
    turned = img.getexif().get(0x0112, 1) != 1  # an EXIF orientation to apply
    ImageOps.exif_transpose(img, in_place=True)
    w, h = img.size
    if w + h > 10000 or max(w, h) > 20 * min(w, h):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    rgb = img if img.mode == "RGB" else img.convert("RGB")

    def encode(im: Image.Image) -> bytes:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=87)
        return buf.getvalue()

    # Each thumbnail from the next larger one, bilinear: resampling the full image bicubic
    # every time was most of the emulator's CPU per sendPhoto, on the machine it shares
    # with the bot it stands in for.
    def fit(im: Image.Image, limit: int) -> Image.Image:
        scale = limit / max(im.size)
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        return im.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)

    thumbs = []
    source = rgb
    for limit in sorted(PHOTO_LIMITS, reverse=True):
        if max(w, h) > limit:
            source = fit(source, limit)
            thumbs.append((encode(source), source.width, source.height))
    sizes = thumbs[::-1]
    if max(w, h) > PHOTO_MAX_SIDE:
        full = fit(rgb, PHOTO_MAX_SIDE)
        sizes.append((encode(full), full.width, full.height))
    elif fmt == "JPEG" and not turned and img.mode == "RGB":
        sizes.append((data, w, h))
    else:
        sizes.append((encode(rgb), w, h))
    return sizes


# ======================================================================== HTTP layer

EMU_KEY: web.AppKey[TelegramEmulator] = web.AppKey("telegram_emulator", TelegramEmulator)


async def _read_multipart(
    reader: MultipartReader, values: dict[str, Any], files: dict[str, Upload]
) -> None:
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        if part.filename is not None:
            data = bytes(await part.read(decode=False))
            files[part.name or "file"] = Upload(
                part.filename, part.headers.get("Content-Type"), data
            )
        else:
            values[part.name or ""] = await part.text()


async def _read_request(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    values: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.method != "POST" or not request.body_exists:
        return values, files
    ctype = request.content_type
    if ctype == "application/json":
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("JSON object expected")
        values.update(body)
    elif ctype.startswith("multipart/"):
        await _read_multipart(await request.multipart(), values, files)
    else:
        values.update(await request.post())
    return values, files


async def _bot_api(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    token = request.match_info["token"]
    method = request.match_info["method"]
    if not TOKEN_RE.match(token):
        return json_response(
            {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
        )
    fault = emu.take_fault(token, method)
    if fault is not None:
        if fault.kind == "429":
            emu.bot_for_token(token)
        answer = None if fault.kind == "lost" else await _fault_answer(emu, request, fault)
        if answer is not None:
            return answer
    try:
        values, files = await _read_request(request)
        params = Params(values, files)
    except ApiError as exc:
        return json_response(
            {"ok": False, "error_code": exc.code, "description": exc.description}, status=exc.code
        )
    status, response = await emu.call(token, method, params)
    if fault is not None and fault.kind == "lost":
        drop_connection(request)
        return web.Response(status=500)
    return json_response(response, status=status)


async def _fault_answer(
    emu: TelegramEmulator, request: web.Request, fault: Fault
) -> web.StreamResponse | None:
    """What a call or a download that met ``fault`` gets; None: served normally (a delay)."""
    if fault.kind == "delay":
        await emu.sleep(fault.delay)
        return None
    if fault.kind == "disconnect":
        drop_connection(request)
        return web.Response(status=500)
    status, content_type, text = fault_reply(fault)
    return web.Response(status=status, content_type=content_type, text=text)


def fault_reply(fault: Fault) -> tuple[int, str, str]:
    """(status, content type, body) of a 429, 404, 500 or 502 fault."""
    if fault.kind == "429":
        body: dict[str, Any] = {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {fault.retry_after}",
            "parameters": {"retry_after": fault.retry_after},
        }
        return 429, "application/json", dumps(body)
    if fault.kind == "404":
        body = {"ok": False, "error_code": 404, "description": "Not Found"}
        return 404, "application/json", dumps(body)
    if fault.kind == "500":
        body = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        return 500, "application/json", dumps(body)
    if fault.kind == "502":
        return (
            502,
            "text/html",
            "<html><head><title>502 Bad Gateway</title></head>"
            "<body><center><h1>502 Bad Gateway</h1></center>"
            "<hr><center>nginx/1.18.0</center></body></html>",
        )
    raise ValueError(f"fault {fault.kind!r} has no reply")


async def _file_download(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    token = request.match_info["token"]
    fault = emu.take_fault(token, FILE_DOWNLOAD)
    if fault is not None:
        answer = await _fault_answer(emu, request, fault)
        if answer is not None:
            return answer
    stored = emu.downloadable(token, request.match_info["path"])
    if stored is None:
        return json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )
    data = await emu.read_file(stored)
    return web.Response(body=data, content_type=stored.mime_type or "application/octet-stream")


# ------------------------------------------------------------------- control API
# Each control operation is a plain coroutine over the emulator's state and the request's
# values (query and JSON body merged), so the same API answers over HTTP (the handlers
# below) and in-process (TelegramEmulator.control, for tests that feed the bot directly).


@dataclass
class ControlRequest:
    method: str  # the HTTP verb: GET, POST, DELETE
    values: dict[str, Any]
    match: dict[str, str] = field(default_factory=dict)  # the path's {placeholders}
    upload: Upload | None = None  # send_photo's file when it came as multipart or raw body


@dataclass
class Blob:
    """A control answer that is a file, not JSON."""

    data: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


async def _body(request: web.Request) -> dict[str, Any]:
    values: dict[str, Any] = dict(request.query)
    if request.body_exists and request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ControlError("JSON object expected")
        values.update(body)
    elif request.body_exists and request.content_type in {"application/x-www-form-urlencoded"}:
        values.update(await request.post())
    return values


def _int(values: dict[str, Any], key: str, default: int | None = None) -> int:
    value = values.get(key, default)
    if value is None or value == "":
        raise ControlError(f"{key} is required")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(f"{key} must be an integer") from None


def _flag(values: dict[str, Any], key: str) -> bool:
    value = values.get(key)
    if isinstance(value, str):
        return value.lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _user_and_chat(
    emu: TelegramEmulator, values: dict[str, Any]
) -> tuple[BotState, dict[str, Any], Chat]:
    bot = emu.bot_for_control(values.get("token"))
    user_id = _int(values, "user_id")
    user = emu.ensure_user(
        bot,
        user_id,
        first_name=values.get("first_name"),
        last_name=values.get("last_name"),
        username=values.get("username"),
        language_code=values.get("language_code") or values.get("language"),
    )
    chat_id = values.get("chat_id")
    chat = emu.ensure_chat(
        bot, user, int(chat_id) if chat_id not in (None, "") else None, values.get("chat_title")
    )
    return bot, user, chat


def _reply_content(chat: Chat, values: dict[str, Any]) -> dict[str, Any]:
    reply_to = values.get("reply_to_message_id")
    if reply_to in (None, ""):
        return {}
    record = chat.messages.get(int(reply_to))
    if record is None:
        raise ControlError(f"message {reply_to} not found", 404)
    return {
        "reply_to_message": {k: v for k, v in record.message.items() if k != "reply_to_message"}
    }


async def op_send_message(emu: TelegramEmulator, req: ControlRequest) -> Any:
    values = req.values
    bot, user, chat = _user_and_chat(emu, values)
    text = values.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ControlError("text is required")
    content: dict[str, Any] = {**_reply_content(chat, values), "text": text}
    entities = auto_entities(text)
    if entities:
        content["entities"] = entities
    update, record = emu.user_message(bot, user, chat, content)
    return {"update": update, "message": record.message, "version": chat.version}


async def _photo_payload(request: web.Request) -> tuple[dict[str, Any], Upload | None]:
    """The photo of /_emu/send_photo: multipart or a raw body (an Upload), or JSON with the
    file in base64 (left in the values for :func:`op_send_photo`)."""
    values: dict[str, Any] = dict(request.query)
    upload: Upload | None = None
    ctype = request.content_type
    if ctype.startswith("multipart/"):
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not hasattr(part, "read"):
                continue
            if part.filename is not None or part.name in {"photo", "file", "document"}:
                data = bytes(await part.read(decode=False))
                upload = Upload(
                    part.filename or "photo.jpg", part.headers.get("Content-Type"), data
                )
            else:
                values[part.name or ""] = await part.text()
        if upload is None:
            raise ControlError("no file in the request")
    elif ctype == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ControlError("JSON object expected")
        values.update(body)
    else:
        data = await request.read()
        upload = Upload(
            values.get("file_name") or "photo.jpg",
            values.get("mime_type") or (ctype if ctype != "application/octet-stream" else None),
            data,
        )
    return values, upload


def _b64_upload(values: dict[str, Any]) -> Upload:
    encoded = values.get("data_b64") or values.get("photo_b64") or values.get("data")
    if not isinstance(encoded, str):
        raise ControlError("data_b64 (base64 of the file) is required")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ControlError("data_b64 is not valid base64") from None
    return Upload(values.get("file_name") or "photo.jpg", values.get("mime_type"), data)


async def op_send_photo(emu: TelegramEmulator, req: ControlRequest) -> Any:
    values = req.values
    upload = req.upload if req.upload is not None else _b64_upload(values)
    if not upload.data:
        raise ControlError("no file in the request")
    if values.get("file_name"):
        upload.filename = values["file_name"]
    if values.get("mime_type"):
        upload.content_type = values["mime_type"]
    bot, user, chat = _user_and_chat(emu, values)
    content: dict[str, Any] = _reply_content(chat, values)
    try:
        if _flag(values, "as_document"):
            mime = upload.content_type or mimetypes.guess_type(upload.filename)[0]
            stored = emu.store_document(bot, upload.data, upload.filename, mime)
            content["document"] = stored.document()
        else:
            sizes = await emu.store_photo(bot, upload.data)
            content["photo"] = [s.photo_size() for s in sizes]
    except ApiError as exc:
        raise ControlError(exc.description) from None
    if values.get("media_group_id"):
        content["media_group_id"] = str(values["media_group_id"])
    caption = values.get("caption")
    if caption:
        content["caption"] = caption
        entities = auto_entities(caption)
        if entities:
            content["caption_entities"] = entities
    update, record = emu.user_message(bot, user, chat, content)
    return {"update": update, "message": record.message, "version": chat.version}


async def op_press(emu: TelegramEmulator, req: ControlRequest) -> Any:
    values = req.values
    bot, user, chat = _user_and_chat(emu, values)
    mid = _int(values, "message_id")
    data = values.get("callback_data", values.get("data"))
    text = values.get("text")
    forge = _flag(values, "forge")
    record = chat.messages.get(mid)
    if record is None or (record.deleted and not forge):
        raise ControlError(f"message {mid} not found in chat {chat.id}", 404)
    buttons = [
        b
        for row in (record.message.get("reply_markup") or {}).get("inline_keyboard", [])
        for b in row
    ]
    button = None
    if text is not None:
        button = next((b for b in buttons if b.get("text") == text), None)
        if button is None:
            button = next((b for b in buttons if text in b.get("text", "")), None)
        if button is None:
            raise ControlError(
                f"no button {text!r} on message {mid}; buttons: "
                f"{[b.get('text') for b in buttons]}",
                404,
            )
        if "callback_data" not in button:
            raise ControlError(f"button {text!r} has no callback_data: {button}")
        data = button["callback_data"]
    elif data is not None:
        button = next((b for b in buttons if b.get("callback_data") == data), None)
        if button is None and not forge:
            raise ControlError(
                f"no button with callback_data {data!r} on message {mid}; "
                "pass forge=true to send it anyway",
                404,
            )
    else:
        raise ControlError("callback_data or text is required")
    emu.callback_seq += 1
    query_id = str(4_000_000_000_000_000_000 + emu.callback_seq * 7919 + secrets.randbelow(7919))
    query = {
        "id": query_id,
        "from": dict(user),
        "message": dict(record.message),
        "chat_instance": str(-(abs(chat.id) * 31 + 7)),
        "data": str(data),
    }
    bot.callback_queries[query_id] = {
        "chat_id": chat.id,
        "message_id": mid,
        "answered": False,
        "data": str(data),
    }
    update = emu.enqueue_update(bot, {"callback_query": query})
    version = chat.bump()
    return {"update": update, "callback_query": query, "version": version}


async def op_pay(emu: TelegramEmulator, req: ControlRequest) -> Any:
    """The user presses ⭐ Pay on an invoice: {user_id, message_id} → the outcome (ok and the
    charge id, or the bot's error_message, or why Telegram would not charge)."""
    values = req.values
    bot, user, chat = _user_and_chat(emu, values)
    hold = _flag(values, "hold")
    return await emu.pay(bot, user, chat, _int(values, "message_id"), hold)


async def op_pay_link(emu: TelegramEmulator, req: ControlRequest) -> Any:
    """The user opens an invoice link and pays: {user_id, link, hold} → as /_emu/pay."""
    values = req.values
    bot, user, chat = _user_and_chat(emu, values)
    return await emu.pay_link(
        bot, user, chat, str(values.get("link") or ""), _flag(values, "hold")
    )


async def op_webapp(emu: TelegramEmulator, req: ControlRequest) -> Any:
    """The user opens the bot's Mini App: {user_id, first_name, language} → the init data
    Telegram would hand it, signed with this bot's token (``sandbox.webapp``), and the menu
    button the bot set (its ``web_app.url``, or None)."""
    from sandbox.webapp import init_data

    values = req.values
    bot = emu.bot_for_control(values.get("token"))
    user = emu.ensure_user(  # the user only: opening the app makes no chat
        bot,
        _int(values, "user_id"),
        first_name=values.get("first_name"),
        username=values.get("username"),
        language_code=values.get("language_code") or values.get("language"),
    )
    if not bot.token:
        raise ControlError("no bot token: nothing to sign the init data with", 409)
    fields = {"id": user["id"], "first_name": user["first_name"], "is_bot": False}
    for key in ("last_name", "username", "language_code"):
        if user.get(key):
            fields[key] = user[key]
    button = bot.menu_buttons.get(user["id"]) or bot.menu_buttons.get(None) or {}
    return {
        "init_data": init_data(bot.token, fields),
        "menu_button": button if button.get("type") == "web_app" else None,
    }


async def op_complete_payment(emu: TelegramEmulator, req: ControlRequest) -> Any:
    """Charge a payment /_emu/pay approved with hold=true: {approved}."""
    values = req.values
    bot = emu.bot_for_control(values.get("token"))
    return emu.charge(bot, str(values.get("approved") or ""))


async def op_stars(emu: TelegramEmulator, req: ControlRequest) -> Any:
    """GET ?user_id= → the user's ⭐ balance; POST {user_id, stars} sets it, POST {user_id,
    add} adds to it (the sandbox gives a user Stars; never below 0)."""
    values = req.values
    bot = emu.bot_for_control(values.get("token"))
    user_id = _int(values, "user_id")
    if req.method == "POST":
        if values.get("add") not in (None, ""):
            stars = bot.stars_of(user_id) + _int(values, "add")
        else:
            stars = _int(values, "stars")
        if stars < 0:
            raise ControlError(f"a ⭐ balance is 0 or more, not {stars}")
        bot.stars[user_id] = stars
        emu.stars_changed(bot, user_id)
    charges = [c for c in bot.charges.values() if c["user_id"] == user_id]
    return {"user_id": user_id, "stars": bot.stars_of(user_id), "charges": charges}


async def op_refund_payment(emu: TelegramEmulator, req: ControlRequest) -> Any:
    """Telegram refunds a charge on its own (a dispute): the Stars go back and the bot gets
    a ``refunded_payment`` message. {charge_id, notify (default true: false loses it)}."""
    values = req.values
    bot = emu.bot_for_control(values.get("token"))
    charge = bot.charges.get(str(values.get("charge_id") or ""))
    if charge is None:
        raise ControlError("charge not found", 404)
    if charge["refunded"]:
        raise ControlError("charge already refunded", 409)
    notify = values.get("notify", True) not in (False, "false", "0")
    return {"update": emu.refund_charge(bot, charge, notify=notify)}


async def op_redeliver(emu: TelegramEmulator, req: ControlRequest) -> Any:
    values = req.values
    bot = emu.bot_for_control(values.get("token"))
    update = emu.redeliver(bot, _int(values, "update_id"))
    return {"update": update}


def _chat_of(emu: TelegramEmulator, req: ControlRequest) -> tuple[BotState, Chat]:
    bot = emu.bot_for_control(req.values.get("token"))
    chat_id = int(req.match["chat_id"])
    chat = bot.chats.get(chat_id)
    if chat is None:
        raise ControlError(f"chat {chat_id} not found", 404)
    return bot, chat


async def op_chat(emu: TelegramEmulator, req: ControlRequest) -> Any:
    _, chat = _chat_of(emu, req)
    return chat.view()


async def op_changes(emu: TelegramEmulator, req: ControlRequest) -> Any:
    """Long-poll: everything in the chat that changed after version ``since``."""
    values = req.values
    bot, chat = _chat_of(emu, req)
    since = _int(values, "since", 0)
    timeout = min(float(values.get("timeout") or 0), 120.0)
    await chat.notifier.wait_until(
        lambda: chat.version > since, timeout, closing=lambda: emu.closing
    )
    return {
        "version": chat.version,
        # a private chat's id is its user's: the ⭐ balance the chat page shows
        "stars": bot.stars.get(chat.id, DEFAULT_STARS) if chat.id > 0 else None,
        "messages": [
            r.view()
            for r in sorted(chat.messages.values(), key=lambda r: r.message["message_id"])
            if r.version > since
        ],
        "callback_answers": [a for a in chat.callback_answers if a.get("version", 0) > since],
        "reply_keyboard": chat.reply_keyboard,
    }


async def op_wait(emu: TelegramEmulator, req: ControlRequest) -> Any:
    """Wait for a bot message: ``after`` (message_id) / ``since`` (version) / ``contains``."""
    values = req.values
    _, chat = _chat_of(emu, req)
    after = _int(values, "after", 0)
    since = _int(values, "since", 0)
    contains = values.get("contains")
    timeout = min(float(values.get("timeout") or 10), 120.0)

    def find() -> MessageRecord | None:
        for record in sorted(chat.messages.values(), key=lambda r: r.message["message_id"]):
            msg = record.message
            if not record.from_bot or record.deleted:
                continue
            if msg["message_id"] <= after or record.version <= since:
                continue
            text = msg.get("text") or msg.get("caption") or ""
            if contains and contains not in text:
                continue
            return record
        return None

    found = await chat.notifier.wait_until(find, timeout, closing=lambda: emu.closing)
    if found is None:
        raise ControlError("timeout", 408, version=chat.version)
    return {"ok": True, "message": found.view(), "version": chat.version}


async def op_calls(emu: TelegramEmulator, req: ControlRequest) -> Any:
    values = req.values
    names = values.get("method") or []
    names = names.split(",") if isinstance(names, str) else names
    methods = {m.lower() for m in names if m}
    since = int(values.get("since") or 0)
    chat_id = values.get("chat_id")
    include_polls = _flag(values, "include_get_updates") or "getupdates" in methods
    result = []
    for call in emu.calls:
        if call["seq"] <= since:
            continue
        if methods and call["method"].lower() not in methods:
            continue
        if not include_polls and call["method"] == "getUpdates":
            continue
        if chat_id is not None and str(call.get("chat_id")) != chat_id:
            continue
        result.append(call)
    return {"calls": result, "last_seq": emu.call_seq}


async def op_file(emu: TelegramEmulator, req: ControlRequest) -> Any:
    bot = emu.bot_for_control(req.values.get("token"))
    stored = bot.files.get(req.match["file_id"])
    if stored is None:
        raise ControlError("file not found", 404)
    data = await emu.read_file(stored)
    headers = {"X-File-Path": stored.file_path}
    if stored.file_name:
        headers["Content-Disposition"] = f'attachment; filename="{stored.file_name}"'
    return Blob(data, stored.mime_type or "application/octet-stream", headers)


async def op_faults(emu: TelegramEmulator, req: ControlRequest) -> Any:
    if req.method == "DELETE":
        emu.faults.clear()
        return {"faults": []}
    if req.method == "POST":
        values = req.values
        kind = str(values.get("kind") or values.get("status") or "429")
        if kind not in {"429", "404", "500", "502", "delay", "disconnect", "lost"}:
            raise ControlError("kind must be one of 429, 404, 500, 502, delay, disconnect, lost")
        methods = values.get("methods")
        if isinstance(methods, str):
            methods = [m for m in methods.split(",") if m]
        fault = Fault(
            kind=kind,
            remaining=_int(values, "count", 1),
            methods={m.lower() for m in methods} if methods else None,
            retry_after=_int(values, "retry_after", 1),
            delay=float(values.get("delay") or 0.0),
            token=values.get("token"),
        )
        emu.faults.append(fault)
    return {
        "faults": [
            {
                "kind": f.kind,
                "remaining": f.remaining,
                "methods": sorted(f.methods or []),
                "retry_after": f.retry_after,
                "delay": f.delay,
            }
            for f in emu.faults
        ]
    }


async def op_flood(emu: TelegramEmulator, req: ControlRequest) -> Any:
    if req.method == "DELETE":
        emu.flood = None
    elif req.method == "POST":
        values = req.values
        emu.flood = FloodLimits(
            per_chat=_int(values, "per_chat", 0),
            per_chat_window=float(values.get("per_chat_window") or 1.0),
            global_=_int(values, "global", 0),
            global_window=float(values.get("global_window") or 1.0),
        )
        emu._flood_chat.clear()
        emu._flood_global.clear()
    return {
        "flood": None
        if emu.flood is None
        else {
            "per_chat": emu.flood.per_chat,
            "per_chat_window": emu.flood.per_chat_window,
            "global": emu.flood.global_,
            "global_window": emu.flood.global_window,
        }
    }


async def op_edit_message(emu: TelegramEmulator, req: ControlRequest) -> Any:
    """The user edits one of their messages: an ``edited_message`` update."""
    values = req.values
    bot, user, chat = _user_and_chat(emu, values)
    mid = _int(values, "message_id")
    record = chat.messages.get(mid)
    if record is None or record.deleted or record.from_bot:
        raise ControlError(f"no message {mid} of the user in chat {chat.id}", 404)
    text = values.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ControlError("text is required")
    key = "caption" if "text" not in record.message else "text"
    msg = dict(record.message)
    record.edits.append({k: msg[k] for k in ("text", "caption", "edit_date") if k in msg})
    msg[key] = text
    msg.pop("entities" if key == "text" else "caption_entities", None)
    entities = auto_entities(text)
    if entities:
        msg["entities" if key == "text" else "caption_entities"] = entities
    msg["edit_date"] = _now()
    record.message = msg
    record.raw_text = text
    record.version = chat.bump()
    update = emu.enqueue_update(bot, {"edited_message": msg})
    return {"update": update, "message": msg, "version": chat.version}


async def op_reset(emu: TelegramEmulator, req: ControlRequest) -> Any:
    emu.reset()
    return {"ok": True}


async def op_block(emu: TelegramEmulator, req: ControlRequest) -> Any:
    values = req.values
    bot = emu.bot_for_control(values.get("token"))
    user_id = _int(values, "user_id")
    if values.get("blocked", True) in (False, "false", "0"):
        bot.blocked.discard(user_id)
    else:
        bot.blocked.add(user_id)
    return {"blocked": sorted(bot.blocked)}


async def op_bot(emu: TelegramEmulator, req: ControlRequest) -> Any:
    bot = emu.bot_for_control(req.values.get("token"))
    hook = dict(bot.webhook) if bot.webhook else None
    return {
        "me": bot.me(),
        "bound": bot.bound,
        "webhook": hook,
        "pending_updates": [e.update for e in bot.queue],
        "allowed_updates": bot.allowed_updates,
        "webhook_log": bot.webhook_log[-200:],
        "commands": {k: v for k, v in bot.commands.items()},
        "chats": sorted(bot.chats),
        "users": list(bot.users.values()),
    }


async def op_updates(emu: TelegramEmulator, req: ControlRequest) -> Any:
    bot = emu.bot_for_control(req.values.get("token"))
    return {"updates": list(bot.updates.values())}


ControlOp = Callable[[TelegramEmulator, ControlRequest], Awaitable[Any]]

# (HTTP verb or "*", path, operation): the control API, over HTTP and in-process alike.
CONTROL_ROUTES: tuple[tuple[str, str, ControlOp], ...] = (
    ("POST", "/_emu/send_message", op_send_message),
    ("POST", "/_emu/send_photo", op_send_photo),
    ("POST", "/_emu/press", op_press),
    ("POST", "/_emu/redeliver", op_redeliver),
    ("POST", "/_emu/pay", op_pay),
    ("POST", "/_emu/pay_link", op_pay_link),
    ("POST", "/_emu/webapp", op_webapp),
    ("POST", "/_emu/complete_payment", op_complete_payment),
    ("*", "/_emu/stars", op_stars),
    ("POST", "/_emu/refund_payment", op_refund_payment),
    ("POST", "/_emu/edit_message", op_edit_message),
    ("*", "/_emu/flood", op_flood),
    ("GET", "/_emu/chats/{chat_id}", op_chat),
    ("GET", "/_emu/chats/{chat_id}/changes", op_changes),
    ("GET", "/_emu/chats/{chat_id}/wait", op_wait),
    ("GET", "/_emu/calls", op_calls),
    ("GET", "/_emu/files/{file_id}", op_file),
    ("*", "/_emu/faults", op_faults),
    ("POST", "/_emu/reset", op_reset),
    ("POST", "/_emu/block", op_block),
    ("GET", "/_emu/bot", op_bot),
    ("GET", "/_emu/updates", op_updates),
)
_CONTROL_PATTERNS = [
    (verb, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$"), op)
    for verb, path, op in CONTROL_ROUTES
]


async def control(
    emu: TelegramEmulator, method: str, path: str, values: dict[str, Any]
) -> tuple[int, Any]:
    """One control API request without HTTP: (status, JSON payload or :class:`Blob`)."""
    for verb, pattern, op in _CONTROL_PATTERNS:
        found = pattern.match(path)
        if found and verb in ("*", method):
            try:
                return 200, await op(emu, ControlRequest(method, values, found.groupdict()))
            except ControlError as exc:
                return exc.status, exc.payload()
    return 404, {"ok": False, "error": f"no control route {method} {path}"}


def _http_reply(reply: Any) -> web.StreamResponse:
    if isinstance(reply, Blob):
        return web.Response(
            body=reply.data, headers=reply.headers, content_type=reply.content_type
        )
    return json_response(reply)


def _http_control(op: ControlOp) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        if op is op_send_photo:
            values, upload = await _photo_payload(request)
        else:
            values, upload = await _body(request), None
            if op is op_calls:  # ?method=a&method=b as well as ?method=a,b
                values["method"] = ",".join(request.query.getall("method", []))
        req = ControlRequest(request.method, values, dict(request.match_info), upload)
        return _http_reply(await op(request.app[EMU_KEY], req))

    return handler


@web.middleware
async def _control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as exc:
        return json_response(exc.payload(), status=exc.status)
    except json.JSONDecodeError:
        return json_response({"ok": False, "error": "invalid JSON body"}, status=400)


def create_app(
    *,
    files_dir: Path | None = None,
    webhook_max_attempts: int = 5,
    webhook_backoff: float = 0.2,
    flood: FloodLimits | None = None,
) -> web.Application:
    """The emulator as an aiohttp application (``app[EMU_KEY]`` is its state).

    ``flood`` turns on Telegram-like flood control (429 with retry_after) from the start.
    """
    app = web.Application(
        client_max_size=MAX_UPLOAD_SIZE + 1024 * 1024, middlewares=[_control_errors]
    )
    emu = TelegramEmulator(
        files_dir, webhook_max_attempts=webhook_max_attempts, webhook_backoff=webhook_backoff
    )
    emu.flood = flood
    app[EMU_KEY] = emu

    async def on_shutdown(_: web.Application) -> None:
        await emu.shutdown()

    app.on_shutdown.append(on_shutdown)
    app.router.add_route("*", "/bot{token}/{method}", _bot_api)
    app.router.add_get("/file/bot{token}/{path:.+}", _file_download)
    for verb, path, op in CONTROL_ROUTES:
        app.router.add_route(verb, path, _http_control(op))
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Telegram Bot API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--files-dir",
        type=Path,
        default=None,
        help="store uploaded files on disk instead of in memory",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    web.run_app(create_app(files_dir=args.files_dir), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
