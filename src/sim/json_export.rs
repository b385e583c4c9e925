//! A series exported as JSON, read as its tool answers: Prometheus's range query
//! (`/api/v1/query_range`, as `curl` or `promtool query range -o json` saves it) and
//! CloudWatch's `GetMetricData` and `GetMetricStatistics` (as `aws cloudwatch … --output json`
//! writes them) — the two sources the daemon itself reads demand from. Each becomes the same
//! per-minute series as a `timestamp,value` CSV of the same points ([`series_minutes`]).
//!
//! What the tools do that a CSV would not: several series in one answer (a query without
//! `sum()`, one per instance or zone) are summed at each time — the fleet's demand —;
//! CloudWatch lists `GetMetricData`'s points newest first and `GetMetricStatistics`'s in no
//! order, so points are sorted by time. A point that cannot be read is located to its line and
//! column in the file (`RawValue` keeps each point's place in the text).

use serde::Deserialize;
use serde_json::value::RawValue;

use super::traffic::{
    export_timestamp_secs, located, series_minutes, SeriesPoint, Trace, TraceError,
};

/// What a JSON document is, from its top-level keys.
#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(borrow)]
    status: Option<&'a RawValue>,
    #[serde(rename = "MetricDataResults", borrow)]
    metric_data_results: Option<&'a RawValue>,
    #[serde(rename = "Datapoints", borrow)]
    datapoints: Option<&'a RawValue>,
}

/// Whether `first_line` (of a file starting with `{`) opens a JSON export rather than a line of
/// Mooncake's JSON lines: a document that does not close on its first line (pretty-printed), or
/// one-line JSON with a Prometheus or CloudWatch key.
pub(super) fn is_json_export(first_line: &str) -> bool {
    match serde_json::from_str::<Keys>(first_line) {
        Ok(k) => k.status.is_some() || k.metric_data_results.is_some() || k.datapoints.is_some(),
        Err(_) => true,
    }
}

/// Prometheus's answer to a range query.
#[derive(Deserialize)]
struct PromAnswer<'a> {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(borrow, default)]
    data: Option<PromData<'a>>,
}

#[derive(Deserialize)]
struct PromData<'a> {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(borrow)]
    result: Vec<PromSeries<'a>>,
}

#[derive(Deserialize)]
struct PromSeries<'a> {
    /// `[unix seconds, "value"]` pairs (a range query's `matrix`).
    #[serde(borrow, default)]
    values: Vec<&'a RawValue>,
}

/// `aws cloudwatch get-metric-data`'s output.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricData<'a> {
    #[serde(borrow)]
    metric_data_results: Vec<MetricDataResult<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDataResult<'a> {
    #[serde(borrow)]
    timestamps: Vec<&'a RawValue>,
    #[serde(borrow)]
    values: Vec<&'a RawValue>,
}

/// `aws cloudwatch get-metric-statistics`'s output.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricStatistics<'a> {
    #[serde(borrow)]
    datapoints: Vec<&'a RawValue>,
}

/// The statistics a `GetMetricStatistics` datapoint may carry; with several, `Sum` is the
/// demand (a count per period).
const STATISTICS: [&str; 5] = ["Sum", "Average", "SampleCount", "Maximum", "Minimum"];

const EXPECTED: &str = "expected Prometheus's answer to a range query (/api/v1/query_range), the output of `aws cloudwatch get-metric-data` or `get-metric-statistics`, or Mooncake's JSON lines";

/// Reads a JSON export (see the module's docs) into per-minute demand.
pub(super) fn parse_json_export(file: &str, text: &str) -> Result<Trace, TraceError> {
    let at = |raw: &RawValue, message: String| {
        let (line, column) = position(text, offset(text, raw));
        located(file, line, column, message)
    };
    let syntax = |e| syntax_error(file, &e, EXPECTED);
    let keys: Keys = serde_json::from_str(text).map_err(syntax)?;
    let mut points = if keys.status.is_some() {
        prometheus_points(file, text, &at)?
    } else if keys.metric_data_results.is_some() {
        let answer: MetricData = serde_json::from_str(text).map_err(syntax)?;
        let mut points = Vec::new();
        for r in &answer.metric_data_results {
            if r.timestamps.len() != r.values.len() {
                let last = r.values.last().or(r.timestamps.last());
                let message = format!(
                    "{} timestamps and {} values; a GetMetricData result has one value per timestamp",
                    r.timestamps.len(),
                    r.values.len()
                );
                return Err(match last {
                    Some(raw) => at(raw, message),
                    None => located(file, 1, 1, message),
                });
            }
            for (ts, value) in r.timestamps.iter().zip(&r.values) {
                points.push(point(ts, timestamp(ts, &at)?, number(value, &at)?, text));
            }
        }
        points
    } else if keys.datapoints.is_some() {
        let answer: MetricStatistics = serde_json::from_str(text).map_err(syntax)?;
        let mut points = Vec::new();
        for raw in &answer.datapoints {
            let (secs, value) = datapoint(raw, &at)?;
            points.push(point(raw, secs, value, text));
        }
        points
    } else {
        return Err(located(
            file,
            1,
            1,
            format!("a JSON document with none of `status` (Prometheus), `MetricDataResults` or `Datapoints` (CloudWatch); {EXPECTED}"),
        ));
    };
    if points.is_empty() {
        return Err(located(file, 1, 1, "the answer has no points".into()));
    }
    series_minutes(file, &sum_at_each_time(&mut points), |at| {
        position(text, at)
    })
}

/// A JSON error at serde_json's line and column, its message without serde_json's own " at line
/// … column …" (the location gives it), then what was `expected`.
fn syntax_error(file: &str, e: &serde_json::Error, expected: &str) -> TraceError {
    let message = e.to_string();
    let message = message.split(" at line ").next().unwrap_or_default();
    located(
        file,
        e.line().max(1),
        e.column().max(1),
        format!("{message}; {expected}"),
    )
}

/// The points of Prometheus's answer, every series' together.
fn prometheus_points(
    file: &str,
    text: &str,
    at: &impl Fn(&RawValue, String) -> TraceError,
) -> Result<Vec<SeriesPoint>, TraceError> {
    let answer: PromAnswer = serde_json::from_str(text).map_err(|e| {
        syntax_error(
            file,
            &e,
            "expected Prometheus's answer to a range query (status, data.resultType, data.result[].values)",
        )
    })?;
    if answer.status != "success" {
        return Err(located(
            file,
            1,
            1,
            format!(
                "Prometheus answered status {:?}: {}",
                answer.status,
                answer.error.as_deref().unwrap_or("no error given")
            ),
        ));
    }
    let Some(data) = answer.data else {
        return Err(located(
            file,
            1,
            1,
            "Prometheus's answer has no `data`".into(),
        ));
    };
    if data.result_type != "matrix" {
        return Err(located(
            file,
            1,
            1,
            format!(
                "Prometheus's result is a {}, one value per series; a series over time is a range query's matrix (/api/v1/query_range)",
                data.result_type
            ),
        ));
    }
    let mut points = Vec::new();
    for series in &data.result {
        for raw in &series.values {
            let (ts, value): (f64, String) = serde_json::from_str(raw.get()).map_err(|_| {
                at(
                    raw,
                    format!(
                        "a point is {}; expected [unix seconds, \"value\"]",
                        raw.get()
                    ),
                )
            })?;
            let value = match value.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => v,
                _ => {
                    return Err(at(
                        raw,
                        format!("value is {value:?}; expected a finite number ≥ 0"),
                    ))
                }
            };
            let secs = export_timestamp_secs(&ts.to_string())
                .ok_or_else(|| at(raw, format!("timestamp {ts} is not Unix time")))?;
            points.push(point(raw, secs, value, text));
        }
    }
    Ok(points)
}

/// A `GetMetricStatistics` datapoint's time and value: its one statistic, or its `Sum`.
fn datapoint(
    raw: &RawValue,
    at: &impl Fn(&RawValue, String) -> TraceError,
) -> Result<(f64, f64), TraceError> {
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw.get())
        .map_err(|_| at(raw, "a datapoint is not a JSON object".into()))?;
    let Some(ts) = fields.get("Timestamp").and_then(|t| t.as_str()) else {
        return Err(at(raw, "a datapoint without a `Timestamp`".into()));
    };
    let secs = export_timestamp_secs(ts)
        .ok_or_else(|| at(raw, format!("timestamp is {ts:?}; expected RFC 3339")))?;
    let present: Vec<&str> = STATISTICS
        .into_iter()
        .filter(|s| fields.contains_key(*s))
        .collect();
    let statistic = match present.as_slice() {
        [one] => *one,
        many if many.contains(&"Sum") => "Sum",
        [] => {
            return Err(at(
                raw,
                format!(
                    "a datapoint with no statistic; expected one of {}",
                    STATISTICS.join(", ")
                ),
            ))
        }
        many => {
            return Err(at(
                raw,
                format!(
                    "a datapoint with {} and no Sum; ask for one statistic (--statistics)",
                    many.join(", ")
                ),
            ))
        }
    };
    match fields[statistic].as_f64() {
        Some(v) if v.is_finite() && v >= 0.0 => Ok((secs, v)),
        _ => Err(at(
            raw,
            format!(
                "{statistic} is {}; expected a finite number ≥ 0",
                fields[statistic]
            ),
        )),
    }
}

/// A CloudWatch timestamp (an RFC 3339 string) in Unix seconds.
fn timestamp(
    raw: &RawValue,
    at: &impl Fn(&RawValue, String) -> TraceError,
) -> Result<f64, TraceError> {
    serde_json::from_str::<String>(raw.get())
        .ok()
        .and_then(|ts| export_timestamp_secs(&ts))
        .ok_or_else(|| {
            at(
                raw,
                format!("timestamp is {}; expected RFC 3339", raw.get()),
            )
        })
}

/// A CloudWatch value: a finite number ≥ 0.
fn number(
    raw: &RawValue,
    at: &impl Fn(&RawValue, String) -> TraceError,
) -> Result<f64, TraceError> {
    match serde_json::from_str::<f64>(raw.get()) {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(at(
            raw,
            format!("value is {}; expected a finite number ≥ 0", raw.get()),
        )),
    }
}

/// A point placed where `raw` is in `text`.
fn point(raw: &RawValue, secs: f64, value: f64, text: &str) -> SeriesPoint {
    SeriesPoint {
        secs,
        value: Some(value),
        at: offset(text, raw),
    }
}

/// The points sorted by time, those at the same time summed into the first of them (the
/// series of one answer are one demand's parts).
fn sum_at_each_time(points: &mut [SeriesPoint]) -> Vec<SeriesPoint> {
    points.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let mut summed: Vec<SeriesPoint> = Vec::with_capacity(points.len());
    for p in points.iter() {
        match summed.last_mut() {
            Some(last) if last.secs == p.secs => {
                last.value = match (last.value, p.value) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                }
            }
            _ => summed.push(*p),
        }
    }
    summed
}

/// The byte offset in `text` where `raw` (a slice of it) starts.
fn offset(text: &str, raw: &RawValue) -> usize {
    (raw.get().as_ptr() as usize)
        .saturating_sub(text.as_ptr() as usize)
        .min(text.len())
}

/// The 1-based line and column of byte `offset` in `text` — worked out for an error only: a
/// scan from the start per point made reading an answer quadratic in its length.
fn position(text: &str, offset: usize) -> (usize, usize) {
    // A point starts at a JSON token, an ASCII byte: always a character boundary.
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::super::traffic::parse_trace;
    use super::*;

    /// The same three minutes (10, 12, 11 a minute from 2023-11-14T22:13:20Z, Unix 1700000000)
    /// as each tool answers them.
    #[test]
    fn prometheus_and_cloudwatch_answers_read_as_their_csv() {
        let csv = "timestamp,value\n1700000000,10\n1700000060,12\n1700000120,11\n";
        let want = match parse_trace("a.csv", csv).unwrap() {
            Trace::PerMinute(m) => m,
            other => panic!("{other}"),
        };
        assert_eq!(want, vec![Some(10.0), Some(12.0), Some(11.0)]);
        let cases = [
            (
                "Prometheus, two series (per instance) summed, pretty-printed",
                r#"{
  "status": "success",
  "data": {
    "resultType": "matrix",
    "result": [
      {"metric": {"instance": "a"}, "values": [[1700000000, "4"], [1700000060, "5"], [1700000120, "5"]]},
      {"metric": {"instance": "b"}, "values": [[1700000000, "6"], [1700000060, "7"], [1700000120, "6"]]}
    ]
  }
}"#,
            ),
            (
                "Prometheus on one line (curl), a 30 s step averaged per minute",
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"8"],[1700000030,"12"],[1700000060,"12"],[1700000090,"12"],[1700000120,"11"],[1700000150,"11"]]}]}}"#,
            ),
            (
                "CloudWatch GetMetricData, newest first",
                r#"{
    "MetricDataResults": [
        {
            "Id": "m1",
            "Label": "RequestCount",
            "Timestamps": [
                "2023-11-14T22:15:20+00:00",
                "2023-11-14T22:14:20+00:00",
                "2023-11-14T22:13:20+00:00"
            ],
            "Values": [11.0, 12.0, 10.0],
            "StatusCode": "Complete"
        }
    ],
    "Messages": []
}"#,
            ),
            (
                "CloudWatch GetMetricStatistics, in no order, Sum among several statistics",
                r#"{
    "Label": "RequestCount",
    "Datapoints": [
        {"Timestamp": "2023-11-14T22:14:20Z", "Sum": 12.0, "Average": 1.0, "Unit": "Count"},
        {"Timestamp": "2023-11-14T22:13:20Z", "Sum": 10.0, "Average": 1.0, "Unit": "Count"},
        {"Timestamp": "2023-11-14T22:15:20Z", "Sum": 11.0, "Average": 1.0, "Unit": "Count"}
    ]
}"#,
            ),
            (
                "CloudWatch GetMetricStatistics, one statistic",
                r#"{"Label": "RequestCount", "Datapoints": [{"Timestamp": "2023-11-14T22:13:20Z", "Average": 10.0}, {"Timestamp": "2023-11-14T22:14:20Z", "Average": 12.0}, {"Timestamp": "2023-11-14T22:15:20Z", "Average": 11.0}]}"#,
            ),
        ];
        for (name, text) in cases {
            match parse_trace("answer.json", text) {
                Ok(Trace::PerMinute(m)) => assert_eq!(m, want, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        // A line of Mooncake's trace is still a request, not an export.
        let mooncake =
            r#"{"timestamp": 0, "input_length": 100, "output_length": 20, "hash_ids": [1]}"#;
        assert!(matches!(
            parse_trace("m.jsonl", mooncake),
            Ok(Trace::PerRequest(r)) if r.len() == 1
        ));
    }

    #[test]
    fn a_bad_point_in_an_answer_is_located() {
        let cases = [
            (
                "Prometheus's NaN (a ratio over nothing)",
                "{\"status\": \"success\", \"data\": {\"resultType\": \"matrix\", \"result\": [\n  {\"metric\": {}, \"values\": [[1700000000, \"4\"],\n    [1700000060, \"NaN\"]]}]}}",
                (3, 5),
                "value is \"NaN\"",
            ),
            (
                "Prometheus refused the query",
                r#"{"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}"#,
                (1, 1),
                "parse error at char 5",
            ),
            (
                "an instant query",
                r#"{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000, "4"]}]}}"#,
                (1, 1),
                "/api/v1/query_range",
            ),
            (
                "GetMetricData with a value short",
                "{\"MetricDataResults\": [{\"Timestamps\": [\"2023-11-14T22:13:20Z\",\n \"2023-11-14T22:14:20Z\"], \"Values\": [10.0]}]}",
                (2, 38),
                "2 timestamps and 1 values",
            ),
            (
                "GetMetricStatistics with two statistics and no Sum",
                "{\"Datapoints\": [\n  {\"Timestamp\": \"2023-11-14T22:13:20Z\", \"Maximum\": 3.0, \"Minimum\": 1.0}]}",
                (2, 3),
                "Maximum, Minimum and no Sum",
            ),
            (
                "GetMetricStatistics with a timestamp not in RFC 3339",
                "{\"Datapoints\": [{\"Timestamp\": \"yesterday\", \"Sum\": 3.0}]}",
                (1, 17),
                "\"yesterday\"",
            ),
            (
                "a cut-off download",
                "{\n  \"status\": \"success\",\n  \"data\": {\"resultType\": \"matrix\", \"result\": [",
                (3, 46),
                "EOF while parsing",
            ),
            (
                "none of the tools' keys",
                "{\n  \"series\": []\n}",
                (1, 1),
                "none of `status`",
            ),
            (
                "no points",
                r#"{"status": "success", "data": {"resultType": "matrix", "result": []}}"#,
                (1, 1),
                "no points",
            ),
        ];
        for (name, text, (line, column), wanted) in cases {
            let e = parse_trace("answer.json", text).expect_err(name);
            assert_eq!((e.line, e.column), (line, column), "{name}: {e}");
            assert!(e.message.contains(wanted), "{name}: {e}");
            assert!(!e.message.contains(" at line "), "{name}: {e}");
        }
    }
}
