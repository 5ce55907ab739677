//! What `infra/template.yaml` deploys, read from its SAM translation (plain CloudFormation JSON,
//! `scripts/sam-translate.py`: the code CloudFormation's SAM transform runs) and resolved against a
//! local stack: each function's environment (Globals merged by SAM), timeout and memory, the SQS
//! event source mappings, the HTTP API's routes, the schedules and the IAM policies of each
//! function's role.
//!
//! Intrinsics resolved: `Ref` (parameters, pseudo parameters, resources: their logical id),
//! `Fn::GetAtt` (`Data.Outputs.X`: the local stack's output `X`, printed by
//! `scripts/localstack.sh provision` as `UPPER_SNAKE(X)`), `Fn::Sub`, `Fn::If` with the template's
//! `Conditions` (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`), `Fn::Join`, `Fn::Select`. Anything
//! else is an error naming it: the template changed in a way the runner does not yet play.
//!
//! Past 400 lines because the intrinsics' resolver and the readers of each resource kind share
//! the template's types and one error type; its tests are in `template/tests.rs`.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::Duration;

pub const REGION: &str = "us-east-1";
/// LocalStack's account.
pub const ACCOUNT: &str = "000000000000";

#[derive(Debug)]
pub struct TemplateError(pub String);

impl std::error::Error for TemplateError {}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template: {}", self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// One AWS::Lambda::Function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u64,
}

/// One AWS::Lambda::EventSourceMapping on an SQS queue.
#[derive(Debug, Clone)]
pub struct QueueSource {
    pub function: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub max_concurrency: Option<u64>,
    pub report_batch_item_failures: bool,
}

/// A route of the HTTP API: `GET /console/{proxy+}`, `ANY /v1/{proxy+}`, ...
#[derive(Debug, Clone)]
pub struct Route {
    /// Upper case, or `ANY`.
    pub method: String,
    pub path: String,
    pub function: String,
}

impl Route {
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether this route serves the request, and its path parameters.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if self.method != "ANY" && !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        match self.path.split_once("/{") {
            None => (self.path == path).then(Vec::new),
            Some((prefix, var)) => {
                let name = var.strip_suffix("+}")?;
                let rest = path.strip_prefix(prefix)?.strip_prefix('/')?;
                Some(vec![(name.to_owned(), rest.to_owned())])
            }
        }
    }
}

/// A schedule (AWS::Events::Rule with a `rate(...)` expression) invoking a function.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub function: String,
    pub rule: String,
    pub every: Duration,
}

/// One statement of a role's policy, resolved.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: String,
    pub allow: bool,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// `{operator: {key: [values]}}`
    pub condition: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub statements: Vec<Statement>,
    pub managed: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub functions: HashMap<String, FunctionSpec>,
    pub queues: Vec<QueueSource>,
    pub routes: Vec<Route>,
    pub schedules: Vec<Schedule>,
    /// Function logical id → its role's policies.
    pub roles: HashMap<String, Role>,
}

/// `EventsQueueUrl` → `EVENTS_QUEUE_URL` (as `scripts/provision.py` prints outputs).
pub fn upper_snake(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.push(if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' });
    }
    out
}

/// Resolves intrinsics against parameters and the data stack's outputs.
pub struct Resolver<'a> {
    parameters: HashMap<String, Value>,
    conditions: &'a Map<String, Value>,
    outputs: &'a HashMap<String, String>,
    stack_name: String,
}

/// `AWS::NoValue`: the property is left out.
const NO_VALUE: &str = "\u{0}NoValue";

impl<'a> Resolver<'a> {
    pub fn new(template: &'a Value, overrides: &HashMap<String, String>, outputs: &'a HashMap<String, String>, stack_name: &str) -> Result<Self, TemplateError> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let mut parameters = HashMap::new();
        for (name, p) in template["Parameters"].as_object().into_iter().flatten() {
            let value = match overrides.get(name) {
                Some(v) => Value::String(v.clone()),
                None => p.get("Default").cloned().ok_or_else(|| TemplateError(format!("parameter {name} has no default and no value")))?,
            };
            check_parameter(name, p, &value)?;
            parameters.insert(name.clone(), value);
        }
        if let Some(unknown) = overrides.keys().find(|k| !parameters.contains_key(*k)) {
            return err(format!("no parameter {unknown}"));
        }
        let conditions = template["Conditions"].as_object().unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        Ok(Self { parameters, conditions, outputs, stack_name: stack_name.to_owned() })
    }

    fn reference(&self, name: &str) -> Result<Value, TemplateError> {
        Ok(match name {
            "AWS::Region" => REGION.into(),
            "AWS::AccountId" => ACCOUNT.into(),
            "AWS::Partition" => "aws".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "AWS::StackName" => self.stack_name.clone().into(),
            "AWS::NoValue" => NO_VALUE.into(),
            _ => match self.parameters.get(name) {
                Some(v) => v.clone(),
                // A resource: its logical id stands for its name or ARN.
                None => name.into(),
            },
        })
    }

    fn get_att(&self, resource: &str, attribute: &str) -> Result<Value, TemplateError> {
        match (resource, attribute.strip_prefix("Outputs.")) {
            ("Data", Some(output)) => {
                let key = upper_snake(output);
                self.outputs.get(&key).map(|v| Value::String(v.clone())).ok_or_else(|| TemplateError(format!("the local stack has no output {output} ({key})")))
            }
            // A resource of this template: its logical id (the runner names functions by it).
            (_, None) if attribute == "Arn" => Ok(Value::String(resource.to_owned())),
            _ => err(format!("Fn::GetAtt {resource}.{attribute}")),
        }
    }

    fn sub(&self, text: &str, vars: &Map<String, Value>) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').ok_or_else(|| TemplateError(format!("unclosed ${{ in {text}")))? + start;
            let name = &rest[start + 2..end];
            let value = match vars.get(name) {
                Some(v) => self.resolve(v)?,
                None => match name.split_once('.') {
                    Some((res, att)) => self.get_att(res, att)?,
                    None => self.reference(name)?,
                },
            };
            out.push_str(&scalar(&value)?);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    pub fn condition(&self, name: &str) -> Result<bool, TemplateError> {
        let c = self.conditions.get(name).ok_or_else(|| TemplateError(format!("no condition {name}")))?;
        self.truth(c)
    }

    fn truth(&self, v: &Value) -> Result<bool, TemplateError> {
        let Some((f, args)) = intrinsic(v) else { return err(format!("not a condition: {v}")) };
        let list = || args.as_array().cloned().unwrap_or_default();
        match f {
            "Fn::Equals" => {
                let l = list();
                let [a, b] = l.as_slice() else { return err("Fn::Equals takes two values") };
                Ok(scalar(&self.resolve(a)?)? == scalar(&self.resolve(b)?)?)
            }
            "Fn::Not" => Ok(!self.truth(list().first().ok_or_else(|| TemplateError("Fn::Not takes one condition".into()))?)?),
            "Fn::And" => list().iter().try_fold(true, |acc, c| Ok(acc && self.truth(c)?)),
            "Fn::Or" => list().iter().try_fold(false, |acc, c| Ok(acc || self.truth(c)?)),
            "Condition" => self.condition(args.as_str().unwrap_or_default()),
            other => err(format!("{other} in a condition")),
        }
    }

    /// The value with every intrinsic replaced; `AWS::NoValue` entries dropped.
    pub fn resolve(&self, v: &Value) -> Result<Value, TemplateError> {
        if let Some((f, args)) = intrinsic(v) {
            return match f {
                "Ref" => self.reference(args.as_str().unwrap_or_default()),
                "Fn::GetAtt" => {
                    let (res, att) = match args {
                        Value::Array(a) if a.len() == 2 => (a[0].as_str().unwrap_or_default().to_owned(), a[1].as_str().unwrap_or_default().to_owned()),
                        Value::String(s) => s.split_once('.').map(|(r, a)| (r.to_owned(), a.to_owned())).ok_or_else(|| TemplateError(format!("Fn::GetAtt {s}")))?,
                        other => return err(format!("Fn::GetAtt {other}")),
                    };
                    self.get_att(&res, &att)
                }
                "Fn::Sub" => match args {
                    Value::String(s) => Ok(Value::String(self.sub(s, &Map::new())?)),
                    Value::Array(a) if a.len() == 2 => Ok(Value::String(self.sub(a[0].as_str().unwrap_or_default(), a[1].as_object().unwrap_or(&Map::new()))?)),
                    other => err(format!("Fn::Sub {other}")),
                },
                "Fn::If" => {
                    let a = args.as_array().filter(|a| a.len() == 3).ok_or_else(|| TemplateError("Fn::If takes three values".into()))?;
                    let branch = if self.condition(a[0].as_str().unwrap_or_default())? { &a[1] } else { &a[2] };
                    self.resolve(branch)
                }
                "Fn::Join" => {
                    let a = args.as_array().filter(|a| a.len() == 2).ok_or_else(|| TemplateError("Fn::Join takes two values".into()))?;
                    let items = self.resolve(&a[1])?;
                    let parts = items.as_array().ok_or_else(|| TemplateError("Fn::Join of a non-list".into()))?.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
                    Ok(Value::String(parts.join(a[0].as_str().unwrap_or_default())))
                }
                "Fn::Select" => {
                    let a = args.as_array().filter(|a| a.len() == 2).ok_or_else(|| TemplateError("Fn::Select takes two values".into()))?;
                    let i: usize = scalar(&self.resolve(&a[0])?)?.parse().map_err(|_| TemplateError("Fn::Select index".into()))?;
                    self.resolve(&a[1])?.as_array().and_then(|l| l.get(i).cloned()).ok_or_else(|| TemplateError("Fn::Select out of range".into()))
                }
                other => err(format!("intrinsic {other} is not played by the runner")),
            };
        }
        Ok(match v {
            Value::Array(items) => Value::Array(items.iter().map(|i| self.resolve(i)).collect::<Result<Vec<_>, _>>()?.into_iter().filter(|i| i != NO_VALUE).collect()),
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    let r = self.resolve(v)?;
                    if r != NO_VALUE {
                        out.insert(k.clone(), r);
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

/// What CloudFormation checks of a parameter's value: `MinValue`/`MaxValue` of a `Number`,
/// `AllowedValues`, `MinLength`/`MaxLength`.
fn check_parameter(name: &str, p: &Value, value: &Value) -> Result<(), TemplateError> {
    let text = scalar(value)?;
    if p["Type"] == "Number" {
        let n: f64 = text.parse().map_err(|_| TemplateError(format!("parameter {name}: {text} is not a number")))?;
        if p["MinValue"].as_f64().is_some_and(|min| n < min) || p["MaxValue"].as_f64().is_some_and(|max| n > max) {
            return err(format!("parameter {name}: {text} is outside {}..{}", p["MinValue"], p["MaxValue"]));
        }
    }
    if let Some(allowed) = p["AllowedValues"].as_array() {
        if !allowed.iter().filter_map(|a| scalar(a).ok()).any(|a| a == text) {
            return err(format!("parameter {name}: {text} is not one of {}", p["AllowedValues"]));
        }
    }
    if p["MinLength"].as_u64().is_some_and(|m| (text.len() as u64) < m) || p["MaxLength"].as_u64().is_some_and(|m| (text.len() as u64) > m) {
        return err(format!("parameter {name}: {text} has the wrong length"));
    }
    Ok(())
}

/// `{"Ref": x}`, `{"Fn::Sub": x}`, ...: the function name and its argument.
fn intrinsic(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object().filter(|m| m.len() == 1)?;
    let (k, a) = map.iter().next()?;
    (k == "Ref" || k == "Condition" || k.starts_with("Fn::")).then_some((k.as_str(), a))
}

/// A string, number or boolean as CloudFormation turns it into text.
fn scalar(v: &Value) -> Result<String, TemplateError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => err(format!("expected a scalar, got {other}")),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(|s| scalar(s).ok()).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// `rate(5 minutes)` → 300 s.
fn rate(expr: &str) -> Option<Duration> {
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

impl Deployment {
    /// Reads the translated template, resolved against the local stack.
    pub fn resolve(template: &Value, parameters: &HashMap<String, String>, outputs: &HashMap<String, String>, stack_name: &str) -> Result<Self, TemplateError> {
        let r = Resolver::new(template, parameters, outputs, stack_name)?;
        let resources = template["Resources"].as_object().ok_or_else(|| TemplateError("no Resources".into()))?;
        let mut d = Deployment { functions: HashMap::new(), queues: Vec::new(), routes: Vec::new(), schedules: Vec::new(), roles: HashMap::new() };
        let mut role_of = HashMap::new();
        for (id, res) in resources {
            if let Some(c) = res.get("Condition").and_then(Value::as_str) {
                if !r.condition(c)? {
                    continue;
                }
            }
            let props = r.resolve(&res["Properties"])?;
            match res["Type"].as_str().unwrap_or_default() {
                "AWS::Lambda::Function" => {
                    let env = props["Environment"]["Variables"].as_object().map(|vars| vars.iter().map(|(k, v)| Ok((k.clone(), scalar(v)?))).collect::<Result<Vec<_>, TemplateError>>()).transpose()?.unwrap_or_default();
                    let timeout = props["Timeout"].as_u64().or_else(|| props["Timeout"].as_str().and_then(|s| s.parse().ok())).unwrap_or(3);
                    let memory_mb = props["MemorySize"].as_u64().unwrap_or(128);
                    if let Some(role) = props["Role"].as_str() {
                        role_of.insert(id.clone(), role.to_owned());
                    }
                    d.functions.insert(id.clone(), FunctionSpec { logical_id: id.clone(), env, timeout: Duration::from_secs(timeout), memory_mb });
                }
                "AWS::Lambda::EventSourceMapping" => {
                    let arn = props["EventSourceArn"].as_str().unwrap_or_default().to_owned();
                    if !arn.starts_with("arn:aws:sqs:") {
                        return err(format!("{id}: event source {arn} is not an SQS queue"));
                    }
                    d.queues.push(QueueSource {
                        function: props["FunctionName"].as_str().unwrap_or_default().to_owned(),
                        queue_arn: arn,
                        batch_size: props["BatchSize"].as_i64().unwrap_or(10) as i32,
                        max_concurrency: props["ScalingConfig"]["MaximumConcurrency"].as_u64().or_else(|| props["ScalingConfig"]["MaximumConcurrency"].as_str().and_then(|s| s.parse().ok())),
                        report_batch_item_failures: strings(&props["FunctionResponseTypes"]).iter().any(|t| t == "ReportBatchItemFailures"),
                    });
                }
                "AWS::ApiGatewayV2::Api" => {
                    for (path, item) in props["Body"]["paths"].as_object().into_iter().flatten() {
                        for (method, op) in item.as_object().into_iter().flatten() {
                            let uri = op["x-amazon-apigateway-integration"]["uri"].as_str().unwrap_or_default();
                            // ...:lambda:path/2015-03-31/functions/<FunctionLogicalId>/invocations
                            let Some(function) = uri.split("/functions/").nth(1).and_then(|s| s.strip_suffix("/invocations")) else { continue };
                            let method = if method == "x-amazon-apigateway-any-method" { "ANY".to_owned() } else { method.to_uppercase() };
                            d.routes.push(Route { method, path: path.clone(), function: function.to_owned() });
                        }
                    }
                }
                "AWS::Events::Rule" => {
                    let Some(every) = props["ScheduleExpression"].as_str().and_then(rate) else { continue };
                    for t in props["Targets"].as_array().into_iter().flatten() {
                        d.schedules.push(Schedule { function: t["Arn"].as_str().unwrap_or_default().to_owned(), rule: id.clone(), every });
                    }
                }
                _ => {}
            }
        }
        for (function, role) in role_of {
            let res = &resources.get(&role).ok_or_else(|| TemplateError(format!("{function}: no role {role}")))?;
            let props = r.resolve(&res["Properties"])?;
            let mut statements = Vec::new();
            for p in props["Policies"].as_array().into_iter().flatten() {
                for (i, s) in p["PolicyDocument"]["Statement"].as_array().into_iter().flatten().enumerate() {
                    statements.push(Statement {
                        sid: s["Sid"].as_str().map(str::to_owned).unwrap_or_else(|| format!("{}#{i}", p["PolicyName"].as_str().unwrap_or_default())),
                        allow: s["Effect"] == "Allow",
                        actions: strings(&s["Action"]),
                        resources: strings(&s["Resource"]),
                        condition: s["Condition"].as_object().cloned().unwrap_or_default(),
                    });
                }
            }
            d.roles.insert(function, Role { statements, managed: strings(&props["ManagedPolicyArns"]) });
        }
        // Routes are matched most specific first (API Gateway: exact paths before greedy ones).
        d.routes.sort_by_key(|r| (r.path.contains('{'), std::cmp::Reverse(r.path.len())));
        Ok(d)
    }

    /// The HTTP API's route for a request.
    pub fn route(&self, method: &str, path: &str) -> Option<(&Route, Vec<(String, String)>)> {
        self.routes.iter().find_map(|r| r.matches(method, path).map(|p| (r, p)))
    }
}

#[cfg(test)]
mod tests;
