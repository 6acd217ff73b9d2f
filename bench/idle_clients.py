#!/usr/bin/env python3
"""Open N idle, authenticated PostgreSQL client connections and measure a pooler's RSS.

Speaks just enough of the v3 protocol: StartupMessage, then cleartext, MD5 or SCRAM-SHA-256 as the
server asks, waits for ReadyForQuery and holds the socket. With --pid, prints one JSON line:
the pooler's VmRSS before and with the connections held, and KiB per idle client.
Standard library only.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import resource
import struct
import sys
import time


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def msg(tag, payload):
    return tag + struct.pack("!I", len(payload) + 4) + payload


_salted_cache = {}


def salted_password(password, salt, iterations):
    key = (salt, iterations)
    if key not in _salted_cache:  # the verifier's salt is fixed: PBKDF2 once, not per connection
        _salted_cache[key] = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return _salted_cache[key]


class Scram:
    """Client side of SCRAM-SHA-256 (RFC 5802/7677), no channel binding."""

    def __init__(self, password):
        self.password = password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise RuntimeError("SCRAM: server nonce does not extend ours")
        salted = salted_password(self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.expected_server_sig = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_final(self, server_final):
        attrs = dict(kv.split("=", 1) for kv in server_final.decode().split(","))
        if "v" not in attrs or base64.b64decode(attrs["v"]) != self.expected_server_sig:
            raise RuntimeError(f"SCRAM: bad server signature: {server_final!r}")


async def read_msg(reader):
    head = await reader.readexactly(5)
    tag, length = head[:1], struct.unpack("!I", head[1:])[0]
    return tag, await reader.readexactly(length - 4)


def error_text(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return f"{fields.get('S', 'ERROR')} {fields.get('C', '')}: {fields.get('M', '')}"


async def connect(host, port, user, password, database):
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 16)
    params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                      for k, v in (("user", user), ("database", database)))
    body = struct.pack("!I", 196608) + params + b"\0"
    writer.write(struct.pack("!I", len(body) + 4) + body)
    await writer.drain()
    scram = None
    while True:
        tag, payload = await read_msg(reader)
        if tag == b"R":
            code = struct.unpack("!I", payload[:4])[0]
            if code == 0:
                pass
            elif code == 3:  # cleartext
                writer.write(msg(b"p", password.encode() + b"\0"))
            elif code == 5:  # md5
                inner = hashlib.md5((password + user).encode()).hexdigest().encode()
                outer = "md5" + hashlib.md5(inner + payload[4:8]).hexdigest()
                writer.write(msg(b"p", outer.encode() + b"\0"))
            elif code == 10:  # SASL
                mechs = payload[4:].split(b"\0")
                if b"SCRAM-SHA-256" not in mechs:
                    raise RuntimeError(f"no usable SASL mechanism in {mechs}")
                scram = Scram(password)
                first = scram.client_first()
                writer.write(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
            elif code == 11:  # SASLContinue
                writer.write(msg(b"p", scram.client_final(payload[4:])))
            elif code == 12:  # SASLFinal
                scram.verify_final(payload[4:])
            else:
                raise RuntimeError(f"unsupported auth request {code}")
            await writer.drain()
        elif tag == b"E":
            raise RuntimeError(error_text(payload))
        elif tag == b"Z":
            return reader, writer
        # 'S' ParameterStatus, 'K' BackendKeyData, 'N' NoticeResponse: ignore


async def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", default=os.environ.get("PGPASSWORD", ""))
    ap.add_argument("--database", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--pid", type=int, help="pooler process whose RSS to measure")
    ap.add_argument("--label", default="", help="copied into the JSON output as \"target\"")
    ap.add_argument("--concurrency", type=int, default=64, help="handshakes in flight at once")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait before measuring")
    ap.add_argument("--timeout", type=float, help="give up opening after this long (60 s + 20 ms a client)")
    ap.add_argument("--stall", type=float, default=30.0,
                    help="give up opening when no connection completes or fails for this long")
    a = ap.parse_args()
    if a.timeout is None:
        a.timeout = 60 + 0.02 * a.count

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        soft = min(want, hard)
    if soft < want:
        print(f"warning: fd limit {soft} < {want}; some connections will fail", file=sys.stderr)

    await asyncio.sleep(a.settle)  # let the pooler finish closing whatever came before
    rss_before = vmrss_kib(a.pid) if a.pid else None
    sem = asyncio.Semaphore(a.concurrency)
    conns, errors = [], {}

    async def one():
        async with sem:
            try:
                conns.append(await connect(a.host, a.port, a.user, a.password, a.database))
            except Exception as e:  # noqa: BLE001 - tally every failure kind
                # Numbers (timings, ports) vary per connection: group errors without them.
                key = re.sub(r"\d+(\.\d+)?", "N", f"{type(e).__name__}: {e}")[:200]
                errors[key] = errors.get(key, 0) + 1

    t0 = time.monotonic()
    pending = {asyncio.create_task(one()) for _ in range(a.count)}
    last, last_progress = 0, t0
    while pending:
        _, pending = await asyncio.wait(pending, timeout=1.0)
        now, progress = time.monotonic(), len(conns) + sum(errors.values())
        if progress != last:
            last, last_progress = progress, now
        if now - t0 > a.timeout or now - last_progress > a.stall:
            break
    for t in pending:
        t.cancel()
    if pending:
        errors[f"gave up waiting (no progress for {a.stall:g} s or over {a.timeout:g} s)"] = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    open_s = time.monotonic() - t0
    await asyncio.sleep(a.settle)

    # A connection the pooler closed meanwhile has EOF or an unread message buffered.
    alive = sum(1 for r, _ in conns if not r.at_eof() and not getattr(r, "_buffer", b""))
    rss_with = vmrss_kib(a.pid) if a.pid else None

    for _, w in conns:
        w.write(msg(b"X", b""))  # Terminate, so the pooler logs no unexpected EOF
        w.close()
    await asyncio.gather(*(w.wait_closed() for _, w in conns), return_exceptions=True)

    out = {
        "target": a.label,
        "requested": a.count,
        "ready": len(conns),
        "alive": alive,
        "open_seconds": round(open_s, 2),
        "errors": errors,
        "rss_before_kib": rss_before,
        "rss_with_kib": rss_with,
    }
    if a.pid and alive:
        out["kib_per_client"] = round((rss_with - rss_before) / alive, 2)
    print(json.dumps(out))
    return 0 if alive == a.count else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
