"""The one Settings object. Every process reads it once in its composition root."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from math import ceil
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from billing.bounds import MAX_SETTING_RUB

PLACEHOLDERS = {"", "changeme", "change-me", "your_shop_id", "your_secret_key", "test", "secret"}
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as secret_token
EXAMPLE_HOSTS = ("example.com", "example.org", "example.net")

# What the deadline margin must cover past a job's timeout before the sweeper may void its
# operation. RQ's work-horse monitor kills a horse still alive 60 s past the job's timeout
# (rq/worker/worker_classes.py, ``job.timeout + 60``) and looks only once per job monitoring
# interval (rq.defaults.DEFAULT_JOB_MONITORING_INTERVAL, which the worker keeps), so a
# stuck horse may live on (and deliver) for both; the failure callback (jobqueue.queue) then
# has its own timeout to refund or post.
RQ_HORSE_KILL_GRACE_SECONDS = 60
RQ_JOB_MONITORING_INTERVAL_SECONDS = 30
FAILURE_CALLBACK_SECONDS = 60
MIN_JOB_DEADLINE_MARGIN_SECONDS = (
    RQ_HORSE_KILL_GRACE_SECONDS + RQ_JOB_MONITORING_INTERVAL_SECONDS + FAILURE_CALLBACK_SECONDS
)
# The longest an operation may take from its charge to its deadline (queue wait + job
# timeout + margin). The "delivered" markers and failed jobs stay in Redis for 7 days, well
# past it; and a deadline past the calendar's end failed every charge with an OverflowError.
MAX_OPERATION_DEADLINE_SECONDS = 24 * 3600

# The sources a charge may spend from (operations.funding), in the default order.
SOURCES = ("free", "subscription", "package", "balance")
# How users may pay (PAYMENT_METHODS), and the most ⭐ one Telegram invoice may ask.
PAYMENT_METHODS = ("yookassa", "stars")
MAX_STARS_PER_INVOICE = 10_000
# The most units one operation type may cost (OPERATION_UNITS).
MAX_OPERATION_UNITS = 1000


def _is_example_url(url: str | None) -> bool:
    """env.prod.example's addresses, left unchanged: bot.example.com, t.me/your_bot."""
    if not url:
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if any(host == h or host.endswith("." + h) for h in EXAMPLE_HOSTS):
        return True
    return host == "t.me" and parts.path.rstrip("/") == "/your_bot"


def normalize_database_url(url: str) -> str:
    """Accept the seed's sync forms and give the async driver form SQLAlchemy needs."""
    url = url.strip()
    for prefix, replacement in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgresql+psycopg2://", "postgresql+asyncpg://"),
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("sqlite+pysqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(f"unsupported DATABASE_URL scheme: {url.split(':', 1)[0]!r}")


def _check_http_url(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def rubles_to_kopecks(value: Decimal | int | str) -> int:
    amount = Decimal(str(value))
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("amounts have at most two decimal places (kopecks)")
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


API_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
API_TOKEN_SCOPES = ("read", "write")
MIN_API_SECRET_CHARS = 16


@dataclass(frozen=True)
class ApiToken:
    """One operator API token of API_TOKENS; its secret never shows in a repr."""

    name: str
    scope: str  # "read" or "write"
    secret: str = field(repr=False)


def parse_api_tokens(value: str) -> tuple[ApiToken, ...]:
    """ "name:scope:secret,..." -> the tokens; a malformed entry is refused without quoting
    its secret."""
    tokens: list[ApiToken] = []
    for number, item in enumerate(value.replace(";", ",").split(","), start=1):
        if not item.strip():
            continue
        name, _, rest = item.strip().partition(":")
        scope, _, secret = rest.partition(":")
        if not API_TOKEN_NAME.fullmatch(name):
            raise ValueError(
                f"API_TOKENS entry {number}: a name of 1-32 characters A-Z a-z 0-9 _ . - first "
                "(name:scope:secret)"
            )
        if scope not in API_TOKEN_SCOPES:
            raise ValueError(f"API_TOKENS {name!r}: the scope must be read or write")
        if len(secret) < MIN_API_SECRET_CHARS or secret != secret.strip() or "," in secret:
            raise ValueError(
                f"API_TOKENS {name!r}: the secret must be at least {MIN_API_SECRET_CHARS} "
                "characters without spaces (e.g. `openssl rand -hex 32`)"
            )
        tokens.append(ApiToken(name, scope, secret))
    if len({t.name for t in tokens}) != len(tokens):
        raise ValueError("API_TOKENS names a token twice")
    if len({t.secret for t in tokens}) != len(tokens):
        raise ValueError("API_TOKENS gives two tokens the same secret")
    return tuple(tokens)


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting's error never quotes what was given, which may
    # be a secret (API_TOKENS, a token pasted into the wrong variable).
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    ENVIRONMENT: Literal["development", "test", "production"] = "development"
    LOG_LEVEL: str = "INFO"

    # Telegram
    BOT_TOKEN: SecretStr | None = None
    TELEGRAM_API_URL: str = "https://api.telegram.org"
    TELEGRAM_WEBHOOK_URL: str | None = None
    TELEGRAM_WEBHOOK_SECRET: SecretStr | None = None
    ADMIN_IDS: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # The Mini App (issue 17): its public HTTPS address (the web server's /app/), given to
    # the menu button and the inline buttons of /balance, /plans and /history. Unset: no
    # button (the pages are served anyway). Init data older than the max age is refused:
    # Telegram signs it once when the app opens and the page sends it with every call.
    WEBAPP_URL: str | None = None
    WEBAPP_INIT_MAX_AGE_SECONDS: int = Field(default=86_400, ge=60)

    # Storage
    DATABASE_URL: str = "sqlite:///./media_lab.db"
    REDIS_URL: str = "redis://127.0.0.1:6379/0"

    # Billing (the seed's names: rubles on the outside, kopecks inside)
    PRICE_PER_OPERATION: Decimal = Decimal("10")
    FREE_OPERATIONS_COUNT: int = 4
    TOPUP_MIN_RUB: int = 10
    TOPUP_MAX_RUB: int = 100_000
    TOPUP_PRESETS_RUB: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [100, 300, 500, 1000]
    )
    # The most one operator adjustment (/grant, /debit, python -m billing adjust) may move.
    ADMIN_ADJUST_MAX_RUB: int = 100_000
    # The clock of the bot's audience and its operator (an IANA zone): the dates users see
    # (plan ends, history) and the days /stats counts in.
    BOT_TIMEZONE: str = "Europe/Moscow"

    # Plans (issue 14). The order a charge looks for ONE source that covers the whole price:
    # any permutation of free, subscription, package, balance.
    SPENDING_ORDER: Annotated[tuple[str, ...], NoDecode] = SOURCES
    # Units per operation type, overriding the catalogue's (billing/prices.py), e.g.
    # "generate=2,edit=2"; a type not named keeps its catalogue units.
    OPERATION_UNITS: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    # Free operations are topped back up to FREE_OPERATIONS_COUNT every this many days
    # (after signup / the last top-up). Unset: never.
    FREE_OPERATIONS_RENEW_DAYS: int | None = None
    # Ask before each charge, for users who did not choose in /settings.
    CONFIRM_CHARGES_DEFAULT: bool = False
    # How often the scheduled pass renews and ends holdings that are due.
    PLAN_RENEWAL_INTERVAL_SECONDS: float = Field(default=300.0, gt=0)

    # How users pay (issue 16): "yookassa" (a redirect to YooKassa's checkout), "stars"
    # (Telegram Stars invoices, currency XTR), or both, in the top-up menu's order. With
    # "stars" alone no YooKassa setting is needed.
    PAYMENT_METHODS: Annotated[tuple[str, ...], NoDecode] = ("yookassa",)
    # The Stars packs the menu offers, in ⭐, and what one ⭐ credits, in kopecks.
    STARS_PACKS: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [50, 100, 250, 500]
    )
    KOPECKS_PER_STAR: int = Field(default=100, ge=1, le=100_000)

    # YooKassa
    YOOKASSA_SHOP_ID: str | None = None
    YOOKASSA_SECRET_KEY: SecretStr | None = None
    YOOKASSA_RETURN_URL: str = "https://t.me/"
    YOOKASSA_CURRENCY: str = "RUB"
    YOOKASSA_WEBHOOK_URL: str | None = None
    YOOKASSA_API_URL: str = "https://api.yookassa.ru/v3"
    YOOKASSA_TIMEOUT: float = 15.0
    YOOKASSA_RECEIPTS_ENABLED: bool = False
    YOOKASSA_VAT_CODE: int = 1
    # The safety net for lost notifications (billing.payment_checks): a worker's pass asks
    # the API about a payment still open this long after it was created, then again after
    # twice as long each time (at most every 3 hours), up to its expiry: how long YooKassa
    # may keep a payment unpaid before it cancels it (about an hour for a card). It runs at
    # most once per PAYMENT_RECHECK_INTERVAL_SECONDS per worker.
    PAYMENT_RECHECK_AFTER_SECONDS: float = Field(default=300.0, gt=0)
    PAYMENT_RECHECK_INTERVAL_SECONDS: float = Field(default=60.0, gt=0)
    PAYMENT_PENDING_EXPIRY_SECONDS: float = Field(default=86_400.0, gt=0)
    # Extra networks trusted to send notifications, on top of YooKassa's published ones.
    YOOKASSA_TRUSTED_NETWORKS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Reverse proxies whose X-Forwarded-For is believed. Empty: never believed.
    TRUSTED_PROXIES: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Web server
    WEB_HOST: str = "0.0.0.0"
    WEB_PORT: int = 8080
    WEB_MAX_BODY_BYTES: int = 64 * 1024
    # The operator's token for a fresh YooKassa API check (/yookassa/health?check=1 with
    # "Authorization: Bearer <token>"). Unset: no fresh check from outside at all.
    HEALTH_CHECK_TOKEN: SecretStr | None = None
    # The operator API (/api/v1, issue 17): bearer tokens "name:scope:secret" separated by
    # commas (scope read or write; a write token may read too). Unset: every call is a 401.
    API_TOKENS: SecretStr | None = None
    # Requests one token may make per minute (a fixed window in Redis); past it, 429.
    API_RATE_LIMIT_PER_MINUTE: int = Field(default=120, ge=1, le=1_000_000)

    # Jobs
    RQ_QUEUE: str = "media"
    JOB_TIMEOUT_SECONDS: int = 180
    JOB_RETRIES: int = 2
    # Seconds before each of RQ's retries of a failed job (set at enqueue; the last repeats).
    JOB_RETRY_INTERVALS: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [2, 5, 15])
    # Seconds between a worker's tries of a Telegram call failing 5xx or on the network.
    TELEGRAM_RETRY_BACKOFF: Annotated[tuple[float, ...], NoDecode] = (0.5, 1.5, 4.0)
    # How long an operation may wait in the queue; its job's timeout and the deadline margin
    # come on top (see operation_deadline_seconds).
    OPERATION_DEADLINE_SECONDS: int = 570
    MAX_INPUT_FILE_BYTES: int = 20 * 1024 * 1024
    MAX_OUTPUT_PIXELS: int = 36_000_000
    # A result's uncompressed file is kept in Redis this long for its 📎 button (the bot sends
    # it on a tap): Redis holds about (results per this time) × (their size).
    RESULT_FILE_KEEP_SECONDS: int = Field(default=6 * 3600, ge=60)
    # The sweeper voids operations still queued/running past their deadline; a claimed
    # operation's deadline is its job's timeout (set at enqueue) + JOB_DEADLINE_MARGIN_SECONDS
    # from its start (operation_deadline_seconds).
    SWEEP_INTERVAL_SECONDS: float = 30.0
    JOB_DEADLINE_MARGIN_SECONDS: int = MIN_JOB_DEADLINE_MARGIN_SECONDS
    # A payment message (credited / canceled / refunded) the web server has not marked sent
    # this long after the commit is sent by a worker's maintenance pass. The web server gives
    # up its own attempts at half of it, so the two never send the same message.
    PAYMENT_NOTICE_GRACE_SECONDS: float = Field(default=300.0, gt=0)
    # Test-only pseudo-operations (sleep, hang, crash, noop) in the worker. Never in production.
    WORKER_TEST_HOOKS: bool = False
    THROTTLE_RATE_PER_SECOND: float = 2.0
    THROTTLE_BURST: int = 10

    # fal.ai. Which model runs each operation is the model catalogue's (billing.ai_models),
    # never a setting. Without a key the operations whose model is on fal run their local
    # code, and generate (none) is not offered.
    FAL_KEY: SecretStr | None = None
    FAL_API_URL: str = "https://queue.fal.run"
    # fal's published webhook keys (ED25519, a JWKS), fetched and cached by the web server.
    FAL_JWKS_URL: str = "https://rest.alpha.fal.ai/.well-known/jwks.json"
    # A signed webhook whose timestamp is further than this from now is refused (a replay).
    FAL_WEBHOOK_TOLERANCE_SECONDS: float = Field(default=300.0, gt=0)
    # How long a submitted model call may take before the sweeper refunds it.
    FAL_DEADLINE_SECONDS: int = Field(default=900, ge=1)
    # A lost webhook: the queue's status is polled this long after the submit, then every
    # FAL_POLL_INTERVAL_SECONDS until the deadline.
    FAL_POLL_AFTER_SECONDS: float = Field(default=120.0, gt=0)
    FAL_POLL_INTERVAL_SECONDS: float = Field(default=60.0, gt=0)
    # The web server's public base URL (https://bot.example.com): fal posts results to
    # <it>/fal/webhook. Unset: no webhook, the status polls (every 3 s) bring the results.
    WEB_PUBLIC_URL: str | None = None

    # /privacy: the operator's privacy text, inline or from a file (the file wins); neither
    # set: the default text of texts/locales (what Media Lab stores and for how long).
    PRIVACY_TEXT: str | None = None
    PRIVACY_FILE: str | None = None
    # /paysupport: how users reach the operator about a payment (an @username, an e-mail,
    # a link). Unset: the users' messages still reach ADMIN_IDS through /paysupport.
    SUPPORT_CONTACT: str | None = None

    @field_validator("PAYMENT_METHODS", mode="before")
    @classmethod
    def _payment_methods(cls, value: object) -> object:
        if isinstance(value, str):
            value = [x.strip().lower() for x in value.replace(";", ",").split(",") if x.strip()]
        if isinstance(value, list | tuple):
            items = tuple(str(x) for x in value)
            unknown = [x for x in items if x not in PAYMENT_METHODS]
            if not items or unknown or len(set(items)) != len(items):
                raise ValueError(
                    f"PAYMENT_METHODS must name one or both of {', '.join(PAYMENT_METHODS)}, "
                    f"each once (got {', '.join(items) or 'nothing'})"
                )
            return items
        return value

    @field_validator("STARS_PACKS", mode="before")
    @classmethod
    def _stars_packs(cls, value: object) -> object:
        if isinstance(value, str):
            value = [int(x) for x in value.replace(";", ",").split(",") if x.strip()]
        return value

    @field_validator("STARS_PACKS")
    @classmethod
    def _stars_packs_range(cls, value: list[int]) -> list[int]:
        # Telegram takes 1 to 10000 ⭐ per invoice.
        if not value or any(not 1 <= x <= MAX_STARS_PER_INVOICE for x in value):
            raise ValueError(f"STARS_PACKS must be 1 to {MAX_STARS_PER_INVOICE} ⭐ each")
        return value

    @field_validator("ADMIN_IDS", "TOPUP_PRESETS_RUB", "JOB_RETRY_INTERVALS", mode="before")
    @classmethod
    def _int_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(x) for x in value.replace(";", ",").split(",") if x.strip()]
        return value

    @field_validator("TELEGRAM_RETRY_BACKOFF", mode="before")
    @classmethod
    def _float_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(x) for x in value.replace(";", ",").split(",") if x.strip())
        return value

    @field_validator("JOB_RETRY_INTERVALS", "TELEGRAM_RETRY_BACKOFF")
    @classmethod
    def _waits(cls, value: Any) -> Any:
        if not value or any(x < 0 for x in value):
            raise ValueError("must list one or more waits in seconds, none negative")
        return value

    @field_validator("SPENDING_ORDER", mode="before")
    @classmethod
    def _spending_order(cls, value: object) -> object:
        if isinstance(value, str):
            value = [x.strip().lower() for x in value.replace(";", ",").split(",") if x.strip()]
        if isinstance(value, list | tuple):
            items = tuple(str(x) for x in value)
            if sorted(items) != sorted(SOURCES):
                raise ValueError(
                    f"SPENDING_ORDER must name each of {', '.join(SOURCES)} exactly once "
                    f"(got {', '.join(items) or 'nothing'})"
                )
            return items
        return value

    @field_validator("OPERATION_UNITS", mode="before")
    @classmethod
    def _operation_units(cls, value: object) -> object:
        if isinstance(value, str):
            parsed: dict[str, object] = {}
            for item in value.replace(";", ",").split(","):
                if not item.strip():
                    continue
                name, sep, units = item.partition("=")
                if not sep or not name.strip() or not units.strip():
                    raise ValueError(f"OPERATION_UNITS: {item.strip()!r} is not type=units")
                if name.strip() in parsed:
                    raise ValueError(f"OPERATION_UNITS names {name.strip()!r} twice")
                parsed[name.strip()] = units.strip()
            value = parsed
        if isinstance(value, dict):
            # The catalogue is billing's own (a lazy import: billing.prices imports Settings).
            from billing.prices import PRICES

            checked: dict[str, int] = {}
            for name, units in value.items():
                if name not in PRICES:
                    raise ValueError(
                        f"OPERATION_UNITS: unknown operation type {name!r} "
                        f"(known: {', '.join(PRICES)})"
                    )
                try:
                    number = int(str(units))
                except ValueError:
                    raise ValueError(
                        f"OPERATION_UNITS: units of {name!r} must be a whole number"
                    ) from None
                if not 0 <= number <= MAX_OPERATION_UNITS:
                    raise ValueError(
                        f"OPERATION_UNITS: units of {name!r} must be from 0 to "
                        f"{MAX_OPERATION_UNITS}"
                    )
                checked[name] = number
            return checked
        return value

    @field_validator("FREE_OPERATIONS_RENEW_DAYS", mode="before")
    @classmethod
    def _renew_days(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # FREE_OPERATIONS_RENEW_DAYS= in a .env: unset
        return value

    @field_validator("FREE_OPERATIONS_RENEW_DAYS")
    @classmethod
    def _renew_days_range(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 3650:
            raise ValueError("FREE_OPERATIONS_RENEW_DAYS must be from 1 to 3650, or unset")
        return value

    @field_validator("YOOKASSA_TRUSTED_NETWORKS", "TRUSTED_PROXIES", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [x.strip() for x in value.replace(";", ",").split(",") if x.strip()]
        if isinstance(value, list):
            for item in value:
                ipaddress.ip_network(str(item), strict=False)
        return value

    @field_validator("PRIVACY_TEXT", "PRIVACY_FILE", "SUPPORT_CONTACT", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("PRIVACY_FILE")
    @classmethod
    def _privacy_file(cls, value: str | None) -> str | None:
        # Read at start-up: a missing or unreadable file is a failed start, not a /privacy
        # that silently shows the default instead of the operator's own text.
        if value is not None:
            try:
                with open(value, encoding="utf-8") as file:
                    if not file.read().strip():
                        raise ValueError(f"PRIVACY_FILE {value!r} is empty")
            except OSError as exc:
                raise ValueError(f"PRIVACY_FILE {value!r} cannot be read: {exc}") from None
        return value

    @field_validator("API_TOKENS")
    @classmethod
    def _api_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # API_TOKENS= in a .env: no token
        parse_api_tokens(value.get_secret_value())  # refused at start-up, not per request
        return value

    @field_validator("HEALTH_CHECK_TOKEN", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # HEALTH_CHECK_TOKEN= in a .env means "no token", never "the empty token".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("BOT_TIMEZONE")
    @classmethod
    def _timezone(cls, value: str) -> str:
        value = value.strip()
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(
                f"BOT_TIMEZONE must be an IANA time zone such as Europe/Moscow or UTC, "
                f"got {value[:64]!r}"
            ) from None
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("REDIS_URL must be redis://, rediss:// or unix://")
        return value

    @field_validator(
        "TELEGRAM_API_URL",
        "YOOKASSA_API_URL",
        "FAL_API_URL",
        "FAL_JWKS_URL",
        "YOOKASSA_RETURN_URL",
    )
    @classmethod
    def _required_url(cls, value: str, info) -> str:  # type: ignore[no-untyped-def]
        checked = _check_http_url(value, info.field_name)
        if checked is None:
            raise ValueError(f"{info.field_name} is required")
        return checked if info.field_name != "YOOKASSA_RETURN_URL" else value

    @field_validator("YOOKASSA_WEBHOOK_URL", "TELEGRAM_WEBHOOK_URL", "WEB_PUBLIC_URL")
    @classmethod
    def _optional_url(cls, value: str | None, info) -> str | None:  # type: ignore[no-untyped-def]
        return _check_http_url(value, info.field_name)

    @field_validator("PRICE_PER_OPERATION")
    @classmethod
    def _price(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("PRICE_PER_OPERATION must be greater than 0")
        rubles_to_kopecks(value)
        return value

    @field_validator("FREE_OPERATIONS_COUNT")
    @classmethod
    def _free(cls, value: int) -> int:
        if value < 0:
            raise ValueError("FREE_OPERATIONS_COUNT must be 0 or more")
        return value

    @field_validator("YOOKASSA_CURRENCY")
    @classmethod
    def _currency(cls, value: str) -> str:
        value = value.strip().upper()
        if len(value) != 3 or not value.isalpha():
            raise ValueError("YOOKASSA_CURRENCY must be an ISO 4217 code such as RUB")
        return value

    @model_validator(mode="after")
    def _consistency(self) -> Settings:
        if self.TOPUP_MIN_RUB < 1 or self.TOPUP_MAX_RUB < self.TOPUP_MIN_RUB:
            raise ValueError("need 1 <= TOPUP_MIN_RUB <= TOPUP_MAX_RUB")
        for name in ("TOPUP_MAX_RUB", "ADMIN_ADJUST_MAX_RUB"):
            if not 1 <= getattr(self, name) <= MAX_SETTING_RUB:
                raise ValueError(f"{name} must be from 1 to {MAX_SETTING_RUB}")
        for preset in self.TOPUP_PRESETS_RUB:
            if not self.TOPUP_MIN_RUB <= preset <= self.TOPUP_MAX_RUB:
                raise ValueError(f"top-up preset {preset} is outside the min/max range")
        if self.JOB_RETRIES < 0 or self.JOB_TIMEOUT_SECONDS <= 0:
            raise ValueError("JOB_RETRIES must be >= 0 and JOB_TIMEOUT_SECONDS > 0")
        if self.OPERATION_DEADLINE_SECONDS <= 0:
            raise ValueError("OPERATION_DEADLINE_SECONDS must be greater than 0")
        self._check_deadline_margin()
        total = operation_deadline_seconds(self, queued=True)
        if total > MAX_OPERATION_DEADLINE_SECONDS:
            raise ValueError(
                "OPERATION_DEADLINE_SECONDS + JOB_TIMEOUT_SECONDS + JOB_DEADLINE_MARGIN_SECONDS "
                f"must be at most {MAX_OPERATION_DEADLINE_SECONDS} (got {total})"
            )
        if self.TELEGRAM_WEBHOOK_URL:
            # Anyone who can reach the webhook route could post a forged update (an admin's
            # /grant, another user's charge): in webhook mode the secret is never optional.
            token = (
                self.TELEGRAM_WEBHOOK_SECRET.get_secret_value()
                if (self.TELEGRAM_WEBHOOK_SECRET)
                else ""
            )
            if not WEBHOOK_SECRET.fullmatch(token):
                raise ValueError(
                    "TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET: 1-256 characters of "
                    "A-Z, a-z, 0-9, _ and - (e.g. `openssl rand -hex 32`)"
                )
        if self.ENVIRONMENT == "production":
            problems = []
            password = urlsplit(self.DATABASE_URL).password
            if password is not None and password in PLACEHOLDERS:
                problems.append("DATABASE_URL (its password)")
            for name in ("TELEGRAM_WEBHOOK_URL", "YOOKASSA_WEBHOOK_URL", "YOOKASSA_RETURN_URL"):
                if _is_example_url(getattr(self, name)):
                    problems.append(f"{name} (an example address)")
            if self.BOT_TOKEN is None or self.BOT_TOKEN.get_secret_value() in PLACEHOLDERS:
                problems.append("BOT_TOKEN")
            if "yookassa" in self.PAYMENT_METHODS:  # Stars alone need no YooKassa account
                if (self.YOOKASSA_SHOP_ID or "") in PLACEHOLDERS:
                    problems.append("YOOKASSA_SHOP_ID")
                secret = (
                    self.YOOKASSA_SECRET_KEY.get_secret_value() if self.YOOKASSA_SECRET_KEY else ""
                )
                if secret in PLACEHOLDERS:
                    problems.append("YOOKASSA_SECRET_KEY")
            health = self.HEALTH_CHECK_TOKEN
            if health is not None and health.get_secret_value() in PLACEHOLDERS:
                problems.append("HEALTH_CHECK_TOKEN (set a random one, or leave it unset)")
            if self.WORKER_TEST_HOOKS:
                problems.append("WORKER_TEST_HOOKS (test-only, must be off)")
            if problems:
                raise ValueError(
                    "placeholder or missing secrets in production: " + ", ".join(problems)
                )
        return self

    def _check_deadline_margin(self) -> None:
        margin = self.JOB_DEADLINE_MARGIN_SECONDS
        if margin <= 0:
            raise ValueError(
                f"JOB_DEADLINE_MARGIN_SECONDS must be greater than 0 (got {margin}): the "
                "sweeper would void operations whose jobs may still deliver their results"
            )
        # The test suite's workers use deadlines of seconds, to see the sweeper at work.
        if self.ENVIRONMENT != "test" and margin < MIN_JOB_DEADLINE_MARGIN_SECONDS:
            raise ValueError(
                f"JOB_DEADLINE_MARGIN_SECONDS must be at least "
                f"{MIN_JOB_DEADLINE_MARGIN_SECONDS} (got {margin}): RQ kills a stuck "
                f"work-horse up to {RQ_HORSE_KILL_GRACE_SECONDS}+"
                f"{RQ_JOB_MONITORING_INTERVAL_SECONDS} s past its job's timeout and the "
                f"failure callback may take {FAILURE_CALLBACK_SECONDS} s more; a smaller "
                "margin lets the sweeper refund a result that is still delivered"
            )

    # Derived values, in kopecks.
    @cached_property
    def price_kopecks(self) -> int:
        return rubles_to_kopecks(self.PRICE_PER_OPERATION)

    @cached_property
    def zone(self) -> ZoneInfo:
        """BOT_TIMEZONE as a tzinfo."""
        return ZoneInfo(self.BOT_TIMEZONE)

    @property
    def admin_adjust_max_kopecks(self) -> int:
        return self.ADMIN_ADJUST_MAX_RUB * 100

    @property
    def yookassa_configured(self) -> bool:
        return bool(self.YOOKASSA_SHOP_ID and self.YOOKASSA_SECRET_KEY)

    def privacy_text(self) -> str | None:
        """The operator's privacy text (PRIVACY_FILE, else PRIVACY_TEXT), or None."""
        if self.PRIVACY_FILE is not None:
            with open(self.PRIVACY_FILE, encoding="utf-8") as file:
                return file.read().strip()
        return self.PRIVACY_TEXT.strip() if self.PRIVACY_TEXT else None

    @cached_property
    def api_tokens(self) -> tuple[ApiToken, ...]:
        """The operator API's tokens (API_TOKENS), parsed."""
        if self.API_TOKENS is None:
            return ()
        return parse_api_tokens(self.API_TOKENS.get_secret_value())

    @property
    def stars_enabled(self) -> bool:
        return "stars" in self.PAYMENT_METHODS

    @property
    def yookassa_enabled(self) -> bool:
        """YooKassa is offered: named in PAYMENT_METHODS and configured."""
        return "yookassa" in self.PAYMENT_METHODS and self.yookassa_configured

    def stars_kopecks(self, stars: int) -> int:
        """What ``stars`` ⭐ credit to the balance, in kopecks."""
        return stars * self.KOPECKS_PER_STAR

    def stars_for(self, kopecks: int) -> int:
        """The ⭐ a price of ``kopecks`` costs: rounded UP to a whole ⭐, so what they credit
        (:meth:`stars_kopecks`) always covers the price; the few kopecks over it stay on the
        balance."""
        return -(-kopecks // self.KOPECKS_PER_STAR)

    @property
    def fal_configured(self) -> bool:
        return bool(self.FAL_KEY and self.FAL_KEY.get_secret_value())

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")


def operation_deadline_seconds(
    settings: Settings, *, job_timeout: float | None = None, queued: bool = False
) -> int:
    """Seconds from now until the sweeper may void an operation: the one formula for the
    charge, the job's claim and the job's lock.

    A running operation: its job's timeout — the one the job carries, set by the bot at
    enqueue, which RQ's SIGALRM and the job's watchdog use too; ``settings``' own
    JOB_TIMEOUT_SECONDS only for a job that carries none — plus JOB_DEADLINE_MARGIN_SECONDS.
    A queued one (the charge): OPERATION_DEADLINE_SECONDS of queue wait on top of that, with
    the timeout its job is enqueued with (the same process's JOB_TIMEOUT_SECONDS).
    """
    timeout = job_timeout if job_timeout is not None and job_timeout > 0 else None
    seconds = ceil(timeout or settings.JOB_TIMEOUT_SECONDS) + settings.JOB_DEADLINE_MARGIN_SECONDS
    return seconds + (settings.OPERATION_DEADLINE_SECONDS if queued else 0)


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and .env) once; tests pass overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
