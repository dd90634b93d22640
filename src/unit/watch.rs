//! What every path the charm's view of the unit rests on looked like when
//! it last looked: a stamp of its `lstat` per path (`None`: absent). Any
//! write, rename over, chmod, chown, or entry added to or removed from a
//! watched directory changes the stamp (ctime cannot be set from user
//! space), so "every stamp unchanged" proves the unit is as it was seen
//! without reading a byte: update-status's drift check is stats only.
//!
//! File times tick at the kernel's coarse clock, so a change made in the
//! same tick as the stamp can leave ctime as it was. As git does with its
//! index ("racily clean" entries), a path whose ctime is not older than the
//! tick it was stamped in is stamped as `RACY`, which never matches: the next
//! look reads it in full and stamps it again, by then in the past.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Root;

/// inode, mode, uid, gid, size, mtime and ctime (ns since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp(pub [u64; 7]);

fn ns(secs: i64, nsec: i64) -> u64 {
    (secs as u64).wrapping_mul(1_000_000_000).wrapping_add(nsec as u64)
}

fn stamp_of(m: &std::fs::Metadata) -> Stamp {
    Stamp([
        m.ino(),
        u64::from(m.mode()),
        u64::from(m.uid()),
        u64::from(m.gid()),
        m.size(),
        ns(m.mtime(), m.mtime_nsec()),
        ns(m.ctime(), m.ctime_nsec()),
    ])
}

/// Stands for a path changed in the very tick it was stamped: never equal
/// to a real stamp (no inode 0), so it always reads as changed.
pub const RACY: Stamp = Stamp([0; 7]);

/// The coarse clock file times are taken from, in ns since the epoch.
pub fn coarse_now() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE)
        .map_or(u64::MAX, |t| ns(t.tv_sec(), t.tv_nsec()))
}

fn trusted(s: Stamp, now: u64) -> Stamp {
    if s.0[6] >= now {
        RACY
    } else {
        s
    }
}

/// The stamp of `path` itself (a symlink is not followed), `None` when
/// absent or unreadable.
pub fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::symlink_metadata(path).ok().map(|m| stamp_of(&m))
}

/// Unit paths (as under `/`) and their stamps, in the order added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch(pub Vec<(String, Option<Stamp>)>);

impl Watch {
    /// Stamp `host_path` (under the unit root) now; `now` is `coarse_now()`
    /// as read before (one reading serves a whole observation). Call it
    /// before reading the path: a change made after the stamp shows as a new
    /// stamp later. A symlink's target is stamped too (as `<path>/`).
    pub fn add_at(&mut self, root: &Root, host_path: &Path, now: u64) {
        let unit_path = host_path.strip_prefix(root.dir()).map_or_else(
            |_| host_path.to_string_lossy().into_owned(),
            |p| format!("/{}", p.to_string_lossy()),
        );
        if self.0.iter().any(|(p, _)| *p == unit_path) {
            return;
        }
        let s = std::fs::symlink_metadata(host_path).ok();
        if s.as_ref().is_some_and(|m| m.file_type().is_symlink()) {
            let target = std::fs::metadata(host_path).ok().map(|m| trusted(stamp_of(&m), now));
            self.0.push((format!("{unit_path}/"), target));
        }
        self.0.push((unit_path, s.map(|m| trusted(stamp_of(&m), now))));
    }

    /// Every path stamped as recorded.
    pub fn unchanged(&self, root: &Root) -> bool {
        !self.0.is_empty()
            && self.0.iter().all(|(p, recorded)| {
                let now = match p.strip_suffix('/') {
                    Some(link) => std::fs::metadata(root.path(link)).ok().map(|m| stamp_of(&m)),
                    None => stamp(&root.path(p)),
                };
                now == *recorded
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATER: u64 = u64::MAX - 1;

    #[test]
    fn any_write_chmod_rename_or_new_entry_changes_a_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let file = dir.path().join("f");
        std::fs::write(&file, "a").unwrap();
        let sub = dir.path().join("d");
        std::fs::create_dir(&sub).unwrap();
        let watch = |paths: &[&Path]| {
            let mut w = Watch::default();
            for p in paths {
                w.add_at(&root, p, LATER);
            }
            w
        };
        let w = watch(&[&file, &sub, &dir.path().join("absent")]);
        assert_eq!(w.0[0].0, "/f");
        assert!(w.unchanged(&root));

        std::fs::write(&file, "bb").unwrap();
        assert!(!w.unchanged(&root), "a write");
        let w = watch(&[&file]);
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert!(!w.unchanged(&root), "a chmod");
        let w = watch(&[&file]);
        std::fs::write(dir.path().join("g"), "bb").unwrap();
        std::fs::rename(dir.path().join("g"), &file).unwrap();
        assert!(!w.unchanged(&root), "the same bytes renamed over it");

        let w = watch(&[&sub]);
        std::fs::write(sub.join("new"), "").unwrap();
        assert!(!w.unchanged(&root), "an entry added to a watched directory");

        let w = watch(&[&dir.path().join("absent")]);
        assert!(w.unchanged(&root));
        std::fs::write(dir.path().join("absent"), "").unwrap();
        assert!(!w.unchanged(&root), "a watched absent path appeared");

        assert!(!Watch::default().unchanged(&root), "an empty watch proves nothing");
    }

    #[test]
    fn a_path_changed_in_the_stamping_tick_is_racy_and_never_matches() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let file = dir.path().join("f");
        std::fs::write(&file, "a").unwrap();
        let ctime = stamp(&file).unwrap().0[6];
        let mut w = Watch::default();
        w.add_at(&root, &file, ctime);
        assert_eq!(w.0[0].1, Some(RACY));
        assert!(!w.unchanged(&root));
        let mut w = Watch::default();
        w.add_at(&root, &file, ctime + 1);
        assert!(w.unchanged(&root), "changed before the tick it was stamped in");
    }

    #[test]
    fn a_symlink_is_watched_and_so_is_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::write(dir.path().join("t"), "1").unwrap();
        std::os::unix::fs::symlink("t", dir.path().join("l")).unwrap();
        let mut w = Watch::default();
        w.add_at(&root, &dir.path().join("l"), LATER);
        assert_eq!(w.0.len(), 2);
        assert!(w.unchanged(&root));
        std::fs::write(dir.path().join("t"), "22").unwrap();
        assert!(!w.unchanged(&root));
    }
}
