# The driver of bench/full_disk_stream.sh: a steady stream of signed settlement notifications for
# one terminal, the disk filled mid-stream, Redis killed and restarted, the stream resumed, and
# an epoch-aware terminal (the protocol of proto-docs/terminal-protocol.md, resync included)
# receiving throughout. Prints what was answered 200, what Redis lost of it, and whether the
# terminal missed any order answered 200 after the restart.
import hashlib, json, os, socket, subprocess, threading, time, urllib.error, urllib.request

HTTP, WORK = os.environ["HTTP"], os.environ["WORK"]
TERM_PORT, REDIS_PORT = int(os.environ["TERM_PORT"]), os.environ["REDIS_PORT"]
BEFORE, RATE = float(os.environ["BEFORE"]), float(os.environ["RATE"])
TOKEN, KEY = os.environ["TOKEN"], os.environ["POSRELAY_SERVER_KEY"]
OPERATOR = os.environ["POSRELAY_OPERATOR_TOKEN"]
TERMINAL, STORE, GROSS = "T-FULL", "S-FULL", "10000.00"


def post(path, body, headers):
    req = urllib.request.Request(HTTP + path, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return 0


def register(order):
    return post("/v1/orders", {"order_id": order, "gross_amount": "10000", "terminal_id": TERMINAL,
                               "store_id": STORE},
                {"Authorization": "Bearer " + OPERATOR, "Content-Type": "application/json"})


def notify(order):
    sig = hashlib.sha512((order + "200" + GROSS + KEY).encode()).hexdigest()
    return post("/v1/midtrans/notifications", {
        "transaction_time": "2026-11-24 10:00:00", "transaction_status": "settlement",
        "transaction_id": "tx-" + order, "status_message": "ok", "status_code": "200",
        "signature_key": sig, "settlement_time": "2026-11-24 10:00:09", "payment_type": "qris",
        "order_id": order, "merchant_id": "M1", "gross_amount": GROSS, "currency": "IDR",
        "fraud_status": "accept"}, {"Content-Type": "application/json"})


def order_of(order):
    req = urllib.request.Request(HTTP + "/v1/orders/" + order,
                                 headers={"Authorization": "Bearer " + OPERATOR})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r)
    except Exception:
        return {}


def status_of(order):
    return order_of(order).get("transaction_status")


class Terminal(threading.Thread):
    """Epoch-aware: resumes with (epoch, seq, eid); on resync reads the new epoch from 0."""

    def __init__(self):
        super().__init__(daemon=True)
        self.epoch, self.last, self.eid = "", None, ""
        self.orders, self.resyncs, self.reconnects, self.last_rx = set(), 0, 0, time.time()
        self.stop = False
        self.log = []

    def hello(self):
        h = {"op": "hello", "v": 1, "terminal_id": TERMINAL, "store_id": STORE, "token": TOKEN,
             "epoch": self.epoch}
        if self.last is not None:
            h["resume_from"] = self.last
            if self.eid:
                h["resume_eid"] = self.eid
        return json.dumps(h) + "\n"

    def run(self):
        while not self.stop:
            try:
                self.session()
            except Exception:
                pass
            self.reconnects += 1
            time.sleep(0.2)

    def session(self):
        s = socket.create_connection(("127.0.0.1", TERM_PORT), timeout=5)
        s.sendall(self.hello().encode())
        buf = b""
        while not self.stop:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                f = json.loads(line)
                self.last_rx = time.time()
                op = f.get("op")
                if op == "welcome":
                    self.epoch = f.get("epoch", "")
                    if self.last is None:
                        self.last = f["last_seq"]
                elif op == "ping":
                    s.sendall(b'{"op":"pong"}\n')
                elif op == "error" and f.get("code") == "resync":
                    self.resyncs += 1
                    self.epoch, self.last, self.eid = f["epoch"], 0, ""
                    return
                elif op == "error":
                    if f.get("code") == "resume_gap":
                        self.last, self.eid = None, ""
                    return
                elif op == "event" and f["seq"] > (self.last or 0):
                    self.last, self.eid = f["seq"], f.get("eid", "")
                    self.orders.add(f["order_id"])
                    self.log.append((f.get("epoch"), f["seq"], f["order_id"], f.get("eid")))
                    s.sendall(('{"op":"ack","seq":%d}\n' % f["seq"]).encode())


def redis_cmd():
    return ["redis-server", "--port", REDIS_PORT, "--bind", "127.0.0.1", "--dir", WORK + "/disk",
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--logfile", WORK + "/redis.log"]


def stream(prefix, seconds, answers):
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        order = "%s-%d" % (prefix, n)
        n += 1
        if register(order) in (200, 201):
            answers[order] = notify(order)
        else:
            answers[order] = "unregistered"
        time.sleep(max(0.0, t0 + n / RATE - time.time()))


term = Terminal()
term.start()
for _ in range(100):  # a fresh terminal gets only what comes after its welcome
    if term.last is not None:
        break
    time.sleep(0.05)
answers = {}
stream("A", BEFORE, answers)                      # steady stream
subprocess.run(["dd", "if=/dev/zero", "of=" + WORK + "/disk/filler", "bs=64k"],
               stderr=subprocess.DEVNULL)          # the disk fills up mid-stream
stream("B", 3, answers)                            # Redis answers, then refuses (503)
pid = open(WORK + "/redis.pid").read().strip()
subprocess.run(["kill", "-9", pid])               # what it answered and never wrote is lost
time.sleep(0.5)
os.remove(WORK + "/disk/filler")
p = subprocess.Popen(redis_cmd())
open(WORK + "/redis.pid", "w").write(str(p.pid))
for _ in range(100):
    if urllib.request.urlopen(HTTP + "/healthz").status == 200 and \
            subprocess.run(["redis-cli", "-p", REDIS_PORT, "ping"], capture_output=True).stdout:
        break
    time.sleep(0.1)
deadline = time.time() + 15                        # Midtrans retries what got no 200
while time.time() < deadline and any(a != 200 for a in answers.values() if a != "unregistered"):
    for o, a in list(answers.items()):
        if a != 200 and a != "unregistered":
            answers[o] = notify(o)
    time.sleep(0.5)
after = {}
stream("C", 3, after)                              # the stream goes on
deadline = time.time() + 15
while time.time() < deadline and time.time() - term.last_rx < 3:
    time.sleep(0.2)
term.stop = True

ok_before = [o for o, a in answers.items() if a == 200]
lost = [o for o in ok_before if status_of(o) != "settlement"]
ok_after = [o for o, a in after.items() if a == 200]
missed_after = [o for o in ok_after if o not in term.orders]
missed_stored = [o for o in ok_before if o not in lost and o not in term.orders]
# A registration answered 201 and then lost by Redis leaves a settlement routed nowhere.
unrouted = [o for o in missed_stored if not order_of(o).get("terminal_id")]
missed_retried = [o for o in missed_stored if o not in unrouted]
print("answered 200 before the crash (or on retry): %d; of them lost by Redis (status gone): %d %s"
      % (len(ok_before), len(lost), lost[:10]))
print("answered 200 after the restart: %d; not received by the terminal: %d %s"
      % (len(ok_after), len(missed_after), missed_after[:10]))
print("stored settlements whose registration Redis lost (routed nowhere): %d %s"
      % (len(unrouted), unrouted[:10]))
print("stored, routed settlements the terminal never received: %d %s"
      % (len(missed_retried), missed_retried[:10]))
lost_seen = [o for o in lost if o in term.orders]
print("lost by Redis after the terminal had them: %d; lost before it saw them: %d %s"
      % (len(lost_seen), len(lost) - len(lost_seen), [o for o in lost if o not in term.orders][:10]))
print("terminal: %d orders received, %d resyncs, %d reconnects"
      % (len(term.orders), term.resyncs, term.reconnects))
with open(WORK + "/terminal.log", "w") as out:
    for e in term.log:
        out.write("%s %s %s %s\n" % e)
print("RESULT:", "ok" if not missed_after and not missed_retried else "events missed")
