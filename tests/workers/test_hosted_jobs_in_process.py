"""A hosted model's jobs run in the worker's own process, on the event loop it keeps; the
operations that run locally still fork (workers.worker.MediaWorker.execute_job).

The worker here is the forking ``MediaWorker`` itself, in a thread of this process (RQ's
SIGALRM reaches only the main thread: the thread's timer death penalty instead), in burst
mode; a fork would show in ``forked``. One test starts ``python -m workers`` (real_worker):
the submit logs the worker's own pid, the local operation's horse another.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from rq.job import Job
from rq.timeouts import TimerDeathPenalty

from billing.models import LedgerKind
from jobqueue.queue import HOSTED, enqueue_operation, job_id_for, media_queue
from sandbox._common import ServerHandle
from sandbox.fal import create_app as create_fal_app
from tests.workers.conftest import Harness
from workers import runtime
from workers.worker import MediaWorker, in_own_process

KEY = "fal-test-key"


class ThreadMediaWorker(MediaWorker):
    """The forking worker class, run in a thread: it records the forks it would make."""

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.forked: list[str] = []

    def _install_signal_handlers(self) -> None:
        pass  # only the main thread may

    def fork_work_horse(self, job: Job, queue: Any) -> None:
        self.forked.append(job.id)
        super().fork_work_horse(job, queue)


def burst(h: Harness, **kwargs: Any) -> ThreadMediaWorker:
    runtime.configure(h.settings)
    worker = ThreadMediaWorker(
        [media_queue(h.redis, h.settings)], connection=h.redis, settings=h.settings, sweep=False
    )
    worker.work(burst=True, **kwargs)
    return worker


async def queue_hosted(h: Harness, user: Any, op_type: str, text: str) -> int:
    operation_id = await h.new_operation(user, op_type, [], text=text, balance=1000, enqueue=False)
    enqueue_operation(
        media_queue(h.redis, h.settings),
        h.settings,
        operation_id,
        h.tokens[operation_id],
        hosted=True,
    )
    return operation_id


async def test_hosted_submits_run_in_the_worker_process_on_one_kept_loop(
    harness_factory,
) -> None:
    async with ServerHandle(create_fal_app(key=KEY)) as fal:
        h = harness_factory(FAL_KEY=KEY, FAL_API_URL=fal.url, FREE_OPERATIONS_COUNT=0)
        user = h.user()
        await user.send_text("/start")
        ids = [await queue_hosted(h, user, "generate", f"кот {n}") for n in range(3)]

        worker = await asyncio.to_thread(burst, h)

        assert worker.forked == []  # no work-horse for a submit
        for operation_id in ids:
            job = Job.fetch(job_id_for(operation_id, h.tokens[operation_id]), connection=h.redis)
            assert job.get_status() == "finished"
            assert job.return_value()["outcome"] == "submitted"
            op = await h.operation(operation_id)
            assert op.status == "running" and op.model_request_id is not None
            assert await h.entries(operation_id, LedgerKind.REFUND) == 0

        # The three jobs ran on one loop: the kept database pool, Bot and HTTP session.
        async def seen() -> tuple[Any, Any, Any]:
            async with runtime.resources(h.settings) as (sessionmaker, bot):
                return sessionmaker.kw["bind"], bot, runtime.http_session()

        def twice() -> list[tuple[Any, Any, Any]]:
            with runtime.in_process():
                return [runtime.run_job(seen()), runtime.run_job(seen())]

        first, second = await asyncio.to_thread(twice)
        assert first == second and first[2] is not None
        await asyncio.to_thread(runtime.close_kept)


async def test_a_job_that_raises_leaves_nothing_on_the_kept_loop(harness_factory) -> None:
    h = harness_factory()
    runtime.configure(h.settings)

    async def kept_http() -> Any:
        return runtime.http_session()

    left: list[asyncio.Task] = []

    async def fails() -> None:
        left.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))
        raise RuntimeError("the job failed")

    def run() -> tuple[Any, Any, bool]:
        with runtime.in_process():
            before = runtime.run_job(kept_http())
            with pytest.raises(RuntimeError):
                runtime.run_job(fails())
            after = runtime.run_job(kept_http())
            return before, after, runtime.kept()

    before, after, kept_outside = await asyncio.to_thread(run)
    # The loop it ran on was closed (its task cancelled): the next job has new connections.
    assert before is not None and before is not after and before.closed
    assert left[0].cancelled()  # nothing of the failed job goes on
    assert kept_outside is False  # outside a job no loop is running: nothing is "kept here"
    await asyncio.to_thread(runtime.close_kept)


async def test_a_hosted_job_of_a_local_operation_goes_back_for_a_work_horse(
    harness_factory, images
) -> None:
    # No FAL_KEY in the worker: upscale runs locally, whatever the bot thought.
    h = harness_factory(FREE_OPERATIONS_COUNT=0)
    user = h.user()
    file_id = await h.upload(user, images("coffee.jpg"))
    operation_id = await h.new_operation(user, "upscale", [file_id], balance=1000, enqueue=False)
    enqueue_operation(
        media_queue(h.redis, h.settings),
        h.settings,
        operation_id,
        h.tokens[operation_id],
        file_ids=[file_id],
        hosted=True,
    )

    worker = await asyncio.to_thread(burst, h, max_jobs=1)

    assert worker.forked == []
    job = Job.fetch(job_id_for(operation_id, h.tokens[operation_id]), connection=h.redis)
    # Back on the queue, marked to fork: the next worker runs it in a work-horse.
    assert job.get_status() == "queued" and job.meta[HOSTED] is False
    assert not in_own_process(job)
    op = await h.operation(operation_id)
    assert op.status == "running" and op.result_ref is None
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0
    # ...and a worker does: delivered, charged once.
    h.start_worker()
    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0


@pytest.mark.real_worker
async def test_python_m_workers_submits_in_its_own_process_and_forks_local_work(
    harness_factory, images
) -> None:
    async with ServerHandle(create_fal_app(key=KEY)) as fal:
        h = harness_factory(FREE_OPERATIONS_COUNT=0)
        worker = h.start_worker(FAL_KEY=KEY, FAL_API_URL=fal.url)
        user = h.user()
        await user.send_text("/start")
        hosted = await queue_hosted(h, user, "generate", "кот")
        photo = await h.upload(user, images("astronaut.jpg"))
        local = await h.new_operation(user, "upscale", [photo], hook="sleep:0.2", balance=1000)
        horse = await h.wait_hook_pid(local)

        async def submitted() -> bool:
            return (await h.operation(hosted)).model_request_id is not None

        await h.wait_until(submitted, "the submit")
        assert (await h.wait_final(local)).status == "succeeded"
        [line] = [x for x in h.logs().splitlines() if f"operation {hosted}: submitted" in x]
        submit_pid = int(re.split(r"\s+", line)[2])
        assert submit_pid == worker.pid  # the worker itself, no work-horse
        assert horse != worker.pid  # a local operation: a work-horse
