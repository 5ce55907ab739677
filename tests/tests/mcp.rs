//! `webhooks-mcp` driven by a real MCP client (the official Rust SDK's, over the child process's
//! stdio) against the local runner on LocalStack: it lists the tools, creates a subscription and
//! lists it back; the API's scopes hold through it (a read-only key cannot create).
//!
//! Needs `target/debug/webhooks-mcp` (`cargo build -p mcp`; scripts/test.sh builds every binary
//! before the tests).

use e2e::{repo_root, StackOptions, TestStack};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::ServiceExt;
use serde_json::{json, Value};
use shared::ids::TenantId;
use shared::model::Scope;

fn text(r: &CallToolResult) -> Value {
    let t = r.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).expect("a text result");
    serde_json::from_str(&t).unwrap_or(Value::String(t))
}

async fn client(stack: &TestStack, key: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let bin = repo_root().join("target/debug/webhooks-mcp");
    assert!(bin.exists(), "{} is missing: run `cargo build -p mcp`", bin.display());
    let transport = TokioChildProcess::new(tokio::process::Command::new(&bin).configure(|c| {
        c.env("WEBHOOKS_API_URL", &stack.runner.api_url).env("WEBHOOKS_API_KEY", key);
    }))
    .expect("start webhooks-mcp");
    ().serve(transport).await.expect("MCP initialisation")
}

fn call(name: &'static str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(args.as_object().expect("an object").clone())
}

#[tokio::test]
async fn an_mcp_client_lists_the_tools_and_creates_and_lists_a_subscription() {
    let stack = TestStack::start(StackOptions { delivery_pollers: 0, fanout_pollers: 0, ..Default::default() }).await;
    let mcp = client(&stack, &stack.api_key).await;

    let mut tools: Vec<String> = mcp.list_all_tools().await.expect("tools/list").into_iter().map(|t| t.name.into_owned()).collect();
    tools.sort();
    assert_eq!(
        tools,
        ["create_webhook_subscription", "delete_webhook_subscription", "list_delivery_attempts", "list_webhook_subscription_logs", "list_webhook_subscriptions", "redeliver_webhook", "send_test_webhook", "update_webhook_subscription"]
    );

    let created = mcp.call_tool(call("create_webhook_subscription", json!({"url": "https://example.com/agent-hook", "events": ["project.*"], "name": "made by an agent"}))).await.expect("tools/call");
    assert_ne!(created.is_error, Some(true), "{created:?}");
    let sub = text(&created);
    let id = sub["id"].as_str().expect("the new subscription's id").to_owned();
    assert!(sub["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{sub}");

    let listed = text(&mcp.call_tool(call("list_webhook_subscriptions", json!({}))).await.unwrap());
    let names: Vec<&str> = listed["data"].as_array().unwrap().iter().filter(|s| s["id"] == id.as_str()).filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["made by an agent"], "{listed}");
    let (status, got) = stack.call("GET", &format!("/v1/subscriptions/{id}"), None).await;
    assert_eq!((status, got["events"].clone()), (200, json!(["project.*"])), "the API holds what the agent made");

    let updated = text(&mcp.call_tool(call("update_webhook_subscription", json!({"subscription_id": id, "changes": {"enabled": false}}))).await.unwrap());
    assert_eq!(updated["enabled"], false, "{updated}");
    let logs = mcp.call_tool(call("list_webhook_subscription_logs", json!({"subscription_id": id, "limit": 5}))).await.unwrap();
    assert_eq!(text(&logs)["data"], json!([]));
    // An API error comes back as a tool error with the problem: a malformed URL, an unknown id.
    let bad = mcp.call_tool(call("create_webhook_subscription", json!({"url": "ftp://example.com"}))).await.unwrap();
    assert_eq!((bad.is_error, text(&bad)["field"].as_str()), (Some(true), Some("url")), "{bad:?}");
    let missing = mcp.call_tool(call("delete_webhook_subscription", json!({"subscription_id": "sub_nope"}))).await.unwrap();
    assert_eq!((missing.is_error, text(&missing)["status"].as_u64()), (Some(true), Some(404)));
    mcp.cancel().await.expect("close");

    // The key's scopes decide, as for any API client.
    let (read_only, _) = shared::api::auth::issue_key(&stack.runner.deps, &TenantId::parse("acme").unwrap(), &[Scope::Read]).await.unwrap();
    let reader = client(&stack, &read_only).await;
    let refused = reader.call_tool(call("create_webhook_subscription", json!({"url": "https://example.com/x"}))).await.unwrap();
    assert_eq!((refused.is_error, text(&refused)["status"].as_u64()), (Some(true), Some(403)), "{refused:?}");
    assert_eq!(text(&reader.call_tool(call("list_webhook_subscriptions", json!({}))).await.unwrap())["data"].as_array().map(Vec::len), Some(1));
    reader.cancel().await.expect("close");
}
