//! Cost decisions that do not need the cloud: what each pool's unit costs ([`prices`]) and
//! right-sizing instance types for a demand ([`rightsize`]). (Prices come from the replica
//! profiles — built in, or `[[profiles]]` in the policy file — unless a pool sets its own.)

pub mod prices;
pub mod rightsize;
