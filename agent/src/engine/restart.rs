//! docker's restart policies as a pure state machine.
//!
//! [`decide`] is docker's `RestartManager.ShouldRestart` (moby `restartmanager/restartmanager.go`)
//! without its clock: given the policy, how the container ended, how often it was restarted and
//! whether a user stopped it, should it start again? [`Backoff`] is the delay docker waits before
//! each restart. A `stop` cancels the restart manager of a running container, so `decide` is not
//! consulted then; `manually_stopped` matters when the engine comes back (docker's daemon restore):
//! `always` containers start again, `unless-stopped` ones stay stopped.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a `--restart` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestartError {
    #[error(
        "invalid --restart {0:?}: expected no, always, unless-stopped, on-failure or on-failure:N"
    )]
    Unknown(String),
    #[error("invalid --restart {0:?}: the maximum retry count is a number")]
    Count(String),
    #[error("invalid --restart {0:?}: only on-failure takes a maximum retry count")]
    CountNotAllowed(String),
}

/// docker's `--restart` policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    /// Restart after a non-zero exit, at most `max_retries` times; `None` (docker's
    /// `on-failure` or `on-failure:0`) has no limit.
    OnFailure {
        max_retries: Option<u32>,
    },
    UnlessStopped,
}

impl FromStr for RestartPolicy {
    type Err = RestartError;

    fn from_str(text: &str) -> Result<Self, RestartError> {
        let (name, count) = match text.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (text, None),
        };
        let policy = match name {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => {
                let max_retries = count
                    .map(|count| count.parse::<u32>())
                    .transpose()
                    .map_err(|_| RestartError::Count(text.to_owned()))?
                    .filter(|&n| n > 0);
                return Ok(RestartPolicy::OnFailure { max_retries });
            }
            _ => return Err(RestartError::Unknown(text.to_owned())),
        };
        match count {
            Some(_) => Err(RestartError::CountNotAllowed(text.to_owned())),
            None => Ok(policy),
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnFailure { max_retries: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure {
                max_retries: Some(n),
            } => write!(f, "on-failure:{n}"),
        }
    }
}

impl TryFrom<String> for RestartPolicy {
    type Error = RestartError;

    fn try_from(text: String) -> Result<Self, RestartError> {
        text.parse()
    }
}

impl From<RestartPolicy> for String {
    fn from(policy: RestartPolicy) -> String {
        policy.to_string()
    }
}

/// How a container's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// It exited with this status.
    Exited(u8),
    /// A signal killed it (the OOM killer's SIGKILL included).
    Signaled(i32),
}

impl ExitCause {
    /// The exit code docker reports: the status, or 128 + the signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            ExitCause::Exited(status) => i32::from(status),
            ExitCause::Signaled(signal) => 128 + signal,
        }
    }
}

/// What to do after the container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Restart,
    Stay,
}

/// docker's rule: `always` restarts; `unless-stopped` restarts unless a user stopped it;
/// `on-failure[:N]` restarts after a non-zero exit while fewer than N restarts happened.
pub fn decide(
    policy: RestartPolicy,
    exit: ExitCause,
    restart_count: u32,
    manually_stopped: bool,
) -> Decision {
    let restart = match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always => true,
        RestartPolicy::UnlessStopped => !manually_stopped,
        RestartPolicy::OnFailure { max_retries } => {
            max_retries.is_none_or(|max| restart_count < max) && exit.exit_code() != 0
        }
    };
    if restart {
        Decision::Restart
    } else {
        Decision::Stay
    }
}

/// docker's first delay before a restart (`defaultTimeout`).
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// docker doubles the delay after each quick exit (`backoffMultiplier`).
const MULTIPLIER: u32 = 2;
/// docker never waits longer than this (`maxRestartTimeout`).
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A container that ran at least this long starts over at [`FIRST_DELAY`] (docker: "if the
/// container ran for more than 10s, regardless of status and policy reset the timeout").
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// The growing delay between restarts of one container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    delay: Option<Duration>,
}

impl Backoff {
    /// The delay before the next restart of a container that ran for `ran_for`.
    pub fn next_delay(&mut self, ran_for: Duration) -> Duration {
        let delay = match self.delay {
            Some(delay) if ran_for < RESET_AFTER => (delay * MULTIPLIER).min(MAX_DELAY),
            _ => FIRST_DELAY,
        };
        self.delay = Some(delay);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_display_as_docker_spells_them() {
        let table = [
            ("no", RestartPolicy::No, "no"),
            ("always", RestartPolicy::Always, "always"),
            (
                "unless-stopped",
                RestartPolicy::UnlessStopped,
                "unless-stopped",
            ),
            (
                "on-failure",
                RestartPolicy::OnFailure { max_retries: None },
                "on-failure",
            ),
            (
                "on-failure:0",
                RestartPolicy::OnFailure { max_retries: None },
                "on-failure",
            ),
            (
                "on-failure:10",
                RestartPolicy::OnFailure {
                    max_retries: Some(10),
                },
                "on-failure:10",
            ),
        ];
        for (text, policy, shown) in table {
            assert_eq!(text.parse::<RestartPolicy>(), Ok(policy), "{text}");
            assert_eq!(policy.to_string(), shown);
        }
    }

    #[test]
    fn bad_policies_say_what_is_expected() {
        let table = [
            ("sometimes", "invalid --restart \"sometimes\": expected no, always, unless-stopped, on-failure or on-failure:N"),
            ("on-failure:x", "invalid --restart \"on-failure:x\": the maximum retry count is a number"),
            ("on-failure:-1", "invalid --restart \"on-failure:-1\": the maximum retry count is a number"),
            ("always:3", "invalid --restart \"always:3\": only on-failure takes a maximum retry count"),
        ];
        for (text, message) in table {
            assert_eq!(
                text.parse::<RestartPolicy>().unwrap_err().to_string(),
                message
            );
        }
    }

    #[test]
    fn policies_round_trip_through_serde_as_strings() {
        let policy = RestartPolicy::OnFailure {
            max_retries: Some(3),
        };
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(json, "\"on-failure:3\"");
        assert_eq!(
            serde_json::from_str::<RestartPolicy>(&json).unwrap(),
            policy
        );
    }

    #[test]
    fn decisions_follow_docker() {
        use Decision::{Restart, Stay};
        use ExitCause::{Exited, Signaled};
        let on_failure_3 = RestartPolicy::OnFailure {
            max_retries: Some(3),
        };
        let unlimited = RestartPolicy::OnFailure { max_retries: None };
        // (policy, exit, restart count, manually stopped, decision)
        let table = [
            (RestartPolicy::No, Exited(1), 0, false, Stay),
            (RestartPolicy::Always, Exited(0), 0, false, Restart),
            (RestartPolicy::Always, Exited(0), 1000, true, Restart),
            (RestartPolicy::UnlessStopped, Exited(0), 5, false, Restart),
            (RestartPolicy::UnlessStopped, Exited(0), 5, true, Stay),
            (on_failure_3, Exited(0), 0, false, Stay),
            (on_failure_3, Exited(1), 2, false, Restart),
            (on_failure_3, Exited(1), 3, false, Stay),
            (on_failure_3, Signaled(9), 0, false, Restart),
            (unlimited, Exited(2), 1_000_000, false, Restart),
            (unlimited, Exited(0), 0, false, Stay),
        ];
        for (policy, exit, count, stopped, decision) in table {
            assert_eq!(
                decide(policy, exit, count, stopped),
                decision,
                "{policy} {exit:?} count {count} stopped {stopped}"
            );
        }
    }

    #[test]
    fn on_failure_10_of_a_failing_command_restarts_ten_times() {
        let policy: RestartPolicy = "on-failure:10".parse().unwrap();
        let mut restarts = 0;
        while decide(policy, ExitCause::Exited(1), restarts, false) == Decision::Restart {
            restarts += 1;
            assert!(restarts <= 10, "restarted more than 10 times");
        }
        assert_eq!(restarts, 10);
        assert_eq!(ExitCause::Exited(1).exit_code(), 1);
        assert_eq!(ExitCause::Signaled(9).exit_code(), 137);
    }

    #[test]
    fn backoff_doubles_from_100ms_caps_at_a_minute_and_resets_after_10s() {
        let quick = Duration::from_millis(5);
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..13)
            .map(|_| backoff.next_delay(quick).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000, 60000]
        );
        assert_eq!(backoff.next_delay(RESET_AFTER), FIRST_DELAY);
        assert_eq!(backoff.next_delay(quick), Duration::from_millis(200));
        assert_eq!(
            Backoff::default().next_delay(Duration::from_secs(3600)),
            FIRST_DELAY
        );
    }
}
