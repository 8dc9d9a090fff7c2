"""The bot's fixtures (the bot polling the emulators in the test's event loop)."""

from tests.bot.conftest import (  # noqa: F401 - fixtures re-exported for this folder
    photo,
    start_bot,
    tg,
    tg_server,
    yk,
    yk_server,
)
