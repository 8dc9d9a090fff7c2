"""An operation never "succeeds" doing nothing: ✨ retouch of a photo without a face, 🔄 a face
swap where a photo has no face, ✏️ an edit that changes no pixel — each raises, so the job
refunds with the true reason instead of a success caption."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imaging.edit import apply_edit, edit
from imaging.errors import InstructionError, NoFaceFound, NothingChanged
from imaging.faceswap import face_swap
from imaging.instruction import Step, parse_instruction
from imaging.retouch import retouch
from workers.failures import classify


def _jpeg(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_retouch_refuses_a_photo_without_a_face(coffee: bytes, chelsea_png: bytes) -> None:
    for data in (coffee, chelsea_png):
        with pytest.raises(NoFaceFound) as refused:
            retouch(data)
        assert refused.value.which is None
        failure = classify(refused.value)
        assert (failure.reason, failure.transient, failure.params) == ("no-face", False, {})


def test_retouch_of_a_portrait_still_works(astronaut: bytes) -> None:
    assert retouch(astronaut).op == "retouch"


def test_a_face_swap_without_a_face_in_either_photo_names_both(coffee: bytes) -> None:
    cat = Image.open(io.BytesIO(coffee)).rotate(180)
    with pytest.raises(NoFaceFound) as refused:
        face_swap(coffee, _jpeg(cat))
    assert refused.value.which == "both"
    assert classify(refused.value).params == {"which": "both"}


def test_an_edit_that_changes_no_pixel_is_refused(coffee: bytes, hopper: bytes) -> None:
    grey = _jpeg(Image.open(io.BytesIO(coffee)).convert("L"))
    with pytest.raises(NothingChanged):
        edit(grey, "ч/б")  # already black and white
    with pytest.raises(NothingChanged):
        edit(coffee, "повернуть вправо, повернуть влево")
    with pytest.raises(NothingChanged):
        edit(coffee, "отразить, отразить")
    square = _jpeg(Image.open(io.BytesIO(hopper)).crop((0, 0, 400, 400)))
    with pytest.raises(NothingChanged):
        apply_edit(square, [Step("crop_square")])
    assert classify(NothingChanged("x")).reason == "no-change"
    # Anything that does change a pixel goes through.
    assert edit(coffee, "ч/б").op == "edit"
    assert edit(grey, "яркость +10").op == "edit"


@pytest.mark.parametrize("text", ["яркость 0", "контраст +0, насыщенность -0", "brightness 0%"])
def test_a_change_by_zero_is_refused_before_the_charge(text: str) -> None:
    with pytest.raises(InstructionError) as refused:
        parse_instruction(text)
    assert refused.value.reason == "no-effect"


def test_a_zero_beside_a_real_step_is_allowed() -> None:
    assert [s.op for s in parse_instruction("ч/б, яркость 0")] == ["grayscale", "brightness"]
