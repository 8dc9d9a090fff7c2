"""The job layer runs operations in threads: concurrent runs give the sequential result."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from imaging.faceswap import face_swap
from imaging.text import add_text


def test_concurrent_face_swaps_and_captions_match_sequential(
    astronaut: bytes, hopper: bytes
) -> None:
    expected_swap = face_swap(astronaut, hopper).data
    expected_text = add_text(hopper, "Параллельно").data
    with ThreadPoolExecutor(max_workers=4) as pool:
        swaps = [pool.submit(face_swap, astronaut, hopper) for _ in range(4)]
        texts = [pool.submit(add_text, hopper, "Параллельно") for _ in range(4)]
        assert all(f.result().data == expected_swap for f in swaps)
        assert all(f.result().data == expected_text for f in texts)
