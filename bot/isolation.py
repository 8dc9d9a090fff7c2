"""One user's updates handled one at a time, in the order this process received them.

aiogram's Redis lock keeps two updates of one user apart on any number of replicas, but its
waiters poll (every 0.1 s) and the first to poll after a release wins: a photo and a "/start"
sent right after it could be handled the other way round, and each waiter sleeps up to
0.1 s after the lock is free. In front of it, a queue per user in this process (an
``asyncio.Lock`` wakes its waiters first come, first served) lets the updates this process
received take the Redis lock in order, at once.

- Long polling receives a user's updates in Telegram's order. A webhook server receives them
  in the order their requests' bodies arrive (Telegram may use several connections).
- Across replicas the Redis lock still keeps a user's updates apart, but not fairly: while
  one replica has a queue of that user's updates, the next takes the lock as soon as it is
  released, and another replica's waiter, polling, gets it when that queue is empty.
- The Redis lock expires (60 s): a handler that hangs holds up the user's other updates no
  longer than that. The queue waits as long, then lets the next update go on to the Redis
  lock, as the lock alone would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey
from aiogram.fsm.storage.redis import DEFAULT_REDIS_LOCK_KWARGS, RedisEventIsolation


class OrderedEventIsolation(BaseEventIsolation):
    def __init__(self, shared: BaseEventIsolation, *, patience: float | None = None) -> None:
        """``patience``: seconds an update waits in the queue (default: the Redis lock's
        expiry)."""
        self.shared = shared
        if patience is None:
            kwargs = shared.lock_kwargs if isinstance(shared, RedisEventIsolation) else {}
            patience = float(kwargs.get("timeout") or DEFAULT_REDIS_LOCK_KWARGS["timeout"])
        self.patience = patience
        # key -> (its local lock, how many updates hold or wait for it): dropped at zero, so
        # the table holds only the users whose updates are in hand.
        self._local: dict[StorageKey, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        local, users = self._local.get(key, (None, 0))
        if local is None:
            local = asyncio.Lock()
        self._local[key] = (local, users + 1)
        queued = False
        try:
            try:
                async with asyncio.timeout(self.patience):
                    queued = await local.acquire()
            except TimeoutError:
                pass  # the update ahead hangs: on to the Redis lock, which has expired too
            async with self.shared.lock(key):
                yield None
        finally:
            if queued:
                local.release()
            local, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (local, users - 1)

    def users_in_hand(self) -> int:
        """How many users have an update being handled or waiting here."""
        return len(self._local)

    async def close(self) -> None:
        await self.shared.close()
