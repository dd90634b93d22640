//! Keystone v3, the service catalog, and the few Magnum, Glance, Nova and
//! Neutron calls the smoketest makes, over ureq + rustls (a custom CA from
//! the credentials secret is supported). Re-authenticates once on a 401, as
//! keystoneauth does. Tokens and secrets never appear in an error.

use std::cell::RefCell;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use ureq::tls::{parse_pem, Certificate, PemItem, RootCerts, TlsConfig};

use crate::plan::credentials::{Credentials, Method};

struct Token {
    value: String,
    catalog: Value,
}

pub struct OpenStack {
    agent: ureq::Agent,
    creds: Credentials,
    token: RefCell<Option<Token>>,
}

impl OpenStack {
    /// How these credentials authenticate.
    pub fn method(&self) -> &crate::plan::credentials::Method {
        &self.creds.method
    }
}

/// An HTTP answer: status and JSON body (Null when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Magnum's `{"errors": [{"title", "detail"}]}`, or a generic line.
    pub fn error_text(&self) -> String {
        let e = &self.body["errors"][0];
        match (e["title"].as_str(), e["detail"].as_str()) {
            (Some(t), Some(d)) => format!("HTTP {}: {t}: {d}", self.status),
            (Some(t), None) => format!("HTTP {}: {t}", self.status),
            _ => match self.body["error"]["message"]
                .as_str()
                .or(self.body["NeutronError"]["message"].as_str())
                .or(self.body["itemNotFound"]["message"].as_str())
            {
                Some(m) => format!("HTTP {}: {m}", self.status),
                None => format!("HTTP {}", self.status),
            },
        }
    }
}

impl OpenStack {
    pub fn new(creds: Credentials, timeout: Duration) -> Result<OpenStack> {
        let mut tls = TlsConfig::builder();
        if let Some(pem) = &creds.ca_cert_pem {
            let certs: Vec<Certificate<'static>> = parse_pem(pem.as_bytes())
                .filter_map(|i| match i {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                bail!("ca-cert in the OpenStack credentials holds no certificate");
            }
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(OpenStack {
            agent,
            creds,
            token: RefCell::new(None),
        })
    }

    fn redact(&self, text: &str) -> String {
        let mut t = text.to_string();
        if let Some(tok) = self.token.borrow().as_ref() {
            t = t.replace(&tok.value, "<token>");
        }
        match &self.creds.method {
            Method::ApplicationCredential { secret, .. } => t.replace(secret.as_str(), "<secret>"),
            Method::Password { password, .. } => t.replace(password.as_str(), "<secret>"),
        }
    }

    /// Keystone v3 token with the catalog.
    pub fn authenticate(&self) -> Result<()> {
        let identity = match &self.creds.method {
            Method::ApplicationCredential { id, secret } => {
                json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": secret}}}})
            }
            Method::Password {
                username,
                password,
                project_name,
                user_domain_name,
                project_domain_name,
            } => json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {"name": username, "domain": {"name": user_domain_name}, "password": password}}},
                // An application credential is already scoped: only a
                // password auth sends a scope (Keystone answers 401 else).
                "scope": {"project": {"name": project_name, "domain": {"name": project_domain_name}}}
            }}),
        };
        let base = self.creds.auth_url.trim_end_matches('/');
        let url = if base.ends_with("/v3") {
            format!("{base}/auth/tokens")
        } else {
            format!("{base}/v3/auth/tokens")
        };
        let mut resp = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(identity.to_string())
            .map_err(|e| anyhow!("Keystone at {url}: {}", self.redact(&e.to_string())))?;
        let status = resp.status().as_u16();
        let token = resp
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
        match (status, token) {
            (201, Some(value)) => {
                *self.token.borrow_mut() = Some(Token {
                    value,
                    catalog: body["token"]["catalog"].clone(),
                });
                Ok(())
            }
            (401, _) => bail!("Keystone refused the credentials (HTTP 401): check openstack-credentials-secret"),
            (s, _) => bail!("Keystone at {url} answered HTTP {s}"),
        }
    }

    /// The endpoint of a service type for the configured interface/region.
    pub fn endpoint(&self, service_type: &str) -> Result<String> {
        let token = self.token.borrow();
        let catalog = &token.as_ref().context("not authenticated")?.catalog;
        let service = catalog
            .as_array()
            .and_then(|a| a.iter().find(|s| s["type"] == service_type))
            .with_context(|| format!("the service catalog has no {service_type} service"))?;
        let ep = service["endpoints"]
            .as_array()
            .and_then(|eps| {
                eps.iter().find(|e| {
                    e["interface"] == self.creds.interface.as_str()
                        && self
                            .creds
                            .region_name
                            .as_ref()
                            .is_none_or(|r| e["region"] == r.as_str() || e["region_id"] == r.as_str())
                })
            })
            .with_context(|| {
                format!(
                    "no {} endpoint for {service_type}{}",
                    self.creds.interface,
                    self.creds
                        .region_name
                        .as_ref()
                        .map(|r| format!(" in {r}"))
                        .unwrap_or_default()
                )
            })?;
        Ok(ep["url"]
            .as_str()
            .context("endpoint without url")?
            .trim_end_matches('/')
            .to_string())
    }

    /// A request to a service; re-authenticates once on 401.
    pub fn call(&self, method: &str, service_type: &str, path: &str, body: Option<&Value>) -> Result<Answer> {
        if self.token.borrow().is_none() {
            self.authenticate()?;
        }
        for attempt in 0..2 {
            let url = format!("{}{path}", self.endpoint(service_type)?);
            let token = self
                .token
                .borrow()
                .as_ref()
                .map(|t| t.value.clone())
                .unwrap_or_default();
            let result = match (method, body) {
                ("GET", _) => self
                    .agent
                    .get(&url)
                    .header("X-Auth-Token", &token)
                    .header("OpenStack-API-Version", "container-infra latest")
                    .header("Accept", "application/json")
                    .call(),
                ("DELETE", _) => self
                    .agent
                    .delete(&url)
                    .header("X-Auth-Token", &token)
                    .header("OpenStack-API-Version", "container-infra latest")
                    .call(),
                (_, b) => {
                    let req = if method == "PATCH" {
                        self.agent.patch(&url)
                    } else {
                        self.agent.post(&url)
                    };
                    req.header("X-Auth-Token", &token)
                        .header("OpenStack-API-Version", "container-infra latest")
                        .header("Content-Type", "application/json")
                        .header("Accept", "application/json")
                        .send(b.cloned().unwrap_or(Value::Null).to_string())
                }
            };
            let mut resp = result.map_err(|e| anyhow!("{method} {url}: {}", self.redact(&e.to_string())))?;
            let status = resp.status().as_u16();
            if status == 401 && attempt == 0 {
                // The token expired: one fresh one, as keystoneauth does.
                self.authenticate()?;
                continue;
            }
            let text = resp
                .body_mut()
                .with_config()
                .limit(8 * 1024 * 1024)
                .read_to_string()
                .unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Ok(Answer { status, body });
        }
        unreachable!("the loop returns on its second pass")
    }

    fn get_ok(&self, service: &str, path: &str) -> Result<Value> {
        let a = self.call("GET", service, path, None)?;
        if !a.ok() {
            bail!("GET {service} {path}: {}", self.redact(&a.error_text()));
        }
        Ok(a.body)
    }

    /// Glance image by name or id, with its properties (top-level keys).
    pub fn image(&self, name_or_id: &str) -> Result<Option<Value>> {
        let by_id = self.call("GET", "image", &format!("/v2/images/{}", enc(name_or_id)), None)?;
        if by_id.ok() {
            return Ok(Some(by_id.body));
        }
        let list = self.get_ok("image", &format!("/v2/images?name={}", enc(name_or_id)))?;
        Ok(list["images"].as_array().and_then(|a| a.first()).cloned())
    }

    pub fn flavor(&self, name_or_id: &str) -> Result<Option<Value>> {
        let list = self.get_ok("compute", "/flavors/detail")?;
        Ok(list["flavors"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == name_or_id || f["id"] == name_or_id))
            .cloned())
    }

    pub fn keypair_exists(&self, name: &str) -> Result<bool> {
        let a = self.call("GET", "compute", &format!("/os-keypairs/{}", enc(name)), None)?;
        match a.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => bail!("GET keypair {name}: {}", self.redact(&a.error_text())),
        }
    }

    pub fn network(&self, name_or_id: &str) -> Result<Option<Value>> {
        let list = self.get_ok("network", &format!("/v2.0/networks?name={}", enc(name_or_id)))?;
        if let Some(n) = list["networks"].as_array().and_then(|a| a.first()) {
            return Ok(Some(n.clone()));
        }
        let by_id = self.call("GET", "network", &format!("/v2.0/networks/{}", enc(name_or_id)), None)?;
        Ok(by_id.ok().then(|| by_id.body["network"].clone()))
    }

    pub fn magnum(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer> {
        self.call(method, "container-infra", path, body)
    }

    pub fn magnum_ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let a = self.magnum(method, path, body)?;
        if !a.ok() {
            bail!("{method} magnum {path}: {}", self.redact(&a.error_text()));
        }
        Ok(a.body)
    }
}

/// Percent-encode a path or query component.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
