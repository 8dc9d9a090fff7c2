"""One emulator as a process of its own, for the chaos stack and bench/load.py:

    python -m tests.chaos.emulators telegram --port N
    python -m tests.chaos.emulators yookassa --port N --shop-id ID --secret-key KEY \\
        --webhook-url URL [--notify-attempts 10 --notify-backoff 0.25]

Like ``python -m sandbox.telegram`` / ``python -m sandbox.yookassa``, plus YooKassa's
notification retry schedule (a real YooKassa retries for a day; a scenario that stops the
database for seconds needs more than the emulator's default 5 attempts from 0.2 s), and no
access log (200 users would fill the disk).
"""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from sandbox import telegram, yookassa


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.emulators")
    parser.add_argument("which", choices=("telegram", "yookassa"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--shop-id")
    parser.add_argument("--secret-key")
    parser.add_argument("--webhook-url")
    parser.add_argument("--notify-attempts", type=int, default=10)
    parser.add_argument("--notify-backoff", type=float, default=0.25)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    if args.which == "telegram":
        app = telegram.create_app()
    else:
        app = yookassa.create_app(
            shop_id=args.shop_id,
            secret_key=args.secret_key,
            webhook_url=args.webhook_url,
            notify_max_attempts=args.notify_attempts,
            notify_backoff=args.notify_backoff,
        )
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
