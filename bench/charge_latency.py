#!/usr/bin/env python3
"""Charge round trip: a terminal's charge through posrelay to midtrans-sim, against the same
charge sent straight to the sim (run by bench/charge_latency.sh). Sequential, one in flight,
keep-alive on both paths; prints p50/p99 of each and the overhead."""
import base64, http.client, json, os, socket, sys, time

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]

n = int(os.environ.get("N", "2000"))
run = str(int(time.time()))
# Through posrelay: terminal protocol over TCP.
s = socket.create_connection(("127.0.0.1", int(os.environ["TERMINAL_PORT"])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
# Separate reader and writer: a TextIOWrapper in "rw" mode drops read-ahead on write.
f, w = s.makefile("r"), s.makefile("w")
w.write(json.dumps({"op": "hello", "v": 1, "terminal_id": "T-LAT", "store_id": "S-LAT",
                    "token": os.environ["TOKEN"]}) + "\n"); w.flush()
assert json.loads(f.readline())["op"] == "welcome"
relay = []
for i in range(n):
    oid = f"L{run}-{i}"
    t0 = time.perf_counter()
    w.write(json.dumps({"op": "charge", "id": oid, "order_id": oid, "gross_amount": 1000}) + "\n"); w.flush()
    while True:
        m = json.loads(f.readline())
        if m.get("op") == "event":
            w.write('{"op":"ack","seq":%d}\n' % m["seq"]); w.flush()
        elif m.get("op") in ("result", "error") and m.get("id") == oid:
            if m["op"] != "result":
                sys.exit("charge failed: " + json.dumps(m))
            break
    relay.append(time.perf_counter() - t0)
# Straight to the sim: the same charge body posrelay sends.
sim = http.client.HTTPConnection("127.0.0.1", int(os.environ["SIM_PORT"]))
auth = "Basic " + base64.b64encode((os.environ["MIDTRANS_SIM_SERVER_KEY"] + ":").encode()).decode()
direct = []
for i in range(n):
    body = json.dumps({"payment_type": "qris", "transaction_details": {"order_id": f"D{run}-{i}", "gross_amount": 1000},
                       "qris": {"acquirer": "gopay"}})
    t0 = time.perf_counter()
    sim.request("POST", "/v2/charge", body, {"Authorization": auth, "Content-Type": "application/json",
                                            "Accept": "application/json"})
    r = sim.getresponse(); r.read()
    direct.append(time.perf_counter() - t0)
    assert r.status == 200, r.status
ms = lambda v: round(v * 1000, 3)
print(json.dumps({"charges": n,
                  "via_posrelay_p50_ms": ms(pct(relay, 50)), "via_posrelay_p99_ms": ms(pct(relay, 99)),
                  "direct_p50_ms": ms(pct(direct, 50)), "direct_p99_ms": ms(pct(direct, 99)),
                  "overhead_p50_ms": ms(pct(relay, 50) - pct(direct, 50)),
                  "overhead_p99_ms": ms(pct(relay, 99) - pct(direct, 99))}))
