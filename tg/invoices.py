"""A Telegram Stars invoice of a pending purchase (:mod:`billing.stars`), as a message in a
chat (``sendInvoice``) or as a link (``createInvoiceLink``: a Mini App's
``openInvoice(url)``, a button anywhere). One shape for both: currency XTR, no provider
token, one price of the purchase's ⭐, the payload naming its payment row — so the
pre-checkout check and the credit of a ``successful_payment`` are the same whichever way it
was paid.

The words (title, description, price label) come from the caller (``texts``: tg and texts
do not import each other), already cut to Telegram's limits here.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiogram import Bot
from aiogram.types import LabeledPrice, Message

from billing.stars import CURRENCY, StarsInvoice

TITLE_CHARS = 32
DESCRIPTION_CHARS = 255


class InvoiceWords(Protocol):
    """What the invoice says (``texts.money_texts.InvoiceText``)."""

    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def label(self) -> str: ...


def _fields(invoice: StarsInvoice, words: InvoiceWords) -> dict[str, Any]:
    return {
        "title": words.title[:TITLE_CHARS],
        "description": words.description[:DESCRIPTION_CHARS],
        "payload": invoice.payload,
        "currency": CURRENCY,
        "prices": [LabeledPrice(label=words.label, amount=invoice.stars)],
    }


async def send_invoice(
    bot: Bot, chat_id: int, invoice: StarsInvoice, words: InvoiceWords
) -> Message:
    """The invoice as a message with Telegram's ⭐ Pay button."""
    return await bot.send_invoice(chat_id=chat_id, **_fields(invoice, words))


async def invoice_link(bot: Bot, invoice: StarsInvoice, words: InvoiceWords) -> str:
    """The invoice as a link (``https://t.me/$…``); paying it sends the bot the same
    pre-checkout query and successful payment as the message would."""
    return await bot.create_invoice_link(**_fields(invoice, words))
