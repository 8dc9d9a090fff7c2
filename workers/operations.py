"""Which media function an operation type runs, with what inputs: the runner table.

One runner per entry of the catalogue (:mod:`jobqueue.catalogue`; a test walks it). A local
runner is synchronous and CPU-bound: the job runs it in a thread of its own so the event
loop keeps the chat action going. A remote runner (``generate``: the fal.ai backend) is
async and network-bound: it runs in the loop, within a time budget.

Test hooks (``WORKER_TEST_HOOKS=1`` only; the bot never writes them): ``input_ref["test_hook"]``
replaces the operation by ``noop`` (the input photo comes back unchanged), ``sleep:<s>``
(sleeps in the operation thread), ``hang:<s>`` (blocks the event loop thread itself, so only
RQ's SIGALRM can stop it) or ``crash`` (the work-horse SIGKILLs itself). ``sleep``/``hang``
publish the work-horse's pid in Redis (:func:`hook_pid_key`) so a test can kill it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from billing.ai_models import DEFAULTS
from billing.prices import OperationType
from billing.settings import Settings
from imaging._image import MediaResult
from imaging.edit import edit
from imaging.errors import ImageTooSmall
from imaging.faceswap import face_swap
from imaging.header import probe_image
from imaging.merge import merge
from imaging.retouch import retouch
from imaging.text import add_text
from imaging.upscale import upscale
from jobqueue import catalogue
from jobqueue.queue import key_name
from workers.failures import JobFailure

# (inputs, text, settings): the inputs are the downloaded photos, as many as the entry takes.
LocalRunner = Callable[[Sequence[bytes], str | None, Settings], MediaResult]
# (inputs, text, settings, budget in seconds)
RemoteRunner = Callable[[Sequence[bytes], str | None, Settings, float], Awaitable[MediaResult]]


async def generate(text: str | None, settings: Settings, *, budget: float) -> MediaResult:
    """Text to image through fal.ai's queue API (only offered when FAL_KEY is set)."""
    if not settings.fal_configured or settings.FAL_KEY is None:
        raise JobFailure("backend", "generate needs FAL_KEY")
    from imaging import fal

    fal_settings = fal.FalSettings(
        key=settings.FAL_KEY.get_secret_value(),
        api_url=settings.FAL_API_URL,
        timeout=budget,
    )
    # The catalogue's default model (an operation queued before the catalogue names none).
    model = DEFAULTS[OperationType.GENERATE].model_id
    return await fal.generate(text or "", fal_settings, model=model)


LOCAL: dict[str, LocalRunner] = {
    OperationType.EDIT: lambda inputs, text, settings: edit(inputs[0], text or ""),
    OperationType.MERGE: lambda inputs, text, settings: merge(*inputs),
    OperationType.FACE_SWAP: lambda inputs, text, settings: face_swap(inputs[0], inputs[1]),
    OperationType.RETOUCH: lambda inputs, text, settings: retouch(inputs[0]),
    OperationType.UPSCALE: lambda inputs, text, settings: upscale(
        inputs[0], factor=2, max_output_pixels=settings.MAX_OUTPUT_PIXELS
    ),
    OperationType.ADD_TEXT: lambda inputs, text, settings: add_text(inputs[0], text or ""),
}

REMOTE: dict[str, RemoteRunner] = {
    OperationType.GENERATE: lambda inputs, text, settings, budget: generate(
        text, settings, budget=budget
    ),
}


def is_remote(op_type: OperationType) -> bool:
    return op_type in REMOTE


def lossless(op_type: OperationType) -> bool:
    """Whether the result is worth a lossless copy as a document."""
    return catalogue.entry(op_type).lossless


def inputs_needed(op_type: OperationType) -> int:
    return catalogue.entry(op_type).photos


def inputs_taken(op_type: OperationType) -> int:
    """The most photos the operation uses (merge: up to 4; the rest: as many as it needs)."""
    return catalogue.entry(op_type).most_photos


def run_local(
    op_type: OperationType, inputs: Sequence[bytes], text: str | None, settings: Settings
) -> MediaResult:
    """Run one local operation on downloaded inputs (in the calling thread)."""
    needed = inputs_needed(op_type)
    if len(inputs) < needed:
        raise JobFailure("input-missing", f"{op_type} needs {needed} photos, got {len(inputs)}")
    check_sizes(op_type, inputs)
    runner = LOCAL.get(op_type)
    if runner is None:
        raise JobFailure("internal", f"{op_type} has no local implementation")
    return runner(inputs[: inputs_taken(op_type)], text, settings)


async def run_remote(
    op_type: OperationType,
    inputs: Sequence[bytes],
    text: str | None,
    settings: Settings,
    *,
    budget: float,
) -> MediaResult:
    """Run one remote operation (in the event loop), within ``budget`` seconds."""
    check_sizes(op_type, inputs)
    return await REMOTE[op_type](inputs, text, settings, budget)


def check_sizes(op_type: OperationType, inputs: Sequence[bytes]) -> None:
    """ImageTooSmall for an input under the operation's minimum (the bot refuses those
    before the charge; this holds for whatever the job downloaded). Headers only."""
    minimum = catalogue.min_side(op_type)
    taken = inputs_taken(op_type)
    for index, data in enumerate(inputs[:taken]):
        info = probe_image(data, which=_which(index, taken))
        if min(info.width, info.height) < minimum:
            raise ImageTooSmall(
                width=info.width,
                height=info.height,
                min_side=minimum,
                which=_which(index, taken),
            )


def _which(index: int, count: int) -> Literal["a", "b"] | None:
    """The first or the second photo (the texts say which); a third or fourth: "the photo"."""
    if count < 2 or index > 1:
        return None
    return "a" if index == 0 else "b"


# --- test hooks ----------------------------------------------------------------------


def hook_pid_key(operation_id: int, key_token: str) -> str:
    return f"medialab:test-hook:{key_name(operation_id, key_token)}:pid"


def noop(inputs: Sequence[bytes]) -> MediaResult:
    data = inputs[0]
    info = probe_image(data)
    fmt = "png" if info.format == "png" else "jpeg"
    return MediaResult(
        data=data, format=fmt, width=info.width, height=info.height, op="noop", params={}
    )


def parse_hook(value: Any) -> tuple[str, float]:
    name, _, arg = str(value).partition(":")
    return name, float(arg or 0)


def hook_operation(
    hook: str, *, publish_pid: Callable[[int], None]
) -> Callable[[Sequence[bytes]], MediaResult] | None:
    """The pseudo-operation for a hook that runs in the operation thread, or None."""
    name, seconds = parse_hook(hook)
    if name == "noop":
        return noop
    if name == "sleep":

        def sleep(inputs: Sequence[bytes]) -> MediaResult:
            publish_pid(os.getpid())
            time.sleep(seconds)
            return noop(inputs)

        return sleep
    if name == "crash":

        def crash(inputs: Sequence[bytes]) -> MediaResult:
            os.kill(os.getpid(), signal.SIGKILL)
            raise AssertionError("unreachable")

        return crash
    return None


def hang_in_loop_thread(hook: str, *, publish_pid: Callable[[int], None]) -> bool:
    """``hang:<s>``: block the event loop thread, where only SIGALRM reaches the job."""
    name, seconds = parse_hook(hook)
    if name != "hang":
        return False
    publish_pid(os.getpid())
    time.sleep(seconds)  # noqa: ASYNC251 - on purpose: a job stuck outside the event loop
    return True
