//! systemd's D-Bus object paths of units: `/org/freedesktop/systemd1/unit/<label>`, where the
//! label is the unit name escaped the way sd-bus escapes path labels (`bus_label_escape`): every
//! byte that is not an ASCII letter, nor a digit after the first position, becomes `_` and two
//! lower-case hex digits (`web.service` → `web_2eservice`, `app@1.service` → `app_401_2eservice`);
//! the empty name is `_`. Pure: the event stream uses [`unit_name`] to tell which unit changed.

/// The path under which systemd publishes its unit objects.
pub const UNIT_PATH_PREFIX: &str = "/org/freedesktop/systemd1/unit";

/// The object path of unit `name`.
///
/// ```
/// use agent::systemd::unit_path;
/// assert_eq!(unit_path("web.service"), "/org/freedesktop/systemd1/unit/web_2eservice");
/// ```
pub fn unit_path(name: &str) -> String {
    format!("{UNIT_PATH_PREFIX}/{}", escape_label(name))
}

/// The unit name whose object path is `path`, or `None` when `path` is not a unit's path (not
/// directly under [`UNIT_PATH_PREFIX`], or not decoding to UTF-8).
///
/// ```
/// use agent::systemd::unit_name;
/// let name = unit_name("/org/freedesktop/systemd1/unit/app_401_2eservice");
/// assert_eq!(name.as_deref(), Some("app@1.service"));
/// ```
pub fn unit_name(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PATH_PREFIX)?.strip_prefix('/')?;
    if label.is_empty() || label.contains('/') {
        return None;
    }
    unescape_label(label)
}

fn escape_label(name: &str) -> String {
    if name.is_empty() {
        return "_".to_owned();
    }
    let mut label = String::with_capacity(name.len());
    for (i, byte) in name.bytes().enumerate() {
        if byte.is_ascii_alphabetic() || (i > 0 && byte.is_ascii_digit()) {
            label.push(char::from(byte));
        } else {
            label.push_str(&format!("_{byte:02x}"));
        }
    }
    label
}

/// sd-bus's `bus_label_unescape`: `_` alone is the empty string, `_` and two hex digits a byte,
/// anything else is taken as it is.
fn unescape_label(label: &str) -> Option<String> {
    if label == "_" {
        return Some(String::new());
    }
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'_')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit names and the labels systemd publishes them under (`LoadUnit` in systemd 252 answers
    /// the same for those agent/tests/systemd.rs asks about).
    const KNOWN: &[(&str, &str)] = &[
        ("web.service", "web_2eservice"),
        ("app@1.service", "app_401_2eservice"),
        ("dbus.service", "dbus_2eservice"),
        ("-.mount", "_2d_2emount"),
        ("sys-kernel-debug.mount", "sys_2dkernel_2ddebug_2emount"),
        ("1st.service", "_31st_2eservice"),
        ("a1.service", "a1_2eservice"),
        ("under_score.service", "under_5fscore_2eservice"),
        (
            "systemd-fsck@dev-disk-by\\x2dlabel-root.service",
            "systemd_2dfsck_40dev_2ddisk_2dby_5cx2dlabel_2droot_2eservice",
        ),
        ("", "_"),
    ];

    #[test]
    fn names_encode_to_the_paths_systemd_uses() {
        for (name, label) in KNOWN {
            assert_eq!(
                unit_path(name),
                format!("{UNIT_PATH_PREFIX}/{label}"),
                "{name}"
            );
        }
    }

    #[test]
    fn paths_decode_back_to_the_names() {
        for (name, label) in KNOWN {
            let path = format!("{UNIT_PATH_PREFIX}/{label}");
            assert_eq!(unit_name(&path).as_deref(), Some(*name), "{path}");
        }
    }

    #[test]
    fn paths_that_are_not_units_decode_to_nothing() {
        for path in [
            "/org/freedesktop/systemd1",
            "/org/freedesktop/systemd1/unit",
            "/org/freedesktop/systemd1/unit/",
            "/org/freedesktop/systemd1/job/42",
            "/org/freedesktop/systemd1/unitweb_2eservice",
            "/org/freedesktop/systemd1/unit/web_2eservice/extra",
            "/org/freedesktop/systemd1/unit/bad_ff",
        ] {
            assert_eq!(unit_name(path), None, "{path}");
        }
    }

    #[test]
    fn a_lone_underscore_without_hex_is_kept() {
        assert_eq!(
            unit_name("/org/freedesktop/systemd1/unit/a_zz").as_deref(),
            Some("a_zz")
        );
    }
}
