//! GETs to the management cluster's API with the kubeconfig's CA and client
//! certificate or bearer token, bounded by a timeout. Error texts name the
//! server and the failure, never a credential.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ureq::tls::{parse_pem, Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::plan::kubeconfig::KubeTarget;

pub struct Kube {
    agent: ureq::Agent,
    target: KubeTarget,
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<Certificate<'static>>> {
    let certs: Vec<Certificate<'static>> = parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| anyhow!("kubeconfig {what} is not PEM: {e}"))?;
    if certs.is_empty() {
        bail!("kubeconfig {what} holds no certificate");
    }
    Ok(certs)
}

impl Kube {
    pub fn new(target: KubeTarget, timeout: Duration) -> Result<Kube> {
        let mut tls = TlsConfig::builder();
        if let Some(ca) = &target.ca_pem {
            tls = tls.root_certs(RootCerts::new_with_certs(&certs(ca, "certificate-authority-data")?));
        }
        if let (Some(cert), Some(key)) = (&target.client_cert_pem, &target.client_key_pem) {
            let chain = certs(cert, "client-certificate-data")?;
            let key =
                PrivateKey::from_pem(key).map_err(|e| anyhow!("kubeconfig client-key-data is not a PEM key: {e}"))?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        if target.insecure_skip_tls_verify {
            tls = tls.disable_verification(true);
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        Ok(Kube { agent, target })
    }

    /// GET `path`: status and body (capped at 1 MiB).
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        let url = format!("{}{path}", self.target.server.trim_end_matches('/'));
        let mut req = self.agent.get(&url).header("Accept", "application/json");
        if let Some(token) = &self.target.token {
            req = req.header("Authorization", &format!("Bearer {token}"));
        }
        let mut resp = req
            .call()
            .map_err(|e| anyhow!("{}", redact(&e.to_string(), &self.target)))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .with_context(|| format!("reading the answer of GET {url}"))?;
        Ok((status, body))
    }
}

/// Keep a token out of any error text.
fn redact(text: &str, target: &KubeTarget) -> String {
    match &target.token {
        Some(t) if !t.is_empty() => text.replace(t.as_str(), "<redacted>"),
        _ => text.to_string(),
    }
}
