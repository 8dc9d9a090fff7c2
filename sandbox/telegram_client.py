"""Async client for the Telegram emulator's control API: be a Telegram user in a test.

    async with TelegramEmulatorClient(url) as tg:
        user = tg.user(1001, first_name="Аня", language="ru")
        await user.send_text("/start")
        menu = await user.wait_for_text("Выберите")
        await user.press(menu, text="💰 Баланс")
        reply = await user.wait_for(lambda m: "₽" in m.text)

Every user action remembers the chat version it produced; ``wait_for*`` then only looks at
bot messages created or edited after the last action, so a conversation reads top to bottom
without sleeps.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


class EmulatorError(RuntimeError):
    """The control API refused a request (bad arguments, unknown message, ...)."""

    def __init__(self, status: int, payload: Any) -> None:
        message = payload.get("error") if isinstance(payload, dict) else payload
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.payload = payload


@dataclass
class Button:
    text: str
    callback_data: str | None = None
    url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Message:
    """A message in the chat as the emulator sees it (current state after edits)."""

    raw: dict[str, Any]
    user: TelegramUser | None = field(default=None, repr=False, compare=False)

    @property
    def message_id(self) -> int:
        return self.raw["message_id"]

    @property
    def text(self) -> str:
        """The text, or the caption of a media message ('' if none)."""
        return self.raw.get("text") or self.raw.get("caption") or ""

    @property
    def raw_text(self) -> str | None:
        """The text as the bot sent it, before parse_mode was applied."""
        return self.raw.get("raw_text")

    @property
    def entities(self) -> list[dict[str, Any]]:
        return self.raw.get("entities") or self.raw.get("caption_entities") or []

    @property
    def from_bot(self) -> bool:
        return bool(self.raw.get("from_bot"))

    @property
    def deleted(self) -> bool:
        return bool(self.raw.get("deleted"))

    @property
    def edited(self) -> bool:
        return "edit_date" in self.raw

    @property
    def version(self) -> int:
        return int(self.raw.get("version") or 0)

    @property
    def update_id(self) -> int | None:
        return self.raw.get("update_id")

    @property
    def media_group_id(self) -> str | None:
        return self.raw.get("media_group_id")

    @property
    def photo(self) -> list[dict[str, Any]]:
        """PhotoSize list, smallest first ([] if not a photo)."""
        return self.raw.get("photo") or []

    @property
    def document(self) -> dict[str, Any] | None:
        return self.raw.get("document")

    @property
    def file_id(self) -> str | None:
        """The largest photo size's file_id, or the document's."""
        if self.photo:
            return self.photo[-1]["file_id"]
        if self.document:
            return self.document["file_id"]
        return None

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.raw.get("reply_markup")

    @property
    def buttons(self) -> list[list[Button]]:
        """Inline keyboard rows."""
        rows = (self.raw.get("reply_markup") or {}).get("inline_keyboard") or []
        return [
            [Button(b.get("text", ""), b.get("callback_data"), b.get("url"), b) for b in row]
            for row in rows
        ]

    @property
    def button_texts(self) -> list[str]:
        return [b.text for row in self.buttons for b in row]

    @property
    def reply_keyboard(self) -> dict[str, Any] | None:
        """The ReplyKeyboardMarkup / ReplyKeyboardRemove / ForceReply the message carried."""
        return self.raw.get("reply_keyboard")

    def button(self, text: str) -> Button:
        for row in self.buttons:
            for b in row:
                if b.text == text:
                    return b
        for row in self.buttons:
            for b in row:
                if text in b.text:
                    return b
        raise KeyError(f"no button {text!r}; buttons: {self.button_texts}")

    async def press(self, text: str | None = None, *, data: str | None = None) -> CallbackQuery:
        assert self.user is not None, "message is not bound to a user"
        return await self.user.press(self, data=data, text=text)

    async def download(self) -> bytes:
        assert self.user is not None and self.file_id is not None
        return await self.user.download(self.file_id)

    def __str__(self) -> str:
        who = "bot" if self.from_bot else "user"
        flags = " (deleted)" if self.deleted else (" (edited)" if self.edited else "")
        media = " [photo]" if self.photo else (" [document]" if self.document else "")
        keys = f" {self.button_texts}" if self.buttons else ""
        return f"#{self.message_id} {who}{media}{flags}: {self.text!r}{keys}"


@dataclass
class CallbackQuery:
    id: str
    data: str
    message_id: int
    update_id: int
    version: int
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


class TelegramEmulatorClient:
    """Control API of ``sandbox.telegram`` (one aiohttp session, many users)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session = session
        self._own_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                connector=aiohttp.TCPConnector(limit=0),
            )
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> TelegramEmulatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _with_token(self, values: dict[str, Any]) -> dict[str, Any]:
        if self.token and "token" not in values:
            values["token"] = self.token
        return {k: v for k, v in values.items() if v is not None}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: Any = None,
        raw: bool = False,
    ) -> Any:
        query = self._with_token(dict(params or {}))
        query = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in query.items()}
        async with self.session.request(
            method, self.base_url + path, json=json, params=query, data=data
        ) as resp:
            if raw and resp.status == 200:
                return await resp.read()
            payload = await resp.json(content_type=None)
            if resp.status != 200:
                raise EmulatorError(resp.status, payload)
            return payload

    def user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language: str = "ru",
        chat_id: int | None = None,
    ) -> TelegramUser:
        return TelegramUser(
            self,
            user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language=language,
            chat_id=chat_id,
        )

    # --- inspection and faults ---------------------------------------------------------
    async def calls(
        self,
        method: str | Iterable[str] | None = None,
        *,
        chat_id: int | None = None,
        since: int = 0,
        include_get_updates: bool = False,
    ) -> list[dict[str, Any]]:
        """Bot API calls the bot made: ``[{seq, method, params, status, ok, error?}]``."""
        methods = [method] if isinstance(method, str) else list(method or [])
        params: dict[str, Any] = {
            "since": since,
            "chat_id": chat_id,
            "include_get_updates": include_get_updates,
        }
        if methods:
            params["method"] = ",".join(methods)
        return (await self.request("GET", "/_emu/calls", params=params))["calls"]

    async def last_call_seq(self) -> int:
        return (await self.request("GET", "/_emu/calls", params={"method": "-"}))["last_seq"]

    async def fail_next(
        self,
        count: int = 1,
        *,
        kind: str = "429",
        retry_after: int = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        """The next ``count`` Bot API calls (of ``methods``; by default any but getUpdates)
        fail: kind "429" (with retry_after), "404", "500", "502" (nginx HTML page) or
        "disconnect" (connection dropped) or "lost" (the call is done, then the connection
        drops before its answer). ``methods=["file"]``: the file downloads."""
        await self.request(
            "POST",
            "/_emu/faults",
            json=self._with_token(
                {
                    "kind": kind,
                    "count": count,
                    "retry_after": retry_after,
                    "methods": list(methods) if methods else None,
                }
            ),
        )

    async def delay_next(
        self, seconds: float, count: int = 1, *, methods: Iterable[str] | None = None
    ) -> None:
        await self.request(
            "POST",
            "/_emu/faults",
            json=self._with_token(
                {
                    "kind": "delay",
                    "count": count,
                    "delay": seconds,
                    "methods": list(methods) if methods else None,
                }
            ),
        )

    async def reset_faults(self) -> None:
        await self.request("DELETE", "/_emu/faults")

    async def set_flood_limits(
        self,
        *,
        per_chat: int = 1,
        per_chat_window: float = 1.0,
        global_limit: int = 30,
        global_window: float = 1.0,
    ) -> None:
        """Turn on Telegram-like flood control: more sends/edits than the limits in the
        window answer 429 with retry_after (0 = no limit)."""
        await self.request(
            "POST",
            "/_emu/flood",
            json={
                "per_chat": per_chat,
                "per_chat_window": per_chat_window,
                "global": global_limit,
                "global_window": global_window,
            },
        )

    async def clear_flood_limits(self) -> None:
        await self.request("DELETE", "/_emu/flood")

    async def reset(self) -> None:
        """Forget everything: bots, chats, files, updates, calls, faults."""
        await self.request("POST", "/_emu/reset")

    async def bot_info(self) -> dict[str, Any]:
        return await self.request("GET", "/_emu/bot")

    async def updates(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "/_emu/updates"))["updates"]

    async def redeliver(self, update_id: int) -> dict[str, Any]:
        """Deliver an existing update again (same update_id), like Telegram does."""
        result = await self.request(
            "POST", "/_emu/redeliver", json=self._with_token({"update_id": update_id})
        )
        return result["update"]

    async def refund_charge(self, charge_id: str, *, notify: bool = True) -> dict[str, Any]:
        """Telegram refunds a Stars charge on its own: a ``refunded_payment`` update (lost,
        with ``notify=False``)."""
        body = {"charge_id": charge_id, "notify": notify}
        return await self.request("POST", "/_emu/refund_payment", json=self._with_token(body))

    async def block(self, user_id: int, blocked: bool = True) -> None:
        await self.request(
            "POST", "/_emu/block", json=self._with_token({"user_id": user_id, "blocked": blocked})
        )

    async def download(self, file_id: str) -> bytes:
        return await self.request("GET", f"/_emu/files/{file_id}", raw=True)


class TelegramUser:
    """One Telegram user talking to the bot in a private chat (or a group via chat_id)."""

    def __init__(
        self,
        client: TelegramEmulatorClient | str,
        user_id: int,
        *,
        language: str = "ru",
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        chat_id: int | None = None,
        token: str | None = None,
    ) -> None:
        self._owns_client = isinstance(client, str)
        if isinstance(client, str):
            client = TelegramEmulatorClient(client, token=token)
        self.client = client
        self.user_id = user_id
        self.chat_id = chat_id if chat_id is not None else user_id
        self.language = language
        self.first_name = first_name or f"User {user_id}"
        self.last_name = last_name
        self.username = username
        self.mark = 0  # chat version after this user's last action

    async def close(self) -> None:
        if self._owns_client:
            await self.client.close()

    async def __aenter__(self) -> TelegramUser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _identity(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "language_code": self.language,
            "chat_id": self.chat_id if self.chat_id != self.user_id else None,
        }

    def _message(self, result: dict[str, Any]) -> Message:
        self.mark = max(self.mark, int(result["version"]))
        raw = dict(result["message"])
        raw["update_id"] = result["update"]["update_id"]
        raw["version"] = result["version"]
        return Message(raw, self)

    # --- acting --------------------------------------------------------------------------
    async def send_text(self, text: str, *, reply_to: int | Message | None = None) -> Message:
        body = {
            **self._identity(),
            "text": text,
            "reply_to_message_id": _mid(reply_to) if reply_to is not None else None,
        }
        result = await self.client.request(
            "POST", "/_emu/send_message", json=self.client._with_token(body)
        )
        return self._message(result)

    async def edit_text(self, message: int | Message, text: str) -> Message:
        """Edit one of this user's messages (the bot gets an ``edited_message`` update)."""
        body = {**self._identity(), "message_id": _mid(message), "text": text}
        result = await self.client.request(
            "POST", "/_emu/edit_message", json=self.client._with_token(body)
        )
        return self._message(result)

    async def send_photo(
        self,
        data: bytes,
        *,
        as_document: bool = False,
        caption: str | None = None,
        media_group_id: str | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        reply_to: int | Message | None = None,
    ) -> Message:
        """Send an image as a photo (Telegram compresses it into PhotoSizes) or, with
        ``as_document=True``, as a file (kept byte for byte, with name and mime type)."""
        body = {
            **self._identity(),
            "data_b64": base64.b64encode(data).decode(),
            "as_document": as_document,
            "caption": caption,
            "media_group_id": media_group_id,
            "file_name": file_name or ("image.jpg" if as_document else None),
            "mime_type": mime_type,
            "reply_to_message_id": _mid(reply_to) if reply_to is not None else None,
        }
        result = await self.client.request(
            "POST", "/_emu/send_photo", json=self.client._with_token(body)
        )
        return self._message(result)

    async def send_document(
        self,
        data: bytes,
        file_name: str,
        *,
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> Message:
        return await self.send_photo(
            data, as_document=True, file_name=file_name, mime_type=mime_type, caption=caption
        )

    async def send_album(
        self, photos: list[bytes], *, caption: str | None = None, as_document: bool = False
    ) -> list[Message]:
        """Several messages sharing one media_group_id; the caption goes on the first."""
        group = f"{self.user_id}{len(photos)}{id(photos) % 100000}{self.mark}"
        sent = []
        for i, data in enumerate(photos):
            sent.append(
                await self.send_photo(
                    data,
                    as_document=as_document,
                    caption=caption if i == 0 else None,
                    media_group_id=group,
                    file_name=f"image_{i + 1}.jpg" if as_document else None,
                )
            )
        return sent

    async def press(
        self,
        message: int | Message,
        data: str | None = None,
        text: str | None = None,
        *,
        forge: bool = False,
    ) -> CallbackQuery:
        """Press an inline button by its callback_data or (part of) its text. ``forge=True``
        sends callback_data that is on no button (what a tampering client could do)."""
        body = {
            **self._identity(),
            "message_id": _mid(message),
            "callback_data": data,
            "text": text,
            "forge": forge,
        }
        result = await self.client.request(
            "POST", "/_emu/press", json=self.client._with_token(body)
        )
        self.mark = max(self.mark, int(result["version"]))
        query = result["callback_query"]
        return CallbackQuery(
            id=query["id"],
            data=query["data"],
            message_id=_mid(message),
            update_id=result["update"]["update_id"],
            version=result["version"],
            raw=query,
        )

    async def pay(self, invoice: int | Message, *, hold: bool = False) -> dict[str, Any]:
        """Press ⭐ Pay on an invoice: the bot's pre-checkout answer is awaited; returns
        ``{ok, charge_id, update, message, stars}`` or ``{ok: False, error_message|error}``.
        ``hold=True`` stops once the bot approved: ``{ok, approved}`` for complete_payment."""
        body = {**self._identity(), "message_id": _mid(invoice), "hold": hold}
        return await self.client.request("POST", "/_emu/pay", json=self.client._with_token(body))

    async def pay_link(self, link: str, *, hold: bool = False) -> dict[str, Any]:
        """Open an invoice link (createInvoiceLink) and pay it: as :meth:`pay`, the
        successful_payment coming in this user's chat with the bot."""
        body = {**self._identity(), "link": link, "hold": hold}
        return await self.client.request(
            "POST", "/_emu/pay_link", json=self.client._with_token(body)
        )

    async def complete_payment(self, approved: str) -> dict[str, Any]:
        """Charge a payment approved by ``pay(hold=True)``: the successful_payment."""
        body = {"approved": approved}
        return await self.client.request(
            "POST", "/_emu/complete_payment", json=self.client._with_token(body)
        )

    async def stars(self) -> int:
        """This user's ⭐ balance in the emulator."""
        result = await self.client.request(
            "GET", "/_emu/stars", params=self.client._with_token({"user_id": self.user_id})
        )
        return int(result["stars"])

    async def set_stars(self, stars: int) -> None:
        body = {"user_id": self.user_id, "stars": stars}
        await self.client.request("POST", "/_emu/stars", json=self.client._with_token(body))

    async def redeliver(self, update: int | Message | CallbackQuery) -> dict[str, Any]:
        update_id = update if isinstance(update, int) else update.update_id
        assert update_id is not None
        return await self.client.redeliver(update_id)

    # --- looking -------------------------------------------------------------------------
    async def chat(self) -> dict[str, Any]:
        """Raw chat state: ``{chat, version, messages, callback_answers, chat_actions,
        reply_keyboard}``."""
        return await self.client.request("GET", f"/_emu/chats/{self.chat_id}")

    async def messages(self, *, include_deleted: bool = True) -> list[Message]:
        try:
            state = await self.chat()
        except EmulatorError as exc:
            if exc.status == 404:
                return []
            raise
        return [
            Message(m, self) for m in state["messages"] if include_deleted or not m.get("deleted")
        ]

    async def bot_messages(self, *, include_deleted: bool = False) -> list[Message]:
        return [m for m in await self.messages(include_deleted=include_deleted) if m.from_bot]

    async def last_bot_message(self) -> Message | None:
        found = await self.bot_messages()
        return found[-1] if found else None

    async def callback_answers(self) -> list[dict[str, Any]]:
        return (await self.chat())["callback_answers"]

    async def chat_actions(self) -> list[str]:
        return [a["action"] for a in (await self.chat())["chat_actions"]]

    async def reply_keyboard(self) -> list[str]:
        """Texts of the current reply keyboard's buttons ([] if none)."""
        markup = (await self.chat()).get("reply_keyboard") or {}
        return [
            b["text"] if isinstance(b, dict) else str(b)
            for row in markup.get("keyboard", [])
            for b in row
        ]

    async def transcript(self) -> str:
        return "\n".join(str(m) for m in await self.messages())

    async def wait_for(
        self,
        predicate: Callable[[Message], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
        include_user: bool = False,
    ) -> Message:
        """First bot message created or edited after ``since`` (a chat version; default:
        this user's last action) that satisfies ``predicate``. Deleted ones are skipped."""
        loop_since = self.mark if since is None else since
        floor = loop_since
        deadline = _now() + timeout
        while True:
            remaining = deadline - _now()
            state = await self.client.request(
                "GET",
                f"/_emu/chats/{self.chat_id}/changes",
                params={"since": loop_since, "timeout": round(max(0.0, remaining), 3)},
            )
            for raw in state["messages"]:
                msg = Message(raw, self)
                if msg.deleted or msg.version <= floor:
                    continue
                if not include_user and not msg.from_bot:
                    continue
                if predicate(msg):
                    return msg
            loop_since = state["version"]
            if _now() >= deadline:
                raise TimeoutError(
                    f"no matching bot message in chat {self.chat_id} within {timeout}s; "
                    f"chat so far:\n{await self.transcript()}"
                )

    async def wait_for_text(
        self,
        substring: str,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
    ) -> Message:
        return await self.wait_for(lambda m: substring in m.text, timeout, since=since)

    async def wait_for_message(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
    ) -> Message:
        """The next bot message (or edit) after the last action, whatever it says."""
        return await self.wait_for(lambda m: True, timeout, since=since)

    async def wait_for_photo(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
    ) -> Message:
        return await self.wait_for(lambda m: bool(m.photo or m.document), timeout, since=since)

    async def wait_for_answer(
        self,
        query: CallbackQuery | str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """The bot's answerCallbackQuery for ``query``."""
        query_id = query if isinstance(query, str) else query.id
        since = 0
        deadline = _now() + timeout
        while True:
            state = await self.client.request(
                "GET",
                f"/_emu/chats/{self.chat_id}/changes",
                params={"since": since, "timeout": round(max(0.0, deadline - _now()), 3)},
            )
            for answer in state["callback_answers"]:
                if answer["callback_query_id"] == query_id:
                    return answer
            since = state["version"]
            if _now() >= deadline:
                raise TimeoutError(f"callback query {query_id} was not answered in {timeout}s")

    async def download(self, file_id: str) -> bytes:
        return await self.client.download(file_id)


def _mid(message: int | Message) -> int:
    return message.message_id if isinstance(message, Message) else int(message)


def _now() -> float:
    return time.monotonic()
