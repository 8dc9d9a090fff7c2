"""A local fake of fal.ai's queue API and its webhooks, for tests and local runs.

    python -m sandbox.fal --port 8090 --key test-key

The queue (https://docs.fal.ai/model-endpoints/queue), as ``imaging.fal.FalClient`` uses it:

- ``POST /{model_id}[?fal_webhook=<url>]`` (``Authorization: Key <key>``; the model's JSON
  input) -> ``{"request_id", "gateway_request_id", "status_url", "response_url",
  "cancel_url", "queue_position"}``;
- ``GET /{owner}/{app}/requests/{id}/status`` -> ``IN_QUEUE``, then ``IN_PROGRESS``, then
  ``COMPLETED`` (202 until completed, then 200); a request without a webhook is COMPLETED
  only after ``polls_until_done`` polls (the old client's shape);
- ``GET /{owner}/{app}/requests/{id}`` -> the model's output, or the error fal answered
  (422 with ``detail`` for a rejected input or a safety refusal, 500 for a model failure);
- ``PUT /{owner}/{app}/requests/{id}/cancel``;
- ``GET /files/{id}.png`` -> the picture.

Every default model kind (``MODEL_KINDS``; an unknown model id by its input's shape) makes a
deterministic picture that shows what was done: text-to-image draws the prompt on a
gradient, an instruction edit writes the instruction over the photo in a frame, a multi-image
merge puts the photos side by side under the sentence, a face swap boxes the faces of the
base photo and pastes the swap photo into each box, a restoration smooths the photo and boxes
its faces, an upscaler enlarges it ``scale`` times.

Webhooks (https://docs.fal.ai/model-endpoints/webhooks): when a request with ``fal_webhook``
ends, the emulator POSTs ``{"request_id", "gateway_request_id", "status": "OK" | "ERROR",
"payload", "error"}`` signed as fal signs: ED25519 over ``request_id \\n user_id \\n
timestamp \\n sha256_hex(body)``, in ``X-Fal-Webhook-Request-Id``, ``-User-Id``,
``-Timestamp``, ``-Signature`` (hex). ``GET /.well-known/jwks.json`` publishes the public
key. A delivery answered with anything but 2xx (or not answered) is retried after each of
``retry_delays`` (fal: 10 times over 2 hours; here seconds, for tests).

Control API (no key): ``POST /_emu/faults`` with ``{"kind": "500" | "502" | "429" | "delay" |
"disconnect", "count", "delay", "endpoints"}`` fails the next N HTTP calls; ``POST
/_emu/outcomes`` with ``{"outcome": "ok" | "refuse" | "nsfw" | "invalid" | "error" | "hang",
"count", "seconds"}`` decides the next N requests (how they end, how long the model takes);
``POST /_emu/webhooks/drop`` with ``{"count"}`` loses the next N requests' webhooks;
``POST /_emu/config`` with ``{"model_seconds", "retry_delays"}``; ``POST
/_emu/requests/{id}/complete`` ends a hanging request now; ``GET /_emu/webhooks`` lists
every delivery (headers and body, to replay one); ``GET /_emu/calls``; ``POST /_emu/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import io
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image, ImageDraw, ImageFilter

from sandbox._common import json_response

log = logging.getLogger(__name__)

SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
ENDPOINTS = ("submit", "status", "result", "file", "cancel")
FAULT_KINDS = ("500", "502", "429", "delay", "disconnect")
OUTCOMES = ("ok", "refuse", "nsfw", "invalid", "error", "hang")
KINDS = ("text-to-image", "edit", "merge", "face-swap", "restore", "upscale")
# The models the project's defaults name (jobqueue.ai) and a few neighbours.
MODEL_KINDS: dict[str, str] = {
    "fal-ai/flux/schnell": "text-to-image",
    "fal-ai/flux/dev": "text-to-image",
    "fal-ai/flux-pro/v1.1": "text-to-image",
    "fal-ai/flux-pro/kontext": "edit",
    "fal-ai/flux-pro/kontext/max": "edit",
    "fal-ai/flux-pro/kontext/multi": "merge",
    "fal-ai/flux-pro/kontext/max/multi": "merge",
    "fal-ai/face-swap": "face-swap",
    "fal-ai/codeformer": "restore",
    "fal-ai/esrgan": "upscale",
    "fal-ai/clarity-upscaler": "upscale",
}
# fal: 10 re-deliveries over 2 hours. Here seconds, so a test sees them.
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
USER_ID = "sandbox-user"
MAX_INPUT_BYTES = 20 * 1024 * 1024


@dataclass
class Fault:
    kind: str
    remaining: int
    endpoints: frozenset[str] | None = None
    delay: float = 0.0


@dataclass
class Scripted:
    outcome: str
    remaining: int
    seconds: float | None = None


@dataclass
class QueuedJob:
    request_id: str
    app_path: str
    model: str
    prompt: str
    width: int
    height: int
    kind: str = "text-to-image"
    body: dict[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    outcome: str = "ok"
    seconds: float = 0.0
    polls: int = 0
    cancelled: bool = False
    finished: bool = False
    status_code: int = 200  # of the result endpoint once finished
    output: dict[str, Any] | None = None  # the model's output, or the error body
    png: bytes | None = None
    drop_webhook: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


@dataclass
class FalEmulator:
    key: str
    polls_until_done: int = 2
    model_seconds: float = 0.0
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    jobs: dict[str, QueuedJob] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    scripted: list[Scripted] = field(default_factory=list)
    drop_webhooks: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    signing_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    key_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    tasks: set[asyncio.Task] = field(default_factory=set)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep that ends early when the server shuts down (a delayed call's
        handler held the server's stop for its whole delay, a client long gone)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), seconds)

    def reset(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.jobs.clear()
        self.faults.clear()
        self.scripted.clear()
        self.calls.clear()
        self.webhooks.clear()
        self.drop_webhooks = 0

    def inject(
        self,
        kind: str,
        count: int = 1,
        *,
        endpoints: list[str] | tuple[str, ...] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Fail the next ``count`` calls (of ``endpoints``, or any) with ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        unknown = set(endpoints or ()) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoints {sorted(unknown)}")
        self.faults.append(Fault(kind, count, frozenset(endpoints) if endpoints else None, delay))

    def take_fault(self, endpoint: str) -> Fault | None:
        for fault in self.faults:
            if fault.remaining > 0 and (fault.endpoints is None or endpoint in fault.endpoints):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def script(self, outcome: str, count: int = 1, *, seconds: float | None = None) -> None:
        """The next ``count`` requests end with ``outcome`` (after ``seconds`` of model time,
        else ``model_seconds``): "ok"; "refuse" (the safety checker: a 422
        content_policy_violation); "nsfw" (an OK result flagged ``has_nsfw_concepts``);
        "invalid" (a 422 on the input); "error" (the model failed, 500); "hang" (never ends,
        until :meth:`complete`)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        self.scripted.append(Scripted(outcome, count, seconds))

    def take_script(self) -> tuple[str, float]:
        for item in self.scripted:
            if item.remaining > 0:
                item.remaining -= 1
                if item.remaining == 0:
                    self.scripted.remove(item)
                seconds = self.model_seconds if item.seconds is None else item.seconds
                return item.outcome, seconds
        return "ok", self.model_seconds

    def complete(self, request_id: str, outcome: str = "ok") -> None:
        """End a request now (a hanging one: with ``outcome``)."""
        job = self.jobs[request_id]
        if job.outcome == "hang":
            job.outcome = outcome
        job.release.set()

    def jwks(self) -> dict[str, Any]:
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        return {
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.key_id, "use": "sig"}]
        }

    def sign(self, request_id: str, body: bytes, *, timestamp: int | None = None) -> dict:
        """fal's webhook headers for ``body``."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        digest = hashlib.sha256(body).hexdigest()
        message = "\n".join((request_id, USER_ID, stamp, digest)).encode("utf-8")
        return {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": USER_ID,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": self.signing_key.sign(message).hex(),
        }


EMU_KEY = web.AppKey("fal_emulator", FalEmulator)
HTTP_KEY = web.AppKey("fal_emulator_http", aiohttp.ClientSession)


# --- pictures ---------------------------------------------------------------------------


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _with_text(img: Image.Image, text: str, position: str = "center") -> Image.Image:
    try:
        from imaging.text import check_text, draw_text

        return draw_text(img, check_text(text[:200]), position)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - the picture is still deterministic without text
        return img


def render_png(prompt: str, width: int, height: int) -> bytes:
    """A deterministic picture for ``prompt``: a diagonal gradient + the prompt text."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    c0 = np.array(list(digest[0:3]), dtype=np.float32)
    c1 = np.array(list(digest[3:6]), dtype=np.float32)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    t = ((xs + ys) / 2.0)[..., None]
    arr = (c0 * (1 - t) + c1 * t).astype(np.uint8)
    return _png(_with_text(Image.fromarray(arr), prompt))


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        rgb = img.convert("RGB")
    rgb.thumbnail((1536, 1536))
    return rgb


def _faces(img: Image.Image) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of the faces OpenCV finds (none without it)."""
    try:
        from imaging.faceswap import find_faces

        return [(f.x, f.y, f.w, f.h) for f in find_faces(np.asarray(img))]
    except Exception:  # noqa: BLE001 - a picture without boxes is still an answer
        return []


def _box(img: Image.Image, boxes: list[tuple[int, int, int, int]], colour: str) -> None:
    draw = ImageDraw.Draw(img)
    width = max(3, img.width // 200)
    for x, y, w, h in boxes:
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=width)


def render_edit(image: bytes, prompt: str) -> bytes:
    img = _open(image)
    framed = Image.new("RGB", (img.width + 24, img.height + 24), (255, 128, 0))
    framed.paste(img, (12, 12))
    return _png(_with_text(framed, f"✎ {prompt}", "bottom"))


def render_merge(images: list[bytes], prompt: str) -> bytes:
    opened = [_open(data) for data in images]
    height = min(img.height for img in opened)
    scaled = [img.resize((max(1, img.width * height // img.height), height)) for img in opened]
    canvas = Image.new("RGB", (sum(img.width for img in scaled), height), (0, 0, 0))
    x = 0
    for img in scaled:
        canvas.paste(img, (x, 0))
        x += img.width
    return _png(_with_text(canvas, f"⊕ {prompt}", "bottom"))


def render_face_swap(base: bytes, swap: bytes) -> bytes:
    img = _open(base)
    donor = _open(swap)
    donor_faces = _faces(donor)
    if donor_faces:
        x, y, w, h = donor_faces[0]
        donor = donor.crop((x, y, x + w, y + h))
    boxes = _faces(img)
    for x, y, w, h in boxes:
        img.paste(donor.resize((max(1, w), max(1, h))), (x, y))
    _box(img, boxes, "lime")
    return _png(img)


def render_restore(image: bytes) -> bytes:
    img = _open(image).filter(ImageFilter.SMOOTH_MORE)
    _box(img, _faces(img), "cyan")
    return _png(img)


def render_upscale(image: bytes, scale: int) -> bytes:
    img = _open(image)
    big = img.resize((img.width * scale, img.height * scale), Image.Resampling.LANCZOS)
    return _png(_with_text(big, f"×{scale}", "bottom"))


# --- the model --------------------------------------------------------------------------


def kind_of(model: str, body: dict[str, Any]) -> str:
    if model in MODEL_KINDS:
        return MODEL_KINDS[model]
    if "image_urls" in body:
        return "merge"
    if "base_image_url" in body or "swap_image_url" in body:
        return "face-swap"
    if "image_url" in body:
        if "prompt" in body:
            return "edit"
        return "upscale" if "scale" in body or "upscal" in model else "restore"
    return "text-to-image"


def _error(field_name: str, message: str, kind: str = "value_error") -> dict[str, Any]:
    return {"detail": [{"loc": ["body", field_name], "msg": message, "type": kind}]}


async def _fetch_image(http: aiohttp.ClientSession, url: Any) -> bytes | None:
    if not isinstance(url, str):
        return None
    if url.startswith("data:"):
        _, _, encoded = url.partition(",")
        try:
            return base64.b64decode(encoded, validate=False)
        except ValueError:
            return None
    if not url.startswith(("http://", "https://")):
        return None
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
            if response.status != 200:
                return None
            data = await response.read()
            return data if len(data) <= MAX_INPUT_BYTES else None
    except (aiohttp.ClientError, TimeoutError):
        return None


async def _run_model(
    http: aiohttp.ClientSession, job: QueuedJob
) -> tuple[int, dict[str, Any], bytes | None]:
    """(status, output or error body, picture) of one request."""
    if job.outcome == "refuse":
        msg = "The content could not be processed because it contained material flagged by a "
        msg += "content checker."
        return 422, _error("prompt", msg, "content_policy_violation"), None
    if job.outcome == "invalid":
        return 422, _error("image_url", "Unsupported image"), None
    if job.outcome == "error":
        return 500, {"detail": "Internal server error"}, None
    body, kind = job.body, job.kind
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    if kind in ("edit", "merge") and not prompt.strip():
        return 422, _error("prompt", "field required"), None
    if kind == "merge":
        urls = body.get("image_urls")
        if not isinstance(urls, list) or not 2 <= len(urls) <= 4:
            return 422, _error("image_urls", "2 to 4 images"), None
        images = [await _fetch_image(http, url) for url in urls]
    elif kind == "face-swap":
        images = [
            await _fetch_image(http, body.get("base_image_url")),
            await _fetch_image(http, body.get("swap_image_url")),
        ]
    elif kind == "text-to-image":
        images = []
    else:
        images = [await _fetch_image(http, body.get("image_url"))]
    if any(image is None for image in images):
        return 422, _error("image_url", "Could not download the image"), None
    inputs = [image for image in images if image is not None]
    try:
        if kind == "text-to-image":
            png = await asyncio.to_thread(render_png, prompt, job.width, job.height)
        elif kind == "edit":
            png = await asyncio.to_thread(render_edit, inputs[0], prompt)
        elif kind == "merge":
            png = await asyncio.to_thread(render_merge, inputs, prompt)
        elif kind == "face-swap":
            png = await asyncio.to_thread(render_face_swap, inputs[0], inputs[1])
        elif kind == "restore":
            png = await asyncio.to_thread(render_restore, inputs[0])
        else:
            scale = body.get("scale", 2)
            scale = scale if isinstance(scale, int) and 1 <= scale <= 4 else 2
            png = await asyncio.to_thread(render_upscale, inputs[0], scale)
    except Exception:  # noqa: BLE001 - an input PIL cannot read
        return 422, _error("image_url", "Could not read the image"), None
    with Image.open(io.BytesIO(png)) as img:
        width, height = img.size
    if job.outcome == "nsfw":  # fal's checker blanks the picture and flags it
        png = _png(Image.new("RGB", (width, height)))
    return 200, {"png": True, "width": width, "height": height, "prompt": prompt}, png


def model_output(job: QueuedJob, base: str) -> dict[str, Any]:
    """The model's output in fal's shape for its kind."""
    assert job.output is not None
    image = {
        "url": f"{base}/files/{job.request_id}.png",
        "width": job.output["width"],
        "height": job.output["height"],
        "content_type": "image/png",
        "file_name": f"{job.request_id}.png",
    }
    if job.kind in ("face-swap", "restore", "upscale"):
        return {"image": image}
    seed = int.from_bytes(hashlib.sha256(job.prompt.encode()).digest()[:4], "big")
    return {
        "images": [image],
        "timings": {"inference": job.seconds},
        "seed": seed,
        "has_nsfw_concepts": [job.outcome == "nsfw"],
        "prompt": job.output.get("prompt") or job.prompt,
    }


async def _process(app: web.Application, job: QueuedJob, base: str) -> None:
    emu = app[EMU_KEY]
    if job.outcome == "hang":
        await job.release.wait()
    elif job.seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.release.wait(), job.seconds)
    status, output, png = await _run_model(app[HTTP_KEY], job)
    job.status_code, job.output, job.png = status, output, png
    job.finished = True
    if job.webhook_url is None or job.drop_webhook:
        return
    if status == 200:
        body: dict[str, Any] = {"status": "OK", "payload": model_output(job, base), "error": None}
    else:
        body = {"status": "ERROR", "payload": output, "error": f"Invalid status code: {status}"}
    raw = json.dumps(
        {"request_id": job.request_id, "gateway_request_id": job.request_id, **body}
    ).encode()
    await _deliver(app, emu, job, raw)


async def _deliver(app: web.Application, emu: FalEmulator, job: QueuedJob, raw: bytes) -> None:
    """POST the webhook, signed afresh on each attempt; retried after each of retry_delays."""
    assert job.webhook_url is not None
    delays = (0.0, *emu.retry_delays)
    for attempt, delay in enumerate(delays, start=1):
        if delay:
            await asyncio.sleep(delay)
        headers = emu.sign(job.request_id, raw)
        record: dict[str, Any] = {
            "request_id": job.request_id,
            "attempt": attempt,
            "url": job.webhook_url,
            "headers": headers,
            "body": raw.decode(),
            "sent_at": time.time(),
        }
        try:
            async with app[HTTP_KEY].post(
                job.webhook_url,
                data=raw,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=15),
            ) as response:
                record["status"] = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            record["status"] = None
            record["error"] = repr(exc)
        emu.webhooks.append(record)
        if record["status"] is not None and 200 <= record["status"] < 300:
            return
    log.warning("fal emulator: webhook of %s given up", job.request_id)


# --- HTTP -------------------------------------------------------------------------------


def _size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return SIZES["landscape_4_3"]
    if isinstance(value, str):
        return SIZES.get(value)
    if isinstance(value, dict):
        w, h = value.get("width"), value.get("height")
        if isinstance(w, int) and isinstance(h, int) and 64 <= w <= 2048 and 64 <= h <= 2048:
            return w, h
    return None


def _validation_error(field_name: str, message: str) -> web.Response:
    return json_response(_error(field_name, message), status=422)


async def _apply_fault(request: web.Request, endpoint: str) -> web.StreamResponse | None:
    emu = request.app[EMU_KEY]
    emu.calls.append({"endpoint": endpoint, "method": request.method, "path": request.path})
    fault = emu.take_fault(endpoint)
    if fault is None:
        return None
    if fault.kind == "delay":
        await emu.sleep(fault.delay)
        return None
    if fault.kind == "disconnect":
        transport = request.transport
        if transport is not None:
            transport.close()
        raise asyncio.CancelledError
    status = int(fault.kind)
    return json_response({"detail": f"injected {status}"}, status=status)


def _authorized(request: web.Request) -> bool:
    return request.headers.get("Authorization", "") == f"Key {request.app[EMU_KEY].key}"


def _unauthorized() -> web.Response:
    return json_response({"detail": "Unauthorized"}, status=401)


def _job(request: web.Request) -> QueuedJob | None:
    emu = request.app[EMU_KEY]
    job = emu.jobs.get(request.match_info["rid"])
    app_path = f"{request.match_info['owner']}/{request.match_info['app']}"
    if job is None or job.app_path != app_path:
        return None
    return job


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _done(emu: FalEmulator, job: QueuedJob) -> bool:
    """COMPLETED for a client: finished (a request without a webhook: also polled enough)."""
    if job.cancelled:
        return True
    return job.finished and (job.webhook_url is not None or job.polls >= emu.polls_until_done)


async def submit(request: web.Request) -> web.StreamResponse:
    faulted = await _apply_fault(request, "submit")
    if faulted is not None:
        return faulted
    if not _authorized(request):
        return _unauthorized()
    model = request.match_info["model"].strip("/")
    parts = model.split("/")
    if len(parts) < 2 or not all(parts):
        return json_response({"detail": f"unknown app {model!r}"}, status=404)
    try:
        body = await request.json()
    except ValueError:
        return json_response({"detail": "body is not JSON"}, status=400)
    if not isinstance(body, dict):
        return _validation_error("__root__", "input must be an object")
    kind = kind_of(model, body)
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    size: tuple[int, int] | None = (0, 0)
    if kind == "text-to-image":
        if not prompt.strip():
            return _validation_error("prompt", "field required")
        size = _size(body.get("image_size"))
        if size is None:
            return _validation_error("image_size", "unknown image size")
    webhook = request.query.get("fal_webhook") or None
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        return _validation_error("fal_webhook", "not an http(s) URL")
    emu = request.app[EMU_KEY]
    rid = str(uuid.uuid4())
    app_path = "/".join(parts[:2])
    outcome, seconds = emu.take_script()
    job = QueuedJob(rid, app_path, model, prompt, *size, kind=kind, body=body)
    job.webhook_url, job.outcome, job.seconds = webhook, outcome, seconds
    if webhook is not None and emu.drop_webhooks > 0:
        emu.drop_webhooks -= 1
        job.drop_webhook = True
    emu.jobs[rid] = job
    base_url = _base(request)
    task = asyncio.create_task(_process(request.app, job, base_url), name=f"fal-{rid}")
    job.task = task
    emu.tasks.add(task)
    task.add_done_callback(emu.tasks.discard)
    base = f"{base_url}/{app_path}/requests/{rid}"
    return json_response(
        {
            "request_id": rid,
            "gateway_request_id": rid,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
            "queue_position": 0,
        }
    )


async def status(request: web.Request) -> web.StreamResponse:
    faulted = await _apply_fault(request, "status")
    if faulted is not None:
        return faulted
    if not _authorized(request):
        return _unauthorized()
    job = _job(request)
    if job is None:
        return json_response({"detail": "Request not found"}, status=404)
    emu = request.app[EMU_KEY]
    job.polls += 1
    base = f"{_base(request)}/{job.app_path}/requests/{job.request_id}"
    instant = job.seconds == 0 and job.outcome != "hang"
    if instant and job.polls >= emu.polls_until_done and job.task is not None:
        # A model of no time is done once polled enough (the picture is still drawing).
        await asyncio.shield(job.task)
    if _done(emu, job):
        return json_response(
            {"status": "COMPLETED", "response_url": base, "logs": None, "metrics": {}}
        )
    if job.polls == 1:
        return json_response(
            {"status": "IN_QUEUE", "queue_position": 0, "response_url": base}, status=202
        )
    return json_response({"status": "IN_PROGRESS", "response_url": base, "logs": []}, status=202)


async def result(request: web.Request) -> web.StreamResponse:
    faulted = await _apply_fault(request, "result")
    if faulted is not None:
        return faulted
    if not _authorized(request):
        return _unauthorized()
    job = _job(request)
    if job is None:
        return json_response({"detail": "Request not found"}, status=404)
    if job.cancelled:
        return json_response({"detail": "Request was cancelled"}, status=400)
    if not _done(request.app[EMU_KEY], job):
        return json_response({"detail": "Request is still in progress"}, status=400)
    if job.status_code != 200:
        return json_response(job.output, status=job.status_code)
    return json_response(model_output(job, _base(request)))


async def cancel(request: web.Request) -> web.StreamResponse:
    faulted = await _apply_fault(request, "cancel")
    if faulted is not None:
        return faulted
    if not _authorized(request):
        return _unauthorized()
    job = _job(request)
    if job is None:
        return json_response({"detail": "Request not found"}, status=404)
    if _done(request.app[EMU_KEY], job):
        return json_response({"status": "ALREADY_COMPLETED"}, status=400)
    job.cancelled = True
    job.drop_webhook = True
    job.release.set()
    return json_response({"status": "CANCELLATION_REQUESTED"}, status=202)


async def file(request: web.Request) -> web.StreamResponse:
    faulted = await _apply_fault(request, "file")
    if faulted is not None:
        return faulted
    job = request.app[EMU_KEY].jobs.get(request.match_info["rid"])
    if job is None or not job.finished or job.png is None:
        return json_response({"detail": "Not found"}, status=404)
    if job.webhook_url is None and job.polls < request.app[EMU_KEY].polls_until_done:
        return json_response({"detail": "Not found"}, status=404)
    return web.Response(body=job.png, content_type="image/png")


async def jwks(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[EMU_KEY].jwks())


async def ctl_faults(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    if request.method == "DELETE":
        emu.faults.clear()
    elif request.method == "POST":
        values = await request.json() if request.can_read_body else {}
        try:
            emu.inject(
                str(values.get("kind") or "500"),
                int(values.get("count") or 1),
                endpoints=values.get("endpoints"),
                delay=float(values.get("delay") or 0.0),
            )
        except (TypeError, ValueError) as exc:
            return json_response({"detail": str(exc)}, status=400)
    return json_response(
        {
            "faults": [
                {
                    "kind": f.kind,
                    "remaining": f.remaining,
                    "endpoints": sorted(f.endpoints or []),
                    "delay": f.delay,
                }
                for f in emu.faults
            ]
        }
    )


async def ctl_outcomes(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    values = await request.json() if request.can_read_body else {}
    try:
        seconds = values.get("seconds")
        emu.script(
            str(values.get("outcome") or "ok"),
            int(values.get("count") or 1),
            seconds=None if seconds is None else float(seconds),
        )
    except (TypeError, ValueError) as exc:
        return json_response({"detail": str(exc)}, status=400)
    return json_response({"scripted": [vars(s) for s in emu.scripted]})


async def ctl_drop_webhooks(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    values = await request.json() if request.can_read_body else {}
    emu.drop_webhooks += int(values.get("count") or 1)
    return json_response({"drop_webhooks": emu.drop_webhooks})


async def ctl_config(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    values = await request.json() if request.can_read_body else {}
    try:
        if "model_seconds" in values:
            emu.model_seconds = max(0.0, float(values["model_seconds"]))
        if "retry_delays" in values:
            emu.retry_delays = tuple(max(0.0, float(d)) for d in values["retry_delays"])
    except (TypeError, ValueError) as exc:
        return json_response({"detail": str(exc)}, status=400)
    return json_response({"model_seconds": emu.model_seconds, "retry_delays": emu.retry_delays})


async def ctl_complete(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    values = await request.json() if request.can_read_body else {}
    try:
        emu.complete(request.match_info["rid"], str(values.get("outcome") or "ok"))
    except KeyError:
        return json_response({"detail": "Request not found"}, status=404)
    return json_response({"ok": True})


async def ctl_webhooks(request: web.Request) -> web.StreamResponse:
    return json_response({"webhooks": request.app[EMU_KEY].webhooks})


async def ctl_calls(request: web.Request) -> web.StreamResponse:
    return json_response({"calls": request.app[EMU_KEY].calls})


async def ctl_reset(request: web.Request) -> web.StreamResponse:
    request.app[EMU_KEY].reset()
    return json_response({"ok": True})


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    app[HTTP_KEY] = aiohttp.ClientSession()
    yield
    emu = app[EMU_KEY]
    for task in list(emu.tasks):
        task.cancel()
    await asyncio.gather(*emu.tasks, return_exceptions=True)
    await app[HTTP_KEY].close()


async def _closing(app: web.Application) -> None:
    app[EMU_KEY].closed.set()


def create_app(
    *,
    key: str = "test-key",
    polls_until_done: int = 2,
    model_seconds: float = 0.0,
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
    signing_key: Ed25519PrivateKey | None = None,
) -> web.Application:
    """The emulator as an aiohttp app; ``app[EMU_KEY]`` is its state (for in-process
    tests: ``app[EMU_KEY].inject("500", 2)``, ``.script("refuse")``)."""
    app = web.Application()
    emu = FalEmulator(
        key=key,
        polls_until_done=max(1, polls_until_done),
        model_seconds=model_seconds,
        retry_delays=retry_delays,
    )
    if signing_key is not None:
        emu.signing_key = signing_key
    app[EMU_KEY] = emu
    app.cleanup_ctx.append(_http_client)
    app.on_shutdown.append(_closing)
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_route("*", "/_emu/faults", ctl_faults)
    app.router.add_post("/_emu/outcomes", ctl_outcomes)
    app.router.add_post("/_emu/webhooks/drop", ctl_drop_webhooks)
    app.router.add_get("/_emu/webhooks", ctl_webhooks)
    app.router.add_post("/_emu/config", ctl_config)
    app.router.add_post("/_emu/requests/{rid}/complete", ctl_complete)
    app.router.add_get("/_emu/calls", ctl_calls)
    app.router.add_post("/_emu/reset", ctl_reset)
    app.router.add_get("/files/{rid}.png", file)
    app.router.add_get("/{owner}/{app}/requests/{rid}/status", status)
    app.router.add_put("/{owner}/{app}/requests/{rid}/cancel", cancel)
    app.router.add_get("/{owner}/{app}/requests/{rid}", result)
    app.router.add_post("/{model:.+}", submit)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="fal.ai queue API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--key", default="test-key", help="the FAL_KEY it accepts")
    parser.add_argument("--polls", type=int, default=2, help="status polls until COMPLETED")
    parser.add_argument("--model-seconds", type=float, default=0.0, help="model time per call")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    web.run_app(
        create_app(key=args.key, polls_until_done=args.polls, model_seconds=args.model_seconds),
        host=args.host,
        port=args.port,
    )


if __name__ == "__main__":
    main()
