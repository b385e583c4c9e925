//! How an Auto Scaling Group counts its capacity, against the policy's units.
//!
//! AWS counts a group's `DesiredCapacity`, `MinSize` and `MaxSize` in the weights of its mixed
//! instances policy's overrides (`WeightedCapacity`) when it has them, and in instances when it
//! has none ("Configure instance weighting for Amazon EC2 Auto Scaling", EC2 Auto Scaling User
//! Guide). A group with a warm pool cannot have a mixed instances policy at all, so it always
//! counts instances. The policy counts units everywhere (`weight_units` per instance type), so a
//! pool of 4-unit instances behind a group that counts instances must be asked for a quarter
//! as many: 8 units are 2 instances, and a group at 2 instances holds 8 units.
//!
//! This is the one place that converts; the provider reads and writes through it and `check
//! --aws` compares the group's bounds through it.

use crate::config::Pool;
use crate::model::Units;

/// What one unit of a group's capacity figures is, in the policy's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupUnits {
    /// The group's overrides carry `WeightedCapacity`: its figures are units already.
    Weighted,
    /// The group counts instances, each `weight_units` of the policy's units.
    Instances {
        /// The one weight the pool's instance types share.
        weight_units: Units,
    },
}

impl GroupUnits {
    /// How `pool`'s group counts, given whether its overrides carry weights. A group that
    /// counts instances needs the pool's types to share one weight: with 1-unit and 4-unit
    /// types behind it, a count of instances is no number of units.
    pub fn of(pool: &Pool, group_weighted: bool) -> Result<GroupUnits, String> {
        if group_weighted {
            return Ok(GroupUnits::Weighted);
        }
        let mut weights: Vec<Units> = pool.instance_types.iter().map(|t| t.weight_units).collect();
        weights.sort_unstable();
        weights.dedup();
        match weights.as_slice() {
            [] => Ok(GroupUnits::Instances { weight_units: 1 }),
            [w] => Ok(GroupUnits::Instances {
                weight_units: (*w).max(1),
            }),
            _ => Err(format!(
                "group {} counts instances (its overrides carry no WeightedCapacity), but pool \"{}\" gives its instance types the weights {weights:?}: give the group's overrides WeightedCapacity equal to the policy's weight_units, or give the pool's types one weight",
                pool.asg_name, pool.name
            )),
        }
    }

    /// A figure of the group's (desired, min, max, or instances) in units.
    pub fn to_units(self, group_figure: i32) -> Units {
        let n = group_figure.max(0) as Units;
        match self {
            GroupUnits::Weighted => n,
            GroupUnits::Instances { weight_units } => n.saturating_mul(weight_units),
        }
    }

    /// The group's figure that holds `units`: whole instances, rounded up (as AWS itself
    /// rounds a weighted group's desired capacity up to whole instances).
    pub fn to_group(self, units: Units) -> i32 {
        let n = match self {
            GroupUnits::Weighted => units,
            GroupUnits::Instances { weight_units } => units.div_ceil(weight_units.max(1)),
        };
        i32::try_from(n).unwrap_or(i32::MAX)
    }

    /// The capacity weight of one of the group's instances: in a group that counts
    /// instances, the pool's weight whatever the instance says; in a weighted group, the
    /// instance's `WeightedCapacity`, else its type's weight in the group's overrides, else
    /// the policy's weight for its type, else 1.
    pub fn instance_weight(
        self,
        pool: &Pool,
        instance_type: Option<&str>,
        instance_weighted: Option<&str>,
        override_weight: Option<Units>,
    ) -> Units {
        match self {
            GroupUnits::Instances { weight_units } => weight_units,
            GroupUnits::Weighted => instance_weighted
                .and_then(|w| w.parse::<Units>().ok())
                .or(override_weight)
                .or_else(|| {
                    pool.instance_types
                        .iter()
                        .find(|t| Some(t.instance_type.as_str()) == instance_type)
                        .map(|t| t.weight_units)
                })
                .unwrap_or(1)
                .max(1),
        }
    }
}

/// Whether a group's mixed instances policy gives any override a weight, and that weight
/// for `instance_type` if it lists it.
pub fn group_weights(
    group: &aws_sdk_autoscaling::types::AutoScalingGroup,
    instance_type: Option<&str>,
) -> (bool, Option<Units>) {
    let overrides = group
        .mixed_instances_policy()
        .and_then(|m| m.launch_template())
        .map(|lt| lt.overrides())
        .unwrap_or_default();
    let weighted = overrides.iter().any(|o| o.weighted_capacity().is_some());
    let weight = overrides
        .iter()
        .find(|o| o.instance_type().is_some() && o.instance_type() == instance_type)
        .and_then(|o| o.weighted_capacity())
        .and_then(|w| w.parse::<Units>().ok());
    (weighted, weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InstanceTypeWeight;
    use crate::model::Market;

    fn pool(weights: &[(&str, Units)]) -> Pool {
        Pool {
            name: "p".into(),
            asg_name: "asg-p".into(),
            market: Market::OnDemand,
            instance_types: weights
                .iter()
                .map(|(t, w)| InstanceTypeWeight {
                    instance_type: t.to_string(),
                    weight_units: *w,
                })
                .collect(),
            warm_pool: None,
            unit_usd_per_hour: None,
        }
    }

    #[test]
    fn a_group_is_read_and_set_in_its_own_count() {
        // (pool's weights, group weighted, units asked, group figure sent, units read back)
        type Row = (&'static [(&'static str, Units)], bool, Units, i32, Units);
        let rows: &[Row] = &[
            (&[("g6.xlarge", 1)], false, 7, 7, 7),
            (&[("g6.12xlarge", 4)], false, 8, 2, 8),
            // Rounded up to a whole instance, which holds more than was asked.
            (&[("g6.12xlarge", 4)], false, 5, 2, 8),
            (&[("g6.12xlarge", 4)], false, 0, 0, 0),
            (&[("g6.12xlarge", 4), ("g6e.12xlarge", 4)], false, 9, 3, 12),
            // A weighted group counts units: passed through whatever the weights.
            (&[("g6.12xlarge", 4), ("g6.xlarge", 1)], true, 5, 5, 5),
        ];
        for &(weights, weighted, units, sent, read) in rows {
            let g = GroupUnits::of(&pool(weights), weighted).unwrap();
            assert_eq!(
                g.to_group(units),
                sent,
                "{weights:?} weighted={weighted} {units}"
            );
            assert_eq!(
                g.to_units(sent),
                read,
                "{weights:?} weighted={weighted} {sent}"
            );
        }
    }

    #[test]
    fn a_group_counting_instances_needs_one_weight() {
        let e = GroupUnits::of(&pool(&[("g6.12xlarge", 4), ("g6.xlarge", 1)]), false).unwrap_err();
        assert!(e.contains("asg-p") && e.contains("WeightedCapacity"), "{e}");
    }

    #[test]
    fn an_instance_weighs_what_its_group_counts() {
        let p = pool(&[("g6.12xlarge", 4)]);
        let instances = GroupUnits::of(&p, false).unwrap();
        // A group counting instances: the pool's weight, whatever the instance reports.
        assert_eq!(
            instances.instance_weight(&p, Some("g6.12xlarge"), Some("1"), None),
            4
        );
        assert_eq!(instances.instance_weight(&p, Some("other"), None, None), 4);
        let weighted = GroupUnits::Weighted;
        assert_eq!(
            weighted.instance_weight(&p, Some("g6.12xlarge"), Some("2"), Some(3)),
            2
        );
        assert_eq!(
            weighted.instance_weight(&p, Some("g6.12xlarge"), None, Some(3)),
            3
        );
        assert_eq!(
            weighted.instance_weight(&p, Some("g6.12xlarge"), None, None),
            4
        );
        assert_eq!(
            weighted.instance_weight(&p, Some("g5.xlarge"), None, None),
            1
        );
    }
}
