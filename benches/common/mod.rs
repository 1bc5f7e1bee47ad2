//! What the benchmarks share: a deterministic text generator, the realistic Bedrock
//! log corpus, the floor (inflate and find line ends), and running the `scan` binary
//! with its own peak RSS (wait4).

#![allow(dead_code)]

use bedrock_denied_models::testing::T0;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BLOCK: usize = 256 << 10;

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, fast, good enough for text.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn vocabulary(rng: &mut Rng) -> Vec<String> {
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

pub fn sentence(rng: &mut Rng, vocab: &[String], words: usize) -> String {
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

/// What a generated corpus holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Corpus {
    pub log_bytes: u64,
    pub records: u64,
    pub denials: u64,
}

/// Writes `records` records over `span` seconds into `paths.len()` gzip files, in
/// order; returns what was written.
pub fn generate(paths: &[PathBuf], records: u64, span: i64) -> std::io::Result<Corpus> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let vocab = vocabulary(&mut rng);
    let persistent = [
        "arn:aws:sts::111122223333:assumed-role/ContractorAccess/mallory",
        "arn:aws:iam::111122223333:user/legacy-batch",
        "arn:aws:sts::111122223333:assumed-role/Research/eve",
    ];
    let models = [
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "amazon.titan-text-express-v1",
        "meta.llama3-70b-instruct-v1:0",
    ];
    let per_file = records.div_ceil(paths.len() as u64).max(1);
    let mut c = Corpus::default();
    let mut gz: Option<GzEncoder<BufWriter<File>>> = None;
    for i in 0..records {
        if i % per_file == 0 {
            if let Some(g) = gz.take() {
                g.finish()?.flush()?;
            }
            let path = &paths[(i / per_file) as usize];
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let out = BufWriter::with_capacity(1 << 20, File::create(path)?);
            gz = Some(GzEncoder::new(out, Compression::new(6)));
        }
        let t = T0 + (i as i64 * span) / records.max(1) as i64;
        let ts = bedrock_denied_models::alert::rfc3339(t);
        let denied = rng.below(1000) < 5;
        let line = if denied {
            c.denials += 1;
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
        c.log_bytes += text.len() as u64;
        c.records += 1;
        if let Some(g) = gz.as_mut() {
            g.write_all(text.as_bytes())?;
        }
    }
    if let Some(g) = gz.take() {
        g.finish()?.flush()?;
    }
    Ok(c)
}

/// Generates the corpus once per shape; later runs reuse it.
pub fn corpus(paths: &[PathBuf], records: u64, span: i64, meta: &Path) -> Corpus {
    let cached = std::fs::read_to_string(meta).ok().and_then(|m| {
        let v: Vec<u64> = m
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (v.len() == 3 && paths.iter().all(|p| p.exists())).then(|| Corpus {
            log_bytes: v[0],
            records: v[1],
            denials: v[2],
        })
    });
    cached.unwrap_or_else(|| {
        let c = generate(paths, records, span).expect("generate corpus");
        std::fs::write(meta, format!("{} {} {}", c.log_bytes, c.records, c.denials))
            .expect("write corpus meta");
        c
    })
}

/// The floor: inflate with the same backend, find every line end, nothing else.
pub fn floor(paths: &[PathBuf]) -> (Duration, u64, u64) {
    let t = Instant::now();
    let mut buf = vec![0u8; BLOCK];
    let (mut bytes, mut lines) = (0u64, 0u64);
    for path in paths {
        let mut r = MultiGzDecoder::new(BufReader::with_capacity(
            BLOCK,
            File::open(path).expect("open"),
        ));
        loop {
            let n = r.read(&mut buf).expect("inflate");
            if n == 0 {
                break;
            }
            bytes += n as u64;
            lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        }
    }
    (t.elapsed(), bytes, lines)
}

/// One run of the `scan` binary: its time, its own peak RSS, stdout and stderr.
pub struct ScanRun {
    pub took: Duration,
    pub peak_rss_kib: i64,
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Waits for `pid` and returns its exit status and its own peak RSS (KiB).
#[allow(unsafe_code)]
pub fn wait_with_peak_rss(pid: u32) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 only writes the two
    // out-parameters it is given, for a child of this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as libc::pid_t, "wait4");
    (status, usage.ru_maxrss)
}

// The child is reaped by wait4 (which also gives its peak RSS), not Child::wait.
#[allow(clippy::zombie_processes)]
pub fn try_scan(bin: &Path, args: &[&str]) -> ScanRun {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .arg("scan")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scan");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut stderr = String::new();
    let _ = err.read_to_string(&mut stderr);
    let (status, peak_rss_kib) = wait_with_peak_rss(child.id());
    ScanRun {
        took: t.elapsed(),
        peak_rss_kib,
        status,
        stdout: stdout.join().expect("stdout"),
        stderr,
    }
}

/// [`try_scan`], which must succeed.
pub fn scan(bin: &Path, args: &[&str]) -> ScanRun {
    let run = try_scan(bin, args);
    assert_eq!(run.status, 0, "scan failed: {}", run.stderr);
    run
}
