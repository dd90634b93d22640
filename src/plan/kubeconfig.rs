//! Checking the management cluster's kubeconfig before it may replace the
//! one on the unit. Every bad-kubeconfig message is born here; none quotes
//! the secret's content.

use serde_yaml::Value;

use rustls_pki_types::pem::{PemObject, SectionKind};

use super::x509;

/// Larger than any sane kubeconfig; Juju caps a secret value at 1 MB too.
pub const MAX_BYTES: usize = 1024 * 1024;

/// What the charm learned from a valid kubeconfig (no secret material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigInfo {
    pub context: String,
    pub server: String,
    pub auth: Auth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    ClientCertificate,
    Token,
}

fn named<'a>(doc: &'a Value, list: &str, name: &str, field: &str) -> Option<&'a Value> {
    doc.get(list)?
        .as_sequence()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))?
        .get(field)
}

/// Standard base64 (RFC 4648) as kubeconfigs carry it: padding optional,
/// line breaks and spaces ignored (the `base64` crate, already in the tree
/// under ureq).
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
    use base64::Engine;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let compact: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    LENIENT.decode(compact).ok()
}

/// A `*-data` field: absent, or its base64-decoded bytes.
fn data_field(section: &Value, field: &str, what: &str) -> Result<Option<Vec<u8>>, String> {
    match section.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match b64_decode(s) {
            Some(d) if !d.is_empty() => Ok(Some(d)),
            _ => Err(format!("kubeconfig {what} {field} is not valid base64")),
        },
        Some(_) => Err(format!("kubeconfig {what} {field} is not valid base64")),
    }
}

/// The PEM sections of a field, or None if it is not valid PEM.
fn sections(pem: &[u8]) -> Option<Vec<(SectionKind, Vec<u8>)>> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .ok()
}

fn is_key(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey | SectionKind::PrivateKey
    )
}

/// The certificates in a PEM field: at least one, each a readable X.509
/// certificate, nothing else. Messages name the field, never its content.
fn certs_in(pem: &[u8], field: &str, what: &str) -> Result<Vec<x509::Cert>, String> {
    let field = format!("kubeconfig {what} {field}");
    let mut certs = Vec::new();
    for (kind, der) in sections(pem).ok_or_else(|| format!("{field} is not valid PEM"))? {
        match kind {
            SectionKind::Certificate => certs.push(
                x509::parse(&der).ok_or_else(|| format!("{field} holds a certificate that is not readable X.509"))?,
            ),
            k if is_key(k) => return Err(format!("{field} holds a private key, not a certificate")),
            _ => return Err(format!("{field} holds PEM that is not a certificate")),
        }
    }
    if certs.is_empty() {
        return Err(format!("{field} holds no PEM certificate"));
    }
    Ok(certs)
}

/// The one private key in `client-key-data`, as its public key.
fn key_in(pem: &[u8]) -> Result<Vec<u8>, String> {
    const FIELD: &str = "kubeconfig user client-key-data";
    let mut keys = Vec::new();
    for (kind, der) in sections(pem).ok_or_else(|| format!("{FIELD} is not valid PEM"))? {
        let form = match kind {
            SectionKind::RsaPrivateKey => x509::KeyForm::Pkcs1,
            SectionKind::EcPrivateKey => x509::KeyForm::Sec1,
            SectionKind::PrivateKey => x509::KeyForm::Pkcs8,
            SectionKind::Certificate => return Err(format!("{FIELD} holds a certificate, not a private key")),
            _ => return Err(format!("{FIELD} holds PEM that is not a private key")),
        };
        keys.push((form, der));
    }
    let [(form, der)] = keys.as_slice() else {
        return Err(format!(
            "{FIELD} must hold exactly one PEM private key, not {}",
            keys.len()
        ));
    };
    x509::public_key(*form, der).map_err(|why| format!("{FIELD} {why}"))
}

/// Validate kubeconfig bytes, `now` in seconds since the epoch (for the
/// client certificate's expiry). The error is the `blocked` message,
/// without the fix (the caller knows where the bytes came from).
pub fn validate(bytes: &[u8], now: i64) -> Result<KubeconfigInfo, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!("kubeconfig is {} bytes, over the 1 MiB limit", bytes.len()));
    }
    if bytes.contains(&0) {
        return Err("kubeconfig contains a NUL byte".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "kubeconfig is not UTF-8 text".to_string())?;
    let doc: Value = serde_yaml::from_str(text).map_err(|e| {
        // serde_yaml's message names a position, never the content.
        format!(
            "kubeconfig is not valid YAML ({})",
            e.location()
                .map_or("no location".into(), |l| format!("line {}", l.line()))
        )
    })?;
    if doc.get("kind").and_then(Value::as_str) != Some("Config") {
        return Err("kubeconfig is not `kind: Config`".into());
    }
    let context = doc
        .get("current-context")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("kubeconfig has no current-context")?;
    let ctx = named(&doc, "contexts", context, "context")
        .ok_or_else(|| format!("kubeconfig current-context {context:?} is not in contexts"))?;
    let cluster_name = ctx
        .get("cluster")
        .and_then(Value::as_str)
        .ok_or("kubeconfig current context names no cluster")?;
    let user_name = ctx
        .get("user")
        .and_then(Value::as_str)
        .ok_or("kubeconfig current context names no user")?;
    let cluster = named(&doc, "clusters", cluster_name, "cluster")
        .ok_or_else(|| format!("kubeconfig cluster {cluster_name:?} is not in clusters"))?;
    let server = cluster
        .get("server")
        .and_then(Value::as_str)
        .ok_or("kubeconfig cluster has no server")?;
    if !server.starts_with("https://") || server.len() <= "https://".len() {
        return Err("kubeconfig server is not an https:// URL (the management cluster API must use TLS)".into());
    }
    if server.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err("kubeconfig server URL has spaces or non-ASCII characters".into());
    }
    if let Some(ca) = data_field(cluster, "certificate-authority-data", "cluster")? {
        certs_in(&ca, "certificate-authority-data", "cluster")?;
    }
    if cluster.get("certificate-authority").is_some() {
        return Err("kubeconfig cluster uses certificate-authority (a file path on another machine); embed it as certificate-authority-data".into());
    }
    let user = named(&doc, "users", user_name, "user")
        .ok_or_else(|| format!("kubeconfig user {user_name:?} is not in users"))?;
    if user.get("exec").is_some() || user.get("auth-provider").is_some() {
        return Err("kubeconfig user uses an exec or auth-provider plugin, which the driver cannot run; use a service-account token kubeconfig".into());
    }
    if user.get("client-certificate").is_some() || user.get("client-key").is_some() || user.get("tokenFile").is_some() {
        return Err("kubeconfig user refers to files on another machine; embed client-certificate-data/client-key-data or a token".into());
    }
    let cert = data_field(user, "client-certificate-data", "user")?;
    let key = data_field(user, "client-key-data", "user")?;
    let token = user
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty());
    let auth = match (cert, key, token) {
        (Some(cert), Some(key), _) => {
            let leaf = certs_in(&cert, "client-certificate-data", "user")?.swap_remove(0);
            if key_in(&key)? != leaf.public_key {
                return Err("kubeconfig user client-key-data is not the private key of client-certificate-data".into());
            }
            if leaf.not_after < now {
                return Err(format!(
                    "kubeconfig user client certificate expired on {} and cannot work; use a renewed certificate or a service-account token kubeconfig",
                    x509::date(leaf.not_after)
                ));
            }
            Auth::ClientCertificate
        }
        (None, None, Some(_)) => Auth::Token,
        (Some(_), None, _) | (None, Some(_), _) => {
            return Err("kubeconfig user has only one of client-certificate-data and client-key-data".into())
        }
        (None, None, None) => return Err("kubeconfig user has neither client certificate data nor a token".into()),
    };
    Ok(KubeconfigInfo {
        context: context.to_string(),
        server: server.to_string(),
        auth,
    })
}

/// Where and how to reach the management cluster, from a kubeconfig
/// (for verify; the key material stays in memory and is never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct KubeTarget {
    pub server: String,
    pub ca_pem: Option<Vec<u8>>,
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    pub token: Option<String>,
    pub insecure_skip_tls_verify: bool,
    /// The user authenticates with an exec or auth-provider plugin.
    pub plugin: bool,
}

impl std::fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTarget")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

fn decoded(section: &Value, field: &str) -> Result<Option<Vec<u8>>, String> {
    match section.get(field).and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => b64_decode(s)
            .map(Some)
            .ok_or_else(|| format!("kubeconfig {field} is not valid base64")),
    }
}

/// The current context's server and credentials.
pub fn target(bytes: &[u8]) -> Result<KubeTarget, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "kubeconfig is not UTF-8 text".to_string())?;
    let doc: Value = serde_yaml::from_str(text).map_err(|_| "kubeconfig is not valid YAML".to_string())?;
    let context = doc
        .get("current-context")
        .and_then(Value::as_str)
        .ok_or("kubeconfig has no current-context")?;
    let ctx = named(&doc, "contexts", context, "context").ok_or("kubeconfig current-context is not in contexts")?;
    let cluster_name = ctx.get("cluster").and_then(Value::as_str).unwrap_or("");
    let user_name = ctx.get("user").and_then(Value::as_str).unwrap_or("");
    let cluster = named(&doc, "clusters", cluster_name, "cluster").ok_or("kubeconfig cluster is not in clusters")?;
    let user = named(&doc, "users", user_name, "user").cloned().unwrap_or(Value::Null);
    Ok(KubeTarget {
        server: cluster
            .get("server")
            .and_then(Value::as_str)
            .ok_or("kubeconfig cluster has no server")?
            .to_string(),
        ca_pem: decoded(cluster, "certificate-authority-data")?,
        client_cert_pem: decoded(&user, "client-certificate-data")?,
        client_key_pem: decoded(&user, "client-key-data")?,
        token: user.get("token").and_then(Value::as_str).map(str::to_string),
        insecure_skip_tls_verify: cluster
            .get("insecure-skip-tls-verify")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        plugin: user.get("exec").is_some() || user.get("auth-provider").is_some(),
    })
}

#[cfg(test)]
pub mod tests {
    #[test]
    fn base64_decodes_rfc4648_vectors_padding_optional_whitespace_ignored() {
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zg", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9v\nYmFy\n", "foobar"),
        ] {
            assert_eq!(b64_decode(enc).unwrap(), dec.as_bytes(), "{enc}");
        }
        assert!(b64_decode("Zm9v!").is_none());
        assert!(b64_decode("Z").is_none());
        assert!(b64_decode("not base64 at all?").is_none());
    }

    use super::*;

    /// A minimal valid token kubeconfig; tests edit it to break one thing.
    pub const TOKEN_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: mgmt
  cluster:
    server: https://10.0.0.10:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJoVENDQVN1Z0F3SUJBZ0lVTHpVVlMwTXJQTTJlazR6NDFmdVlsMnN4c0ZRd0NnWUlLb1pJemowRUF3SXcKRnpFVk1CTUdBMVVFQXd3TVkyRndhUzF0WjIxMExXTmhNQ0FYRFRJMk1USXdOakEwTVRBeE5Gb1lEekl4TWpZeApNVEV5TURReE1ERTBXakFYTVJVd0V3WURWUVFEREF4allYQnBMVzFuYlhRdFkyRXdXVEFUQmdjcWhrak9QUUlCCkJnZ3Foa2pPUFFNQkJ3TkNBQVJuY1ZtL3hVaHExSmFJS3hoeGttM1VHb09BWGF1K3FzbExTaS93ckhuZklBSmoKb3hLQmE1RG5ZUTVuZHRPMWtBaktVVFdPRlZEY2cyTGxDTXoxcXhpWG8xTXdVVEFkQmdOVkhRNEVGZ1FVbGFGOQpscmFaVHpLRU9YVlMzQlArdGdGSkFIUXdId1lEVlIwakJCZ3dGb0FVbGFGOWxyYVpUektFT1hWUzNCUCt0Z0ZKCkFIUXdEd1lEVlIwVEFRSC9CQVV3QXdFQi96QUtCZ2dxaGtqT1BRUURBZ05JQURCRkFpRUF4RjFBWWNZSUZ2Wm0KOTlFY3dTREs4c2Y1OWo0dzNSTXk1ejg5U0tDSFcxNENJR0dTcFMweWdkV1BLZ0kzeDkvU2M4Z2V0dUFNK2w0MgpXdzhUZTFLMVhsVzUKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
contexts:
- name: capi
  context:
    cluster: mgmt
    user: magnum
current-context: capi
users:
- name: magnum
  user:
    token: abc.def
";

    /// 2026-12-06, the day these tests were written: the fixtures'
    /// certificates outlive it by a century, expired.crt died in 2024.
    pub const NOW: i64 = 1796515200;

    fn b64(pem: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    /// A kubeconfig whose user holds this certificate and key (PEM).
    pub fn cert_kubeconfig(cert: &str, key: &str) -> String {
        TOKEN_KUBECONFIG.replace(
            "    token: abc.def",
            &format!(
                "    client-certificate-data: {}\n    client-key-data: {}",
                b64(cert),
                b64(key)
            ),
        )
    }

    const RSA_CRT: &str = include_str!("testdata/rsa.crt");
    const RSA_KEY: &str = include_str!("testdata/rsa.key");
    const EC_CRT: &str = include_str!("testdata/ec.crt");
    const EC_KEY: &str = include_str!("testdata/ec.key");
    const EC_PK8: &str = include_str!("testdata/ec.pk8");
    const EXPIRED_CRT: &str = include_str!("testdata/expired.crt");
    const CA_CRT: &str = include_str!("testdata/ca.crt");

    #[test]
    fn a_token_kubeconfig_is_valid() {
        let info = validate(TOKEN_KUBECONFIG.as_bytes(), NOW).unwrap();
        assert_eq!(info.server, "https://10.0.0.10:6443");
        assert_eq!(info.auth, Auth::Token);
    }

    #[test]
    fn cert_kubeconfigs_of_each_key_form_are_valid() {
        for (cert, key) in [(RSA_CRT, RSA_KEY), (EC_CRT, EC_KEY), (EC_CRT, EC_PK8)] {
            let k = cert_kubeconfig(cert, key);
            assert_eq!(validate(k.as_bytes(), NOW).unwrap().auth, Auth::ClientCertificate);
        }
    }

    /// Each PEM field wrong in turn (issue 23, item 6): refused, naming the
    /// field, never echoing it.
    #[test]
    fn each_pem_field_wrong_in_turn() {
        let not_pem = "this is not a PEM block at all";
        let good = cert_kubeconfig(RSA_CRT, RSA_KEY);
        let ca = b64(CA_CRT);
        let cases: Vec<(String, &str)> = vec![
            // certificate-authority-data
            (
                good.replace(&ca, &b64(not_pem)),
                "certificate-authority-data holds no PEM certificate",
            ),
            (
                good.replace(&ca, &b64(RSA_KEY)),
                "certificate-authority-data holds a private key",
            ),
            (
                good.replace(
                    &ca,
                    &b64("-----BEGIN CERTIFICATE-----\nMIIBdTCCARugAwIBAgII\n-----END CERTIFICATE-----\n"),
                ),
                "certificate-authority-data holds a certificate that is not readable",
            ),
            // client-certificate-data
            (
                cert_kubeconfig(not_pem, RSA_KEY),
                "client-certificate-data holds no PEM certificate",
            ),
            (
                cert_kubeconfig(RSA_KEY, RSA_KEY),
                "client-certificate-data holds a private key",
            ),
            // client-key-data
            (
                cert_kubeconfig(RSA_CRT, not_pem),
                "client-key-data must hold exactly one PEM private key",
            ),
            (cert_kubeconfig(RSA_CRT, RSA_CRT), "client-key-data holds a certificate"),
            (
                cert_kubeconfig(
                    RSA_CRT,
                    "-----BEGIN RSA PRIVATE KEY-----\nMAMCAQA=\n-----END RSA PRIVATE KEY-----\n",
                ),
                "client-key-data is not a usable RSA private key",
            ),
            (
                cert_kubeconfig(
                    EC_CRT,
                    "-----BEGIN EC PRIVATE KEY-----\nMAMCAQA=\n-----END EC PRIVATE KEY-----\n",
                ),
                "client-key-data is not a readable EC private key",
            ),
            // the pair
            (
                cert_kubeconfig(RSA_CRT, EC_KEY),
                "client-key-data is not the private key of client-certificate-data",
            ),
            (
                cert_kubeconfig(EC_CRT, RSA_KEY),
                "client-key-data is not the private key of client-certificate-data",
            ),
            (
                cert_kubeconfig(EXPIRED_CRT, RSA_KEY),
                "client certificate expired on 2024-01-02",
            ),
        ];
        let secrets: Vec<String> = [RSA_KEY, EC_KEY, RSA_CRT]
            .iter()
            .flat_map(|p| {
                p.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        for (text, want) in cases {
            let e = validate(text.as_bytes(), NOW).unwrap_err();
            assert!(e.contains(want), "{e:?} does not say {want:?}");
            for line in &secrets {
                assert!(!e.contains(line.as_str()), "the message echoes key material: {e}");
            }
        }
    }

    #[test]
    fn each_defect_has_its_message() {
        let cases: Vec<(String, &str)> = vec![
            ("{{{ not yaml".into(), "not valid YAML"),
            ("- a\n- b\n".into(), "kind: Config"),
            (TOKEN_KUBECONFIG.replace("kind: Config", "kind: Pod"), "kind: Config"),
            (
                TOKEN_KUBECONFIG.replace("current-context: capi", "current-context: \"\""),
                "no current-context",
            ),
            (
                TOKEN_KUBECONFIG.replace("current-context: capi", "current-context: other"),
                "not in contexts",
            ),
            (TOKEN_KUBECONFIG.replace("https://", "http://"), "https"),
            (TOKEN_KUBECONFIG.replace(&b64(CA_CRT), "\"%%%\""), "base64"),
            (
                TOKEN_KUBECONFIG.replace(
                    "token: abc.def",
                    "client-certificate-data: '!!'\n    client-key-data: Zm9v",
                ),
                "base64",
            ),
            (
                TOKEN_KUBECONFIG.replace("token: abc.def", "exec: {command: aws}"),
                "exec",
            ),
            (
                TOKEN_KUBECONFIG.replace("token: abc.def", &format!("client-certificate-data: {}", b64(RSA_CRT))),
                "only one",
            ),
            (TOKEN_KUBECONFIG.replace("token: abc.def", "username: x"), "neither"),
            (
                TOKEN_KUBECONFIG.replace("    user: magnum\ncurrent", "    user: nobody\ncurrent"),
                "not in users",
            ),
        ];
        for (text, want) in cases {
            let e = validate(text.as_bytes(), NOW).unwrap_err();
            assert!(e.contains(want), "{e:?} does not say {want:?}");
            assert!(!e.contains("abc.def"), "message leaks the token: {e}");
        }
    }

    #[test]
    fn oversized_and_binary_input_is_refused() {
        let mut big = TOKEN_KUBECONFIG.as_bytes().to_vec();
        big.resize(MAX_BYTES + 1, b' ');
        assert!(validate(&big, NOW).unwrap_err().contains("1 MiB"));
        assert!(validate(&[0xff, 0xfe, 0x00], NOW).is_err());
    }

    #[test]
    fn yaml_bombs_do_not_explode() {
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        assert!(validate(bomb.as_bytes(), NOW).is_err());
        let deep = "[".repeat(100_000);
        assert!(validate(deep.as_bytes(), NOW).is_err());
    }
}
