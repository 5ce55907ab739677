//! Small formatting helpers: a value against its goal, thousands separators, a figure's title.

pub fn verdict(value: f64, goal: f64) -> &'static str {
    if value <= goal {
        "OK"
    } else if value <= goal * 1.5 {
        "NEAR"
    } else {
        "FAR"
    }
}

pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn section(title: &str) {
    println!("\n== {title}");
}
