//! Throughput, memory, parallel speed-up, store requests, start-up and latency of the
//! detector, each measured in one run against a baseline from the same run.
//!
//! `scripts/bench [--records N] [--rounds R] [--objects N] [--bin PATH]` (which starts the
//! emulator) generates a realistic gzip Bedrock log (bodies of hundreds of varied
//! words, 0.5% denials, most from a few persistent principals) and measures:
//! - the floor: inflating the file with the same gzip backend and finding line ends;
//! - `scan --jobs 1` (the release binary) on the same file, and the reader in process;
//!   the order of floor and scan alternates between rounds;
//! - peak RSS of the `scan` process itself (wait4);
//! - a month of logs as many objects: the floor over all of them, `scan --jobs 1`, and
//!   `scan` on every core, whose output must be identical;
//! - store requests per object, binary size, and the time from process start to the
//!   first poll of the Lambda Runtime API (the function's initialization);
//! - with the emulator (AWS_ENDPOINT_URL): the time from handing the function an S3
//!   event to its answer, for objects that each complete a burst (read, count, claim,
//!   publish to SNS, mark), median and p99.

use bedrock_denied_models::alert::MemorySink;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::detector::Detector;
use bedrock_denied_models::identity::ObjectId;
use bedrock_denied_models::reader::Reader;
use bedrock_denied_models::store::memory::MemoryStore;
use bedrock_denied_models::testing::runtime_api::{function_command_at, Answer, RuntimeApi};
use bedrock_denied_models::testing::T0;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

// The emulator stack of the integration tests (bucket, table, topic, subscribed queue).
#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

#[path = "common/mod.rs"]
mod common;
use common::{corpus, floor, scan, Corpus, ScanRun};

/// Checks that scan read everything: the objects, no incomplete or failed one, the
/// records the floor counted and the denials the generator wrote.
fn assert_read_all(run: &ScanRun, objects: usize, c: &Corpus) {
    let s = &run.stderr;
    assert!(
        s.contains(&format!("objects: {objects} scanned")),
        "scan did not read {objects} objects:\n{s}"
    );
    assert!(s.contains("0 incomplete, 0 failed"), "{s}");
    assert!(
        s.contains(&format!(
            "records: {} ({} bytes of log)",
            c.records, c.log_bytes
        )),
        "{s}"
    );
    assert!(s.contains(&format!("denials: {}", c.denials)), "{s}");
    assert!(s.contains("skipped lines: 0 "), "{s}");
}

/// Milliseconds from spawning the function to its first request to the runtime API.
fn startup_ms(bin: &Path) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    listener.set_nonblocking(true).expect("nonblocking");
    let t = Instant::now();
    let mut child = function_command_at(
        bin,
        &addr,
        &[
            ("COUNTER_TABLE", "bench"),
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:111122223333:bench",
            ),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "bench"),
            ("AWS_SECRET_ACCESS_KEY", "bench"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn");
    let conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("the function exited before polling: {status}");
                }
                assert!(t.elapsed() < Duration::from_secs(30), "no poll within 30 s");
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).expect("blocking");
    let mut line = String::new();
    let _ = BufReader::new(conn).read_line(&mut line);
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("/runtime/invocation/next"), "{line}");
    ms
}

/// Object-to-alert latency against the emulator: `n` objects, one at a time, each
/// completing a burst for its own principal in an account of its own (so no account
/// meets its hourly alert allowance). Returns the times of every invocation.
fn latency(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    n: usize,
    env: &[(&str, &str)],
) -> (Vec<Duration>, (f64, f64)) {
    let s = rt.block_on(support::Stack::new("bench"));
    let api = RuntimeApi::start(Vec::new());
    let f = s.function_with(bin, &api, env);
    let mut took = Vec::with_capacity(n + 1);
    // The first invocation warms the function (connections, credentials): not counted.
    for i in 0..=n {
        let account = format!("{:012}", 200_000_000_000 + i);
        let key = format!(
            "AWSLogs/{account}/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/bench-{i}.json.gz"
        );
        let user = format!("arn:aws:iam::{account}:user/latency-{i}");
        let lines: String = (0..4)
            .map(|t| {
                bedrock_denied_models::testing::record(
                    &user,
                    bedrock_denied_models::testing::MODEL,
                    &account,
                    T0 + t,
                    Some(bedrock_denied_models::testing::DENIED),
                    &format!("r{t}"),
                )
                .to_string()
                    + "\n"
            })
            .collect();
        let body = bedrock_denied_models::testing::gzip(lines.as_bytes());
        rt.block_on(s.put(&key, body));
        api.push(s.s3_event(&[key.as_str()]));
        let a = api.recv(Duration::from_secs(60)).expect("answer");
        assert!(
            matches!(a.answer, Answer::Response(ref v) if v["objects"] == 1),
            "{:?}",
            a.answer
        );
        if i > 0 {
            took.push(a.took);
        }
    }
    let logs = f.stop();
    assert_eq!(
        rt.block_on(s.alerts()).len(),
        n + 1,
        "every object published its alert"
    );
    (took, log_bytes(&logs))
}

/// What the function logged per object: the mean length of its `object processed`
/// lines and of its metrics lines (CloudWatch embedded metric format), newline included.
fn log_bytes(logs: &str) -> (f64, f64) {
    let mean = |pick: &dyn Fn(&str) -> bool| {
        let (n, bytes) = logs
            .lines()
            .filter(|l| pick(l))
            .fold((0usize, 0usize), |(n, b), l| (n + 1, b + l.len() + 1));
        bytes as f64 / n.max(1) as f64
    };
    (
        mean(&|l| l.contains("object processed")),
        mean(&|l| l.contains("\"_aws\"")),
    )
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let records = arg(&args, "--records", 100_000);
    let rounds = arg(&args, "--rounds", 3).max(1);
    let objects = arg(&args, "--objects", 48).max(2) as usize;
    // `--bin PATH` measures another build (an earlier release) with this harness.
    let bin = args
        .iter()
        .position(|a| a == "--bin")
        .and_then(|i| args.get(i + 1))
        .map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_bedrock-denied-models")),
            PathBuf::from,
        );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores; corpus: {records} records");

    // One object, an hour of logs.
    let t = Instant::now();
    let single = vec![dir.join(format!("bedrock-v3-{records}.json.gz"))];
    let c = corpus(
        &single,
        records,
        3600,
        &dir.join(format!("bedrock-v3-{records}.meta")),
    );
    let gz_bytes = std::fs::metadata(&single[0]).map_or(0, |m| m.len());
    // The same number of records as a month of objects, in Bedrock's key layout.
    let month_dir = dir.join(format!("month-{records}-{objects}"));
    let month: Vec<PathBuf> = (0..objects)
        .map(|i| {
            let day = 1 + (i * 30 / objects);
            let hour = (i * 24 * 30 / objects) % 24;
            month_dir.join(format!(
                "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/{day:02}/{hour:02}/part-{i:04}.json.gz"
            ))
        })
        .collect();
    let m = corpus(
        &month,
        records,
        30 * 86_400,
        &month_dir.with_extension("meta"),
    );
    println!(
        "corpus: {:.1} MB of log, {:.1} MB gzip, {} denials; month: {objects} objects, {} denials; ready in {:.1} s",
        c.log_bytes as f64 / 1e6,
        gz_bytes as f64 / 1e6,
        c.denials,
        m.denials,
        t.elapsed().as_secs_f64()
    );

    // Floor and scan alternate which goes first, so neither always pays a cold cache.
    let single_arg = single[0].to_string_lossy().into_owned();
    let (mut best_floor, mut best_scan, mut best_lib) =
        (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut peak_rss_kib = 0;
    let mut summary = String::new();
    let mut last_read = None;
    let reader = Reader::new(&Config::default());
    for round in 0..rounds {
        let mut run_floor = || {
            let (took, bytes, lines) = floor(&single);
            assert_eq!((bytes, lines), (c.log_bytes, c.records));
            best_floor = best_floor.min(took);
        };
        let mut run_scan = || {
            let run = scan(&bin, &["--jobs", "1", &single_arg]);
            assert_read_all(&run, 1, &c);
            peak_rss_kib = peak_rss_kib.max(run.peak_rss_kib);
            best_scan = best_scan.min(run.took);
            summary = run.stderr;
        };
        if round % 2 == 0 {
            run_floor();
            run_scan();
        } else {
            run_scan();
            run_floor();
        }
        let t = Instant::now();
        let read = reader.read(File::open(&single[0]).expect("open"), None);
        best_lib = best_lib.min(t.elapsed());
        assert_eq!(read.stats.counts.denials, c.denials);
        assert!(read.error.is_none());
        last_read = Some(read);
    }

    // A month of objects: sequential, then on every core; same output required.
    let month_arg = month_dir.to_string_lossy().into_owned();
    let jobs = cores.to_string();
    let (mut best_month_floor, mut best_seq, mut best_par) =
        (Duration::MAX, Duration::MAX, Duration::MAX);
    for round in 0..rounds {
        let (took, bytes, lines) = floor(&month);
        assert_eq!((bytes, lines), (m.log_bytes, m.records));
        best_month_floor = best_month_floor.min(took);
        let run = |j: &str| {
            let run = scan(&bin, &["--jobs", j, &month_arg]);
            assert_read_all(&run, objects, &m);
            run
        };
        let (seq, par) = if round % 2 == 0 {
            let seq = run("1");
            (seq, run(&jobs))
        } else {
            let par = run(&jobs);
            (run("1"), par)
        };
        assert_eq!(seq.stdout, par.stdout, "same alerts, same order");
        assert_eq!(seq.stderr, par.stderr, "same summary");
        best_seq = best_seq.min(seq.took);
        best_par = best_par.min(par.took);
    }

    // Store requests for the single object: one conditional update per distinct
    // (key, bucket), one query per key, nothing else unless a key alerts.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sink = MemorySink::new();
    let detector = Detector::new(Config::default(), MemoryStore::new(), sink.clone());
    let read = last_read.expect("at least one round");
    rt.block_on(detector.record(&ObjectId::file("bench", "1"), &read.aggregate))
        .expect("record");
    let ops = detector.store().ops();
    let alerts = sink.alerts().len();
    let agg = &read.aggregate;

    let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
    let mut starts: Vec<f64> = (0..5).map(|_| startup_ms(&bin)).collect();
    starts.sort_by(f64::total_cmp);

    let ratio = best_scan.as_secs_f64() / best_floor.as_secs_f64();
    let lib_ratio = best_lib.as_secs_f64() / best_floor.as_secs_f64();
    let speedup = best_seq.as_secs_f64() / best_par.as_secs_f64();
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    let rate = |label: &str, bytes: u64, d: Duration| {
        println!(
            "| {label} | {:.0} MB/s ({:.2} s) |",
            mbps(bytes, d),
            d.as_secs_f64()
        );
    };
    rate("floor: inflate + line ends", c.log_bytes, best_floor);
    rate("`scan --jobs 1`, one object", c.log_bytes, best_scan);
    rate("reader in process", c.log_bytes, best_lib);
    println!("| scan / floor | {ratio:.3} |");
    println!("| reader / floor | {lib_ratio:.3} |");
    println!(
        "| peak RSS of the `scan` process | {:.1} MB |",
        peak_rss_kib as f64 / 1024.0
    );
    rate(
        &format!("{objects} objects: floor, one core"),
        m.log_bytes,
        best_month_floor,
    );
    rate(
        &format!("{objects} objects: `scan --jobs 1`"),
        m.log_bytes,
        best_seq,
    );
    rate(
        &format!("{objects} objects: `scan --jobs {cores}`"),
        m.log_bytes,
        best_par,
    );
    println!("| speed-up on {cores} cores | {speedup:.2}x |");
    println!(
        "| store requests | {} conditional updates for {} distinct (key, bucket); {} queries for {} keys; {} claims, {} marks for {} alerts |",
        ops.adds, agg.updates(), ops.queries, agg.keys.len(), ops.claims, ops.marks, alerts
    );
    println!(
        "| store requests of the other rules | {} set updates for {} distinct (group, bucket); {} set reads for {} groups |",
        ops.member_adds,
        agg.distinct.values().map(|g| g.members.len()).sum::<usize>(),
        ops.member_reads,
        agg.distinct.len()
    );
    println!("| release binary | {:.1} MB |", size as f64 / 1e6);
    println!(
        "| function initialization: start to first runtime-API poll (median of 5) | {:.1} ms |",
        starts[2]
    );
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        let n = arg(&args, "--latency-objects", 60) as usize;
        // Every rule (the default), then the ported rule alone: its own path. A build
        // without RULES reads neither setting, so both rows measure all it has.
        let seed = ("RULES", bedrock_denied_models::rule::SEED.id);
        for (label, env) in [
            ("every rule", &[][..]),
            ("the ported rule only", &[seed][..]),
        ] {
            let (mut lat, (object_line, metrics_line)) = latency(&rt, &bin, n, env);
            lat.sort();
            println!(
                "| object to alert published, warm, emulator ({} objects), {label} | median {:.1} ms, p99 {:.1} ms |",
                lat.len(),
                percentile(&lat, 0.5).as_secs_f64() * 1000.0,
                percentile(&lat, 0.99).as_secs_f64() * 1000.0
            );
            println!(
                "| function log per object, {label}: `object processed` line, metrics line | {object_line:.0} bytes, {metrics_line:.0} bytes |"
            );
        }
    } else {
        println!("| object to alert published | not measured: no emulator (run scripts/bench) |");
    }
    println!();
    let goal = |met: bool| if met { "met" } else { "NOT met" };
    println!("goal scan/floor <= 1.15: {}", goal(ratio <= 1.15));
    println!(
        "goal peak RSS <= 32 MB: {}",
        goal(peak_rss_kib <= 32 * 1024)
    );
    println!(
        "goal one update per (key, bucket), one query per key: {}",
        goal(ops.adds == agg.updates() as u64 && ops.queries == agg.keys.len() as u64)
    );
    if cores >= 2 {
        println!(
            "goal parallel speed-up >= 1.8x on 2 cores: {}",
            goal(speedup >= 1.8)
        );
    }
    println!();
    println!("scan summary (one object):\n{summary}");
}
