use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

fn data() -> Value {
    json!({
        "project": {"id": "p_1", "status": "active", "region": "eu", "budget": 1500, "ratio": 0.25, "archived": false, "owner": null},
        "tags": ["urgent", "site-a"],
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 10}],
        "at": "2026-12-03T10:00:00Z"
    })
}

fn verdict(filter: Value) -> bool {
    Filter::parse(filter.clone()).unwrap_or_else(|e| panic!("{filter}: {e}")).matches("project.updated", &data())
}

#[test]
fn a_table_of_filters_and_their_verdicts() {
    let cases = [
        // equality on a path, of every JSON type
        (json!({"data.project.status": "active"}), true),
        (json!({"data.project.status": "archived"}), false),
        (json!({"data.project.budget": 1500}), true),
        (json!({"data.project.budget": 1500.0}), true),
        (json!({"data.project.ratio": 0.25}), true),
        (json!({"data.project.archived": false}), true),
        (json!({"data.project.owner": null}), true),
        (json!({"data.project.missing": null}), false),
        (json!({"data.project": {"id": "p_1", "status": "active", "region": "eu", "budget": 1500, "ratio": 0.25, "archived": false, "owner": null}}), true),
        (json!({"data.project": {"id": "p_1"}}), false),
        (json!({"event_type": "project.updated"}), true),
        (json!({"event_type": "project.created"}), false),
        // array membership, indexes, looking into elements
        (json!({"data.tags": "urgent"}), true),
        (json!({"data.tags": "late"}), false),
        (json!({"data.tags": ["urgent", "site-a"]}), true),
        (json!({"data.tags.0": "urgent"}), true),
        (json!({"data.tags.1": "urgent"}), false),
        (json!({"data.tags.9": "urgent"}), false),
        (json!({"data.items.sku": "B-7"}), true),
        (json!({"data.items.1.sku": "B-7"}), true),
        (json!({"data.items.0.sku": "B-7"}), false),
        // $eq / $ne
        (json!({"data.project.region": {"$eq": "eu"}}), true),
        (json!({"data.project.region": {"$ne": "eu"}}), false),
        (json!({"data.project.region": {"$ne": "us"}}), true),
        (json!({"data.nothing": {"$ne": "us"}}), true),
        (json!({"data.tags": {"$ne": "urgent"}}), false),
        // $in / $nin
        (json!({"data.project.region": {"$in": ["eu", "uk"]}}), true),
        (json!({"data.project.region": {"$in": ["us", "ca"]}}), false),
        (json!({"data.tags": {"$in": ["late", "site-a"]}}), true),
        (json!({"data.project.region": {"$nin": ["us", "ca"]}}), true),
        (json!({"data.project.region": {"$nin": ["eu"]}}), false),
        (json!({"data.nothing": {"$nin": ["eu"]}}), true),
        (json!({"data.nothing": {"$in": ["eu"]}}), false),
        // comparisons: numbers, strings (RFC 3339 times), arrays of numbers, wrong types
        (json!({"data.project.budget": {"$gt": 1000}}), true),
        (json!({"data.project.budget": {"$gt": 1500}}), false),
        (json!({"data.project.budget": {"$gte": 1500}}), true),
        (json!({"data.project.budget": {"$lt": 1500}}), false),
        (json!({"data.project.budget": {"$lte": 1500}}), true),
        (json!({"data.project.budget": {"$gt": 1000, "$lt": 2000}}), true),
        (json!({"data.project.budget": {"$gt": 1000, "$lt": 1200}}), false),
        (json!({"data.project.ratio": {"$lt": 0.5}}), true),
        (json!({"data.at": {"$gte": "2026-12-01T00:00:00Z"}}), true),
        (json!({"data.at": {"$lt": "2026-12-01T00:00:00Z"}}), false),
        (json!({"data.items.qty": {"$gt": 5}}), true),
        (json!({"data.items.qty": {"$gt": 50}}), false),
        (json!({"data.project.status": {"$gt": 5}}), false),
        (json!({"data.project.budget": {"$gt": "1000"}}), false),
        (json!({"data.nothing": {"$lt": 5}}), false),
        // $exists
        (json!({"data.project.owner": {"$exists": true}}), true),
        (json!({"data.project.nothing": {"$exists": true}}), false),
        (json!({"data.project.nothing": {"$exists": false}}), true),
        (json!({"data.project.id": {"$exists": false}}), false),
        (json!({"data.project.id.deeper": {"$exists": false}}), true),
        // $and / $or / $not, nested, and several conditions at one level
        (json!({"$and": [{"data.project.region": "eu"}, {"data.tags": "urgent"}]}), true),
        (json!({"$and": [{"data.project.region": "eu"}, {"data.tags": "late"}]}), false),
        (json!({"$or": [{"data.project.region": "us"}, {"data.tags": "urgent"}]}), true),
        (json!({"$or": [{"data.project.region": "us"}, {"data.tags": "late"}]}), false),
        (json!({"$not": {"data.project.region": "us"}}), true),
        (json!({"$not": {"data.project.region": "eu"}}), false),
        (json!({"$or": [{"$and": [{"data.project.budget": {"$gte": 1000}}, {"$not": {"data.tags": "late"}}]}, {"event_type": "x.y"}]}), true),
        (json!({"event_type": "project.updated", "data.project.status": "active", "data.items.sku": {"$in": ["A-1"]}}), true),
        (json!({"event_type": "project.updated", "data.project.status": "paused"}), false),
        (json!({"data": {"$exists": true}}), true),
    ];
    for (filter, expected) in cases {
        assert_eq!(verdict(filter.clone()), expected, "{filter}");
    }
}

#[test]
fn malformed_filters_name_the_place_at_fault() {
    let deep = (0..MAX_DEPTH + 1).fold(json!({"data.a": 1}), |f, _| json!({"$not": f}));
    let many: serde_json::Map<String, Value> = (0..=MAX_CONDITIONS).map(|i| (format!("data.k{i}"), json!(i))).collect();
    let cases = [
        (json!("status"), "filter", "must be an object"),
        (json!([{"data.a": 1}]), "filter", "must be an object"),
        (json!({}), "filter", "at least one condition"),
        (json!({"status": "active"}), "filter.status", "is not a path"),
        (json!({"data..a": 1}), "filter.data..a", "empty"),
        (json!({"data.": 1}), "filter.data.", "empty"),
        (json!({"$where": "1"}), "filter.$where", "is not an operator here"),
        (json!({"data.a": {"$regex": "x"}}), "filter.data.a.$regex", "is not an operator; the operators are"),
        (json!({"data.a": {"$gt": true}}), "filter.data.a.$gt", "a number or a string"),
        (json!({"data.a": {"$gt": [1]}}), "filter.data.a.$gt", "a number or a string"),
        (json!({"data.a": {"$in": "eu"}}), "filter.data.a.$in", "an array of literals"),
        (json!({"data.a": {"$in": [{"$gt": 1}]}}), "filter.data.a.$in[0].$gt", "operator inside a literal"),
        (json!({"data.a": {"$exists": "yes"}}), "filter.data.a.$exists", "true or false"),
        (json!({"data.a": {"$eq": 1, "b": 2}}), "filter.data.a", "mixes operators"),
        (json!({"data.a": {"b": {"$gt": 1}}}), "filter.data.a.$gt", "operator inside a literal"),
        (json!({"$and": []}), "filter.$and", "non-empty array"),
        (json!({"$or": {"data.a": 1}}), "filter.$or", "non-empty array"),
        (json!({"$or": [{"data.a": 1}, {"nope": 1}]}), "filter.$or[1].nope", "is not a path"),
        (json!({"$not": [{"data.a": 1}]}), "filter.$not", "must be an object"),
        (deep, "filter", "deeper than"),
        (Value::Object(many), "filter", "more than"),
        (json!({"data.a": {"$in": (0..=MAX_LIST).collect::<Vec<_>>()}}), "filter.data.a.$in", "at most"),
        (json!({"data.a": "x".repeat(MAX_BYTES)}), "filter", "bytes of JSON"),
    ];
    for (filter, path, message) in cases {
        let err = Filter::parse(filter.clone()).expect_err(&filter.to_string());
        assert!(err.path.starts_with(path), "{filter}: {err}");
        assert!(err.message.contains(message), "{filter}: {err}");
    }
}

#[test]
fn a_filter_round_trips_through_its_stored_text() {
    let f = Filter::parse(json!({"$or": [{"data.project.budget": {"$gte": 1000.5}}, {"data.tags": {"$in": ["urgent", null, 3]}}]})).unwrap();
    let again = Filter::from_text(&f.to_text()).unwrap();
    assert_eq!(again, f);
    assert!(Filter::from_text("{not json").is_err());
}

#[test]
fn explain_says_which_condition_did_not_hold() {
    let f = Filter::parse(json!({"data.project.region": "eu", "data.project.budget": {"$gt": 5000}})).unwrap();
    let why = f.explain("project.updated", &data()).unwrap_err();
    assert!(why.contains("data.project.budget is 1500"), "{why}");
    let f = Filter::parse(json!({"$or": [{"data.a": 1}, {"data.tags": "late"}]})).unwrap();
    let why = f.explain("project.updated", &data()).unwrap_err();
    assert!(why.starts_with("none of $or held") && why.contains("data.a is absent"), "{why}");
    assert_eq!(Filter::parse(json!({"data.tags": "urgent"})).unwrap().explain("project.updated", &data()), Ok(()));
    let long = json!({"text": "y".repeat(500)});
    let why = Filter::parse(json!({"data.text": "z"})).unwrap().explain("t.x", &long).unwrap_err();
    assert!(why.len() < 200, "a reason shortens the values it quotes: {why}");
}

// ---------------------------------------------------------------------------------------------
// Property: on arbitrary JSON, neither validation nor evaluation panics, and a filter that
// validates matches or not the same way after a round trip through its text.

fn arbitrary(rng: &mut StdRng, depth: u32) -> Value {
    const KEYS: &[&str] = &["$and", "$or", "$not", "$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$x", "data", "data.a", "data.a.b", "data.l", "data.l.0", "data.l.k", "event_type", "a", "", "data..", "0"];
    let pick = if depth == 0 { rng.gen_range(0..5) } else { rng.gen_range(0..8) };
    match pick {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => match rng.gen_range(0..4) {
            0 => json!(rng.gen_range(-3..4)),
            1 => json!(rng.gen::<f64>() * 10.0 - 5.0),
            2 => json!(u64::MAX - rng.gen_range(0..2)),
            _ => json!(i64::MIN + rng.gen_range(0..2)),
        },
        3 => Value::String(["", "a", "b", "2026-12-03", "é", "\u{0}"][rng.gen_range(0..6)].to_owned()),
        4 => Value::String(KEYS[rng.gen_range(0..KEYS.len())].to_owned()),
        5 | 6 => Value::Object((0..rng.gen_range(0..4)).map(|_| (KEYS[rng.gen_range(0..KEYS.len())].to_owned(), arbitrary(rng, depth - 1))).collect()),
        _ => Value::Array((0..rng.gen_range(0..4)).map(|_| arbitrary(rng, depth - 1)).collect()),
    }
}

/// A filter that is often valid: paths and operators of the language with arguments mostly of
/// the right type, over the keys and values [`arbitrary`] data uses, so both verdicts occur.
fn plausible(rng: &mut StdRng, depth: u32) -> Value {
    const PATHS: &[&str] = &["data", "data.a", "data.a.b", "data.l", "data.l.0", "data.l.k", "event_type", "data.x"];
    const OPS: &[&str] = &["$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$x"];
    let scalar = |rng: &mut StdRng| match rng.gen_range(0..5) {
        0 => json!(rng.gen_range(-3..4)),
        1 => json!(["", "a", "b", "2026-12-03"][rng.gen_range(0..4)]),
        2 => Value::Bool(rng.gen()),
        3 => Value::Null,
        _ => json!("a.b"),
    };
    let entries = (0..rng.gen_range(1..4))
        .map(|_| match rng.gen_range(0..10) {
            0 if depth > 0 => ("$and".to_owned(), Value::Array((0..rng.gen_range(1..3)).map(|_| plausible(rng, depth - 1)).collect())),
            1 if depth > 0 => ("$or".to_owned(), Value::Array((0..rng.gen_range(1..3)).map(|_| plausible(rng, depth - 1)).collect())),
            2 if depth > 0 => ("$not".to_owned(), plausible(rng, depth - 1)),
            3 => (PATHS[rng.gen_range(0..PATHS.len())].to_owned(), arbitrary(rng, 2)),
            4..=5 => (PATHS[rng.gen_range(0..PATHS.len())].to_owned(), scalar(rng)),
            _ => {
                let op = OPS[rng.gen_range(0..OPS.len())];
                let arg = match op {
                    "$in" | "$nin" => Value::Array((0..rng.gen_range(0..4)).map(|_| scalar(rng)).collect()),
                    "$exists" => Value::Bool(rng.gen()),
                    _ => scalar(rng),
                };
                (PATHS[rng.gen_range(0..PATHS.len())].to_owned(), json!({ op: arg }))
            }
        })
        .collect();
    Value::Object(entries)
}

fn data_like(rng: &mut StdRng) -> Value {
    let v = |rng: &mut StdRng| arbitrary(rng, 2);
    match rng.gen_range(0..4) {
        0 => arbitrary(rng, 5),
        _ => json!({"a": {"b": v(rng)}, "l": [v(rng), {"k": v(rng)}], "x": v(rng)}),
    }
}

#[test]
fn on_arbitrary_json_a_filter_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x5eed_f117);
    let (mut valid, mut matched) = (0, 0);
    for i in 0..20_000 {
        let filter = if i % 2 == 0 { arbitrary(&mut rng, 5) } else { plausible(&mut rng, 3) };
        let data = data_like(&mut rng);
        let event_type = ["a.b", "project.created"][i % 2];
        if let Ok(f) = Filter::parse(filter) {
            valid += 1;
            let verdict = f.matches(event_type, &data);
            matched += verdict as u32;
            assert_eq!(Filter::from_text(&f.to_text()).expect("its own text").matches(event_type, &data), verdict);
            assert_eq!(f.explain(event_type, &data).is_ok(), verdict);
        }
    }
    // The generators must reach valid filters, and both verdicts, or the property says little.
    assert!(valid > 3_000 && matched > 300 && matched + 300 < valid, "valid {valid}, matched {matched}");
}
