//! A small Kubernetes API over real TLS on 127.0.0.1, for verify's
//! management-cluster checks: a CA, a server certificate for 127.0.0.1 and
//! a client certificate made at test time; the server demands a client
//! certificate signed by the CA, or a bearer token. It answers `/version`
//! and `/apis/cluster.x-k8s.io` as a cluster with Cluster API does. The same
//! server is queried by Debian's real `kubectl` in a test, so both this
//! fake and the charm's TLS handling are checked against the real client.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::http::{self, Request, Response, Server};

/// base64 (standard, padded) for kubeconfig `*-data` fields.
pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    ca_der: Vec<u8>,
    server_der: Vec<u8>,
    server_key_der: Vec<u8>,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1, and a client certificate
    /// (CN=magnum) valid until `client_not_after` (year, month, day).
    pub fn new(client_not_after: (i32, u8, u8)) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "test-kubernetes-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        server_params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params.distinguished_name.push(DnType::CommonName, "magnum");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.not_before = date_time_ymd(2020, 1, 1);
        client_params.not_after = date_time_ymd(client_not_after.0, client_not_after.1, client_not_after.2);
        let client = client_params.signed_by(&client_key, &issuer).unwrap();

        Pki {
            ca_pem: ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
            ca_der: ca.der().to_vec(),
            server_der: server.der().to_vec(),
            server_key_der: server_key.serialize_der(),
        }
    }
}

/// An APIGroup discovery document (GET /apis/<group>), as the Kubernetes
/// API server writes one: every served version, the first preferred.
fn group(name: &str, versions: &[&str]) -> String {
    let v: Vec<String> = versions
        .iter()
        .map(|v| format!(r#"{{"groupVersion":"{name}/{v}","version":"{v}"}}"#))
        .collect();
    format!(
        r#"{{"kind":"APIGroup","apiVersion":"v1","name":"{name}","versions":[{}],"preferredVersion":{}}}"#,
        v.join(","),
        v[0]
    )
}

/// How the API answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Kubernetes with Cluster API and a CAPO of today (0.11+):
    /// infrastructure.cluster.x-k8s.io serves v1beta1 (OpenStackCluster)
    /// and v1alpha1 (OpenStackServer), no v1alpha6.
    Capo,
    /// A CAPO before 0.11, still serving the deprecated v1alpha6 and
    /// v1alpha7 beside v1beta1.
    OldCapo,
    /// Kubernetes without Cluster API: /apis/cluster.x-k8s.io is 404.
    Bare,
}

pub struct KubeServer {
    pub port: u16,
    pub pki: Arc<Pki>,
    pub token: String,
    pub requests: Arc<AtomicUsize>,
    server: Server,
}

impl KubeServer {
    pub fn start(pki: Pki, api: Api) -> KubeServer {
        let pki = Arc::new(pki);
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(pki.ca_der.clone())).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // A client certificate is optional at the TLS layer (a token client
        // sends none) but, when sent, must chain to the CA.
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .unwrap();
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(pki.server_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key_der.clone())),
            )
            .unwrap();
        let config = Arc::new(config);
        let requests = Arc::new(AtomicUsize::new(0));
        let token = "test-token-canary-7f3a".to_string();
        // A connection is kept until the client closes it (or 10 s idle),
        // `Connection: close` or not.
        let options = http::Options::tls(config, Duration::from_secs(10));
        let server = {
            let (requests, token) = (requests.clone(), token.clone());
            Server::start("127.0.0.1:0", options, move |req: &Request| {
                answer(req, api, &requests, &token)
            })
            .unwrap()
        };
        KubeServer {
            port: server.port(),
            pki,
            token,
            requests,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig authenticating with the client certificate.
    pub fn cert_kubeconfig(&self) -> String {
        self.kubeconfig(&format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(self.pki.client_cert_pem.as_bytes()),
            b64(self.pki.client_key_pem.as_bytes())
        ))
    }

    /// A service-account style kubeconfig with a bearer token.
    pub fn token_kubeconfig(&self) -> String {
        self.kubeconfig(&format!("    token: {}\n", self.token))
    }

    fn kubeconfig(&self, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mgmt\n  cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: magnum@mgmt\n  context:\n    cluster: mgmt\n    user: magnum\ncurrent-context: magnum@mgmt\nusers:\n- name: magnum\n  user:\n{user}",
            self.url(),
            b64(self.pki.ca_pem.as_bytes())
        )
    }
}

/// The answer to one request: 401 without a client certificate or the
/// bearer token, else what `api` serves.
fn answer(req: &Request, api: Api, requests: &AtomicUsize, token: &str) -> Response {
    requests.fetch_add(1, Ordering::SeqCst);
    let has_token = req.header("authorization") == Some(&format!("Bearer {token}"));
    let (status, body) = if !req.client_cert && !has_token {
        (401, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#.to_string())
    } else {
        match (req.path.as_str(), api) {
            ("/version", _) => (200, r#"{"major":"1","minor":"30","gitVersion":"v1.30.4","gitCommit":"a51b3b711150f57ffc1f526a640ec058514ed596","gitTreeState":"clean","buildDate":"2024-08-14T19:04:39Z","goVersion":"go1.22.5","compiler":"gc","platform":"linux/amd64"}"#.to_string()),
            ("/apis/cluster.x-k8s.io", Api::Capo | Api::OldCapo) => (200, group("cluster.x-k8s.io", &["v1beta1"])),
            ("/apis/controlplane.cluster.x-k8s.io", Api::Capo | Api::OldCapo) => (200, group("controlplane.cluster.x-k8s.io", &["v1beta1"])),
            ("/apis/infrastructure.cluster.x-k8s.io", Api::Capo) => (200, group("infrastructure.cluster.x-k8s.io", &["v1beta1", "v1alpha1"])),
            ("/apis/infrastructure.cluster.x-k8s.io", Api::OldCapo) => (200, group("infrastructure.cluster.x-k8s.io", &["v1beta1", "v1alpha7", "v1alpha6"])),
            _ => (404, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#.to_string()),
        }
    };
    Response::text(status, "application/json", &body)
}
