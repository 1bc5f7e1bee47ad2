//! What counting costs in DynamoDB, against the strict emulator (dynalite, which
//! enforces the 400 KB item limit): the counter contributions of this version beside
//! the earlier layout (one item per (key, bucket) holding the set of the tokens of
//! every object counted into it), measured in the same run (docs/DESIGN.md,
//! "Exactly-once counting").
//!
//! `scripts/bench state [--hot N] [--mix N] [--hostile N]` starts the emulators and
//! runs it. Three workloads, each through the detector (counting, window reads,
//! claims, the alert ceilings):
//! - hot: `--hot` objects (default 20,000) of one principal denied once each, all in
//!   one 10-minute bucket (a fleet denied without pause, one CloudWatch Logs payload
//!   per second);
//! - mix: `--mix` objects (default 2,000) of a few principals out of 200, over a day;
//! - hostile: `--hostile` objects (default 2) built to cost the most, 10,000
//!   principals each denied 4 times in each of 2 buckets, read through the per-object
//!   limits and every rule (docs/DESIGN.md, "Alert ceilings": what a member can cost).
//!
//! It prints, per design and workload: objects counted (and where the earlier layout
//! failed), requests and consumed capacity (`ReturnConsumedCapacity`) per object, and
//! the largest item in the table.
//!
//! Then the rules that count distinct values (docs/DESIGN.md, "Distinct counting"),
//! every rule on, read from records as the function reads them:
//! - key check: `--keycheck` objects (default 500), each one denial by a role of 20
//!   whose session rotates, on one of 40 models spelled as ids, ARNs or profiles;
//! - set flood: `--flood` objects (default 200) of one principal in one bucket, each
//!   denied on 50 models never seen before with 50 new request ids: every set of its
//!   (group, bucket) meets its bound, and the largest item shows what it holds then.

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use bedrock_denied_models::aggregate::{Aggregate, KeyDenials};
use bedrock_denied_models::alert::MemorySink;
use bedrock_denied_models::aws::dynamo_store;
use bedrock_denied_models::aws::store::DynamoStore;
use bedrock_denied_models::calls::{CallRecords, Contribution};
use bedrock_denied_models::config::Config;
use bedrock_denied_models::detector::Detector;
use bedrock_denied_models::identity::ObjectId;
use bedrock_denied_models::key::{call_number, DenialKey};
use bedrock_denied_models::logs::{Denial, RecordKind};
use bedrock_denied_models::store::{
    AddOutcome, AlertClaim, AlertClaims, AlertState, ClaimOutcome, Counters, DetectorStore,
    StoreError, WindowCounts, WindowRead,
};
use bedrock_denied_models::testing::T0;
use bedrock_denied_models::window::Bucket;
use std::collections::BTreeMap;
use std::time::Instant;
use support::{item_size, Stack};

/// One object's denials: (principal, bucket, count).
type Object = Vec<(String, i64, u64)>;

const MODEL: &str = "anthropic.claude-3-opus-20240229-v1:0";
const ACCOUNT: &str = "111122223333";

fn hot(n: usize) -> Vec<Object> {
    let bucket = T0 / 600;
    (0..n)
        .map(|_| {
            vec![(
                "arn:aws:sts::111122223333:assumed-role/Fleet/worker".to_string(),
                bucket,
                1,
            )]
        })
        .collect()
}

fn mix(n: usize) -> Vec<Object> {
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |m: u64| {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % m
    };
    (0..n)
        .map(|i| {
            let bucket = (T0 + (i as i64 * 86_400) / n as i64) / 600;
            (0..1 + next(4))
                .map(|_| {
                    (
                        format!("arn:aws:iam::111122223333:user/dev-{}", next(200)),
                        bucket,
                        1 + next(3),
                    )
                })
                .collect()
        })
        .collect()
}

/// Objects built to cost the most, aggregated within the per-object limits, through
/// every rule.
fn hostile(n: usize) -> Vec<Aggregate> {
    (0..n)
        .map(|o| {
            taken((0..10_000).flat_map(|k| {
                (0..2).flat_map(move |b| {
                    (0..4).map(move |i| {
                        (
                            format!("arn:aws:iam::{ACCOUNT}:user/h{o}-{k}"),
                            MODEL.to_string(),
                            T0 + b * 600 + i,
                            format!("h{o}-{k}-{b}-{i}"),
                        )
                    })
                })
            }))
        })
        .collect()
}

/// Denials as the reader hands them over, through every rule.
fn taken(denials: impl IntoIterator<Item = (String, String, i64, String)>) -> Aggregate {
    let config = Config::default();
    let spec = config.window();
    let mut agg = Aggregate::default();
    for (user, model, t, request) in denials {
        agg.take(
            Denial {
                key: DenialKey::new(user, model, ACCOUNT),
                validation: false,
                event_time: t,
                request_id: Some(request),
                source: RecordKind::CloudTrail,
                context: Default::default(),
            },
            &spec,
            &config.rules,
        );
    }
    agg
}

fn keycheck(n: usize) -> Vec<Aggregate> {
    (0..n)
        .map(|i| {
            let role = i % 20;
            let session = i / 7;
            let model = match i % 4 {
                0 => format!("anthropic.model-{}-v1:0", i % 40),
                1 => format!("arn:aws:bedrock:us-east-1::foundation-model/anthropic.model-{}-v1:0", i % 40),
                2 => format!("us.anthropic.model-{}-v1:0", i % 40),
                _ => format!("arn:aws:bedrock:us-west-2:{ACCOUNT}:inference-profile/eu.anthropic.model-{}-v1:0", i % 40),
            };
            taken([(
                format!("arn:aws:sts::{ACCOUNT}:assumed-role/app-{role}/botocore-session-{session}"),
                model,
                T0 + (i as i64 * 86_400) / n as i64,
                format!("keycheck-{i}"),
            )])
        })
        .collect()
}

fn flood(n: usize) -> Vec<Aggregate> {
    (0..n)
        .map(|o| {
            taken((0..50).map(|m| {
                (
                    format!("arn:aws:iam::{ACCOUNT}:user/flooder"),
                    format!("provider.model-{o}-{m}-{}", "x".repeat(200)),
                    T0,
                    format!("flood-{o}-{m}"),
                )
            }))
        })
        .collect()
}

/// The aggregate of object `o`: each denial a call of its own, told by the invocation
/// log, as real records are (so each contribution lists its calls).
fn aggregate(o: usize, object: &Object) -> Aggregate {
    let mut agg = Aggregate::default();
    for (n, (user, bucket, count)) in object.iter().enumerate() {
        let k = agg
            .keys
            .entry(DenialKey::new(user, MODEL, ACCOUNT))
            .or_insert_with(KeyDenials::default);
        *k.buckets.entry(*bucket).or_insert(0) += count;
        let calls = k.calls.entry(*bucket).or_default();
        for c in 0..*count {
            let mut records = CallRecords::default();
            records.add(RecordKind::BedrockInvocationLog, 1);
            calls.push((call_number(&format!("o{o}-{n}-{c}")), records));
        }
    }
    agg
}

/// What one design cost on one workload.
#[derive(Default)]
struct Cost {
    objects: usize,
    failed_at: Option<(usize, String)>,
    requests: u64,
    read_units: f64,
    write_units: f64,
    largest_item: usize,
    seconds: f64,
}

/// The earlier layout, as it counted: per (key, bucket) one conditional UpdateItem
/// adding the count and the object's token to the item's set; per key one Query of
/// the window's items, read whole. Everything else (claims, alert state) is this
/// version's store, so the detector above it decides exactly as it does here.
struct EarlierLayout {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    inner: DynamoStore,
    usage: std::sync::Mutex<(u64, f64, f64)>,
}

impl EarlierLayout {
    fn account(&self, read: f64, write: f64) {
        let mut u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        u.0 += 1;
        u.1 += read;
        u.2 += write;
    }
}

fn store_error(
    operation: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError {
        operation,
        target: "the earlier layout".into(),
        source: Box::new(e),
    }
}

impl Counters for EarlierLayout {
    async fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        contribution: Contribution<'_>,
        expires_at: i64,
    ) -> Result<AddOutcome, StoreError> {
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("C#{}", key.digest())))
            .key("sk", AttributeValue::N(bucket.to_string()))
            .update_expression("SET expires_at = :exp ADD denials :count, objects :tokens")
            .condition_expression("NOT contains(objects, :token)")
            .expression_attribute_values(
                ":count",
                AttributeValue::N(contribution.records.to_string()),
            )
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()))
            .expression_attribute_values(":tokens", AttributeValue::Ss(vec![object.token.clone()]))
            .expression_attribute_values(":token", AttributeValue::S(object.token.clone()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(o) => {
                let units = o
                    .consumed_capacity()
                    .and_then(|c| c.capacity_units())
                    .unwrap_or(0.0);
                self.account(0.0, units);
                Ok(AddOutcome::Added)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                self.account(0.0, 1.0);
                Ok(AddOutcome::AlreadyCounted)
            }
            Err(e) => {
                self.account(0.0, 0.0);
                Err(store_error("UpdateItem (counter)", e))
            }
        }
    }

    async fn counts(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
        _read: WindowRead,
    ) -> Result<WindowCounts, StoreError> {
        let q = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", AttributeValue::S(format!("C#{}", key.digest())))
            .expression_attribute_values(":lo", AttributeValue::N(first.to_string()))
            .expression_attribute_values(":hi", AttributeValue::N(last.to_string()))
            .projection_expression("sk, denials")
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("Query (window)", e))?;
        self.account(
            q.consumed_capacity()
                .and_then(|c| c.capacity_units())
                .unwrap_or(0.0),
            0.0,
        );
        let buckets = q
            .items()
            .iter()
            .filter_map(|i| {
                let sk = i.get("sk")?.as_n().ok()?.parse().ok()?;
                let n = i.get("denials")?.as_n().ok()?.parse().ok()?;
                Some((sk, n))
            })
            .collect();
        Ok(WindowCounts {
            buckets,
            complete: true,
        })
    }
}

impl bedrock_denied_models::store::DistinctSets for EarlierLayout {
    async fn add_members(
        &self,
        key: &DenialKey,
        bucket: Bucket,
        members: &bedrock_denied_models::store::Members,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.inner
            .add_members(key, bucket, members, expires_at)
            .await
    }

    async fn members(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
    ) -> Result<BTreeMap<Bucket, bedrock_denied_models::store::Members>, StoreError> {
        self.inner.members(key, first, last).await
    }
}

impl AlertClaims for EarlierLayout {
    async fn alert_state(&self, key: &DenialKey) -> Result<Option<AlertState>, StoreError> {
        self.inner.alert_state(key).await
    }

    async fn claim_alert(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        self.inner.claim_alert(key, claim).await
    }

    async fn record_delivery(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
        sink: &str,
    ) -> Result<(), StoreError> {
        self.inner.record_delivery(key, claim, sink).await
    }

    async fn release_claim(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        self.inner.release_claim(key, claim).await
    }

    async fn mark_alert_sent(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        self.inner.mark_alert_sent(key, claim).await
    }

    async fn take_alert_slot(
        &self,
        account: &str,
        hour_start: i64,
        max: u32,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.inner
            .take_alert_slot(account, hour_start, max, expires_at)
            .await
    }
}

/// Counts `objects` through the detector over `store`; `usage` reads what the store
/// asked of DynamoDB: (requests, read units, write units).
async fn count_all<S: DetectorStore>(
    s: &Stack,
    store: S,
    objects: &[Aggregate],
    usage: impl Fn(&Detector<S>) -> (u64, f64, f64),
) -> Cost {
    let d = Detector::new(Config::default(), store, MemorySink::new());
    let t = Instant::now();
    let mut cost = Cost::default();
    for (i, object) in objects.iter().enumerate() {
        let id = ObjectId::s3("logs", &format!("o-{i}.json.gz"), "v1");
        if let Err(e) = d.record(&id, object).await {
            cost.failed_at = Some((i, bedrock_denied_models::error_chain(&e)));
            break;
        }
        cost.objects += 1;
    }
    cost.seconds = t.elapsed().as_secs_f64();
    (cost.requests, cost.read_units, cost.write_units) = usage(&d);
    cost.largest_item = largest_item(s).await;
    cost
}

/// What this version's store asked of DynamoDB. A write refused by its condition is
/// charged, but its answer says nothing: count it at one unit (its items are small).
fn usage_of(store: &DynamoStore) -> (u64, f64, f64) {
    store
        .usage()
        .values()
        .fold((0, 0.0, 0.0), |(r, ru, wu), u| {
            (
                r + u.requests,
                ru + u.read_units,
                wu + u.write_units + u.conditions_failed as f64,
            )
        })
}

/// The largest item in the stack's table, in bytes as DynamoDB counts them.
async fn largest_item(s: &Stack) -> usize {
    let mut largest = 0;
    let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
    loop {
        let out = s
            .ddb
            .scan()
            .table_name(&s.table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan");
        largest = out.items().iter().map(item_size).fold(largest, usize::max);
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return largest,
        }
    }
}

fn row(design: &str, workload: &str, asked: usize, c: &Cost) {
    let per = |x: f64| x / c.objects.max(1) as f64;
    let failed = match &c.failed_at {
        Some((i, e)) => format!(
            "failed at object {i}: {}",
            e.chars().take(120).collect::<String>()
        ),
        None => "-".to_string(),
    };
    println!(
        "| {design} | {workload} | {} of {asked} | {:.2} | {:.2} | {:.2} | {:.1} KB | {:.0} s | {failed} |",
        c.objects,
        per(c.requests as f64),
        per(c.write_units),
        per(c.read_units),
        c.largest_item as f64 / 1024.0,
        c.seconds,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (hot_n, mix_n, hostile_n) = (
        value("--hot", 20_000),
        value("--mix", 2_000),
        value("--hostile", 2),
    );
    let (keycheck_n, flood_n) = (value("--keycheck", 500), value("--flood", 200));
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_DYNAMODB must name the strict emulator: run scripts/bench state")
    });
    println!("DynamoDB at {endpoint}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let of = |objects: Vec<Object>| {
        objects
            .iter()
            .enumerate()
            .map(|(o, object)| aggregate(o, object))
            .collect::<Vec<_>>()
    };
    let workloads: [(&str, Vec<Aggregate>); 3] = [
        ("hot", of(hot(hot_n))),
        ("mix", of(mix(mix_n))),
        ("hostile", hostile(hostile_n)),
    ];
    let mut rows = BTreeMap::new();
    for (name, objects) in &workloads {
        let asked = objects.len();
        let s = rt.block_on(Stack::new("state-new"));
        let store = dynamo_store(&s.sdk, &s.table);
        let cost = rt.block_on(count_all(&s, store, objects, |d| usage_of(d.store())));
        rows.insert((0, *name), (asked, cost));
        let s = rt.block_on(Stack::new("state-old"));
        let earlier = EarlierLayout {
            ddb: s.ddb.clone(),
            table: s.table.clone(),
            inner: dynamo_store(&s.sdk, &s.table),
            usage: Default::default(),
        };
        let cost = rt.block_on(count_all(&s, earlier, objects, |d| {
            let (r, ru, wu) = *d.store().usage.lock().unwrap_or_else(|p| p.into_inner());
            let (ir, iru, iwu) = usage_of(&d.store().inner);
            (r + ir, ru + iru, wu + iwu)
        }));
        rows.insert((1, *name), (asked, cost));
    }
    println!();
    println!("| design | workload | objects counted | requests / object | write units / object | read units / object | largest item | time | |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for ((design, workload), (asked, cost)) in &rows {
        let name = if *design == 0 {
            "contributions (this version)"
        } else {
            "token set per (key, bucket) (earlier)"
        };
        row(name, workload, *asked, cost);
    }
    if let Some((_, cost)) = rows.get(&(0, "hostile")) {
        let per = |x: f64| x / cost.objects.max(1) as f64;
        println!();
        println!(
            "a hostile object costs {:.0} requests ({:.0} write and {:.0} read units): ${:.4} at $0.625 per million write and $0.125 per million read units",
            per(cost.requests as f64),
            per(cost.write_units),
            per(cost.read_units),
            per(cost.write_units) * 0.625e-6 + per(cost.read_units) * 0.125e-6,
        );
    }
    println!();
    println!("the rules that count distinct values (every rule on):");
    println!();
    println!("| workload | objects counted | requests / object | write units / object | read units / object | largest item | time | |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, objects) in [
        ("key check", keycheck(keycheck_n)),
        ("set flood", flood(flood_n)),
    ] {
        let s = rt.block_on(Stack::new("state-distinct"));
        let store = dynamo_store(&s.sdk, &s.table);
        let cost = rt.block_on(count_all(&s, store, &objects, |d| usage_of(d.store())));
        let per = |x: f64| x / cost.objects.max(1) as f64;
        println!(
            "| {name} | {} of {} | {:.2} | {:.2} | {:.2} | {:.1} KB | {:.0} s | {} |",
            cost.objects,
            objects.len(),
            per(cost.requests as f64),
            per(cost.write_units),
            per(cost.read_units),
            cost.largest_item as f64 / 1024.0,
            cost.seconds,
            cost.failed_at
                .as_ref()
                .map_or("-".to_string(), |(i, e)| format!(
                    "failed at object {i}: {}",
                    e.chars().take(120).collect::<String>()
                )),
        );
    }
}
