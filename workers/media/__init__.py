"""Image operations of Media Lab: pure, synchronous functions on image bytes.

Every operation takes the bytes of a JPEG/PNG/WebP/... photo (EXIF orientation
applied, converted to RGB, reduced to at most 4096 px per side) and returns a
:class:`MediaResult`; every failure is a :class:`MediaError` subclass. The RQ
job layer calls them in a worker; the cheap ``check_*`` / ``parse_instruction`` /
``probe_image`` / ``detect_faces`` functions let the bot refuse a request before
charging for it. Image generation is remote: see :mod:`workers.media.fal`.
"""

from ._image import (
    MAX_INPUT_BYTES,
    MAX_INPUT_PIXELS,
    MAX_INPUT_SIDE,
    WORK_MAX_SIDE,
    ImageInfo,
    MediaResult,
    load_image,
    probe_image,
)
from .edit import (
    MAX_STEPS,
    Step,
    apply_edit,
    describe_steps,
    edit,
    known_commands,
    parse_instruction,
    validate_steps,
)
from .errors import (
    BackendError,
    ImageTooLarge,
    ImageTooSmall,
    InstructionError,
    InvalidImage,
    InvalidText,
    MediaError,
    NoFaceFound,
    NothingChanged,
)
from .faceswap import FaceBox, detect_faces, face_swap
from .merge import merge
from .retouch import retouch
from .text import MAX_TEXT_LENGTH, add_text, check_text
from .upscale import DEFAULT_MAX_OUTPUT_PIXELS, check_upscale, upscale

__all__ = [
    "DEFAULT_MAX_OUTPUT_PIXELS",
    "MAX_INPUT_BYTES",
    "MAX_INPUT_PIXELS",
    "MAX_INPUT_SIDE",
    "MAX_STEPS",
    "MAX_TEXT_LENGTH",
    "WORK_MAX_SIDE",
    "BackendError",
    "FaceBox",
    "ImageInfo",
    "ImageTooLarge",
    "ImageTooSmall",
    "InstructionError",
    "InvalidImage",
    "InvalidText",
    "MediaError",
    "MediaResult",
    "NoFaceFound",
    "NothingChanged",
    "Step",
    "add_text",
    "apply_edit",
    "check_text",
    "check_upscale",
    "describe_steps",
    "detect_faces",
    "edit",
    "face_swap",
    "known_commands",
    "load_image",
    "merge",
    "parse_instruction",
    "probe_image",
    "retouch",
    "upscale",
    "validate_steps",
]
