"""Background workers (spec 11): asyncio tasks in the server process, each supervised.

A worker that crashes is logged with its traceback and restarted after a backoff that
doubles up to a minute; it is never left silently dead. Each registers its `stop` with
the app's `Lifecycle`, so shutdown stops them last-started-first within the budget.
"""

from cedros_pay.workers.supervisor import Backoff, PeriodicWorker, SupervisedWorker

__all__ = ["Backoff", "PeriodicWorker", "SupervisedWorker"]
