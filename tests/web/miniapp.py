"""Helpers of the Mini App tests: a caller with init data signed as Telegram signs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.webapp import init_data
from tests.web.conftest import TOKEN, Stack


def signed(telegram_id: int, *, language: str = "ru", auth_date: int | None = None) -> str:
    user = {"id": telegram_id, "first_name": "Тест", "language_code": language}
    return init_data(TOKEN, user, auth_date=auth_date)


@dataclass
class AppCaller:
    stack: Stack
    init_data: str

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        async with self.stack.http.get(
            self.stack.url + path,
            params={k: str(v) for k, v in params.items()},
            headers={"Authorization": f"tma {self.init_data}"},
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.stack.http.post(
            self.stack.url + path, json=body, headers={"Authorization": f"tma {self.init_data}"}
        ) as resp:
            return resp.status, await resp.json(content_type=None)


def caller(stack: Stack, telegram_id: int, *, language: str = "ru") -> AppCaller:
    return AppCaller(stack, signed(telegram_id, language=language))
