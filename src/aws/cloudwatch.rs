//! CloudWatch `GetMetricData`: the fleet's CloudWatch-sourced metrics in one batched call per
//! tick, each sample stamped with the end of the period it describes (so the engine judges
//! staleness from the data, not from when it was fetched).

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};

use super::error::classify;
use crate::config::MetricSource;
use crate::model::{Sample, Timestamp};
use crate::provider::ProviderError;

/// A `Sum` or `SampleCount` period that ended less than this long ago may still be filling up
/// (CloudWatch's publishing delay): using it would under-count, so it is skipped. Seconds.
pub const SETTLE_SECS: f64 = 60.0;

/// How many periods back a tick looks for the newest datapoint.
pub const LOOKBACK_PERIODS: f64 = 5.0;

/// `t` rounded down to a multiple of `period_secs` since the epoch.
pub fn align_down(t: Timestamp, period_secs: u64) -> Timestamp {
    let p = period_secs.max(1) as i64 * 1000;
    Timestamp(t.millis().div_euclid(p) * p)
}

/// One query of the batch: the metric's policy name and its CloudWatch source.
pub struct Query<'a> {
    /// The metric's `name` in the policy (the snapshot key).
    pub name: &'a str,
    /// Its source; anything but `Cloudwatch` is ignored.
    pub source: &'a MetricSource,
}

/// Rewrites the identifier `m1` in a user's metric-math expression to this query's own id, so
/// several expressions share one batched call.
pub fn rewrite_expression(expression: &str, metric_id: &str) -> String {
    let mut out = String::with_capacity(expression.len() + 8);
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        out.push_str(if token == "m1" { metric_id } else { token });
        token.clear();
    };
    for c in expression.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// Where a query's value comes back in the batch's results.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRef {
    /// The id of the result holding the value.
    pub id: String,
    /// The period, seconds.
    pub period_secs: u64,
    /// Whether the statistic adds up over the period (`Sum`, `SampleCount`): a period still
    /// filling up would under-count.
    pub summed: bool,
}

/// The `MetricDataQuery` list for a batch: per source, the metric (`q{k}m1`) and, with an
/// expression, the expression (`q{k}`) returning data instead. Returns the queries and, per
/// input, where its value comes back (`None` for sources that are not CloudWatch).
pub fn build_queries(queries: &[Query<'_>]) -> (Vec<MetricDataQuery>, Vec<Option<ResultRef>>) {
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for (k, q) in queries.iter().enumerate() {
        let MetricSource::Cloudwatch {
            namespace,
            metric_name,
            dimensions,
            statistic,
            period_secs,
            expression,
        } = q.source
        else {
            ids.push(None);
            continue;
        };
        let metric_id = format!("q{k}m1");
        let metric = Metric::builder()
            .namespace(namespace)
            .metric_name(metric_name)
            .set_dimensions(Some(
                dimensions
                    .iter()
                    .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                    .collect(),
            ))
            .build();
        out.push(
            MetricDataQuery::builder()
                .id(&metric_id)
                .metric_stat(
                    MetricStat::builder()
                        .metric(metric)
                        .period(*period_secs as i32)
                        .stat(statistic)
                        .build(),
                )
                .return_data(expression.is_none())
                .build(),
        );
        let summed = statistic == "Sum" || statistic == "SampleCount";
        let result_id = match expression {
            Some(e) => {
                let id = format!("q{k}");
                out.push(
                    MetricDataQuery::builder()
                        .id(&id)
                        .expression(rewrite_expression(e, &metric_id))
                        .period(*period_secs as i32)
                        .return_data(true)
                        .build(),
                );
                id
            }
            None => metric_id,
        };
        ids.push(Some(ResultRef {
            id: result_id,
            period_secs: *period_secs,
            summed,
        }));
    }
    (out, ids)
}

/// The newest usable datapoint of each query, keyed by policy name; queries with no usable
/// datapoint are absent (the engine then treats the metric as missing).
pub async fn latest(
    client: &aws_sdk_cloudwatch::Client,
    queries: &[Query<'_>],
    now: Timestamp,
) -> Result<Vec<(String, Sample)>, ProviderError> {
    let (batch, ids) = build_queries(queries);
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let longest = ids
        .iter()
        .flatten()
        .map(|i| i.period_secs)
        .max()
        .unwrap_or(60);
    // Periods are counted from the start time: aligned to the longest period (a multiple of
    // every other, all being whole minutes), each datapoint covers whole clock minutes.
    let start = align_down(
        now.plus_secs(-(LOOKBACK_PERIODS * longest as f64 + SETTLE_SECS)),
        longest,
    );
    let mut results = Vec::new();
    let mut token = None;
    // A handful of queries returns in one page; the bound keeps a misbehaving endpoint from
    // looping us.
    for _ in 0..10 {
        let out = client
            .get_metric_data()
            .set_metric_data_queries(Some(batch.clone()))
            .start_time(DateTime::from_millis(start.millis()))
            .end_time(DateTime::from_millis(now.millis()))
            .scan_by(ScanBy::TimestampDescending)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| classify("GetMetricData", e))?;
        results.extend(out.metric_data_results().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut samples = Vec::new();
    for (q, id) in queries.iter().zip(&ids) {
        let Some(ResultRef {
            id,
            period_secs: period,
            summed,
        }) = id
        else {
            continue;
        };
        let newest = results
            .iter()
            .filter(|r| r.id() == Some(id.as_str()))
            .flat_map(|r| r.timestamps().iter().zip(r.values()))
            .filter_map(|(t, v)| {
                let end = Timestamp(t.to_millis().ok()?).plus_secs(*period as f64);
                let settled = !summed || now.secs_since(end) >= SETTLE_SECS;
                (settled && end <= now.plus_secs(1.0) && v.is_finite()).then_some((end, *v))
            })
            .max_by_key(|(end, _)| *end);
        if let Some((at, value)) = newest {
            samples.push((q.name.to_string(), Sample { value, at }));
        }
    }
    Ok(samples)
}

/// Datums per `PutMetricData` call at most (AWS allows 1,000 and 1 MB).
pub const PUT_BATCH: usize = 500;

/// Datums per call for points carrying `dimensions` besides `Fleet`: [`PUT_BATCH`], fewer when
/// long dimensions would take a call past half of CloudWatch's 1 MB request limit (a datum's
/// names and values, its fleet and metric name, and ~200 bytes of encoding each).
pub fn batch_size(dimensions: &[(String, String)], longest_name: usize) -> usize {
    let per_datum = 200
        + longest_name
        + dimensions
            .iter()
            .map(|(k, v)| k.len() + v.len() + 40)
            .sum::<usize>();
    (500_000 / per_datum).clamp(1, PUT_BATCH)
}

/// Publishes `points` under the settings' namespace, dimension `Fleet` plus the settings'
/// own, at one-second resolution when asked, in batches of [`PUT_BATCH`]. Returns the calls
/// made.
pub async fn put(
    client: &aws_sdk_cloudwatch::Client,
    settings: &crate::config::CloudWatchExport,
    points: &[crate::provider::ExportPoint],
) -> Result<u64, ProviderError> {
    use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
    let extra: Vec<Dimension> = settings
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect();
    let resolution = if settings.high_resolution { 1 } else { 60 };
    let longest = points
        .iter()
        .map(|p| p.name.len() + p.fleet.len())
        .max()
        .unwrap_or(0);
    let mut calls = 0;
    for chunk in points.chunks(batch_size(&settings.dimensions, longest)) {
        let data: Vec<MetricDatum> = chunk
            .iter()
            .map(|p| {
                MetricDatum::builder()
                    .metric_name(&p.name)
                    .set_dimensions(Some(
                        std::iter::once(Dimension::builder().name("Fleet").value(&p.fleet).build())
                            .chain(extra.iter().cloned())
                            .collect(),
                    ))
                    .value(p.value)
                    .unit(StandardUnit::from(p.unit))
                    .timestamp(DateTime::from_millis(p.at.millis()))
                    .storage_resolution(resolution)
                    .build()
            })
            .collect();
        calls += 1;
        client
            .put_metric_data()
            .namespace(&settings.namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .map_err(|e| classify("PutMetricData", e))?;
    }
    Ok(calls)
}

/// Minutes asked per `GetMetricData` call when reading a history (a day: 1,440 datapoints, far
/// under the call's 100,800, and a bounded answer time).
pub const HISTORY_CHUNK_MINUTES: i64 = 1440;

/// A per-minute series over minutes `from_minute..=to_minute` (minutes since the epoch):
/// `(minute, value)` for the minutes with a datapoint, oldest first. Read a day at a time,
/// following `NextToken` within each day. Returns the calls made, too.
pub async fn history(
    client: &aws_sdk_cloudwatch::Client,
    source: &MetricSource,
    from_minute: i64,
    to_minute: i64,
) -> Result<(Vec<(i64, f64)>, u64), ProviderError> {
    let query = Query {
        name: "demand",
        source,
    };
    let (batch, ids) = build_queries(std::slice::from_ref(&query));
    let Some(Some(result)) = ids.into_iter().next() else {
        return Ok((Vec::new(), 0));
    };
    let mut points = Vec::new();
    let mut calls = 0;
    let mut start = from_minute;
    while start <= to_minute {
        let end = (start + HISTORY_CHUNK_MINUTES).min(to_minute + 1);
        let mut token = None;
        loop {
            calls += 1;
            let out = client
                .get_metric_data()
                .set_metric_data_queries(Some(batch.clone()))
                .start_time(DateTime::from_millis(start * 60_000))
                .end_time(DateTime::from_millis(end * 60_000))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("GetMetricData (history)", e))?;
            for r in out
                .metric_data_results()
                .iter()
                .filter(|r| r.id() == Some(result.id.as_str()))
            {
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    let Ok(ms) = t.to_millis() else { continue };
                    if v.is_finite() {
                        points.push((ms.div_euclid(60_000), *v));
                    }
                }
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() || calls > 10_000 {
                break;
            }
        }
        start = end;
    }
    points.sort_by_key(|p| p.0);
    points.dedup_by_key(|p| p.0);
    Ok((points, calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_dimensions_make_smaller_batches() {
        assert_eq!(batch_size(&[], 40), PUT_BATCH);
        let env = vec![("Environment".to_string(), "prod".to_string())];
        assert_eq!(batch_size(&env, 40), PUT_BATCH);
        // 29 dimensions with 1,024-character values: ~31 KB a datum, 16 to stay under 0.5 MB.
        let long: Vec<(String, String)> = (0..29)
            .map(|i| (format!("D{i}"), "v".repeat(1024)))
            .collect();
        let n = batch_size(&long, 40);
        assert!((10..=20).contains(&n), "{n}");
    }

    #[test]
    fn start_times_align_to_the_period() {
        let t = Timestamp::from_secs(1_800_000_000 + 61);
        assert_eq!(align_down(t, 60), Timestamp::from_secs(1_800_000_060));
        assert_eq!(align_down(t, 300), Timestamp::from_secs(1_800_000_000));
    }

    #[test]
    fn expressions_name_their_own_metric() {
        assert_eq!(rewrite_expression("m1/60", "q3m1"), "q3m1/60");
        assert_eq!(
            rewrite_expression("RATE(m1) + m10 * m1", "q0m1"),
            "RATE(q0m1) + m10 * q0m1"
        );
        assert_eq!(rewrite_expression("FILL(m1, 0)", "q1m1"), "FILL(q1m1, 0)");
    }

    #[test]
    fn one_batch_holds_every_cloudwatch_metric_and_only_those() {
        let cw = |expr: Option<&str>| MetricSource::Cloudwatch {
            namespace: "AWS/ApplicationELB".into(),
            metric_name: "RequestCount".into(),
            dimensions: vec![("LoadBalancer".into(), "app/x/1".into())],
            statistic: "Sum".into(),
            period_secs: 60,
            expression: expr.map(str::to_string),
        };
        let sqs = MetricSource::Sqs {
            queue_url: "http://q".into(),
        };
        let (a, b) = (cw(None), cw(Some("m1/60")));
        let queries = [
            Query {
                name: "rps_raw",
                source: &a,
            },
            Query {
                name: "queue",
                source: &sqs,
            },
            Query {
                name: "rps",
                source: &b,
            },
        ];
        let (batch, ids) = build_queries(&queries);
        let batch_ids: Vec<_> = batch
            .iter()
            .map(|q| q.id().unwrap_or_default().to_string())
            .collect();
        assert_eq!(batch_ids, ["q0m1", "q2m1", "q2"]);
        assert_eq!(
            batch[1].return_data(),
            Some(false),
            "a metric behind an expression returns nothing"
        );
        assert_eq!(batch[2].expression(), Some("q2m1/60"));
        assert_eq!(ids[0].as_ref().map(|i| i.id.as_str()), Some("q0m1"));
        assert!(ids[1].is_none());
        assert_eq!(ids[2].as_ref().map(|i| i.id.as_str()), Some("q2"));
    }
}

/// Why a fleet's demand history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No fleet (of that name) has `[fleets.predictive]` with a `source`.
    #[error("{0}")]
    NoSource(String),
    /// CloudWatch failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// A fleet's demand history as the daemon backfills it: per minute over its `history_days` up
/// to two minutes before `now` (gaps as `None`).
pub struct FleetHistory {
    /// The fleet's name.
    pub fleet: String,
    /// One value per minute, oldest first; `None` where CloudWatch has no datapoint.
    pub series: Vec<Option<f64>>,
    /// The time of the minute after the last.
    pub next_minute_at: crate::model::Timestamp,
}

/// Reads the demand history of `fleet` (default: the first fleet with a predictive source)
/// from CloudWatch, with the AWS access the daemon would use (`[global.aws]`, the default
/// credential chain).
pub async fn fleet_history(
    cfg: &crate::config::Config,
    fleet: Option<&str>,
    now: crate::model::Timestamp,
) -> Result<FleetHistory, HistoryError> {
    use crate::forecast::predictor::settled_minute;
    let f = cfg
        .fleets
        .iter()
        .find(|f| {
            fleet.is_none_or(|n| f.name == n)
                && f.predictive.as_ref().is_some_and(|p| p.source.is_some())
        })
        .ok_or_else(|| {
            HistoryError::NoSource(format!(
                "no fleet{} with [fleets.predictive] and a source",
                fleet.map(|n| format!(" named \"{n}\"")).unwrap_or_default()
            ))
        })?;
    let p = f.predictive.as_ref().expect("found with one");
    let source = p.source.as_ref().expect("found with one");
    let to = settled_minute(now);
    let from = to - p.history_days as i64 * 1440 + 1;
    let sdk = super::sdk_config(&cfg.global.aws, std::time::Duration::from_secs(30)).await;
    let client = aws_sdk_cloudwatch::Client::new(&sdk);
    let (points, _) = history(&client, source, from, to).await?;
    let mut series = vec![None; (to - from + 1) as usize];
    for (m, v) in points {
        if let Some(slot) = usize::try_from(m - from)
            .ok()
            .and_then(|i| series.get_mut(i))
        {
            *slot = Some(v);
        }
    }
    Ok(FleetHistory {
        fleet: f.name.clone(),
        series,
        next_minute_at: crate::model::Timestamp((to + 1) * 60_000),
    })
}
