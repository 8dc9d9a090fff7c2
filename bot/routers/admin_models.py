"""The model catalogue from the bot, for settings.ADMIN_IDS only: /models (every operation:
what runs it, its price in units, whether it is offered and what runs now), /model_set TYPE
field=value ..., /model_enable TYPE, /model_disable TYPE. The same checks as
``python -m billing models``: a refusal is answered in words and changes nothing.

Like the admin router, its filter lets only admins' messages in (for anyone else these
commands do not exist), and it is included before the modes.
"""

from __future__ import annotations

import html
import json
import logging

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ai_models
from billing.ai_models import ModelInvalid, ModelSetting, Unavailable
from billing.settings import Settings
from bot.routers.admin import is_admin
from texts.i18n import t

log = logging.getLogger(__name__)


def model_line(row: ModelSetting, settings: Settings, lang: str) -> str:
    units = row.price_units(settings)
    use = ai_models.use_of(row, settings)
    if isinstance(use, Unavailable):
        now = t(f"admin-model-now-{use.value}", lang)
    elif use.fallback:
        now = t("admin-model-now-fallback", lang)
    else:
        now = t(f"admin-model-now-{use.backend}", lang)
    params = json.dumps(dict(row.params), ensure_ascii=False, sort_keys=True)
    return t(
        "admin-model-line",
        lang,
        type=row.type,
        backend=row.backend,
        model=html.escape(row.model_id or ""),
        units=t(
            "admin-model-units-default" if row.units is None else "admin-model-units",
            lang,
            units=str(units),
        ),
        state=t("admin-model-state-on" if row.enabled else "admin-model-state-off", lang)
        + f", {now}",
        params=t("admin-model-params", lang, params=html.escape(params)) if row.params else "",
    )


def _refusal(exc: ModelInvalid, lang: str) -> str:
    args = {k: html.escape(str(v))[:200] for k, v in exc.params.items()}
    return t(f"admin-model-error-{exc.code}", lang, **args)


async def cmd_models(
    message: Message, session: AsyncSession, settings: Settings, lang: str
) -> None:
    """/models: every operation's model, price and state."""
    rows = await ai_models.list_models(session)
    await session.rollback()
    lines = "\n".join(model_line(row, settings, lang) for row in rows)
    await message.answer(t("admin-models", lang, models=lines))


async def cmd_model_set(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """/model_set TYPE field=value ...: change one operation."""
    op_type, _, rest = (command.args or "").strip().partition(" ")
    if not op_type or not rest.strip():
        await message.answer(t("admin-model-set-usage", lang))
        return
    try:
        fields = ai_models.parse_fields(rest)
        row = await ai_models.set_model(session, op_type, **fields)
        await session.commit()
    except ModelInvalid as exc:
        await session.rollback()
        await message.answer(_refusal(exc, lang))
        return
    assert message.from_user is not None
    log.info("admin %s: model of %s set: %s", message.from_user.id, op_type, sorted(fields))
    await message.answer(t("admin-model-saved", lang, model=model_line(row, settings, lang)))


async def _toggle(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    settings: Settings,
    lang: str,
    *,
    enabled: bool,
) -> None:
    op_type = (command.args or "").strip()
    if not op_type or " " in op_type:
        name = "/model_enable" if enabled else "/model_disable"
        await message.answer(t("admin-model-toggle-usage", lang, command=name))
        return
    try:
        row = await ai_models.set_model(session, op_type, enabled=enabled)
        await session.commit()
    except ModelInvalid as exc:
        await session.rollback()
        await message.answer(_refusal(exc, lang))
        return
    assert message.from_user is not None
    log.info("admin %s: %s enabled=%s", message.from_user.id, op_type, enabled)
    await message.answer(t("admin-model-saved", lang, model=model_line(row, settings, lang)))


async def cmd_model_enable(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """/model_enable TYPE: offer the operation again."""
    await _toggle(message, command, session, settings, lang, enabled=True)


async def cmd_model_disable(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """/model_disable TYPE: stop offering the operation (the menu says it is off)."""
    await _toggle(message, command, session, settings, lang, enabled=False)


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="admin_models")
    router.message.filter(is_admin)
    router.message.register(cmd_models, Command("models"))
    router.message.register(cmd_model_set, Command("model_set"))
    router.message.register(cmd_model_enable, Command("model_enable"))
    router.message.register(cmd_model_disable, Command("model_disable"))
    return router
