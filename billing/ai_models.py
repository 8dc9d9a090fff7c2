"""The model catalogue: per operation type, what runs it (a fal.ai model, or the project's
own ``local`` code), with which parameters, at which price in units, and whether it is
offered (the ``operation_models`` table, seed 001 stage 7: models move out of the code).

The price here is the price: :func:`billing.prices.units_of` takes the catalogue's units
(when the operator set them) before OPERATION_UNITS and the PRICES line, and the charge, the
quotes and every screen read them through it. Provider keys are never stored: whether fal.ai
is usable comes from the settings (FAL_KEY).

What an operation runs with now is a :class:`Use` (backend, model id, parameters: what the
job path's ``ModelCall`` carries): the catalogue's model when its backend is configured, its
``local`` fallback when not and one exists, else nothing (the mode is not offered, and the
menu says so).

Like every billing service, nothing here commits: the caller owns the transaction. Bad
input raises :class:`ModelInvalid` before anything is written.
"""

from __future__ import annotations

import enum
import json
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import BillingError
from billing.models import Backend, OperationModel
from billing.prices import PRICES, operation_type, operation_types, units_of
from billing.settings import MAX_OPERATION_UNITS, Settings

BACKENDS = tuple(b.value for b in Backend)
# fal.ai's endpoint ids: an owner and one or more path parts ("fal-ai/flux/schnell").
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63}){1,4}")
MODEL_ID_CHARS = 200
PARAMS_CHARS = 4000  # the JSON of one model's parameters
# The job fills these from the user's input: a catalogue value would replace the photo or
# the words the user paid for.
INPUT_PARAMS = frozenset(
    {"prompt", "image_url", "image_urls", "base_image_url", "swap_image_url", "webhook_url"}
)
# Parameter names that would carry a credential: keys live in the settings, never here.
SECRET_PARAM = re.compile(r"key|token|secret|passw|auth|credential", re.IGNORECASE)


@dataclass(frozen=True)
class Default:
    """An operation's default model, and whether the project has its own implementation
    (the fallback without FAL_KEY; None of fal's: ``model_id`` None)."""

    backend: str
    model_id: str | None
    params: Mapping[str, Any] = field(default_factory=dict)
    local: bool = True

    @property
    def fal(self) -> bool:
        return self.model_id is not None


# The defaults, seeded by migration 0008 (README, "Models per operation", says why each).
DEFAULTS: dict[str, Default] = {
    "generate": Default("fal", "fal-ai/flux/schnell", {"image_size": "square_hd"}, local=False),
    "edit": Default("fal", "fal-ai/flux-pro/kontext"),
    "merge": Default("fal", "fal-ai/flux-pro/kontext/max/multi"),
    "face_swap": Default("fal", "fal-ai/face-swap"),
    "retouch": Default("fal", "fal-ai/codeformer", {"fidelity": 0.7}),
    "upscale": Default("fal", "fal-ai/esrgan", {"scale": 2}),
    "add_text": Default("local", None),
}


class ModelInvalid(BillingError):
    """A value the catalogue refuses; nothing was changed. ``code`` names the rule (the
    admin's texts are ``admin-model-error-<code>``), ``params`` its details; ``str()`` is
    English (the CLI prints it)."""

    MESSAGES = {
        "unknown_type": "unknown operation type {value!r} (known: {choices})",
        "bad_pair": "{value!r} is not field=value",
        "unknown_field": "unknown field {field!r} (fields: {fields})",
        "repeated": "{field} is given twice",
        "missing": "nothing to change: give field=value",
        "bad_backend": "backend must be one of {choices}, got {value!r}",
        "no_local": "{type} has no local implementation: its backend is fal",
        "no_fal": "{type} runs only locally: it has no fal model",
        "model_needed": "backend fal needs a model id (model=owner/name)",
        "bad_model": "{value!r} is not a fal model id like fal-ai/flux/schnell",
        "bad_units": "units must be a whole number from 0 to {high}, or default; got {value!r}",
        "bad_params": "params must be a JSON object of at most {high} characters: {value}",
        "input_param": "params cannot set {value!r}: the job fills it from the user's input",
        "secret_param": "params cannot hold {value!r}: provider keys come from the settings",
        "bad_bool": "{field} must be yes or no, got {value!r}",
    }

    def __init__(self, code: str, **params: object):
        names = re.findall(r"{(\w+)", self.MESSAGES.get(code, ""))
        text = self.MESSAGES.get(code, code).format(**{k: params.get(k) for k in names})
        super().__init__(text)
        self.code = code
        self.params = params


class Unavailable(enum.StrEnum):
    DISABLED = "disabled"  # the operator turned it off
    NO_KEY = "no_key"  # its backend is fal, FAL_KEY is not set and it has no local code


@dataclass(frozen=True)
class ModelSetting:
    """One operation's row of the catalogue, as stored."""

    type: str
    backend: str
    model_id: str | None
    params: Mapping[str, Any]
    units: int | None  # the operator's price in units; None: the default price
    enabled: bool

    def price_units(self, settings: Settings) -> int:
        return units_of(self.type, settings, self.units)


@dataclass(frozen=True)
class Use:
    """What an operation runs with now: the ``ModelCall``'s backend, model id, parameters;
    ``fallback``: its catalogue backend (fal) is not configured and the local code stands
    in; ``units``: its price."""

    type: str
    backend: str
    model_id: str | None
    params: Mapping[str, Any]
    units: int
    fallback: bool = False

    def as_input(self) -> dict[str, Any]:
        """For the operation's ``input_ref`` (what the user was shown is what runs)."""
        return {"backend": self.backend, "model_id": self.model_id, "params": dict(self.params)}


def _configured(backend: str, settings: Settings) -> bool:
    return backend == Backend.LOCAL or bool(getattr(settings, f"{backend}_configured", False))


def use_of(setting: ModelSetting, settings: Settings) -> Use | Unavailable:
    """What ``setting``'s operation runs with under ``settings``, or why it is not offered."""
    if not setting.enabled:
        return Unavailable.DISABLED
    units = setting.price_units(settings)
    if _configured(setting.backend, settings):
        local = setting.backend == Backend.LOCAL
        return Use(
            setting.type,
            setting.backend,
            None if local else setting.model_id,
            {} if local else dict(setting.params),
            units,
        )
    if has_local(setting.type):
        return Use(setting.type, Backend.LOCAL.value, None, {}, units, fallback=True)
    return Unavailable.NO_KEY


def has_local(op_type: str) -> bool:
    default = DEFAULTS.get(op_type)
    return default is None or default.local


def has_fal(op_type: str) -> bool:
    default = DEFAULTS.get(op_type)
    return default is not None and default.fal


@dataclass(frozen=True)
class Catalogue:
    """Every operation's setting, in menu order (a snapshot read by :func:`catalogue`)."""

    rows: Mapping[str, ModelSetting]

    def __getitem__(self, op_type: str) -> ModelSetting:
        return self.rows[op_type]

    def use(self, op_type: str, settings: Settings) -> Use | Unavailable:
        return use_of(self.rows[op_type], settings)

    def units(self, op_type: str, settings: Settings) -> int:
        return self.rows[op_type].price_units(settings)

    def set_units(self) -> dict[str, int]:
        """The prices the operator set (type -> units), for ``units_of``."""
        return {k: row.units for k, row in self.rows.items() if row.units is not None}

    def offered(self, settings: Settings, types: Sequence[str] | None = None) -> tuple[str, ...]:
        """The types offered now (of ``types``, in their order; default every type)."""
        names = types if types is not None else tuple(self.rows)
        return tuple(k for k in names if isinstance(self.use(k, settings), Use))

    def unavailable(
        self, settings: Settings, types: Sequence[str] | None = None
    ) -> dict[str, Unavailable]:
        names = types if types is not None else tuple(self.rows)
        return {k: why for k in names if isinstance(why := self.use(k, settings), Unavailable)}


def _default_setting(op_type: str) -> ModelSetting:
    default = DEFAULTS.get(op_type) or Default("local", None)
    return ModelSetting(
        op_type, default.backend, default.model_id, dict(default.params), None, True
    )


def _setting(row: OperationModel) -> ModelSetting:
    return ModelSetting(
        row.type, row.backend, row.model_id, dict(row.params or {}), row.units, bool(row.enabled)
    )


def default_catalogue() -> Catalogue:
    """The defaults alone (a database not migrated yet; tests of texts)."""
    return Catalogue({k.value: _default_setting(k.value) for k in operation_types()})


async def catalogue(session: AsyncSession) -> Catalogue:
    """The whole catalogue, one row per known type (a type added to the code after the
    migration seeded the table has its default until an operator sets it)."""
    rows = {r.type: r for r in await session.scalars(select(OperationModel))}
    return Catalogue(
        {
            k.value: _setting(rows[k.value]) if k.value in rows else _default_setting(k.value)
            for k in operation_types()
        }
    )


async def list_models(session: AsyncSession) -> list[ModelSetting]:
    return list((await catalogue(session)).rows.values())


async def get_model(session: AsyncSession, op_type: str) -> ModelSetting:
    kind = _known(op_type)
    row = await session.get(OperationModel, kind)
    return _setting(row) if row is not None else _default_setting(kind)


_UNSET: Any = object()


async def set_model(
    session: AsyncSession,
    op_type: str,
    *,
    backend: str = _UNSET,
    model_id: str | None = _UNSET,
    params: Mapping[str, Any] = _UNSET,
    units: int | None = _UNSET,
    enabled: bool = _UNSET,
) -> ModelSetting:
    """Change one operation's row (what is not given stays); ``units=None``: back to the
    default price. Every value is checked, then the row as it will be, before anything is
    written; a refusal raises :class:`ModelInvalid` and changes nothing."""
    kind = _known(op_type)
    current = await get_model(session, kind)
    values = {
        "backend": current.backend if backend is _UNSET else _check_backend(backend),
        "model_id": current.model_id if model_id is _UNSET else _check_model_id(model_id),
        "params": dict(current.params) if params is _UNSET else _check_params(params),
        "units": current.units if units is _UNSET else _check_units(units),
        "enabled": current.enabled if enabled is _UNSET else _check_bool("enabled", enabled),
    }
    if values["backend"] == Backend.LOCAL and not has_local(kind):
        raise ModelInvalid("no_local", type=kind)
    if values["backend"] == Backend.FAL:
        if not has_fal(kind):
            raise ModelInvalid("no_fal", type=kind)
        if values["model_id"] is None:
            raise ModelInvalid("model_needed")
    row = await session.get(OperationModel, kind, with_for_update=True)
    if row is None:
        row = OperationModel(type=kind)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()
    return _setting(row)


async def enable(session: AsyncSession, op_type: str) -> ModelSetting:
    return await set_model(session, op_type, enabled=True)


async def disable(session: AsyncSession, op_type: str) -> ModelSetting:
    return await set_model(session, op_type, enabled=False)


# -- checks and the field=value syntax of the CLI and /model_set ------------------------------


def _known(op_type: object) -> str:
    name = str(op_type)
    if name not in PRICES:
        raise ModelInvalid("unknown_type", value=name[:40], choices=", ".join(PRICES))
    return operation_type(name).value


def _check_backend(value: object) -> str:
    if value not in BACKENDS:
        raise ModelInvalid("bad_backend", value=str(value)[:40], choices=", ".join(BACKENDS))
    return str(value)


def _check_model_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MODEL_ID_CHARS or not MODEL_ID.fullmatch(value):
        raise ModelInvalid("bad_model", value=str(value)[:60])
    return value


def _check_units(value: object) -> int | None:
    if value is None:
        return None
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 0 <= value <= MAX_OPERATION_UNITS
    ):
        raise ModelInvalid("bad_units", value=str(value)[:40], high=MAX_OPERATION_UNITS)
    return value


def _finite(value: object) -> bool:
    """JSON the database and fal.ai both take: no NaN or infinity anywhere."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _check_params(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelInvalid("bad_params", value="not an object", high=PARAMS_CHARS)
    try:
        text = json.dumps(dict(value), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ModelInvalid("bad_params", value=str(exc)[:80], high=PARAMS_CHARS) from None
    if len(text) > PARAMS_CHARS or not _finite(value):
        raise ModelInvalid("bad_params", value="too long", high=PARAMS_CHARS)
    for name in value:
        if name in INPUT_PARAMS:
            raise ModelInvalid("input_param", value=name)
        if SECRET_PARAM.search(name):
            raise ModelInvalid("secret_param", value=name[:40])
    return json.loads(text)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ModelInvalid("bad_bool", field=name, value=str(value)[:40])
    return value


FIELDS = ("backend", "model", "params", "units", "enabled")
_YES = {"yes", "true", "1", "on", "да"}
_NO = {"no", "false", "0", "off", "нет"}


def parse_fields(tokens: str | Sequence[str]) -> dict[str, Any]:
    """``field=value`` pairs into keyword arguments of :func:`set_model`: ``backend=fal``,
    ``model=fal-ai/flux/dev``, ``params='{"scale": 4}'`` (a JSON object), ``units=2`` or
    ``units=default``, ``enabled=yes``. A string is split like a shell line."""
    if isinstance(tokens, str):
        try:
            tokens = shlex.split(tokens)
        except ValueError:
            raise ModelInvalid("bad_pair", value=tokens[:60]) from None
    fields: dict[str, Any] = {}
    for token in tokens:
        name, sep, raw = token.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise ModelInvalid("bad_pair", value=token[:60])
        if name not in FIELDS:
            raise ModelInvalid("unknown_field", field=name[:40], fields=", ".join(FIELDS))
        key = "model_id" if name == "model" else name
        if key in fields:
            raise ModelInvalid("repeated", field=name)
        fields[key] = _parse_value(name, raw.strip())
    if not fields:
        raise ModelInvalid("missing")
    return fields


def _parse_value(name: str, raw: str) -> Any:
    if name == "backend":
        return raw.lower()
    if name == "model":
        return raw
    if name == "units":
        if raw.lower() == "default":
            return None
        if not re.fullmatch(r"[0-9]{1,9}", raw):
            raise ModelInvalid("bad_units", value=raw[:40], high=MAX_OPERATION_UNITS)
        return int(raw)
    if name == "params":
        try:
            value = json.loads(raw)
        except ValueError:
            raise ModelInvalid("bad_params", value="not JSON", high=PARAMS_CHARS) from None
        return value  # checked as a mapping by set_model
    if raw.lower() in _YES:
        return True
    if raw.lower() in _NO:
        return False
    raise ModelInvalid("bad_bool", field=name, value=raw[:40])
