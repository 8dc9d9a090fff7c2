"""The queue contract between the bot (which enqueues) and the workers (which run): the
job function's name, job ids and Redis key names (:mod:`jobqueue.queue`), the operation
catalogue (:mod:`jobqueue.catalogue`: what each type takes and how it is shown), the
"delivered" markers (:mod:`jobqueue.delivered`) and the scan for keys of operations a
database does not have (:mod:`jobqueue.stale_keys`). Light: the bot imports it without the
image libraries."""
