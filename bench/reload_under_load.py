#!/usr/bin/env python3
"""SIGHUP under load: one run of bench/reload_under_load.sh (which starts posrelay and the
terminal load tool, and passes their ports and pids here).

Sends signed settlement notifications at RATE/s (SENDERS keep-alive connections, each paced
on its own clock) for SECONDS, sends posrelay SIGHUP every INTERVAL seconds, and adds merchant
M-NEW to the merchant keys file before the RELOAD_AT-th reload. A notification of M-NEW signed
with its key is sent before that reload (must be 401) and after it (must be 200).
Prints one JSON line with the figures."""
import hashlib
import http.client
import json
import os
import signal
import sys
import threading
import time

port, pid, keys_file, server_key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
secs, rate, interval = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
reload_at, tag = int(sys.argv[8]), sys.argv[9]
senders = 4
new_key = "SB-Mid-server-NEWMERCHANT-" + tag


def body(order, key, merchant="G000000001"):
    gross, code = "10000.00", "200"
    sig = hashlib.sha512((order + code + gross + key).encode()).hexdigest()
    return json.dumps({
        "transaction_time": "2026-11-24 10:00:00", "transaction_status": "settlement",
        "transaction_id": "8b82e549-2a48-47a9-8cb1-fb36060b88f3", "status_code": code,
        "status_message": "midtrans payment notification", "signature_key": sig,
        "payment_type": "qris", "order_id": order, "merchant_id": merchant,
        "gross_amount": gross, "fraud_status": "accept", "currency": "IDR"})


def post_once(b):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", "/v1/midtrans/notifications", b, {"Content-Type": "application/json"})
        return c.getresponse().status
    finally:
        c.close()


def metric(series):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return 0.0


stats = {"sent": 0, "non_2xx": 0, "conn_errors": 0, "max_ms": 0.0}
lock = threading.Lock()
stop_at = time.monotonic() + secs


def sender(n):
    conn = None
    period = senders / rate
    next_t = time.monotonic() + n * period / senders
    i = 0
    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        if next_t > now:
            time.sleep(next_t - now)
        next_t += period
        order = f"R{tag}-{n}-{i}"
        i += 1
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/v1/midtrans/notifications", body(order, server_key),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            ok = 200 <= r.status < 300
            err = False
        except (OSError, http.client.HTTPException):
            ok, err = False, True
            conn = None
        ms = (time.monotonic() - t0) * 1000
        with lock:
            stats["sent"] += 1
            stats["non_2xx"] += 0 if ok or err else 1
            stats["conn_errors"] += 1 if err else 0
            stats["max_ms"] = max(stats["max_ms"], ms)


ok0 = metric('posrelay_config_reloads_total{outcome="success"}')
fail0 = metric('posrelay_config_reloads_total{outcome="failure"}')
threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
for t in threads:
    t.start()
new_before = new_after = None
start = time.monotonic()
for k in range(1, int(secs / interval) + 1):
    while time.monotonic() < start + k * interval - 0.05:
        time.sleep(0.01)
    if k == reload_at:
        new_before = post_once(body(f"RNEW{tag}-before", new_key, "M-NEW"))
        with open(keys_file + ".tmp", "w") as f:
            f.write(open(keys_file).read() + f"M-NEW {new_key}\n")
        os.rename(keys_file + ".tmp", keys_file)
    done = metric('posrelay_config_reloads_total{outcome="success"}')
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while metric('posrelay_config_reloads_total{outcome="success"}') <= done and time.monotonic() < deadline:
        time.sleep(0.01)
    if k == reload_at:
        new_after = post_once(body(f"RNEW{tag}-after", new_key, "M-NEW"))
for t in threads:
    t.join()
stats["reloads_success"] = metric('posrelay_config_reloads_total{outcome="success"}') - ok0
stats["reloads_failure"] = metric('posrelay_config_reloads_total{outcome="failure"}') - fail0
stats["new_merchant_before"] = new_before
stats["new_merchant_after"] = new_after
stats["max_ms"] = round(stats["max_ms"], 1)
print(json.dumps(stats))
