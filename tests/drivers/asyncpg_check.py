#!/usr/bin/env python3
"""asyncpg driver check for a transaction-pooling PostgreSQL pooler.

Exercises asyncpg's DEFAULT prepared-statement behaviour (the per-connection
statement cache used by fetch/fetchval/fetchrow with $n params) plus an
explicit conn.prepare() statement reused across transactions, with
concurrent connections, explicit BEGIN/COMMIT and ROLLBACK, errors inside
and outside transactions, and session-level SETs.

Env: PGGAT_DSN (required)  postgres://user:password@127.0.0.1:PORT/dbname
     CHECK_CONNS (20), CHECK_ITERS (200), CHECK_TIMEOUT seconds (300)
Exit 0 only if every check passed.
"""
import datetime as dt
import decimal
import json
import sys

import asyncpg

from checklib import ITERS, NUM_CTX, BaseWorker, run

Q_DOUBLE = "select $1::int * 2"
Q_CONCAT = "select $1::text || 'x'"
Q_SERIES = "select g, g * $2::int as m, repeat('y', g) as r from generate_series(1, $1::int) g order by g"
Q_TYPED = (
    "select $1::int4 + 1, $2::int8 * 3, $3::text || '!', $4::bytea || '\\x00ff'::bytea,"
    " $5::numeric * 2, $6::timestamptz + interval '24 hours',"
    " $7::jsonb || jsonb_build_object('w', $1::int4), $8::float8 / 2, not $9::bool,"
    " $10::text is null, $10::text"
)
Q_DIV = "select 100 / $1::int"
Q_APPNAME = "select current_setting('application_name')"
Q_STMT_TIMEOUT = "select current_setting('statement_timeout')"
Q_SHOW_TIMEOUT = "SHOW statement_timeout"


class Worker(BaseWorker):
    driver = "asyncpg"

    async def expect_error(self, what, exc_type, coro):
        try:
            res = await coro
        except exc_type:
            self.checked += 1
            return
        raise self.no_error(what, exc_type, res)

    async def plain(self, conn, i):
        """Cached prepared statements (default asyncpg path)."""
        self.check(Q_DOUBLE, await conn.fetchval(Q_DOUBLE, i), i * 2)
        self.check(Q_CONCAT, await conn.fetchval(Q_CONCAT, f"w{self.wid}-{i}"), f"w{self.wid}-{i}x")

    async def series(self, conn, i):
        n = i % 7 + 1
        rows = await conn.fetch(Q_SERIES, n, self.wid)
        got = [(r["g"], r["m"], r["r"]) for r in rows]
        self.check(Q_SERIES, got, [(g, g * self.wid, "y" * g) for g in range(1, n + 1)])

    async def typed(self, conn, i):
        ts = dt.datetime(2024, 2, 28, 23, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
        ts = ts + dt.timedelta(seconds=i)
        num = decimal.Decimal(f"12345678901234567890.{i:06d}123")
        blob = bytes([0, 1, 2, i % 256, 255, 0])
        doc = {"k": [1, "two", None, True], "i": i, "nested": {"s": f"w{self.wid}"}}
        row = await conn.fetchrow(
            Q_TYPED, i, 2**40 + i, f"t{i}", blob, num, ts, json.dumps(doc), i / 4, i % 2 == 0, None
        )
        got = list(row.values())
        got[6] = json.loads(got[6])  # asyncpg returns jsonb as text by default
        want = [
            i + 1, (2**40 + i) * 3, f"t{i}!", blob + b"\x00\xff", NUM_CTX.multiply(num, 2),
            ts + dt.timedelta(hours=24), dict(doc, w=i), i / 8, not (i % 2 == 0), True, None,
        ]
        self.check("typed params", got, want)

    async def settings(self, conn, i):
        self.check(Q_APPNAME, await conn.fetchval(Q_APPNAME), self.appname)
        self.check(Q_STMT_TIMEOUT, await conn.fetchval(Q_STMT_TIMEOUT), "7s")
        if i % 20 == 0:
            self.check(Q_SHOW_TIMEOUT, await conn.fetchval(Q_SHOW_TIMEOUT), "7s")

    async def run(self, dsn):
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            await conn.execute(f"SET application_name = '{self.appname}'")
            await conn.execute("SET statement_timeout = '7s'")
            # Explicit prepared statement, created once, reused in every transaction.
            ps_triple = await conn.prepare("select $1::int * 3, $2::text")
            for i in range(ITERS):
                # outside any transaction
                self.ctx = f"iter={i} autocommit"
                await self.plain(conn, i)
                await self.settings(conn, i)
                self.check("prepared triple", tuple(await ps_triple.fetchrow(i, "a")), (i * 3, "a"))

                # BEGIN ... COMMIT
                self.ctx = f"iter={i} commit-tx"
                async with conn.transaction():
                    await self.plain(conn, i)
                    await self.series(conn, i)
                    await self.typed(conn, i)
                    self.check("prepared triple", tuple(await ps_triple.fetchrow(i, "b")), (i * 3, "b"))
                    await self.settings(conn, i)

                if i % 5 == 1:  # BEGIN ... ROLLBACK (with SET LOCAL that must not survive)
                    self.ctx = f"iter={i} rollback-tx"
                    tr = conn.transaction()
                    await tr.start()
                    await conn.execute("SET LOCAL statement_timeout = '3s'")
                    self.check("SET LOCAL visible", await conn.fetchval(Q_STMT_TIMEOUT), "3s")
                    await self.plain(conn, i)
                    self.check("prepared triple", tuple(await ps_triple.fetchrow(i, "c")), (i * 3, "c"))
                    await tr.rollback()
                    self.ctx = f"iter={i} after-rollback"
                    self.check("statement_timeout after rollback", await conn.fetchval(Q_STMT_TIMEOUT), "7s")

                if i % 5 == 3:  # error inside a transaction, rollback, keep using statements
                    self.ctx = f"iter={i} error-tx"
                    tr = conn.transaction()
                    await tr.start()
                    self.check(Q_DIV, await conn.fetchval(Q_DIV, 4), 25)
                    await self.expect_error("division by zero", asyncpg.DivisionByZeroError,
                                            conn.fetchval(Q_DIV, 0))
                    await self.expect_error("query in aborted tx", asyncpg.InFailedSQLTransactionError,
                                            conn.fetchval(Q_DOUBLE, i))
                    await self.expect_error("prepared in aborted tx", asyncpg.InFailedSQLTransactionError,
                                            ps_triple.fetchrow(i, "d"))
                    await tr.rollback()
                    self.ctx = f"iter={i} after-error-rollback"
                    await self.plain(conn, i)
                    self.check(Q_DIV, await conn.fetchval(Q_DIV, 5), 20)
                    self.check("prepared triple", tuple(await ps_triple.fetchrow(i, "e")), (i * 3, "e"))
                    await self.settings(conn, i)

                if i % 10 == 7:  # error outside a transaction
                    self.ctx = f"iter={i} autocommit-error"
                    await self.expect_error("division by zero", asyncpg.DivisionByZeroError,
                                            conn.fetchval(Q_DIV, 0))
                    await self.plain(conn, i)
                    await self.series(conn, i)
        finally:
            await conn.close()


if __name__ == "__main__":
    sys.exit(run(Worker))
