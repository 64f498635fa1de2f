#![allow(clippy::unwrap_used)]
//! The hourly usage rollups on real SQLite and PostgreSQL: kept by the metering writer in the
//! batch's transaction, equal to the raw rows for any range and filter (random rows and
//! random queries, fixed seeds), rebuilt to the same rows, and kept when retention deletes
//! the raw rows.

use ccp_testkit::on_both_engines;

use ccp_core::metering::pricing::TokenCounts;
use ccp_core::metering::{Outcome, PathTaken, Provider, RequestRecord, Upstream, UsageRecord};
use ccp_core::store::{Granularity, RollupRow, Store, UsageBucket, UsageFilter, UsageGroup};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

on_both_engines!(
    rollups_agree_with_the_raw_rows_for_random_rows_and_queries,
    retention_deletes_raw_rows_in_batches_and_keeps_the_rollups,
);

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct World {
    users: Vec<Uuid>,
    keys: Vec<(Uuid, Uuid)>,
    start: DateTime<Utc>,
}

const MODELS: [Option<&str>; 3] = [Some("claude-sonnet-5-5"), Some("claude-opus-5-5"), None];

fn world() -> World {
    let users: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let keys = (0..5).map(|n| (Uuid::now_v7(), users[n % 3])).collect();
    World {
        users,
        keys,
        start: Utc.with_ymd_and_hms(2026, 10, 30, 21, 0, 0).unwrap(),
    }
}

fn random_record(rng: &mut Rng, w: &World, n: usize) -> RequestRecord {
    let (key, user) = *rng.pick(&w.keys);
    let route = *rng.pick(&[
        PathTaken::Plan,
        PathTaken::Plan,
        PathTaken::PlanThenBedrock,
        PathTaken::BedrockDirect,
    ]);
    let upstream = match route {
        PathTaken::Plan => *rng.pick(&[Upstream::Plan, Upstream::Plan, Upstream::Gateway]),
        _ => *rng.pick(&[Upstream::Bedrock, Upstream::Bedrock, Upstream::Plan]),
    };
    // Three days and a month boundary, to the millisecond.
    let at = w.start + Duration::milliseconds(rng.below(3 * 24 * 3600 * 1000) as i64);
    let with_usage = rng.below(4) != 0;
    RequestRecord {
        request_id: format!("r-{n:07}"),
        access_key_id: key,
        user_id: user,
        model: rng.pick(&MODELS).map(str::to_owned),
        stream: rng.below(2) == 0,
        route,
        upstream,
        status: *rng.pick(&[200, 200, 200, 429, 500, 400]),
        error_type: None,
        plan_status: None,
        failover_skip: None,
        routing: None,
        outcome: Outcome::Complete,
        auth_ms: None,
        plan_ttfb_ms: None,
        bedrock_ttfb_ms: None,
        total_ms: 10.0,
        request_bytes: 100,
        response_bytes: 100,
        started_at: at,
        finished_at: at + Duration::seconds(rng.below(600) as i64),
        usage: with_usage.then(|| UsageRecord {
            model: "m".into(),
            provider: if upstream == Upstream::Bedrock {
                Provider::Bedrock
            } else {
                Provider::Plan
            },
            tokens: TokenCounts {
                input: rng.below(5_000),
                output: rng.below(2_000),
                cache_read: rng.below(50_000),
                cache_write_5m: rng.below(3_000),
                cache_write_1h: rng.below(1_000),
            },
            cost_micro_usd: rng.below(90_000) as i64,
        }),
    }
}

/// hour, user, key, model, provider, path
type RowKey = (DateTime<Utc>, Uuid, Uuid, String, String, String);

/// The rollup rows the records should give, computed here independently of the writer.
fn expected_rollups(records: &[RequestRecord]) -> Vec<RollupRow> {
    let mut rows: BTreeMap<RowKey, RollupRow> = BTreeMap::new();
    for r in records {
        let hour = Utc
            .timestamp_opt(r.started_at.timestamp().div_euclid(3600) * 3600, 0)
            .unwrap();
        let key = (
            hour,
            r.user_id,
            r.access_key_id,
            r.model.clone().unwrap_or_default(),
            r.upstream.as_str().to_owned(),
            r.route.as_str().to_owned(),
        );
        let row = rows.entry(key.clone()).or_insert_with(|| RollupRow {
            hour,
            user_id: key.1,
            access_key_id: key.2,
            model: key.3.clone(),
            provider: key.4.clone(),
            path: key.5.clone(),
            requests: 0,
            failovers: 0,
            errors: 0,
            requests_with_usage: 0,
            input_tokens: 0,
            output_tokens: 0,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost_micro_usd: 0,
        });
        row.requests += 1;
        row.failovers += i64::from(r.route == PathTaken::PlanThenBedrock);
        row.errors += i64::from(r.status >= 400);
        if let Some(u) = &r.usage {
            row.requests_with_usage += 1;
            row.input_tokens += u.tokens.input as i64;
            row.output_tokens += u.tokens.output as i64;
            row.cache_read_tokens += u.tokens.cache_read as i64;
            row.cache_write_tokens += (u.tokens.cache_write_5m + u.tokens.cache_write_1h) as i64;
            row.cost_micro_usd += u.cost_micro_usd;
        }
    }
    rows.into_values().collect()
}

async fn stored_rollups(store: &Store) -> Vec<RollupRow> {
    let mut rows = store.rollup_rows(DateTime::UNIX_EPOCH).await.unwrap();
    rows.sort();
    rows
}

fn random_time(rng: &mut Rng, w: &World) -> DateTime<Utc> {
    let hours = rng.below(80) as i64 - 4;
    let base = w.start + Duration::hours(hours);
    match rng.below(3) {
        0 => base, // on the hour
        _ => base + Duration::milliseconds(rng.below(3_600_000) as i64),
    }
}

fn random_filter(rng: &mut Rng, w: &World) -> UsageFilter {
    let mut filter = UsageFilter::default();
    if rng.below(5) != 0 {
        let a = random_time(rng, w);
        let b = random_time(rng, w);
        filter.from = Some(a.min(b));
        filter.to = Some(a.max(b));
    }
    if rng.below(4) == 0 {
        filter.user_id = Some(*rng.pick(&w.users));
    }
    if rng.below(5) == 0 {
        filter.access_key_id = Some(rng.pick(&w.keys).0);
    }
    if rng.below(4) == 0 {
        filter.model = Some(rng.pick(&MODELS[..2]).unwrap().to_owned());
    }
    if rng.below(4) == 0 {
        filter.provider = Some((*rng.pick(&["plan", "bedrock"])).to_owned());
    }
    filter
}

/// The top list the raw rows give: per-group totals, most requests first, ties in group order.
fn raw_top(mut series: Vec<UsageBucket>, limit: usize) -> Vec<UsageBucket> {
    let mut groups: BTreeMap<(Option<Uuid>, Option<String>), UsageBucket> = BTreeMap::new();
    for mut b in series.drain(..) {
        b.bucket = String::new();
        let key = (b.group_id, b.group_name.clone());
        match groups.get_mut(&key) {
            Some(sum) => {
                sum.requests += b.requests;
                sum.failovers += b.failovers;
                sum.bedrock_direct += b.bedrock_direct;
                sum.errors += b.errors;
                sum.requests_with_usage += b.requests_with_usage;
                sum.input_tokens += b.input_tokens;
                sum.output_tokens += b.output_tokens;
                sum.cache_read_tokens += b.cache_read_tokens;
                sum.cache_write_tokens += b.cache_write_tokens;
                sum.cost_micro_usd += b.cost_micro_usd;
            }
            None => {
                groups.insert(key, b);
            }
        }
    }
    let mut rows: Vec<UsageBucket> = groups.into_values().collect();
    rows.sort_by_key(|b| std::cmp::Reverse(b.requests));
    rows.truncate(limit);
    rows
}

async fn rollups_agree_with_the_raw_rows_for_random_rows_and_queries(store: &Store) {
    let w = world();
    for seed in [7_u64, 1_234_567] {
        let mut rng = Rng(seed);
        let offset = if seed == 7 { 0 } else { 100_000 };
        let records: Vec<RequestRecord> = (0..1_500)
            .map(|n| random_record(&mut rng, &w, offset + n))
            .collect();
        // Random batch sizes; some batches are written twice (a retried flush), some of
        // those together with rows of the next batch (old rows and new ones in one call).
        let mut at = 0;
        while at < records.len() {
            let size = 1 + rng.below(400) as usize;
            let batch = &records[at..(at + size).min(records.len())];
            store.insert_request_records(batch).await.unwrap();
            if rng.below(3) == 0 {
                let end = (at + size + 50 * rng.below(3) as usize).min(records.len());
                store
                    .insert_request_records(&records[at..end])
                    .await
                    .unwrap();
            }
            at += size;
        }
    }
    let mut rng = Rng(7);
    let mut all: Vec<RequestRecord> = (0..1_500).map(|n| random_record(&mut rng, &w, n)).collect();
    let mut rng = Rng(1_234_567);
    all.extend((0..1_500).map(|n| random_record(&mut rng, &w, 100_000 + n)));

    let kept = stored_rollups(store).await;
    assert_eq!(kept, expected_rollups(&all), "the writer's sums");
    assert_eq!(
        kept.iter().map(|r| r.requests).sum::<i64>(),
        3_000,
        "retried batches counted once"
    );

    let mut rng = Rng(99);
    for round in 0..60 {
        let filter = random_filter(&mut rng, &w);
        let granularity = *rng.pick(&[Granularity::Hour, Granularity::Day, Granularity::Month]);
        let group = *rng.pick(&[
            None,
            Some(UsageGroup::User),
            Some(UsageGroup::Key),
            Some(UsageGroup::Model),
        ]);
        let raw = store
            .usage_series_from_raw(&filter, granularity, group)
            .await
            .unwrap();
        let served = match group {
            None => store.usage_series(&filter, granularity).await.unwrap(),
            Some(g) => store
                .usage_series_by(&filter, granularity, g)
                .await
                .unwrap(),
        };
        assert_eq!(
            served, raw,
            "round {round}: {filter:?} {granularity:?} {group:?}"
        );
        if let Some(g) = group {
            let limit = 1 + rng.below(4) as usize;
            let top = store.usage_top(&filter, g, limit as i64).await.unwrap();
            assert_eq!(top, raw_top(raw, limit), "round {round}: top {limit}");
        }
    }
    // Totals: the requests of a range, and their tokens.
    let from = w.start + Duration::minutes(90);
    let to = w.start + Duration::hours(50) + Duration::seconds(7);
    let totals = store.usage_totals(from, to).await.unwrap();
    let inside: Vec<&RequestRecord> = all
        .iter()
        .filter(|r| r.started_at >= from && r.started_at < to)
        .collect();
    assert_eq!(totals.requests, inside.len() as i64);
    assert_eq!(
        totals.cost_micro_usd,
        inside
            .iter()
            .filter_map(|r| r.usage.as_ref())
            .map(|u| u.cost_micro_usd)
            .sum::<i64>()
    );

    // A rebuild from the raw rows gives the same rows, from the start or from mid-range.
    let written = store.rebuild_rollups(DateTime::UNIX_EPOCH).await.unwrap();
    assert_eq!(written as usize, kept.len());
    assert_eq!(stored_rollups(store).await, kept);
    store
        .rebuild_rollups(w.start + Duration::hours(30) + Duration::minutes(17))
        .await
        .unwrap();
    assert_eq!(stored_rollups(store).await, kept);
    // The all-users and the daily per-key rollups were rebuilt too (the daily ones from the
    // first rebuilt day's midnight): reports over everyone still match the raw rows.
    let everyone = UsageFilter::default();
    for (group, granularity) in [
        (None, Granularity::Hour),
        (Some(UsageGroup::Model), Granularity::Hour),
        (Some(UsageGroup::User), Granularity::Day),
        (Some(UsageGroup::Key), Granularity::Month),
    ] {
        assert_eq!(
            match group {
                None => store.usage_series(&everyone, granularity).await,
                Some(g) => store.usage_series_by(&everyone, granularity, g).await,
            }
            .unwrap(),
            store
                .usage_series_from_raw(&everyone, granularity, group)
                .await
                .unwrap(),
            "{group:?} {granularity:?}"
        );
    }
}

async fn retention_deletes_raw_rows_in_batches_and_keeps_the_rollups(store: &Store) {
    let w = world();
    let mut rng = Rng(42);
    let now = Utc::now();
    let mut records: Vec<RequestRecord> =
        (0..300).map(|n| random_record(&mut rng, &w, n)).collect();
    // 200 rows 40 days old, 100 from the last hour.
    for (n, r) in records.iter_mut().enumerate() {
        let age = if n < 200 {
            Duration::days(40) + Duration::minutes(n as i64)
        } else {
            Duration::seconds(n as i64)
        };
        r.started_at = now - age;
        r.finished_at = r.started_at;
    }
    store.insert_request_records(&records).await.unwrap();
    let old = UsageFilter {
        from: Some(now - Duration::days(45)),
        to: Some(now - Duration::days(35)),
        ..UsageFilter::default()
    };
    let before = store.usage_series(&old, Granularity::Day).await.unwrap();
    assert_eq!(before.iter().map(|b| b.requests).sum::<i64>(), 200);

    let cutoff = now - Duration::days(30);
    let mut passes = 0;
    loop {
        let deleted = store.delete_request_rows_before(cutoff, 70).await.unwrap();
        passes += 1;
        assert!(deleted <= 70);
        if deleted < 70 {
            break;
        }
    }
    assert_eq!(passes, 3, "200 rows in batches of 70");
    assert_eq!(store.count_request_logs().await.unwrap(), 100);
    // The old range is all whole hours inside it: the rollups still answer it.
    let after = store.usage_series(&old, Granularity::Day).await.unwrap();
    assert_eq!(after, before);
    let recent = UsageFilter {
        from: Some(now - Duration::hours(2)),
        ..UsageFilter::default()
    };
    let recent = store
        .usage_series(&recent, Granularity::Hour)
        .await
        .unwrap();
    assert_eq!(recent.iter().map(|b| b.requests).sum::<i64>(), 100);
}
