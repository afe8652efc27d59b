"""Load for bench/activity_cost.sh: registers N orders (POST /v1/orders) routed to terminals
named as posrelay-terminal-load names them (T-p0-K of store S-(K mod STORES)), or POSTs one
signed settlement notification per order, one request at a time on a kept-alive connection.
usage: activity_load.py register|notify PORT N TERMINALS STORES RUN [PART PARTS]
(PART of PARTS: only the orders i with i mod PARTS = PART, for parallel senders)"""
import hashlib
import http.client
import json
import os
import random
import sys

mode, port, n, terms, stores, run = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
part, parts = map(int, sys.argv[7:9]) if len(sys.argv) > 8 else (0, 1)
key = os.environ["POSRELAY_SERVER_KEY"]
token = os.environ["POSRELAY_OPERATOR_TOKEN"]
rnd = random.Random(run)
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
for i in range(n):
    k = rnd.randrange(terms)
    order = f"AC{run}-{i:07d}"
    if i % parts != part:
        continue
    if mode == "register":
        body = {"order_id": order, "gross_amount": "10000", "terminal_id": f"T-p0-{k}",
                "store_id": f"S-{k % stores}"}
        path, headers = "/v1/orders", {"Authorization": "Bearer " + token}
    else:
        gross, code = "10000.00", "200"
        body = {"transaction_time": "2026-11-24 10:00:00", "transaction_status": "settlement",
                "transaction_id": f"{i:08x}-2a48-47a9-8cb1-fb36060b88f3", "status_code": code,
                "signature_key": hashlib.sha512((order + code + gross + key).encode()).hexdigest(),
                "payment_type": "qris", "order_id": order, "merchant_id": "G000000001",
                "gross_amount": gross, "fraud_status": "accept", "currency": "IDR"}
        path, headers = "/v1/midtrans/notifications", {}
    headers["Content-Type"] = "application/json"
    conn.request("POST", path, json.dumps(body), headers)
    res = conn.getresponse()
    res.read()
    if res.status not in (200, 201):
        sys.exit(f"{mode} {order}: HTTP {res.status}")
