//! Memory for hostile objects: peak RSS of `scan --jobs 1` (the function's reader and
//! aggregation, with the in-memory store) on objects built to exhaust memory, each up
//! to `--mb` MB of log (default 1024), beside the realistic corpus as the baseline of
//! the same run (docs/DESIGN.md, "Bounded memory").
//!
//! `cargo bench --features testing --bench hostile -- [--mb N] [--bin PATH]`; with
//! `--bin`, another build of the detector is measured on the same objects (the
//! figures "before" a change).
//!
//! The objects:
//! - long ids: every line a new principal of 1 MiB and a request id of 1 MiB;
//! - many keys: a new principal and model per line, each id just under the 2 KB at
//!   which ids are cut (the most memory an id may keep);
//! - many buckets: one principal denied every 10 minutes of event time, for years;
//! - long lines: denials with prompts of 15 MiB, under the 16 MiB line limit;
//! - oversized lines: denials of 20 MiB, over the limit.

#[path = "common/mod.rs"]
mod common;

use bedrock_denied_models::alert::rfc3339;
use bedrock_denied_models::testing::T0;
use common::{corpus, try_scan};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const ACCOUNT: &str = "111122223333";
const MODEL: &str = "anthropic.claude-3-opus-20240229-v1:0";
/// The goal for any object up to 1 GB of log.
const GOAL_MB: f64 = 128.0;

/// One denial record as a JSON line (ids and fields are plain ASCII: no escaping).
fn denial(user: &str, model: &str, t: i64, request_id: &str, prompt: &str) -> String {
    format!(
        "{{\"schemaType\":\"ModelInvocationLog\",\"timestamp\":\"{}\",\"accountId\":\"{ACCOUNT}\",\
         \"identity\":{{\"arn\":\"{user}\"}},\"region\":\"us-east-1\",\"requestId\":\"{request_id}\",\
         \"operation\":\"InvokeModel\",\"modelId\":\"{model}\",\"errorCode\":\"AccessDeniedException\",\
         \"input\":{{\"inputBodyJson\":{{\"prompt\":\"{prompt}\"}}}}}}\n",
        rfc3339(t)
    )
}

/// Writes lines from `line(i)` until `bytes` of log, gzip (fast); returns the lines.
fn write_object(path: &Path, bytes: u64, mut line: impl FnMut(u64) -> String) -> u64 {
    let out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let mut gz = GzEncoder::new(out, Compression::fast());
    let (mut written, mut n) = (0u64, 0u64);
    while written < bytes {
        let l = line(n);
        written += l.len() as u64;
        gz.write_all(l.as_bytes()).expect("write");
        n += 1;
    }
    gz.finish().expect("finish").flush().expect("flush");
    n
}

/// Makes line `i` of an object.
type LineMaker = Box<dyn Fn(u64) -> String>;

/// The hostile objects of `mb` MB of log each, generated once.
fn objects(dir: &Path, mb: u64) -> Vec<(&'static str, PathBuf)> {
    let bytes = mb * 1_000_000;
    let mib = |n: usize, c: char| c.to_string().repeat(n << 20);
    let specs: Vec<(&'static str, LineMaker)> = vec![
        (
            "long ids (1 MiB principal and request id per line)",
            Box::new({
                let (user, request) = (mib(1, 'u'), mib(1, 'r'));
                move |i| {
                    denial(
                        &format!("arn:aws:iam::{ACCOUNT}:user/{i:08}{user}"),
                        MODEL,
                        T0,
                        &format!("{i:08}{request}"),
                        "p",
                    )
                }
            }),
        ),
        (
            "many keys (a new 2 KB principal and model per line)",
            Box::new({
                let (user, model) = ("k".repeat(1990), "m".repeat(1990));
                move |i| {
                    denial(
                        &format!("arn:aws:iam::{ACCOUNT}:user/{i:010}{user}"),
                        &format!("{i:010}{model}"),
                        T0,
                        "r",
                        "p",
                    )
                }
            }),
        ),
        (
            "many buckets (one principal, every 10 minutes for years)",
            Box::new(|i| {
                denial(
                    &format!("arn:aws:iam::{ACCOUNT}:user/spread"),
                    MODEL,
                    T0 + i as i64 * 600,
                    &format!("r-{i}"),
                    "p",
                )
            }),
        ),
        (
            "long lines (15 MiB prompts)",
            Box::new({
                let prompt = mib(15, 'w');
                move |i| {
                    denial(
                        &format!("arn:aws:iam::{ACCOUNT}:user/u{i}"),
                        MODEL,
                        T0,
                        "r",
                        &prompt,
                    )
                }
            }),
        ),
        (
            "oversized lines (20 MiB, over the limit)",
            Box::new({
                let prompt = mib(20, 'w');
                move |i| {
                    denial(
                        &format!("arn:aws:iam::{ACCOUNT}:user/u{i}"),
                        MODEL,
                        T0,
                        "r",
                        &prompt,
                    )
                }
            }),
        ),
    ];
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (name, line))| {
            let path = dir.join(format!("hostile-{i}-{mb}mb.json.gz"));
            if !path.exists() {
                let t = Instant::now();
                let tmp = path.with_extension("partial");
                let lines = write_object(&tmp, bytes, line);
                std::fs::rename(&tmp, &path).expect("rename");
                println!(
                    "generated {name}: {lines} lines in {:.1} s",
                    t.elapsed().as_secs_f64()
                );
            }
            (name, path)
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mb: u64 = value("--mb").and_then(|v| v.parse().ok()).unwrap_or(1024);
    let bin = value("--bin").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_bedrock-denied-models")),
        PathBuf::from,
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let normal = vec![dir.join("bedrock-v3-100000.json.gz")];
    let meta = dir.join("bedrock-v3-100000.meta");
    if !args.iter().any(|a| a == "--measure") {
        // Generating leaves this process large, and a child's peak RSS starts from
        // its parent's when it is spawned: measure from a fresh process.
        corpus(&normal, 100_000, 3600, &meta);
        objects(&dir, mb);
        let status = std::process::Command::new(std::env::current_exe().expect("self"))
            .args(&args[1..])
            .arg("--measure")
            .status()
            .expect("measure");
        std::process::exit(status.code().unwrap_or(1));
    }
    println!("binary: {}", bin.display());

    // The baseline: the realistic corpus of the throughput benchmark.
    let c = corpus(&normal, 100_000, 3600, &meta);
    let mut rows = Vec::new();
    let run = |path: &Path| try_scan(&bin, &["--jobs", "1", &path.to_string_lossy()]);
    let base = run(&normal[0]);
    rows.push((
        "realistic corpus (baseline)",
        c.log_bytes,
        normal[0].clone(),
        base,
    ));
    for (name, path) in objects(&dir, mb) {
        let r = run(&path);
        rows.push((name, mb * 1_000_000, path, r));
    }
    let base_mb = rows[0].3.peak_rss_kib as f64 / 1024.0;
    println!();
    println!("| object | log | gzip | peak RSS | vs baseline | time | exit | note |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for (name, log, path, r) in &rows {
        let rss = r.peak_rss_kib as f64 / 1024.0;
        worst = worst.max(rss);
        let gz = std::fs::metadata(path).map_or(0, |m| m.len());
        let note = r
            .stderr
            .lines()
            .filter(|l| l.contains("over the per-object limits") || l.starts_with("skipped lines"))
            .map(|l| l.trim_start_matches("bedrock-denied-models: "))
            .collect::<Vec<_>>()
            .join("; ");
        println!(
            "| {name} | {:.0} MB | {:.1} MB | {rss:.1} MB | {:.1}x | {:.1} s | {} | {} |",
            *log as f64 / 1e6,
            gz as f64 / 1e6,
            rss / base_mb,
            r.took.as_secs_f64(),
            r.status,
            note.chars().take(160).collect::<String>()
        );
    }
    println!();
    let met = if worst < GOAL_MB { "met" } else { "NOT met" };
    println!("goal peak RSS below {GOAL_MB:.0} MB for every object: {met} (worst {worst:.1} MB)");
}
