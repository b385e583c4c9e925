//! Leader election for an HA pair of daemons: who may actuate, decided from one lease record
//! that every daemon reads and writes only by compare-and-swap (DynamoDB conditional writes on
//! AWS; shared memory in the simulated cloud).
//!
//! Modelled on client-go's `leaderelection` (Kubernetes' controllers, KEDA and Karpenter run
//! with it), with its central idea kept: **no daemon compares its wall clock with another's.**
//! A follower takes the lease only after it has seen the *same* record, unchanged, for
//! `lease_secs` of its own monotonic time; the leader changes the record at every renewal. The
//! leader's own right to act runs from when it *sent* a renewal that then succeeded, for
//! `lease_secs − margin_secs` — so it ends before any follower can have counted `lease_secs`
//! from *seeing* that renewal (which happened after the send). The margin covers an actuation
//! still in flight when the right ends (the daemon's call timeout) plus clock-rate drift.
//!
//! Deviations from client-go: the fencing token (`token`, +1 at every change of holder) is kept
//! in the record and logged with every actuation, so two holders can never share a token in
//! the record or the logs; AWS's Auto Scaling calls cannot check it, which is why safety rests
//! on the timing argument above, as client-go's does. Renewal happens once per tick, before any
//! actuation of that tick.
//!
//! Pure: times are seconds on the caller's monotonic clock, passed in.

use serde::Serialize;

/// How long before a follower could take over the leader stops actuating, seconds: the
/// daemon's call timeout (an actuation sent just before the right ends lands within it, 10 s)
/// plus 2 s for clock-rate drift and scheduling.
pub const MARGIN_SECS: f64 = 12.0;

/// The lease as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaseRecord {
    /// Who holds it (`[global.ha] holder`, by default host name and process id).
    pub holder: String,
    /// The fencing token: +1 at every change of holder.
    pub token: u64,
    /// Renewals by this holder since it took the lease: every renewal changes the record, so a
    /// follower sees the holder is alive.
    pub renewals: u64,
}

/// What the elector asks the caller to do after a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write `new` if and only if the stored record is still `expected` (`None`: absent).
    Write {
        /// The record to write.
        new: LeaseRecord,
        /// The record it replaces, as read.
        expected: Option<LeaseRecord>,
    },
    /// Another holder's lease is live: nothing to write.
    Wait,
}

/// Whether this daemon acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Holds the lease and may actuate until its right ends.
    Leader,
    /// Observes, decides and publishes; actuates nothing.
    Follower,
}

/// One daemon's view of the lease.
#[derive(Clone, Debug)]
pub struct Elector {
    me: String,
    lease_secs: f64,
    margin_secs: f64,
    /// The record last read and when that version was first seen.
    seen: Option<(LeaseRecord, f64)>,
    /// The token held and until when acting is allowed.
    right: Option<(u64, f64)>,
    /// Changes of role, for `/metrics`.
    transitions: u64,
    was_leader: bool,
}

impl Elector {
    /// An elector for holder `me`. `margin_secs` must be below `lease_secs` (the config
    /// checks `lease_secs ≥ tick_secs + margin`).
    pub fn new(me: impl Into<String>, lease_secs: f64, margin_secs: f64) -> Self {
        Elector {
            me: me.into(),
            lease_secs,
            margin_secs,
            seen: None,
            right: None,
            transitions: 0,
            was_leader: false,
        }
    }

    /// This daemon's holder name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Takes in the record read at `now` and says what to write.
    pub fn step(&mut self, now: f64, read: Option<LeaseRecord>) -> Step {
        let first_seen = match &self.seen {
            Some((r, at)) if Some(r) == read.as_ref() => *at,
            _ => now,
        };
        self.seen = read.clone().map(|r| (r, first_seen));
        match read {
            None => Step::Write {
                new: LeaseRecord {
                    holder: self.me.clone(),
                    token: 1,
                    renewals: 0,
                },
                expected: None,
            },
            // Ours, at the token we hold: renew.
            Some(r) if r.holder == self.me && self.right.is_some_and(|(t, _)| t == r.token) => {
                Step::Write {
                    new: LeaseRecord {
                        renewals: r.renewals + 1,
                        ..r.clone()
                    },
                    expected: Some(r),
                }
            }
            // Someone else's — or ours from before a restart, or a misconfigured twin's under
            // our name: taken only once it has stood still for a whole lease on our clock.
            Some(r) => {
                self.right = None;
                if now - first_seen >= self.lease_secs {
                    Step::Write {
                        new: LeaseRecord {
                            holder: self.me.clone(),
                            token: r.token + 1,
                            renewals: 0,
                        },
                        expected: Some(r),
                    }
                } else {
                    Step::Wait
                }
            }
        }
    }

    /// The outcome of a [`Step::Write`] sent at `sent_at`: `won` when the compare-and-swap
    /// succeeded. A write whose outcome is unknown (timeout, error) is not reported: the right
    /// then simply runs out.
    pub fn written(&mut self, new: &LeaseRecord, won: bool, sent_at: f64) {
        if won {
            self.right = Some((new.token, sent_at + self.lease_secs - self.margin_secs));
            self.seen = Some((new.clone(), sent_at));
        } else {
            self.right = None;
        }
    }

    /// Whether this daemon may actuate at `now`.
    pub fn is_leader(&self, now: f64) -> bool {
        self.right.is_some_and(|(_, until)| now < until)
    }

    /// The role at `now`, counting transitions.
    pub fn role(&mut self, now: f64) -> Role {
        let leader = self.is_leader(now);
        if leader != self.was_leader {
            self.transitions += 1;
            self.was_leader = leader;
        }
        if leader {
            Role::Leader
        } else {
            Role::Follower
        }
    }

    /// The fencing token held, while leading.
    pub fn token(&self, now: f64) -> Option<u64> {
        self.right.filter(|(_, until)| now < *until).map(|(t, _)| t)
    }

    /// Seconds since the record last changed (a renewal or a new holder), as seen here.
    pub fn record_age_secs(&self, now: f64) -> Option<f64> {
        self.seen.as_ref().map(|(_, at)| now - at)
    }

    /// The holder last seen.
    pub fn holder_seen(&self) -> Option<&str> {
        self.seen.as_ref().map(|(r, _)| r.holder.as_str())
    }

    /// Changes of role so far.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(holder: &str, token: u64, renewals: u64) -> LeaseRecord {
        LeaseRecord {
            holder: holder.into(),
            token,
            renewals,
        }
    }

    /// Applies a step to a shared record as a conditional store would.
    fn apply(store: &mut Option<LeaseRecord>, step: &Step) -> bool {
        match step {
            Step::Write { new, expected } if store == expected => {
                *store = Some(new.clone());
                true
            }
            _ => false,
        }
    }

    #[test]
    fn an_empty_lease_is_taken_renewed_and_held_against_a_waiting_follower() {
        let (mut a, mut b) = (Elector::new("a", 30.0, 12.0), Elector::new("b", 30.0, 12.0));
        let mut store = None;
        for tick in 0..20 {
            let now = tick as f64 * 15.0;
            for e in [&mut a, &mut b] {
                let s = e.step(now, store.clone());
                let won = apply(&mut store, &s);
                if let Step::Write { new, .. } = &s {
                    e.written(new, won, now);
                }
            }
            assert!(a.is_leader(now) && !b.is_leader(now), "tick {tick}");
        }
        assert_eq!(store, Some(rec("a", 1, 19)));
    }

    #[test]
    fn a_stalled_leader_loses_its_right_before_the_follower_takes_over() {
        let (mut a, mut b) = (Elector::new("a", 30.0, 12.0), Elector::new("b", 30.0, 12.0));
        let mut store = None;
        let s = a.step(0.0, None);
        let won = apply(&mut store, &s);
        a.written(&rec("a", 1, 0), won, 0.0);
        // a stops renewing at t = 0. b reads every 15 s from t = 1.
        let mut taken_at = None;
        for k in 0..6 {
            let now = 1.0 + k as f64 * 15.0;
            let s = b.step(now, store.clone());
            if apply(&mut store, &s) {
                b.written(&rec("b", 2, 0), true, now);
                taken_at = Some(now);
                break;
            }
        }
        let taken_at = taken_at.expect("b takes over");
        // Within a lease and one tick of the last renewal b saw (t = 1).
        assert!(taken_at <= 1.0 + 30.0 + 15.0, "{taken_at}");
        // a's right ended (18 s after its send) before b took over.
        assert!(!a.is_leader(18.0) && a.is_leader(17.9));
        assert!(taken_at > 18.0);
        assert_eq!(store, Some(rec("b", 2, 0)));
        // a comes back: its renewal fails (the token moved), it follows.
        let s = a.step(taken_at + 1.0, store.clone());
        assert_eq!(s, Step::Wait);
        assert!(!a.is_leader(taken_at + 1.0));
    }

    #[test]
    fn a_failed_compare_and_swap_ends_the_right_at_once() {
        let mut a = Elector::new("a", 30.0, 12.0);
        a.written(&rec("a", 3, 0), true, 0.0);
        assert!(a.is_leader(1.0));
        let s = a.step(15.0, Some(rec("a", 3, 0)));
        assert!(matches!(s, Step::Write { .. }));
        a.written(&rec("a", 3, 1), false, 15.0);
        assert!(!a.is_leader(15.0));
    }

    #[test]
    fn a_follower_never_counts_time_from_before_the_record_last_changed() {
        let mut b = Elector::new("b", 30.0, 12.0);
        // The leader renews every 15 s; b reads every 10 s: the record changes under it.
        for k in 0..30 {
            let now = k as f64 * 10.0;
            let renewals = (now / 15.0) as u64;
            assert_eq!(
                b.step(now, Some(rec("a", 1, renewals))),
                Step::Wait,
                "{now}"
            );
        }
        assert_eq!(b.role(300.0), Role::Follower);
        assert_eq!(b.transitions(), 0);
    }
}
