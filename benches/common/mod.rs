//! What the channel benchmarks share: reading a process's memory and CPU from `/proc`, medians,
//! the floor bots' process, the figures file and the regression guard.
//!
//! Figures are written to `target/bench-figures/<bench>.json` (or `$SWITCHBOARD_BENCH_OUT/`).
//! With `SWITCHBOARD_BENCH_GUARD=<baseline.json>` the bench also compares the figures that do not
//! depend on the machine's speed with the baseline's, and exits non-zero on a regression beyond
//! 15 %, printing both (CI runs it so).

#![allow(dead_code)]

pub mod floor;
pub mod hot_path;

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A tracer (strace, perf) attached to a process for part of a bench run. SIGINT makes both
/// detach and write what they gathered.
pub struct Tracer(Child);

impl Tracer {
    pub fn attach(program: &str, args: &[String]) -> Tracer {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tracer");
        // Let it attach before the traced work starts.
        std::thread::sleep(Duration::from_millis(500));
        Tracer(child)
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// (minor, major) page faults of `pid` so far, summed over its threads (`/proc/PID/stat`).
pub fn faults(pid: u32) -> (u64, u64) {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(7)?.parse().ok()?, f.get(9)?.parse().ok()?))
        })
        .unwrap_or((0, 0))
}

/// Resident set size of `pid`, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// The most `pid` has had resident since it started.
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A memory line of `/proc/PID/status`, in MiB.
pub fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU time `pid` has used so far, in seconds, summed over its live threads. Read from each
/// thread's `schedstat` (nanoseconds), since `/proc/PID/stat` counts in 10 ms ticks, too coarse
/// for an idle minute.
pub fn cpu_secs(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    let mut ns = 0u64;
    for t in tasks.flatten() {
        if let Some(v) = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            })
        {
            ns += v;
        }
    }
    ns as f64 / 1e9
}

/// CPU nanoseconds used so far by each live thread of `pid`, by thread id and name.
pub fn thread_cpu(pid: u32) -> BTreeMap<(u32, String), u64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let tid = t.file_name().to_string_lossy().parse().unwrap_or(0);
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        out.insert((tid, name.trim().to_string()), ns);
    }
    out
}

/// Which threads used the CPU between two [`thread_cpu`] readings (printed with `BENCH_SMAPS`).
pub fn thread_cpu_delta(
    a: &BTreeMap<(u32, String), u64>,
    b: &BTreeMap<(u32, String), u64>,
) -> String {
    let mut out = String::new();
    for (k, v) in b {
        let d = v.saturating_sub(a.get(k).copied().unwrap_or(0));
        out.push_str(&format!(
            "  {:>10.3} ms  {} ({})\n",
            d as f64 / 1e6,
            k.1,
            k.0
        ));
    }
    out
}

/// How long idle CPU is sampled (`BENCH_IDLE_SECS`, default 30: a long poll, a cron recheck and
/// most of a Discord heartbeat interval fall in it).
pub fn idle_window() -> Duration {
    Duration::from_secs_f64(
        std::env::var("BENCH_IDLE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30.0),
    )
}

/// CPU seconds `pid` uses over `window`, sampling its threads every 250 ms so a thread that
/// comes and goes (the blocking pool's) is counted, and one that ends is not subtracted.
pub async fn cpu_over(pid: u32, window: Duration) -> f64 {
    let start = thread_cpu(pid);
    let mut last = start.clone();
    let deadline = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250).min(deadline - tokio::time::Instant::now()))
            .await;
        for (k, v) in thread_cpu(pid) {
            let e = last.entry(k).or_insert(0);
            *e = (*e).max(v);
        }
    }
    let ns: u64 = last
        .iter()
        .map(|(k, v)| v.saturating_sub(start.get(k).copied().unwrap_or(0)))
        .sum();
    ns as f64 / 1e9
}

/// Threads of `pid`.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// `/proc/PID/smaps_rollup` plus the largest mappings of `/proc/PID/smaps` by RSS: where the
/// resident memory is (printed with `BENCH_SMAPS=1`).
pub fn smaps_summary(pid: u32) -> String {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut maps: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut current = String::new();
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            let perms = line.split_whitespace().nth(1).unwrap_or_default();
            let name = line.split_whitespace().nth(5).unwrap_or("[anon]");
            current = format!("{name} {perms}");
        } else if first == "Rss:" {
            let kb: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let e = maps.entry(current.clone()).or_default();
            e.0 += kb;
            e.1 += 1;
        }
    }
    let mut v: Vec<_> = maps.into_iter().collect();
    v.sort_by_key(|b| std::cmp::Reverse(b.1.0));
    let mut out = rollup;
    for (name, (kb, n)) in v.into_iter().take(12) {
        out.push_str(&format!("{kb:>8} kB in {n:>3} mappings  {name}\n"));
    }
    out
}

pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Figures from repeated runs: each run adds one value per figure; the table prints medians.
#[derive(Default)]
pub struct Runs {
    values: BTreeMap<String, Vec<f64>>,
    order: Vec<String>,
}

impl Runs {
    pub fn add(&mut self, key: &str, v: f64) {
        if !self.values.contains_key(key) {
            self.order.push(key.to_string());
        }
        self.values.entry(key.to_string()).or_default().push(v);
    }

    pub fn median(&self, key: &str) -> f64 {
        self.values.get(key).map_or(f64::NAN, |v| median(v.clone()))
    }

    pub fn all(&self, key: &str) -> Vec<f64> {
        self.values.get(key).cloned().unwrap_or_default()
    }
}

/// One row of the printed table: a figure, ours against the floor's.
pub struct Row {
    pub label: &'static str,
    pub key: &'static str,
    pub unit: &'static str,
}

/// Prints `| figure | floor | switchboard | ratio |` with medians of `floor` and `ours`.
pub fn print_table(title: &str, rows: &[Row], floor: &Runs, ours: &Runs) {
    println!("\n{title} (medians)");
    println!("| figure | floor | switchboard | ratio |");
    println!("|---|---|---|---|");
    for r in rows {
        let f = floor.median(r.key);
        let o = ours.median(r.key);
        let ratio = if f.is_finite() && f > 0.0 && o.is_finite() {
            format!("{:.2}×", o / f)
        } else {
            "—".into()
        };
        println!(
            "| {} | {} | {} | {ratio} |",
            r.label,
            fmt(f, r.unit),
            fmt(o, r.unit)
        );
    }
}

fn fmt(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    match unit {
        "ms" => format!("{v:.2} ms"),
        "s" => format!("{v:.3} s"),
        "MiB" => format!("{v:.2} MiB"),
        "" => format!("{v:.2}"),
        u => format!("{v:.1} {u}"),
    }
}

/// The floor bot, run as a child process of this bench binary (the same build, so it pays for
/// the same libraries, and its memory is its own). Killed on drop.
pub struct FloorProcess {
    pub child: Child,
}

impl FloorProcess {
    /// Runs `floor::main` of this binary for `kind` (`telegram`, `discord`).
    pub fn spawn(kind: &str, api_url: &str, model_url: &str) -> FloorProcess {
        let exe = std::env::current_exe().expect("own executable");
        let mut cmd = Command::new(exe);
        // The same environment as the gateway it is measured against.
        match crate::support::gateway::user_library_path() {
            Some(p) => cmd.env("LD_LIBRARY_PATH", p),
            None => cmd.env_remove("LD_LIBRARY_PATH"),
        };
        let child = cmd
            .env(floor::ENV_KIND, kind)
            .env(floor::ENV_API, api_url)
            .env(floor::ENV_MODEL, model_url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn floor bot");
        FloorProcess { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FloorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Figures that do not depend on the machine's speed, guarded against the checked-in baseline:
/// `(key, what it is)`. Lower is better for all of them.
pub type Guarded = &'static [(&'static str, &'static str)];

/// Allowed growth over the baseline before the guard fails.
pub const TOLERANCE: f64 = 0.15;

/// Writes `figures` (medians, plus every run's value) to the figures file, then, when
/// `SWITCHBOARD_BENCH_GUARD` names a baseline, compares `guarded` and exits 1 on a regression.
pub fn finish(bench: &str, sides: &[(&str, &Runs)], guarded: Guarded) {
    let mut doc = Map::new();
    for (side, runs) in sides {
        let mut m = Map::new();
        for key in &runs.order {
            m.insert(
                key.clone(),
                json!({ "median": runs.median(key), "runs": runs.all(key) }),
            );
        }
        doc.insert((*side).to_string(), Value::Object(m));
    }
    let dir = std::env::var_os("SWITCHBOARD_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-figures"));
    let path = dir.join(format!("{bench}.json"));
    let text = serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default();
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, text)) {
        Ok(()) => println!("\nfigures written to {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
    let Some(baseline) = std::env::var_os("SWITCHBOARD_BENCH_GUARD") else {
        return;
    };
    let base: Value = match std::fs::read_to_string(&baseline)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "guard: cannot read {}: {e}",
                PathBuf::from(baseline).display()
            );
            std::process::exit(1);
        }
    };
    let ours = sides
        .iter()
        .find(|(s, _)| *s == "switchboard")
        .map(|(_, r)| *r);
    let mut failed = false;
    println!(
        "\nregression guard ({bench}, against {}):",
        PathBuf::from(&baseline).display()
    );
    println!("| figure | baseline | now | change | |");
    println!("|---|---|---|---|---|");
    for (key, what) in guarded {
        let now = ours.map_or(f64::NAN, |r| r.median(key));
        let Some(was) = base[bench][key].as_f64() else {
            println!("| {what} | — | {now:.3} | new | |");
            continue;
        };
        let change = if was > 0.0 { now / was - 1.0 } else { 0.0 };
        let bad = !now.is_finite() || change > TOLERANCE;
        failed |= bad;
        println!(
            "| {what} | {was:.3} | {now:.3} | {:+.1} % | {} |",
            change * 100.0,
            if bad { "REGRESSION" } else { "ok" }
        );
    }
    if failed {
        eprintln!(
            "guard: a figure grew more than {:.0} % over benches/baseline.json; fix the regression, or if the growth is intended, update the baseline and say why in the commit",
            TOLERANCE * 100.0
        );
        std::process::exit(1);
    }
}
