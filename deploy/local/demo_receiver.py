#!/usr/bin/env python3
"""The demo's suspension system: a webhook receiver on loopback that
checks each request's Standard Webhooks signature (HMAC-SHA256 over
"id.timestamp.body" with the secret in $DEMO_SECRET, whsec_<base64>)
and prints one line per request. Standard library only."""
import base64, hashlib, hmac, json, os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

key = base64.b64decode(os.environ["DEMO_SECRET"].removeprefix("whsec_"))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        wid, ts = self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", "")
        want = base64.b64encode(hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
        sigs = [s.split(",", 1)[1] for s in self.headers.get("webhook-signature", "").split() if s.startswith("v1,")]
        ok = any(hmac.compare_digest(want, s) for s in sigs) and abs(time.time() - int(ts or 0)) < 300
        self.send_response(204 if ok else 401)
        self.end_headers()
        try:
            b = json.loads(body)
            what = f"{b.get('type')} {b.get('subject_kind')} {b.get('subject')} ({b.get('alert', {}).get('rule', '')})"
        except ValueError:
            what = "unreadable body"
        print(f"{time.strftime('%H:%M:%S')} {'verified' if ok else 'BAD SIGNATURE'} {wid} {what}", flush=True)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
