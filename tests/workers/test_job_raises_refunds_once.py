"""A job that raises is refunded exactly once: at once when the failure is permanent (no face,
an unreadable file — retrying changes nothing), after the last attempt when it is transient
(Telegram answering 500 to every getFile)."""

from __future__ import annotations

from billing.models import LedgerKind


async def assert_refunded_once(h, operation_id: int) -> None:
    op = await h.wait_final(operation_id)
    assert op.status == "refunded", f"{op.status}: {op.error}\n{h.logs()}"
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
    assert await h.entries(operation_id, LedgerKind.CHARGE) == 1


async def test_no_face_refunds_money_at_once(harness_factory, images) -> None:
    h = harness_factory(JOB_RETRIES=2, FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    user = h.user()
    faceless = images("coffee.jpg")
    operation_id = await h.new_operation(
        user,
        "face_swap",
        [await h.upload(user, faceless), await h.upload(user, images("hopper.jpg"))],
        balance=2500,
    )

    notice = await h.wait_message(user, lambda m: "возвращены на баланс" in m.text, "notice")
    assert notice.text == (
        "❌ Не получилось: на первом фото не найдено лицо. Пришлите фото, где лицо хорошо "
        "видно.\n10 ₽ возвращены на баланс. Баланс: 25 ₽."
    )
    await assert_refunded_once(h, operation_id)
    op = await h.operation(operation_id)
    assert op.attempts == 1, "a permanent failure must not be retried"
    assert op.error.startswith("no-face")
    # The notice is the "queued" message itself (one message less than a new one + delete).
    assert notice.message_id == op.status_message_id and not notice.deleted
    assert not [m for m in await user.bot_messages() if m.photo or m.document]


async def test_corrupt_file_gives_the_free_operation_back(harness_factory) -> None:
    h = harness_factory(JOB_RETRIES=1)
    h.start_worker()
    user = h.user(language="en")
    broken = b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 100
    file_id = await h.upload(user, broken, as_document=True, file_name="photo.jpg")
    operation_id = await h.new_operation(user, "retouch", [file_id])

    notice = await h.wait_message(user, lambda m: "free operation is back" in m.text, "notice")
    assert notice.text == (
        "❌ That didn't work: could not read the photo: the file is damaged or not an image.\n"
        "Your free operation is back. Free operations left: 4."
    )
    await assert_refunded_once(h, operation_id)
    assert (await h.operation(operation_id)).attempts == 1


async def test_transient_failure_is_refunded_after_the_last_attempt(harness_factory, images):
    # Telegram's retries within an attempt as short as can be: how long they wait is not what
    # this proves, that each attempt's retries and then RQ's retry were all used up is.
    h = harness_factory(
        JOB_RETRIES=1, FREE_OPERATIONS_COUNT=0, TELEGRAM_RETRY_BACKOFF=(0.01, 0.01, 0.01)
    )
    user = h.user()
    file_id = await h.upload(user, images("hopper.jpg"))
    # Every getFile answers 500: the job's own retries, then RQ's retry, all fail.
    await h.tg.fail_next(1000, kind="500", methods=["getFile"])
    h.start_worker()
    operation_id = await h.new_operation(user, "upscale", [file_id], balance=1000)

    notice = await h.wait_message(user, lambda m: "возвращены на баланс" in m.text, "notice")
    assert notice.text == (
        "❌ Не получилось: Telegram не принял запрос.\n10 ₽ возвращены на баланс. Баланс: 10 ₽."
    )
    await assert_refunded_once(h, operation_id)
    op = await h.operation(operation_id)
    assert op.attempts == 2, "refunded only after RQ's retry failed too"
    notices = [m for m in await user.bot_messages() if "возвращены" in m.text]
    assert len(notices) == 1
