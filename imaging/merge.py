"""🔗 Merge: 2-4 photos side by side at a common height (the local collage)."""

from __future__ import annotations

from PIL import Image

from ._image import MediaResult, load_image, make_result

MAX_MERGE_HEIGHT = 2048
MAX_MERGE_WIDTH = 6144  # keeps width + height under Telegram's 10000 for a photo
MAX_MERGE_PHOTOS = 4


def merge_layout(
    *sizes: tuple[int, int],
    max_height: int = MAX_MERGE_HEIGHT,
    max_width: int = MAX_MERGE_WIDTH,
) -> tuple[int, ...]:
    """``(width_1, ..., width_n, height)`` of the merged picture: the common height is the
    smallest of the heights (never enlarging), reduced to fit the bounds."""
    if len(sizes) < 2:
        raise ValueError("merge takes at least two photos")
    height = min(min(h for _, h in sizes), max_height)
    widths = [max(1, round(w * height / h)) for w, h in sizes]
    if sum(widths) > max_width:
        factor = max_width / sum(widths)
        height = max(1, int(height * factor))
        widths = [max(1, round(w * height / h)) for w, h in sizes]
        # Rounding up may still pass the bound by a pixel or so: the widest gives it back.
        excess = sum(widths) - max_width
        if excess > 0:
            widest = widths.index(max(widths))
            widths[widest] = max(1, widths[widest] - excess)
    return (*widths, height)


def merge(
    *photos: bytes,
    max_height: int = MAX_MERGE_HEIGHT,
    max_width: int = MAX_MERGE_WIDTH,
) -> MediaResult:
    """Put the photos left to right in the order given, all scaled to a common height."""
    if not 2 <= len(photos) <= MAX_MERGE_PHOTOS:
        raise ValueError(f"merge takes 2 to {MAX_MERGE_PHOTOS} photos, got {len(photos)}")
    images = [
        load_image(data, which="a" if i == 0 else "b" if i == 1 else None)
        for i, data in enumerate(photos)
    ]
    *widths, height = merge_layout(
        *(img.size for img in images), max_height=max_height, max_width=max_width
    )
    canvas = Image.new("RGB", (sum(widths), height))
    x = 0
    for img, width in zip(images, widths, strict=True):
        resized = img.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        canvas.paste(resized, (x, 0))
        x += width
    return make_result(canvas, "merge")
