//! OpenStack credentials from the `openstack-credentials-secret` user
//! secret: an application credential (the runbook's Roosevelt pattern) or a
//! password. Pure; every message names the key and the fix, never a value.

use std::collections::BTreeMap;

#[derive(Clone, PartialEq, Eq)]
pub enum Method {
    ApplicationCredential {
        id: String,
        secret: String,
    },
    Password {
        username: String,
        password: String,
        project_name: String,
        user_domain_name: String,
        project_domain_name: String,
    },
}

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub auth_url: String,
    pub method: Method,
    pub region_name: Option<String>,
    pub interface: String,
    pub ca_cert_pem: Option<String>,
}

impl Method {
    /// Which identity these are, for the action's output: ids and names,
    /// never a secret or password.
    pub fn describe(&self) -> String {
        match self {
            Method::ApplicationCredential { id, .. } => format!("application credential {id}"),
            Method::Password {
                username, project_name, ..
            } => format!("password of user {username}, project {project_name}"),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("auth_url", &self.auth_url)
            .finish_non_exhaustive()
    }
}

const FIX: &str =
    "juju update-secret <secret> auth-url=... application-credential-id=... application-credential-secret=...";

fn clean(key: &str, v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(format!("openstack credentials: {key} is empty; fix: {FIX}"));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(format!(
            "openstack credentials: {key} has control characters; fix: {FIX}"
        ));
    }
    Ok(v.to_string())
}

pub fn parse(secret: &BTreeMap<String, String>) -> Result<Credentials, String> {
    let get = |k: &str| secret.get(k).map(|v| clean(k, v)).transpose();
    let auth_url = get("auth-url")?.ok_or_else(|| format!("openstack credentials: no auth-url; fix: {FIX}"))?;
    if !(auth_url.starts_with("https://") || auth_url.starts_with("http://")) || auth_url.contains(' ') {
        return Err(format!(
            "openstack credentials: auth-url is not an http(s) URL; fix: {FIX}"
        ));
    }
    let method = match (get("application-credential-id")?, get("application-credential-secret")?) {
        (Some(id), Some(secret)) => Method::ApplicationCredential { id, secret },
        (Some(_), None) | (None, Some(_)) => {
            return Err(format!(
                "openstack credentials: application-credential-id and -secret go together; fix: {FIX}"
            ))
        }
        (None, None) => {
            let need = |k: &str| {
                get(k)?.ok_or_else(|| {
                    format!("openstack credentials: neither an application credential nor {k}; fix: {FIX}")
                })
            };
            Method::Password {
                username: need("username")?,
                password: need("password")?,
                project_name: need("project-name")?,
                user_domain_name: get("user-domain-name")?.unwrap_or_else(|| "Default".into()),
                project_domain_name: get("project-domain-name")?.unwrap_or_else(|| "Default".into()),
            }
        }
    };
    let interface = get("interface")?.unwrap_or_else(|| "public".into());
    if !["public", "internal", "admin"].contains(&interface.as_str()) {
        return Err(format!(
            "openstack credentials: interface must be public, internal or admin; fix: {FIX}"
        ));
    }
    let ca_cert_pem = secret
        .get("ca-cert")
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if ca_cert_pem
        .as_ref()
        .is_some_and(|c| !c.contains("-----BEGIN CERTIFICATE-----"))
    {
        return Err(format!(
            "openstack credentials: ca-cert is not a PEM certificate; fix: {FIX}"
        ));
    }
    Ok(Credentials {
        auth_url: auth_url.trim_end_matches('/').to_string(),
        method,
        region_name: get("region-name")?,
        interface,
        ca_cert_pem,
    })
}

/// What to tell the operator when magnum could not make the cluster's trust
/// with these credentials. Magnum's conductor creates a Keystone trust for
/// every cluster before it calls the driver (`Failed to create trustee or
/// trust for Cluster: <uuid>` in status_reason), and Keystone refuses trust
/// operations to application-credential tokens ("Delegated tokens cannot
/// manage trusts"; measured on Debian's keystone 22.0.2-0+deb12u6 and
/// 27.0.0-3+deb13u6 on the real-unit tier, unrestricted credentials
/// included). A password credential can.
pub fn trust_hint(method: &Method, status_reason: &str) -> Option<&'static str> {
    (matches!(method, Method::ApplicationCredential { .. }) && status_reason.contains("trustee or trust")).then_some(
        "Keystone refuses trusts to application-credential tokens, and magnum makes one for every cluster: put a user's password credentials (auth-url, username, password, project-name) in openstack-credentials-secret",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn application_credentials_and_passwords() {
        let c = parse(&m(&[
            ("auth-url", "https://keystone:5000/v3/"),
            ("application-credential-id", "id1"),
            ("application-credential-secret", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(c.auth_url, "https://keystone:5000/v3");
        assert_eq!(c.interface, "public");
        assert!(matches!(c.method, Method::ApplicationCredential { .. }));
        let p = parse(&m(&[
            ("auth-url", "http://k/v3"),
            ("username", "admin"),
            ("password", "pw"),
            ("project-name", "admin"),
        ]))
        .unwrap();
        assert!(matches!(p.method, Method::Password { ref user_domain_name, .. } if user_domain_name == "Default"));
    }

    #[test]
    fn bad_secrets_say_which_key_and_never_the_value() {
        for (pairs, want) in [
            (vec![], "no auth-url"),
            (vec![("auth-url", "ftp://x")], "http(s)"),
            (
                vec![("auth-url", "https://k"), ("application-credential-id", "x")],
                "go together",
            ),
            (vec![("auth-url", "https://k"), ("username", "u")], "password"),
            (
                vec![
                    ("auth-url", "https://k"),
                    ("application-credential-id", "i"),
                    ("application-credential-secret", "TOPSECRET\n"),
                    ("interface", "private"),
                ],
                "interface",
            ),
            (
                vec![
                    ("auth-url", "https://k"),
                    ("application-credential-id", "i"),
                    ("application-credential-secret", "s"),
                    ("ca-cert", "TOPSECRET"),
                ],
                "ca-cert",
            ),
        ] {
            let e = parse(&m(&pairs)).unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("TOPSECRET"));
        }
    }

    #[test]
    fn a_trust_failure_with_an_application_credential_says_what_to_use() {
        let app = Method::ApplicationCredential {
            id: "i".into(),
            secret: "s".into(),
        };
        let pw = Method::Password {
            username: "u".into(),
            password: "p".into(),
            project_name: "p".into(),
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
        };
        let reason = "Failed to create trustee or trust for Cluster: 0b4c";
        assert!(trust_hint(&app, reason).unwrap().contains("password"));
        assert_eq!(trust_hint(&pw, reason), None);
        assert_eq!(trust_hint(&app, "helm failed"), None);
        assert_eq!(app.describe(), "application credential i");
        assert_eq!(pw.describe(), "password of user u, project p");
    }
}
