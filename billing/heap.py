"""What the three long-running processes (bot, web, worker) do once startup is done."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Keep what startup built (modules, SQLAlchemy mappers, pydantic and aiogram models, the
    text catalogue) out of the garbage collector's full collections.

    A full (generation 2) collection traverses every tracked object, and with all of the above
    that stops an event loop for 100-200 ms. Frozen objects are never traversed, so a full
    collection only looks at what was allocated since. In a forking worker it also keeps the
    horses' collections from writing to (and so copying) the pages they share with their worker.
    Call it last, after any warm-up.
    """
    gc.collect()
    gc.freeze()
