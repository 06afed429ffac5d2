"""Group commit for the SQLite store: writes that arrive while a commit is under way share the next one.

Each write is a job: a function of the writing connection that runs its statements (no transaction of
its own) and returns its result. ``write`` queues it; when no commit is under way the queue goes at once,
in one hop to the store's thread, as one ``BEGIN IMMEDIATE`` ... ``COMMIT`` with each job in a savepoint
of its own, so a job that fails (a revision conflict) is undone alone and its exception goes to its
caller only. Jobs queued meanwhile wait for that commit to end and then go together: under load one hop
and one COMMIT serve many writes, and at rest a write waits for nobody. A caller is answered only after
the COMMIT holding its job, so what ``write`` returned is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from flowengine.errors import StoreError

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]
Batch = list[tuple[Job[Any], "asyncio.Future[Any]"]]


class GroupCommit:
    """Writes through one connection on ``thread`` (``connection()`` gives it there), committed in
    groups; ``error`` makes a driver error ours."""

    def __init__(self, thread: ThreadPoolExecutor, connection: Callable[[], sqlite3.Connection],
                 error: Callable[[sqlite3.Error], StoreError]) -> None:
        self._thread = thread
        self._connection = connection
        self._error = error
        self._pending: Batch = []  # jobs for the next commit, in the order written
        self._committing: asyncio.Future[list[Any]] | None = None  # the commit under way

    async def write(self, job: Job[T]) -> T:
        """``job``'s result once the transaction holding it is committed (or its exception)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._pending.append((job, waiter))
        if self._committing is None:
            self._start(loop)
        return await waiter

    async def drain(self) -> None:
        """Until every job written so far is committed."""
        while self._committing is not None:
            await asyncio.wait([self._committing])

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        committing = loop.run_in_executor(self._thread, self._commit, [job for job, _ in batch])
        self._committing = committing
        committing.add_done_callback(lambda done: self._answer(loop, batch, done))

    def _answer(self, loop: asyncio.AbstractEventLoop, batch: Batch, done: asyncio.Future[list[Any]]) -> None:
        self._committing = None
        failure = StoreError("the SQLite commit was cancelled") if done.cancelled() else done.exception()
        outcomes = [None] * len(batch) if failure is not None else done.result()
        for (_, waiter), outcome in zip(batch, outcomes, strict=True):
            if waiter.done():  # its caller was cancelled; the write stands
                continue
            if failure is not None:  # the whole commit failed: each caller gets an exception of its own
                waiter.set_exception(StoreError(str(failure)))
            elif isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)
        if self._pending:
            self._start(loop)

    def _commit(self, jobs: list[Job[Any]]) -> list[Any]:
        """On the store's thread: the jobs in one transaction, each in a savepoint, then one COMMIT."""
        db = self._connection()
        if len(jobs) == 1:  # the usual case at rest: no savepoint needed
            return [self._alone(db, jobs[0])]
        outcomes: list[Any] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for job in jobs:
                db.execute("SAVEPOINT job")
                try:
                    outcomes.append(job(db))
                except Exception as exc:  # this job's failure, not the group's
                    db.execute("ROLLBACK TO job")
                    outcomes.append(self._error(exc) if isinstance(exc, sqlite3.Error) else exc)
                db.execute("RELEASE job")
        except sqlite3.Error as exc:
            self._roll_back(db)
            raise self._error(exc) from exc
        self._finish(db)
        return outcomes

    def _alone(self, db: sqlite3.Connection, job: Job[Any]) -> Any:
        """One job in its own transaction: rolled back whole if it fails (its exception is its outcome)."""
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            outcome = job(db)
        except Exception as exc:  # the job's own failure: undo it, and its caller gets the exception
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            return self._error(exc) if isinstance(exc, sqlite3.Error) else exc
        self._finish(db)
        return outcome

    def _finish(self, db: sqlite3.Connection) -> None:
        """COMMIT; a failed one rolls the transaction back and raises the store's error."""
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._roll_back(db)
            raise self._error(exc) from exc

    @staticmethod
    def _roll_back(db: sqlite3.Connection) -> None:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
