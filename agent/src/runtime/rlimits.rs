//! The process's resource limits (`process.rlimits`), clamped to the current hard limits.
//!
//! Raising a hard limit needs CAP_SYS_RESOURCE beyond what the host allows; docker's default
//! `nofile` of 1048576 is above this kind of host's hard limit (about 20000), where runc and
//! crun fail with "setrlimit: operation not permitted". A limit is clamped instead: the hard
//! limit to the current one, the soft limit to the result.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use super::{Step, StepError};

/// The (soft, hard) limit to set for a wanted one, given the current hard limit.
pub fn clamp(soft: u64, hard: u64, current_hard: u64) -> (u64, u64) {
    let hard = hard.min(current_hard);
    (soft.min(hard), hard)
}

/// Sets each of `rlimits`, clamped.
pub fn apply(rlimits: &[PosixRlimit]) -> Result<(), StepError> {
    for rlimit in rlimits {
        let typ = rlimit.typ();
        let resource = resource(typ);
        let describe = || format!("set {typ:?}");
        let (_, current_hard) = getrlimit(resource).step(describe)?;
        let (soft, hard) = clamp(rlimit.soft(), rlimit.hard(), current_hard);
        setrlimit(resource, soft, hard).step(describe)?;
    }
    Ok(())
}

fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_above_the_hard_limit_is_clamped_to_it() {
        assert_eq!(clamp(1_048_576, 1_048_576, 20_000), (20_000, 20_000));
    }

    #[test]
    fn a_limit_below_the_hard_limit_is_kept() {
        assert_eq!(clamp(1024, 4096, 20_000), (1024, 4096));
    }
}
