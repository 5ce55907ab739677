//! `webhooks-mcp`: an MCP server (stdio) that offers the management API's main operations as
//! tools for AI agents — the names TrustPager's document gives them (`create_webhook_subscription`,
//! `list_webhook_subscriptions`, `list_webhook_subscription_logs`) and the rest of what a
//! customer does: update, delete, attempts, redeliver, test.
//!
//! It calls the public `/v1` API over HTTP with the API key in `WEBHOOKS_API_KEY`, at
//! `WEBHOOKS_API_URL` (e.g. the stack's `ApiUrl` output, or `http://127.0.0.1:3000` locally), so
//! the API enforces the key's scopes and tenant exactly as for any client; its problem+json
//! answers come back as tool errors. The key is never printed, logged or returned.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData as McpError, ServerHandler, ServiceExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Clone)]
struct Webhooks {
    http: reqwest::Client,
    base: String,
    key: String,
    tool_router: ToolRouter<Self>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct CreateIn {
    /// The endpoint: an https:// URL.
    url: String,
    /// Event-type patterns, e.g. ["project.*"]; absent: all events.
    events: Option<Vec<String>>,
    name: Option<String>,
    description: Option<String>,
    /// A payload filter (see the API's docs/filters.md), e.g. {"data.project.region": "eu"}.
    filter: Option<Value>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ListIn {
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1-100 (default 20).
    limit: Option<u32>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct SubscriptionRef {
    /// A subscription id (sub_…).
    subscription_id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct UpdateIn {
    subscription_id: String,
    /// The fields to change, as PATCH /v1/subscriptions/{id} takes them (url, name, description,
    /// events, filter, enabled, headers, auth, payload, retry); `null` clears name, description,
    /// filter and retry.
    changes: Map<String, Value>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct LogsIn {
    subscription_id: String,
    /// queued, retrying, delivered, failed, cancelled or dead_lettered.
    status: Option<String>,
    event_type: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct DeliveryRef {
    /// A delivery id (dlv_…), as the logs list them.
    delivery_id: String,
}

/// `?a=1&b=2` of the values given.
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v)))).collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// Percent-encodes all but unreserved characters (RFC 3986).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Webhooks {
    /// One API call; the JSON answer as the tool's result (an error result for a 4xx/5xx).
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<CallToolResult, McpError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Ok(CallToolResult::error(vec![ContentBlock::text(format!("the webhooks API could not be reached: {}", e.without_url()))])),
        };
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let shown = if text.is_empty() { json!({"status": status.as_u16()}).to_string() } else { text };
        Ok(if status.is_success() { CallToolResult::success(vec![ContentBlock::text(shown)]) } else { CallToolResult::error(vec![ContentBlock::text(shown)]) })
    }
}

#[tool_router]
impl Webhooks {
    #[tool(description = "Create a webhook subscription: where to POST which events. Returns it with its signing secret (shown this once).")]
    async fn create_webhook_subscription(&self, Parameters(p): Parameters<CreateIn>) -> Result<CallToolResult, McpError> {
        let mut body = json!({"url": p.url});
        for (k, v) in [("events", p.events.map(|e| json!(e))), ("name", p.name.map(Value::from)), ("description", p.description.map(Value::from)), ("filter", p.filter)] {
            if let Some(v) = v {
                body[k] = v;
            }
        }
        self.call(reqwest::Method::POST, "/v1/subscriptions", Some(body)).await
    }

    #[tool(description = "List the tenant's webhook subscriptions, a page at a time (next_cursor).")]
    async fn list_webhook_subscriptions(&self, Parameters(p): Parameters<ListIn>) -> Result<CallToolResult, McpError> {
        self.call(reqwest::Method::GET, &format!("/v1/subscriptions{}", query(&[("cursor", p.cursor), ("limit", p.limit.map(|l| l.to_string()))])), None).await
    }

    #[tool(description = "Change the named fields of a subscription (the others stay as they are).")]
    async fn update_webhook_subscription(&self, Parameters(p): Parameters<UpdateIn>) -> Result<CallToolResult, McpError> {
        self.call(reqwest::Method::PATCH, &format!("/v1/subscriptions/{}", encode(&p.subscription_id)), Some(Value::Object(p.changes))).await
    }

    #[tool(description = "Delete a subscription (soft: it can be restored through the API).")]
    async fn delete_webhook_subscription(&self, Parameters(p): Parameters<SubscriptionRef>) -> Result<CallToolResult, McpError> {
        self.call(reqwest::Method::DELETE, &format!("/v1/subscriptions/{}", encode(&p.subscription_id)), None).await
    }

    #[tool(description = "The delivery log of a subscription, newest event first: each delivery's status, attempts and last response.")]
    async fn list_webhook_subscription_logs(&self, Parameters(p): Parameters<LogsIn>) -> Result<CallToolResult, McpError> {
        let q = query(&[("status", p.status), ("event_type", p.event_type), ("cursor", p.cursor), ("limit", p.limit.map(|l| l.to_string()))]);
        self.call(reqwest::Method::GET, &format!("/v1/subscriptions/{}/deliveries{q}", encode(&p.subscription_id)), None).await
    }

    #[tool(description = "Every attempt of one delivery: when, the status code or error class, the duration, the response.")]
    async fn list_delivery_attempts(&self, Parameters(p): Parameters<DeliveryRef>) -> Result<CallToolResult, McpError> {
        self.call(reqwest::Method::GET, &format!("/v1/deliveries/{}/attempts", encode(&p.delivery_id)), None).await
    }

    #[tool(description = "Send a failed, cancelled or dead-lettered delivery again (same payload and webhook-id, the whole retry schedule).")]
    async fn redeliver_webhook(&self, Parameters(p): Parameters<DeliveryRef>) -> Result<CallToolResult, McpError> {
        self.call(reqwest::Method::POST, &format!("/v1/deliveries/{}/redeliver", encode(&p.delivery_id)), None).await
    }

    #[tool(description = "Send a webhook.test event to a subscription now and report the endpoint's answer.")]
    async fn send_test_webhook(&self, Parameters(p): Parameters<SubscriptionRef>) -> Result<CallToolResult, McpError> {
        self.call(reqwest::Method::POST, &format!("/v1/subscriptions/{}/test", encode(&p.subscription_id)), None).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Webhooks {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("webhooks-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions("Manage webhook subscriptions and inspect and replay their deliveries. Calls the webhooks management API with the API key of the environment; its scopes decide what is allowed.")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (Ok(base), Ok(key)) = (std::env::var("WEBHOOKS_API_URL"), std::env::var("WEBHOOKS_API_KEY")) else {
        eprintln!("webhooks-mcp: set WEBHOOKS_API_URL (e.g. http://127.0.0.1:3000) and WEBHOOKS_API_KEY (whk_…)");
        std::process::exit(2);
    };
    let server = Webhooks { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_owned(), key, tool_router: Webhooks::tool_router() };
    match server.serve(rmcp::transport::stdio()).await {
        Ok(running) => {
            if let Err(e) = running.waiting().await {
                eprintln!("webhooks-mcp: {e}");
            }
        }
        Err(e) => {
            eprintln!("webhooks-mcp: {e}");
            std::process::exit(1);
        }
    }
}
