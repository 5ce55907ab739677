//! The summary table printed at the end: one row per measured goal.

use crate::format::section;

pub struct Summary(pub Vec<(String, String, String, &'static str)>);

impl Summary {
    pub fn add(&mut self, figure: &str, measured: String, goal: &str, verdict: &'static str) {
        self.0.push((figure.to_owned(), measured, goal.to_owned(), verdict));
    }

    pub fn print(&self) {
        section("Summary");
        println!("  {:<44} {:<48} {:<10} verdict", "figure", "measured", "goal");
        for (f, m, g, v) in &self.0 {
            println!("  {:<44} {:<48} {:<10} {}", f, m, g, v);
        }
    }
}
