"""FSM states (kept in Redis by aiogram's RedisStorage, so a restart keeps them)."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class Mode(StatesGroup):
    """The media mode the user picked; the mode stays open after an operation."""

    generate = State()
    edit = State()
    merge = State()
    face_swap = State()
    retouch = State()
    upscale = State()
    add_text = State()


class TopUpFlow(StatesGroup):
    amount = State()  # waiting for "Другая сумма"
    email = State()  # waiting for an e-mail for the 54-FZ receipt


def mode_of(state_name: str | None) -> str | None:
    """'Mode:upscale' → 'upscale'; None for any other state."""
    if state_name and state_name.startswith("Mode:"):
        return state_name.split(":", 1)[1]
    return None
