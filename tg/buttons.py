"""Buttons another process puts under its messages and the bot answers.

The worker (the plans offer under a result) and the web server send messages whose buttons
the bot handles; they cannot import the bot, so the payloads are spelled here, once.
``tests/bot/test_plans.py`` checks they equal ``bot.callbacks.Menu(action=...).pack()``.
"""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

MENU_PLANS = "menu:plans"  # bot.callbacks.Menu(action="plans"): the /plans screen
MENU_TOPUP = "menu:topup"  # bot.callbacks.Menu(action="topup"): the top-up menu
# Under a result: the bot sends the lossless file the worker kept for that message
# (jobqueue.result_files); the message itself says which result, so no id is needed.
RESULT_FILE = "result:file"


def one_button(text: str, callback_data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=callback_data)]]
    )
