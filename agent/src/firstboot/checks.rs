//! The shapes of the first-boot file's values: host names, SSH public keys, etcd URLs and member
//! names, addresses with prefix length, metadata words. Each check says what is wrong in words
//! that go after the key's name.

use std::net::IpAddr;

/// The kernel's limit on a host name (`HOST_NAME_MAX`).
const HOST_NAME_MAX: usize = 64;

/// The key types `sshd` accepts in `authorized_keys`.
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// A host name: dot-separated labels of letters, digits and inner dashes, at most 64 bytes.
pub fn hostname(name: &str) -> Result<(), String> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.len() > HOST_NAME_MAX {
        return Err(format!(
            "invalid hostname {name:?}: longer than {HOST_NAME_MAX} bytes"
        ));
    }
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "invalid hostname {name:?}: expected labels of letters, digits and inner dashes, separated by dots"
        ))
    }
}

/// One OpenSSH public key line: `TYPE BASE64 [COMMENT]`.
pub fn ssh_key(line: &str) -> Result<(), String> {
    let mut words = line.split_whitespace();
    let kind = words.next().unwrap_or_default();
    let body = words.next().unwrap_or_default();
    let base64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    if line.contains('\n') {
        Err("one key per entry, without line breaks".to_owned())
    } else if !SSH_KEY_TYPES.contains(&kind) {
        Err(format!(
            "not an OpenSSH public key: unknown key type {kind:?} ({})",
            SSH_KEY_TYPES.join("|")
        ))
    } else if body.is_empty() || !body.bytes().all(base64) {
        Err(format!(
            "not an OpenSSH public key: the {kind} key's body is not base64"
        ))
    } else {
        Ok(())
    }
}

/// An etcd URL: `http://` or `https://`, a host and a port.
pub fn url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("invalid URL {url:?}: expected http://HOST:PORT or https://HOST:PORT")
        })?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let port = authority
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty() && !host.contains('/'))
        .map(|(_, port)| port);
    match port.map(str::parse::<u16>) {
        Some(Ok(port)) if port > 0 => Ok(()),
        _ => Err(format!(
            "invalid URL {url:?}: expected http://HOST:PORT or https://HOST:PORT"
        )),
    }
}

/// An etcd member name, as etcd and `initial_cluster` spell it.
pub fn member_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid member name {name:?}: expected letters, digits, '-', '_' and '.'"
        ))
    }
}

/// An address with its prefix length: `10.0.0.5/24`, `fd00::5/64`.
pub fn address(text: &str) -> Result<(), String> {
    let invalid = || format!("invalid address {text:?}: expected ADDRESS/PREFIX, e.g. 10.0.0.5/24");
    let (ip, prefix) = text.split_once('/').ok_or_else(invalid)?;
    let ip: IpAddr = ip.parse().map_err(|_| invalid())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(prefix) if prefix <= max => Ok(()),
        _ => Err(invalid()),
    }
}

/// An interface name or systemd-networkd `Name=` glob (`eth1`, `en*`).
pub fn interface(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*' | b'?'))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid interface name {name:?}: expected up to 15 letters, digits, '-', '_', '.', or the globs '*' and '?'"
        ))
    }
}

/// A metadata key or value: what `MachineMetadata=key=value` can match.
pub fn metadata_word(word: &str) -> Result<(), String> {
    if word.is_empty() {
        Err("empty".to_owned())
    } else if word.contains(['=', ',']) || word.contains(char::is_whitespace) {
        Err(format!(
            "{word:?} contains '=', ',' or a space, which MachineMetadata= cannot match"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(hostname("core-01").is_ok());
        assert!(hostname("core-01.example.org").is_ok());
        for bad in ["", "a_b", "-a", "a-", "a..b", &"x".repeat(65)] {
            assert!(hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ssh_keys() {
        assert!(ssh_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0w user@host").is_ok());
        assert!(ssh_key("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ==").is_ok());
        let err = ssh_key("ssh-dss AAAA").unwrap_err();
        assert!(err.contains("unknown key type \"ssh-dss\""), "{err}");
        assert!(ssh_key("ssh-ed25519").unwrap_err().contains("not base64"));
        assert!(ssh_key("ssh-ed25519 AA\nssh-ed25519 BB").is_err());
    }

    #[test]
    fn urls() {
        assert!(url("http://10.0.0.1:2379").is_ok());
        assert!(url("https://etcd.lan:2379/").is_ok());
        for bad in [
            "10.0.0.1:2379",
            "http://10.0.0.1",
            "http://:2379",
            "ftp://a:1",
            "http://a:0",
        ] {
            assert!(url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn member_names_addresses_interfaces_metadata() {
        assert!(member_name("core-01").is_ok());
        assert!(member_name("a b").is_err());
        assert!(address("10.0.0.5/24").is_ok());
        assert!(address("fd00::5/64").is_ok());
        for bad in ["10.0.0.5", "10.0.0.5/33", "x/24", "fd00::5/129"] {
            assert!(address(bad).is_err(), "{bad:?}");
        }
        assert!(interface("eth1").is_ok());
        assert!(interface("en*").is_ok());
        assert!(interface("a very long interface").is_err());
        assert!(metadata_word("ssd").is_ok());
        assert!(metadata_word("a=b").is_err());
        assert!(metadata_word("").is_err());
    }
}
