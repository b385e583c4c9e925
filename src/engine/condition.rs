//! The explanation of a decision, shaped like `kubectl describe hpa`: a list of conditions,
//! each a type, a status, a reason and a sentence. Types and reasons are enums, so code that
//! reacts to a reason (the daemon's counters, the simulator's tallies, tests) cannot drift from
//! the code that emits it; they serialize as the CamelCase names HPA uses, so the decision JSON
//! reads as before.
//!
//! `docs/snapshot.md` lists every type and reason; a test keeps the list and [`Reason::ALL`]
//! equal.

use serde::{Deserialize, Serialize};

/// Defines a fieldless enum that serializes as its variant names, with `ALL` and `as_str`.
macro_rules! names {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident,)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            /// The name as it appears in JSON, logs and `/metrics`.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => stringify!($v),)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// What a condition is about (HPA's condition types, plus ours).
    pub enum ConditionType {
        /// Whether the stabilization windows let the fleet scale (HPA).
        AbleToScale,
        /// Whether the metrics could be used (HPA).
        ScalingActive,
        /// Whether a bound or a rate limit held the result (HPA).
        ScalingLimited,
        /// Knative's panic mode.
        Panic,
        /// A schedule window moves the bounds.
        Schedule,
        /// The engine has no history yet.
        FreshStart,
        /// The forecast floor.
        Predictive,
        /// The spend caps.
        Budget,
        /// On-demand covers spot capacity that is missing.
        MarketFallback,
        /// Spare spot units for interruptions.
        SpotHeadroom,
        /// A pool target was moved into its Auto Scaling Group's own MinSize/MaxSize.
        GroupBounds,
        /// The fleet controller refused to act on the plan.
        Refused,
        /// The capacity model's demand is rising steadily: sized one cold start ahead.
        Ramp,
    }
}

names! {
    /// Why: HPA's reasons where HPA has one, ours otherwise.
    pub enum Reason {
        /// A metric produced a recommendation.
        ValidMetricFound,
        /// Every metric abstained.
        NoMetricOpinion,
        /// A metric had no usable sample.
        InvalidMetrics,
        /// Capacity above the ceiling.
        TooManyReplicas,
        /// Capacity below the floor.
        TooFewReplicas,
        /// The scale-up window held the recommendation down.
        ScaleUpStabilized,
        /// The scale-down window held the recommendation up.
        ScaleDownStabilized,
        /// No window held the recommendation.
        ReadyForNewScale,
        /// No rate policy or bound held the result.
        DesiredWithinRange,
        /// The scale-up rate policies capped the result.
        ScaleUpLimit,
        /// The scale-down rate policies floored the result.
        ScaleDownLimit,
        /// Demand is past the panic threshold now.
        DemandOverThreshold,
        /// Demand was past the threshold within the stable window.
        PanicWindow,
        /// A schedule window is open.
        ScheduleActive,
        /// First decision of this engine.
        NoHistory,
        /// No forecast covers the lead.
        NoForecast,
        /// The floor is reported, not applied.
        ForecastOnly,
        /// The forecast floor is below the floor already in force.
        ForecastBelowFloor,
        /// No rise ahead: the forecast at now + lead is within the tolerance of its lowest over
        /// the last lead (flat, falling, or a rise already a lead old): no floor, the reactive
        /// stages follow the demand.
        NoRiseAhead,
        /// The forecast floor raised the bounds.
        ForecastFloor,
        /// No request has reached the servers (an outage upstream, by its look): the forecast
        /// floor holds its capacity through the silence (`Predictive`), or with no forecast
        /// floor the capacity running is held as on missing data (`ScalingActive` false), for
        /// at most `silence_hold_mins`.
        SilenceHeld,
        /// The budget capped a scale-up.
        BudgetLimited,
        /// Running capacity alone is over budget.
        OverBudget,
        /// Spot launches failed: on-demand covers spot's shortfall.
        SpotLaunchesFailing,
        /// Spot instances were warned of an interruption: on-demand covers them.
        SpotInterrupted,
        /// A confirmed burst lands on the on-demand warm pool while spot boots.
        BurstOnOnDemand,
        /// The cover stays until spot has its units in service.
        SpotNotDelivered,
        /// At max_units, part of the cover did not fit without shrinking healthy spot.
        CoverDoesNotFit,
        /// Spare spot units sized from the interruptions seen.
        InterruptionRisk,
        /// A pool target was raised to its group's MinSize.
        ClampedToGroupMin,
        /// A pool target was lowered to its group's MaxSize.
        ClampedToGroupMax,
        /// The pool targets could not be placed inside the fleet's and the groups' bounds.
        OutsideBounds,
        /// Demand rising steadily: the recommendation is where it will be one cold start on.
        RampAhead,
        /// Demand rising, not steadily enough to size ahead: no capacity is released.
        WorkRising,
    }
}

/// One line of the explanation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// What it is about.
    #[serde(rename = "type")]
    pub kind: ConditionType,
    /// Whether the condition holds.
    pub status: bool,
    /// Why.
    pub reason: Reason,
    /// A sentence for humans.
    pub message: String,
}

impl Condition {
    /// A condition that holds.
    pub fn holds(kind: ConditionType, reason: Reason, message: impl Into<String>) -> Self {
        Condition {
            kind,
            status: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold (HPA reports those too, e.g. `ScalingLimited` false).
    pub fn absent(kind: ConditionType, reason: Reason, message: impl Into<String>) -> Self {
        Condition {
            kind,
            status: false,
            reason,
            message: message.into(),
        }
    }

    /// Whether this condition is worth a line in the summary and a count in `/metrics`: it
    /// holds and says something happened (not HPA's "all is normal" reasons), or it is a
    /// `ScalingActive` that does not hold or names invalid metrics (data missing).
    pub fn is_notable(&self) -> bool {
        match (self.kind, self.status) {
            (ConditionType::ScalingActive, status) => {
                !status || self.reason == Reason::InvalidMetrics
            }
            (_, true) => !matches!(
                self.reason,
                Reason::ReadyForNewScale | Reason::DesiredWithinRange
            ),
            (_, false) => false,
        }
    }
}
