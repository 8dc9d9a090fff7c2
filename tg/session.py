"""The HTTP session every process talks to Telegram through, whose errors never hold the token.

The bot token is part of every Bot API URL (``/bot<TOKEN>/getFile``) and of every file URL
(``/file/bot<TOKEN>/photos/…``). aiohttp puts the URL into its exceptions: a download that
answers 502 or 404 raises a ``ClientResponseError`` whose text and ``request_info`` name it,
and aiogram copies such a text into its ``TelegramNetworkError``. From there it would reach
log lines, ``operations.error`` and the tracebacks RQ keeps in Redis for days.

:class:`TokenSafeSession` (made by :func:`tg.factory.make_bot` for the bot, the workers and
the web server) catches what leaves a Bot API call or a download. An exception that names
the token anywhere — its text, its repr, its attributes' texts, the exceptions chained to
it — is replaced by a copy of the same type with the token written as ``***``, raised
``from None`` so the original is not chained to it either. The type, the HTTP status and
aiogram's fields stay as they were: callers (``workers.failures.classify``,
``workers.delivery``) tell transient from permanent failures exactly as before.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import aiohttp
from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp.client_reqrep import RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from billing.redaction import redact_text, secret_forms

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import TelegramType

_CHAIN_DEPTH = 10  # exceptions followed through __cause__ / __context__


class TokenRedactedError(Exception):
    """Stands for an exception that could not be copied without the token (never expected:
    every error aiohttp and aiogram raise is copied by :func:`redact_exception`)."""


def _mentions(exc: BaseException, secrets: tuple[str, ...]) -> bool:
    """Whether ``exc`` or an exception chained to it names a secret (text, repr, fields)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < _CHAIN_DEPTH:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        try:
            texts = [str(current), repr(current), *map(repr, current.args)]
            texts += [repr(value) for value in vars(current).values()]
        except Exception:  # noqa: BLE001 - unreadable: count it as naming the secret
            return True
        if any(secret in text for text in texts for secret in secrets):
            return True
        todo += [current.__cause__, current.__context__]
    return False


def _clean_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, URL):
        return URL(redact_text(str(value), secrets), encoded=True)
    if isinstance(value, BaseException):
        return redact_exception(value, secrets)
    return value


def _response_error(
    exc: aiohttp.ClientResponseError, secrets: tuple[str, ...]
) -> aiohttp.ClientResponseError:
    """The same HTTP error (type, status, message) about a URL without the token; without
    the redirect history and headers, which may name it too (a ``Location``)."""
    info = exc.request_info
    url = _clean_value(info.url, secrets)
    real_url = _clean_value(info.real_url, secrets)
    safe_info = RequestInfo(url, info.method, CIMultiDictProxy(CIMultiDict()), real_url)
    return type(exc)(
        safe_info, (), status=exc.status, message=redact_text(exc.message, secrets), headers=None
    )


def _copy(exc: BaseException, secrets: tuple[str, ...]) -> BaseException:
    """A copy of ``exc`` (same type, same fields) whose texts hold no secret. aiogram's
    exceptions take keyword-only arguments, so the copy is made without calling __init__."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return _response_error(exc, secrets)
    copy = type(exc).__new__(type(exc))
    for name, value in vars(exc).items():
        setattr(copy, name, _clean_value(value, secrets))
    copy.args = tuple(_clean_value(arg, secrets) for arg in exc.args)
    return copy


def redact_exception(exc: BaseException, secrets: tuple[str, ...]) -> BaseException:
    """``exc`` itself when nothing in it names a secret; else a copy that does not, with
    nothing chained (raise it ``from None``)."""
    if not secrets or not _mentions(exc, secrets):
        return exc
    try:
        copy = _copy(exc, secrets)
        if not _mentions(copy, secrets):
            return copy
    except Exception:  # noqa: BLE001, S110 - an exotic type: fall back to plain text
        pass
    return TokenRedactedError(redact_text(f"{type(exc).__name__}: {exc}", secrets))


class TokenSafeSession(AiohttpSession):
    """aiogram's aiohttp session; no exception it raises names the bot token."""

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        try:
            return await super().make_request(bot, method, timeout)
        except Exception as exc:  # noqa: BLE001 - every kind, re-raised below
            safe = redact_exception(exc, secret_forms([bot.token]))
            if safe is exc:
                raise
        raise safe from None

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - aiogram's signature
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        secrets = self._url_secrets(url)
        stream = super().stream_content(
            url,
            headers=headers,
            timeout=timeout,
            chunk_size=chunk_size,
            raise_for_status=raise_for_status,
        )
        safe: BaseException | None = None
        try:
            async for chunk in stream:
                yield chunk
        except Exception as exc:  # noqa: BLE001 - every kind, re-raised below
            safe = redact_exception(exc, secrets)
            if safe is exc:
                raise
        finally:
            await stream.aclose()
        if safe is not None:
            raise safe from None

    def _url_secrets(self, url: str) -> tuple[str, ...]:
        """The token in a file URL made from ``api.file`` (``…/file/bot{token}/{path}``);
        the whole URL for one of another shape."""
        prefix, marker, _ = self.api.file.partition("{token}")
        if marker and url.startswith(prefix):
            token = url[len(prefix) :].split("/", 1)[0]
            if token:
                return secret_forms([token])
        return secret_forms([url])
