"""FSM states (kept in Redis by aiogram's RedisStorage, so a restart keeps them)."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup

from jobqueue import catalogue

# A media mode is the state "Mode:<operation type>", one per catalogue entry; the mode
# stays open after an operation. (The names are those of the former StatesGroup `Mode`, so
# a state kept in Redis across an upgrade still opens the same mode.)
MODE_PREFIX = "Mode:"


def mode_state(op_type: str) -> str:
    return f"{MODE_PREFIX}{op_type}"


def mode_states() -> tuple[str, ...]:
    """The state of every mode of the catalogue."""
    return tuple(mode_state(entry.type) for entry in catalogue.entries())


class TopUpFlow(StatesGroup):
    amount = State()  # waiting for "Другая сумма"
    email = State()  # waiting for an e-mail for the 54-FZ receipt


class SupportFlow(StatesGroup):
    message = State()  # waiting for the message /paysupport passes on to the admins


def mode_of(state_name: str | None) -> str | None:
    """'Mode:upscale' → 'upscale'; None for any other state."""
    if state_name and state_name.startswith(MODE_PREFIX):
        return state_name.split(":", 1)[1]
    return None
