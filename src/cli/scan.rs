//! `scan`: the detector over files and S3 objects. Objects are read concurrently (on
//! all cores by default) and counted one after another in input order, so the alerts,
//! their order and the summary are those of a sequential run (docs/DESIGN.md,
//! "Scan and backfill").

use super::inputs::{collect_files, in_period, parse_period, parse_s3_uri, Input};
use super::{flag, Output, ScanArgs};
use crate::alert::{MemorySink, Sink, StdoutFormat, StdoutSink};
use crate::config::Config;
use crate::detector::Detector;
use crate::errors::error_chain;
use crate::event::ObjectRef;
use crate::objects::FileSource;
use crate::pipeline::{fetch, Fetched, ReadObject};
use crate::reader::Reader;
use crate::store::memory::MemoryStore;
use crate::store::DetectorStore;
use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(args: &ScanArgs) -> ExitCode {
    if args.list_rules {
        print!("{}", rules_table());
        return ExitCode::SUCCESS;
    }
    let config = match args.detector.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "bedrock-denied-models: {e} (flag {} or variable {})",
                flag(e.name),
                e.name
            );
            return ExitCode::from(2);
        }
    };
    let now = chrono::Utc::now().timestamp();
    let period = match parse_period(args.since.as_deref(), args.until.as_deref(), now) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bedrock-denied-models: {e}");
            return ExitCode::from(2);
        }
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(jobs.min(4))
        .max_blocking_threads(jobs);
    match super::start_runtime(builder) {
        Ok(runtime) => runtime.block_on(scan(args, config, period, jobs)),
        Err(status) => status,
    }
}

/// Where inputs are read from, and where a replay into a deployed table counts:
/// local files in every build; S3 objects and the DynamoDB table in the AWS build.
struct Backends {
    #[cfg(feature = "aws")]
    sdk: Option<aws_config::SdkConfig>,
    #[cfg(feature = "aws")]
    s3: Option<crate::aws::s3::S3Source>,
}

impl Backends {
    /// Reads `input` on the one path every object takes (`crate::pipeline`).
    async fn fetch(&self, reader: &Arc<Reader>, input: &Input) -> Result<Fetched, String> {
        let object = input.object();
        match input {
            Input::File { .. } => fetch(&FileSource, reader, &object, None)
                .await
                .map_err(|e| error_chain(&e)),
            Input::S3 { .. } => self.fetch_s3(reader, &object).await,
        }
    }
}

#[cfg(feature = "aws")]
impl Backends {
    /// One SDK configuration and one S3 client, when anything needs AWS.
    async fn new(args: &ScanArgs) -> Result<Self, String> {
        let sdk = if args.table.is_some() || args.inputs.iter().any(|a| parse_s3_uri(a).is_some()) {
            Some(crate::aws::sdk_config().await)
        } else {
            None
        };
        let s3 = sdk
            .as_ref()
            .map(|s| crate::aws::s3::S3Source::new(crate::aws::s3_client(s)));
        Ok(Self { sdk, s3 })
    }

    /// The objects under `prefix` in `bucket`.
    async fn list_s3(&self, bucket: &str, prefix: &str) -> Result<Vec<Input>, String> {
        use crate::objects::ObjectSource;
        let s3 = self.s3.as_ref().ok_or("no S3 client")?;
        let listing = s3
            .list(bucket, prefix, false, crate::objects::KeyRange::default())
            .await
            .map_err(|e| error_chain(&*e.source))?;
        Ok(listing
            .objects
            .into_iter()
            .map(|o| Input::S3 {
                bucket: bucket.to_string(),
                key: o.key,
                size: o.size,
                modified: o.modified,
            })
            .collect())
    }

    async fn fetch_s3(&self, reader: &Arc<Reader>, object: &ObjectRef) -> Result<Fetched, String> {
        let s3 = self.s3.as_ref().ok_or("no S3 client")?;
        fetch(s3, reader, object, None)
            .await
            .map_err(|e| error_chain(&e))
    }

    /// `--table`: counts into the deployed table and delivers to the destinations
    /// named; with none, only shows what would be alerted, without claiming it there
    /// (docs/DESIGN.md, "Scan and backfill"). `None` without `--table`.
    async fn replay(
        &self,
        args: &ScanArgs,
        config: Config,
        stdout: StdoutSink,
        inputs: &[Input],
        jobs: usize,
    ) -> Option<Summary> {
        let (table, sdk) = (args.table.as_ref()?, self.sdk.as_ref()?);
        let region = crate::aws::region(sdk);
        let targets = crate::aws::SinkTargets {
            topic_arn: args.topic.as_deref(),
            event_bus: args.event_bus.as_deref(),
            security_hub_account: args.security_hub.as_deref(),
        };
        let mut sinks = crate::aws::sinks(sdk, &region, targets);
        let preview = sinks.is_empty();
        if preview {
            sinks.push(Arc::new(StdoutSink {
                not_delivered: true,
                ..stdout
            }));
        }
        let store = crate::aws::dynamo_store(sdk, table);
        let (summary, _) = scan_into(store, config, sinks, preview, self, inputs, jobs, None).await;
        Some(summary)
    }
}

#[cfg(not(feature = "aws"))]
impl Backends {
    async fn new(args: &ScanArgs) -> Result<Self, String> {
        unsupported(args).map_or(Ok(Self {}), Err)
    }

    async fn list_s3(&self, _: &str, _: &str) -> Result<Vec<Input>, String> {
        Err(super::AWS_BUILD_HINT.into())
    }

    async fn fetch_s3(&self, _: &Arc<Reader>, _: &ObjectRef) -> Result<Fetched, String> {
        Err(super::AWS_BUILD_HINT.into())
    }

    async fn replay(
        &self,
        _: &ScanArgs,
        _: Config,
        _: StdoutSink,
        _: &[Input],
        _: usize,
    ) -> Option<Summary> {
        None
    }
}

/// What this build cannot do of what `args` asks, in one line.
#[cfg(not(feature = "aws"))]
pub(super) fn unsupported(args: &ScanArgs) -> Option<String> {
    if let Some(uri) = args.inputs.iter().find(|a| parse_s3_uri(a).is_some()) {
        return Some(format!("{uri}: {}", super::AWS_BUILD_HINT));
    }
    args.table
        .as_ref()
        .map(|_| format!("--table: {}", super::AWS_BUILD_HINT))
}

async fn scan(args: &ScanArgs, config: Config, period: [Option<i64>; 2], jobs: usize) -> ExitCode {
    let backends = match Backends::new(args).await {
        Ok(s) => s,
        Err(why) => {
            eprintln!("bedrock-denied-models: {why}");
            return ExitCode::from(2);
        }
    };
    // --report (src/report/): the file is created before reading, so a bad path
    // fails at once.
    let report_file = match args
        .report
        .as_deref()
        .map(crate::report::ReportFile::create)
    {
        Some(Err(e)) => {
            eprintln!("bedrock-denied-models: {}", error_chain(&e));
            return ExitCode::from(2);
        }
        Some(Ok(file)) => Some(file),
        None => None,
    };
    // --report end
    let mut notes = Vec::new();
    let mut inputs = Vec::new();
    for arg in &args.inputs {
        let found = match parse_s3_uri(arg) {
            Some((bucket, prefix)) => backends
                .list_s3(&bucket, &prefix)
                .await
                .map_err(|e| format!("cannot list {arg}: {e}")),
            None => collect_files(std::path::Path::new(arg), &mut notes)
                .map_err(|e| format!("cannot read {arg}: {e}")),
        };
        match found {
            Ok(found) => inputs.extend(found),
            Err(e) => {
                eprintln!("bedrock-denied-models: {e}");
                return ExitCode::from(2);
            }
        }
    }
    for n in &notes {
        eprintln!("bedrock-denied-models: {n}");
    }
    let listed = inputs.len();
    inputs.retain(|i| in_period(i, period[0], period[1]));
    let not_selected = (listed - inputs.len()) as u64;
    let format = match args.output {
        Output::Json => StdoutFormat::Json,
        Output::Email => StdoutFormat::Email,
    };
    let stdout = StdoutSink {
        format,
        not_delivered: false,
    };
    if let Some(mut summary) = backends
        .replay(args, config.clone(), stdout, &inputs, jobs)
        .await
    {
        summary.counts.objects_not_selected = not_selected;
        return finish(&summary);
    }
    // --report: the alerts are kept as printed, and every counted object recorded.
    let kept = MemorySink::new();
    let mut sinks: Vec<Sink> = vec![Arc::new(stdout)];
    let mut collector = report_file.as_ref().map(|_| {
        sinks.push(Arc::new(kept.clone()));
        crate::report::Collector::new()
    });
    let (mut summary, d) = scan_into(
        MemoryStore::new(),
        config.clone(),
        sinks,
        false,
        &backends,
        &inputs,
        jobs,
        collector.as_mut(),
    )
    .await;
    summary.keys = Some(d.store().key_count() as u64);
    summary.counts.records_told_twice = d.store().records_told_twice();
    summary.counts.objects_not_selected = not_selected;
    let mut written = true;
    if let (Some(file), Some(collector)) = (report_file, &collector) {
        let input = crate::report::ReportInput {
            inputs: &args.inputs,
            config: &config,
            totals: &summary,
            alerts: &kept.alerts(),
            collector,
            now: chrono::Utc::now().timestamp(),
        };
        if let Err(e) = file.write(&input).await {
            eprintln!("bedrock-denied-models: {}", error_chain(&e));
            written = false;
        }
    }
    match finish(&summary) {
        status if written => status,
        _ => ExitCode::from(1),
    }
    // --report end
}

/// The one detector of a scan, over `store`, delivering to `sinks` (or, when
/// `preview`, only showing what it would alert: [`Detector::previewing`]); returns it
/// with the summary of the inputs it counted.
#[allow(clippy::too_many_arguments)]
async fn scan_into<S: DetectorStore>(
    store: S,
    config: Config,
    sinks: Vec<Sink>,
    preview: bool,
    backends: &Backends,
    inputs: &[Input],
    jobs: usize,
    collector: Option<&mut crate::report::Collector>,
) -> (Summary, Detector<S>) {
    let mut detector = Detector::with_sinks(config, store, sinks);
    if preview {
        detector = detector.previewing();
    }
    let summary = scan_with(&detector, backends, inputs, jobs, collector).await;
    (summary, detector)
}

/// Reads up to `jobs` inputs at once and counts them in input order.
async fn scan_with<S: DetectorStore>(
    detector: &Detector<S>,
    backends: &Backends,
    inputs: &[Input],
    jobs: usize,
    mut collector: Option<&mut crate::report::Collector>,
) -> Summary {
    let progress =
        ProgressBar::with_draw_target(Some(inputs.len() as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} objects, {msg} [{elapsed}]")
    {
        progress.set_style(style);
    }
    let mut summary = Summary::default();
    let reader = detector.reader().clone();
    let mut reads = stream::iter(inputs)
        .map(|input| {
            let reader = reader.clone();
            async move { (input, backends.fetch(&reader, input).await) }
        })
        .buffered(jobs);
    while let Some((input, read)) = reads.next().await {
        progress.inc(1);
        match read {
            Ok(Fetched::Read(object)) => {
                let ReadObject { id, read, .. } = *object;
                let stats = read.stats;
                // --report: what the object adds, recorded once it is counted.
                let counted = collector.is_some().then(|| read.aggregate.clone());
                match detector.count(&id, read).await {
                    Ok(report) => {
                        if let (Some(c), Some(a)) = (collector.as_deref_mut(), &counted) {
                            c.add(&id, a);
                        }
                        summary.counts.add(&report.counts);
                        for warning in report.warnings() {
                            note(&progress, &format!("{}: {warning}", input.name()));
                        }
                    }
                    Err(e) => {
                        summary.counts.objects_failed += 1;
                        summary.counts.log_bytes += stats.counts.log_bytes;
                        note(&progress, &format!("{}: {}", input.name(), error_chain(&e)));
                    }
                }
            }
            Ok(Fetched::Skipped(reason)) => {
                summary.counts.objects_skipped += 1;
                note(&progress, &format!("skipped {} ({reason})", input.name()));
            }
            Ok(Fetched::Missing) => {
                summary.counts.objects_failed += 1;
                note(&progress, &format!("{}: no longer exists", input.name()));
            }
            Err(e) => {
                summary.counts.objects_failed += 1;
                note(&progress, &format!("{}: {e}", input.name()));
            }
        }
        progress.set_message(format!(
            "{:.1} MB of log, {} denials, {} alerts",
            summary.counts.log_bytes as f64 / 1e6,
            summary.counts.denials,
            summary.counts.alerts_published
        ));
    }
    progress.finish_and_clear();
    summary
}

/// A note on stderr that does not garble the progress bar.
fn note(progress: &ProgressBar, msg: &str) {
    progress.suspend(|| eprintln!("bedrock-denied-models: {msg}"));
}

/// What a scan counted (`crate::stats`), and the keys with denials when known.
type Summary = crate::report::ScanTotals;

/// Prints the summary; the exit status says whether every object was read.
fn finish(summary: &Summary) -> ExitCode {
    let lines = summary.lines(|n| n.to_string());
    for (line, text) in lines {
        eprintln!("{line}: {text}");
    }
    if summary.counts.objects_failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The rules as a Markdown table: what `scan --list-rules` prints.
pub fn rules_table() -> String {
    let mut t =
        String::from("| id | name | takes | groups by | fires when |\n|---|---|---|---|---|\n");
    for r in crate::rule::RULES {
        t.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            r.id, r.name, r.takes, r.groups_by, r.fires_when
        ));
    }
    t
}
