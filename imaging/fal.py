"""🎨 Generate: an async client for fal.ai's queue HTTP API.

The flow (https://docs.fal.ai/model-endpoints/queue):

1. ``POST {api_url}/{model}`` with ``Authorization: Key <FAL_KEY>`` and the JSON
   input (``{"prompt": ..., "image_size": ...}``) answers
   ``{"request_id", "status_url", "response_url", "cancel_url"}``;
2. ``GET status_url`` answers ``{"status": "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED"}``
   (poll until COMPLETED);
3. ``GET response_url`` answers the model output,
   ``{"images": [{"url", "width", "height", "content_type"}], ...}``;
4. the image is downloaded from its URL (a public CDN URL: the key is not sent).

Failures become :class:`BackendError`: ``transient=True`` for network errors,
timeouts, 5xx, 429 and 408 (a retry may succeed), ``transient=False`` for other
4xx (a wrong key, rejected input) and answers that break the contract.
``FalSettings`` is plain data; the composition root builds it (``from_env``
takes the mapping explicitly, so no module reads the environment by itself).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from ._image import MediaResult, encode, load_image, probe_image
from .errors import BackendError, ImageTooLarge, InvalidImage, InvalidText

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://queue.fal.run"
DEFAULT_MODEL = "fal-ai/flux/schnell"
MAX_PROMPT_LENGTH = 1000
IMAGE_SIZES = (
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
)
_PENDING = frozenset({"IN_QUEUE", "IN_PROGRESS"})


@dataclass(frozen=True, slots=True)
class FalSettings:
    """How to reach fal.ai. ``timeout`` bounds a whole ``generate`` call (submit,
    polling, result, download); ``request_timeout`` each HTTP request in it."""

    key: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    model: str = DEFAULT_MODEL
    timeout: float = 120.0
    poll_interval: float = 1.0
    request_timeout: float = 30.0
    image_size: str = "square_hd"
    max_image_bytes: int = 20 * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FalSettings:
        """From ``FAL_KEY``, ``FAL_API_URL``, ``FAL_TIMEOUT``, ``FAL_POLL_INTERVAL``,
        ``FAL_IMAGE_SIZE`` in ``env`` (e.g. ``os.environ``). The model is the caller's: the
        model catalogue's (``billing.ai_models``), passed to each call."""
        return cls(
            key=env.get("FAL_KEY", ""),
            api_url=env.get("FAL_API_URL") or DEFAULT_API_URL,
            timeout=float(env.get("FAL_TIMEOUT") or 120.0),
            poll_interval=float(env.get("FAL_POLL_INTERVAL") or 1.0),
            image_size=env.get("FAL_IMAGE_SIZE") or "square_hd",
        )


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


def check_prompt(prompt: str) -> str:
    """The stripped prompt, or InvalidText (``"empty"`` / ``"too-long"``): call before charging."""
    if not isinstance(prompt, str):
        raise TypeError("prompt must be a string")
    cleaned = " ".join(prompt.split())
    if not cleaned:
        raise InvalidText("prompt is empty", reason="empty", max_length=MAX_PROMPT_LENGTH)
    if len(cleaned) > MAX_PROMPT_LENGTH:
        raise InvalidText(
            f"prompt is longer than {MAX_PROMPT_LENGTH} characters",
            reason="too-long",
            max_length=MAX_PROMPT_LENGTH,
        )
    return cleaned


def _is_transient_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _detail(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200]
    if isinstance(data, dict) and "detail" in data:
        return json.dumps(data["detail"], ensure_ascii=False)[:300]
    return body[:200]


def _parsed(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body[:500]


def data_uri(image: bytes, *, max_side: int = 2048, max_bytes: int = 4 * 1024 * 1024) -> str:
    """An image as a ``data:`` URI (fal accepts these wherever it takes an image URL).

    JPEG/PNG/WebP within ``max_side`` and ``max_bytes`` go as they are; anything else
    is re-encoded (reduced to ``max_side``) as JPEG, which keeps the request small.
    """
    info = probe_image(image)
    mime = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}.get(info.format)
    if mime is None or max(info.width, info.height) > max_side or len(image) > max_bytes:
        image, mime = encode(load_image(image, max_side=max_side), "jpeg"), "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


class FalClient:
    """Async client of the fal.ai queue API. Use as ``async with FalClient(settings)``,
    or pass a shared ``aiohttp.ClientSession`` (then the client does not close it)."""

    def __init__(
        self, settings: FalSettings, *, session: aiohttp.ClientSession | None = None
    ) -> None:
        if not settings.key:
            raise ValueError("FAL_KEY is not set")
        self.settings = settings
        self._session = session
        self._own_session = session is None
        self._base = settings.api_url.rstrip("/")

    async def __aenter__(self) -> FalClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    # ------------------------------------------------------------ HTTP plumbing

    def _auth_headers(self, url: str) -> dict[str, str]:
        # The key goes only to the queue's own origin, never to an image CDN.
        if _origin(url) == _origin(self._base):
            return {"Authorization": f"Key {self.settings.key}"}
        return {}

    async def _request_json(self, method: str, url: str, payload: Any = None) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout)
        try:
            async with self.session.request(
                method,
                url,
                json=payload,
                headers={"Accept": "application/json", **self._auth_headers(url)},
                timeout=timeout,
            ) as response:
                body = await response.text()
                if response.status >= 400:
                    raise BackendError(
                        f"fal {method} {urlsplit(url).path} answered {response.status}: "
                        f"{_detail(body)}",
                        transient=_is_transient_status(response.status),
                        status=response.status,
                        detail=_parsed(body),
                    )
        except BackendError:
            raise
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise BackendError(
                f"fal {method} {urlsplit(url).path} timed out", transient=True
            ) from exc
        except aiohttp.ClientError as exc:
            raise BackendError(f"fal unreachable: {exc!r}", transient=True) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise BackendError(
                f"fal {method} {urlsplit(url).path} answered non-JSON",
                transient=response.status >= 500,
                status=response.status,
            ) from exc

    def _own_url(self, url: object, fallback: str) -> str:
        """Use a URL from an answer only if it points at the queue's own origin."""
        if isinstance(url, str) and url and _origin(url) == _origin(self._base):
            return url
        return fallback

    # ------------------------------------------------------------ the queue API

    async def submit(
        self,
        payload: Mapping[str, Any],
        *,
        model: str | None = None,
        webhook_url: str | None = None,
    ) -> QueuedRequest:
        """Queue a request; with ``webhook_url`` fal posts the result there when done
        (the ``fal_webhook`` query parameter of the queue API)."""
        model_id = (model or self.settings.model).strip("/")
        url = f"{self._base}/{model_id}"
        if webhook_url:
            url += "?" + urlencode({"fal_webhook": webhook_url})
        data = await self._request_json("POST", url, dict(payload))
        if not isinstance(data, dict) or not isinstance(data.get("request_id"), str):
            raise BackendError("fal submit answer has no request_id", transient=False)
        request_id = data["request_id"]
        known = self.request(model_id, request_id)
        return QueuedRequest(
            request_id=request_id,
            status_url=self._own_url(data.get("status_url"), known.status_url),
            response_url=self._own_url(data.get("response_url"), known.response_url),
            cancel_url=self._own_url(data.get("cancel_url"), known.cancel_url),
        )

    def request(self, model: str, request_id: str) -> QueuedRequest:
        """The queue's URLs of a request known by its model and id (the poll of a request
        whose webhook did not come)."""
        # Status/result paths drop a model's sub-path ("fal-ai/flux/schnell" -> "fal-ai/flux").
        app_path = "/".join(model.strip("/").split("/")[:2])
        base = f"{self._base}/{app_path}/requests/{request_id}"
        return QueuedRequest(request_id, f"{base}/status", base, f"{base}/cancel")

    async def poll(self, request: QueuedRequest) -> tuple[str, Any] | None:
        """One look at a request: None while it is queued or running, else ("OK", output)
        or ("ERROR", the error body the result endpoint answered: a refusal, a rejected
        input). A 5xx or an unreachable queue is a transient BackendError."""
        status = await self._request_json("GET", request.status_url)
        state = status.get("status") if isinstance(status, dict) else None
        if state in _PENDING:
            return None
        if state != "COMPLETED":
            raise BackendError(f"fal request in unexpected state {state!r}", transient=False)
        try:
            result = await self._request_json("GET", request.response_url)
        except BackendError as exc:
            if exc.transient or exc.status is None:
                raise
            return "ERROR", {"status": exc.status, "detail": exc.detail}
        if not isinstance(result, dict):
            raise BackendError("fal result is not an object", transient=False)
        return "OK", result

    async def wait(self, request: QueuedRequest) -> dict[str, Any]:
        """Poll until COMPLETED, then return the result JSON."""
        while True:
            status = await self._request_json("GET", request.status_url)
            state = status.get("status") if isinstance(status, dict) else None
            if state == "COMPLETED":
                break
            if state not in _PENDING:
                raise BackendError(f"fal request in unexpected state {state!r}", transient=False)
            await asyncio.sleep(self.settings.poll_interval)
        result = await self._request_json("GET", request.response_url)
        if not isinstance(result, dict):
            raise BackendError("fal result is not an object", transient=False)
        return result

    async def cancel(self, request: QueuedRequest) -> None:
        """Best effort: ask the queue to drop a request we no longer wait for."""
        try:
            await asyncio.wait_for(self._request_json("PUT", request.cancel_url), timeout=5)
        except (BackendError, TimeoutError) as exc:
            log.info("fal cancel of %s failed: %s", request.request_id, exc)

    async def download(self, url: str) -> bytes:
        if urlsplit(url).scheme not in ("http", "https"):
            raise BackendError(f"fal image URL is not http(s): {url[:60]!r}", transient=False)
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout)
        limit = self.settings.max_image_bytes
        try:
            async with self.session.get(
                url, headers=self._auth_headers(url), timeout=timeout
            ) as response:
                if response.status >= 400:
                    raise BackendError(
                        f"fal image download answered {response.status}",
                        transient=_is_transient_status(response.status),
                        status=response.status,
                    )
                chunks, size = [], 0
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise BackendError(f"fal image is over {limit} bytes", transient=False)
                    chunks.append(chunk)
        except BackendError:
            raise
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise BackendError("fal image download timed out", transient=True) from exc
        except aiohttp.ClientError as exc:
            raise BackendError(f"fal image download failed: {exc!r}", transient=True) from exc
        return b"".join(chunks)

    # ------------------------------------------------------------ the operation

    async def generate(
        self,
        prompt: str,
        *,
        image_size: str | Mapping[str, int] | None = None,
        image: bytes | None = None,
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> MediaResult:
        """Make an image from ``prompt`` (or, with ``image`` and an image-to-image
        ``model``, from that photo: it is sent as a data URI in ``image_url``).

        The whole call is bounded by ``settings.timeout``; on timeout the queued
        request is cancelled and a transient BackendError raised.
        """
        prompt = check_prompt(prompt)
        payload: dict[str, Any] = {"prompt": prompt, **(extra or {})}
        if image is None:
            size = image_size or self.settings.image_size
            if isinstance(size, str) and size not in IMAGE_SIZES:
                raise ValueError(f"image_size must be one of {IMAGE_SIZES} or a dict")
            payload["image_size"] = dict(size) if isinstance(size, Mapping) else size
        else:
            payload["image_url"] = data_uri(image)
        queued: QueuedRequest | None = None
        try:
            async with asyncio.timeout(self.settings.timeout):
                queued = await self.submit(payload, model=model)
                result = await self.wait(queued)
                url, meta = _first_image(result)
                data = await self.download(url)
        except TimeoutError as exc:
            if queued is not None:
                await self.cancel(queued)
            raise BackendError(
                f"fal generation did not finish within {self.settings.timeout:g} s",
                transient=True,
            ) from exc
        return _to_result(data, prompt, model or self.settings.model, queued, result)


def _first_image(result: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    images = result.get("images")
    if not isinstance(images, list) or not images or not isinstance(images[0], dict):
        raise BackendError("fal result has no images", transient=False)
    if any(result.get("has_nsfw_concepts") or []):
        raise BackendError("fal refused the image (NSFW filter)", transient=False)
    url = images[0].get("url")
    if not isinstance(url, str) or not url:
        raise BackendError("fal image has no url", transient=False)
    return url, images[0]


def _to_result(
    data: bytes,
    prompt: str,
    model: str,
    queued: QueuedRequest | None,
    result: Mapping[str, Any],
) -> MediaResult:
    params: dict[str, str | int | float] = {
        "model": model,
        "prompt": prompt[:200],
        "request_id": queued.request_id if queued else "",
    }
    seed = result.get("seed")
    if isinstance(seed, int):
        params["seed"] = seed
    return model_result(data, op="generate", params=params)


async def generate(prompt: str, settings: FalSettings, **kwargs: Any) -> MediaResult:
    """One-shot ``FalClient(settings).generate(prompt, ...)`` with its own session."""
    async with FalClient(settings) as client:
        return await client.generate(prompt, **kwargs)


def model_result(data: bytes, *, op: str, params: Mapping[str, str | int | float]) -> MediaResult:
    """The image a model made (downloaded from its result URL) as the ``op``'s result:
    JPEG/PNG as they came (decoded once, to be sure they are whole), anything else as PNG.
    An unusable file is a permanent BackendError."""
    try:
        info = probe_image(data)
        if info.format in ("jpeg", "png"):
            fmt, width, height = info.format, info.width, info.height
            # Decode once to be sure the file is whole (not just a header).
            load_image(data, max_side=None)
        else:
            img = load_image(data, max_side=None)
            data, fmt, (width, height) = encode(img, "png"), "png", img.size
    except (InvalidImage, ImageTooLarge) as exc:
        raise BackendError(f"fal returned an unusable image: {exc}", transient=False) from exc
    return MediaResult(
        data=data,
        format="jpeg" if fmt == "jpeg" else "png",
        width=width,
        height=height,
        op=op,
        params={**params, "width": width, "height": height},
    )
