"""PostgreSQL fast load for DISCOM-scale demos (`urja demo --consumers 1000000`).

The way pg_restore loads a dump: in ONE transaction on a second connection, drop the secondary
indexes and the foreign keys of the consumer, contact and account tables, COPY the rows,
then create the indexes again and re-add the foreign keys (which validates every row in one
pass). Either all of it commits or none of it does.

Two threads share the work, so both cores are busy: this (main) thread generates the rows,
allocates consumer numbers (`allocate_numbers`, committed as it goes: a failed load leaves a
gap in the number series, as any aborted connection does) and reserves consumer ids from the
table's sequence; the loader thread streams the COPYs (psycopg waits on the socket without the
GIL). Memory stays bounded: at most two chunks are queued.

While it runs the three tables are locked (ACCESS EXCLUSIVE), and rows referencing offices,
feeders and users cannot be written elsewhere. It is meant for loading a demo or benchmark
database, not a live one.
"""

import queue
import random
import threading

from django.db import connection

TABLES = ("customers_consumer", "customers_contact", "customers_account")
ABORT = object()


def _secondary_indexes(cur) -> list[tuple[str, str]]:
    """Non-unique indexes of the three tables that back no constraint (primary keys and unique
    constraints stay: they guard the load). Measured: dropping all of them beats keeping the
    cheap-looking ones (ascending ids, all-NULL columns), because COPY is the bottleneck."""
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT i.indisunique
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1
        """,
        [list(TABLES)],
    )
    return cur.fetchall()


def _foreign_keys(cur) -> list[tuple[str, str, str]]:
    cur.execute(
        """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 1, 2
        """,
        [list(TABLES)],
    )
    return cur.fetchall()


class _Loader(threading.Thread):
    def __init__(self, *, series_key: str, series_start: int, count: int, log):
        super().__init__(name="urja-demo-loader", daemon=True)
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.series_key, self.series_start, self.count = series_key, series_start, count
        self.log = log
        self.timings: dict[str, float] = {}

    def run(self) -> None:
        import time

        from urja.demo.consumers import copy_text

        conn = None
        try:
            conn = connection.get_new_connection(connection.get_connection_params())
            conn.autocommit = True
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
                cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
                cur.execute("LOCK TABLE customers_consumer, customers_contact, customers_account IN EXCLUSIVE MODE")
                indexes, fks = _secondary_indexes(cur), _foreign_keys(cur)
                for table, name, _ in fks:
                    cur.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
                for name, _ in indexes:
                    cur.execute(f"DROP INDEX {name}")
                t0 = time.perf_counter()
                copying = 0.0
                while (batches := self.queue.get()) is not None:
                    if batches is ABORT:
                        raise RuntimeError("aborted by the generating thread")
                    t1 = time.perf_counter()
                    for table, columns, text in batches:
                        copy_text(cur, table, columns, text)
                    copying += time.perf_counter() - t1
                self.timings["rows"] = time.perf_counter() - t0
                self.timings["rows_copying"] = copying
                t0 = time.perf_counter()
                self.log(f"  … rows loaded; building {len(indexes)} indexes and {len(fks)} foreign keys")
                for _, definition in indexes:
                    cur.execute(definition)
                self.timings["indexes"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                for table, name, definition in fks:
                    cur.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
                self.timings["foreign_keys"] = time.perf_counter() - t0
                for table in TABLES:
                    cur.execute(f'ANALYZE "{table}"')
                cur.execute(
                    "UPDATE core_numberseries SET next_value = next_value + %s WHERE key = %s AND next_value = %s",
                    [self.count, self.series_key, self.series_start],
                )
                if cur.rowcount != 1:
                    raise RuntimeError("another demo load ran at the same time; this one is rolled back")
        except BaseException as exc:  # reported to the main thread
            self.error = exc
            # Drain so the producer is never stuck on a full queue.
            while True:
                try:
                    if self.queue.get(timeout=0.1) is None:
                        break
                except queue.Empty:
                    break
        finally:
            if conn is not None:
                conn.close()

    def put(self, item) -> None:
        while True:
            if self.error is not None or not self.is_alive():
                raise RuntimeError(f"demo loader stopped: {self.error!r}") from self.error
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


# State of a forked chunk worker (set by fast_load before the pool forks).
_WORKER: dict = {}


def _make_chunk(first: int, size: int):
    """Generate, number and format one chunk (in a worker process or in-process)."""
    generator, writer, seed = _WORKER["generator"], _WORKER["writer"], _WORKER["seed"]
    rng = random.Random(f"{seed}:{first}")
    specs = [generator.make(rng, first + i) for i in range(size)]
    numbers = writer.numbers_for(specs)
    ids = writer.reserve_consumer_ids(size)
    return writer.format_copy(specs, numbers, ids)


def fast_load(
    *,
    count: int,
    generator,
    seed: int,
    writer,
    chunk: int,
    series_key: str,
    workers: int | None = None,
    progress=None,
    log=print,
) -> dict[str, float]:
    """Load `count` generated consumers (with contacts and accounts) in one transaction.

    `workers` processes (forked; default: one per CPU) generate the chunks; 0 generates them
    in this process. Each worker allocates its chunk's consumer numbers on its own connection.
    """
    import multiprocessing
    import os
    import time

    from django.db import connections

    from urja.core.models import NumberSeries

    if connection.in_atomic_block:
        raise RuntimeError("the fast load commits on its own connection; call it outside transaction.atomic")
    series, _ = NumberSeries.objects.get_or_create(key=series_key, defaults={"template": "{seq}"})
    start = series.next_value
    writer.prepare(s.id for d in generator.places.items for s in d[1].sections)
    _WORKER.update(generator=generator, writer=writer, seed=seed)
    tasks = [(start + done, min(chunk, count - done)) for done in range(0, count, chunk)]
    workers = (os.cpu_count() or 1) if workers is None else workers
    pool = None
    if workers > 0 and len(tasks) > 1:
        # Fork before any thread or connection exists in this process: children open their own.
        connections.close_all()
        pool = multiprocessing.get_context("fork").Pool(workers)
    t0 = time.perf_counter()
    loader = _Loader(series_key=series_key, series_start=start, count=count, log=log)
    loader.start()
    done = 0
    failed = True
    try:
        chunks = pool.imap(_make_chunk_task, tasks) if pool else (_make_chunk(*t) for t in tasks)
        for (_, size), batches in zip(tasks, chunks, strict=True):
            loader.put(batches)
            done += size
            if progress:
                progress(done)
        failed = False
    finally:
        if pool is not None:
            pool.terminate() if failed else pool.close()
            pool.join()
        if loader.is_alive() and loader.error is None:
            loader.queue.put(ABORT if failed else None)
        loader.join()
        _WORKER.clear()
    if loader.error is not None:
        raise RuntimeError(f"demo fast load failed and was rolled back: {loader.error}") from loader.error
    return {**loader.timings, "total": time.perf_counter() - t0}


def _make_chunk_task(task: tuple[int, int]):
    return _make_chunk(*task)
