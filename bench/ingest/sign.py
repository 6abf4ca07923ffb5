#!/usr/bin/env python3
"""sign.py SECRET COUNT OUT: COUNT distinct Standard-Webhooks-signed deliveries, one a line
(`id timestamp signature body`), for ingest.lua. Standard library only."""
import base64, hashlib, hmac, sys, time

secret, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
key = base64.b64decode(secret.removeprefix("whsec_"))
ts = str(int(time.time()))
with open(out, "w") as f:
    for i in range(count):
        mid, body = f"msg_{i}", '{"n":%d}' % i
        mac = hmac.new(key, f"{mid}.{ts}.{body}".encode(), hashlib.sha256).digest()
        f.write(f"{mid} {ts} v1,{base64.b64encode(mac).decode()} {body}\n")
