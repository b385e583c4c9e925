//! The HA pair's leader lease on DynamoDB: one item per pair (`lease` = `[global.ha]
//! lease_name`), read with a strongly consistent `GetItem` and written only by a conditional
//! `PutItem` that names the record it replaces — DynamoDB's compare-and-swap. The election
//! itself is [`crate::lease::Elector`]; this is its storage.
//!
//! Item: `lease` (S, partition key), `holder` (S), `token` (N), `renewals` (N), and
//! `written_at` (S, RFC 3339 from the writer's clock — for humans reading the table; never
//! compared).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::config::HaSettings;
use crate::lease::LeaseRecord;
use crate::provider::{ProviderError, ProviderStats};

use super::{sdk_call, timed};

/// Reads the lease.
pub(super) async fn read(
    client: &aws_sdk_dynamodb::Client,
    stats: &mut ProviderStats,
    ha: &HaSettings,
) -> Result<Option<LeaseRecord>, ProviderError> {
    let out = sdk_call(
        stats,
        "GetItem",
        &ha.table,
        client
            .get_item()
            .table_name(&ha.table)
            .key("lease", AttributeValue::S(ha.lease_name.clone()))
            .consistent_read(true)
            .send(),
    )
    .await?;
    out.item().map(|item| record(ha, item)).transpose()
}

/// Writes `new` if the stored lease is still `expected`; `Ok(false)` when it is not.
pub(super) async fn write(
    client: &aws_sdk_dynamodb::Client,
    stats: &mut ProviderStats,
    ha: &HaSettings,
    new: &LeaseRecord,
    expected: Option<&LeaseRecord>,
) -> Result<bool, ProviderError> {
    let put = client
        .put_item()
        .table_name(&ha.table)
        .item("lease", AttributeValue::S(ha.lease_name.clone()))
        .item("holder", AttributeValue::S(new.holder.clone()))
        .item("token", AttributeValue::N(new.token.to_string()))
        .item("renewals", AttributeValue::N(new.renewals.to_string()))
        .item(
            "written_at",
            AttributeValue::S(chrono::Utc::now().to_rfc3339()),
        );
    let put = match expected {
        None => put
            .condition_expression("attribute_not_exists(#l)")
            .expression_attribute_names("#l", "lease"),
        Some(old) => put
            .condition_expression("#h = :h AND #t = :t AND #r = :r")
            .expression_attribute_names("#h", "holder")
            .expression_attribute_names("#t", "token")
            .expression_attribute_names("#r", "renewals")
            .expression_attribute_values(":h", AttributeValue::S(old.holder.clone()))
            .expression_attribute_values(":t", AttributeValue::N(old.token.to_string()))
            .expression_attribute_values(":r", AttributeValue::N(old.renewals.to_string())),
    };
    match timed(stats, "PutItem", put.send()).await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(super::error::classify(&format!("PutItem {}", ha.table), e)),
    }
}

fn record(
    ha: &HaSettings,
    item: &HashMap<String, AttributeValue>,
) -> Result<LeaseRecord, ProviderError> {
    let bad = |what: &str| {
        ProviderError::Config(format!(
            "lease item {} in table {}: {what}; delete the item to start a fresh election",
            ha.lease_name, ha.table
        ))
    };
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Ok(LeaseRecord {
        holder: s("holder").ok_or_else(|| bad("no holder"))?,
        token: n("token").ok_or_else(|| bad("no numeric token"))?,
        renewals: n("renewals").ok_or_else(|| bad("no numeric renewals"))?,
    })
}
