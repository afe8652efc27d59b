#!/usr/bin/env python3
"""Resource bounds of a running posrelay (issue 13, finding 8), measured from outside.

  flood PID HOST:PORT SECONDS TERMINALS SECRET
      TERMINALS plain-TCP terminals (SO_RCVBUF 4 KiB) say hello, then send pings as fast as
      they can and never read; a terminal that is cut reconnects and floods again, until
      SECONDS have passed. posrelay's VmRSS is sampled every 0.25 s. Prints one JSON line.
  churn PID HOST:PORT COUNT
      COUNT connect+close on the terminal port before hello (half FIN, half RST), then
      posrelay's open descriptors over time until they are back to the count before (or 60 s).
      Prints one JSON line.
"""
import hashlib, hmac, json, socket, struct, sys, threading, time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def fds(pid):
    import os
    return len(os.listdir(f"/proc/{pid}/fd"))


def token(secret, terminal, store):
    mac = hmac.new(secret.encode(), f"posrelay-terminal-v1\n{terminal}\n{store}".encode(),
                   hashlib.sha256)
    return "v1." + mac.hexdigest()


def connect(host, port, rcvbuf=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, port))
    return s


def flood(pid, addr, seconds, terminals, secret):
    host, port = addr.rsplit(":", 1)
    port = int(port)
    ping = ('{"op":"ping","id":"' + "p" * 64 + '"}\n').encode()
    batch = ping * 1000
    deadline = time.monotonic() + seconds
    stats = {"pings": 0, "connections": 0, "cut": 0}
    lock = threading.Lock()
    socks = {}

    def one(i):
        tid, store = f"T-FLOOD-{i}", "S-FLOOD"
        while time.monotonic() < deadline:
            try:
                s = connect(host, port, 4096)
                with lock:
                    socks[i] = s
                    stats["connections"] += 1
                hello = {"op": "hello", "v": 1, "terminal_id": tid, "store_id": store,
                         "token": token(secret, tid, store)}
                s.sendall((json.dumps(hello) + "\n").encode())
                welcome = b""
                while b"\n" not in welcome:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("closed before welcome")
                    welcome += chunk
                while time.monotonic() < deadline:
                    s.sendall(batch)  # never read: the pongs pile up somewhere
                    with lock:
                        stats["pings"] += 1000
            except OSError:
                if time.monotonic() < deadline:
                    with lock:
                        stats["cut"] += 1
            finally:
                try:
                    s.close()
                except Exception:
                    pass

    base = rss_kib(pid)
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(terminals)]
    for t in threads:
        t.start()
    peak, samples = base, []
    while time.monotonic() < deadline:
        r = rss_kib(pid)
        peak = max(peak, r)
        samples.append(r)
        time.sleep(0.25)
    for s in list(socks.values()):  # unblock senders stuck in sendall
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    for t in threads:
        t.join(5)
    print(json.dumps({"rss_before_kib": base, "rss_peak_kib": peak, "rss_end_kib": rss_kib(pid),
                      "rss_growth_peak_mib": round((peak - base) / 1024, 1),
                      "rss_at_10s_mib": round((samples[min(40, len(samples) - 1)] - base) / 1024, 1),
                      **stats}))


def churn(pid, addr, count):
    host, port = addr.rsplit(":", 1)
    port = int(port)
    base = fds(pid)
    t0 = time.monotonic()
    for i in range(count):
        s = connect(host, port)
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    made = time.monotonic() - t0
    peak, at = base, {}
    start = time.monotonic()
    released = None
    while time.monotonic() - start < 60:
        n = fds(pid)
        peak = max(peak, n)
        el = time.monotonic() - start
        for mark in (0.1, 1, 5, 10, 30):
            if el >= mark and mark not in at:
                at[mark] = n
        if n <= base + 2 and el >= 0.1:
            released = round(el, 2)
            break
        time.sleep(0.05)
    print(json.dumps({"fds_before": base, "fds_peak": peak, "connect_close_seconds": round(made, 2),
                      "fds_after": {f"{k}s": v for k, v in at.items()},
                      "released_after_s": released, "fds_end": fds(pid)}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "flood":
        flood(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    elif cmd == "churn":
        churn(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
