//! Payload filters: a subscription's `filter` selects events by their content, in a small JSON
//! language in the style of Convoy's and Outpost's (MongoDB's query operators). Fan-out evaluates
//! it on the event it already holds, with no read; `docs/filters.md` is the user's reference.
//!
//! A filter is an object of conditions that must all hold:
//! - a **path** — `event_type`, `data`, or `data.<key>.<key>…` (a numeric key indexes an array; any
//!   other key over an array looks into each element) — mapped to a literal (equal to it; for an
//!   array, also when one element equals it) or to an object of operators: `$eq`, `$ne`, `$in`,
//!   `$nin` (arrays of literals), `$gt`, `$gte`, `$lt`, `$lte` (a number, or a string compared
//!   bytewise, e.g. RFC 3339 times), `$exists` (true or false);
//! - `$and` / `$or`: a non-empty array of filters; `$not`: a filter.
//!
//! Validated once, at create and update, within bounds ([`MAX_BYTES`], [`MAX_DEPTH`],
//! [`MAX_CONDITIONS`]); each error names the place at fault (`filter.$or[1].data.amount.$gt`).
//! Evaluation never fails: a value of another type than a comparison expects simply does not match.

use serde_json::Value;
use std::cmp::Ordering;

/// Bounds of one filter: its JSON text, its nesting, its conditions (paths and `$and`/`$or`/
/// `$not` members together), and the members of one `$in` / `$nin`.
pub const MAX_BYTES: usize = 4096;
pub const MAX_DEPTH: usize = 8;
pub const MAX_CONDITIONS: usize = 64;
pub const MAX_LIST: usize = 100;
const MAX_SEGMENT: usize = 128;

const COMPARISONS: &[&str] = &["$gt", "$gte", "$lt", "$lte"];
const OPERATORS: &str = "$eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $exists";

/// A validated filter; it keeps the JSON it was given, which is what the API shows and stores.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Value);

/// Where a filter is malformed (a dotted place below `filter`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub path: String,
    pub message: String,
}

impl FilterError {
    fn at(path: &str, message: impl Into<String>) -> Self {
        Self { path: path.to_owned(), message: message.into() }
    }
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl Filter {
    /// Checks a filter as the API receives it; errors name their place from `filter`.
    pub fn parse(value: Value) -> Result<Self, FilterError> {
        let text = value.to_string();
        if text.len() > MAX_BYTES {
            return Err(FilterError::at("filter", format!("must be at most {MAX_BYTES} bytes of JSON")));
        }
        let mut conditions = 0;
        check_filter(&value, "filter", 1, &mut conditions)?;
        Ok(Self(value))
    }

    /// Parses stored JSON text (written by [`Filter::to_text`] after [`Filter::parse`]).
    pub fn from_text(text: &str) -> Result<Self, FilterError> {
        let value = serde_json::from_str(text).map_err(|e| FilterError::at("filter", format!("is not JSON: {e}")))?;
        Self::parse(value)
    }

    pub fn to_text(&self) -> String {
        self.0.to_string()
    }

    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// Whether an event of this type with this `data` passes.
    pub fn matches(&self, event_type: &str, data: &Value) -> bool {
        self.explain(event_type, data).is_ok()
    }

    /// `Ok` if the event passes, else the first condition that did not hold, in words.
    pub fn explain(&self, event_type: &str, data: &Value) -> Result<(), String> {
        eval(&self.0, &Event { event_type, data })
    }
}

// ---------------------------------------------------------------------------------------------
// Validation

fn check_filter(v: &Value, at: &str, depth: usize, conditions: &mut usize) -> Result<(), FilterError> {
    if depth > MAX_DEPTH {
        return Err(FilterError::at(at, format!("nests deeper than {MAX_DEPTH} levels")));
    }
    let Value::Object(map) = v else {
        return Err(FilterError::at(at, "must be an object of conditions"));
    };
    if map.is_empty() {
        return Err(FilterError::at(at, "must hold at least one condition (send null to remove the filter)"));
    }
    for (key, cond) in map {
        *conditions += 1;
        if *conditions > MAX_CONDITIONS {
            return Err(FilterError::at(at, format!("has more than {MAX_CONDITIONS} conditions")));
        }
        let here = format!("{at}.{key}");
        match key.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = cond else { return Err(FilterError::at(&here, "must be a non-empty array of filters")) };
                if items.is_empty() {
                    return Err(FilterError::at(&here, "must be a non-empty array of filters"));
                }
                for (i, item) in items.iter().enumerate() {
                    check_filter(item, &format!("{here}[{i}]"), depth + 1, conditions)?;
                }
            }
            "$not" => check_filter(cond, &here, depth + 1, conditions)?,
            k if k.starts_with('$') => return Err(FilterError::at(&here, "is not an operator here: use $and, $or, $not, or a path (event_type, data, data.<key>…)")),
            k => {
                check_path(k, &here)?;
                check_condition(cond, &here, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn check_path(path: &str, at: &str) -> Result<(), FilterError> {
    if path == "event_type" || path == "data" {
        return Ok(());
    }
    let Some(rest) = path.strip_prefix("data.") else {
        return Err(FilterError::at(at, "is not a path: paths are event_type, data, or data.<key>.<key>…"));
    };
    for seg in rest.split('.') {
        if seg.is_empty() || seg.len() > MAX_SEGMENT || seg.chars().any(char::is_control) {
            return Err(FilterError::at(at, format!("has an empty, control-character or over-{MAX_SEGMENT}-byte key")));
        }
    }
    Ok(())
}

/// An object whose keys all start with `$` is an operator object; any other value a literal.
fn is_operator_object(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty() && m.keys().all(|k| k.starts_with('$')))
}

fn check_condition(cond: &Value, at: &str, depth: usize) -> Result<(), FilterError> {
    if let Value::Object(m) = cond {
        let ops = m.keys().filter(|k| k.starts_with('$')).count();
        if ops > 0 && ops < m.len() {
            return Err(FilterError::at(at, "mixes operators ($…) and literal keys: use one or the other"));
        }
    }
    if !is_operator_object(cond) {
        return check_literal(cond, at, depth);
    }
    for (op, arg) in cond.as_object().into_iter().flatten() {
        let here = format!("{at}.{op}");
        match op.as_str() {
            "$eq" | "$ne" => check_literal(arg, &here, depth + 1)?,
            "$in" | "$nin" => {
                let Value::Array(items) = arg else { return Err(FilterError::at(&here, "must be an array of literals")) };
                if items.len() > MAX_LIST {
                    return Err(FilterError::at(&here, format!("must have at most {MAX_LIST} members")));
                }
                for (i, item) in items.iter().enumerate() {
                    check_literal(item, &format!("{here}[{i}]"), depth + 1)?;
                }
            }
            c if COMPARISONS.contains(&c) => {
                if !matches!(arg, Value::Number(_) | Value::String(_)) {
                    return Err(FilterError::at(&here, "must be a number or a string"));
                }
            }
            "$exists" => {
                if !arg.is_boolean() {
                    return Err(FilterError::at(&here, "must be true or false"));
                }
            }
            _ => return Err(FilterError::at(&here, format!("is not an operator; the operators are {OPERATORS}"))),
        }
    }
    Ok(())
}

/// A literal: any JSON within the depth bound, without `$` keys (which would read as operators).
fn check_literal(v: &Value, at: &str, depth: usize) -> Result<(), FilterError> {
    if depth > MAX_DEPTH {
        return Err(FilterError::at(at, format!("nests deeper than {MAX_DEPTH} levels")));
    }
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| check_literal(i, at, depth + 1)),
        Value::Object(m) => {
            if let Some(k) = m.keys().find(|k| k.starts_with('$')) {
                return Err(FilterError::at(&format!("{at}.{k}"), "is an operator inside a literal value"));
            }
            m.values().try_for_each(|i| check_literal(i, at, depth + 1))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation (on a validated filter; anything unexpected simply does not match)

struct Event<'a> {
    event_type: &'a str,
    data: &'a Value,
}

fn eval(filter: &Value, event: &Event<'_>) -> Result<(), String> {
    let Value::Object(map) = filter else { return Err("the filter is not an object".into()) };
    for (key, cond) in map {
        match key.as_str() {
            "$and" => {
                for f in cond.as_array().into_iter().flatten() {
                    eval(f, event)?;
                }
            }
            "$or" => {
                let alternatives = cond.as_array().map(Vec::as_slice).unwrap_or_default();
                let mut why = Vec::new();
                for f in alternatives {
                    match eval(f, event) {
                        Ok(()) => break,
                        Err(e) => why.push(e),
                    }
                }
                if why.len() == alternatives.len() {
                    return Err(format!("none of $or held ({})", why.join("; ")));
                }
            }
            "$not" => {
                if eval(cond, event).is_ok() {
                    return Err(format!("$not: {cond} held"));
                }
            }
            path => {
                let values = resolve(path, event);
                if !condition(cond, &values) {
                    let found = match values.as_slice() {
                        [] => "absent".to_owned(),
                        [one] => short(one),
                        many => format!("[{}]", many.iter().map(|v| short(v)).collect::<Vec<_>>().join(", ")),
                    };
                    return Err(format!("{path} is {found}, which does not satisfy {cond}"));
                }
            }
        }
    }
    Ok(())
}

/// A value for a reason, shortened: a reason is shown to the tenant who owns the payload, but it
/// need not repeat all of it.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// The values a path reaches: none if absent; several where a key looks into an array's elements.
fn resolve<'a>(path: &str, event: &Event<'a>) -> Vec<std::borrow::Cow<'a, Value>> {
    use std::borrow::Cow;
    if path == "event_type" {
        return vec![Cow::Owned(Value::String(event.event_type.to_owned()))];
    }
    let mut current: Vec<&'a Value> = vec![event.data];
    for seg in path.strip_prefix("data").unwrap_or(path).split('.').filter(|s| !s.is_empty()) {
        let mut next = Vec::new();
        for v in current {
            step(v, seg, &mut next);
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current.into_iter().map(Cow::Borrowed).collect()
}

fn step<'a>(v: &'a Value, seg: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => out.extend(m.get(seg)),
        Value::Array(items) => match seg.parse::<usize>() {
            Ok(i) => out.extend(items.get(i)),
            Err(_) => {
                for item in items {
                    if let Value::Object(m) = item {
                        out.extend(m.get(seg));
                    }
                }
            }
        },
        _ => {}
    }
}

fn condition(cond: &Value, values: &[std::borrow::Cow<'_, Value>]) -> bool {
    if !is_operator_object(cond) {
        return values.iter().any(|v| equals(v, cond));
    }
    cond.as_object().into_iter().flatten().all(|(op, arg)| match op.as_str() {
        "$eq" => values.iter().any(|v| equals(v, arg)),
        "$ne" => !values.iter().any(|v| equals(v, arg)),
        "$in" => arg.as_array().is_some_and(|list| list.iter().any(|l| values.iter().any(|v| equals(v, l)))),
        "$nin" => !arg.as_array().is_some_and(|list| list.iter().any(|l| values.iter().any(|v| equals(v, l)))),
        "$exists" => arg.as_bool() == Some(!values.is_empty()),
        c if COMPARISONS.contains(&c) => values.iter().any(|v| members(v).any(|m| compare(c, m, arg))),
        _ => false,
    })
}

/// A value and, for an array, each element (membership).
fn members(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(items) => Box::new(std::iter::once(v).chain(items.iter())),
        _ => Box::new(std::iter::once(v)),
    }
}

/// Equal to the literal, or (for an array) holding an element equal to it. Numbers compare by
/// value (`1` equals `1.0`).
fn equals(v: &Value, literal: &Value) -> bool {
    members(v).any(|m| same(m, literal))
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        _ => a == b,
    }
}

/// Integers exactly, anything else as f64.
fn num_cmp(x: &serde_json::Number, y: &serde_json::Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
        return Some(x.cmp(&y));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

fn compare(op: &str, v: &Value, arg: &Value) -> bool {
    let ord = match (v, arg) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    };
    match (op, ord) {
        ("$gt", Some(Ordering::Greater)) => true,
        ("$gte", Some(Ordering::Greater | Ordering::Equal)) => true,
        ("$lt", Some(Ordering::Less)) => true,
        ("$lte", Some(Ordering::Less | Ordering::Equal)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
