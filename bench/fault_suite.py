#!/usr/bin/env python3
"""The client side of bench/fault_suite.sh (which starts Redis, posrelay and the terminal load
tools and injects the faults). Three steps, each one command:

  orders   WORK TAG N TERMINALS_PER_NODE STORES_PER_NODE
           writes WORK/orders.jsonl: N orders, each routed to a random terminal of a random
           node (ids as posrelay-terminal-load makes them: T-n<node>-<i>, store
           S-<node * STORES_PER_NODE + i % STORES_PER_NODE>).
  register WORK PORT0 PORT1
           POST /v1/orders for every order (operator token from POSRELAY_OPERATOR_TOKEN),
           half to each node; fails unless every answer is 201 or 200.
  stream   WORK RATE N TAIL PORT0 PORT1
           one signed settlement notification per order (server key from
           POSRELAY_SERVER_KEY, never argv), paced at RATE/s and alternating between the nodes,
           N orders at least, then on until TAIL were sent after the fault (class Stream);
           a non-200 answer (or no answer) is retried 1 s later on the other node, up to 10
           attempts, as Midtrans retries. Touches WORK/sent-25, -50, -75 when that share of the orders
           was sent once; an order first sent after WORK/fault-done exists counts as after the fault.
           Writes WORK/sent.jsonl: order, codes (every answer; 0 = no answer), after_fault.
  bodies   OUT N PREFIX DUP
           N signed bodies of fresh orders for wrk (bench/ingest_cluster_compare.sh).
  count    WORK PORT0 FAULT ACKS
           GET /v1/orders/{id} of every order, reads the load tools' --events-out files
           (WORK/events-*.jsonl) and summaries (WORK/load-*.json), prints one JSON line.
"""
import hashlib
import heapq
import http.client
import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

MAX_ATTEMPTS = 10
RETRY_S = 1.0
WORKERS = 64


def cmd_orders(work, tag, n, per_node, stores_per_node):
    n, per_node, stores_per_node = int(n), int(per_node), int(stores_per_node)
    rnd = random.Random(tag)
    with open(os.path.join(work, "orders.jsonl"), "w") as f:
        for i in range(n):
            node, k = rnd.randrange(2), rnd.randrange(per_node)
            f.write(json.dumps({"order": f"F{tag}-{i:06d}", "node": node, "t": f"T-n{node}-{k}",
                                "s": f"S-{node * stores_per_node + k % stores_per_node}"}) + "\n")


def load_orders(work):
    return [json.loads(line) for line in open(os.path.join(work, "orders.jsonl"))]


class Conns(threading.local):
    """One keep-alive connection per node per thread."""
    def get(self, port):
        if not hasattr(self, "c"):
            self.c = {}
        if port not in self.c:
            self.c[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        return self.c[port]

    def drop(self, port):
        c = self.c.pop(port, None)
        if c:
            c.close()


CONNS = Conns()


def request(port, method, path, body=None, headers=None):
    """(status, body); status 0 when there was no answer."""
    for attempt in range(2):  # a keep-alive connection the server closed: once more, fresh
        try:
            c = CONNS.get(port)
            c.request(method, path, body, headers or {})
            r = c.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            CONNS.drop(port)
            if attempt == 1:
                return 0, b""
    return 0, b""


def cmd_register(work, port0, port1):
    ports = [int(port0), int(port1)]
    auth = {"Authorization": "Bearer " + os.environ["POSRELAY_OPERATOR_TOKEN"],
            "Content-Type": "application/json"}
    orders = load_orders(work)

    def one(i_o):
        i, o = i_o
        body = json.dumps({"order_id": o["order"], "gross_amount": "10000", "terminal_id": o["t"],
                           "store_id": o["s"]})
        status, text = request(ports[i % 2], "POST", "/v1/orders", body, auth)
        return status, text
    with ThreadPoolExecutor(8) as ex:
        bad = [(s, t) for s, t in ex.map(one, enumerate(orders)) if s not in (200, 201)]
    if bad:
        print(f"register: {len(bad)} of {len(orders)} refused, e.g. {bad[0][0]} {bad[0][1][:200]!r}",
              file=sys.stderr)
        sys.exit(1)


def notification(order, key):
    gross, code = "10000.00", "200"
    sig = hashlib.sha512((order + code + gross + key).encode()).hexdigest()
    return json.dumps({
        "transaction_time": "2026-11-24 10:00:00", "transaction_status": "settlement",
        "transaction_id": hashlib.md5(order.encode()).hexdigest(), "status_code": code,
        "status_message": "midtrans payment notification", "signature_key": sig,
        "payment_type": "qris", "order_id": order, "merchant_id": "G000000001",
        "gross_amount": gross, "fraud_status": "accept", "currency": "IDR"}, separators=(",", ":"))


class Stream:
    """First sends paced at RATE/s (order i due at start + i / RATE), retries 1 s after a
    non-200. At least N orders; past N, it goes on until TAIL orders were first sent after
    WORK/fault-done appeared (or WORK/stop appears, or the orders run out), so that the
    stream outlasts a fault however long it takes. Bounded: len(orders) x MAX_ATTEMPTS."""

    def __init__(self, work, orders, rate, n, tail):
        self.work, self.orders, self.rate, self.n, self.tail = work, orders, rate, n, tail
        self.start = time.monotonic() + 0.2
        self.next = 0          # the next order to send first
        self.retries = []      # heap of (due, order index, attempt)
        self.in_flight = 0
        self.after = 0         # first sends after the fault was over
        self.cv = threading.Condition()
        self.results = []

    def _more(self):
        if self.next >= len(self.orders):
            return False
        if self.next < self.n:
            return True
        if os.path.exists(os.path.join(self.work, "stop")):
            return False
        return self.after < self.tail

    def take(self):
        """(order index, attempt) to send now, or None when the stream is over."""
        with self.cv:
            while True:
                now = time.monotonic()
                more = self._more()
                first_due = self.start + self.next / self.rate if more else None
                if self.retries and self.retries[0][0] <= now and (first_due is None or self.retries[0][0] <= first_due):
                    _, i, attempt = heapq.heappop(self.retries)
                    self.in_flight += 1
                    return i, attempt
                if first_due is not None and first_due <= now:
                    i = self.next
                    self.next += 1
                    self.in_flight += 1
                    after = os.path.exists(os.path.join(self.work, "fault-done"))
                    self.after += after
                    self.results.append({"order": self.orders[i]["order"], "codes": [], "after_fault": after})
                    for pct in (25, 50, 75):
                        if self.next == self.n * pct // 100:
                            open(os.path.join(self.work, f"sent-{pct}"), "w").close()
                    return i, 0
                if first_due is None and not self.retries and self.in_flight == 0:
                    self.cv.notify_all()
                    return None
                waits = [0.05] + ([first_due - now] if first_due else []) + \
                    ([self.retries[0][0] - now] if self.retries else [])
                self.cv.wait(max(0.0, min(waits)))

    def done(self, i, attempt, status):
        with self.cv:
            self.in_flight -= 1
            self.results[i]["codes"].append(status)
            if status != 200 and attempt + 1 < MAX_ATTEMPTS:
                heapq.heappush(self.retries, (time.monotonic() + RETRY_S, i, attempt + 1))
            self.cv.notify()


def cmd_stream(work, rate, n, tail, port0, port1):
    ports = [int(port0), int(port1)]
    key = os.environ["POSRELAY_SERVER_KEY"]
    st = Stream(work, load_orders(work), float(rate), int(n), int(tail))

    def worker():
        while (job := st.take()) is not None:
            i, attempt = job
            status, _ = request(ports[(i + attempt) % 2], "POST", "/v1/midtrans/notifications",
                                notification(st.orders[i]["order"], key), {"Content-Type": "application/json"})
            st.done(i, attempt, status)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(os.path.join(work, "sent.jsonl"), "w") as f:
        for r in st.results:
            f.write(json.dumps(r) + "\n")


def read_jsonl(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by the load tool's exit
    return out


def tally(orders, sent, stored, events, told):
    """The figures of one run. orders: [{order, t}]; sent: {order: {codes, after_fault}};
    stored: {order: transaction_status or None}; events: [{t, epoch, seq, eid, order, status}];
    told: {terminal: number of resyncs told}."""
    delivered = set()
    eids = {}
    for e in events:
        eids.setdefault((e["t"], e["epoch"], e["seq"]), set()).add(e["eid"])
    route = {o["order"]: o["t"] for o in orders}
    for e in events:
        if e.get("status") == "settlement" and route.get(e["order"]) == e["t"]:
            delivered.add(e["order"])
    codes = [c for s in sent.values() for c in s["codes"]]
    ok = {o for o, s in sent.items() if 200 in s["codes"]}
    is_stored = {o for o, st in stored.items() if st == "settlement"}
    lost_not_stored = ok - is_stored
    undelivered = is_stored - delivered
    told_undelivered = {o for o in undelivered if told.get(route[o], 0) > 0}
    lost_not_delivered = undelivered - told_undelivered
    lost = lost_not_stored | lost_not_delivered
    after = {o for o, s in sent.items() if s["after_fault"]}
    # Terminals that were shown an event Redis then lost (a lost epoch) and never told resync.
    shown_lost = {route[o] for o in delivered - is_stored}
    return {
        "notifications": len(sent), "answered_200": len(ok),
        "answers_200": codes.count(200), "answers_503": codes.count(503),
        "answers_other": sum(1 for c in codes if c not in (200, 503)),
        "never_200": len(sent) - len(ok), "stored": len(is_stored), "delivered": len(delivered & is_stored),
        "delivered_not_stored": len(delivered - is_stored),
        "lost": len(lost), "lost_not_stored": len(lost_not_stored),
        "lost_not_delivered": len(lost_not_delivered),
        "undelivered_resync_told": len(told_undelivered),
        "lost_after_fault": len(lost & after), "sent_after_fault": len(after),
        "dup_seq": sum(1 for v in eids.values() if len(v) > 1),
        "terminals_told_resync": sum(1 for v in told.values() if v > 0),
        "lost_epoch_not_told": sum(1 for t in shown_lost if told.get(t, 0) == 0),
    }


def cmd_count(work, port0, fault, acks):
    port0 = int(port0)
    auth = {"Authorization": "Bearer " + os.environ["POSRELAY_OPERATOR_TOKEN"]}
    orders = load_orders(work)
    sent = {r["order"]: r for r in read_jsonl(os.path.join(work, "sent.jsonl"))}

    def get(o):
        status, body = request(port0, "GET", f"/v1/orders/{o['order']}", None, auth)
        if status != 200:
            return o["order"], None
        return o["order"], json.loads(body).get("transaction_status")
    with ThreadPoolExecutor(8) as ex:
        stored = dict(ex.map(get, [o for o in orders if o["order"] in sent]))
    events, told = [], {}
    summaries = []
    for name in sorted(os.listdir(work)):
        if name.startswith("events-"):
            for e in read_jsonl(os.path.join(work, name)):
                if "told" in e:
                    told[e["t"]] = told.get(e["t"], 0) + 1
                else:
                    events.append(e)
        elif name.startswith("load-") and name.endswith(".json"):
            lines = open(os.path.join(work, name)).read().strip().splitlines()
            if lines:
                summaries.append(json.loads(lines[-1]))
    out = {"fault": fault, "acks": int(acks), "status": "measured"}
    out.update(tally(orders, sent, stored, events, told))
    out["resyncs"] = sum(s.get("resyncs", 0) for s in summaries)
    out["terminals"] = sum(s.get("terminals", 0) for s in summaries)
    out["load_disconnects"] = sum(s.get("disconnects", 0) for s in summaries)
    write_lost(work, orders, sent, stored, events, told)
    print(json.dumps(out))


def write_lost(work, orders, sent, stored, events, told):
    """WORK/lost.jsonl: each order answered 200 and not both stored and delivered, with what
    is known of it (for reading a failed run; not part of the figures)."""
    route = {o["order"]: o for o in orders}
    got = {}
    for e in events:
        got.setdefault(e["order"], []).append(e)
    with open(os.path.join(work, "lost.jsonl"), "w") as f:
        for o, r in sent.items():
            if 200 not in r["codes"]:
                continue
            ev = got.get(o, [])
            if stored.get(o) == "settlement" and any(e["t"] == route[o]["t"] for e in ev):
                continue
            f.write(json.dumps({"order": o, "terminal": route[o]["t"], "store": route[o]["s"],
                                "node": route[o]["node"], "codes": r["codes"], "after_fault": r["after_fault"],
                                "stored": stored.get(o), "events": ev, "terminal_told": told.get(route[o]["t"], 0)})
                    + "\n")


def cmd_bodies(out, n, prefix, dup):
    """N signed notification bodies for fresh orders PREFIX<i> (key from POSRELAY_SERVER_KEY),
    the mix of ../shared/bench/gen_notifications.py: 4 in 5 settlement, 1 in 5 expire, a
    share DUP of bodies repeating the previous one (Midtrans's retries)."""
    key = os.environ["POSRELAY_SERVER_KEY"]
    n, dup = int(n), float(dup)
    rnd = random.Random(prefix)
    prev = None
    with open(out, "w") as f:
        for i in range(n):
            if prev and rnd.random() < dup:
                f.write(prev + "\n")
                continue
            order = f"{prefix}{i:09d}"
            status, code = ("settlement", "200") if i % 5 else ("expire", "407")
            gross = f"{rnd.randint(1, 5000) * 1000}.00"
            sig = hashlib.sha512((order + code + gross + key).encode()).hexdigest()
            prev = json.dumps({
                "transaction_time": "2026-11-24 10:00:00", "transaction_status": status,
                "transaction_id": f"{i:08x}-2a48-47a9-8cb1-fb36060b88f3",
                "status_message": "midtrans payment notification", "status_code": code,
                "signature_key": sig, "settlement_time": "2026-11-24 10:00:09",
                "payment_type": "gopay", "order_id": order, "merchant_id": "G000000001",
                "gross_amount": gross, "fraud_status": "accept", "currency": "IDR"},
                separators=(",", ":"))
            f.write(prev + "\n")


# Which figures must hold, per fault and setting (see bench/fault_suite.sh's header).
MUST_NOT_LOSE = {("cluster-kill", 1), ("sentinel-kill", 1), ("cluster-reshard", 0), ("cluster-reshard", 1)}


def failures(r):
    """The checks one result line fails (an empty list when it passes)."""
    if r.get("status") != "measured":
        what = "the feature is missing from this build" if r.get("status") == "unsupported" else "the run failed"
        return [f"{what}: {r.get('reason', '?')}"]
    out = []
    if not r.get("nodes_alive", True):
        out.append("a posrelay node died during the run (its log tail is above)")
    if not r.get("fault_injected"):
        out.append("the fault was not injected (see the log above)")
    if r["dup_seq"]:
        out.append(f"dup_seq {r['dup_seq']}: one (terminal, epoch, seq) carried two events")
    if r.get("lost_epoch_not_told"):
        out.append(f"lost_epoch_not_told {r['lost_epoch_not_told']}: terminals shown an event Redis lost "
                   "were never told to resync")
    if r["lost_after_fault"]:
        out.append(f"lost_after_fault {r['lost_after_fault']}: an order notified after the fault is lost")
    if (r["fault"], r["acks"]) in MUST_NOT_LOSE and r["lost"]:
        out.append(f"lost {r['lost']} ({r['lost_not_stored']} answered 200 and not stored, "
                   f"{r['lost_not_delivered']} stored and never delivered)")
    return out


def cmd_verdict(path):
    bad = 0
    for line in open(path):
        r = json.loads(line)
        f = failures(r)
        name = f"{r['fault']} acks={r['acks']}"
        if f:
            bad += 1
            for x in f:
                print(f"FAIL {name}: {x}")
        else:
            print(f"ok   {name}: {r['answered_200']} answered 200, lost {r['lost']}, dup_seq 0")
    sys.exit(1 if bad else 0)


def tally_cases():
    """(name, tally() result, expected figures) rows."""
    orders = [{"order": o, "t": t} for o, t in
              [("A", "T1"), ("B", "T1"), ("C", "T2"), ("D", "T2"), ("E", "T3"), ("F", "T3")]]
    sent = {"A": {"codes": [200], "after_fault": False},       # stored, delivered
            "B": {"codes": [503, 200], "after_fault": False},  # retried, stored, delivered
            "C": {"codes": [200], "after_fault": False},       # 200, not stored: lost
            "D": {"codes": [503, 0], "after_fault": True},     # never 200, not stored: not lost
            "E": {"codes": [200], "after_fault": True},        # stored, not delivered, T3 not told
            "F": {"codes": [200], "after_fault": False}}       # stored, delivered twice (same eid)
    stored = {"A": "settlement", "B": "settlement", "C": None, "D": None, "E": "settlement",
              "F": "settlement"}
    ev = [{"t": "T1", "epoch": "e1", "seq": 1, "eid": "x1", "order": "A", "status": "settlement"},
          {"t": "T1", "epoch": "e1", "seq": 2, "eid": "x2", "order": "B", "status": "settlement"},
          {"t": "T2", "epoch": "e1", "seq": 1, "eid": "y1", "order": "C", "status": "settlement"},
          {"t": "T3", "epoch": "e1", "seq": 1, "eid": "z1", "order": "F", "status": "settlement"},
          {"t": "T3", "epoch": "e1", "seq": 1, "eid": "z1", "order": "F", "status": "settlement"}]
    cases = []
    got = tally(orders, sent, stored, ev, {})
    cases.append(("plain", got, {"notifications": 6, "answered_200": 5, "answers_200": 5, "answers_503": 2,
                                 "answers_other": 1, "never_200": 1, "stored": 4, "delivered": 3,
                                 "delivered_not_stored": 1, "lost": 2, "lost_not_stored": 1,
                                 "lost_not_delivered": 1, "undelivered_resync_told": 0,
                                 "lost_after_fault": 1, "dup_seq": 0, "lost_epoch_not_told": 1}))
    # T3 told resync: E is not silently lost any more.
    got = tally(orders, sent, stored, ev, {"T3": 1})
    cases.append(("told", got, {"lost": 1, "lost_not_delivered": 0, "undelivered_resync_told": 1,
                                "lost_after_fault": 0, "terminals_told_resync": 1}))
    # Another event under T1's (e1, 2): a duplicated seq. In a new epoch it is not.
    got = tally(orders, sent, stored, ev + [{"t": "T1", "epoch": "e1", "seq": 2, "eid": "other",
                                            "order": "B", "status": "settlement"},
                                           {"t": "T1", "epoch": "e2", "seq": 1, "eid": "new",
                                            "order": "A", "status": "settlement"}], {})
    cases.append(("dup", got, {"dup_seq": 1}))
    # An event at the wrong terminal is not a delivery.
    got = tally(orders, sent, stored, [{"t": "T2", "epoch": "e", "seq": 1, "eid": "q", "order": "A",
                                        "status": "settlement"}], {})
    cases.append(("wrong terminal", got, {"delivered": 0}))
    # C was shown at T2 and then lost by Redis: T2 must have been told resync.
    got = tally(orders, sent, {**stored, "A": None}, ev, {"T1": 1})
    cases.append(("lost epoch", got, {"delivered_not_stored": 2, "lost_epoch_not_told": 1}))
    return cases


def verdict_cases():
    """(result line, number of failures() expected) rows."""
    base = {"status": "measured", "fault_injected": True, "dup_seq": 0, "lost_after_fault": 0, "lost": 0,
            "lost_not_stored": 0, "lost_not_delivered": 0}
    verdicts = [
        ({**base, "fault": "cluster-kill", "acks": 1}, 0),
        ({**base, "fault": "cluster-kill", "acks": 1, "lost": 1}, 1),
        ({**base, "fault": "cluster-kill", "acks": 0, "lost": 5}, 0),
        ({**base, "fault": "sentinel-kill", "acks": 0, "dup_seq": 1}, 1),
        ({**base, "fault": "lagging-promote", "acks": 0, "lost": 9, "lost_epoch_not_told": 2}, 1),
        ({**base, "fault": "lagging-promote", "acks": 1, "lost": 9}, 0),
        ({**base, "fault": "lagging-promote", "acks": 0, "lost_after_fault": 1}, 1),
        ({**base, "fault": "cluster-reshard", "acks": 0, "lost": 1}, 1),
        ({**base, "fault": "cluster-kill", "acks": 1, "fault_injected": False}, 1),
        ({**base, "fault": "cluster-kill", "acks": 0, "nodes_alive": False}, 1),
        ({"fault": "cluster-kill", "acks": 1, "status": "unsupported", "reason": "x"}, 1),
    ]
    return verdicts


def cmd_selftest():
    """Table tests of tally() and failures() (run by ctest: fault_suite_counting)."""
    bad = 0
    for name, got, want in tally_cases():
        for k, v in want.items():
            if got[k] != v:
                print(f"FAIL tally {name}: {k} = {got[k]}, want {v}")
                bad += 1
    for r, want in verdict_cases():
        if len(failures(r)) != want:
            print(f"FAIL verdict {r}: {failures(r)}, want {want} failure(s)")
            bad += 1
    print("fault_suite.py selftest:", "FAILED" if bad else "ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    {"orders": cmd_orders, "register": cmd_register, "stream": cmd_stream,
     "count": cmd_count, "bodies": cmd_bodies, "verdict": cmd_verdict, "selftest": cmd_selftest}[sys.argv[1]](*sys.argv[2:])
