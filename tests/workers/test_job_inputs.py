"""The bot passes a job its operation's file ids, so the worker fetches them while it claims
the operation. The operation's row decides what is processed: a job naming other files
(or none, as a job queued by an older bot) still delivers the operation's own input."""

from __future__ import annotations

import io

from PIL import Image

from billing.models import LedgerKind


async def _delivered_size(h, user) -> tuple[int, int]:  # noqa: ANN001
    photos = [m for m in await user.bot_messages() if m.photo]
    assert len(photos) == 1
    data = await user.download(photos[0].file_id)
    return Image.open(io.BytesIO(data)).size


async def test_job_naming_other_files_processes_the_operations_own(
    harness_factory, images
) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    user = h.user()
    own = await h.upload(user, images("astronaut.jpg"))
    other = await h.upload(user, images("coffee.jpg"))
    operation_id = await h.new_operation(
        user, "retouch", [own], hook="noop", balance=1000, enqueue=False
    )
    h.enqueue(operation_id, file_ids=[other])

    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    assert "the job named other inputs than its row" in h.logs()
    # noop sends its input back: the delivered photo is the operation's, not the job's.
    assert await _delivered_size(h, user) == Image.open(io.BytesIO(images("astronaut.jpg"))).size
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0


async def test_job_without_file_ids_fetches_them_after_the_claim(harness_factory, images) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    user = h.user()
    own = await h.upload(user, images("coffee.jpg"))
    operation_id = await h.new_operation(
        user, "retouch", [own], hook="noop", balance=1000, enqueue=False
    )
    h.enqueue(operation_id, file_ids=[])

    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    assert await _delivered_size(h, user) == Image.open(io.BytesIO(images("coffee.jpg"))).size
    assert await h.entries(operation_id, LedgerKind.CHARGE) == 1
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0
