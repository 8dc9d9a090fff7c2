"""One user's updates handled one at a time, in the order they came.

aiogram's Redis lock keeps two updates of one user apart on any number of replicas, but its
waiters poll (every 0.1 s) and the first to poll after a release wins: a photo and a "/start"
sent right after it could be handled the other way round, and each waiter sleeps up to
0.1 s after the lock is free. In front of it, a queue per user in this process (an
``asyncio.Lock`` wakes its waiters first come, first served) lets the updates this process
received take the Redis lock in order, at once. Across replicas the Redis lock alone decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey


class OrderedEventIsolation(BaseEventIsolation):
    def __init__(self, shared: BaseEventIsolation) -> None:
        self.shared = shared
        # key -> (its local lock, how many updates hold or wait for it): dropped at zero, so
        # the table holds only the users whose updates are in hand.
        self._local: dict[StorageKey, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        local, users = self._local.get(key, (None, 0))
        if local is None:
            local = asyncio.Lock()
        self._local[key] = (local, users + 1)
        try:
            async with local, self.shared.lock(key):
                yield None
        finally:
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
