"""What the Python driver checks share: settings from the environment,
mismatch reports, each worker's bookkeeping, and the runner that prints the
summary and decides the exit status. The checks themselves (what to run
through each driver) stay in asyncpg_check.py and psycopg_check.py.
"""
import asyncio
import decimal
import os
import time

CONNS = int(os.environ.get("CHECK_CONNS", "20"))
ITERS = int(os.environ.get("CHECK_ITERS", "200"))
TIMEOUT = float(os.environ.get("CHECK_TIMEOUT", "300"))

NUM_CTX = decimal.Context(prec=100)  # exact numeric arithmetic for expectations


def describe(got, want):
    """Short description of a mismatch (only differing positions for sequences)."""
    if isinstance(got, (list, tuple)) and isinstance(want, (list, tuple)) and len(got) == len(want):
        return "; ".join(f"[{k}] expected {w!r}, got {g!r}" for k, (g, w) in enumerate(zip(got, want)) if g != w)
    return f"expected {want!r}, got {got!r}"


class CheckFailure(Exception):
    pass


class BaseWorker:
    """One simulated client. Subclasses set `driver` and define `run(dsn)`."""

    driver = "?"

    def __init__(self, wid):
        self.wid = wid
        self.checked = 0
        self.appname = f"drv_{self.driver}_{wid}"
        self.ctx = "connect"

    def check(self, what, got, want):
        if got != want:
            raise CheckFailure(
                f"MISMATCH [{self.driver} worker={self.wid} {self.ctx}] {what!r}: {describe(got, want)}"
            )
        self.checked += 1

    def no_error(self, what, exc_type, res):
        """The failure for a query that should have raised `exc_type`."""
        return CheckFailure(
            f"MISMATCH [{self.driver} worker={self.wid} {self.ctx}] {what}: expected {exc_type.__name__}, got result {res!r}"
        )


async def _main(worker_cls, dsn):
    workers = [worker_cls(w) for w in range(1, CONNS + 1)]
    results = await asyncio.wait_for(
        asyncio.gather(*(w.run(dsn) for w in workers), return_exceptions=True), TIMEOUT
    )
    failures = [(w, r) for w, r in zip(workers, results) if isinstance(r, BaseException)]
    return sum(w.checked for w in workers), failures


def run(worker_cls):
    """Runs CONNS workers against $PGGAT_DSN; returns the exit status (0 only if every check passed)."""
    driver = worker_cls.driver
    dsn = os.environ.get("PGGAT_DSN")
    if not dsn:
        print(f"FAIL {driver}: PGGAT_DSN is not set")
        return 1
    t0 = time.monotonic()
    try:
        checked, failures = asyncio.run(_main(worker_cls, dsn))
    except asyncio.TimeoutError:
        print(f"FAIL {driver}: timed out after {TIMEOUT:.0f}s (CHECK_TIMEOUT)")
        return 1
    elapsed = time.monotonic() - t0
    for w, exc in failures[:10]:
        if isinstance(exc, CheckFailure):
            print(f"FAIL {exc}")
        else:
            print(f"FAIL [{driver} worker={w.wid} {w.ctx}] {type(exc).__name__}: {exc}")
    if failures:
        print(f"{driver}: FAILED ({len(failures)}/{CONNS} connections failed, {checked} checks passed, "
              f"{elapsed:.2f}s)")
        return 1
    print(f"{driver}: OK {checked} queries checked over {CONNS} connections x {ITERS} iterations in {elapsed:.2f}s")
    return 0
