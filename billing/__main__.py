"""Operator commands.

python -m billing audit
    Check every balance against the ledger, and Redis (REDIS_URL) for keys of operations
    this database does not have; prints each problem and exits 1 if any.
python -m billing user TELEGRAM_ID
    A user's balance, free operations and recent operations.
python -m billing adjust TELEGRAM_ID --rub 50 --reason "ticket #42" [--free 1] [--key K]
    An admin grant (positive) or debit (negative): a ledger entry with its reason, in
    one transaction. With --key the same adjustment is applied at most once.
python -m billing plans list [--all]
    The plans catalogue in its order (--all: archived plans too).
python -m billing plans add CODE kind=subscription name_ru=Про name_en=Pro price=199 \
        period=month units=30 [discount=10] [unlocks=all|generate,edit] [free=N] [trial=N] \
        [expires=DAYS|never] [sort=N] [default=yes]
python -m billing plans edit CODE field=value ...
    Change a plan (prices in rubles). Holders keep what they bought until their next period.
python -m billing plans archive CODE
    Take a plan off sale; holders keep it until it ends, a subscription does not renew.
python -m billing stats
    The operator's figures (the bot's /stats): users, revenue by way of payment and by day
    (credited minus refunded), operations of the last 7 days by type with their failure and
    refund rates, payments not paid yet, money owed. Days in BOT_TIMEZONE.
python -m billing models list
    The model catalogue: per operation its backend (fal model or local), parameters, price
    in units and whether it is offered (and what runs now, with the FAL_KEY of the settings).
python -m billing models set TYPE [backend=fal|local] [model=fal-ai/...] [params='{...}'] \
        [units=N|default] [enabled=yes|no]
python -m billing models enable|disable TYPE
    Change one operation (units: its price, PRICE_PER_OPERATION each; default: the price of
    billing.prices). Provider keys are settings (FAL_KEY), never stored here.
python -m billing refund-payment PAYMENT [RUBLES] [--again]
    Return a YooKassa payment (our number or its YooKassa id) to the card through YooKassa's
    refunds API: what is left of it, or RUBLES. The request and its idempotence key are
    stored before the call: run the same command again after a failure and YooKassa makes
    one refund (a refund of that amount made before is reported, not repeated; --again
    makes another). The balance is debited by what was refunded (below zero: a debt on
    record); the user's message is sent by a worker (the payment-message outbox).
Exit codes: 0 done, 1 refused (the reason on stderr, nothing changed), 2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from fractions import Fraction

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing import accounts, ai_models, plans, redaction, refunds, stats
from billing.audit import audit
from billing.bounds import (
    INT64_MAX,
    MAX_FREE_ADJUST,
    BadNumber,
    parse_count,
    parse_id,
    parse_kopecks,
    parse_signed_kopecks,
)
from billing.db import make_engine, make_sessionmaker
from billing.errors import BillingError
from billing.models import Plan, PlanKind
from billing.prices import format_rub, format_rub_kopecks
from billing.settings import Settings, load_settings


async def _with_session(work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    settings = load_settings()
    redaction.install(settings)
    engine = make_engine(settings.DATABASE_URL, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            return await work(session)
    finally:
        await engine.dispose()


async def _audit(session: AsyncSession) -> int:
    problems = await audit(session)
    problems += await _redis_problems(session)
    for line in problems:
        print(line)
    print(f"audit: {'clean' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


async def _redis_problems(session: AsyncSession) -> list[str]:
    """Redis keys (jobs, locks, "delivered" markers) of operations this database does not
    have: a database restored or recreated beside a Redis that kept its keys. A Redis that
    does not answer is said on stderr, not counted: the ledger's books are the audit's job."""
    from redis import Redis
    from redis.exceptions import RedisError

    from jobqueue.stale_keys import stale_redis_keys

    settings = load_settings()
    redis = Redis.from_url(settings.REDIS_URL, socket_timeout=10, socket_connect_timeout=5)
    try:
        stale = await stale_redis_keys(session, redis)
    except (RedisError, OSError) as exc:
        print(f"redis: not checked ({exc})", file=sys.stderr)
        return []
    finally:
        redis.close()
    return [item.describe() for item in stale]


def _user_cmd(telegram_id: int) -> Callable[[AsyncSession], Awaitable[int]]:
    async def run(session: AsyncSession) -> int:
        user = await accounts.find_user_by_telegram_id(session, telegram_id)
        if user is None:
            print(f"no user with Telegram id {telegram_id}", file=sys.stderr)
            return 1
        summary = await accounts.get_summary(session, user_id=user.id, recent=10)
        print(f"user {user.id} (Telegram {user.telegram_id}, language {user.language})")
        print(f"balance: {format_rub(user.balance)} ₽")
        print(f"free operations: {user.free_left} of {user.free_granted}")
        for op in summary.recent:
            print(
                f"  #{op['id']} {op['type']:<10} {op['status']:<10} {op['funding']:<8} "
                f"{format_rub(op['price'])} ₽  {op['created_at']}"
            )
        return 0

    return run


def _adjust_cmd(
    args: argparse.Namespace, settings: Settings
) -> Callable[[AsyncSession], Awaitable[int]]:
    async def run(session: AsyncSession) -> int:
        user = await accounts.find_user_by_telegram_id(session, args.telegram_id)
        if user is None:
            print(f"no user with Telegram id {args.telegram_id}", file=sys.stderr)
            return 1
        try:
            state = await accounts.adjust(
                session,
                user_id=user.id,
                amount=args.kopecks,
                free_delta=args.free,
                reason=args.reason,
                admin_id=args.admin_id,
                key=f"{KEY_PREFIX}{args.key}" if args.key else None,
                max_amount=settings.admin_adjust_max_kopecks,
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            print(f"adjustment {args.key!r} was applied before; nothing changed")
            return 0
        except BillingError as exc:
            await session.rollback()
            print(f"refused: {exc}", file=sys.stderr)
            return 1
        print(
            f"done: balance {format_rub(state.balance)} ₽, "
            f"free operations {state.free_left} of {state.free_granted}"
        )
        return 0

    return run


def _rub(value: str) -> int:
    """Rubles with at most two decimals, within the range a balance can hold; the operator's
    limit (ADMIN_ADJUST_MAX_RUB) is checked once the settings are read."""
    try:
        return parse_signed_kopecks(value, limit=INT64_MAX)
    except BadNumber as exc:
        why = {
            "decimals": "at most two decimal places (kopecks)",
            "out_of_range": "out of range",
        }.get(exc.reason, "not an amount in rubles, e.g. 50, -9.90")
        raise argparse.ArgumentTypeError(f"{why}: {value[:40]!r}") from None


def _telegram_id(value: str) -> int:
    number = parse_id(value)
    if number is None:
        raise argparse.ArgumentTypeError(f"not a Telegram id (1 to 2^63-1): {value[:40]!r}")
    return number


# The ledger's idempotency_key holds 128 characters; the CLI's keys are "adjust:<key>".
KEY_PREFIX = "adjust:"
MAX_KEY_CHARS = 128 - len(KEY_PREFIX)


def _key(value: str) -> str:
    """An adjustment's --key: one the ledger can store (a longer one failed in the database
    with a traceback, after the adjustment was already computed)."""
    if not value.strip() or len(value) > MAX_KEY_CHARS:
        raise argparse.ArgumentTypeError(
            f"a key of 1 to {MAX_KEY_CHARS} characters, got {len(value)}: {value[:40]!r}"
        )
    return value


def _free(value: str) -> int:
    try:
        return parse_count(value, limit=MAX_FREE_ADJUST)
    except BadNumber as exc:
        why = "out of range" if exc.reason == "out_of_range" else "not a whole number"
        raise argparse.ArgumentTypeError(
            f"{why} (at most {MAX_FREE_ADJUST} either way): {value[:40]!r}"
        ) from None


def _plan_line(plan: Plan) -> str:
    if plan.kind == PlanKind.SUBSCRIPTION:
        what = f"{plan.units} units / {plan.period}"
        if plan.trial_days:
            what += f", trial {plan.trial_days} d"
    else:
        expiry = f"{plan.expires_days} d" if plan.expires_days else "never expires"
        what = f"{plan.units} units, {expiry}"
    extras = [f"discount {plan.discount_percent} %"] if plan.discount_percent else []
    if plan.free_operations:
        extras.append(f"+{plan.free_operations} free")
    extras.append("unlocks all" if plan.unlocks is None else f"unlocks {','.join(plan.unlocks)}")
    flags = " ".join(
        flag
        for flag, on in (("[default]", plan.is_default), ("[archived]", plan.archived_at))
        if on
    )
    return (
        f"{plan.code:<12} {plan.kind:<12} {format_rub(plan.price):>10} ₽  {what}; "
        f"{'; '.join(extras)}  «{plan.name_ru}» / “{plan.name_en}” sort {plan.sort_order}"
        + (f"  {flags}" if flags else "")
    )


def _plans_cmd(args: argparse.Namespace) -> Callable[[AsyncSession], Awaitable[int]]:
    async def run(session: AsyncSession) -> int:
        try:
            if args.plans_command == "list":
                for plan in await plans.list_plans(session, include_archived=args.all):
                    print(_plan_line(plan))
                return 0
            if args.plans_command == "archive":
                before = await plans.get_plan(session, args.code)
                was = before.archived_at
                plan = await plans.archive_plan(session, args.code)
                await session.commit()
                print(f"{'already archived' if was else 'archived'}: {_plan_line(plan)}")
                return 0
            fields = plans.parse_fields(args.fields, adding=args.plans_command == "add")
            if args.plans_command == "add":
                plan = await plans.add_plan(session, code=args.code, **fields)
            else:
                if not fields:
                    raise plans.PlanInvalid("missing", field="field=value")
                plan = await plans.edit_plan(session, args.code, **fields)
            await session.commit()
        except BillingError as exc:
            await session.rollback()
            print(f"refused: {exc}", file=sys.stderr)
            return 1
        print(f"{'added' if args.plans_command == 'add' else 'saved'}: {_plan_line(plan)}")
        return 0

    return run


def _money(kopecks: int) -> str:
    return format_rub_kopecks(kopecks, group=" ")


def _percent(rate: Fraction | None) -> str:
    return "-" if rate is None else f"{float(rate) * 100:.1f}%"


def _age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    minutes = int(age.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m"


def stats_lines(figures: stats.Stats) -> list[str]:
    """The CLI's screen of :func:`billing.stats.collect` (the bot's /stats in English, plain)."""
    local = figures.now.astimezone(figures.zone)
    lines = [
        f"Media Lab statistics, {local:%Y-%m-%d %H:%M} {figures.zone}",
        "(days start at local midnight; 7 and 30 days include today)",
        "",
        f"users: {figures.users_total} in all, {figures.users_today} new today, "
        f"{figures.users_week} new in 7 days",
        "",
        "revenue, RUB (net: credited minus refunded)",
    ]
    spans = ("today", "week", "month")
    rows = [["method", "today", "7 days", "30 days"]]
    rows += [[r.method] + [_money(getattr(r, s).net) for s in spans] for r in figures.revenue]
    totals = [figures.revenue_total(s) for s in spans]
    rows.append(["total"] + [_money(m.net) for m in totals])
    rows.append(["  credited"] + [_money(m.credited) for m in totals])
    rows.append(["  refunded"] + [_money(-m.refunded) for m in totals])
    lines += stats.table(rows)
    lines += ["", "revenue by day, RUB (net)"]
    methods = [r.method for r in figures.revenue]
    rows = [["day", *methods, "total"]]
    rows += [
        [f"{day.day:%Y-%m-%d %a}"]
        + [_money(day.by_method[m].net) for m in methods]
        + [_money(day.total.net)]
        for day in figures.days
    ]
    lines += stats.table(rows)
    lines += ["", "operations of the last 7 days (rates: of those finished)"]
    if figures.operations:
        rows = [["type", "all", "ok", "failed", "refunded", "running", "fail %", "refund %"]]
        rows += [
            [
                op.type,
                str(op.count),
                str(op.succeeded),
                str(op.failed),
                str(op.refunded),
                str(op.running),
                _percent(op.failure_rate),
                _percent(op.refund_rate),
            ]
            for op in figures.operations
        ]
        lines += stats.table(rows)
    else:
        lines.append("none")
    lines += ["", "payments not paid yet"]
    rows = [["method", "count", "RUB", "oldest"]]
    rows += [
        [p.method, str(p.count), _money(p.amount), _age(p.oldest_age(figures.now))]
        for p in figures.pending
    ]
    lines += stats.table(rows)
    lines += [
        "",
        f"money owed (balances below zero after a refund): {figures.debtors} user(s), "
        f"{_money(figures.debt)} RUB",
    ]
    return lines


async def _stats(session: AsyncSession) -> int:
    figures = await stats.collect(session, zone=load_settings().zone)
    print("\n".join(stats_lines(figures)))
    return 0


def model_line(row: ai_models.ModelSetting, settings: Settings) -> str:
    """One operation of the model catalogue, for the operator's terminal."""
    model = row.model_id or "-"
    units = f"{row.price_units(settings)} units" + (" (default)" if row.units is None else "")
    use = ai_models.use_of(row, settings)
    if isinstance(use, ai_models.Unavailable):
        now = f"unavailable ({use.value})"
    else:
        now = f"runs {use.model_id or 'local'}" + (
            " (fallback: no FAL_KEY)" if use.fallback else ""
        )
    params = json.dumps(dict(row.params), ensure_ascii=False, sort_keys=True)
    return (
        f"{row.type:<10} {row.backend:<5} {model:<36} {units:<17} "
        f"{'enabled' if row.enabled else 'disabled':<8} {params}  {now}"
    )


def _models_cmd(args: argparse.Namespace) -> Callable[[AsyncSession], Awaitable[int]]:
    settings = load_settings()

    async def run(session: AsyncSession) -> int:
        try:
            if args.models_command == "list":
                for row in await ai_models.list_models(session):
                    print(model_line(row, settings))
                return 0
            if args.models_command == "set":
                fields = ai_models.parse_fields(args.fields)
                row = await ai_models.set_model(session, args.type, **fields)
            elif args.models_command == "enable":
                row = await ai_models.enable(session, args.type)
            else:
                row = await ai_models.disable(session, args.type)
            await session.commit()
        except BillingError as exc:
            await session.rollback()
            print(f"refused: {exc}; nothing changed", file=sys.stderr)
            return 1
        print(f"saved: {model_line(row, settings)}")
        return 0

    return run


def _payment_ref(value: str) -> int | str:
    ref = refunds.payment_ref(value)
    if ref is None:
        raise argparse.ArgumentTypeError(
            f"not a payment number or a YooKassa payment id: {value[:40]!r}"
        )
    return ref


def _refund_rub(value: str) -> int:
    try:
        kopecks = parse_kopecks(value, limit=INT64_MAX)
    except BadNumber as exc:
        why = {
            "decimals": "at most two decimal places (kopecks)",
            "out_of_range": "out of range",
        }.get(exc.reason, "not an amount in rubles, e.g. 50 or 9.90")
        raise argparse.ArgumentTypeError(f"{why}: {value[:40]!r}") from None
    if kopecks <= 0:
        raise argparse.ArgumentTypeError(f"more than zero is needed: {value[:40]!r}")
    return kopecks


REFUND_REASONS = {
    "unknown_payment": "there is no payment {payment}",
    "not_paid": "payment {payment} is not paid ({status}): nothing to return",
    "not_yookassa": "payment {payment} was not paid through YooKassa: refund it where it was paid",
    "stars": (
        "payment {payment} was paid in Telegram Stars: refund it with the bot's admin "
        "command /refund {payment} (only the bot can call Telegram's refundStarPayment)"
    ),
    "nothing_left": "payment {payment} is refunded in full already",
    "too_much": "only {left} of payment {payment} is left to refund, not {amount}",
    "unfinished": (
        "a refund of {amount} of payment {payment} is unfinished: run the command again "
        "with that amount (or none) to finish it"
    ),
    "rejected": "YooKassa refused to refund payment {payment}: {error}",
    "mismatch": "YooKassa's answer does not match payment {payment} (see the log)",
}


def _refund_reason(exc: refunds.RefundRefused) -> str:
    params = {
        k: format_rub(v) + " ₽" if k in ("amount", "left") and isinstance(v, int) else v
        for k, v in exc.params.items()
    }
    return REFUND_REASONS.get(exc.code, exc.code).format_map(params)


async def _refund_payment(args: argparse.Namespace) -> int:
    from billing.yookassa import GatewayUnavailable, YooKassaGateway

    settings = load_settings()
    redaction.install(settings)
    if not settings.yookassa_configured:
        print(
            "refused: YooKassa is not configured (YOOKASSA_SHOP_ID, YOOKASSA_SECRET_KEY)",
            file=sys.stderr,
        )
        return 1
    engine = make_engine(settings.DATABASE_URL, pool_size=1)
    try:
        done = await refunds.refund_payment(
            make_sessionmaker(engine),
            YooKassaGateway(settings),
            payment=args.payment,
            amount=args.kopecks,
            requested_by="cli",
            again=args.again,
        )
    except refunds.RefundRefused as exc:
        print(f"refused: {_refund_reason(exc)}", file=sys.stderr)
        return 1
    except GatewayUnavailable as exc:
        print(
            f"not done: YooKassa did not answer ({exc}). Run the same command again: the "
            "same idempotence key is sent, so YooKassa makes one refund.",
            file=sys.stderr,
        )
        return 1
    finally:
        await engine.dispose()
    amount = format_rub(done.amount)
    what = {
        refunds.RefundDone.REFUNDED: f"refunded {amount} ₽ of payment {done.payment_id}",
        refunds.RefundDone.ALREADY: (
            f"already refunded: {amount} ₽ of payment {done.payment_id}; nothing new "
            "(--again for another refund of this amount)"
        ),
        refunds.RefundDone.PENDING: (
            f"YooKassa took the refund of {amount} ₽ of payment {done.payment_id} and has not "
            f"finished it ({done.detail}): the balance is debited when it succeeds (its "
            "notification, or this command again)"
        ),
        refunds.RefundDone.CANCELED: (
            f"YooKassa canceled the refund of {amount} ₽ of payment {done.payment_id} "
            f"({done.detail}): nothing was returned"
        ),
    }[done.outcome]
    print(
        f"{what} (refund {done.yookassa_refund_id or '-'}, request {done.request_id}); "
        f"user {done.telegram_id} balance {format_rub(done.balance_after)} ₽"
    )
    return 1 if done.outcome is refunds.RefundDone.CANCELED else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m billing", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("audit", help="check every balance against the ledger")
    user = sub.add_parser("user", help="show a user's balance and recent operations")
    user.add_argument("telegram_id", type=_telegram_id)
    adjust = sub.add_parser("adjust", help="grant or debit money / free operations")
    adjust.add_argument("telegram_id", type=_telegram_id)
    adjust.add_argument("--rub", dest="kopecks", type=_rub, default=0, help="e.g. 50 or -9.90")
    adjust.add_argument("--free", type=_free, default=0, help="free operations to add (or take)")
    adjust.add_argument("--reason", required=True)
    adjust.add_argument("--admin-id", type=_telegram_id, default=None)
    adjust.add_argument("--key", type=_key, default=None, help="apply at most once per key")
    plans_parser = sub.add_parser("plans", help="the plans catalogue: list, add, edit, archive")
    plans_sub = plans_parser.add_subparsers(dest="plans_command", required=True)
    listing = plans_sub.add_parser("list", help="the catalogue in its order")
    listing.add_argument("--all", action="store_true", help="archived plans too")
    for name, text in (("add", "a new plan"), ("edit", "change a plan")):
        command = plans_sub.add_parser(name, help=f"{text}: CODE field=value ...")
        command.add_argument("code")
        command.add_argument("fields", nargs="*", metavar="field=value")
    plans_sub.add_parser("archive", help="take a plan off sale").add_argument("code")
    sub.add_parser("stats", help="users, revenue, operations, open payments, money owed")
    models_parser = sub.add_parser(
        "models", help="the model catalogue: list, set, enable, disable"
    )
    models_sub = models_parser.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("list", help="every operation's model, price and state")
    model_set = models_sub.add_parser("set", help="change an operation: TYPE field=value ...")
    model_set.add_argument("type")
    model_set.add_argument("fields", nargs="*", metavar="field=value")
    models_sub.add_parser("enable", help="offer an operation again").add_argument("type")
    models_sub.add_parser("disable", help="stop offering an operation").add_argument("type")
    refund = sub.add_parser(
        "refund-payment", help="return a YooKassa payment (or RUBLES of it) to the card"
    )
    refund.add_argument("payment", type=_payment_ref, help="our payment number or YooKassa id")
    refund.add_argument("kopecks", nargs="?", type=_refund_rub, default=None, metavar="RUBLES")
    refund.add_argument(
        "--again", action="store_true", help="another refund of an amount refunded before"
    )
    args = parser.parse_args(argv)
    if args.command == "refund-payment":
        return asyncio.run(_refund_payment(args))
    if args.command == "plans":
        return asyncio.run(_with_session(_plans_cmd(args)))
    if args.command == "models":
        return asyncio.run(_with_session(_models_cmd(args)))
    if args.command == "audit":
        return asyncio.run(_with_session(_audit))
    if args.command == "stats":
        return asyncio.run(_with_session(_stats))
    if args.command == "user":
        return asyncio.run(_with_session(_user_cmd(args.telegram_id)))
    settings = load_settings()
    if abs(args.kopecks) > settings.admin_adjust_max_kopecks:
        print(
            f"refused: {format_rub(abs(args.kopecks))} ₽ is out of range: one adjustment moves "
            f"at most {format_rub(settings.admin_adjust_max_kopecks)} ₽ (ADMIN_ADJUST_MAX_RUB)",
            file=sys.stderr,
        )
        return 1
    return asyncio.run(_with_session(_adjust_cmd(args, settings)))


if __name__ == "__main__":
    sys.exit(main())
