//! Plan and arguments: the command-line flags of `perf`, and how much work each figure does.

pub struct Args {
    pub quick: bool,
    pub only: Option<Vec<u32>>,
    pub child: Option<String>,
    pub logs: bool,
    pub n: usize,
    pub rounds: usize,
}

impl Args {
    pub fn parse() -> Self {
        let mut a = Args { quick: false, only: None, child: None, logs: false, n: 0, rounds: 0 };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--quick" => a.quick = true,
                "--only" => a.only = it.next().map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect()),
                "--child" => a.child = it.next(),
                "--logs" => a.logs = true,
                "--n" => a.n = it.next().and_then(|v| v.parse().ok()).unwrap_or(0),
                "--rounds" => a.rounds = it.next().and_then(|v| v.parse().ok()).unwrap_or(0),
                "-h" | "--help" => {
                    println!("usage: perf [--quick] [--only 1,2,...]   (figures 2-8 need AWS_ENDPOINT_URL: see scripts/perf.sh)");
                    std::process::exit(0);
                }
                other => {
                    eprintln!("perf: unknown argument {other}");
                    std::process::exit(2);
                }
            }
        }
        a
    }

    pub fn wants(&self, fig: u32) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(&fig))
    }
}

/// How much work each figure does (`--quick` shrinks the message counts).
pub struct Plan {
    pub quick: bool,
    pub f1_n: usize,
    pub f1_rounds: usize,
    pub f2_events_one: usize,
    pub f2_events_ten: usize,
    pub f2_failing: usize,
    pub f4_runs: usize,
    pub f6_sizes: Vec<usize>,
    pub f7_burst: usize,
    pub f7_rate: f64,
    pub f7_secs: f64,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        if quick {
            Plan { quick, f1_n: 500, f1_rounds: 3, f2_events_one: 200, f2_events_ten: 20, f2_failing: 50, f4_runs: 5, f6_sizes: vec![1, 10, 100, 1000], f7_burst: 200, f7_rate: 20.0, f7_secs: 5.0 }
        } else {
            Plan { quick, f1_n: 2000, f1_rounds: 5, f2_events_one: 1000, f2_events_ten: 100, f2_failing: 200, f4_runs: 9, f6_sizes: vec![1, 10, 100, 1000], f7_burst: 1000, f7_rate: 20.0, f7_secs: 10.0 }
        }
    }
}
