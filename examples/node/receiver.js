// A webhook receiver that verifies deliveries with the `standardwebhooks` npm package (node:http).
//
//   npm ci
//   WEBHOOK_SECRET=whsec_... PORT=8000 node receiver.js   # POST http://127.0.0.1:8000/webhook
"use strict";
const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const webhook = new Webhook(process.env.WEBHOOK_SECRET); // the whsec_... secret, prefix included
const seen = new Set(); // webhook-ids already accepted; in production a unique key in your database

http
  .createServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/webhook") return res.writeHead(404).end();
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      // Verify the raw body as received: never a re-serialised JSON.parse result.
      const raw = Buffer.concat(chunks).toString("utf8");
      let event;
      try {
        // node:http lower-cases header names, as the library expects; returns the parsed JSON.
        event = webhook.verify(raw, req.headers);
      } catch (err) {
        console.log(`rejected: ${err.name}: ${err.message}`);
        return res.writeHead(400).end();
      }
      const msgId = req.headers["webhook-id"]; // the same on every retry: deduplicate by it
      res.writeHead(204).end(); // answer first (within 15 s), then process
      if (seen.has(msgId)) return;
      seen.add(msgId);
      setImmediate(() => console.log(`verified ${msgId} ${event.event_type} ${event.event_id}`));
    });
  })
  .listen(Number(process.env.PORT || 8000), "127.0.0.1");
