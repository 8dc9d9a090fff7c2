"""The job checks the minimum input size (jobqueue.catalogue) on the bytes it downloaded, too:
a photo under it fails as a permanent failure that names the minimum (the bot refuses those
before the charge; this is what a job that got one anyway says when it refunds)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from billing.models import Funding
from billing.operations import RefundResult
from billing.prices import OperationType
from imaging.errors import ImageTooSmall
from tests.conftest import make_settings
from workers.failures import classify
from workers.messages import failure_notice
from workers.operations import run_local

SETTINGS = make_settings("sqlite://")


def _jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("op", [OperationType.UPSCALE, OperationType.RETOUCH])
def test_a_one_pixel_input_is_not_processed(op: OperationType) -> None:
    with pytest.raises(ImageTooSmall) as refused:
        run_local(op, [_jpeg(1, 1)], None, SETTINGS)
    assert (refused.value.width, refused.value.height, refused.value.min_side) == (1, 1, 64)


def test_the_refund_notice_names_the_photo_and_the_minimum() -> None:
    with pytest.raises(ImageTooSmall) as refused:
        run_local(OperationType.MERGE, [_jpeg(300, 300), _jpeg(300, 10)], None, SETTINGS)
    failure = classify(refused.value)
    assert (failure.reason, failure.transient) == ("image-too-small", False)
    refund = RefundResult(
        operation_id=1,
        user_id=1,
        amount=1000,
        free_back=0,
        funding=Funding.BALANCE,
        balance_after=2000,
        free_after=0,
    )
    assert failure_notice(failure, refund, "ru").startswith(
        "❌ Не получилось: второе фото слишком маленькое (300×10): нужно не меньше 64 точек"
    )
    assert "the second photo is too small (300×10): at least 64 pixels" in failure_notice(
        failure, refund, "en"
    )
