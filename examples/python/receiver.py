"""A webhook receiver that verifies deliveries with the `standardwebhooks` package (stdlib server).

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    WEBHOOK_SECRET=whsec_... PORT=8000 .venv/bin/python receiver.py   # POST http://127.0.0.1:8000/webhook
"""
import json
import os
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["WEBHOOK_SECRET"])  # the whsec_... secret, prefix included
work = queue.Queue()
seen = set()  # webhook-ids already accepted; in production a unique key in your database


def worker():
    while True:
        msg_id, event = work.get()
        print(f"verified {msg_id} {event['event_type']} {event['event_id']}", flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/webhook":
            return self.answer(404)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))  # the raw bytes
        try:
            # Header names are matched case-insensitively; returns the JSON-parsed body.
            event = webhook.verify(body, dict(self.headers))
        except (WebhookVerificationError, ValueError) as e:
            # ValueError: a body that is not UTF-8/JSON, or a malformed signature entry.
            print(f"rejected: {type(e).__name__}: {e}", flush=True)
            return self.answer(400)
        msg_id = self.headers["webhook-id"]  # the same on every retry: deduplicate by it
        if msg_id not in seen:
            seen.add(msg_id)
            work.put((msg_id, event))  # process after answering: reply within 15 s
        self.answer(204)

    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


threading.Thread(target=worker, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()
