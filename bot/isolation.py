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
  longer than that. The queue does the same: once the update being handled has held its
  place that long, the ones waiting behind it (and any that come later) go on to the Redis
  lock without the queue, as with the lock alone, in no set order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey
from aiogram.fsm.storage.redis import DEFAULT_REDIS_LOCK_KWARGS, RedisEventIsolation


class _Queue:
    """One user's updates in hand in this process."""

    __slots__ = ("lock", "users", "taken_at")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holding or waiting: the queue is dropped at zero
        self.taken_at: float | None = None  # loop time the update being handled took it


class OrderedEventIsolation(BaseEventIsolation):
    def __init__(self, shared: BaseEventIsolation, *, patience: float | None = None) -> None:
        """``patience``: seconds an update may hold its place in the queue before the ones
        behind it stop waiting for it (default: the Redis lock's expiry)."""
        self.shared = shared
        if patience is None:
            kwargs = shared.lock_kwargs if isinstance(shared, RedisEventIsolation) else {}
            patience = float(kwargs.get("timeout") or DEFAULT_REDIS_LOCK_KWARGS["timeout"])
        self.patience = patience
        self._queues: dict[StorageKey, _Queue] = {}

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        queue.users += 1
        queued = False
        try:
            queued = await self._take_place(queue)
            async with self.shared.lock(key):
                yield None
        finally:
            if queued:
                queue.taken_at = None
                queue.lock.release()
            queue.users -= 1
            if not queue.users:
                del self._queues[key]

    async def _take_place(self, queue: _Queue) -> bool:
        """Wait for the updates ahead; False once the one being handled has held its place
        longer than ``patience`` (it hangs: on without the queue)."""
        loop = asyncio.get_running_loop()
        while True:
            holder = queue.taken_at
            try:
                async with asyncio.timeout_at((holder or loop.time()) + self.patience):
                    await queue.lock.acquire()
            except TimeoutError:
                if queue.taken_at == holder:
                    return False
                continue  # the next update took its place meanwhile: its time counts now
            queue.taken_at = loop.time()
            return True

    def users_in_hand(self) -> int:
        """How many users have an update being handled or waiting here."""
        return len(self._queues)

    async def close(self) -> None:
        await self.shared.close()
