"""What each mode uses and costs, in words: the mode's prompt, its line in /help, the menu's
note on the modes that run without their model or are not offered (never silently)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from billing.ai_models import Catalogue, Unavailable, Use
from billing.models import Backend
from billing.prices import format_rub
from billing.settings import Settings
from texts.i18n import has, t
from texts.wallet_texts import mode_name, ops


def variant(key: str, use: Use | None, lang: str) -> str:
    """``key``, or its ``<key>-fal`` text when a fal model runs the mode and that text
    exists (an editor that takes free words says so instead of listing commands)."""
    if use is not None and use.backend == Backend.FAL and has(f"{key}-fal", lang):
        return f"{key}-fal"
    return key


def uses(use: Use, lang: str) -> str:
    """🤖 the model, or ⚙️ the local code (and why, when it stands in for the model)."""
    if use.backend == Backend.FAL:
        return t("models-uses-fal", lang, model=html.escape(use.model_id or ""))
    return t("models-uses-fallback" if use.fallback else "models-uses-local", lang)


def cost(use: Use, settings: Settings, lang: str) -> str:
    """The price before any plan's discount: rubles and operations, or free."""
    if use.units == 0:
        return t("models-cost-free", lang)
    return t(
        "models-cost-paid",
        lang,
        price=format_rub(use.units * settings.price_kopecks),
        ops=ops(use.units, lang),
    )


def help_line(mode: str, use: Use, settings: Settings, lang: str) -> str:
    return t(
        "models-help-line",
        lang,
        line=t(variant(f"bot-help-{mode}", use, lang), lang),
        uses=uses(use, lang),
        cost=cost(use, settings, lang),
    )


def menu_note(
    models: Catalogue, settings: Settings, modes: Sequence[str], lang: str
) -> str | None:
    """The modes that run on the local code because their model is not configured, and the
    ones not offered at all (and why); None when every mode runs as the catalogue says."""
    lines = []
    fallback = [
        m for m in modes if isinstance(use := models.use(m, settings), Use) and use.fallback
    ]
    if fallback:
        names = ", ".join(mode_name(m, lang) for m in fallback)
        lines.append(t("models-menu-fallback", lang, modes=names))
    missing = models.unavailable(settings, modes)
    if missing:
        names = ", ".join(
            t(f"models-why-{why.value}", lang, mode=mode_name(m, lang))
            for m, why in missing.items()
        )
        lines.append(t("models-menu-unavailable", lang, modes=names))
    return "\n".join(lines) or None


def unavailable_text(why: Unavailable, lang: str) -> str:
    return t(f"models-mode-{why.value}", lang)
