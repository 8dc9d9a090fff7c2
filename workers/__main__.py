"""``python -m workers``: the composition root of the worker process.

Reads the Settings once, configures the job layer, preloads the media code (every
work-horse is a fork: what the parent imported costs the horses nothing), logs as errors the
Redis keys of operations the database does not have (:mod:`workers.stale_keys`), and runs a
forking :class:`MediaWorker` on RQ_QUEUE with RQ's scheduler (retries with intervals) and
the sweeper; a hosted model's short jobs (submit, delivery, poll) it runs in this process.
SIGTERM/SIGINT: warm shutdown (the running job finishes); a second signal kills the horse,
or ends this process mid-job (its operation is then voided by the sweeper or RQ's
abandoned-job path).
"""

from __future__ import annotations

import argparse
import logging

from redis import Redis

from billing import redaction
from billing.heap import freeze_startup_heap
from billing.settings import load_settings
from jobqueue.queue import media_queue
from texts import wallet_texts
from workers import runtime
from workers.stale_keys import log_stale_keys
from workers.worker import MediaWorker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    parser.add_argument("--name", help="the worker's name in RQ")
    parser.add_argument("--no-sweeper", action="store_true", help="do not run the sweeper")
    args = parser.parse_args(argv)

    settings = load_settings()
    logging.basicConfig(
        level=settings.LOG_LEVEL.upper(),
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    redaction.install(settings)  # before the first fork: RQ's loggers and the horses too
    wallet_texts.use_timezone(settings.zone)  # the dates users see
    runtime.configure(settings)
    import workers.jobs  # noqa: F401 - preload aiogram, SQLAlchemy, OpenCV before forking
    from workers.callbacks import on_work_horse_killed

    runtime.warm_up(settings)
    log_stale_keys(settings)  # a database restored or recreated beside this Redis
    freeze_startup_heap()  # before the first fork: every work-horse inherits it

    redis = Redis.from_url(settings.REDIS_URL)
    worker = MediaWorker(
        [media_queue(redis, settings)],
        connection=redis,
        name=args.name,
        settings=settings,
        sweep=not args.no_sweeper,
        # RQ calls no failure callback for a horse that died: this refunds its operation.
        work_horse_killed_handler=on_work_horse_killed,
    )
    worker.work(
        burst=args.burst,
        with_scheduler=True,
        logging_level=settings.LOG_LEVEL.upper(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
