//! Checking the management cluster's kubeconfig before it may replace the
//! one on the unit. Every bad-kubeconfig message is born here; none quotes
//! the secret's content.

use serde_yaml::Value;

use super::base64;

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

fn data_field(section: &Value, field: &str, what: &str) -> Result<Option<()>, String> {
    match section.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if base64::decode(s).is_some_and(|d| !d.is_empty()) => Ok(Some(())),
        Some(_) => Err(format!("kubeconfig {what} {field} is not valid base64")),
    }
}

/// Validate kubeconfig bytes. The error is the `blocked` message, without
/// the fix (the caller knows where the bytes came from).
pub fn validate(bytes: &[u8]) -> Result<KubeconfigInfo, String> {
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
    data_field(cluster, "certificate-authority-data", "cluster")?;
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
        (Some(()), Some(()), _) => Auth::ClientCertificate,
        (None, None, Some(_)) => Auth::Token,
        (Some(()), None, _) | (None, Some(()), _) => {
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
        Some(s) => base64::decode(s)
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
    use super::*;

    /// A minimal valid token kubeconfig; tests edit it to break one thing.
    pub const TOKEN_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: mgmt
  cluster:
    server: https://10.0.0.10:6443
    certificate-authority-data: Zm9vYmFy
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

    #[test]
    fn a_token_kubeconfig_is_valid() {
        let info = validate(TOKEN_KUBECONFIG.as_bytes()).unwrap();
        assert_eq!(info.server, "https://10.0.0.10:6443");
        assert_eq!(info.auth, Auth::Token);
    }

    #[test]
    fn a_cert_kubeconfig_is_valid() {
        let k = TOKEN_KUBECONFIG.replace(
            "    token: abc.def",
            "    client-certificate-data: Zm9v\n    client-key-data: YmFy",
        );
        assert_eq!(validate(k.as_bytes()).unwrap().auth, Auth::ClientCertificate);
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
            (TOKEN_KUBECONFIG.replace("Zm9vYmFy", "\"%%%\""), "base64"),
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
                TOKEN_KUBECONFIG.replace("token: abc.def", "client-certificate-data: Zm9v"),
                "only one",
            ),
            (TOKEN_KUBECONFIG.replace("token: abc.def", "username: x"), "neither"),
            (
                TOKEN_KUBECONFIG.replace("    user: magnum\ncurrent", "    user: nobody\ncurrent"),
                "not in users",
            ),
        ];
        for (text, want) in cases {
            let e = validate(text.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{e:?} does not say {want:?}");
            assert!(!e.contains("abc.def"), "message leaks the token: {e}");
        }
    }

    #[test]
    fn oversized_and_binary_input_is_refused() {
        let mut big = TOKEN_KUBECONFIG.as_bytes().to_vec();
        big.resize(MAX_BYTES + 1, b' ');
        assert!(validate(&big).unwrap_err().contains("1 MiB"));
        assert!(validate(&[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn yaml_bombs_do_not_explode() {
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        assert!(validate(bomb.as_bytes()).is_err());
        let deep = "[".repeat(100_000);
        assert!(validate(deep.as_bytes()).is_err());
    }
}
