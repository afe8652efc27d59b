#!/usr/bin/env python3
"""A full disk under the embedded Redis during a steady stream of payments (run by
bench/full_disk.sh). One terminal charges orders through posrelay and midtrans-sim pays each
one; meanwhile the script fills the data directory's filesystem, then kills the embedded
redis-server (posrelay restarts it from its AOF, which lacks what it could not write), then
frees the disk. Every order the sim settled must reach the terminal as paid: by an event, or
by the `status` re-sync the protocol asks for after a `resync` (new epoch) or `resume_gap`.
Prints one JSON line; exit 1 when a paid order never reached the terminal."""
import json, os, socket, subprocess, sys, threading, time, urllib.request

SIM = "http://127.0.0.1:%s" % os.environ["SIM_PORT"]
TERM = ("127.0.0.1", int(os.environ["TERMINAL_PORT"]))
TOKEN, DATA, FILLER = os.environ["TOKEN"], os.environ["DATA_DIR"], os.environ["FILLER"]
SECONDS, RATE = float(os.environ.get("SECONDS", "20")), float(os.environ.get("RATE", "20"))
FILL_AT, CRASH_AT, FREE_AT = SECONDS * 0.25, SECONDS * 0.45, SECONDS * 0.55


def post(path):
    req = urllib.request.Request(SIM + path, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class Terminal:
    """The terminal protocol client: resumes with its last seq (and epoch), acks every event,
    re-syncs open orders with `status` after `resync` or `resume_gap`."""

    def __init__(self):
        self.seq, self.epoch = None, None
        self.paid = set()            # orders learned paid (event or status)
        self.events = self.resyncs = self.gaps = self.reconnects = self.dups = 0
        self.results = {}            # request id -> result/error frame
        self.lock, self.cv = threading.Lock(), threading.Condition(threading.Lock())
        self.sock = None
        self.stop = False
        self.welcomed = threading.Event()

    def connect(self):
        while not self.stop:
            try:
                s = socket.create_connection(TERM, timeout=5)
                s.settimeout(None)
                hello = {"op": "hello", "v": 1, "terminal_id": "T-FD", "store_id": "S-FD", "token": TOKEN}
                if self.seq is not None:
                    hello["resume_from"] = self.seq
                hello["epoch"] = self.epoch or ""  # epoch-aware: told resync, not resume_gap
                s.sendall((json.dumps(hello) + "\n").encode())
                self.sock, self.rf = s, s.makefile("r")
                return
            except OSError:
                time.sleep(0.2)

    def send(self, frame):
        with self.lock:
            try:
                self.sock.sendall((json.dumps(frame) + "\n").encode())
            except OSError:
                pass

    def run(self):
        self.connect()
        while not self.stop:
            try:
                line = self.rf.readline()
            except OSError:
                line = ""
            if not line:
                self.reconnects += 1
                self.connect()
                continue
            m = json.loads(line)
            op = m.get("op")
            if op == "welcome":
                if self.seq is None or m.get("resume_from") is None:  # a fresh start
                    self.seq = m.get("last_seq", 0)
                self.epoch = m.get("epoch", self.epoch)
                self.welcomed.set()
            elif op == "event":
                self.epoch = m.get("epoch", self.epoch)
                if self.seq is not None and m["seq"] <= self.seq:
                    self.dups += 1
                    continue
                self.seq = m["seq"]
                self.events += 1
                if m.get("paid"):
                    self.paid.add(m["order_id"])
                self.send({"op": "ack", "seq": m["seq"]})
            elif op == "ping":
                self.send({"op": "pong"})
            elif op in ("result", "error") and m.get("id"):
                with self.cv:
                    self.results[m["id"]] = m
                    self.cv.notify_all()
                if op == "result" and m.get("paid"):
                    self.paid.add(m["order_id"])
            elif op == "error":
                if m.get("code") == "resync":
                    self.resyncs += 1
                    self.epoch = m.get("epoch", None)
                elif m.get("code") == "resume_gap":
                    self.gaps += 1
                if m.get("code") == "resync":
                    self.seq = 0  # reconnect at (epoch, 0): the new epoch's events from its start
                elif m.get("code") == "resume_gap":
                    self.seq = None  # reconnect without resume_from (§8)
                if m.get("code") in ("resync", "resume_gap"):
                    threading.Thread(target=self.resync_orders, daemon=True).start()

    def request(self, frame, timeout=10):
        self.send(frame)
        deadline = time.time() + timeout
        with self.cv:
            while frame["id"] not in self.results and time.time() < deadline:
                self.cv.wait(deadline - time.time())
            return self.results.pop(frame["id"], None)

    def resync_orders(self):
        for oid in list(open_orders):
            if oid not in self.paid:
                self.request({"op": "status", "id": "s-" + oid + "-" + str(time.time()), "order_id": oid})


open_orders = []  # orders the sim paid (200 on /pay)
t = Terminal()
threading.Thread(target=t.run, daemon=True).start()
if not t.welcomed.wait(10):
    sys.exit("no welcome")
run = str(int(time.time()))
start, i, charge_failed, phases = time.time(), 0, 0, []
redis_pid = None
while time.time() - start < SECONDS:
    el = time.time() - start
    if not phases and el >= FILL_AT:
        subprocess.run(["dd", "if=/dev/zero", "of=" + FILLER, "bs=64k"], stderr=subprocess.DEVNULL)
        phases.append(("disk_full", round(el, 2)))
    if len(phases) == 1 and el >= CRASH_AT:
        out = subprocess.run(["pgrep", "-f", "redis-server.*" + DATA], capture_output=True, text=True).stdout.split()
        redis_pid = out[0] if out else None
        if redis_pid:
            os.kill(int(redis_pid), 9)
        phases.append(("redis_killed", round(el, 2)))
    if len(phases) == 2 and el >= FREE_AT:
        os.remove(FILLER)
        phases.append(("disk_freed", round(el, 2)))
    oid = "FD%s-%d" % (run, i)
    i += 1
    r = t.request({"op": "charge", "id": oid, "order_id": oid, "gross_amount": 1000})
    if r and r.get("op") == "result":
        if post("/sim/orders/%s/pay" % oid) == 200:
            open_orders.append(oid)
    else:
        charge_failed += 1
    time.sleep(max(0.0, start + i / RATE - time.time()))

deadline = time.time() + float(os.environ.get("SETTLE_SECONDS", "60"))
while time.time() < deadline and not set(open_orders) <= t.paid:
    time.sleep(0.2)
missing = sorted(set(open_orders) - t.paid)
if missing:  # what the protocol tells a terminal to do when unsure: ask
    t.resync_orders()
    missing_after_status = sorted(set(open_orders) - t.paid)
else:
    missing_after_status = []
t.stop = True
print(json.dumps({"charges": i, "charges_failed": charge_failed, "paid_at_midtrans": len(open_orders),
                  "paid_seen_by_terminal": len(set(open_orders) & t.paid), "events": t.events,
                  "duplicates_ignored": t.dups, "resync_errors": t.resyncs, "resume_gaps": t.gaps,
                  "reconnects": t.reconnects, "phases": phases,
                  "missing_without_asking": missing[:10], "missing": missing_after_status[:10]}))
sys.exit(1 if missing_after_status else 0)
