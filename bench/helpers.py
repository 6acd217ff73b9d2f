#!/usr/bin/env python3
"""Small helpers for bench/run.sh (standard library only).

  helpers.py freeports N             N distinct free TCP ports on 127.0.0.1, one a line
  helpers.py cputicks PID            utime+stime of a process (all its threads), in clock ticks
  helpers.py record OUT ARGS...      parse one pgbench output file into a runs.tsv line
  helpers.py report DIR              the Markdown report from DIR/{meta,workloads,runs}.tsv and mem.jsonl
"""
import json
import os
import re
import socket
import statistics
import sys

RUN_COLUMNS = ["workload", "rep", "target", "clients", "rc", "tps", "tps_kind", "lat_ms", "txns",
               "failed", "aborted", "cpu_ticks", "cpu_us_per_txn"]
TARGET_NAMES = {"direct": "direct (PostgreSQL)", "pgbouncer": "PgBouncer", "pggat": "pggat"}


def freeports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print("\n".join(map(str, ports)))


def cputicks(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    print(int(fields[11]) + int(fields[12]))


def parse_pgbench(text):
    """TPS (the figure without initial connection time when pgbench prints several), average latency,
    transactions processed, failed transactions, and clients aborted by an error."""
    out = {"tps": None, "tps_kind": "", "lat_ms": None, "txns": None, "failed": None, "aborted": 0}
    tps = re.findall(r"^tps = ([0-9.]+) \(([^)]*)\)", text, re.M)
    if tps:
        chosen = next((t for t in tps if t[1].startswith("without initial connection")), tps[0])
        out["tps"], out["tps_kind"] = float(chosen[0]), chosen[1]
    m = re.search(r"^latency average = ([0-9.]+) ms", text, re.M)
    if m:
        out["lat_ms"] = float(m.group(1))
    m = re.search(r"^number of transactions actually processed: (\d+)", text, re.M)
    if m:
        out["txns"] = int(m.group(1))
    m = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    if m:
        out["failed"] = int(m.group(1))
    # "client N script S aborted in command C query Q: ..." (pgbench 15) or
    # "client N aborted in command C (...) of script S; ..." (pgbench 16+), after "pgbench: error: ".
    out["aborted"] = len(re.findall(r"^(?:pgbench: error: )?client \d+ (?:script \d+ )?aborted", text, re.M))
    return out


def record(path, workload, rep, target, clients, rc, cpu_ticks):
    with open(path, errors="replace") as f:
        r = parse_pgbench(f.read())
    cpu_ticks = None if cpu_ticks in ("", "-") else int(cpu_ticks)
    us = None
    if cpu_ticks is not None and r["txns"]:
        us = cpu_ticks * 1e6 / os.sysconf("SC_CLK_TCK") / r["txns"]
    row = {"workload": workload, "rep": rep, "target": target, "clients": clients, "rc": rc,
           "cpu_ticks": cpu_ticks, "cpu_us_per_txn": None if us is None else round(us, 2), **r}
    print("\t".join("-" if row[c] is None else str(row[c]) for c in RUN_COLUMNS))
    summary = f"tps={row['tps']} lat={row['lat_ms']}ms txns={row['txns']} failed={row['failed']}"
    summary += f" aborted={row['aborted']} rc={rc}"
    if us is not None:
        summary += f" pooler_cpu={us:.1f}us/txn"
    print(summary, file=sys.stderr)


def read_tsv(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    rows.append(line.rstrip("\n").split("\t"))
    return rows


def num(v):
    if v in (None, "", "-"):
        return None
    return float(v)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or not b:
        return "—"
    return f"{a / b:.2f}×"


def report(d):
    meta_rows = read_tsv(os.path.join(d, "meta.tsv"))
    meta = dict((r[0], r[1] if len(r) > 1 else "") for r in meta_rows)
    notes = [r[1] for r in meta_rows if r[0] == "note" and len(r) > 1]
    workloads = read_tsv(os.path.join(d, "workloads.tsv"))
    runs = [dict(zip(RUN_COLUMNS, r)) for r in read_tsv(os.path.join(d, "runs.tsv"))]
    mem = []
    if os.path.exists(os.path.join(d, "mem.jsonl")):
        with open(os.path.join(d, "mem.jsonl")) as f:
            mem = [json.loads(line) for line in f if line.strip()]
    targets = meta.get("targets", "").split()
    o = []
    w = o.append
    w(f"# pggat pooler benchmark — {meta.get('date', '')}")
    w("")
    w("## Machine")
    w("")
    for k in ("nproc", "cpu", "kernel", "memory", "os"):
        w(f"- {k}: {meta.get(k, '?')}")
    w("")
    w("## Versions")
    w("")
    for k in ("postgres", "pgbench", "pgbouncer", "pggat"):
        w(f"- {k}: {meta.get(k, '?')}")
    w("")
    w("## Parameters")
    w("")
    for k in ("targets", "duration", "reps", "pool", "scale", "threads", "pggat_mode", "fd_limit",
              "idle_counts", "postgres_settings", "auth"):
        w(f"- {k}: {meta.get(k, '?')}")
    w("")
    w("PostgreSQL runs with fsync=off and synchronous_commit=off: this measures the poolers, not the disk.")
    w("Every target runs on this one machine next to pgbench, PostgreSQL and the other (idle) pooler.")
    w("Runs are interleaved: within each repetition of a workload the targets take turns, and the")
    w("starting target rotates from one repetition to the next. Tables show medians over the repetitions")
    w("pgbench completed (exit status 0); failed transactions and aborted clients are summed over all of them.")
    w("")
    w("## Command")
    w("")
    w("```")
    w(meta.get("command", "?"))
    w("```")
    w("")
    w("## Throughput")
    w("")
    for wl in workloads:
        name, desc, args = wl[0], wl[1], wl[2]
        w(f"### {desc}")
        w("")
        w(f"`{args}`")
        w("")
        w("| target | median TPS | avg latency ms | failed txns | aborted clients | pooler CPU µs/txn "
          "| vs PgBouncer | vs direct |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        # A run pgbench aborted (exit status ≠ 0) reports figures for a partial run: only clean runs
        # count towards the medians; failures and aborts are summed over every run.
        med = {}
        for t in targets:
            clean = [r for r in runs if r["workload"] == name and r["target"] == t and r["rc"] == "0"]
            med[t] = median([num(r["tps"]) for r in clean])
        for t in targets:
            rs = [r for r in runs if r["workload"] == name and r["target"] == t]
            if not rs:
                continue
            clean = [r for r in rs if r["rc"] == "0"]
            lat = median([num(r["lat_ms"]) for r in clean])
            failed = [num(r["failed"]) for r in rs]
            failed_s = fmt(sum(v for v in failed if v is not None), 0) if any(
                v is not None for v in failed) else "—"
            aborted = sum(int(num(r["aborted"]) or 0) for r in rs)
            cpu = median([num(r["cpu_us_per_txn"]) for r in clean])
            bad = len(rs) - len(clean)
            label = TARGET_NAMES.get(t, t)
            if bad:
                label += f" ⚠ pgbench aborted {bad}/{len(rs)} runs (left out of the medians)"
            w(f"| {label} | {fmt(med[t])} | {fmt(lat, 3)} | {failed_s} | {aborted} | {fmt(cpu)} "
              f"| {ratio(med[t], med.get('pgbouncer'))} | {ratio(med[t], med.get('direct'))} |")
        w("")
    w("## Idle client memory")
    w("")
    if mem:
        w("Each pooler idle; N client connections authenticate (SCRAM-SHA-256), reach ReadyForQuery and are held.")
        w("KiB per idle client = (VmRSS with the clients − the pooler's idle baseline, taken before its first")
        w("idle-client step) / clients still connected. The baseline, not the RSS just before each step, because")
        w("allocators keep freed memory: a step after a bigger one would otherwise look free.")
        w("")
        w("| pooler | idle clients | ready / alive | idle baseline KiB | VmRSS just before KiB | VmRSS with KiB "
          "| KiB per idle client | open s | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        baseline = {}
        for m in mem:
            baseline.setdefault(m["target"], m.get("rss_before_kib"))
            base = baseline[m["target"]]
            per = None
            if base is not None and m.get("rss_with_kib") is not None and m.get("alive"):
                per = (m["rss_with_kib"] - base) / m["alive"]
            errs = "; ".join(f"{k} ×{v}" for k, v in m.get("errors", {}).items()) or ""
            partial = " ⚠ partial" if m.get("alive", 0) < m["requested"] else ""
            w(f"| {TARGET_NAMES.get(m['target'], m['target'])} | {m['requested']:,} | "
              f"{m['ready']:,} / {m['alive']:,} | {fmt(base, 0)} | {fmt(m.get('rss_before_kib'), 0)} | "
              f"{fmt(m.get('rss_with_kib'), 0)} | {fmt(per, 2)}{partial} | "
              f"{m.get('open_seconds', '—')} | {errs} |")
    else:
        w("(not measured)")
    w("")
    w("## Raw runs")
    w("")
    w("<details><summary>every pgbench run</summary>")
    w("")
    w("| workload | rep | target | clients | rc | TPS | TPS kind | latency ms | txns | failed | aborted "
      "| pooler CPU ticks | µs/txn |")
    w("|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        w("| " + " | ".join(r[c] for c in RUN_COLUMNS) + " |")
    w("")
    w("</details>")
    w("")
    if notes:
        w("## Notes")
        w("")
        for n in notes:
            w(f"- {n}")
        w("")
    print("\n".join(o))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "freeports":
        freeports(int(argv[2]))
    elif cmd == "cputicks":
        cputicks(int(argv[2]))
    elif cmd == "record":
        record(*argv[2:9])
    elif cmd == "report":
        report(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
