"""Telegram's side of a Mini App launch: init data signed with the bot token, exactly as
Telegram signs it (https://core.telegram.org/bots/webapps#validating-data-received-via-the-
mini-app): every field but ``hash`` as ``key=value`` lines sorted by key, joined by newlines
(the data-check string); ``secret = HMAC_SHA256(key="WebAppData", msg=bot_token)``;
``hash = hex(HMAC_SHA256(key=secret, msg=data_check_string))``; the whole URL-encoded.

The chat page opens the Mini App with it in the URL's fragment (``#tgWebAppData=…``), as the
Telegram clients do; tests sign their own (and forge some)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode


def data_check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(fields.items()) if k != "hash")


def signature(token: str, fields: dict[str, str]) -> str:
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    return hmac.new(secret, data_check_string(fields).encode(), hashlib.sha256).hexdigest()


def init_data(
    token: str,
    user: dict[str, Any],
    *,
    auth_date: int | None = None,
    query_id: str | None = "AAHsandbox",
) -> str:
    """The ``initData`` string Telegram would give the Mini App of this bot for ``user``
    (``id``, ``first_name``, ``language_code``…)."""
    fields = {
        "user": json.dumps(user, ensure_ascii=False, separators=(",", ":")),
        "auth_date": str(int(time.time()) if auth_date is None else auth_date),
    }
    if query_id is not None:
        fields["query_id"] = query_id
    fields["hash"] = signature(token, fields)
    return urlencode(fields)
