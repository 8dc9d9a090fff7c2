"""The Telegram emulator without HTTP: a bot session and a user client in the test's process.

aiogram's own tests drive a dispatcher with ``dp.feed_update`` and a bot whose session
records each request instead of sending it. Here that session answers from the emulator
(``sandbox.telegram.TelegramEmulator``) itself: every Bot API method gets the answer the
emulator would give over HTTP (message ids, PhotoSizes, edits, "message is not modified",
errors, the faults a test asked for), files are downloaded from it, and each request is
recorded. The user side is :class:`LocalTelegramClient`, the control API client of
``sandbox.telegram_client`` answered in-process; :class:`FedDispatcher` hands the user's
updates to a real dispatcher the moment they happen.

    app = create_app()                                   # the emulator, served or not
    session = EmulatorSession(app[EMU_KEY])
    bot = Bot(token, session=session)
    feed = FedDispatcher(dispatcher, bot, app[EMU_KEY])  # updates → dp.feed_update
    tg = LocalTelegramClient(app[EMU_KEY], token=token)
    await tg.user(1).send_text("/start")
    ...
    await feed.stop()

The same emulator can still be served over HTTP (``ServerHandle(app)``) for the processes
and the webhook tests: state is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from json import loads
from typing import TYPE_CHECKING, Any

import aiohttp
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.types import InputFile, Update
from aiohttp.client_reqrep import RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from sandbox._common import dumps
from sandbox.telegram import (
    FILE_DOWNLOAD,
    TOKEN_RE,
    Blob,
    Params,
    TelegramEmulator,
    Upload,
    fault_reply,
)
from sandbox.telegram_client import EmulatorError, TelegramEmulatorClient

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher
    from aiogram.methods.base import TelegramType

log = logging.getLogger(__name__)

# The URL the session's files seem to come from; nothing listens there.
IN_PROCESS_API = TelegramAPIServer.from_base("http://telegram.in-process")


@dataclass
class SentRequest:
    """One Bot API request the bot made: the aiogram method, and its result or error."""

    method: TelegramMethod[Any]
    result: Any = None
    error: BaseException | None = None

    @property
    def name(self) -> str:
        return self.method.__api_method__


class EmulatorSession(BaseSession):
    """A bot session answered by the emulator in this process, recording every request."""

    def __init__(self, emulator: TelegramEmulator, **kwargs: Any) -> None:
        kwargs.setdefault("api", IN_PROCESS_API)
        super().__init__(**kwargs)
        self.emulator = emulator
        self.requests: list[SentRequest] = []

    def sent(self, *names: str) -> list[SentRequest]:
        """The requests of these Bot API methods (``"sendMessage"``...), in order; all
        requests without names."""
        wanted = {n.lower() for n in names}
        return [r for r in self.requests if not wanted or r.name.lower() in wanted]

    async def close(self) -> None:
        pass

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        record = SentRequest(method)
        self.requests.append(record)
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                status, content = await self._answer(bot, method)
        except TimeoutError as exc:
            record.error = TelegramNetworkError(method=method, message="Request timeout error")
            raise record.error from exc
        except TelegramNetworkError as exc:
            record.error = exc
            raise
        try:
            response = self.check_response(
                bot=bot, method=method, status_code=status, content=content
            )
        except Exception as exc:
            record.error = exc
            raise
        record.result = response.result
        return response.result  # type: ignore[return-value]

    async def _answer(self, bot: Bot, method: TelegramMethod[Any]) -> tuple[int, str]:
        """(HTTP status, body) as the emulator's HTTP layer would answer the request."""
        name = method.__api_method__
        if not TOKEN_RE.match(bot.token):
            return 401, dumps({"ok": False, "error_code": 401, "description": "Unauthorized"})
        fault = self.emulator.take_fault(bot.token, name)
        if fault is not None and fault.kind == "lost":  # done, then the answer is lost
            values, files = await self._form(bot, method)
            await self.emulator.call(bot.token, name, Params(values, files), via="in-process")
            raise TelegramNetworkError(
                method=method, message="ServerDisconnectedError: Server disconnected"
            )
        if fault is not None:
            if fault.kind == "delay":
                await self.emulator.sleep(fault.delay)
            elif fault.kind == "disconnect":
                raise TelegramNetworkError(
                    method=method, message="ServerDisconnectedError: Server disconnected"
                )
            else:
                if fault.kind == "429":
                    self.emulator.bot_for_token(bot.token)
                status, _, text = fault_reply(fault)
                return status, text
        values, files = await self._form(bot, method)
        status, response = await self.emulator.call(
            bot.token, name, Params(values, files), via="in-process"
        )
        return status, dumps(response)

    async def _form(
        self, bot: Bot, method: TelegramMethod[Any]
    ) -> tuple[dict[str, Any], dict[str, Upload]]:
        """The fields and files of the request, as AiohttpSession's form would carry them."""
        values: dict[str, Any] = {}
        inputs: dict[str, InputFile] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=inputs)
            if prepared:
                values[key] = prepared
        files = {}
        for key, input_file in inputs.items():
            data = b"".join([chunk async for chunk in input_file.read(bot)])
            files[key] = Upload(input_file.filename or key, "application/octet-stream", data)
        return values, files

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - aiogram's signature
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        """A file of the emulator, as ``GET /file/bot{token}/{path}`` would give it."""
        prefix = self.api.file.partition("{token}")[0]
        token, _, path = url.removeprefix(prefix).partition("/")
        status, body = 200, b""
        fault = self.emulator.take_fault(token, FILE_DOWNLOAD)
        if fault is not None and fault.kind == "disconnect":
            raise aiohttp.ServerDisconnectedError()
        if fault is not None and fault.kind == "delay":
            async with asyncio.timeout(timeout):
                await self.emulator.sleep(fault.delay)
            fault = None
        if fault is not None:
            status, _, text = fault_reply(fault)
            body = text.encode()
        else:
            stored = self.emulator.downloadable(token, path)
            if stored is None:
                status, body = 404, dumps({"ok": False, "description": "Not Found"}).encode()
            else:
                body = await self.emulator.read_file(stored)
        if status != 200 and raise_for_status:
            info = RequestInfo(URL(url), "GET", CIMultiDictProxy(CIMultiDict()), URL(url))
            raise aiohttp.ClientResponseError(info, (), status=status, message="error")
        for start in range(0, len(body), chunk_size):
            yield body[start : start + chunk_size]


class LocalTelegramClient(TelegramEmulatorClient):
    """:class:`TelegramEmulatorClient` (users, waits, faults, inspection) answered by the
    emulator in this process: the same requests and answers as over HTTP, without a socket."""

    def __init__(self, emulator: TelegramEmulator, *, token: str | None = None) -> None:
        super().__init__("http://telegram.in-process", token=token)
        self.emulator = emulator

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,  # noqa: A002 - the signature of TelegramEmulatorClient.request
        params: dict[str, Any] | None = None,
        data: Any = None,
        raw: bool = False,
    ) -> Any:
        if data is not None:
            raise ValueError("a raw body is for the HTTP client")
        query = self._with_token(dict(params or {}))
        values: dict[str, Any] = {
            k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in query.items()
        }
        values.update(json or {})
        status, payload = await self.emulator.control(method, path, values)
        if isinstance(payload, Blob):
            if raw and status == 200:
                return payload.data
            payload = loads(payload.data)
        else:
            payload = loads(dumps(payload))  # a copy, as a JSON answer over HTTP is
        if status != 200:
            raise EmulatorError(status, payload)
        return payload

    async def close(self) -> None:
        pass


class FedDispatcher:
    """A dispatcher that gets the bot's updates from the emulator through ``feed_update``,
    each in a task of its own, as long polling handles them; a handler's returned method
    is called, as polling does. Updates sent before :meth:`start` go first."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, emulator: TelegramEmulator) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.emulator = emulator
        self.tasks: set[asyncio.Task[None]] = set()
        self.errors: list[BaseException] = []
        self.running = False

    def start(self) -> FedDispatcher:
        self.running = True
        self.emulator.push_updates(self.bot.token, self._receive)
        return self

    def _receive(self, raw: dict[str, Any]) -> None:
        update = Update.model_validate(loads(dumps(raw)), context={"bot": self.bot})
        task = asyncio.get_running_loop().create_task(self._handle(update))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _handle(self, update: Update) -> None:
        try:
            response = await self.dispatcher.feed_update(self.bot, update)
            if isinstance(response, TelegramMethod):
                await self.dispatcher.silent_call_request(bot=self.bot, result=response)
        except Exception as exc:  # noqa: BLE001 - logged like aiogram's polling does
            self.errors.append(exc)
            log.exception("update %s failed: %r", update.update_id, exc)

    async def idle(self) -> None:
        """Wait until every update handed over so far is handled."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def stop(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Take no more updates (they are kept for the next dispatcher), finish the ones
        being handled."""
        if not self.running:
            return
        self.running = False
        self.emulator.push_updates(self.bot.token, None)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.idle()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
