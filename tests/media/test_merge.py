"""🔗 merge: side by side at a common height."""

from __future__ import annotations

import numpy as np

from imaging.merge import merge, merge_layout

from .conftest import decode, to_jpeg


def test_merge_scales_to_a_common_height(coffee: bytes, hopper: bytes) -> None:
    result = merge(coffee, hopper)  # 600x400 and 512x600
    assert result.height == 400
    expected = 600 + round(512 * 400 / 600)
    assert abs(result.width - expected) <= 1
    out = decode(result.data)
    assert out.shape == (400, result.width, 3)
    # Left part is the coffee photo, right part the (scaled) portrait.
    left = out[:, :600].astype(int)
    assert np.abs(left - decode(coffee).astype(int)).mean() < 4
    assert result.op == "merge"


def test_merge_order_matters(coffee: bytes, astronaut: bytes) -> None:
    ab = decode(merge(coffee, astronaut).data)
    ba = decode(merge(astronaut, coffee).data)
    assert ab.shape == ba.shape
    assert np.abs(ab.astype(int) - ba.astype(int)).mean() > 20


def test_merge_output_is_bounded() -> None:
    wide = to_jpeg(np.full((300, 3000, 3), 200, np.uint8))  # 10:1 panoramas
    result = merge(wide, wide, max_width=2000, max_height=2048)
    assert result.width <= 2000
    assert result.height < 300
    wa, wb, h = merge_layout((3000, 300), (3000, 300), max_width=2000)
    assert wa + wb <= 2000 and h == result.height


def test_layout_never_enlarges() -> None:
    wa, wb, h = merge_layout((100, 50), (400, 800))
    assert h == 50 and wa == 100 and wb == 25


def test_merge_takes_up_to_four_photos_in_order(coffee: bytes, hopper: bytes) -> None:
    three = merge(coffee, hopper, coffee)  # 600x400, 512x600, 600x400
    *widths, height = merge_layout((600, 400), (512, 600), (600, 400))
    assert (three.width, three.height) == (sum(widths), height) and height == 400
    out = decode(three.data).astype(int)
    right = out[:, widths[0] + widths[1] :]
    assert np.abs(right - decode(coffee).astype(int)).mean() < 4  # the third, last
    four = merge(coffee, hopper, coffee, hopper)
    assert four.width == sum(merge_layout(*[(600, 400), (512, 600)] * 2)[:-1])


def test_merge_refuses_one_or_five_photos(coffee: bytes) -> None:
    import pytest

    with pytest.raises(ValueError):
        merge(coffee)
    with pytest.raises(ValueError):
        merge(coffee, coffee, coffee, coffee, coffee)


def test_a_wide_row_of_four_stays_within_the_bounds() -> None:
    wide = (3000, 300)
    *widths, height = merge_layout(wide, wide, wide, wide, max_width=2000)
    assert sum(widths) <= 2000 and height < 300
