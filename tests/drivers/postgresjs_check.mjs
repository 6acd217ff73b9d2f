#!/usr/bin/env node
// postgres.js (npm `postgres`) driver check for a transaction-pooling pooler.
//
// With prepare: true (postgres.js's default, set explicitly here) every
// tagged-template query becomes a named prepared statement that is Parsed
// once per connection and then only Bound/Executed, so a pooler that moves
// the client to a different server connection must make the statement exist
// there.  Uses one postgres() instance with max: 1 per simulated client so
// session-level SETs stay on that client; runs concurrent clients with
// sql.begin() transactions (COMMIT and ROLLBACK), errors inside and outside
// transactions, and session-level SETs.
//
// Env: PGGAT_DSN (required)  postgres://user:password@127.0.0.1:PORT/dbname
//      CHECK_CONNS (20), CHECK_ITERS (200), CHECK_TIMEOUT seconds (300)
//      DRIVERS_DIR (default ~/.cache/pggat-drivers; `postgres` is loaded from
//      $DRIVERS_DIR/node/node_modules, see setup.sh)
// Exit 0 only if every check passed.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import checklib from './checklib.cjs';

const { DRIVERS_DIR, ITERS, doubleDecimal, BaseWorker, run } = checklib;
const DRIVER = 'postgres.js';
let postgres;
try {
  postgres = (await import(pathToFileURL(path.join(DRIVERS_DIR, 'node', 'node_modules', 'postgres', 'src', 'index.js')).href)).default;
} catch (e) {
  console.log(`FAIL ${DRIVER}: cannot load 'postgres' from ${DRIVERS_DIR}/node (run tests/drivers/setup.sh): ${e.message}`);
  process.exit(1);
}

class Rollback extends Error {} // thrown to make sql.begin() issue ROLLBACK

class Worker extends BaseWorker {
  static driver = DRIVER;
  static appTag = 'postgresjs';

  // `sql` is either the worker's postgres() instance or a sql.begin() scope.
  async plain(sql, i) {
    const [a] = await sql`select ${i}::int * 2 as v`;
    this.check('select $1::int * 2', a.v, i * 2);
    const [b] = await sql`select ${`w${this.wid}-${i}`}::text || 'x' as v`;
    this.check("select $1::text || 'x'", b.v, `w${this.wid}-${i}x`);
  }

  async triple(sql, i, tag) {
    const [r] = await sql`select ${i}::int * 3 as a, ${tag}::text as b`;
    this.check('select $1::int * 3, $2::text', [r.a, r.b], [i * 3, tag]);
  }

  async series(sql, i) {
    const n = (i % 7) + 1;
    const rows = await sql`select g, g * ${this.wid}::int as m, repeat('y', g) as r from generate_series(1, ${n}::int) g order by g`;
    const want = [];
    for (let g = 1; g <= n; g++) want.push([g, g * this.wid, 'y'.repeat(g)]);
    this.check('generate_series', rows.map((r) => [r.g, r.m, r.r]), want);
  }

  async typed(sql, i) {
    const ts = new Date(Date.UTC(2024, 1, 29, 4, 30, 15, 123) + i * 1000);
    const num = `12345678901234567890.${String(i).padStart(6, '0')}123`;
    const blob = Buffer.from([0, 1, 2, i % 256, 255, 0]);
    const doc = { k: [1, 'two', null, true], i, nested: { s: `w${this.wid}` } };
    const big = 2n ** 40n + BigInt(i);
    const [r] = await sql`select ${i}::int4 + 1 as c0, ${big.toString()}::int8 * 3 as c1, ${`t${i}`}::text || '!' as c2,
      ${blob}::bytea || '\\x00ff'::bytea as c3, ${num}::numeric * 2 as c4,
      ${ts}::timestamptz + interval '24 hours' as c5, ${sql.json(doc)}::jsonb || jsonb_build_object('w', ${i}::int4) as c6,
      ${i / 4}::float8 / 2 as c7, not ${i % 2 === 0}::bool as c8, ${null}::text is null as c9, ${null}::text as c10`;
    const got = [r.c0, r.c1, r.c2, r.c3, r.c4, r.c5, r.c6, r.c7, r.c8, r.c9, r.c10];
    const want = [
      i + 1, (big * 3n).toString(), `t${i}!`, Buffer.concat([blob, Buffer.from([0, 255])]), doubleDecimal(num),
      new Date(ts.getTime() + 24 * 3600 * 1000), { ...doc, w: i }, i / 8, !(i % 2 === 0), true, null,
    ];
    this.check('typed params', got, want);
  }

  async stmtTimeout(sql) {
    const [r] = await sql`select current_setting('statement_timeout') as v`;
    return r.v;
  }

  async settings(sql, i) {
    const [a] = await sql`select current_setting('application_name') as v`;
    this.check("current_setting('application_name')", a.v, this.appname);
    this.check("current_setting('statement_timeout')", await this.stmtTimeout(sql), '7s');
    if (i % 20 === 0) {
      const [s] = await sql`SHOW statement_timeout`;
      this.check('SHOW statement_timeout', s.statement_timeout, '7s');
    }
  }

  async run(dsn) {
    const sql = postgres(dsn, { max: 1, prepare: true, connect_timeout: 30, onnotice: () => {} });
    try {
      await sql.unsafe(`SET application_name = '${this.appname}'`);
      await sql.unsafe("SET statement_timeout = '7s'");
      for (let i = 0; i < ITERS; i++) {
        this.ctx = `iter=${i} autocommit`;
        await this.plain(sql, i);
        await this.settings(sql, i);
        await this.triple(sql, i, 'a');

        this.ctx = `iter=${i} commit-tx`;
        await sql.begin(async (tx) => { // BEGIN ... COMMIT
          await this.plain(tx, i);
          await this.series(tx, i);
          await this.typed(tx, i);
          await this.triple(tx, i, 'b');
          await this.settings(tx, i);
        });

        if (i % 5 === 1) { // BEGIN ... ROLLBACK (with SET LOCAL that must not survive)
          this.ctx = `iter=${i} rollback-tx`;
          await sql.begin(async (tx) => {
            await tx.unsafe("SET LOCAL statement_timeout = '3s'");
            this.check('SET LOCAL visible', await this.stmtTimeout(tx), '3s');
            await this.plain(tx, i);
            await this.triple(tx, i, 'c');
            throw new Rollback();
          }).catch((e) => { if (!(e instanceof Rollback)) throw e; });
          this.ctx = `iter=${i} after-rollback`;
          this.check('statement_timeout after rollback', await this.stmtTimeout(sql), '7s');
        }

        if (i % 5 === 3) { // error inside a transaction, rollback, keep using statements
          this.ctx = `iter=${i} error-tx`;
          await sql.begin(async (tx) => {
            const [d] = await tx`select 100 / ${4}::int as v`;
            this.check('select 100 / $1::int', d.v, 25);
            await this.expectError('division by zero', '22012', tx`select 100 / ${0}::int as v`);
            await this.expectError('query in aborted tx', '25P02', tx`select ${i}::int * 2 as v`);
            await this.expectError('prepared in aborted tx', '25P02', tx`select ${i}::int * 3 as a, ${'d'}::text as b`);
            throw new Rollback();
          }).catch((e) => { if (!(e instanceof Rollback)) throw e; });
          this.ctx = `iter=${i} after-error-rollback`;
          await this.plain(sql, i);
          const [d] = await sql`select 100 / ${5}::int as v`;
          this.check('select 100 / $1::int', d.v, 20);
          await this.triple(sql, i, 'e');
          await this.settings(sql, i);
        }

        if (i % 10 === 7) { // error outside a transaction
          this.ctx = `iter=${i} autocommit-error`;
          await this.expectError('division by zero', '22012', sql`select 100 / ${0}::int as v`);
          await this.plain(sql, i);
          await this.series(sql, i);
        }
      }
    } finally {
      await sql.end({ timeout: 5 }).catch(() => {});
    }
  }
}

run(Worker);
