"""A local fake of fal.ai's queue API, for tests and local runs.

    python -m sandbox.fal --port 8090 --key test-key

Speaks the queue shapes ``imaging.fal.FalClient`` uses:

- ``POST /{model_id}`` (``Authorization: Key <key>``; JSON with a ``prompt``) ->
  ``{"request_id", "status_url", "response_url", "cancel_url", "queue_position"}``;
- ``GET /{owner}/{app}/requests/{id}/status`` -> ``IN_QUEUE``, then ``IN_PROGRESS``,
  then ``COMPLETED`` over successive polls (202 until completed, then 200);
- ``GET /{owner}/{app}/requests/{id}`` -> ``{"images": [{"url", "width", "height",
  "content_type"}], "seed", "prompt", "has_nsfw_concepts", "timings"}``
  (400 while still in progress);
- ``PUT /{owner}/{app}/requests/{id}/cancel``;
- ``GET /files/{id}.png`` -> a deterministic PNG made from the prompt (a gradient
  whose colours come from the prompt's hash, with the prompt written on it).

Control API (no key): ``POST /_emu/faults`` with ``{"kind": "500" | "502" | "429" |
"delay" | "disconnect", "count": N, "delay": seconds, "endpoints": ["submit",
"status", "result", "file", "cancel"]}`` fails the next N matching calls;
``DELETE /_emu/faults`` clears them; ``GET /_emu/calls`` lists the calls seen;
``POST /_emu/reset`` forgets everything.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web
from PIL import Image

from sandbox._common import json_response

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


@dataclass
class Fault:
    kind: str
    remaining: int
    endpoints: frozenset[str] | None = None
    delay: float = 0.0


@dataclass
class QueuedJob:
    request_id: str
    app_path: str
    model: str
    prompt: str
    width: int
    height: int
    polls: int = 0
    cancelled: bool = False
    png: bytes | None = None


@dataclass
class FalEmulator:
    key: str
    polls_until_done: int = 2
    jobs: dict[str, QueuedJob] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.jobs.clear()
        self.faults.clear()
        self.calls.clear()

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


EMU_KEY = web.AppKey("fal_emulator", FalEmulator)


def render_png(prompt: str, width: int, height: int) -> bytes:
    """A deterministic picture for ``prompt``: a diagonal gradient + the prompt text."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    c0 = np.array(list(digest[0:3]), dtype=np.float32)
    c1 = np.array(list(digest[3:6]), dtype=np.float32)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    t = ((xs + ys) / 2.0)[..., None]
    arr = (c0 * (1 - t) + c1 * t).astype(np.uint8)
    img = Image.fromarray(arr)
    try:
        from imaging.text import check_text, draw_text

        img = draw_text(img, check_text(prompt[:200]), "center")
    except Exception:  # noqa: BLE001 - the picture is still deterministic without text
        pass
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


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
    return json_response(
        {"detail": [{"loc": ["body", field_name], "msg": message, "type": "value_error"}]},
        status=422,
    )


async def _apply_fault(request: web.Request, endpoint: str) -> web.StreamResponse | None:
    emu = request.app[EMU_KEY]
    emu.calls.append({"endpoint": endpoint, "method": request.method, "path": request.path})
    fault = emu.take_fault(endpoint)
    if fault is None:
        return None
    if fault.kind == "delay":
        await asyncio.sleep(fault.delay)
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
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return _validation_error("prompt", "field required")
    size = _size(body.get("image_size"))
    if size is None:
        return _validation_error("image_size", "unknown image size")
    emu = request.app[EMU_KEY]
    rid = str(uuid.uuid4())
    app_path = "/".join(parts[:2])
    emu.jobs[rid] = QueuedJob(rid, app_path, model, prompt, *size)
    base = f"{_base(request)}/{app_path}/requests/{rid}"
    return json_response(
        {
            "request_id": rid,
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
    if job.polls >= emu.polls_until_done or job.cancelled:
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
    if job.polls < request.app[EMU_KEY].polls_until_done:
        return json_response({"detail": "Request is still in progress"}, status=400)
    seed = int.from_bytes(hashlib.sha256(job.prompt.encode()).digest()[:4], "big")
    return json_response(
        {
            "images": [
                {
                    "url": f"{_base(request)}/files/{job.request_id}.png",
                    "width": job.width,
                    "height": job.height,
                    "content_type": "image/png",
                }
            ],
            "timings": {"inference": 0.01},
            "seed": seed,
            "has_nsfw_concepts": [False],
            "prompt": job.prompt,
        }
    )


async def cancel(request: web.Request) -> web.StreamResponse:
    faulted = await _apply_fault(request, "cancel")
    if faulted is not None:
        return faulted
    if not _authorized(request):
        return _unauthorized()
    job = _job(request)
    if job is None:
        return json_response({"detail": "Request not found"}, status=404)
    if job.polls >= request.app[EMU_KEY].polls_until_done:
        return json_response({"status": "ALREADY_COMPLETED"}, status=400)
    job.cancelled = True
    return json_response({"status": "CANCELLATION_REQUESTED"}, status=202)


async def file(request: web.Request) -> web.StreamResponse:
    faulted = await _apply_fault(request, "file")
    if faulted is not None:
        return faulted
    rid = request.match_info["rid"]
    job = request.app[EMU_KEY].jobs.get(rid)
    if job is None or job.polls < request.app[EMU_KEY].polls_until_done:
        return json_response({"detail": "Not found"}, status=404)
    if job.png is None:
        job.png = await asyncio.to_thread(render_png, job.prompt, job.width, job.height)
    return web.Response(body=job.png, content_type="image/png")


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


async def ctl_calls(request: web.Request) -> web.StreamResponse:
    return json_response({"calls": request.app[EMU_KEY].calls})


async def ctl_reset(request: web.Request) -> web.StreamResponse:
    request.app[EMU_KEY].reset()
    return json_response({"ok": True})


def create_app(*, key: str = "test-key", polls_until_done: int = 2) -> web.Application:
    """The emulator as an aiohttp app; ``app[EMU_KEY]`` is its state (for in-process
    tests: ``app[EMU_KEY].inject("500", 2)``)."""
    app = web.Application()
    app[EMU_KEY] = FalEmulator(key=key, polls_until_done=max(1, polls_until_done))
    app.router.add_route("*", "/_emu/faults", ctl_faults)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    web.run_app(
        create_app(key=args.key, polls_until_done=args.polls), host=args.host, port=args.port
    )


if __name__ == "__main__":
    main()
