"""Bad input that ends a job (no face, a truncated image, a photo under the minimum) is a
refusal, not an incident: refunded once with the true reason, the job ends normally (RQ logs
every raised exception as an ERROR with its traceback), and the worker logs it as one INFO
line. A success text is never sent for nothing done (✨ retouch of a photo without a face
answered "кожа сглажена")."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from billing.models import LedgerKind

# python -m workers itself: see tests/workers/conftest.py
pytestmark = pytest.mark.real_worker


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 90)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_refused_inputs_are_refunded_and_logged_without_a_traceback(
    harness_factory, images
) -> None:
    h = harness_factory(JOB_RETRIES=2, FREE_OPERATIONS_COUNT=0)
    worker = h.start_worker()
    faceless, truncated, tiny = h.user(), h.user(), h.user()
    no_face_id = await h.new_operation(
        faceless, "retouch", [await h.upload(faceless, images("coffee.jpg"))], balance=2000
    )
    whole = images("hopper.jpg")
    cut = await h.upload(truncated, whole[: len(whole) // 2], as_document=True)
    truncated_id = await h.new_operation(truncated, "upscale", [cut], balance=2000)
    dot = await h.upload(tiny, _png(2, 2), as_document=True, file_name="dot.png")
    tiny_id = await h.new_operation(tiny, "upscale", [dot], balance=2000)

    notices = {
        no_face_id: (faceless, "на фото не найдено лицо"),
        truncated_id: (truncated, "не удалось прочитать фото"),
        tiny_id: (tiny, "фото слишком маленькое (2×2): нужно не меньше 64 точек"),
    }
    for operation_id, (user, reason) in notices.items():
        notice = await h.wait_message(user, lambda m: "возвращены на баланс" in m.text, "notice")
        assert notice.text.startswith(f"❌ Не получилось: {reason}"), notice.text
        assert notice.text.endswith("10 ₽ возвращены на баланс. Баланс: 20 ₽.")
        op = await h.wait_final(operation_id)
        assert op.status == "refunded" and op.attempts == 1
        assert await h.entries(operation_id, LedgerKind.REFUND) == 1
        assert not [m for m in await user.bot_messages() if m.photo or m.document]
        assert not [m for m in await user.bot_messages() if "Ретушь готова" in m.text]

    log = worker.log()
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log
    for operation_id in notices:
        lines = [line for line in log.splitlines() if f"operation {operation_id} voided" in line]
        assert len(lines) == 1 and " INFO " in lines[0], log
