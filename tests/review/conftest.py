"""The reviewer's regression tests reuse the job-layer harness (real PostgreSQL, Redis,
`python -m workers` processes and the Telegram emulator) from tests/workers."""

from tests.workers.conftest import (  # noqa: F401 - fixtures re-exported for this folder
    harness_factory,
    harness_settings,
    images,
    tg,
    tg_server,
)
