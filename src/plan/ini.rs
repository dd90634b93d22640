//! Reading oslo.config-style INI files enough to know which `[section] key`
//! pairs a file sets (for the magnum.conf-wins check in
//! `service-override=none`, and for verify).

/// `(section, key)` pairs set in `text`, sections and keys lowercased as
/// oslo.config treats keys (sections are case-sensitive except DEFAULT).
pub fn keys(text: &str) -> Vec<(String, String)> {
    values(text)
        .into_iter()
        .filter(|(_, k, _)| !k.is_empty())
        .map(|(s, k, _)| (s, k.replace('-', "_")))
        .collect()
}

/// `(section, key, value)` triples as an INI reader sees them: the value
/// is the text after the first `=` or `:`, trimmed.
pub fn values(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::from("DEFAULT");
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if let Some(name) = rest.strip_suffix(']') {
                section = name.trim().to_string();
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(['=', ':']) {
            out.push((section.clone(), key.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_keys() {
        let k = keys(
            "[DEFAULT]\ndebug = true\n# c\n[capi_helm]\nkubeconfig_file=/x\n\n[drivers]\nopenstack_ca_file: /ca\n",
        );
        assert_eq!(
            k,
            vec![
                ("DEFAULT".to_string(), "debug".to_string()),
                ("capi_helm".to_string(), "kubeconfig_file".to_string()),
                ("drivers".to_string(), "openstack_ca_file".to_string()),
            ]
        );
    }
}
