//! Throughput, memory, store requests and start-up of the detector, each measured in
//! one run against a baseline from the same run.
//!
//! `cargo bench --bench throughput -- [--records N] [--rounds R]` (or `scripts/bench`):
//! generates a realistic gzip Bedrock log (bodies of hundreds of varied words, 0.5%
//! denials, most from a few persistent principals), then measures
//! - the floor: inflating the file with the same gzip backend and finding line ends;
//! - `scan` (the release binary) on the same file, and the library reader in process;
//! - peak RSS of `scan`; DynamoDB-equivalent store requests; binary size and the time
//!   from process start to the first poll of the Lambda Runtime API.

use bedrock_denied_models::aggregate::scan_object;
use bedrock_denied_models::alert::MemorySink;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::detector::Detector;
use bedrock_denied_models::key::ObjectId;
use bedrock_denied_models::logs::DenialMatcher;
use bedrock_denied_models::store::memory::MemoryStore;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BLOCK: usize = 256 << 10;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, fast, good enough for text.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn vocabulary(rng: &mut Rng) -> Vec<String> {
    const SYL: [&str; 24] = [
        "ka", "lo", "mi", "ten", "ra", "vo", "sel", "pa", "qui", "dor", "ne", "bra", "fu", "gi",
        "ho", "jex", "tri", "um", "zo", "wen", "ar", "est", "ion", "ly",
    ];
    (0..4000)
        .map(|_| {
            let n = 1 + rng.below(4) as usize;
            (0..n).map(|_| SYL[rng.below(24) as usize]).collect()
        })
        .collect()
}

fn sentence(rng: &mut Rng, vocab: &[String], words: usize) -> String {
    let mut s = String::with_capacity(words * 7);
    for i in 0..words {
        if i > 0 {
            s.push(if rng.below(12) == 0 { ',' } else { ' ' });
            if s.ends_with(',') {
                s.push(' ');
            }
        }
        s.push_str(&vocab[rng.below(vocab.len() as u64) as usize]);
        if rng.below(15) == 0 {
            s.push('.');
        }
    }
    s
}

/// Writes the corpus; returns (uncompressed bytes, records, denials).
fn generate(path: &Path, records: u64) -> std::io::Result<(u64, u64, u64)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let vocab = vocabulary(&mut rng);
    let out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut gz = GzEncoder::new(out, Compression::new(6));
    let persistent = [
        "arn:aws:sts::111122223333:assumed-role/ContractorAccess/mallory",
        "arn:aws:iam::111122223333:user/legacy-batch",
        "arn:aws:sts::444455556666:assumed-role/Research/eve",
    ];
    let models = [
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "amazon.titan-text-express-v1",
        "meta.llama3-70b-instruct-v1:0",
    ];
    let start = 1_773_478_800i64;
    let (mut bytes, mut denials) = (0u64, 0u64);
    for i in 0..records {
        let t = start + (i as i64 * 3600) / records.max(1) as i64;
        let ts = bedrock_denied_models::alert::rfc3339(t);
        let denied = rng.below(1000) < 5;
        let line = if denied {
            denials += 1;
            let user = if rng.below(10) < 6 {
                persistent[rng.below(3) as usize].to_string()
            } else {
                format!("arn:aws:iam::111122223333:user/dev-{}", rng.below(200))
            };
            serde_json::json!({
                "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": ts,
                "accountId": "111122223333", "identity": {"arn": user}, "region": "us-east-1",
                "requestId": format!("{:016x}", rng.next()), "operation": "InvokeModel",
                "modelId": "anthropic.claude-3-opus-20240229-v1:0", "errorCode": "AccessDeniedException",
                "input": {"inputContentType": "application/json",
                          "inputBodyJson": {"prompt": sentence(&mut rng, &vocab, 50)}}
            })
        } else {
            let prompt_words = 150 + rng.below(200) as usize;
            let prompt = sentence(&mut rng, &vocab, prompt_words);
            let completion_words = 150 + rng.below(200) as usize;
            let completion = sentence(&mut rng, &vocab, completion_words);
            serde_json::json!({
                "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": ts,
                "accountId": "111122223333",
                "identity": {"arn": format!("arn:aws:sts::111122223333:assumed-role/App/worker-{}", rng.below(50))},
                "region": "us-east-1", "requestId": format!("{:016x}", rng.next()),
                "operation": "Converse", "modelId": models[rng.below(4) as usize],
                "input": {"inputContentType": "application/json",
                          "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
                          "inputTokenCount": 300 + rng.below(700)},
                "output": {"outputContentType": "application/json",
                           "outputBodyJson": {"output": {"message": {"role": "assistant", "content": [{"text": completion}]}},
                                              "stopReason": "end_turn"},
                           "outputTokenCount": 300 + rng.below(700)}
            })
        };
        let mut text = line.to_string();
        text.push('\n');
        bytes += text.len() as u64;
        gz.write_all(text.as_bytes())?;
    }
    gz.finish()?.flush()?;
    Ok((bytes, records, denials))
}

/// The floor: inflate with the same backend, find every line end, nothing else.
fn floor(path: &Path) -> std::io::Result<(u64, u64)> {
    let mut r = MultiGzDecoder::new(BufReader::with_capacity(BLOCK, File::open(path)?));
    let mut buf = vec![0u8; BLOCK];
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok((bytes, lines));
        }
        bytes += n as u64;
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

fn peak_child_rss_kib() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    }
}

fn scan_binary(bin: &Path, path: &Path) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new(bin)
        .arg("scan")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run scan");
    assert!(out.status.success(), "scan failed");
    (
        t.elapsed(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Milliseconds from spawning the function to its first request to the runtime API.
fn startup_ms(bin: &Path) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    listener.set_nonblocking(true).expect("nonblocking");
    let t = Instant::now();
    let mut child = Command::new(bin)
        .env("AWS_LAMBDA_RUNTIME_API", &addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bedrock-denied-models")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("COUNTER_TABLE", "bench")
        .env(
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:111122223333:bench",
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let records = arg(&args, "--records", 100_000);
    let rounds = arg(&args, "--rounds", 3).max(1);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_bedrock-denied-models"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let corpus = dir.join(format!("bedrock-v2-{records}.json.gz"));

    println!(
        "machine: {} cores; corpus: {records} records",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // The corpus is deterministic: generate it once per size.
    let meta = corpus.with_extension("meta");
    let t = Instant::now();
    let cached = std::fs::read_to_string(&meta).ok().and_then(|m| {
        let v: Vec<u64> = m
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (v.len() == 2 && corpus.exists()).then(|| (v[0], v[1]))
    });
    let (log_bytes, denials) = match cached {
        Some(c) => c,
        None => {
            let (bytes, _, denials) = generate(&corpus, records).expect("generate corpus");
            std::fs::write(&meta, format!("{bytes} {denials}")).expect("write corpus meta");
            (bytes, denials)
        }
    };
    let gz_bytes = std::fs::metadata(&corpus).map_or(0, |m| m.len());
    println!(
        "corpus: {:.1} MB of log, {:.1} MB gzip, {denials} denials, ready in {:.1} s",
        log_bytes as f64 / 1e6,
        gz_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // Interleave the contenders; keep each one's best round.
    let config = Config::default();
    let matcher = DenialMatcher::new(&config.denial_codes);
    let spec = config.window();
    let (mut best_floor, mut best_scan, mut best_lib) =
        (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut summary = String::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let (bytes, lines) = floor(&corpus).expect("floor");
        best_floor = best_floor.min(t.elapsed());
        assert_eq!((bytes, lines), (log_bytes, records));

        let (d, s) = scan_binary(&bin, &corpus);
        best_scan = best_scan.min(d);
        summary = s;

        let t = Instant::now();
        let file = File::open(&corpus).expect("open");
        let (agg, outcome) = scan_object(file, &matcher, &spec);
        best_lib = best_lib.min(t.elapsed());
        assert_eq!(outcome.stats.denials, denials);
        assert!(!agg.is_empty());
    }
    let rss_kib = peak_child_rss_kib();

    // Store requests for this object: one conditional update per distinct (key,
    // bucket), one query per key, nothing else unless a key alerts.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let detector = Detector::new(config.clone(), MemoryStore::new(), MemorySink::new());
    let (agg, _) = scan_object(File::open(&corpus).expect("open"), &matcher, &spec);
    rt.block_on(detector.record(&ObjectId::file("bench", "1"), &agg))
        .expect("record");
    let ops = detector.store().ops();
    let alerts = detector.sink().alerts().len();

    let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
    let mut starts: Vec<f64> = (0..5).map(|_| startup_ms(&bin)).collect();
    starts.sort_by(f64::total_cmp);

    let ratio = best_scan.as_secs_f64() / best_floor.as_secs_f64();
    let lib_ratio = best_lib.as_secs_f64() / best_floor.as_secs_f64();
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| floor: inflate + line ends | {:.0} MB/s ({:.2} s) |",
        mbps(log_bytes, best_floor),
        best_floor.as_secs_f64()
    );
    println!(
        "| `scan` binary | {:.0} MB/s ({:.2} s) |",
        mbps(log_bytes, best_scan),
        best_scan.as_secs_f64()
    );
    println!(
        "| library reader in process | {:.0} MB/s ({:.2} s) |",
        mbps(log_bytes, best_lib),
        best_lib.as_secs_f64()
    );
    println!("| scan / floor | {ratio:.3} |");
    println!("| library reader / floor | {lib_ratio:.3} |");
    println!("| peak RSS of `scan` | {:.1} MB |", rss_kib as f64 / 1024.0);
    println!(
        "| store requests | {} conditional updates for {} distinct (key, bucket); {} queries for {} keys; {} claims, {} marks for {} alerts |",
        ops.adds, agg.updates(), ops.queries, agg.keys.len(), ops.claims, ops.marks, alerts
    );
    println!("| release binary | {:.1} MB |", size as f64 / 1e6);
    println!(
        "| start to first runtime-API poll (median of 5) | {:.1} ms |",
        starts[2]
    );
    println!();
    println!(
        "goal scan/floor <= 1.15: {}",
        if ratio <= 1.15 { "met" } else { "NOT met" }
    );
    println!(
        "goal peak RSS <= 32 MB: {}",
        if rss_kib <= 32 * 1024 {
            "met"
        } else {
            "NOT met"
        }
    );
    let exact = ops.adds == agg.updates() as u64 && ops.queries == agg.keys.len() as u64;
    println!(
        "goal one update per (key, bucket), one query per key: {}",
        if exact { "met" } else { "NOT met" }
    );
    println!();
    println!("scan summary:\n{summary}");
}
