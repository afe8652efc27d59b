#!/usr/bin/env python3
"""Paid event latency (run by bench/paid_latency.sh): a terminal charges N orders through
posrelay, then each is paid at midtrans-sim (POST /sim/orders/ID/pay), one at a time; the sim
notifies posrelay and the time from the pay call to the terminal's paid event is measured.
Prints p50/p99 and the sim's GET status calls per paid order."""
import http.client, json, os, socket, sys, time

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]

n = int(os.environ.get("N", "300"))
run = str(int(time.time() * 1000))
s = socket.create_connection(("127.0.0.1", int(os.environ["TERMINAL_PORT"])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f, w = s.makefile("r"), s.makefile("w")
w.write(json.dumps({"op": "hello", "v": 1, "terminal_id": "T-PAID", "store_id": "S-PAID",
                    "token": os.environ["TOKEN"]}) + "\n"); w.flush()
assert json.loads(f.readline())["op"] == "welcome"

def frames():
    while True:
        line = f.readline()
        if not line:
            sys.exit("posrelay closed the terminal connection")
        m = json.loads(line)
        if m.get("op") == "event":
            w.write('{"op":"ack","seq":%d}\n' % m["seq"]); w.flush()
        elif m.get("op") == "ping":
            w.write('{"op":"pong"}\n'); w.flush()
        yield m

ids = [f"PL{run}-{i}" for i in range(n)]
for oid in ids:
    w.write(json.dumps({"op": "charge", "id": oid, "order_id": oid, "gross_amount": 1000}) + "\n"); w.flush()
    for m in frames():
        if m.get("op") == "error" and m.get("id") == oid:
            sys.exit("charge failed: " + json.dumps(m))
        if m.get("op") == "result" and m.get("id") == oid:
            break
sim = http.client.HTTPConnection("127.0.0.1", int(os.environ["SIM_PORT"]))
def sim_call(method, path):
    sim.request(method, path, "" if method == "POST" else None)
    r = sim.getresponse(); body = r.read()
    assert r.status == 200, (path, r.status, body)
    return json.loads(body)
calls_before = sim_call("GET", "/sim/stats")["status_calls"]
lat = []
for oid in ids:
    t0 = time.perf_counter()
    sim_call("POST", f"/sim/orders/{oid}/pay")
    for m in frames():
        if m.get("op") == "event" and m.get("order_id") == oid and m.get("paid"):
            break
    lat.append(time.perf_counter() - t0)
calls = sim_call("GET", "/sim/stats")["status_calls"] - calls_before
ms = lambda v: round(v * 1000, 3)
print(json.dumps({"confirm_paid": os.environ.get("CONFIRM", "?"), "paid_orders": n,
                  "pay_to_paid_event_p50_ms": ms(pct(lat, 50)), "p99_ms": ms(pct(lat, 99)),
                  "max_ms": ms(max(lat)), "status_calls_per_paid_order": round(calls / n, 3)}))
