"""Group commit for the SQLite store: writes that arrive together share one transaction, committed on the
event loop itself when nothing stands in the way.

Each write is a job: a function of the writing connection that runs its statements (no transaction of
its own) and returns its result. ``write`` queues it; the queue goes at the end of the event loop's
current turn (so every write queued during that turn shares it), as one ``BEGIN IMMEDIATE`` ... ``COMMIT``.
A job that fails (a revision conflict) is undone alone and its exception goes to its caller only: the
group is then rolled back and run again with each job in a savepoint of its own (failures are rare, so
the savepoints' two statements a job are spent only then). A caller is answered only after the COMMIT
holding its job, so what ``write`` returned is committed.

Where the group runs: in WAL mode with ``synchronous=NORMAL`` a COMMIT appends to the WAL and waits for no
disk, tens of microseconds, while a hop to the store's thread and back cost more than that in CPU alone
(issue 15). So a group runs on the event loop, through a connection that never waits (busy timeout 0) and
never checkpoints (``wal_autocheckpoint=0``: a checkpoint syncs files). When SQLite answers busy (another
process holds the write lock), the group is rolled back and goes to the store's thread, whose connection
waits for the lock; groups queued meanwhile wait for it and then go together. Checkpoints run on the
thread every ``CHECKPOINT_EVERY`` commits made on the loop (``PASSIVE``: they wait for nobody).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from flowengine.errors import StoreError

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]
Batch = list[tuple[Job[Any], "asyncio.Future[Any]"]]
Connection = Callable[[], sqlite3.Connection]
CHECKPOINT_EVERY = 200  # commits made on the loop between two checkpoints on the thread (~1-4 MB of WAL)


class Busy(Exception):
    """SQLite answered busy on the loop's connection: the group goes to the store's thread instead."""


class GroupCommit:
    """Writes committed in groups: on the event loop through ``inline()`` (None until it is open), else on
    ``thread`` through ``connection()`` (which opens both there); ``error`` makes a driver error ours."""

    def __init__(self, thread: ThreadPoolExecutor, connection: Connection,
                 error: Callable[[sqlite3.Error], StoreError],
                 inline: Callable[[], sqlite3.Connection | None] = lambda: None) -> None:
        self._thread = thread
        self._connection = connection
        self._inline = inline
        self._error = error
        self._pending: Batch = []  # jobs for the next commit, in the order written
        self._scheduled = False  # a commit of the pending jobs is due at the end of this loop turn
        self._committing: asyncio.Future[list[Any]] | None = None  # a commit under way on the thread
        self._since_checkpoint = 0
        self._checkpoint: Future[None] | None = None

    async def write(self, job: Job[T]) -> T:
        """``job``'s result once the transaction holding it is committed (or its exception)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._pending.append((job, waiter))
        if self._committing is None and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start, loop)
        return await waiter

    async def drain(self) -> None:
        """Until every job written so far is committed."""
        while self._committing is not None or self._scheduled or self._pending:
            if self._committing is not None:
                await asyncio.wait([self._committing])
            else:
                await asyncio.sleep(0)
        if self._checkpoint is not None:
            await asyncio.wrap_future(self._checkpoint)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        jobs = [job for job, _ in batch]
        db = self._inline()
        if db is not None:
            try:
                outcomes = self._commit(jobs, db)
            except Busy:
                pass  # another process holds the lock: the thread waits for it
            except Exception as exc:  # the whole group failed: each caller is told
                self._answer(loop, batch, exc, None)
                return
            else:
                self._answer(loop, batch, None, outcomes)
                self._count_commit()
                return
        committing = loop.run_in_executor(self._thread, self._commit, jobs)
        self._committing = committing
        committing.add_done_callback(lambda done: self._finish_thread(loop, batch, done))

    def _finish_thread(self, loop: asyncio.AbstractEventLoop, batch: Batch,
                       done: asyncio.Future[list[Any]]) -> None:
        self._committing = None
        if done.cancelled():
            self._answer(loop, batch, StoreError("the SQLite commit was cancelled"), None)
        elif (failure := done.exception()) is not None:
            self._answer(loop, batch, failure, None)
        else:
            self._answer(loop, batch, None, done.result())
        if self._pending and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start, loop)

    @staticmethod
    def _answer(loop: asyncio.AbstractEventLoop, batch: Batch, failure: BaseException | None,
                outcomes: list[Any] | None) -> None:
        results = outcomes if outcomes is not None else [None] * len(batch)
        for (_, waiter), outcome in zip(batch, results, strict=True):
            if waiter.done():  # its caller was cancelled; the write stands
                continue
            if failure is not None:  # the whole commit failed: each caller gets an exception of its own
                waiter.set_exception(StoreError(str(failure)))
            elif isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)

    def _count_commit(self) -> None:
        self._since_checkpoint += 1
        running = self._checkpoint is not None and not self._checkpoint.done()
        if self._since_checkpoint >= CHECKPOINT_EVERY and not running:
            self._since_checkpoint = 0
            self._checkpoint = self._thread.submit(self._checkpoint_wal)

    def _checkpoint_wal(self) -> None:
        """On the store's thread: what the loop's commits appended to the WAL goes into the database."""
        with contextlib.suppress(sqlite3.Error, StoreError):  # the next one tries again
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _commit(self, jobs: list[Job[Any]], db: sqlite3.Connection | None = None) -> list[Any]:
        """The jobs in one transaction, then one COMMIT: through ``db`` on the loop
        (``Busy`` if SQLite says so, everything rolled back), else on the store's thread."""
        inline = db is not None
        db = db if db is not None else self._connection()
        if len(jobs) == 1:  # the usual case at rest: no savepoint needed
            return [self._alone(db, jobs[0], inline)]
        # Jobs rarely fail (a revision conflict), so the group first runs without a savepoint per job (two
        # statements each); if one fails, all is rolled back and the jobs run again, each in a savepoint.
        self._begin(db, inline)
        try:
            outcomes = [job(db) for job in jobs]
        except Exception as exc:
            self._roll_back(db)
            if inline and _busy(exc):
                raise Busy from exc
            return self._each_saved(jobs, db, inline)
        self._finish(db, inline)
        return outcomes

    def _each_saved(self, jobs: list[Job[Any]], db: sqlite3.Connection, inline: bool) -> list[Any]:
        """The jobs in one transaction, each in a savepoint: one that fails is undone alone."""
        outcomes: list[Any] = []
        try:
            self._begin(db, inline)
            for job in jobs:
                db.execute("SAVEPOINT job")
                try:
                    outcomes.append(job(db))
                except Exception as exc:  # this job's failure, not the group's
                    if inline and _busy(exc):
                        raise
                    db.execute("ROLLBACK TO job")
                    outcomes.append(self._error(exc) if isinstance(exc, sqlite3.Error) else exc)
                db.execute("RELEASE job")
        except sqlite3.Error as exc:
            self._roll_back(db)
            if inline and _busy(exc):
                raise Busy from exc
            raise self._error(exc) from exc
        self._finish(db, inline)
        return outcomes

    def _begin(self, db: sqlite3.Connection, inline: bool) -> None:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if inline and _busy(exc):
                raise Busy from exc
            raise self._error(exc) from exc

    def _alone(self, db: sqlite3.Connection, job: Job[Any], inline: bool) -> Any:
        """One job in its own transaction: rolled back whole if it fails (its exception is its outcome)."""
        self._begin(db, inline)
        try:
            outcome = job(db)
        except Exception as exc:  # the job's own failure: undo it, and its caller gets the exception
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if inline and _busy(exc):
                raise Busy from exc
            return self._error(exc) if isinstance(exc, sqlite3.Error) else exc
        self._finish(db, inline)
        return outcome

    def _finish(self, db: sqlite3.Connection, inline: bool) -> None:
        """COMMIT; a failed one rolls the transaction back and raises the store's error (or ``Busy``)."""
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._roll_back(db)
            if inline and _busy(exc):
                raise Busy from exc
            raise self._error(exc) from exc

    @staticmethod
    def _roll_back(db: sqlite3.Connection) -> None:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")


def _busy(exc: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (and their extended codes): another connection is in the way."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF in (
        sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
