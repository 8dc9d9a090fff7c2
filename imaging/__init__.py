"""Image operations of Media Lab: a plain library of pure, synchronous functions on bytes.

No aiogram, no texts, no billing (import-linter contracts in pyproject.toml): every
failure is an :class:`imaging.errors.MediaError` with a ``code`` and parameters, and the
caller words it (texts/). Every operation takes the bytes of a JPEG/PNG/WebP/... photo
(EXIF orientation applied, converted to RGB, reduced to at most 4096 px per side) and
returns an :class:`imaging._image.MediaResult`.

This package imports nothing at import time, so that the light modules stay light:
:mod:`imaging.header` (an image's header, input limits, the upscale size check),
:mod:`imaging.instruction` (the edit language), :mod:`imaging.caption` (a caption's check)
and :mod:`imaging.visible_text` load neither OpenCV nor numpy; the bot refuses a request
before charging with them. The operations (:mod:`imaging.edit`, ``merge``, ``faceswap``,
``retouch``, ``upscale``, ``text``) and remote generation (:mod:`imaging.fal`) are for the
workers.
"""
