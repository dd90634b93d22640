//! Users and groups from `<root>/etc/passwd` and `<root>/etc/group`, so the
//! charm never asks NSS about a unit that is not the one it runs on.

use std::path::Path;

use anyhow::{Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    users: Vec<(String, Account)>,
    groups: Vec<(String, u32)>,
}

impl Accounts {
    /// Read both files; a missing file is an empty table (a unit before its
    /// principal arrives may still have no magnum user).
    pub fn read(passwd: &Path, group: &Path) -> Result<Accounts> {
        let read = |p: &Path| match std::fs::read_to_string(p) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        };
        Ok(Accounts::parse(&read(passwd)?, &read(group)?))
    }

    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let users = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((
                    f.first()?.to_string(),
                    Account {
                        uid: f.get(2)?.parse().ok()?,
                        gid: f.get(3)?.parse().ok()?,
                    },
                ))
            })
            .collect();
        let groups = group
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
            })
            .collect();
        Accounts { users, groups }
    }

    pub fn user(&self, name: &str) -> Option<Account> {
        self.users.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|(n, _)| n == name).map(|(_, g)| *g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\nmagnum:x:64060:64060::/var/lib/magnum:/usr/sbin/nologin\nbroken line\n";
    const GROUP: &str = "root:x:0:\nmagnum:x:64060:\n";

    #[test]
    fn users_and_groups_are_read_by_name() {
        let a = Accounts::parse(PASSWD, GROUP);
        assert_eq!(a.user("magnum"), Some(Account { uid: 64060, gid: 64060 }));
        assert_eq!(a.group("magnum"), Some(64060));
        assert_eq!(a.user("nobody"), None);
        assert_eq!(a.group("root"), Some(0));
    }
}
