//! Every path the charm touches is an absolute unit path joined under the
//! root, so a test can point the real binary at a temp directory.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root(dir.into())
    }

    /// The root named by `MAGNUM_CAPI_ROOT`, or `/`.
    pub fn from_env() -> Root {
        match std::env::var_os("MAGNUM_CAPI_ROOT") {
            Some(dir) if !dir.is_empty() => Root::new(dir),
            _ => Root::new("/"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// `/etc/magnum/kubeconfig` -> `<root>/etc/magnum/kubeconfig`. The unit
    /// path must be absolute and must not climb out with `..`.
    pub fn path(&self, unit_path: impl AsRef<Path>) -> PathBuf {
        let p = unit_path.as_ref();
        debug_assert!(p.is_absolute(), "unit paths are absolute: {p:?}");
        debug_assert!(
            !p.components().any(|c| matches!(c, std::path::Component::ParentDir)),
            "unit paths do not contain ..: {p:?}"
        );
        self.0.join(p.strip_prefix("/").unwrap_or(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_join_under_the_root() {
        let r = Root::new("/tmp/unit");
        assert_eq!(
            r.path("/etc/magnum/kubeconfig"),
            PathBuf::from("/tmp/unit/etc/magnum/kubeconfig")
        );
        assert_eq!(Root::new("/").path("/etc/passwd"), PathBuf::from("/etc/passwd"));
    }
}
