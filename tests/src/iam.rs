//! IAM policy evaluation, as much of it as the template's roles use: `Allow` statements (no
//! `Deny` is written), action and resource patterns with `*` and `?`, and the condition
//! operators `StringEquals`, `StringLike` (each also `...IfExists`) and their `ForAllValues:` /
//! `ForAnyValue:` forms over the context keys the recorder extracts (`dynamodb:Attributes`,
//! `dynamodb:ReturnValues`). An operator or key it does not know makes the statement not match,
//! so the check fails rather than passes by ignorance.

use runner::lambda::recorder::Call;
use runner::lambda::template::{Role, Statement};
use serde_json::Value;

/// The AWS managed policies the roles attach (SAM adds them), as AWS publishes them.
pub fn managed(arn: &str) -> Vec<Statement> {
    let logs = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"];
    let allow = |sid: &str, actions: &[&str]| Statement { sid: sid.to_owned(), allow: true, actions: actions.iter().map(|a| a.to_string()).collect(), resources: vec!["*".into()], condition: Default::default() };
    match arn.rsplit('/').next().unwrap_or_default() {
        "AWSLambdaBasicExecutionRole" => vec![allow("AWSLambdaBasicExecutionRole", &logs)],
        "AWSLambdaSQSQueueExecutionRole" => vec![
            allow("AWSLambdaSQSQueueExecutionRole", &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]),
            allow("AWSLambdaSQSQueueExecutionRole/logs", &logs),
        ],
        other => panic!("managed policy {other} is not known to the IAM check: add its statements from AWS's documentation"),
    }
}

/// `*` any run of characters, `?` one character; actions compare case-insensitively.
pub fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if case_insensitive { (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect()) } else { (pattern.chars().collect(), text.chars().collect()) };
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn context(call: &Call, key: &str) -> Option<Vec<String>> {
    match key.to_ascii_lowercase().as_str() {
        "dynamodb:attributes" => Some(call.attributes.clone()).filter(|a| !a.is_empty()),
        "dynamodb:returnvalues" => call.return_values.clone().map(|v| vec![v]),
        _ => None,
    }
}

fn condition_holds(condition: &serde_json::Map<String, Value>, call: &Call) -> bool {
    condition.iter().all(|(operator, keys)| {
        let (set, op) = match operator.split_once(':') {
            Some((set, op)) => (Some(set), op),
            None => (None, operator.as_str()),
        };
        let (op, if_exists) = match op.strip_suffix("IfExists") {
            Some(o) => (o, true),
            None => (op, false),
        };
        let test = |pattern: &str, v: &str| match op {
            "StringEquals" => pattern == v,
            "StringLike" => glob(pattern, v, false),
            _ => false,
        };
        if !matches!(op, "StringEquals" | "StringLike") {
            return false;
        }
        keys.as_object().is_some_and(|keys| {
            keys.iter().all(|(key, wanted)| {
                let wanted: Vec<String> = match wanted {
                    Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                    Value::String(s) => vec![s.clone()],
                    _ => return false,
                };
                let known = matches!(key.to_ascii_lowercase().as_str(), "dynamodb:attributes" | "dynamodb:returnvalues");
                if !known {
                    return false;
                }
                let value = context(call, key);
                let matches_one = |v: &String| wanted.iter().any(|w| test(w, v));
                match (set, value) {
                    (Some("ForAllValues"), None) => true,
                    (Some("ForAllValues"), Some(vs)) => vs.iter().all(matches_one),
                    (Some("ForAnyValue"), None) => false,
                    (Some("ForAnyValue"), Some(vs)) => vs.iter().any(matches_one),
                    (Some(_), _) => false,
                    (None, None) => if_exists,
                    (None, Some(vs)) => vs.iter().all(matches_one),
                }
            })
        })
    })
}

/// Whether the statement allows the call (action, resource and condition).
pub fn allows(s: &Statement, call: &Call) -> bool {
    s.allow && s.actions.iter().any(|a| glob(a, &call.action, true)) && s.resources.iter().any(|r| glob(r, &call.resource, false)) && condition_holds(&s.condition, call)
}

/// The role's statements, inline and managed.
pub fn statements(role: &Role) -> Vec<Statement> {
    role.statements.iter().cloned().chain(role.managed.iter().flat_map(|m| managed(m))).collect()
}

/// The calls no statement allows.
pub fn denied<'a>(statements: &[Statement], calls: impl IntoIterator<Item = &'a Call>) -> Vec<&'a Call> {
    calls.into_iter().filter(|c| !statements.iter().any(|s| allows(s, c))).collect()
}

/// Every (statement, action, resource) granted that no call used, by action and resource (the
/// condition aside).
pub fn unused(statements: &[Statement], calls: &[&Call]) -> Vec<String> {
    let mut out = Vec::new();
    for s in statements.iter().filter(|s| s.allow) {
        for a in &s.actions {
            for r in &s.resources {
                if !calls.iter().any(|c| glob(a, &c.action, true) && glob(r, &c.resource, false)) {
                    // Lambda itself writes the function's logs with these; no code of ours calls them.
                    let note = if a.starts_with("logs:") { " (Lambda writes the function's logs with it)" } else { "" };
                    out.push(format!("{} {a} on {r}{note}", s.sid));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(action: &str, resource: &str, attributes: &[&str], rv: Option<&str>) -> Call {
        Call { function: "F".into(), action: action.into(), resource: resource.into(), attributes: attributes.iter().map(|a| a.to_string()).collect(), return_values: rv.map(str::to_owned) }
    }

    fn statement(actions: &[&str], resources: &[&str], condition: Value) -> Statement {
        Statement { sid: "S".into(), allow: true, actions: actions.iter().map(|a| a.to_string()).collect(), resources: resources.iter().map(|r| r.to_string()).collect(), condition: condition.as_object().cloned().unwrap_or_default() }
    }

    #[test]
    fn patterns_match_as_iam_matches_them() {
        assert!(glob("dynamodb:*", "DynamoDB:GetItem", true));
        assert!(glob("arn:aws:dynamodb:*:*:table/t-*", "arn:aws:dynamodb:us-east-1:0:table/t-x", false));
        assert!(!glob("arn:aws:dynamodb:us-east-1:0:table/t", "arn:aws:dynamodb:us-east-1:0:table/t/index/i", false));
        assert!(glob("a?c", "abc", false) && !glob("a?c", "ac", false));
    }

    #[test]
    fn the_health_condition_allows_only_the_health_fields() {
        let s = statement(&["dynamodb:UpdateItem"], &["arn:t"], json!({
            "ForAllValues:StringEquals": {"dynamodb:Attributes": ["tenant_id", "subscription_id", "failure_count"]},
            "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_NEW"]}
        }));
        assert!(allows(&s, &call("dynamodb:UpdateItem", "arn:t", &["failure_count", "subscription_id", "tenant_id"], Some("UPDATED_NEW"))));
        assert!(allows(&s, &call("dynamodb:UpdateItem", "arn:t", &["failure_count"], None)));
        assert!(!allows(&s, &call("dynamodb:UpdateItem", "arn:t", &["failure_count", "secret"], None)), "an attribute beyond the list");
        assert!(!allows(&s, &call("dynamodb:UpdateItem", "arn:t", &["failure_count"], Some("ALL_NEW"))), "returns the whole item");
        assert!(!allows(&s, &call("dynamodb:PutItem", "arn:t", &["failure_count"], None)));
        let unknown = statement(&["dynamodb:UpdateItem"], &["arn:t"], json!({"NumericLessThan": {"dynamodb:Attributes": ["1"]}}));
        assert!(!allows(&unknown, &call("dynamodb:UpdateItem", "arn:t", &[], None)), "an unknown operator never allows");
    }

    #[test]
    fn unused_grants_are_listed() {
        let s = vec![statement(&["sqs:SendMessage", "sqs:DeleteMessage"], &["arn:q"], json!({}))];
        let c = call("sqs:SendMessage", "arn:q", &[], None);
        assert_eq!(unused(&s, &[&c]), ["S sqs:DeleteMessage on arn:q"]);
        assert!(denied(&s, [&call("sqs:SendMessage", "arn:other", &[], None)]).len() == 1);
    }
}
