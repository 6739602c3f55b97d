#!/usr/bin/env python3
"""Writes a wrk script that replays pre-signed `POST /events` bodies, one per player.

A cross-check of `liveops loadgen` with a lighter generator (docs/performance.md,
"Reproducing the ingest figures"). The bodies carry no eventId, so the server assigns a new one to every request and a
replayed body is a new event. Keep FLOOD_MAX_PER_SEC above rate / players.

    python3 scripts/wrk_signed_events.py 20000 "$HMAC_SECRET" /tmp/events.lua
    wrk -t1 -c64 -d6s -s /tmp/events.lua http://127.0.0.1:8080
"""
import hashlib
import hmac
import json
import random
import sys


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    players, secret, out = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
    rng = random.Random(1)
    lines = ["local reqs = {}"]
    for i in range(players):
        body = json.dumps(
            {"type": "progression", "playerId": f"wrk_{i:06d}", "ts": 1763870000,
             "payload": {"deltaXp": rng.randint(1, 200), "activity": "quest"}},
            separators=(",", ":"))
        sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        lines.append(
            f'reqs[{i + 1}] = wrk.format("POST", "/events", '
            f'{{["Content-Type"]="application/json", ["X-Signature"]="{sig}"}}, \'{body}\')')
    lines.append("""local i = 0
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p99=%.2fms\\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end""")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
