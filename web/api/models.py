"""The operator API's requests and responses, as pydantic models: the same classes validate
what comes in, shape what goes out and make the OpenAPI document (web/api/openapi.py)."""

from __future__ import annotations

import enum
import re
from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from billing.bounds import INT64_MAX, MAX_SETTING_RUB
from billing.models import Funding, PaymentProvider, PaymentStatus, PlanKind

_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# pydantic reads more from a string than the document promises ("0.5" as a date, "1_0" as
# 10): a path or query value is first held to the document's own shapes.
_DIGITS = re.compile(r"[0-9]+")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _digits(value: object) -> object:
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("a whole number in decimal digits")
    return value


def _json_integer(value: object) -> object:
    # JSON Schema's integer: 5 and 5.0 are, "5" and true are not (pydantic's lax mode takes
    # both, its strict mode refuses 5.0).
    if isinstance(value, bool | str) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("an integer")
    return value


def _full_date(value: object) -> object:
    if isinstance(value, str) and not _FULL_DATE.fullmatch(value):
        raise ValueError("a date of RFC 3339, e.g. 2026-12-01")
    return value


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("a date-time of RFC 3339 with its offset, e.g. 2026-12-01T00:00:00Z")
    return value


Whole = BeforeValidator(_digits)
JsonInteger = BeforeValidator(_json_integer)
DateTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
FullDate = Annotated[date, BeforeValidator(_full_date)]
TelegramId = Annotated[int, Field(ge=1, le=INT64_MAX, description="The user's Telegram id"), Whole]
Kopecks = Annotated[int, Field(description="Kopecks (1/100 of a ruble)")]
# An Idempotency-Key: visible ASCII, what the ledger's key column keeps beside the token name.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,64}$"


class Closed(BaseModel):
    """A request part that refuses fields it does not know (a typo is an error, not a
    silently ignored option)."""

    model_config = ConfigDict(extra="forbid")


# -- errors ---------------------------------------------------------------------------------


class FieldError(BaseModel):
    location: str = Field(description="Where: body.amount_kopecks, query.limit, path...")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details: every error of this API."""

    type: str = Field(description="A URI that names the kind of error")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str = Field(description="The path of the request that failed")
    errors: list[FieldError] | None = Field(
        default=None, description="The fields refused (validation errors only)"
    )


# -- requests -------------------------------------------------------------------------------


class UserPath(Closed):
    telegram_id: TelegramId


class UsageGroup(enum.StrEnum):
    DAY = "day"
    MONTH = "month"


class UsageQuery(Closed):
    since: DateTime | None = Field(
        default=None, description="From (inclusive); default: 30 days before `until`"
    )
    until: DateTime | None = Field(
        default=None,
        description="To (exclusive); default: now. A period ending before it starts is empty",
    )
    from_: FullDate | None = Field(
        default=None,
        alias="from",
        description="From this day (inclusive), its start in BOT_TIMEZONE; with `since` too, "
        "the later of the two",
    )
    to: FullDate | None = Field(
        default=None,
        description="To this day (inclusive), its end in BOT_TIMEZONE; with `until` too, the "
        "earlier of the two",
    )
    group: UsageGroup | None = Field(
        default=None,
        description="Also by the day or the month (in BOT_TIMEZONE) the operations were made "
        "in: each item then names its `period`",
    )


class PaymentsQuery(Closed):
    status: PaymentStatus | None = Field(default=None, description="Only payments in this state")
    limit: Annotated[int, Whole] = Field(default=50, ge=1, le=100, description="Payments per page")
    before: Annotated[int, Field(ge=1, le=INT64_MAX), Whole] | None = Field(
        default=None,
        description="Only payments older than this id: the `next_before` of the page before",
    )


class TopUpHeaders(BaseModel):
    idempotency_key: Annotated[str, StringConstraints(pattern=IDEMPOTENCY_KEY_PATTERN)] = Field(
        alias="Idempotency-Key",
        description="The client's key of this credit: the same key again credits nothing "
        "more and answers as the first time (1-64 visible ASCII characters)",
    )


class TopUpRequest(Closed):
    amount_kopecks: Annotated[int, JsonInteger] = Field(
        ge=1,
        le=MAX_SETTING_RUB * 100,
        description="What to credit, in kopecks (the server bounds it by ADMIN_ADJUST_MAX_RUB)",
    )
    # Something to read, and no NUL (a PostgreSQL text cannot hold one).
    reason: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True,
            min_length=1,
            max_length=500,
            pattern=r"^[^\x00]*[^\x00\s][^\x00]*$",
        ),
    ] = Field(description="Why: kept in the ledger as api:<token name>: <reason>")


# -- responses ------------------------------------------------------------------------------


class Balance(BaseModel):
    telegram_id: TelegramId
    balance_kopecks: Kopecks
    currency: str = Field(description="ISO 4217: the balance's currency")
    free_operations_left: int
    free_operations_granted: int


class UsageItem(BaseModel):
    type: str = Field(description="The operation type")
    source: Funding = Field(description="What the operations spent from")
    operations: int
    succeeded: int
    refunded: int = Field(description="Failed and given back to the same source")
    failed: int = Field(description="Failed with nothing to give back (a free type)")
    in_progress: int
    units: int = Field(description="Units taken and kept (refunded operations left out)")
    charged_kopecks: Kopecks = Field(description="Money kept from the balance")
    price_kopecks: int | None = Field(
        description="The type's price now in kopecks, before any discount; null: no longer sold"
    )
    period: str | None = Field(
        default=None,
        description="With `group`: the day (YYYY-MM-DD) or month (YYYY-MM) in BOT_TIMEZONE",
    )


class Usage(BaseModel):
    telegram_id: TelegramId
    since: datetime
    until: datetime
    group: UsageGroup | None = Field(default=None, description="As asked: by day or by month")
    timezone: str = Field(description="BOT_TIMEZONE: where a day or a month begins")
    items: list[UsageItem]


class FreeOperations(BaseModel):
    left: int
    granted: int
    renews_at: datetime | None = Field(description="When they are topped back up; null: never")


class HoldingLimits(BaseModel):
    plan: str = Field(description="The plan's code")
    units_left: int
    units_per_period: int
    ends_at: datetime | None = Field(
        description="A subscription's period end (its quota resets then) or a package's "
        "expiry; null: never"
    )
    auto_renew: bool
    due: bool = Field(description="Past its end and not rolled over yet: nothing spends from it")


class Limits(BaseModel):
    telegram_id: TelegramId
    free_operations: FreeOperations
    subscription: HoldingLimits | None
    packages: list[HoldingLimits]
    package_units_left: int = Field(description="Units of the packages that can be spent now")
    discount_percent: int


class Feature(BaseModel):
    type: str = Field(description="The operation type")
    unlocked: bool = Field(description="The user's plans let them use it")
    units: int = Field(description="Units one operation costs (0: free)")
    price_kopecks: Kopecks = Field(description="From the balance, with the user's discount")


class Features(BaseModel):
    telegram_id: TelegramId
    operations: list[Feature]


class TopUpResult(BaseModel):
    telegram_id: TelegramId
    entry_id: int = Field(description="The ledger entry of the credit")
    amount_kopecks: Kopecks
    balance_kopecks: Kopecks = Field(description="The balance right after this credit")
    reason: str = Field(description="As the ledger keeps it: api:<token name>: <reason>")
    created_at: datetime


class PlanOut(BaseModel):
    code: str
    kind: PlanKind
    name_ru: str
    name_en: str
    price_kopecks: Kopecks
    period: str | None
    units: int
    expires_days: int | None
    discount_percent: int
    unlocks: list[str] | None = Field(description="The operation types it unlocks; null: every")
    free_operations: int
    trial_days: int
    is_default: bool


class Plans(BaseModel):
    items: list[PlanOut]


class PaymentOut(BaseModel):
    id: int
    telegram_id: TelegramId
    provider: PaymentProvider
    status: PaymentStatus
    amount_kopecks: Kopecks = Field(description="What it credits")
    currency: str
    stars: int | None
    refunded_kopecks: Kopecks
    provider_payment_id: str | None
    plan: str | None = Field(description="The plan a Stars payment buys")
    created_at: datetime
    credited_at: datetime | None


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    next_before: int | None = Field(description="`before` for the next page; null: no more")
