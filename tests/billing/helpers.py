from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import accounts, operations, payments
from billing.models import Payment
from billing.settings import Settings


async def new_user(
    sm: async_sessionmaker[AsyncSession],
    telegram_id: int = 1001,
    *,
    free: int = 0,
    balance: int = 0,
) -> int:
    async with sm() as session:
        user, _ = await accounts.get_or_create_user(
            session, telegram_id=telegram_id, free_operations=free
        )
        if balance:
            await accounts.adjust(session, user_id=user.id, amount=balance, reason="test money")
        await session.commit()
        return user.id


async def new_payment(
    sm: async_sessionmaker[AsyncSession], user_id: int, amount: int = 10_000
) -> Payment:
    async with sm() as session:
        payment = await payments.create_payment(
            session, user_id=user_id, amount=amount, currency="RUB"
        )
        await session.commit()
        return payment


async def charge_once(
    sm: async_sessionmaker[AsyncSession], settings: Settings, user_id: int, **kwargs: object
) -> operations.ChargeResult:
    async with sm() as session:
        result = await operations.charge(
            session, settings, user_id=user_id, op_type=kwargs.pop("op_type", "upscale"), **kwargs
        )
        await session.commit()
        return result
