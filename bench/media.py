"""Time per local media operation on a 1280×960 photo (median of N runs).

    .venv/bin/python bench/media.py [--runs 7] [--large]

The photo is made at run time from tests/fixtures/hopper.jpg (enlarged and
cropped to 1280×960, a real face in it); the face-swap source is astronaut.jpg.
``--large`` also runs each operation once on a 4096×4096 input (the largest the
operations work on) to show that time and memory stay bounded there. The
numbers include decoding the input and encoding the output, as the worker pays
both. OpenCV's thread count is printed: on this 2-core workplace it is 2.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from imaging._image import load_image  # noqa: E402
from imaging.edit import apply_edit  # noqa: E402
from imaging.faceswap import detect_faces, face_swap  # noqa: E402
from imaging.header import probe_image  # noqa: E402
from imaging.instruction import parse_instruction  # noqa: E402
from imaging.merge import merge  # noqa: E402
from imaging.retouch import retouch  # noqa: E402
from imaging.text import add_text  # noqa: E402
from imaging.upscale import upscale  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def bench_photo(width: int = 1280, height: int = 960) -> bytes:
    """hopper.jpg enlarged to ``width`` and centre-cropped to ``height`` (JPEG q90)."""
    src = Image.open(FIXTURES / "hopper.jpg").convert("RGB")
    scale = max(width / src.width, height / src.height)
    big = src.resize((round(src.width * scale), round(src.height * scale)), Image.LANCZOS)
    left, top = (big.width - width) // 2, (big.height - height) // 2
    img = big.crop((left, top, left + width, top + height))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def noisy_photo(side: int) -> bytes:
    """A textured side×side JPEG (noise over a gradient): the worst case for filters."""
    rng = np.random.default_rng(0)
    grad = np.linspace(40, 220, side, dtype=np.float32)[None, :, None]
    arr = np.clip(grad + rng.normal(0, 25, (side, side, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def cases(photo: bytes, face: bytes) -> list[tuple[str, Callable[[], object]]]:
    gray = parse_instruction("ч/б")
    chain = parse_instruction("яркость +10, контраст +20, насыщенность -30, резкость")
    heavy = parse_instruction("размытие 20, повернуть 90, отразить, обрезать квадрат, сепия")
    return [
        ("probe_image (header only)", lambda: probe_image(photo)),
        ("decode (load_image)", lambda: load_image(photo)),
        ("parse_instruction", lambda: parse_instruction("ч/б, яркость +20 и повернуть вправо")),
        ("detect_faces", lambda: detect_faces(photo)),
        ("upscale 2x", lambda: upscale(photo)),
        ("retouch", lambda: retouch(photo)),
        ("edit: ч/б", lambda: apply_edit(photo, gray)),
        ("edit: 4 tone steps", lambda: apply_edit(photo, chain)),
        ("edit: blur 20 + 4 geometry", lambda: apply_edit(photo, heavy)),
        ("merge (with itself)", lambda: merge(photo, photo)),
        ("face_swap (astronaut -> photo)", lambda: face_swap(face, photo)),
        ("add_text (Cyrillic, 2 lines)", lambda: add_text(photo, "Привет из Media Lab! " * 3)),
    ]


def measure(fn: Callable[[], object], runs: int) -> tuple[list[float], object]:
    out = fn()  # warm-up: cascades, fonts, LUTs
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, out


def describe(out: object) -> str:
    width, height, data = (getattr(out, k, None) for k in ("width", "height", "data"))
    if width and height and isinstance(data, bytes):
        return f"{width}×{height}, {len(data) // 1024} KB"
    if isinstance(out, list):
        return f"{len(out)} item(s)"
    if hasattr(out, "size"):
        return "×".join(map(str, out.size))  # type: ignore[union-attr]
    return type(out).__name__


def table(title: str, rows: list[tuple[str, list[float], str]]) -> None:
    print(f"\n{title}")
    print(f"{'operation':34} {'median ms':>10} {'min':>8} {'max':>8}  output")
    print("-" * 86)
    for name, times, out in rows:
        print(
            f"{name:34} {statistics.median(times):10.1f} {min(times):8.1f} {max(times):8.1f}"
            f"  {out}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per operation")
    parser.add_argument("--large", action="store_true", help="also one run at 4096×4096")
    args = parser.parse_args(argv)

    photo = bench_photo()
    face = (FIXTURES / "astronaut.jpg").read_bytes()
    info = probe_image(photo)
    print(
        f"python {platform.python_version()}, OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads), {os.cpu_count()} CPUs; "
        f"photo {info.width}×{info.height} JPEG {len(photo) // 1024} KB, "
        f"{len(detect_faces(photo))} face(s); median of {args.runs} runs after a warm-up"
    )
    rows = []
    for name, fn in cases(photo, face):
        times, out = measure(fn, args.runs)
        rows.append((name, times, describe(out)))
    table("1280×960 photo", rows)

    if args.large:
        big = noisy_photo(4096)
        big_face = bench_photo(4096, 4096)
        large_rows = []
        for name, fn in cases(big, face):
            if name == "upscale 2x":
                continue  # refused by the output limit before any work (ImageTooLarge)
            if name.startswith("face_swap"):
                fn = lambda: face_swap(face, big_face)  # noqa: E731 - needs a face in B
            times, out = measure(fn, 1)
            large_rows.append((name, times, describe(out)))
        table("4096×4096 input (1 run)", large_rows)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
