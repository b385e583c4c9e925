//! AWS SDK failures → [`ProviderError`], so the daemon knows whether to retry, back off harder
//! or call a human. The SDK has already retried (standard mode, throttling-aware) by the time a
//! failure reaches here.

use aws_sdk_autoscaling::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::provider::ProviderError;

/// Error codes AWS services use for "slow down".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "PriorDatabaseQueryStillRunning",
];

/// Error codes meaning "that thing does not exist".
const NOT_FOUND_CODES: &[&str] = &[
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ResourceNotFound",
    "ResourceNotFoundException",
    "InvalidInstanceID.NotFound",
];

/// Classifies one failed call. `call` names it for the message (`SetDesiredCapacity llama-spot`).
pub(crate) fn classify<E>(call: &str, err: SdkError<E>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = format!("{call}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ConstructionFailure(_) => ProviderError::Config(message),
        SdkError::ServiceError(s) => {
            classify_code(s.err().code(), Some(s.raw().status().as_u16()), message)
        }
        // Timeouts, connection failures, unreadable answers.
        _ => ProviderError::Transient(message),
    }
}

/// The decision table behind [`classify`], by error code and HTTP status.
pub(crate) fn classify_code(
    code: Option<&str>,
    status: Option<u16>,
    message: String,
) -> ProviderError {
    let code = code.unwrap_or_default();
    if THROTTLING_CODES.contains(&code) || status == Some(429) {
        ProviderError::Throttled(message)
    } else if status.is_some_and(|s| s >= 500)
        || code == "ServiceUnavailable"
        || code == "InternalFailure"
    {
        ProviderError::Transient(message)
    } else if NOT_FOUND_CODES.contains(&code) {
        ProviderError::NotFound(message)
    } else {
        // Access denied, validation errors, limits: retrying will not help; a human must act.
        ProviderError::Config(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_map_to_the_retry_policy() {
        type Kind = fn(String) -> ProviderError;
        let table: [(Option<&str>, Option<u16>, Kind); 9] = [
            (Some("Throttling"), Some(400), ProviderError::Throttled),
            (
                Some("RequestLimitExceeded"),
                Some(503),
                ProviderError::Throttled,
            ),
            (None, Some(429), ProviderError::Throttled),
            (Some("InternalFailure"), Some(500), ProviderError::Transient),
            (None, Some(502), ProviderError::Transient),
            (
                Some("AWS.SimpleQueueService.NonExistentQueue"),
                Some(400),
                ProviderError::NotFound,
            ),
            (Some("AccessDenied"), Some(403), ProviderError::Config),
            (Some("ValidationError"), Some(400), ProviderError::Config),
            (None, None, ProviderError::Config),
        ];
        for (code, status, want) in table {
            assert_eq!(
                classify_code(code, status, "m".into()),
                want("m".into()),
                "{code:?} {status:?}"
            );
        }
    }
}
