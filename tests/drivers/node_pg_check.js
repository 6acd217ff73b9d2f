#!/usr/bin/env node
// node-postgres (pg) driver check for a transaction-pooling PostgreSQL pooler.
//
// Uses named queries ({name, text, values}): node-postgres sends Parse for a
// named statement only the FIRST time it is used on a client and afterwards
// just Bind/Execute against that name, so a pooler that moves the client to a
// different server connection must make the statement exist there.  Runs
// concurrent clients with explicit BEGIN/COMMIT and ROLLBACK, errors inside
// and outside transactions, and session-level SETs.
//
// Env: PGGAT_DSN (required)  postgres://user:password@127.0.0.1:PORT/dbname
//      CHECK_CONNS (20), CHECK_ITERS (200), CHECK_TIMEOUT seconds (300)
//      DRIVERS_DIR (default ~/.cache/pggat-drivers; `pg` is loaded from
//      $DRIVERS_DIR/node/node_modules, see setup.sh)
// Exit 0 only if every check passed.
'use strict';
const path = require('path');
const { createRequire } = require('module');
const { DRIVERS_DIR, ITERS, doubleDecimal, BaseWorker, run } = require('./checklib.cjs');

let pg;
try {
  pg = createRequire(path.join(DRIVERS_DIR, 'node', 'package.json'))('pg');
} catch (e) {
  console.log(`FAIL node-pg: cannot load 'pg' from ${DRIVERS_DIR}/node (run tests/drivers/setup.sh): ${e.message}`);
  process.exit(1);
}

const Q = {
  double: { name: 'q_double', text: 'select $1::int * 2 as v' },
  concat: { name: 'q_concat', text: "select $1::text || 'x' as v" },
  series: { name: 'q_series', text: "select g, g * $2::int as m, repeat('y', g) as r from generate_series(1, $1::int) g order by g" },
  typed: {
    name: 'q_typed',
    text: "select $1::int4 + 1 as c0, $2::int8 * 3 as c1, $3::text || '!' as c2, $4::bytea || '\\x00ff'::bytea as c3," +
      " $5::numeric * 2 as c4, $6::timestamptz + interval '24 hours' as c5," +
      " $7::jsonb || jsonb_build_object('w', $1::int4) as c6, $8::float8 / 2 as c7, not $9::bool as c8," +
      ' $10::text is null as c9, $10::text as c10',
  },
  div: { name: 'q_div', text: 'select 100 / $1::int as v' },
  triple: { name: 'q_triple', text: 'select $1::int * 3 as a, $2::text as b' },
  appname: { name: 'q_appname', text: "select current_setting('application_name') as v" },
  stmtTimeout: { name: 'q_stmt_timeout', text: "select current_setting('statement_timeout') as v" },
  showTimeout: { name: 'q_show_timeout', text: 'SHOW statement_timeout' },
};

class Worker extends BaseWorker {
  static driver = 'node-pg';
  static appTag = 'node_pg';

  async q(client, stmt, values) {
    return client.query({ name: stmt.name, text: stmt.text, values });
  }

  async val(client, stmt, values) {
    const res = await this.q(client, stmt, values);
    return Object.values(res.rows[0])[0];
  }

  async expectError(what, sqlstate, client, stmt, values) {
    return super.expectError(what, sqlstate, this.q(client, stmt, values), (res) => res.rows);
  }

  async plain(c, i) {
    this.check(Q.double.text, await this.val(c, Q.double, [i]), i * 2);
    this.check(Q.concat.text, await this.val(c, Q.concat, [`w${this.wid}-${i}`]), `w${this.wid}-${i}x`);
  }

  async triple(c, i, tag) {
    const r = (await this.q(c, Q.triple, [i, tag])).rows[0];
    this.check(Q.triple.text, [r.a, r.b], [i * 3, tag]);
  }

  async series(c, i) {
    const n = (i % 7) + 1;
    const rows = (await this.q(c, Q.series, [n, this.wid])).rows.map((r) => [r.g, r.m, r.r]);
    const want = [];
    for (let g = 1; g <= n; g++) want.push([g, g * this.wid, 'y'.repeat(g)]);
    this.check(Q.series.text, rows, want);
  }

  async typed(c, i) {
    const ts = new Date(Date.UTC(2024, 1, 29, 4, 30, 15, 123) + i * 1000);
    const num = `12345678901234567890.${String(i).padStart(6, '0')}123`;
    const blob = Buffer.from([0, 1, 2, i % 256, 255, 0]);
    const doc = { k: [1, 'two', null, true], i, nested: { s: `w${this.wid}` } };
    const big = (2n ** 40n + BigInt(i));
    const r = (await this.q(c, Q.typed, [i, big.toString(), `t${i}`, blob, num, ts, JSON.stringify(doc), i / 4, i % 2 === 0, null])).rows[0];
    const got = [r.c0, r.c1, r.c2, r.c3, r.c4, r.c5, r.c6, r.c7, r.c8, r.c9, r.c10];
    const want = [
      i + 1, (big * 3n).toString(), `t${i}!`, Buffer.concat([blob, Buffer.from([0, 255])]), doubleDecimal(num),
      new Date(ts.getTime() + 24 * 3600 * 1000), { ...doc, w: i }, i / 8, !(i % 2 === 0), true, null,
    ];
    this.check('typed params', got, want);
  }

  async settings(c, i) {
    this.check(Q.appname.text, await this.val(c, Q.appname), this.appname);
    this.check(Q.stmtTimeout.text, await this.val(c, Q.stmtTimeout), '7s');
    if (i % 20 === 0) this.check(Q.showTimeout.text, await this.val(c, Q.showTimeout), '7s');
  }

  async run(dsn) {
    const c = new pg.Client({ connectionString: dsn, connectionTimeoutMillis: 30000 });
    c.on('error', () => {}); // surfaced through the failing query instead
    this.client = c;
    await c.connect();
    try {
      await c.query(`SET application_name = '${this.appname}'`);
      await c.query("SET statement_timeout = '7s'");
      for (let i = 0; i < ITERS; i++) {
        this.ctx = `iter=${i} autocommit`;
        await this.plain(c, i);
        await this.settings(c, i);
        await this.triple(c, i, 'a');

        this.ctx = `iter=${i} commit-tx`;
        await c.query('BEGIN');
        await this.plain(c, i);
        await this.series(c, i);
        await this.typed(c, i);
        await this.triple(c, i, 'b');
        await this.settings(c, i);
        await c.query('COMMIT');

        if (i % 5 === 1) { // BEGIN ... ROLLBACK (with SET LOCAL that must not survive)
          this.ctx = `iter=${i} rollback-tx`;
          await c.query('BEGIN');
          await c.query("SET LOCAL statement_timeout = '3s'");
          this.check('SET LOCAL visible', await this.val(c, Q.stmtTimeout), '3s');
          await this.plain(c, i);
          await this.triple(c, i, 'c');
          await c.query('ROLLBACK');
          this.ctx = `iter=${i} after-rollback`;
          this.check('statement_timeout after rollback', await this.val(c, Q.stmtTimeout), '7s');
        }

        if (i % 5 === 3) { // error inside a transaction, rollback, keep using statements
          this.ctx = `iter=${i} error-tx`;
          await c.query('BEGIN');
          this.check(Q.div.text, await this.val(c, Q.div, [4]), 25);
          await this.expectError('division by zero', '22012', c, Q.div, [0]);
          await this.expectError('query in aborted tx', '25P02', c, Q.double, [i]);
          await this.expectError('prepared in aborted tx', '25P02', c, Q.triple, [i, 'd']);
          await c.query('ROLLBACK');
          this.ctx = `iter=${i} after-error-rollback`;
          await this.plain(c, i);
          this.check(Q.div.text, await this.val(c, Q.div, [5]), 20);
          await this.triple(c, i, 'e');
          await this.settings(c, i);
        }

        if (i % 10 === 7) { // error outside a transaction
          this.ctx = `iter=${i} autocommit-error`;
          await this.expectError('division by zero', '22012', c, Q.div, [0]);
          await this.plain(c, i);
          await this.series(c, i);
        }
      }
    } finally {
      await c.end().catch(() => {});
    }
  }
}

run(Worker);
