//! Line charts as inline SVG for the HTML reports (`simulate --html`, `loadgen --html`): both
//! axes with round-number ticks and a title, a legend, an optional dashed reference line, and
//! a palette of ten distinct colours so no two series of a chart share one.

use std::fmt::Write as _;

/// Ten colours, told apart on screen and in print (Tableau 10). Series take them in order.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#e15759", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// One line: its name (in the legend), colour and values (one per x).
pub type Series<'a> = (&'a str, &'a str, &'a [f64]);

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A round tick step (1, 2 or 5 × 10ⁿ) giving about `ticks` intervals over `range`.
pub fn nice_step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// A tick label without trailing zeros: 0.25, 2, 1500.
fn label(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A line chart titled `title`, x values in `x` (with `xlabel`, e.g. `minute`), y axis named
/// `ylabel`. A minute axis longer than six hours is labelled in hours. Long series are thinned
/// to ≤ 2,000 points per line (the max of each bucket, so peaks stay visible).
pub fn line_chart(
    title: &str,
    x: &[f64],
    series: &[Series<'_>],
    xlabel: &str,
    ylabel: &str,
    reference: Option<f64>,
) -> String {
    let (w, h) = (960.0, 280.0);
    let (left, right, top, bottom) = (58.0, 12.0, 12.0, 42.0);
    let xmin = x.first().copied().unwrap_or(0.0);
    let xmax = x.last().copied().unwrap_or(1.0).max(xmin + 1e-9);
    let data_max = series
        .iter()
        .flat_map(|(_, _, ys)| ys.iter().copied())
        .filter(|v| v.is_finite())
        .fold(reference.unwrap_or(0.0), f64::max);
    let ystep = nice_step(data_max.max(1e-9), 5.0);
    let ymax = (data_max / ystep).ceil().max(1.0) * ystep;
    let (xdiv, xname) = if xlabel == "minute" && xmax - xmin > 360.0 {
        (60.0, "hour")
    } else {
        (1.0, xlabel)
    };
    let sx = |v: f64| left + (v - xmin) / (xmax - xmin) * (w - left - right);
    let sy = |v: f64| h - bottom - v / ymax * (h - top - bottom);
    let mut s = format!("<h2>{}</h2><div class=\"legend\">", esc(title));
    for (name, color, _) in series {
        let _ = write!(s, "<span style=\"color:{color}\">■ {}</span>", esc(name));
    }
    let _ = write!(
        s,
        "</div><svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">"
    );
    // Y ticks with grid lines.
    let mut v = 0.0;
    while v <= ymax + ystep * 1e-6 {
        let y = sy(v);
        let _ = write!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 4.0,
            y + 4.0,
            label(v)
        );
        v += ystep;
    }
    // X ticks.
    let xstep = nice_step((xmax - xmin) / xdiv, 8.0) * xdiv;
    let mut v = (xmin / xstep).ceil() * xstep;
    while v <= xmax + xstep * 1e-6 {
        let xp = sx(v);
        let _ = write!(
            s,
            "<line x1=\"{xp:.1}\" y1=\"{0:.1}\" x2=\"{xp:.1}\" y2=\"{1:.1}\" stroke=\"#999\"/><text x=\"{xp:.1}\" y=\"{2:.1}\" text-anchor=\"middle\">{3}</text>",
            h - bottom,
            h - bottom + 4.0,
            h - bottom + 16.0,
            label(v / xdiv)
        );
        v += xstep;
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#999\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{0}\" stroke=\"#999\"/>\
         <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">{4}</text>\
         <text transform=\"translate(12,{5:.1}) rotate(-90)\" text-anchor=\"middle\">{6}</text>",
        h - bottom,
        w - right,
        (left + w - right) / 2.0,
        h - 6.0,
        esc(xname),
        (top + h - bottom) / 2.0,
        esc(ylabel)
    );
    if let Some(r) = reference {
        let _ = write!(
            s,
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#555\" stroke-dasharray=\"5,4\"/>",
            sy(r),
            w - right
        );
    }
    for (_, color, ys) in series {
        // A non-finite value (nothing measured) breaks the line rather than drawing a zero.
        let step = (ys.len() / 2000).max(1);
        let mut runs: Vec<String> = vec![String::new()];
        for (i, chunk) in ys.chunks(step).enumerate() {
            let y = chunk.iter().copied().fold(f64::NAN, f64::max);
            let Some(&xi) = x.get(i * step) else { break };
            if y.is_finite() {
                let run = runs.last_mut().expect("never empty");
                let _ = write!(run, "{:.1},{:.1} ", sx(xi), sy(y));
            } else if !runs.last().is_some_and(String::is_empty) {
                runs.push(String::new());
            }
        }
        for pts in runs.iter().filter(|r| !r.is_empty()) {
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.4\" points=\"{}\"/>",
                pts.trim_end()
            );
        }
    }
    s + "</svg>"
}

/// The page around charts: a title, a preformatted summary, then the charts.
pub fn page(title: &str, summary: &str, charts: &[String]) -> String {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}h2{{font-size:16px;margin:24px 0 4px}}\
         pre{{background:#f6f6f6;padding:12px;overflow:auto;white-space:pre-wrap}}svg{{background:#fff;border:1px solid #ddd}}\
         .legend span{{margin-right:14px}}</style></head><body><h1>{0}</h1><pre>{1}</pre>",
        esc(title),
        esc(summary)
    );
    for c in charts {
        html += c;
    }
    html + "</body></html>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        for (range, ticks, want) in [
            (10.0, 5.0, 2.0),
            (7.3, 5.0, 2.0),
            (1.0, 5.0, 0.2),
            (0.9, 5.0, 0.2),
            (1440.0, 8.0, 200.0),
            (100.0, 8.0, 20.0),
            (3.0, 5.0, 1.0),
        ] {
            let got = nice_step(range, ticks);
            assert!(
                (got - want).abs() < 1e-9,
                "{range}/{ticks}: {got}, want {want}"
            );
        }
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(2.0), "2");
        assert_eq!(label(1500.0), "1500");
    }

    #[test]
    fn a_chart_labels_both_axes_and_draws_each_series() {
        let x: Vec<f64> = (0..=600).map(f64::from).collect();
        let a: Vec<f64> = x.iter().map(|v| v / 100.0).collect();
        let b = vec![1.0; x.len()];
        let svg = line_chart(
            "t",
            &x,
            &[("a", PALETTE[0], &a), ("b", PALETTE[1], &b)],
            "minute",
            "units",
            Some(2.0),
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(
            svg.contains(">hour</text>"),
            "600 minutes are labelled in hours"
        );
        assert!(svg.contains(">units</text>"));
        assert!(svg.contains(">6</text>"), "y ticks reach the max: {svg}");
        assert!(svg.contains("stroke-dasharray"));
        // A gap splits the line in two.
        let gappy = [1.0, 2.0, f64::NAN, 3.0];
        let svg = line_chart(
            "g",
            &[0.0, 1.0, 2.0, 3.0],
            &[("g", PALETTE[0], &gappy)],
            "minute",
            "s",
            None,
        );
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
    }
}
