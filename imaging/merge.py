"""🔗 Merge: two photos side by side at a common height."""

from __future__ import annotations

from PIL import Image

from ._image import MediaResult, load_image, make_result

MAX_MERGE_HEIGHT = 2048
MAX_MERGE_WIDTH = 6144  # keeps width + height under Telegram's 10000 for a photo


def merge_layout(
    a_size: tuple[int, int],
    b_size: tuple[int, int],
    *,
    max_height: int = MAX_MERGE_HEIGHT,
    max_width: int = MAX_MERGE_WIDTH,
) -> tuple[int, int, int]:
    """``(width_a, width_b, height)`` of the merged picture: the common height is the
    smaller of the two heights (never enlarging), reduced to fit the bounds."""
    (aw, ah), (bw, bh) = a_size, b_size
    height = min(ah, bh, max_height)
    wa = max(1, round(aw * height / ah))
    wb = max(1, round(bw * height / bh))
    if wa + wb > max_width:
        factor = max_width / (wa + wb)
        height = max(1, int(height * factor))
        wa = max(1, min(round(aw * height / ah), max_width - 1))
        wb = max(1, min(round(bw * height / bh), max_width - wa))
    return wa, wb, height


def merge(
    a: bytes,
    b: bytes,
    *,
    max_height: int = MAX_MERGE_HEIGHT,
    max_width: int = MAX_MERGE_WIDTH,
) -> MediaResult:
    """Put photo ``a`` left of photo ``b``, both scaled to a common height."""
    img_a = load_image(a, which="a")
    img_b = load_image(b, which="b")
    wa, wb, height = merge_layout(
        img_a.size, img_b.size, max_height=max_height, max_width=max_width
    )
    canvas = Image.new("RGB", (wa + wb, height))
    canvas.paste(img_a.resize((wa, height), Image.Resampling.LANCZOS, reducing_gap=3.0), (0, 0))
    canvas.paste(img_b.resize((wb, height), Image.Resampling.LANCZOS, reducing_gap=3.0), (wa, 0))
    return make_result(canvas, "merge")
