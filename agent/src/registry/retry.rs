//! When a failed etcd request is worth sending again, to which endpoint, and after how long.
//!
//! etcd-client's channel keeps sending to a member that died (DESIGN §6), so the registry keeps
//! one client per endpoint and moves to the next endpoint whenever a request fails in a way
//! another member could answer: the member is unreachable, has no leader, timed out, or the
//! connection broke. Errors that are etcd's answer to the request itself (a failed compare is not
//! an error at all; a missing lease, a compacted revision, a permission) are final.
//! Pure: the caller sleeps and counts.

use std::time::Duration;

use etcd_client::Error;
use tonic::Code;

/// Full passes over every endpoint before a request is given up.
const ROUNDS: usize = 5;
/// The pause after the first full pass; it doubles after each further pass.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two passes.
const MAX_PAUSE: Duration = Duration::from_millis(1600);

/// Whether another try (on another member) may succeed where this one failed.
pub fn is_retryable(error: &Error) -> bool {
    match error {
        Error::TransportError(_) | Error::IoError(_) => true,
        Error::GRpcStatus(status) => is_retryable_code(status.code()),
        _ => false,
    }
}

/// gRPC codes that say "not answered" rather than "answered no": `Unavailable` (connection
/// refused, no leader, leader changed, etcd's own request timeout), `DeadlineExceeded`,
/// `Cancelled` (tonic's per-request timeout), and `Unknown`/`Internal` (a broken HTTP/2
/// connection surfaces as these).
fn is_retryable_code(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
    )
}

/// How many tries a request gets with `endpoints` endpoints: [`ROUNDS`] passes over all of them.
pub fn attempts(endpoints: usize) -> usize {
    ROUNDS * endpoints.max(1)
}

/// The pause before try number `attempt` (0-based; 0 is the first try): none while a pass over
/// the endpoints goes on (the next member may well answer at once), then a doubling pause after
/// each full pass, capped at [`MAX_PAUSE`].
pub fn pause_before(attempt: usize, endpoints: usize) -> Duration {
    let endpoints = endpoints.max(1);
    if attempt == 0 || attempt % endpoints != 0 {
        return Duration::ZERO;
    }
    let passes = attempt / endpoints - 1;
    let factor = 1u32 << passes.min(16);
    FIRST_PAUSE.saturating_mul(factor).min(MAX_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_members_are_retried_and_answers_are_not() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::Unknown,
            Code::Internal,
        ] {
            assert!(is_retryable(&Error::GRpcStatus(tonic::Status::new(
                code, "x"
            ))));
        }
        for code in [
            Code::NotFound,
            Code::OutOfRange,
            Code::InvalidArgument,
            Code::PermissionDenied,
            Code::FailedPrecondition,
            Code::Unauthenticated,
        ] {
            assert!(!is_retryable(&Error::GRpcStatus(tonic::Status::new(
                code, "x"
            ))));
        }
        assert!(is_retryable(&Error::IoError(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_retryable(&Error::InvalidArgs("bad".into())));
    }

    #[test]
    fn each_endpoint_is_tried_at_once_then_passes_back_off() {
        assert_eq!(attempts(3), 15);
        assert_eq!(attempts(0), 5);
        let pauses: Vec<u128> = (0..15).map(|a| pause_before(a, 3).as_millis()).collect();
        assert_eq!(
            pauses,
            [0, 0, 0, 100, 0, 0, 200, 0, 0, 400, 0, 0, 800, 0, 0]
        );
        assert_eq!(pause_before(40, 1), MAX_PAUSE);
    }
}
