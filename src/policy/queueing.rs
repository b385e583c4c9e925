//! How many servers a queue of prefills needs: Erlang's C formula (M/M/c), the call-centre
//! staffing rule, applied to the prefill queue.
//!
//! A server runs one prefill at a time (vLLM schedules prefills ahead of decode steps; the
//! simulator does the same, `sim::perf`), so a request whose server is busy with another
//! prompt waits for it. At the same utilisation a small fleet queues far more than a large
//! one: with requests whose prefill takes a second, 0.6 a second keep two servers 30 % busy
//! and 14 % of requests wait (P95 wait 0.72 s); three servers, 20 % busy, make 2.5 % wait and
//! the P95 wait nothing. A utilisation target alone cannot see that — it released the third
//! unit of long-context fleets and bought it back minutes later, when the waits showed
//! (robustness matrix: most of its plateau flaps).
//!
//! Deviations from the textbook, and why they are acceptable here: requests are routed to the
//! least busy server rather than held in one queue (join-shortest-queue, close to M/M/c in its
//! waits); prefill times are spread like their prompts, not exponentially — a heavier tail
//! waits longer, so the wait's tail is stretched by a factor (Allen–Cunneen's `(1 + Cs²) ÷ 2`)
//! that the fleet learns from its own waits (`capacity::Correction::queue_factor`); a
//! server is a unit (an instance of two units counts as two servers of half its speed).
//!
//! Pure arithmetic: no state, no I/O.

use crate::model::Units;

/// Erlang's C: the probability that a request waits, with `servers` servers and an offered
/// load of `load` (arrival rate × mean service time, in servers). 1 when the load reaches the
/// servers (the queue grows without bound).
pub fn wait_probability(servers: Units, load: f64) -> f64 {
    let c = f64::from(servers);
    if load <= 0.0 {
        return 0.0;
    }
    if servers == 0 || load >= c {
        return 1.0;
    }
    // Erlang's B by its recurrence (stable for any size), then C from B.
    let mut b = 1.0;
    for k in 1..=servers {
        b = load * b / (f64::from(k) + load * b);
    }
    c * b / (c - load * (1.0 - b))
}

/// The `quantile` (e.g. 0.95) of the wait, seconds, with `servers` servers, an offered load of
/// `load` and a mean service time of `service_secs`: a waiting request's wait is exponential
/// with mean `service ÷ (servers − load)`, so `P(W > t) = C · e^{−(servers − load)·t/service}`
/// — stretched by `tail_factor` (1 for M/M/c; Allen–Cunneen's `(1 + Cs²) ÷ 2` for service
/// times spread more than exponentially, as long prompts among short ones are). Zero when
/// fewer than `1 − quantile` of the requests wait at all; infinite when the load reaches the
/// servers.
pub fn wait_quantile_secs(
    servers: Units,
    load: f64,
    service_secs: f64,
    quantile: f64,
    tail_factor: f64,
) -> f64 {
    let c = f64::from(servers);
    if load >= c {
        return f64::INFINITY;
    }
    let waits = wait_probability(servers, load);
    let tail = 1.0 - quantile;
    if waits <= tail {
        return 0.0;
    }
    tail_factor * service_secs / (c - load) * (waits / tail).ln()
}

/// The fewest servers (from one, up to `max`) whose `quantile` wait stays within
/// `max_wait_secs`, for `rate_per_sec` arrivals of mean service time `service_secs`, the wait's
/// tail stretched by `tail_factor` ([`wait_quantile_secs`]); `max` when none does.
pub fn servers_for_wait(
    rate_per_sec: f64,
    service_secs: f64,
    max_wait_secs: f64,
    quantile: f64,
    tail_factor: f64,
    max: Units,
) -> Units {
    let load = rate_per_sec * service_secs;
    if !(load.is_finite() && load > 0.0) {
        return 1.min(max);
    }
    // The load itself (rounded down) never suffices; start there.
    let from = (load.floor() as Units).clamp(1, max.max(1));
    (from..=max)
        .find(|&c| {
            wait_quantile_secs(c, load, service_secs, quantile, tail_factor) <= max_wait_secs
        })
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_closed_forms() {
        // (servers, load, P(wait)): M/M/1 waits with probability ρ; M/M/2 with
        // a² ÷ (2 + a)·… — C(2, 1) = 1/3; C(3, 0.6) and C(2, 0.6) worked by hand from the sums.
        let cases = [
            (1, 0.3, 0.3),
            (1, 0.9, 0.9),
            (2, 1.0, 1.0 / 3.0),
            (2, 0.6, 0.18 / 0.7 / (1.6 + 0.18 / 0.7)),
            (3, 0.6, 0.036 / 0.8 / (1.78 + 0.036 / 0.8)),
            (4, 4.0, 1.0),
            (4, 0.0, 0.0),
        ];
        for (c, a, want) in cases {
            let got = wait_probability(c, a);
            assert!(
                (got - want).abs() < 1e-9,
                "C({c}, {a}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn the_wait_quantile_is_zero_when_few_wait_and_grows_as_the_servers_fill() {
        // Two servers, 0.6 requests a second of one second each: 14 % wait.
        let p95 = wait_quantile_secs(2, 0.6, 1.0, 0.95, 1.0);
        let want = 1.0 / 1.4 * (wait_probability(2, 0.6) / 0.05).ln();
        assert!(
            (p95 - want).abs() < 1e-12 && p95 > 0.7 && p95 < 0.75,
            "{p95}"
        );
        // Three: 2.5 % wait, so the P95 waits nothing.
        assert_eq!(wait_quantile_secs(3, 0.6, 1.0, 0.95, 1.0), 0.0);
        assert_eq!(wait_quantile_secs(2, 2.0, 1.0, 0.95, 1.0), f64::INFINITY);
        let mut last = 0.0;
        for a in [0.2, 0.6, 1.0, 1.4, 1.8] {
            let w = wait_quantile_secs(2, a, 1.0, 0.95, 1.0);
            assert!(w >= last, "{a}: {w} < {last}");
            last = w;
        }
    }

    #[test]
    fn servers_are_sized_on_the_wait_not_on_the_utilisation() {
        // (rate/s, service s, max wait s, max, want): the same load of 0.6 servers needs three
        // when a prefill takes a second and one when it takes a twentieth of one; a busy chat
        // fleet runs near its load; an empty one needs one; the ceiling caps it.
        let cases = [
            (0.6, 1.0, 0.5, 20, 3),
            (12.0, 0.05, 0.5, 20, 1),
            (30.0, 0.05, 0.5, 20, 2),
            (200.0, 0.05, 0.5, 20, 11),
            (0.0, 1.0, 0.5, 20, 1),
            (50.0, 1.0, 0.5, 20, 20),
        ];
        for (rate, service, wait, max, want) in cases {
            let got = servers_for_wait(rate, service, wait, 0.95, 1.0, max);
            assert_eq!(got, want, "{rate}/s × {service} s, ≤ {wait} s");
            if got < max {
                assert!(wait_quantile_secs(got, rate * service, service, 0.95, 1.0) <= wait);
                if got > 1 {
                    assert!(wait_quantile_secs(got - 1, rate * service, service, 0.95, 1.0) > wait);
                }
            }
        }
    }
}
