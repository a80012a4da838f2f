//! The process's capability sets (`process.capabilities`): the bounding set is reduced while
//! still root, the others are set after the user change (which keeps the permitted set thanks
//! to `PR_SET_KEEPCAPS`), ambient capabilities raised one by one last.

use caps::{CapSet, CapsHashSet};
use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use super::StepError;

/// Converts an OCI capability set; `None` is the empty set.
pub fn to_caps(set: Option<&Capabilities>) -> Result<CapsHashSet, StepError> {
    set.into_iter()
        .flatten()
        .map(|cap| {
            format!("CAP_{cap}").parse().map_err(|_| StepError {
                step: format!("capability CAP_{cap}"),
                errno: Errno::EINVAL,
            })
        })
        .collect()
}

/// A `caps` call that failed, with the errno its system call left.
fn failed(step: String) -> impl FnOnce(caps::errors::CapsError) -> StepError {
    move |_| StepError {
        step,
        errno: Errno::last(),
    }
}

/// Drops from the bounding set every capability the kernel knows and `capabilities` does not
/// bound. Needs CAP_SETPCAP: done before the user change.
pub fn limit_bounding(capabilities: &LinuxCapabilities) -> Result<(), StepError> {
    let bounding = to_caps(capabilities.bounding().as_ref())?;
    for cap in caps::runtime::thread_all_supported() {
        if !bounding.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(failed(format!("drop {cap} from the bounding set")))?;
        }
    }
    Ok(())
}

/// Sets the inheritable, effective and permitted sets, then raises the ambient capabilities.
pub fn apply(capabilities: &LinuxCapabilities) -> Result<(), StepError> {
    // Inheritable first, while the permitted set is still full; effective before permitted, so
    // that the effective set never exceeds the permitted one.
    let sets = [
        (
            CapSet::Inheritable,
            capabilities.inheritable(),
            "inheritable",
        ),
        (CapSet::Effective, capabilities.effective(), "effective"),
        (CapSet::Permitted, capabilities.permitted(), "permitted"),
    ];
    for (set, wanted, name) in sets {
        caps::set(None, set, &to_caps(wanted.as_ref())?)
            .map_err(failed(format!("set the {name} capabilities")))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(failed("clear the ambient capabilities".into()))?;
    for cap in to_caps(capabilities.ambient().as_ref())? {
        caps::raise(None, CapSet::Ambient, cap)
            .map_err(failed(format!("raise ambient capability {cap}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_defaults_convert_to_the_same_capabilities() {
        let set = crate::engine::spec::DEFAULT_CAPABILITIES
            .into_iter()
            .collect::<Capabilities>();
        let converted = to_caps(Some(&set)).unwrap();
        let mask = converted
            .iter()
            .fold(0u64, |mask, cap| mask | cap.bitmask());
        assert_eq!(mask, 0x0000_0000_a804_25fb);
    }
}
