//! Atomic writes: a temp file in the same directory, owner and mode set
//! before the first byte, fsync, rename, fsync the directory. A reader sees
//! the old file or the new one, never half of one, never a wrong mode.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::unistd::{fchown, Gid, Uid};

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.magnum-capi-tmp"))
}

fn fsync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync directory {}", dir.display()))
}

/// Write `content` to `path` atomically as `uid:gid` with `mode`.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32, uid: u32, gid: u32) -> Result<()> {
    let dir = path.parent().context("a file to write has a parent directory")?;
    let tmp = temp_path(path);
    // A temp file left by a killed hook is ours: start over.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove stale {}", tmp.display())),
    }
    let label = crate::fault::label(path);
    crate::fault::point(&format!("write:{label}"));
    let write = || -> Result<()> {
        // Created 0600 by us: nobody else can open it before it is right.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        fchown(f.as_raw_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .with_context(|| format!("cannot chown {} to {uid}:{gid}", tmp.display()))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot chmod {} to {mode:o}", tmp.display()))?;
        f.write_all(content)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot fsync {}", tmp.display()))?;
        crate::fault::point(&format!("rename:{label}"));
        fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        fsync_dir(dir)?;
        crate::fault::point(&format!("written:{label}"));
        Ok(())
    };
    let result = write();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Remove a file if it exists.
pub fn remove(path: &Path) -> Result<bool> {
    crate::fault::point(&format!("remove:{}", crate::fault::label(path)));
    match fs::remove_file(path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                fsync_dir(dir)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Make `path` a directory with exactly this owner and mode (creating it,
/// its missing parents root-owned 0755).
pub fn ensure_dir(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => anyhow::bail!("{} exists and is not a directory: move it away", path.display()),
        Err(_) => {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .mode(0o700)
                .create(path)
                .with_context(|| format!("cannot create directory {}", path.display()))?;
        }
    }
    nix::unistd::chown(path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        .with_context(|| format!("cannot chown {} to {uid}:{gid}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {} to {mode:o}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_replace_atomically_with_mode_and_leave_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.conf");
        let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        write_atomic(&p, b"one", 0o640, uid, gid).unwrap();
        fs::write(temp_path(&p), b"stale").unwrap();
        write_atomic(&p, b"two", 0o600, uid, gid).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.conf");
        fs::write(&p, b"old").unwrap();
        // chown to another user fails unless we are root; as root, make the
        // directory read-only instead is not enough, so use a missing parent.
        let bad = dir.path().join("missing").join("f.conf");
        assert!(write_atomic(&bad, b"new", 0o640, 0, 0).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
    }
}
