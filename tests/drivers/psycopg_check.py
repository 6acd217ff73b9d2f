#!/usr/bin/env python3
"""psycopg 3 driver check for a transaction-pooling PostgreSQL pooler.

Connections are opened with prepare_threshold=0, so EVERY query is
server-side prepared (named _pg3_N statements) on first use and reused
afterwards; some calls additionally pass prepare=True explicitly.  Runs
concurrent connections with explicit BEGIN/COMMIT and ROLLBACK, errors
inside and outside transactions, and session-level SETs.

Env: PGGAT_DSN (required)  postgres://user:password@127.0.0.1:PORT/dbname
     CHECK_CONNS (20), CHECK_ITERS (200), CHECK_TIMEOUT seconds (300)
Exit 0 only if every check passed.
"""
import datetime as dt
import decimal
import sys

import psycopg
from psycopg import errors
from psycopg.types.json import Jsonb

from checklib import ITERS, NUM_CTX, BaseWorker, run

Q_DOUBLE = "select %s::int * 2"
Q_CONCAT = "select %s::text || 'x'"
Q_SERIES = "select g, g * %(w)s::int as m, repeat('y', g) as r from generate_series(1, %(n)s::int) g order by g"
Q_TYPED = (
    "select %(i)s::int4 + 1, %(big)s::int8 * 3, %(t)s::text || '!', %(b)s::bytea || '\\x00ff'::bytea,"
    " %(num)s::numeric * 2, %(ts)s::timestamptz + interval '24 hours',"
    " %(doc)s::jsonb || jsonb_build_object('w', %(i)s::int4), %(f)s::float8 / 2, not %(flag)s::bool,"
    " %(null)s::text is null, %(null)s::text"
)
Q_DIV = "select 100 / %s::int"
Q_TRIPLE = "select %s::int * 3, %s::text"
Q_APPNAME = "select current_setting('application_name')"
Q_STMT_TIMEOUT = "select current_setting('statement_timeout')"
Q_SHOW_TIMEOUT = "SHOW statement_timeout"

class Worker(BaseWorker):
    driver = "psycopg"

    async def expect_error(self, what, exc_type, conn, query, params):
        try:
            cur = await conn.execute(query, params, prepare=True)
            res = await cur.fetchall()
        except exc_type:
            self.checked += 1
            return
        raise self.no_error(what, exc_type, res)

    async def one(self, conn, query, params=None, prepare=None):
        cur = await conn.execute(query, params, prepare=prepare)
        return await cur.fetchone()

    async def plain(self, conn, i):
        self.check(Q_DOUBLE, (await self.one(conn, Q_DOUBLE, (i,)))[0], i * 2)
        # explicit prepare=True through a cursor
        async with conn.cursor() as cur:
            await cur.execute(Q_CONCAT, (f"w{self.wid}-{i}",), prepare=True)
            self.check(Q_CONCAT, (await cur.fetchone())[0], f"w{self.wid}-{i}x")

    async def triple(self, conn, i, tag):
        self.check(Q_TRIPLE, await self.one(conn, Q_TRIPLE, (i, tag), prepare=True), (i * 3, tag))

    async def series(self, conn, i):
        n = i % 7 + 1
        cur = await conn.execute(Q_SERIES, {"n": n, "w": self.wid})
        got = await cur.fetchall()
        self.check(Q_SERIES, got, [(g, g * self.wid, "y" * g) for g in range(1, n + 1)])

    async def typed(self, conn, i):
        ts = dt.datetime(2024, 2, 28, 23, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
        ts = ts + dt.timedelta(seconds=i)
        num = decimal.Decimal(f"12345678901234567890.{i:06d}123")
        blob = bytes([0, 1, 2, i % 256, 255, 0])
        doc = {"k": [1, "two", None, True], "i": i, "nested": {"s": f"w{self.wid}"}}
        params = {"i": i, "big": 2**40 + i, "t": f"t{i}", "b": blob, "num": num, "ts": ts,
                  "doc": Jsonb(doc), "f": i / 4, "flag": i % 2 == 0, "null": None}
        got = list(await self.one(conn, Q_TYPED, params, prepare=True))
        want = [
            i + 1, (2**40 + i) * 3, f"t{i}!", blob + b"\x00\xff", NUM_CTX.multiply(num, 2),
            ts + dt.timedelta(hours=24), dict(doc, w=i), i / 8, not (i % 2 == 0), True, None,
        ]
        self.check("typed params", got, want)

    async def settings(self, conn, i):
        self.check(Q_APPNAME, (await self.one(conn, Q_APPNAME))[0], self.appname)
        self.check(Q_STMT_TIMEOUT, (await self.one(conn, Q_STMT_TIMEOUT))[0], "7s")
        if i % 20 == 0:
            self.check(Q_SHOW_TIMEOUT, (await self.one(conn, Q_SHOW_TIMEOUT))[0], "7s")

    async def run(self, dsn):
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, prepare_threshold=0, connect_timeout=30
        )
        try:
            await conn.execute(f"SET application_name = '{self.appname}'")
            await conn.execute("SET statement_timeout = '7s'")
            for i in range(ITERS):
                self.ctx = f"iter={i} autocommit"
                await self.plain(conn, i)
                await self.settings(conn, i)
                await self.triple(conn, i, "a")

                self.ctx = f"iter={i} commit-tx"
                async with conn.transaction():  # BEGIN ... COMMIT
                    await self.plain(conn, i)
                    await self.series(conn, i)
                    await self.typed(conn, i)
                    await self.triple(conn, i, "b")
                    await self.settings(conn, i)

                if i % 5 == 1:  # BEGIN ... ROLLBACK (with SET LOCAL that must not survive)
                    self.ctx = f"iter={i} rollback-tx"
                    async with conn.transaction():
                        await conn.execute("SET LOCAL statement_timeout = '3s'")
                        self.check("SET LOCAL visible", (await self.one(conn, Q_STMT_TIMEOUT))[0], "3s")
                        await self.plain(conn, i)
                        await self.triple(conn, i, "c")
                        raise psycopg.Rollback()
                    self.ctx = f"iter={i} after-rollback"
                    self.check("statement_timeout after rollback", (await self.one(conn, Q_STMT_TIMEOUT))[0], "7s")

                if i % 5 == 3:  # error inside a transaction, rollback, keep using statements
                    self.ctx = f"iter={i} error-tx"
                    async with conn.transaction():
                        self.check(Q_DIV, (await self.one(conn, Q_DIV, (4,), prepare=True))[0], 25)
                        await self.expect_error("division by zero", errors.DivisionByZero, conn, Q_DIV, (0,))
                        await self.expect_error("query in aborted tx", errors.InFailedSqlTransaction,
                                                conn, Q_DOUBLE, (i,))
                        await self.expect_error("prepared in aborted tx", errors.InFailedSqlTransaction,
                                                conn, Q_TRIPLE, (i, "d"))
                        raise psycopg.Rollback()
                    self.ctx = f"iter={i} after-error-rollback"
                    await self.plain(conn, i)
                    self.check(Q_DIV, (await self.one(conn, Q_DIV, (5,), prepare=True))[0], 20)
                    await self.triple(conn, i, "e")
                    await self.settings(conn, i)

                if i % 10 == 7:  # error outside a transaction
                    self.ctx = f"iter={i} autocommit-error"
                    await self.expect_error("division by zero", errors.DivisionByZero, conn, Q_DIV, (0,))
                    await self.plain(conn, i)
                    await self.series(conn, i)
        finally:
            await conn.close()


if __name__ == "__main__":
    sys.exit(run(Worker))
