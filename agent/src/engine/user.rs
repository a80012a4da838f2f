//! `--user`/`USER` values (`user[:group]`) turned into the ids a container runs as.
//!
//! [`numeric_user`] handles `uid[:gid]` without any files; [`resolve_user`] follows runc's
//! `GetExecUser` (which docker uses) against the image's `/etc/passwd` and `/etc/group`, passed
//! in as text so this stays pure: names must exist; a numeric uid need not, and takes its
//! primary group from its passwd entry when there is one (else 0); without an explicit group a
//! user found in passwd also gets the groups that list it as a member.

use oci_spec::runtime::User;

/// Why a user could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

/// One `/etc/passwd` line.
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

/// One `/etc/group` line.
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// The `:`-separated records of a passwd or group file; comments, blank and short lines are
/// skipped, as libc does.
fn records(text: &str, fields: usize) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| line.split(':').collect::<Vec<_>>())
        .filter(move |parts| parts.len() >= fields)
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    records(text, 4).filter_map(|parts| {
        Some(PasswdEntry {
            name: parts[0],
            uid: parts[2].parse().ok()?,
            gid: parts[3].parse().ok()?,
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    records(text, 3).filter_map(|parts| {
        Some(GroupEntry {
            name: parts[0],
            gid: parts[2].parse().ok()?,
            members: parts.get(3).map_or_else(Vec::new, |list| {
                list.split(',').filter(|m| !m.is_empty()).collect()
            }),
        })
    })
}

/// `user[:group]` split; an empty user is root.
fn split(spec: &str) -> (&str, Option<&str>) {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    (if user.is_empty() { "0" } else { user }, group)
}

fn oci_user(uid: u32, gid: u32, additional_gids: Vec<u32>) -> User {
    let mut user = User::default();
    user.set_uid(uid);
    user.set_gid(gid);
    if !additional_gids.is_empty() {
        user.set_additional_gids(Some(additional_gids));
    }
    user
}

/// `uid[:gid]` with numbers only (gid 0 when absent), or `None` when a part is a name.
pub fn numeric_user(spec: &str) -> Option<User> {
    let (uid, gid) = split(spec);
    let gid = gid.map_or(Ok(0), str::parse);
    Some(oci_user(uid.parse().ok()?, gid.ok()?, Vec::new()))
}

/// Resolves `spec` (`user[:group]`, names or numbers) against the texts of a root file system's
/// `/etc/passwd` and `/etc/group` (empty when the files are missing).
pub fn resolve_user(passwd: &str, group: &str, spec: &str) -> Result<User, UserError> {
    let (user_part, group_part) = split(spec);
    let numeric_uid = user_part.parse::<u32>().ok();
    let entry = passwd_entries(passwd).find(|entry| match numeric_uid {
        Some(uid) => entry.uid == uid,
        None => entry.name == user_part,
    });
    let (uid, primary_gid) = match (&entry, numeric_uid) {
        (Some(entry), _) => (entry.uid, entry.gid),
        (None, Some(uid)) => (uid, 0),
        (None, None) => return Err(UserError::NoUser(user_part.to_owned())),
    };
    match group_part {
        Some(group_part) => {
            let gid = match group_part.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => group_entries(group)
                    .find(|g| g.name == group_part)
                    .map(|g| g.gid)
                    .ok_or_else(|| UserError::NoGroup(group_part.to_owned()))?,
            };
            Ok(oci_user(uid, gid, Vec::new()))
        }
        None => {
            let additional = entry.map_or_else(Vec::new, |entry| {
                group_entries(group)
                    .filter(|g| g.members.contains(&entry.name))
                    .map(|g| g.gid)
                    .collect()
            });
            Ok(oci_user(uid, primary_gid, additional))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          # a comment\n\
                          nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\n\
                          broken line\n\
                          app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnginx:x:101:\nwww:x:33:nginx,app\nwheel:x:10:app\n";

    /// uid, gid, additional gids.
    type Ids = (u32, u32, Vec<u32>);

    fn ids(user: &User) -> Ids {
        (
            user.uid(),
            user.gid(),
            user.additional_gids().clone().unwrap_or_default(),
        )
    }

    #[test]
    fn users_resolve_as_runc_does() {
        let table: [(&str, Ids); 10] = [
            ("", (0, 0, vec![])),
            ("root", (0, 0, vec![])),
            ("nginx", (101, 101, vec![33])),
            ("app", (1000, 1000, vec![33, 10])),
            ("app:www", (1000, 33, vec![])),
            ("app:7", (1000, 7, vec![])),
            ("1000", (1000, 1000, vec![33, 10])),
            ("4242", (4242, 0, vec![])),
            ("4242:4243", (4242, 4243, vec![])),
            (":wheel", (0, 10, vec![])),
        ];
        for (spec, expected) in table {
            let user = resolve_user(PASSWD, GROUP, spec).unwrap();
            assert_eq!(ids(&user), expected, "{spec:?}");
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve_user(PASSWD, GROUP, "nobody")
                .unwrap_err()
                .to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            resolve_user(PASSWD, GROUP, "app:staff")
                .unwrap_err()
                .to_string(),
            "unable to find group staff: no matching entries in group file"
        );
        assert!(resolve_user("", "", "nginx").is_err());
    }

    #[test]
    fn numeric_users_need_no_files() {
        let table = [
            ("", Some((0, 0))),
            ("1000", Some((1000, 0))),
            ("1000:50", Some((1000, 50))),
            ("nginx", None),
            ("1000:staff", None),
            ("-1", None),
        ];
        for (spec, expected) in table {
            assert_eq!(
                numeric_user(spec).map(|u| (u.uid(), u.gid())),
                expected,
                "{spec:?}"
            );
        }
    }
}
