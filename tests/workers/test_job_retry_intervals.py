"""A job is enqueued with RQ's retries waiting JOB_RETRY_INTERVALS (production: 2, 5, 15 s)."""

from __future__ import annotations

from redis import Redis
from rq.job import Job

from jobqueue.queue import enqueue_operation, media_queue
from tests.conftest import make_settings


def test_the_retries_wait_the_configured_intervals(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        for n, (values, intervals) in enumerate(
            [
                ({"JOB_RETRIES": 2}, [2, 5]),
                ({"JOB_RETRIES": 2, "JOB_RETRY_INTERVALS": "3,7,11"}, [3, 7]),
                ({"JOB_RETRIES": 3, "JOB_RETRY_INTERVALS": "1"}, [1]),
            ]
        ):
            settings = make_settings("sqlite://", redis_url, **values)
            job = enqueue_operation(media_queue(redis, settings), settings, n + 1, f"t{n}")
            stored = Job.fetch(job.id, connection=redis)
            assert (stored.retries_left, stored.retry_intervals) == (
                values["JOB_RETRIES"],
                intervals,
            )
    finally:
        redis.close()


def test_no_retries_no_retry(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        settings = make_settings("sqlite://", redis_url, JOB_RETRIES=0)
        job = enqueue_operation(media_queue(redis, settings), settings, 1, "t")
        assert not Job.fetch(job.id, connection=redis).retries_left
    finally:
        redis.close()
