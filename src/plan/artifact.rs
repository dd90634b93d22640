//! What a Juju resource is, from its bytes: a wheel, a wheelhouse archive, a
//! helm binary or helm's release tarball. Pure: sniffing, names, ELF
//! machine, wheel metadata. Juju stores a resource under the filename in
//! metadata.yaml, whatever it was called when attached, so names are not
//! trusted; contents are.

/// The kind of a resource, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zip,
    Gzip,
    Elf,
    Other,
}

pub fn sniff(head: &[u8]) -> Kind {
    match head {
        [b'P', b'K', 3, 4, ..] => Kind::Zip,
        [0x1f, 0x8b, ..] => Kind::Gzip,
        [0x7f, b'E', b'L', b'F', ..] => Kind::Elf,
        _ => Kind::Other,
    }
}

/// The machine an ELF executable is for (`e_machine`), as Go and helm's
/// release names say it.
pub fn elf_arch(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() < 20 || sniff(bytes) != Kind::Elf {
        return None;
    }
    // EI_DATA 1 = little endian (both our architectures).
    let machine = if bytes[5] == 1 {
        u16::from_le_bytes([bytes[18], bytes[19]])
    } else {
        u16::from_be_bytes([bytes[18], bytes[19]])
    };
    match machine {
        62 => Some("amd64"),
        183 => Some("arm64"),
        40 => Some("arm"),
        3 => Some("386"),
        21 => Some("ppc64le"),
        22 => Some("s390x"),
        _ => Some("unknown"),
    }
}

/// The architecture this charm was built for, in helm's words.
pub fn our_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `(distribution, version)` from a wheel's `<name>-<version>.dist-info/`
/// entry names, normalised (lowercase, `-` and `.` as `_`).
pub fn wheel_identity<'a>(entry_names: impl IntoIterator<Item = &'a str>) -> Option<(String, String)> {
    entry_names.into_iter().find_map(|n| {
        let dir = n.split('/').next()?;
        let stem = dir.strip_suffix(".dist-info")?;
        let (name, version) = stem.rsplit_once('-')?;
        Some((name.to_ascii_lowercase().replace(['-', '.'], "_"), version.to_string()))
    })
}

/// The file name pip needs for a wheel (`name-version-tag.whl`), from its
/// identity and the `Tag:` line of its `WHEEL` file.
pub fn wheel_file_name(name: &str, version: &str, wheel_metadata: &str) -> Option<String> {
    let tag = wheel_metadata.lines().find_map(|l| l.strip_prefix("Tag:"))?.trim();
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
    (ok(name) && ok(version) && ok(tag)).then(|| format!("{name}-{version}-{tag}.whl"))
}

/// A name from an archive that is safe to use as a file name in a staging
/// directory: its last component, no `..`, no hidden file.
pub fn safe_leaf(entry: &str) -> Option<&str> {
    let leaf = entry.rsplit('/').next()?;
    (!leaf.is_empty() && !leaf.starts_with('.') && !leaf.contains('\\')).then_some(leaf)
}

/// Lowercase hex: sha256 digests, the desired state's fingerprint, the
/// uid in D-Bus's AUTH EXTERNAL.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A sha256 pin from config: 64 hex digits (an optional `sha256:` prefix).
pub fn parse_sha256(pin: &str) -> Option<String> {
    let p = pin
        .trim()
        .strip_prefix("sha256:")
        .unwrap_or(pin.trim())
        .to_ascii_lowercase();
    (p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit())).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_magic() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Kind::Gzip);
        assert_eq!(sniff(b"\x7fELF\x02\x01"), Kind::Elf);
        assert_eq!(sniff(b"#!/bin/sh"), Kind::Other);
        assert_eq!(sniff(b""), Kind::Other);
    }

    #[test]
    fn elf_machines() {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[5] = 1;
        h[18] = 62;
        assert_eq!(elf_arch(&h), Some("amd64"));
        h[18] = 183;
        assert_eq!(elf_arch(&h), Some("arm64"));
        assert_eq!(elf_arch(b"\x7fELF"), None);
    }

    #[test]
    fn wheel_names() {
        let entries = [
            "magnum_capi_helm/__init__.py",
            "magnum_capi_helm-1.1.0.dist-info/WHEEL",
            "magnum_capi_helm-1.1.0.dist-info/METADATA",
        ];
        assert_eq!(
            wheel_identity(entries),
            Some(("magnum_capi_helm".into(), "1.1.0".into()))
        );
        assert_eq!(
            wheel_file_name(
                "magnum_capi_helm",
                "1.1.0",
                "Wheel-Version: 1.0\nGenerator: bdist_wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            )
            .as_deref(),
            Some("magnum_capi_helm-1.1.0-py3-none-any.whl")
        );
        assert_eq!(wheel_file_name("x", "1", "Tag: ../../etc"), None);
    }

    #[test]
    fn safe_leaves_and_pins() {
        assert_eq!(safe_leaf("wheels/a-1-py3-none-any.whl"), Some("a-1-py3-none-any.whl"));
        assert_eq!(safe_leaf("../../etc/passwd"), Some("passwd"));
        assert_eq!(safe_leaf("dir/"), None);
        assert_eq!(safe_leaf(".hidden"), None);
        let h = "a".repeat(64);
        assert_eq!(parse_sha256(&format!("sha256:{}", h.to_uppercase())), Some(h));
        assert_eq!(parse_sha256("abc"), None);
    }
}
