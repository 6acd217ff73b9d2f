// What the Node driver checks share: settings from the environment, where
// the drivers are installed, mismatch reports, each worker's bookkeeping,
// and the runner that prints the summary and sets the exit status. The
// checks themselves stay in node_pg_check.js and postgresjs_check.mjs.
'use strict';
const path = require('path');
const os = require('os');
const util = require('util');

const DRIVERS_DIR = process.env.DRIVERS_DIR || path.join(os.homedir(), '.cache', 'pggat-drivers');
const CONNS = parseInt(process.env.CHECK_CONNS || '20', 10);
const ITERS = parseInt(process.env.CHECK_ITERS || '200', 10);
const TIMEOUT = parseFloat(process.env.CHECK_TIMEOUT || '300');

class CheckFailure extends Error {}

// Exact decimal doubling of a non-negative decimal string (numeric comes back as a string).
function doubleDecimal(s) {
  const [ip, fp = ''] = s.split('.');
  const scale = fp.length;
  const r = (BigInt(ip + fp) * 2n).toString().padStart(scale + 1, '0');
  return scale ? r.slice(0, r.length - scale) + '.' + r.slice(r.length - scale) : r;
}

function describe(got, want) {
  if (Array.isArray(got) && Array.isArray(want) && got.length === want.length) {
    return got.map((g, k) => (util.isDeepStrictEqual(g, want[k]) ? null
      : `[${k}] expected ${util.inspect(want[k])}, got ${util.inspect(g)}`)).filter(Boolean).join('; ');
  }
  return `expected ${util.inspect(want, { depth: 5 })}, got ${util.inspect(got, { depth: 5 })}`;
}

// One simulated client. Subclasses set static `driver` and `appTag` and define `run(dsn)`.
class BaseWorker {
  constructor(wid) {
    this.wid = wid;
    this.checked = 0;
    this.appname = `drv_${this.constructor.appTag}_${wid}`;
    this.ctx = 'connect';
  }

  mismatch(what, detail) {
    return new CheckFailure(`MISMATCH [${this.constructor.driver} worker=${this.wid} ${this.ctx}] ${what}: ${detail}`);
  }

  check(what, got, want) {
    if (!util.isDeepStrictEqual(got, want)) throw this.mismatch(JSON.stringify(what), describe(got, want));
    this.checked++;
  }

  // `promise` must fail with SQLSTATE `sqlstate`; `rowsOf` shows what it returned instead.
  async expectError(what, sqlstate, promise, rowsOf = (res) => res) {
    let res;
    try {
      res = await promise;
    } catch (e) {
      if (e.code === sqlstate) { this.checked++; return; }
      throw this.mismatch(what, `expected SQLSTATE ${sqlstate}, got ${e.code}: ${e.message}`);
    }
    throw this.mismatch(what, `expected SQLSTATE ${sqlstate}, got rows ${JSON.stringify(rowsOf(res))}`);
  }
}

async function main(Worker) {
  const DRIVER = Worker.driver;
  const dsn = process.env.PGGAT_DSN;
  if (!dsn) {
    console.log(`FAIL ${DRIVER}: PGGAT_DSN is not set`);
    return 1;
  }
  const t0 = process.hrtime.bigint();
  const workers = [];
  for (let w = 1; w <= CONNS; w++) workers.push(new Worker(w));
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), TIMEOUT * 1000);
  });
  const results = await Promise.race([Promise.allSettled(workers.map((w) => w.run(dsn))), timeout]);
  clearTimeout(timer);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const checked = workers.reduce((s, w) => s + w.checked, 0);
  if (results === 'timeout') {
    console.log(`FAIL ${DRIVER}: timed out after ${TIMEOUT}s (CHECK_TIMEOUT); ${checked} checks had passed`);
    return 1;
  }
  const failures = [];
  results.forEach((r, k) => { if (r.status === 'rejected') failures.push([workers[k], r.reason]); });
  for (const [w, e] of failures.slice(0, 10)) {
    if (e instanceof CheckFailure) console.log(`FAIL ${e.message}`);
    else console.log(`FAIL [${DRIVER} worker=${w.wid} ${w.ctx}] ${e && e.name}: ${e && (e.message || e.code || e)}`);
  }
  if (failures.length) {
    console.log(`${DRIVER}: FAILED (${failures.length}/${CONNS} connections failed, ${checked} checks passed, ${elapsed.toFixed(2)}s)`);
    return 1;
  }
  console.log(`${DRIVER}: OK ${checked} queries checked over ${CONNS} connections x ${ITERS} iterations in ${elapsed.toFixed(2)}s`);
  return 0;
}

// Runs CONNS workers against $PGGAT_DSN and exits 0 only if every check passed.
function run(Worker) {
  main(Worker).then((code) => process.exit(code), (e) => {
    console.log(`FAIL ${Worker.driver}: unexpected ${e && e.stack}`);
    process.exit(1);
  });
}

module.exports = { DRIVERS_DIR, ITERS, CheckFailure, doubleDecimal, BaseWorker, run };
