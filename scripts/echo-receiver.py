#!/usr/bin/env python3
"""A throwaway webhook receiver for trying the service locally: prints each POST's webhook
headers and body and answers 200 (or the status given with --status).

    python3 scripts/echo-receiver.py [--port 9000] [--status 200]
"""
import argparse
import http.server

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=9000)
parser.add_argument("--status", type=int, default=200)
args = parser.parse_args()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        print(f"POST {self.path}")
        for name, value in self.headers.items():
            if name.lower().startswith(("webhook-", "x-webhook-", "content-type", "user-agent")):
                print(f"  {name}: {value}")
        print(f"  body: {body.decode('utf-8', 'replace')}\n", flush=True)
        self.send_response(args.status)
        self.end_headers()

    def log_message(self, *_):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
