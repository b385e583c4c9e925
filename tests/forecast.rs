//! Forecasting: beats the seasonal-naive forecast with calibrated intervals on a real trace,
//! keeps gaps as gaps, and falls back sensibly on short history.

use llm_autoscaler::forecast::{
    backtest, Backtest, BriefRule, Combined, ForecastError, Forecaster, Mstl, SeasonalNaive, DAY,
};
use llm_autoscaler::sim::traffic::{parse_trace, Trace};

fn series(name: &str) -> Vec<Option<f64>> {
    let dir = std::env::var("LLM_AUTOSCALER_TRACES")
        .unwrap_or_else(|_| format!("{}/../shared/traces", env!("CARGO_MANIFEST_DIR")));
    let path = format!("{dir}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match parse_trace(&path, &text).unwrap() {
        Trace::PerMinute(m) => m,
        Trace::PerRequest(_) => panic!("per-minute trace expected"),
    }
}

#[test]
fn backtest_on_servegen_beats_seasonal_naive_with_calibrated_intervals() {
    let s = series("servegen_m-small_per_minute.csv");
    let r = backtest(
        &s,
        Backtest {
            step: 720,
            ..Backtest::default()
        },
        &mut |_| {},
    );
    assert!(r.origins >= 20, "{r:?}");
    assert!(r.mase_vs_seasonal_naive < 0.75, "{r:?}");
    assert!(
        r.mae < r.mae_brief_rule,
        "the combination beats the brief's rule alone: {r:?}"
    );
    assert!((0.85..=0.95).contains(&r.coverage_90), "{r:?}");
}

#[test]
fn gaps_stay_gaps() {
    let s = series("nasa_http_1995_per_minute.csv");
    let gaps = s.iter().filter(|v| v.is_none()).count();
    assert!(gaps > 7000, "NASA has whole days missing: {gaps}");
    // A history that ends inside the July gap still forecasts, from filled values for fitting.
    let end = s.iter().rposition(|v| v.is_some()).unwrap();
    let first_gap_after_data = (3 * DAY..end)
        .find(|&i| s[i].is_none() && s[i - 1].is_some())
        .unwrap();
    let f = Combined::default()
        .forecast(&s[..first_gap_after_data + 30], 60)
        .unwrap();
    assert_eq!(f.point.len(), 60);
    assert!(f.point.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!(f.lower.iter().zip(&f.upper).all(|(l, u)| l <= u));
}

#[test]
fn short_history_falls_back_and_seasonal_naive_is_yesterday() {
    let day: Vec<Option<f64>> = (0..DAY).map(|m| Some(100.0 + (m % 60) as f64)).collect();
    let mut history = day.clone();
    history.extend(day.iter().take(DAY / 2).copied());
    // 1.5 days: MSTL declines, the brief's rule answers.
    assert!(matches!(
        Mstl::default().forecast(&history, 60),
        Err(ForecastError::ShortHistory { .. })
    ));
    let f = Combined::default().forecast(&history, 60).unwrap();
    assert_eq!(f.point, BriefRule.forecast(&history, 60).unwrap().point);
    // Seasonal naive: the same minute a day earlier.
    let n = SeasonalNaive.forecast(&history, 3).unwrap();
    assert_eq!(
        n.point,
        vec![
            history[history.len() - DAY].unwrap(),
            history[history.len() - DAY + 1].unwrap(),
            history[history.len() - DAY + 2].unwrap()
        ]
    );
    // 30 minutes: the last hour's level.
    let f = Combined::default()
        .forecast(&[Some(10.0), None, Some(20.0)], 5)
        .unwrap();
    assert_eq!(f.point, vec![15.0; 5]);
    assert!(Combined::default().forecast(&[None, None], 5).is_err());
}

#[test]
fn a_history_that_starts_with_a_gap_forecasts_like_a_full_one() {
    // Two days of a daily sine starting mid-cycle; the copy misses its first ten minutes (a
    // CloudWatch backfill whose first minutes had no datapoint).
    let value = |i: usize| {
        let phase = ((i + 777) % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
        1000.0 + 500.0 * phase.sin()
    };
    let full: Vec<Option<f64>> = (0..2 * DAY).map(|i| Some(value(i))).collect();
    let mut gappy = full.clone();
    gappy[..10].fill(None);
    let a = Mstl::default().forecast(&full, 30).unwrap();
    let b = Mstl::default().forecast(&gappy, 30).unwrap();
    for h in 0..30 {
        let want = value(2 * DAY + h);
        assert!(
            (a.point[h] - want).abs() < 5.0,
            "full, +{h}: {} vs {want}",
            a.point[h]
        );
        assert!(
            (b.point[h] - want).abs() < 5.0,
            "gappy, +{h}: {} vs {want}",
            b.point[h]
        );
    }
}
