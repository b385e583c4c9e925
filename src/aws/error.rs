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

/// The innermost cause of an error, as text: what went wrong at the bottom (a refused
/// connection, a bad header), without the wrappers' Debug dumps.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// One line for an operator: the call, AWS's error code, HTTP status and message for a service
/// error; what kind of failure and its root cause otherwise. (The SDK's own rendering,
/// `DisplayErrorContext`, runs to several hundred characters of nested Debug output.)
fn one_line<E>(call: &str, err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = match err {
        SdkError::ServiceError(s) => {
            let e = s.err();
            let code = e.code().unwrap_or("unknown error");
            let status = s.raw().status().as_u16();
            match e.message().filter(|m| !m.is_empty()) {
                Some(m) => format!("{code} (HTTP {status}): {m}"),
                None => format!("{code} (HTTP {status})"),
            }
        }
        SdkError::TimeoutError(_) => "timed out".to_string(),
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_timeout() {
                "timed out connecting"
            } else if d.is_io() {
                "could not reach the endpoint"
            } else {
                "could not send the request"
            };
            match std::error::Error::source(err) {
                Some(cause) => format!("{kind}: {}", root_cause(cause)),
                None => kind.to_string(),
            }
        }
        SdkError::ResponseError(_) => match std::error::Error::source(err) {
            Some(cause) => format!("unreadable answer: {}", root_cause(cause)),
            None => "unreadable answer".to_string(),
        },
        SdkError::ConstructionFailure(_) => match std::error::Error::source(err) {
            Some(cause) => format!("the request could not be built: {}", root_cause(cause)),
            None => "the request could not be built".to_string(),
        },
        _ => DisplayErrorContext(err).to_string(),
    };
    // Whatever the layers put in, the log line stays one line.
    format!("{call}: {}", text.replace(['\n', '\r'], " "))
}

/// Classifies one failed call. `call` names it for the message (`SetDesiredCapacity llama-spot`).
pub(crate) fn classify<E>(call: &str, err: SdkError<E>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = one_line(call, &err);
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
    fn failures_that_are_not_the_services_read_as_one_line() {
        type E = aws_sdk_autoscaling::operation::set_desired_capacity::SetDesiredCapacityError;
        let io = std::io::Error::other("bad header\nvalue");
        let built: SdkError<E> = SdkError::construction_failure(io);
        assert_eq!(
            classify("SetDesiredCapacity g", built),
            ProviderError::Config(
                "SetDesiredCapacity g: the request could not be built: bad header value".into()
            )
        );
        let late: SdkError<E> =
            SdkError::timeout_error(std::io::Error::new(std::io::ErrorKind::TimedOut, "t"));
        assert_eq!(
            classify("DescribeAutoScalingGroups", late),
            ProviderError::Transient("DescribeAutoScalingGroups: timed out".into())
        );
    }

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
