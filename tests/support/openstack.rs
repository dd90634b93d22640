//! A fake OpenStack cloud in the test process: Keystone v3, Glance v2, Nova
//! v2.1, Neutron v2.0 and Magnum v1 over HTTP/1.1 (or HTTPS with a cloud CA
//! made at test time) on 127.0.0.1, plus one small Kubernetes API over TLS
//! per created cluster. It answers as the real services do (paths, status
//! codes, JSON shapes, headers, error bodies: read from keystone, magnum
//! 18.0.1, magnum-capi-helm 1.1.0, python-magnumclient 5.0.0 and
//! keystoneauth1), and tests/openstack_fake.rs runs the REAL `openstack`
//! CLI (python-openstackclient 10.5.0 + python-magnumclient 5.0.0) and the
//! real `kubectl` against it, so the fake cannot drift into a dialect only
//! our own client speaks.
//!
//! Clusters move through a state machine driven by GETs of the cluster
//! (`GET /magnum/v1/clusters/<uuid or name>`), never by the wall clock, so
//! tests need no sleeps:
//!
//! ```ignore
//! let cloud = FakeOpenStack::start(Scenario::default().create(Create::Complete { in_progress: 2 }));
//! // ... run the smoketest action with cloud.auth_url() and cloud.credentials() ...
//! assert!(cloud.clusters().is_empty() && cloud.templates().is_empty());
//! assert_eq!(cloud.count("DELETE", "/magnum/v1/clusters/"), 1);
//! ```
//!
//! Only `GET /magnum/v1/clusters/<ident>` advances a cluster (a list
//! does not): a client waits for a delete by GETting the cluster until it
//! answers 404. `api_address` shows from the 2nd GET on, before
//! CREATE_COMPLETE, as the capi-helm driver does. A faulted GET (see
//! `Fault`) does not advance the machine. Everything is in-memory and
//! per `FakeOpenStack`; dropping it stops its listeners.
//!
//! What the fake models, and how:
//! - Keystone: `POST /identity/v3/auth/tokens`, methods `application_credential`
//!   (id + secret, or name + secret + user) and `password` (user by name and
//!   domain, or id). 201, `X-Subject-Token`, a token body with a catalog of
//!   identity, container-infra, image, compute and network, each with
//!   public, internal and admin endpoints in one region. Internal endpoints
//!   live under `/internal/...`, admin under `/admin/...`, so the request
//!   log shows which interface a client used. Wrong credentials: 401. An
//!   application credential with a `scope`: 401 "Application credentials
//!   cannot request a scope." A password auth without a scope gets an
//!   unscoped token: no project, NO catalog (as Keystone does).
//! - Every service checks `X-Auth-Token` as keystonemiddleware does (401,
//!   `{"error": {...}}`, `WWW-Authenticate`).
//! - Magnum answers with microversion headers (`OpenStack-API-Version:
//!   container-infra 1.11` for `latest`; 1.1 when the request names none;
//!   406 for a version out of range) and errors as
//!   `{"errors": [{"request_id", "code", "status", "title", "detail", "links"}]}`
//!   where `title` is the message up to its first `.`.
//! - Template create runs magnum's checks in magnum's order: the driver
//!   lookup first (an image that is missing or has no supported `os_distro`
//!   is "Cluster type (vm, None, kubernetes) not supported.", 400), then
//!   flavors, external network, image. Cluster create checks the template
//!   (404), flavors, keypair (404), `master_count > 1` without a load
//!   balancer (400), the name pattern (400). The driver's own checks
//!   (image `kube_version`, flavor RAM/vCPUs against `minimum_flavor_*`) fail
//!   the cluster asynchronously: CREATE_FAILED with the driver's message.
//! - Template delete while a cluster (in any state, until it is gone) uses
//!   the template: 400 ClusterTemplateReferenced. (The real CLI prints this
//!   and still exits 0.)
//! - Certificates: `GET /magnum/v1/certificates/<cluster>` gives the
//!   cluster's CA; `POST /magnum/v1/certificates {"cluster_uuid", "csr"}`
//!   signs the CSR (RSA, ECDSA P-256/P-384 or Ed25519; its self-signature is
//!   checked) with that CA, keeping the CSR's CN and O. The cluster's
//!   Kubernetes API (`api_address`, `https://127.0.0.1:<port>`) serves
//!   `/api/v1/nodes` with `master_count + node_count` nodes to a client
//!   certificate signed by that CA, and what kubectl needs for discovery.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData, SanType, SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use serde_json::{json, Map, Value};

/// Magnum's microversion range (magnum 18, OpenStack 2024.1).
pub const MAGNUM_MIN_VERSION: &str = "1.1";
pub const MAGNUM_MAX_VERSION: &str = "1.11";
/// Nova's microversion range (2024.1).
pub const NOVA_MAX_VERSION: &str = "2.96";

// ---------------------------------------------------------------------------
// The scenario: what the cloud holds and how it behaves.
// ---------------------------------------------------------------------------

/// The credentials Keystone accepts.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub application_credential_id: String,
    pub application_credential_name: String,
    pub application_credential_secret: String,
    pub user_id: String,
    pub username: String,
    pub password: String,
    pub user_domain_name: String,
    pub user_domain_id: String,
    pub project_id: String,
    pub project_name: String,
    pub project_domain_name: String,
    pub project_domain_id: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            application_credential_id: "4a0f8bd1a3b84c0f9d1a5e7c2b6d8e01".into(),
            application_credential_name: "magnum-capi".into(),
            application_credential_secret: "app-cred-secret-canary-5c1e".into(),
            user_id: "9b3a6f2c1d8e4f7a8b0c2d4e6f8a0b1c".into(),
            username: "demo".into(),
            password: "password-canary-77d2".into(),
            user_domain_name: "Default".into(),
            user_domain_id: "default".into(),
            project_id: "5e2b7c9d0a1f4e3b8c6d2a4f0e9b7c1d".into(),
            project_name: "demo".into(),
            project_domain_name: "Default".into(),
            project_domain_id: "default".into(),
        }
    }
}

/// A Glance image. `properties` become top-level keys of the image JSON, as
/// Glance v2 shows them (os_distro, kube_version, magnum_driver, ...).
#[derive(Clone, Debug)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub status: String,
    pub properties: BTreeMap<String, String>,
}

impl Image {
    pub fn new(name: &str, properties: &[(&str, &str)]) -> Image {
        Image {
            id: uuid4(),
            name: name.into(),
            status: "active".into(),
            properties: properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }
}

/// A Nova flavor (RAM in MiB, disk in GiB).
#[derive(Clone, Debug)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub ram: u64,
    pub vcpus: u64,
    pub disk: u64,
}

impl Flavor {
    pub fn new(name: &str, ram: u64, vcpus: u64, disk: u64) -> Flavor {
        Flavor {
            id: uuid4(),
            name: name.into(),
            ram,
            vcpus,
            disk,
        }
    }
}

/// A Neutron network.
#[derive(Clone, Debug)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub external: bool,
}

impl Network {
    pub fn new(name: &str, external: bool) -> Network {
        Network {
            id: uuid4(),
            name: name.into(),
            external,
        }
    }
}

/// How a cluster create ends. `in_progress` counts the GETs of the cluster
/// that answer CREATE_IN_PROGRESS; the next GET shows the outcome.
#[derive(Clone, Debug)]
pub enum Create {
    Complete {
        in_progress: u32,
    },
    Fail {
        in_progress: u32,
        reason: String,
    },
    /// CREATE_IN_PROGRESS forever (for timeouts).
    Never,
}

/// How a cluster delete ends. After a DELETE (204), `in_progress` GETs
/// answer DELETE_IN_PROGRESS; then the cluster is gone (that GET is a 404)
/// or, for `Fail`, the first `times` DELETEs end in DELETE_FAILED with
/// `reason` (shown from that GET on) and the next DELETE completes.
#[derive(Clone, Debug)]
pub enum Delete {
    Complete {
        in_progress: u32,
    },
    Fail {
        in_progress: u32,
        times: u32,
        reason: String,
    },
    /// DELETE_IN_PROGRESS forever.
    Never,
}

/// A fault injected at the Nth GET of a cluster (counting every GET of that
/// cluster by uuid or name from 1, through create and delete). A faulted
/// GET does not advance the state machine.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Magnum itself fails: that status with magnum's JSON error body.
    ServerError(u16),
    /// A load balancer in front of magnum fails: that status with an HTML
    /// body (HAProxy's), not JSON.
    GatewayHtml(u16),
    /// The token used for that GET is revoked: 401 as keystonemiddleware
    /// answers. A client that re-authenticates once carries on.
    Unauthorized,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub credentials: Credentials,
    pub region: String,
    /// Serve the cloud over HTTPS with a CA made at start (see `ca_pem`).
    pub tls: bool,
    pub images: Vec<Image>,
    pub flavors: Vec<Flavor>,
    pub keypairs: Vec<String>,
    pub networks: Vec<Network>,
    /// The `os_distro` values an installed magnum driver supports
    /// (magnum-capi-helm: ubuntu and flatcar).
    pub supported_distros: Vec<String>,
    /// `[capi_helm] minimum_flavor_ram` / `minimum_flavor_vcpus` as the
    /// driver applies them at cluster create.
    pub minimum_flavor_ram: u64,
    pub minimum_flavor_vcpus: u64,
    pub create: Create,
    pub delete: Delete,
    /// (n, fault): the nth GET of a cluster answers with the fault.
    pub faults: Vec<(u32, Fault)>,
    /// The nth service request (from 1) carrying the FIRST token Keystone
    /// issues answers 401, as do later uses of that token; tokens issued
    /// after it never expire. Forces exactly one re-authentication.
    pub expire_token_at: Option<u32>,
    /// How many of a cluster's nodes report Ready (None: all of them).
    pub ready_nodes: Option<u32>,
    /// Templates present before the test (left over from an earlier run),
    /// using the first image, flavor, keypair and external network.
    pub leftover_templates: Vec<String>,
    /// Clusters present before the test, CREATE_COMPLETE, each on a
    /// template of its own (`<name>-template`).
    pub leftover_clusters: Vec<String>,
    /// Tokens from a REAL Keystone (tests/fakes/fake_cloud.rs): a token the
    /// fake did not issue is accepted when this says it is valid, as
    /// keystonemiddleware accepts it after Keystone's `GET /v3/auth/tokens`
    /// (keystonemiddleware/auth_token/_identity.py verify_token) answers
    /// 200. None: only the fake's own tokens.
    pub external_tokens: Option<fn(&str) -> bool>,
}

impl Default for Scenario {
    /// A healthy cloud ready for the runbook's smoketest: an Ubuntu image
    /// with `os_distro` and `kube_version`, a big enough flavor and a small
    /// one, keypair `mykey`, external network `public`, private network
    /// `private`; clusters complete after 2 in-progress polls; deletes
    /// after 1.
    fn default() -> Self {
        Scenario {
            credentials: Credentials::default(),
            region: "RegionOne".into(),
            tls: false,
            images: vec![
                Image::new(
                    "ubuntu-jammy-kube-v1.30.4",
                    &[
                        ("os_distro", "ubuntu"),
                        ("os_version", "22.04"),
                        ("kube_version", "v1.30.4"),
                    ],
                ),
                Image::new(
                    "ubuntu-kube-tag-only",
                    &[("os_distro", "ubuntu"), ("kube_tag", "v1.30.4")],
                ),
                Image::new("cirros-0.6.2", &[]),
            ],
            flavors: vec![
                Flavor::new("m1.small", 2048, 1, 20),
                Flavor::new("m1.medium", 4096, 2, 40),
                Flavor::new("ds4G", 4096, 4, 40),
            ],
            keypairs: vec!["mykey".into()],
            networks: vec![Network::new("public", true), Network::new("private", false)],
            supported_distros: vec!["ubuntu".into(), "flatcar".into()],
            minimum_flavor_ram: 2048,
            minimum_flavor_vcpus: 2,
            create: Create::Complete { in_progress: 2 },
            delete: Delete::Complete { in_progress: 1 },
            faults: Vec::new(),
            expire_token_at: None,
            ready_nodes: None,
            leftover_templates: Vec::new(),
            leftover_clusters: Vec::new(),
            external_tokens: None,
        }
    }
}

impl Scenario {
    pub fn create(mut self, create: Create) -> Self {
        self.create = create;
        self
    }
    pub fn delete(mut self, delete: Delete) -> Self {
        self.delete = delete;
        self
    }
    pub fn fault_at_poll(mut self, n: u32, fault: Fault) -> Self {
        self.faults.push((n, fault));
        self
    }
    pub fn expire_token_at(mut self, n: u32) -> Self {
        self.expire_token_at = Some(n);
        self
    }
    pub fn ready_nodes(mut self, n: u32) -> Self {
        self.ready_nodes = Some(n);
        self
    }
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }
    pub fn image(mut self, image: Image) -> Self {
        self.images.push(image);
        self
    }
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavors.push(flavor);
        self
    }
    pub fn without_image(mut self, name: &str) -> Self {
        self.images.retain(|i| i.name != name);
        self
    }
    pub fn without_keypairs(mut self) -> Self {
        self.keypairs.clear();
        self
    }
    pub fn without_external_networks(mut self) -> Self {
        self.networks.retain(|n| !n.external);
        self
    }
    pub fn leftover_template(mut self, name: &str) -> Self {
        self.leftover_templates.push(name.into());
        self
    }
    pub fn leftover_cluster(mut self, name: &str) -> Self {
        self.leftover_clusters.push(name.into());
        self
    }
}

// ---------------------------------------------------------------------------
// The request log.
// ---------------------------------------------------------------------------

/// One request as the fake saw it, with the status it answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path as sent, query string included (`/magnum/v1/clusters/x`,
    /// `/internal/image/v2/images?name=y`).
    pub path: String,
    /// "identity", "container-infra", "image", "compute", "network",
    /// or "unknown".
    pub service: &'static str,
    /// "public", "internal" or "admin": which catalog endpoint was used.
    pub interface: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
}

impl Request {
    /// A request header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string and the interface prefix.
    pub fn route(&self) -> &str {
        let p = self.path.split('?').next().unwrap_or("");
        p.strip_prefix("/internal")
            .or_else(|| p.strip_prefix("/admin"))
            .unwrap_or(p)
    }
}

// ---------------------------------------------------------------------------
// State.
// ---------------------------------------------------------------------------

struct Token {
    scoped: bool,
    valid: bool,
    /// Service requests made with it.
    uses: u32,
    first: bool,
}

struct ClusterCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: Vec<u8>,
}

enum Phase {
    Creating { left: Option<u32>, outcome: Create },
    Created,
    Deleting { left: Option<u32>, fail: Option<String> },
    DeleteFailed,
}

struct Cluster {
    json: Map<String, Value>,
    phase: Phase,
    gets: u32,
    delete_failures_left: u32,
    ca: ClusterCa,
    kube: Option<KubeApi>,
}

impl Cluster {
    fn uuid(&self) -> &str {
        self.json["uuid"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.json["name"].as_str().unwrap_or("")
    }
    fn set_status(&mut self, status: &str, reason: Option<&str>) {
        self.json.insert("status".into(), json!(status));
        self.json.insert("status_reason".into(), json!(reason));
        self.json.insert("updated_at".into(), json!(magnum_time()));
    }
}

struct State {
    scenario: Scenario,
    base: String,
    tokens: BTreeMap<String, Token>,
    tokens_issued: Vec<String>,
    templates: Vec<Map<String, Value>>,
    clusters: Vec<Cluster>,
    requests: Vec<Request>,
    credentials_revoked: bool,
    /// The base URL plus the interface prefix of the request being
    /// answered: version documents point back where the client came from.
    root: String,
}

// ---------------------------------------------------------------------------
// The server.
// ---------------------------------------------------------------------------

pub struct FakeOpenStack {
    port: u16,
    scheme: &'static str,
    ca_pem: Option<String>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeOpenStack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        // Stop every cluster's Kubernetes API.
        lock(&self.state).clusters.clear();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeOpenStack {
    pub fn start(scenario: Scenario) -> FakeOpenStack {
        FakeOpenStack::start_on(scenario, "127.0.0.1:0")
    }

    /// `start` on a given address (`127.0.0.1:0`: any free port).
    pub fn start_on(scenario: Scenario, addr: &str) -> FakeOpenStack {
        let listener = TcpListener::bind(addr).expect("bind the fake OpenStack");
        let port = listener.local_addr().unwrap().port();
        let scheme = if scenario.tls { "https" } else { "http" };
        let base = format!("{scheme}://127.0.0.1:{port}");
        let tls = scenario.tls.then(|| Pki::server("fake-openstack-ca"));
        let ca_pem = tls.as_ref().map(|p| p.ca_pem.clone());
        let tls_config = tls.map(|p| p.server_config(None));

        let mut state = State {
            scenario: scenario.clone(),
            base,
            tokens: BTreeMap::new(),
            tokens_issued: Vec::new(),
            templates: Vec::new(),
            clusters: Vec::new(),
            requests: Vec::new(),
            credentials_revoked: false,
            root: String::new(),
        };
        seed_leftovers(&mut state);
        let state = Arc::new(Mutex::new(state));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (state, tls_config) = (state.clone(), tls_config.clone());
                    std::thread::spawn(move || {
                        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                        match tls_config {
                            Some(config) => {
                                let Ok(conn) = ServerConnection::new(config) else {
                                    return;
                                };
                                let _ = serve_http(StreamOwned::new(conn, stream), &state);
                            }
                            None => {
                                let _ = serve_http(stream, &state);
                            }
                        }
                    });
                }
            });
        }
        FakeOpenStack {
            port,
            scheme,
            ca_pem,
            state,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT` (https with `Scenario::tls`).
    pub fn base_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Keystone v3, as an operator's `auth-url`: `.../identity/v3`.
    pub fn auth_url(&self) -> String {
        format!("{}/identity/v3", self.base_url())
    }

    /// The catalog URL of a service type for an interface (as Keystone lists
    /// it), e.g. `endpoint("container-infra", "public")`.
    pub fn endpoint(&self, service_type: &str, interface: &str) -> String {
        let base = self.base_url();
        endpoint_url(&base, service_type, interface)
    }

    /// The CA that signed the cloud's certificate (`Scenario::tls`).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    pub fn credentials(&self) -> Credentials {
        lock(&self.state).scenario.credentials.clone()
    }

    pub fn region(&self) -> String {
        lock(&self.state).scenario.region.clone()
    }

    /// Templates as `GET /magnum/v1/clustertemplates/<id>` shows them.
    pub fn templates(&self) -> Vec<Value> {
        lock(&self.state)
            .templates
            .iter()
            .map(|t| Value::Object(t.clone()))
            .collect()
    }

    /// Clusters still present (not yet gone), as a GET would show them
    /// (without advancing their state).
    pub fn clusters(&self) -> Vec<Value> {
        lock(&self.state)
            .clusters
            .iter()
            .map(|c| Value::Object(c.json.clone()))
            .collect()
    }

    /// A template by uuid or name.
    pub fn template(&self, ident: &str) -> Option<Value> {
        self.templates()
            .into_iter()
            .find(|t| t["uuid"] == ident || t["name"] == ident)
    }

    /// A cluster by uuid or name.
    pub fn cluster(&self, ident: &str) -> Option<Value> {
        self.clusters()
            .into_iter()
            .find(|c| c["uuid"] == ident || c["name"] == ident)
    }

    /// How many GETs a cluster has had (uuid or name).
    pub fn polls(&self, ident: &str) -> u32 {
        lock(&self.state)
            .clusters
            .iter()
            .find(|c| c.uuid() == ident || c.name() == ident)
            .map_or(0, |c| c.gets)
    }

    /// The cluster's CA certificate (PEM), as the certificates API gives it.
    pub fn cluster_ca_pem(&self, ident: &str) -> Option<String> {
        lock(&self.state)
            .clusters
            .iter()
            .find(|c| c.uuid() == ident || c.name() == ident)
            .map(|c| c.ca.pem.clone())
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }

    /// How many requests had this method and a route (path without query
    /// and interface prefix) starting with `route_prefix`.
    pub fn count(&self, method: &str, route_prefix: &str) -> usize {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.method == method && r.route().starts_with(route_prefix))
            .count()
    }

    /// Successful authentications (tokens issued).
    pub fn auth_count(&self) -> usize {
        lock(&self.state).tokens_issued.len()
    }

    /// Every token issued: a test can assert none of them leaks into output.
    pub fn tokens_issued(&self) -> Vec<String> {
        lock(&self.state).tokens_issued.clone()
    }

    /// From now on Keystone refuses these credentials (401), and every
    /// token issued so far is invalid: as if the application credential
    /// were deleted mid-run.
    pub fn revoke_credentials(&self) {
        let mut s = lock(&self.state);
        s.credentials_revoked = true;
        for t in s.tokens.values_mut() {
            t.valid = false;
        }
    }
}

fn endpoint_url(base: &str, service_type: &str, interface: &str) -> String {
    let prefix = match interface {
        "internal" => "/internal",
        "admin" => "/admin",
        _ => "",
    };
    let path = match service_type {
        "identity" => "/identity",
        "container-infra" => "/magnum/v1",
        "image" => "/image",
        "compute" => "/compute/v2.1",
        "network" => "/network",
        other => panic!("no such service type in the fake catalog: {other}"),
    };
    format!("{base}{prefix}{path}")
}

fn seed_leftovers(state: &mut State) {
    let sc = state.scenario.clone();
    let base = state.base.clone();
    let template = |name: &str| -> Map<String, Value> {
        let image = sc.images.first().map(|i| i.name.clone()).unwrap_or_default();
        let body = json!({
            "name": name, "coe": "kubernetes", "image_id": image,
            "keypair_id": sc.keypairs.first(),
            "external_network_id": sc.networks.iter().find(|n| n.external).map(|n| n.name.clone()),
            "flavor_id": sc.flavors.last().map(|f| f.name.clone()),
            "master_flavor_id": sc.flavors.last().map(|f| f.name.clone()),
            "network_driver": "calico",
        });
        new_template(&base, &sc, body.as_object().unwrap(), "ubuntu")
    };
    for name in &sc.leftover_templates {
        let t = template(name);
        state.templates.push(t);
    }
    for name in &sc.leftover_clusters {
        let t = template(&format!("{name}-template"));
        let tid = t["uuid"].as_str().unwrap().to_string();
        state.templates.push(t.clone());
        let mut c = new_cluster(&state.base, &sc, name, &t, &Map::new());
        c.json.insert("cluster_template_id".into(), json!(tid));
        c.phase = Phase::Created;
        c.set_status("CREATE_COMPLETE", Some("Cluster is ready"));
        let addr = c.kube.as_ref().map(|k| k.url());
        c.json.insert("api_address".into(), json!(addr));
        state.clusters.push(c);
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1 plumbing.
// ---------------------------------------------------------------------------

struct HttpRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap(),
        }
    }
    fn text(status: u16, content_type: &str, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }
    fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    fn with(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        300 => "Multiple Choices",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Reads one request; None at a clean end of the connection. Answers
/// `Expect: 100-continue` (curl sends it for bodies over 1 KiB, a CSR).
fn read_request<S: Read + Write>(reader: &mut BufReader<S>) -> std::io::Result<Option<HttpRequest>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let stream = reader.get_mut();
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        stream.flush()?;
    }
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if size == 0 {
                let mut end = String::new();
                reader.read_line(&mut end)?;
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; len];
        reader.read_exact(&mut body)?;
    }
    Ok(Some(HttpRequest {
        method,
        target,
        headers,
        body,
    }))
}

fn serve_http<S: Read + Write>(mut stream: S, state: &Arc<Mutex<State>>) -> std::io::Result<()> {
    loop {
        let req = {
            let mut reader = BufReader::new(&mut stream);
            let Some(req) = read_request(&mut reader)? else {
                return Ok(());
            };
            req
        };
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let resp = {
            let mut s = lock(state);
            let resp = route(&mut s, &req);
            let (service, interface) = classify(&req.target);
            s.requests.push(Request {
                method: req.method.clone(),
                path: req.target.clone(),
                service,
                interface,
                headers: req.headers.clone(),
                body: String::from_utf8_lossy(&req.body).into_owned(),
                status: resp.status,
            });
            resp
        };
        let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        for (k, v) in &resp.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        head.push_str(&format!("Date: {}\r\n", http_date()));
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(&resp.body)?;
        stream.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn split_interface(path: &str) -> (&'static str, &str) {
    if let Some(rest) = path.strip_prefix("/internal/") {
        ("internal", &path[path.len() - rest.len() - 1..])
    } else if let Some(rest) = path.strip_prefix("/admin/") {
        ("admin", &path[path.len() - rest.len() - 1..])
    } else {
        ("public", path)
    }
}

fn classify(target: &str) -> (&'static str, &'static str) {
    let path = target.split('?').next().unwrap_or("");
    let (interface, path) = split_interface(path);
    let service = match path.split('/').nth(1).unwrap_or("") {
        "identity" => "identity",
        "magnum" => "container-infra",
        "image" => "image",
        "compute" => "compute",
        "network" => "network",
        _ => "unknown",
    };
    (service, interface)
}

/// Decodes a query string into (key, value) pairs.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 3 <= bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// Routing.
// ---------------------------------------------------------------------------

fn route(s: &mut State, req: &HttpRequest) -> Response {
    let (path, query) = req.target.split_once('?').unwrap_or((req.target.as_str(), ""));
    let (interface, path) = split_interface(path);
    s.root = match interface {
        "public" => s.base.clone(),
        other => format!("{}/{other}", s.base),
    };
    let query = query_pairs(query);
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let Some((&service, rest)) = segs.split_first() else {
        return Response::text(404, "text/plain", "404 Not Found");
    };
    let request_id = format!("req-{}", uuid4());
    match service {
        "identity" => keystone(s, req, rest).with("x-openstack-request-id", &request_id),
        "magnum" | "image" | "compute" | "network" | "volume" => {
            // Version documents are public, as on a real cloud.
            if !(rest.is_empty()
                || (service == "magnum" && rest == ["v1"])
                || (service == "compute" && rest == ["v2.1"]))
            {
                if let Err(resp) = check_token(s, req) {
                    return resp.with("x-openstack-request-id", &request_id);
                }
            }
            let resp = match service {
                "magnum" => magnum(s, req, rest, &query),
                "image" => glance(s, req, rest, &query),
                "compute" => nova(s, req, rest, &query),
                "volume" => cinder(req, rest),
                _ => neutron(s, req, rest, &query),
            };
            let id_header = if service == "compute" {
                "x-compute-request-id"
            } else {
                "x-openstack-request-id"
            };
            resp.with(id_header, &request_id)
        }
        _ => Response::text(404, "text/plain", "404 Not Found"),
    }
}

/// Cinder v3, as much as the capi-helm driver reads: the volume types it
/// turns into the cluster's StorageClasses (magnum_capi_helm 1.4.0
/// driver.py `_get_storage_class_info`: cinderclient
/// `volume_types.list()`, i.e. `GET <block-storage endpoint>/types?is_public=None`,
/// the first type when `csi_cinder_default_volume_type` is unset). A
/// Cinder since Train always has `__DEFAULT__` (block-storage API
/// reference, "Volume types": `{"volume_types": [...]}`).
fn cinder(req: &HttpRequest, rest: &[&str]) -> Response {
    match (req.method.as_str(), rest) {
        ("GET", ["v3", "types"]) | ("GET", ["v3", _, "types"]) => Response::json(
            200,
            &json!({"volume_types": [{
                "id": "8d6a3c2e-62b2-4e3f-9e4c-0d2f1a9b5c11",
                "name": "__DEFAULT__",
                "description": "Default Volume Type",
                "is_public": true,
                "os-volume-type-access:is_public": true,
                "extra_specs": {},
                "qos_specs_id": null
            }]}),
        ),
        _ => Response::json(
            404,
            &json!({"itemNotFound": {"code": 404, "message": "The resource could not be found."}}),
        ),
    }
}

fn unauthorized(s: &State) -> Response {
    Response::json(
        401,
        &json!({"error": {"code": 401, "title": "Unauthorized",
            "message": "The request you have made requires authentication."}}),
    )
    .with("WWW-Authenticate", &format!("Keystone uri=\"{}/identity\"", s.base))
}

/// keystonemiddleware's check of X-Auth-Token.
fn check_token(s: &mut State, req: &HttpRequest) -> Result<(), Response> {
    let Some(token) = req.header("x-auth-token").map(str::to_string) else {
        return Err(unauthorized(s));
    };
    let expire_at = s.scenario.expire_token_at;
    if !s.tokens.contains_key(&token) {
        // A real Keystone's token, validated once and then remembered (as
        // keystonemiddleware caches a validated token).
        if let Some(valid) = s.scenario.external_tokens {
            if valid(&token) {
                let t = Token {
                    scoped: true,
                    valid: true,
                    uses: 0,
                    first: false,
                };
                s.tokens.insert(token.clone(), t);
            }
        }
    }
    let Some(t) = s.tokens.get_mut(&token) else {
        return Err(unauthorized(s));
    };
    if !t.valid {
        return Err(unauthorized(s));
    }
    t.uses += 1;
    if t.first && expire_at.is_some_and(|n| t.uses >= n) {
        t.valid = false;
        return Err(unauthorized(s));
    }
    if !t.scoped {
        // An unscoped token reaches no project's resources.
        return Err(Response::json(
            403,
            &json!({"error": {"code": 403, "title": "Forbidden", "message": "Unscoped token"}}),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Keystone.
// ---------------------------------------------------------------------------

fn keystone_error(status: u16, message: &str) -> Response {
    let title = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    Response::json(
        status,
        &json!({"error": {"code": status, "title": title, "message": message}}),
    )
}

fn keystone_version(base: &str) -> Value {
    json!({
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
    })
}

fn keystone(s: &mut State, req: &HttpRequest, rest: &[&str]) -> Response {
    let base = s.root.clone();
    match (req.method.as_str(), rest) {
        ("GET", []) => Response::json(300, &json!({"versions": {"values": [keystone_version(&base)]}})),
        ("GET", ["v3"]) => Response::json(200, &json!({"version": keystone_version(&base)})),
        ("POST", ["v3", "auth", "tokens"]) => issue_token(s, req),
        ("GET", ["v3", "auth", "tokens"]) => {
            let caller_ok = req
                .header("x-auth-token")
                .and_then(|t| s.tokens.get(t))
                .is_some_and(|t| t.valid);
            let subject = req.header("x-subject-token").unwrap_or("").to_string();
            match s.tokens.get(&subject) {
                Some(t) if caller_ok && t.valid => {
                    let scoped = t.scoped;
                    let method = "application_credential";
                    Response::json(200, &token_body(s, method, scoped)).with("X-Subject-Token", &subject)
                }
                _ if !caller_ok => unauthorized(s),
                _ => keystone_error(404, "Could not find token."),
            }
        }
        ("DELETE", ["v3", "auth", "tokens"]) => {
            if let Some(t) = req.header("x-subject-token").and_then(|t| s.tokens.get_mut(t)) {
                t.valid = false;
            }
            Response::empty(204)
        }
        _ => keystone_error(404, "The resource could not be found."),
    }
}

fn issue_token(s: &mut State, req: &HttpRequest) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return keystone_error(400, "Expecting to find auth in request body.");
    };
    let auth = &body["auth"];
    let identity = &auth["identity"];
    let Some(methods) = identity["methods"].as_array() else {
        return keystone_error(
            400,
            "Invalid input for field 'identity': 'methods' is a required property",
        );
    };
    let cred = s.scenario.credentials.clone();
    let has_scope = auth.get("scope").is_some_and(|v| !v.is_null());
    let method = methods.first().and_then(Value::as_str).unwrap_or("");
    let scoped = match method {
        "application_credential" => {
            let ac = &identity["application_credential"];
            let id_ok = ac["id"].as_str() == Some(&cred.application_credential_id)
                || (ac["name"].as_str() == Some(&cred.application_credential_name)
                    && (ac["user"]["id"].as_str() == Some(&cred.user_id)
                        || (ac["user"]["name"].as_str() == Some(&cred.username)
                            && domain_ok(&ac["user"]["domain"], &cred.user_domain_name, &cred.user_domain_id))));
            let secret_ok = ac["secret"].as_str() == Some(&cred.application_credential_secret);
            if !(id_ok && secret_ok) || s.credentials_revoked {
                return unauthorized(s);
            }
            if has_scope {
                return keystone_error(
                    401,
                    "Error authenticating with application credential: Application credentials cannot request a scope.",
                );
            }
            true
        }
        "password" => {
            let user = &identity["password"]["user"];
            let user_ok = user["id"].as_str() == Some(&cred.user_id)
                || (user["name"].as_str() == Some(&cred.username)
                    && domain_ok(&user["domain"], &cred.user_domain_name, &cred.user_domain_id));
            if !user_ok || user["password"].as_str() != Some(&cred.password) || s.credentials_revoked {
                return unauthorized(s);
            }
            if has_scope {
                let project = &auth["scope"]["project"];
                let project_ok = project["id"].as_str() == Some(&cred.project_id)
                    || (project["name"].as_str() == Some(&cred.project_name)
                        && domain_ok(&project["domain"], &cred.project_domain_name, &cred.project_domain_id));
                if !project_ok {
                    return unauthorized(s);
                }
            }
            has_scope
        }
        other => {
            return keystone_error(
                401,
                &format!("Attempted to authenticate with an unsupported method: {other}"),
            );
        }
    };
    let token = fernet_like_token();
    let first = s.tokens_issued.is_empty();
    s.tokens.insert(
        token.clone(),
        Token {
            scoped,
            valid: true,
            uses: 0,
            first,
        },
    );
    s.tokens_issued.push(token.clone());
    Response::json(201, &token_body(s, method, scoped))
        .with("X-Subject-Token", &token)
        .with("Vary", "X-Auth-Token")
}

fn domain_ok(domain: &Value, name: &str, id: &str) -> bool {
    domain["name"].as_str() == Some(name) || domain["id"].as_str() == Some(id)
}

fn token_body(s: &State, method: &str, scoped: bool) -> Value {
    let c = &s.scenario.credentials;
    let now = now_secs();
    let mut token = json!({
        "methods": [method],
        "user": {
            "domain": {"id": c.user_domain_id, "name": c.user_domain_name},
            "id": c.user_id, "name": c.username, "password_expires_at": null
        },
        "audit_ids": [uuid4().replace('-', "")[..22].to_string()],
        "expires_at": iso_time(now + 3600, true),
        "issued_at": iso_time(now, true),
    });
    if scoped {
        let region = &s.scenario.region;
        let catalog: Vec<Value> = [
            ("identity", "keystone"),
            ("container-infra", "magnum"),
            ("image", "glance"),
            ("compute", "nova"),
            ("network", "neutron"),
        ]
        .iter()
        .map(|(ty, name)| {
            let endpoints: Vec<Value> = ["public", "internal", "admin"]
                .iter()
                .map(|i| {
                    json!({"id": uuid4().replace('-', ""), "interface": i, "region_id": region,
                           "region": region, "url": endpoint_url(&s.base, ty, i)})
                })
                .collect();
            json!({"endpoints": endpoints, "id": uuid4().replace('-', ""), "type": ty, "name": name})
        })
        .collect();
        let t = token.as_object_mut().unwrap();
        t.insert(
            "project".into(),
            json!({"domain": {"id": c.project_domain_id, "name": c.project_domain_name},
                   "id": c.project_id, "name": c.project_name}),
        );
        t.insert("is_domain".into(), json!(false));
        t.insert(
            "roles".into(),
            json!([{"id": "8f1a3c5e7b9d4f2a6c8e0b1d3f5a7c9e", "name": "member"},
                   {"id": "1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a", "name": "reader"}]),
        );
        t.insert("catalog".into(), Value::Array(catalog));
        if method == "application_credential" {
            t.insert(
                "application_credential".into(),
                json!({"id": c.application_credential_id, "name": c.application_credential_name, "restricted": true}),
            );
        }
    }
    json!({ "token": token })
}

// ---------------------------------------------------------------------------
// Glance.
// ---------------------------------------------------------------------------

fn image_json(i: &Image) -> Value {
    let mut m = Map::new();
    for (k, v) in &i.properties {
        m.insert(k.clone(), json!(v));
    }
    let fixed = json!({
        "id": i.id, "name": i.name, "status": i.status, "visibility": "public",
        "protected": false, "os_hidden": false, "owner": "b1c3e5a7d9f24b6d8a0c2e4f6b8d0a1c",
        "checksum": "0e3c1a5f7b9d2e4a6c8f0b1d3e5a7c9f", "os_hash_algo": "sha512",
        "os_hash_value": "9".repeat(128), "size": 704_643_072, "virtual_size": 3_758_096_384_u64,
        "min_ram": 0, "min_disk": 0, "disk_format": "qcow2", "container_format": "bare",
        "created_at": "2024-05-02T10:00:00Z", "updated_at": "2024-05-02T10:05:00Z",
        "tags": [], "stores": "file",
        "self": format!("/v2/images/{}", i.id), "file": format!("/v2/images/{}/file", i.id),
        "schema": "/v2/schemas/image"
    });
    for (k, v) in fixed.as_object().unwrap() {
        m.insert(k.clone(), v.clone());
    }
    Value::Object(m)
}

fn image_schema() -> Value {
    let string_or_null = json!(["null", "string"]);
    let integer_or_null = json!(["null", "integer"]);
    let mut properties = Map::new();
    for (name, kind) in [
        ("id", json!("string")),
        ("name", string_or_null.clone()),
        ("status", json!("string")),
        ("visibility", json!("string")),
        ("protected", json!("boolean")),
        ("os_hidden", json!("boolean")),
        ("checksum", string_or_null.clone()),
        ("os_hash_algo", string_or_null.clone()),
        ("os_hash_value", string_or_null.clone()),
        ("owner", string_or_null.clone()),
        ("size", integer_or_null.clone()),
        ("virtual_size", integer_or_null),
        ("container_format", string_or_null.clone()),
        ("disk_format", string_or_null.clone()),
        ("created_at", json!("string")),
        ("updated_at", json!("string")),
        ("tags", json!("array")),
        ("direct_url", json!("string")),
        ("min_ram", json!("integer")),
        ("min_disk", json!("integer")),
        ("self", json!("string")),
        ("file", json!("string")),
        ("stores", json!("string")),
        ("schema", json!("string")),
        ("locations", json!("array")),
        ("kernel_id", string_or_null.clone()),
        ("ramdisk_id", string_or_null),
        ("instance_uuid", json!("string")),
        ("architecture", json!("string")),
        ("os_distro", json!("string")),
        ("os_version", json!("string")),
        ("description", json!("string")),
    ] {
        properties.insert(name.into(), json!({ "type": kind }));
    }
    json!({
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string"},
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                  {"rel": "describedby", "href": "{schema}"}]
    })
}

fn glance(s: &mut State, req: &HttpRequest, rest: &[&str], query: &[(String, String)]) -> Response {
    let base = s.root.clone();
    match (req.method.as_str(), rest) {
        ("GET", []) => Response::json(
            300,
            &json!({"versions": [{"id": "v2.16", "status": "CURRENT",
                "links": [{"rel": "self", "href": format!("{base}/image/v2/")}]}]}),
        ),
        ("GET", ["v2", "images"]) => {
            let images: Vec<Value> = s
                .scenario
                .images
                .iter()
                .map(image_json)
                .filter(|img| {
                    query.iter().all(|(k, v)| {
                        matches!(k.as_str(), "limit" | "marker" | "sort" | "sort_key" | "sort_dir")
                            || img.get(k).is_some_and(|have| match have {
                                Value::String(h) => h == v,
                                other => v.parse::<Value>().ok().as_ref() == Some(other),
                            })
                    })
                })
                .collect();
            let first = if query.is_empty() {
                "/v2/images".to_string()
            } else {
                format!(
                    "/v2/images?{}",
                    query
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("&")
                )
            };
            Response::json(
                200,
                &json!({"images": images, "first": first, "schema": "/v2/schemas/images"}),
            )
        }
        // python-glanceclient builds its image model from this schema
        // before any images call (glanceclient/v2/images.py model ->
        // schemas.get("image")); without it magnum's driver lookup sees no
        // os_distro ("Cluster type (vm, Unset, kubernetes) not supported").
        // The types of Glance 25's base properties (glance/api/v2/images.py
        // get_base_properties, etc/schema-image.json), any other property a
        // string (additionalProperties), as GET /v2/schemas/image answers.
        ("GET", ["v2", "schemas", "image"]) => Response::json(200, &image_schema()),
        ("GET", ["v2", "images", id]) => match s.scenario.images.iter().find(|i| i.id == *id) {
            Some(i) => Response::json(200, &image_json(i)),
            None => Response::text(
                404,
                "text/plain; charset=UTF-8",
                &format!("404 Not Found\n\nNo image found with ID {id}\n\n   "),
            ),
        },
        _ => Response::text(
            404,
            "text/plain; charset=UTF-8",
            "404 Not Found\n\nThe resource could not be found.\n\n   ",
        ),
    }
}

// ---------------------------------------------------------------------------
// Nova.
// ---------------------------------------------------------------------------

fn nova_error(status: u16, key: &str, message: &str) -> Response {
    Response::json(status, &json!({ key: {"code": status, "message": message} }))
}

fn flavor_json(base: &str, f: &Flavor, detail: bool) -> Value {
    let links = json!([
        {"rel": "self", "href": format!("{base}/compute/v2.1/flavors/{}", f.id)},
        {"rel": "bookmark", "href": format!("{base}/compute/flavors/{}", f.id)}
    ]);
    if !detail {
        return json!({"id": f.id, "name": f.name, "links": links, "description": null});
    }
    json!({
        "id": f.id, "name": f.name, "ram": f.ram, "disk": f.disk, "vcpus": f.vcpus, "swap": 0,
        "OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": false, "rxtx_factor": 1.0,
        "os-flavor-access:is_public": true, "description": null, "extra_specs": {}, "links": links
    })
}

fn nova(s: &mut State, req: &HttpRequest, rest: &[&str], query: &[(String, String)]) -> Response {
    let base = s.root.clone();
    let requested = req
        .header("openstack-api-version")
        .and_then(|v| v.strip_prefix("compute "))
        .map(str::to_string)
        .or_else(|| req.header("x-openstack-nova-api-version").map(str::to_string))
        .unwrap_or_else(|| "2.1".into());
    let served = if requested == "latest" {
        NOVA_MAX_VERSION.to_string()
    } else {
        requested
    };
    let q = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let resp = match (req.method.as_str(), rest) {
        ("GET", ["v2.1"]) => Response::json(
            200,
            &json!({"version": {"id": "v2.1", "status": "CURRENT", "version": NOVA_MAX_VERSION,
                "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": format!("{base}/compute/v2.1/")}],
                "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]}}),
        ),
        ("GET", []) => Response::json(
            300,
            &json!({"versions": [{"id": "v2.1", "status": "CURRENT", "version": NOVA_MAX_VERSION,
                "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": format!("{base}/compute/v2.1/")}]}]}),
        ),
        ("GET", ["v2.1", "flavors", rest @ ..]) if rest.is_empty() || rest == ["detail"] => {
            let detail = rest == ["detail"];
            let min_ram = q("minRam").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let min_disk = q("minDisk").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let flavors: Vec<Value> = s
                .scenario
                .flavors
                .iter()
                .filter(|f| f.ram >= min_ram && f.disk >= min_disk)
                .map(|f| flavor_json(&base, f, detail))
                .collect();
            Response::json(200, &json!({ "flavors": flavors }))
        }
        ("GET", ["v2.1", "flavors", id]) => match s.scenario.flavors.iter().find(|f| f.id == *id) {
            Some(f) => Response::json(200, &json!({"flavor": flavor_json(&base, f, true)})),
            None => nova_error(404, "itemNotFound", &format!("Flavor {id} could not be found.")),
        },
        ("GET", ["v2.1", "flavors", id, "os-extra_specs"]) => {
            if s.scenario.flavors.iter().any(|f| f.id == *id) {
                Response::json(200, &json!({"extra_specs": {}}))
            } else {
                nova_error(404, "itemNotFound", &format!("Flavor {id} could not be found."))
            }
        }
        ("GET", ["v2.1", "os-keypairs"]) => {
            let kps: Vec<Value> = s
                .scenario
                .keypairs
                .iter()
                .map(|k| json!({"keypair": keypair_json(k, false)}))
                .collect();
            Response::json(200, &json!({ "keypairs": kps }))
        }
        ("GET", ["v2.1", "os-keypairs", name]) => {
            let name = percent_decode(name);
            if s.scenario.keypairs.contains(&name) {
                Response::json(200, &json!({"keypair": keypair_json(&name, true)}))
            } else {
                let user = s.scenario.credentials.user_id.clone();
                nova_error(
                    404,
                    "itemNotFound",
                    &format!("Keypair {name} not found for user {user}"),
                )
            }
        }
        _ => nova_error(404, "itemNotFound", "The resource could not be found."),
    };
    resp.with("OpenStack-API-Version", &format!("compute {served}"))
        .with("X-OpenStack-Nova-API-Version", &served)
        .with("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
}

fn keypair_json(name: &str, detail: bool) -> Value {
    let mut k = json!({
        "name": name, "type": "ssh",
        "public_key": format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHz0fakefakefakefakefakefakefakefakefakefakef {name}"),
        "fingerprint": "2b:8e:1f:7c:3a:9d:5e:0f:6a:4b:8c:2d:1e:7f:3a:9b"
    });
    if detail {
        let m = k.as_object_mut().unwrap();
        m.insert("user_id".into(), json!("9b3a6f2c1d8e4f7a8b0c2d4e6f8a0b1c"));
        m.insert("created_at".into(), json!("2024-05-02T10:00:00.000000"));
        m.insert("deleted".into(), json!(false));
        m.insert("deleted_at".into(), Value::Null);
        m.insert("updated_at".into(), Value::Null);
        m.insert("id".into(), json!(1));
    }
    k
}

// ---------------------------------------------------------------------------
// Neutron.
// ---------------------------------------------------------------------------

fn network_json(n: &Network, project: &str) -> Value {
    json!({
        "id": n.id, "name": n.name, "router:external": n.external, "status": "ACTIVE",
        "admin_state_up": true, "shared": false, "subnets": [], "mtu": 1500,
        "tenant_id": project, "project_id": project, "availability_zones": ["nova"],
        "availability_zone_hints": [], "ipv4_address_scope": null, "ipv6_address_scope": null,
        "port_security_enabled": true, "is_default": n.external, "description": "",
        "tags": [], "created_at": "2024-05-02T10:00:00Z", "updated_at": "2024-05-02T10:00:00Z",
        "revision_number": 1, "l2_adjacency": true, "qos_policy_id": null,
        "provider:network_type": if n.external { "flat" } else { "geneve" }
    })
}

fn neutron(s: &mut State, req: &HttpRequest, rest: &[&str], query: &[(String, String)]) -> Response {
    let base = s.root.clone();
    let project = s.scenario.credentials.project_id.clone();
    match (req.method.as_str(), rest) {
        ("GET", []) => Response::json(
            200,
            &json!({"versions": [{"id": "v2.0", "status": "CURRENT",
                "links": [{"rel": "self", "href": format!("{base}/network/v2.0/")}]}]}),
        ),
        ("GET", ["v2.0", "networks"]) => {
            let nets: Vec<Value> = s
                .scenario
                .networks
                .iter()
                .map(|n| network_json(n, &project))
                .filter(|n| {
                    query.iter().all(|(k, v)| match k.as_str() {
                        "fields" | "limit" | "marker" | "sort_key" | "sort_dir" => true,
                        _ => match n.get(k) {
                            Some(Value::Bool(b)) => parse_bool(v) == Some(*b),
                            Some(Value::String(have)) => have == v,
                            _ => false,
                        },
                    })
                })
                .collect();
            Response::json(200, &json!({ "networks": nets }))
        }
        ("GET", ["v2.0", "networks", id]) => match s.scenario.networks.iter().find(|n| n.id == *id) {
            Some(n) => Response::json(200, &json!({"network": network_json(n, &project)})),
            None => Response::json(
                404,
                &json!({"NeutronError": {"type": "NetworkNotFound",
                    "message": format!("Network {id} could not be found."), "detail": ""}}),
            ),
        },
        _ => Response::json(
            404,
            &json!({"NeutronError": {"type": "HTTPNotFound", "message": "The resource could not be found.", "detail": ""}}),
        ),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Magnum.
// ---------------------------------------------------------------------------

/// Magnum's error body (wsme faultstring through ParsableErrorMiddleware).
fn magnum_error(status: u16, faultstring: &str) -> Response {
    let title = faultstring.split_once('.').map_or(faultstring, |(t, _)| t);
    let code = if status >= 500 { "server" } else { "client" };
    Response::json(
        status,
        &json!({"errors": [{"request_id": "", "code": code, "status": status,
            "title": title, "detail": faultstring, "links": []}]}),
    )
}

fn version_tuple(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn magnum(s: &mut State, req: &HttpRequest, rest: &[&str], query: &[(String, String)]) -> Response {
    let requested = req
        .header("openstack-api-version")
        .and_then(|v| v.trim().strip_prefix("container-infra "))
        .map(|v| v.trim().to_string());
    let served = match requested.as_deref() {
        None => MAGNUM_MIN_VERSION.to_string(),
        Some("latest") => MAGNUM_MAX_VERSION.to_string(),
        Some(v) => v.to_string(),
    };
    let in_range = version_tuple(&served).is_some_and(|v| {
        v >= version_tuple(MAGNUM_MIN_VERSION).unwrap() && v <= version_tuple(MAGNUM_MAX_VERSION).unwrap()
    });
    let resp = if !in_range {
        Response::json(
            406,
            &json!({"errors": [{"request_id": "", "code": "", "status": 406, "title": "Not Acceptable",
                "detail": format!("Version {served} was requested but the minor version is not supported by this service. The supported version range is: [{MAGNUM_MIN_VERSION}, {MAGNUM_MAX_VERSION}]."),
                "max_version": MAGNUM_MAX_VERSION, "min_version": MAGNUM_MIN_VERSION, "links": []}]}),
        )
    } else {
        magnum_route(s, req, rest, query)
    };
    let served = if in_range {
        served
    } else {
        MAGNUM_MIN_VERSION.to_string()
    };
    resp.with(
        "OpenStack-API-Minimum-Version",
        &format!("container-infra {MAGNUM_MIN_VERSION}"),
    )
    .with(
        "OpenStack-API-Maximum-Version",
        &format!("container-infra {MAGNUM_MAX_VERSION}"),
    )
    .with("OpenStack-API-Version", &format!("container-infra {served}"))
    .with("Vary", "OpenStack-API-Version")
}

fn magnum_route(s: &mut State, req: &HttpRequest, rest: &[&str], _query: &[(String, String)]) -> Response {
    let base = s.root.clone();
    let body = || serde_json::from_slice::<Value>(&req.body).ok();
    match (req.method.as_str(), rest) {
        ("GET", []) => Response::json(
            200,
            &json!({"name": "OpenStack Magnum API",
                "description": "Magnum is an OpenStack project which aims to provide container cluster management.",
                "versions": [{"id": "v1", "status": "CURRENT", "min_version": MAGNUM_MIN_VERSION,
                    "max_version": MAGNUM_MAX_VERSION,
                    "links": [{"href": format!("{base}/magnum/v1/"), "rel": "self"}]}]}),
        ),
        ("GET", ["v1"]) => Response::json(
            200,
            &json!({"id": "v1", "media_types": [{"base": "application/json",
                "type": "application/vnd.openstack.magnum.v1+json"}],
                "links": [{"href": format!("{base}/magnum/v1/"), "rel": "self"}]}),
        ),
        ("GET", ["v1", "clustertemplates"]) | ("GET", ["v1", "clustertemplates", "detail"]) => {
            let list: Vec<Value> = s.templates.iter().map(|t| Value::Object(t.clone())).collect();
            Response::json(200, &json!({"clustertemplates": list, "next": null}))
        }
        ("GET", ["v1", "clustertemplates", ident]) => match find_template(s, &percent_decode(ident)) {
            Ok(i) => Response::json(200, &Value::Object(s.templates[i].clone())),
            Err(r) => r,
        },
        ("POST", ["v1", "clustertemplates"]) => match body() {
            Some(Value::Object(b)) => create_template(s, &b),
            _ => magnum_error(400, "The request body is not valid JSON."),
        },
        ("DELETE", ["v1", "clustertemplates", ident]) => {
            let i = match find_template(s, &percent_decode(ident)) {
                Ok(i) => i,
                Err(r) => return r,
            };
            let uuid = s.templates[i]["uuid"].as_str().unwrap().to_string();
            if s.clusters
                .iter()
                .any(|c| c.json["cluster_template_id"] == uuid.as_str())
            {
                return magnum_error(
                    400,
                    &format!("ClusterTemplate {uuid} is referenced by one or multiple clusters."),
                );
            }
            s.templates.remove(i);
            Response::empty(204)
        }
        ("GET", ["v1", "clusters"]) => {
            let list: Vec<Value> = s.clusters.iter().map(|c| cluster_summary(&c.json)).collect();
            Response::json(200, &json!({"clusters": list, "next": null}))
        }
        ("GET", ["v1", "clusters", "detail"]) => {
            let list: Vec<Value> = s.clusters.iter().map(|c| Value::Object(c.json.clone())).collect();
            Response::json(200, &json!({"clusters": list, "next": null}))
        }
        ("GET", ["v1", "clusters", ident]) => get_cluster(s, req, &percent_decode(ident)),
        ("POST", ["v1", "clusters"]) => match body() {
            Some(Value::Object(b)) => create_cluster(s, &b),
            _ => magnum_error(400, "The request body is not valid JSON."),
        },
        ("DELETE", ["v1", "clusters", ident]) => {
            let i = match find_cluster(s, &percent_decode(ident)) {
                Ok(i) => i,
                Err(r) => return r,
            };
            let delete = s.scenario.delete.clone();
            let c = &mut s.clusters[i];
            let fail = match &delete {
                Delete::Fail { reason, .. } if c.delete_failures_left > 0 => Some(reason.clone()),
                _ => None,
            };
            let left = match delete {
                Delete::Complete { in_progress } | Delete::Fail { in_progress, .. } => Some(in_progress),
                Delete::Never => None,
            };
            c.phase = Phase::Deleting { left, fail };
            c.set_status("DELETE_IN_PROGRESS", None);
            Response::empty(204)
        }
        ("GET", ["v1", "certificates", ident]) => {
            let i = match find_cluster(s, &percent_decode(ident)) {
                Ok(i) => i,
                Err(r) => return r,
            };
            let c = &s.clusters[i];
            let uuid = c.uuid().to_string();
            Response::json(
                200,
                &json!({"cluster_uuid": uuid, "pem": c.ca.pem, "ca_cert_type": null,
                    "links": magnum_links(&base, "certificates", &uuid)}),
            )
        }
        ("POST", ["v1", "certificates"]) => {
            let Some(Value::Object(b)) = body() else {
                return magnum_error(400, "The request body is not valid JSON.");
            };
            let ident = b.get("cluster_uuid").and_then(Value::as_str).unwrap_or("").to_string();
            let i = match find_cluster(s, &ident) {
                Ok(i) => i,
                // magnum turns this 404 into a 400 for a POST.
                Err(r) if r.status == 404 => return magnum_error(400, &format!("Cluster {ident} could not be found.")),
                Err(r) => return r,
            };
            let Some(csr) = b.get("csr").and_then(Value::as_str) else {
                return magnum_error(
                    400,
                    "Invalid input for field/attribute csr. Value: 'Unset'. Mandatory field missing.",
                );
            };
            let c = &s.clusters[i];
            match sign_csr(&c.ca, csr) {
                Ok(pem) => {
                    let uuid = c.uuid().to_string();
                    Response::json(
                        201,
                        &json!({"cluster_uuid": uuid, "csr": csr, "pem": pem, "ca_cert_type": null,
                            "links": magnum_links(&base, "certificates", &uuid)}),
                    )
                }
                Err(e) => magnum_error(400, &format!("Invalid CSR: {e}.")),
            }
        }
        (m, _) if m != "GET" && m != "POST" && m != "DELETE" && m != "PATCH" => {
            magnum_error(405, "The method specified is not allowed.")
        }
        _ => magnum_error(404, "The resource could not be found."),
    }
}

fn magnum_links(base: &str, kind: &str, uuid: &str) -> Value {
    json!([
        {"href": format!("{base}/magnum/v1/{kind}/{uuid}"), "rel": "self"},
        {"href": format!("{base}/magnum/{kind}/{uuid}"), "rel": "bookmark"}
    ])
}

fn is_uuid_like(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

fn find_template(s: &State, ident: &str) -> Result<usize, Response> {
    let by_uuid = is_uuid_like(ident);
    let hits: Vec<usize> = (0..s.templates.len())
        .filter(|&i| {
            let t = &s.templates[i];
            if by_uuid {
                t["uuid"] == ident
            } else {
                t["name"] == ident
            }
        })
        .collect();
    match hits.as_slice() {
        [i] => Ok(*i),
        [] => Err(magnum_error(
            404,
            &format!("ClusterTemplate {ident} could not be found."),
        )),
        _ => Err(magnum_error(
            409,
            "Multiple ClusterTemplates exist with same name. Please use the ClusterTemplate uuid instead.",
        )),
    }
}

fn find_cluster(s: &State, ident: &str) -> Result<usize, Response> {
    let by_uuid = is_uuid_like(ident);
    let hits: Vec<usize> = (0..s.clusters.len())
        .filter(|&i| {
            let c = &s.clusters[i];
            if by_uuid {
                c.uuid() == ident
            } else {
                c.name() == ident
            }
        })
        .collect();
    match hits.as_slice() {
        [i] => Ok(*i),
        [] => Err(magnum_error(404, &format!("Cluster {ident} could not be found."))),
        _ => Err(magnum_error(
            409,
            "Multiple clusters exist with same name. Please use the cluster uuid instead.",
        )),
    }
}

const TEMPLATE_FIELDS: &[&str] = &[
    "name",
    "coe",
    "image_id",
    "flavor_id",
    "master_flavor_id",
    "dns_nameserver",
    "keypair_id",
    "external_network_id",
    "fixed_network",
    "fixed_subnet",
    "network_driver",
    "apiserver_port",
    "docker_volume_size",
    "cluster_distro",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "volume_driver",
    "registry_enabled",
    "labels",
    "tls_disabled",
    "public",
    "server_type",
    "insecure_registry",
    "docker_storage_driver",
    "master_lb_enabled",
    "floating_ip_enabled",
    "hidden",
    "tags",
    "driver",
];

fn unknown_attributes(arg: &str, body: &Map<String, Value>, known: &[&str]) -> Option<Response> {
    let unknown: Vec<&str> = body.keys().map(String::as_str).filter(|k| !known.contains(k)).collect();
    (!unknown.is_empty()).then(|| {
        magnum_error(
            400,
            &format!("Unknown attribute for argument {arg}: {}", unknown.join(", ")),
        )
    })
}

fn new_template(base: &str, sc: &Scenario, b: &Map<String, Value>, distro: &str) -> Map<String, Value> {
    let uuid = uuid4();
    let get = |k: &str| b.get(k).cloned().unwrap_or(Value::Null);
    let bool_or = |k: &str, d: bool| b.get(k).and_then(Value::as_bool).map_or(json!(d), |v| json!(v));
    let mut t = Map::new();
    for k in TEMPLATE_FIELDS {
        t.insert((*k).into(), get(k));
    }
    t.insert("uuid".into(), json!(uuid));
    t.insert("links".into(), magnum_links(base, "clustertemplates", &uuid));
    t.insert("cluster_distro".into(), json!(distro));
    t.insert(
        "labels".into(),
        b.get("labels").cloned().filter(|v| !v.is_null()).unwrap_or(json!({})),
    );
    t.insert("registry_enabled".into(), bool_or("registry_enabled", false));
    t.insert("tls_disabled".into(), bool_or("tls_disabled", false));
    t.insert("public".into(), bool_or("public", false));
    t.insert("master_lb_enabled".into(), bool_or("master_lb_enabled", false));
    t.insert("floating_ip_enabled".into(), bool_or("floating_ip_enabled", true));
    t.insert("hidden".into(), bool_or("hidden", false));
    t.insert(
        "server_type".into(),
        b.get("server_type")
            .cloned()
            .filter(|v| !v.is_null())
            .unwrap_or(json!("vm")),
    );
    t.insert("project_id".into(), json!(sc.credentials.project_id));
    t.insert("user_id".into(), json!(sc.credentials.user_id));
    t.insert("created_at".into(), json!(magnum_time()));
    t.insert("updated_at".into(), Value::Null);
    t
}

fn find_image<'a>(sc: &'a Scenario, ident: &str) -> Result<&'a Image, String> {
    let hits: Vec<&Image> = sc.images.iter().filter(|i| i.id == ident || i.name == ident).collect();
    match hits.as_slice() {
        [i] => Ok(i),
        [] => Err(format!("Image {ident} could not be found.")),
        _ => Err(format!(
            "Multiple images exist with same name {ident}. Please use the image id instead."
        )),
    }
}

fn find_flavor<'a>(sc: &'a Scenario, ident: &str) -> Option<&'a Flavor> {
    sc.flavors.iter().find(|f| f.name == ident || f.id == ident)
}

fn create_template(s: &mut State, b: &Map<String, Value>) -> Response {
    if let Some(r) = unknown_attributes("cluster_template", b, TEMPLATE_FIELDS) {
        return r;
    }
    let sc = s.scenario.clone();
    let coe = b.get("coe").and_then(Value::as_str);
    let Some(coe) = coe else {
        return magnum_error(
            400,
            "Invalid input for field/attribute coe. Value: 'Unset'. Mandatory field missing.",
        );
    };
    if !["kubernetes", "swarm", "swarm-mode", "mesos"].contains(&coe) {
        return magnum_error(
            400,
            &format!("Invalid input for field/attribute coe. Value: '{coe}'. Value should be one of: kubernetes, mesos, swarm, swarm-mode"),
        );
    }
    let Some(image_ident) = b.get("image_id").and_then(Value::as_str) else {
        return magnum_error(
            400,
            "Invalid input for field/attribute image_id. Value: 'Unset'. Mandatory field missing.",
        );
    };
    let server_type = b.get("server_type").and_then(Value::as_str).unwrap_or("vm");
    // enforce_driver_supported runs first, and swallows image lookup errors.
    let distro = find_image(&sc, image_ident)
        .ok()
        .and_then(|i| i.properties.get("os_distro").cloned());
    let supported =
        coe == "kubernetes" && server_type == "vm" && distro.as_ref().is_some_and(|d| sc.supported_distros.contains(d));
    if !supported {
        return magnum_error(
            400,
            &format!(
                "Cluster type ({server_type}, {}, {coe}) not supported.",
                distro.as_deref().unwrap_or("None")
            ),
        );
    }
    // validate_os_resources, in magnum's order: image, flavors, networks.
    if let Err(msg) = find_image(&sc, image_ident) {
        return magnum_error(if msg.starts_with("Multiple") { 409 } else { 400 }, &msg);
    }
    for key in ["flavor_id", "master_flavor_id"] {
        if let Some(f) = b.get(key).and_then(Value::as_str) {
            if find_flavor(&sc, f).is_none() {
                return magnum_error(400, &format!("Unable to find flavor {f}."));
            }
        }
    }
    if let Some(net) = b.get("external_network_id").and_then(Value::as_str) {
        let n = sc
            .networks
            .iter()
            .filter(|n| n.external && (n.name == net || n.id == net))
            .count();
        if n == 0 {
            return magnum_error(400, &format!("Unable to find external network {net}."));
        }
        if n > 1 {
            return magnum_error(
                409,
                &format!("Multiple external networks exist with same name '{net}'. Please use the external network ID instead."),
            );
        }
    }
    if let Some(net) = b.get("fixed_network").and_then(Value::as_str) {
        if !sc.networks.iter().any(|n| n.name == net || n.id == net) {
            return magnum_error(400, &format!("Unable to find fixed network {net}."));
        }
    }
    let mut b = b.clone();
    if b.get("name").is_none_or(Value::is_null) {
        b.insert("name".into(), json!(format!("{}-template", generated_name())));
    }
    let t = new_template(&s.base, &sc, &b, distro.as_deref().unwrap_or(""));
    let uuid = t["uuid"].as_str().unwrap().to_string();
    let shown = t.clone();
    s.templates.push(t);
    let location = format!("{}/magnum/v1/clustertemplates/{uuid}", s.base);
    Response::json(201, &Value::Object(shown)).with("Location", &location)
}

const CLUSTER_FIELDS: &[&str] = &[
    "name",
    "cluster_template_id",
    "keypair",
    "node_count",
    "master_count",
    "docker_volume_size",
    "labels",
    "master_flavor_id",
    "flavor_id",
    "create_timeout",
    "discovery_url",
    "fixed_network",
    "fixed_subnet",
    "floating_ip_enabled",
    "merge_labels",
    "master_lb_enabled",
];

fn cluster_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 242
}

fn new_cluster(
    base: &str,
    sc: &Scenario,
    name: &str,
    template: &Map<String, Value>,
    b: &Map<String, Value>,
) -> Cluster {
    let uuid = uuid4();
    let ca = ClusterCa::new(name);
    let pick = |k: &str, tk: &str| {
        b.get(k)
            .filter(|v| !v.is_null() && *v != &json!(""))
            .cloned()
            .unwrap_or_else(|| template.get(tk).cloned().unwrap_or(Value::Null))
    };
    let node_count = b.get("node_count").and_then(Value::as_u64).unwrap_or(1);
    let master_count = b.get("master_count").and_then(Value::as_u64).unwrap_or(1);
    let tlabels = template
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let given = b.get("labels").and_then(Value::as_object).cloned().unwrap_or_default();
    let merge = b.get("merge_labels").and_then(Value::as_bool).unwrap_or(false);
    let labels = if given.is_empty() {
        tlabels.clone()
    } else if merge {
        let mut l = tlabels.clone();
        l.extend(given.clone());
        l
    } else {
        given.clone()
    };
    let (mut overridden, mut added, mut skipped) = (Map::new(), Map::new(), Map::new());
    for (k, v) in &labels {
        match tlabels.get(k) {
            Some(tv) if tv != v => {
                overridden.insert(k.clone(), tv.clone());
            }
            Some(_) => {}
            None => {
                added.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in &tlabels {
        if !labels.contains_key(k) {
            skipped.insert(k.clone(), v.clone());
        }
    }
    let ready = sc
        .ready_nodes
        .unwrap_or(u32::MAX)
        .min((master_count + node_count) as u32);
    let kube = KubeApi::start(&ca, name, master_count as u32, node_count as u32, ready);
    let json = json!({
        "uuid": uuid, "name": name,
        "cluster_template_id": template["uuid"],
        "keypair": pick("keypair", "keypair_id"),
        "node_count": node_count, "master_count": master_count,
        "docker_volume_size": pick("docker_volume_size", "docker_volume_size"),
        "labels": labels, "labels_overridden": overridden, "labels_added": added, "labels_skipped": skipped,
        "master_flavor_id": pick("master_flavor_id", "master_flavor_id"),
        "flavor_id": pick("flavor_id", "flavor_id"),
        "create_timeout": b.get("create_timeout").cloned().filter(|v| !v.is_null()).unwrap_or(json!(60)),
        "links": magnum_links(base, "clusters", &uuid),
        "stack_id": null, "status": "CREATE_IN_PROGRESS", "status_reason": null,
        "health_status": null, "health_status_reason": {},
        "discovery_url": b.get("discovery_url").cloned().unwrap_or(Value::Null),
        "api_address": null, "coe_version": null, "container_version": null,
        "project_id": sc.credentials.project_id, "user_id": sc.credentials.user_id,
        "node_addresses": [], "master_addresses": [],
        "fixed_network": pick("fixed_network", "fixed_network"),
        "fixed_subnet": pick("fixed_subnet", "fixed_subnet"),
        "floating_ip_enabled": pick("floating_ip_enabled", "floating_ip_enabled"),
        "master_lb_enabled": pick("master_lb_enabled", "master_lb_enabled"),
        "merge_labels": merge,
        "created_at": magnum_time(), "updated_at": null,
    });
    Cluster {
        json: json.as_object().unwrap().clone(),
        phase: Phase::Creating {
            left: None,
            outcome: Create::Never,
        },
        gets: 0,
        delete_failures_left: match &sc.delete {
            Delete::Fail { times, .. } => *times,
            _ => 0,
        },
        ca,
        kube: Some(kube),
    }
}

fn create_cluster(s: &mut State, b: &Map<String, Value>) -> Response {
    if let Some(r) = unknown_attributes("cluster", b, CLUSTER_FIELDS) {
        return r;
    }
    let sc = s.scenario.clone();
    let Some(tid) = b.get("cluster_template_id").and_then(Value::as_str) else {
        return magnum_error(
            400,
            "Invalid input for field/attribute cluster_template_id. Value: 'Unset'. Mandatory field missing.",
        );
    };
    for (k, min) in [("node_count", 0), ("master_count", 1)] {
        if let Some(v) = b.get(k).filter(|v| !v.is_null()) {
            match v.as_i64() {
                Some(n) if n >= min => {}
                _ => {
                    return magnum_error(
                        400,
                        &format!("Invalid input for field/attribute {k}. Value: '{v}'. Value should be greater or equal to {min}"),
                    )
                }
            }
        }
    }
    if let Some(name) = b.get("name").and_then(Value::as_str) {
        if !cluster_name_ok(name) {
            return magnum_error(
                400,
                &format!("Invalid input for field/attribute name. Value: '{name}'. Value should match the pattern ^[a-zA-Z][a-zA-Z0-9_.-]*$"),
            );
        }
    }
    let ti = match find_template(s, tid) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let template = s.templates[ti].clone();
    let pick = |k: &str, tk: &str| -> Option<String> {
        b.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .or_else(|| template.get(tk).and_then(Value::as_str))
            .map(str::to_string)
    };
    let flavor = pick("flavor_id", "flavor_id");
    let master_flavor = pick("master_flavor_id", "master_flavor_id");
    for f in [&flavor, &master_flavor].into_iter().flatten() {
        if find_flavor(&sc, f).is_none() {
            return magnum_error(400, &format!("Unable to find flavor {f}."));
        }
    }
    if let Some(k) = pick("keypair", "keypair_id") {
        if !sc.keypairs.contains(&k) {
            return magnum_error(404, &format!("Unable to find keypair {k}."));
        }
    }
    let master_count = b.get("master_count").and_then(Value::as_u64).unwrap_or(1);
    let lb = b
        .get("master_lb_enabled")
        .and_then(Value::as_bool)
        .or_else(|| template.get("master_lb_enabled").and_then(Value::as_bool))
        .unwrap_or(false);
    if master_count > 1 && !lb {
        return magnum_error(400, "master_count must be 1 when master_lb_enabled is False");
    }
    let name = b
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(generated_name);
    let mut c = new_cluster(&s.base, &sc, &name, &template, b);
    // The driver's own checks, at create in the conductor: a failure is
    // CREATE_FAILED with the driver's message, seen at the first GET.
    let image = template.get("image_id").and_then(Value::as_str).unwrap_or("");
    let driver_failure = match find_image(&sc, image) {
        Err(e) => Some(e),
        Ok(img) if img.properties.get("kube_version").is_none_or(|v| v.is_empty()) => {
            Some(format!("Image {} does not have a kube_version property.", img.id))
        }
        Ok(_) => [&flavor, &master_flavor]
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let fl = find_flavor(&sc, f)?;
                if fl.ram < sc.minimum_flavor_ram {
                    Some(format!(
                        "Flavor {f} does not have enough RAM to run Kubernetes. Minimum {} MB required.",
                        sc.minimum_flavor_ram
                    ))
                } else if fl.vcpus < sc.minimum_flavor_vcpus {
                    Some(format!(
                        "Flavor {f} does not have enough CPU to run Kubernetes. Minimum {} vcpus required.",
                        sc.minimum_flavor_vcpus
                    ))
                } else {
                    None
                }
            })
            .next(),
    };
    c.phase = match driver_failure {
        Some(reason) => Phase::Creating {
            left: Some(0),
            outcome: Create::Fail { in_progress: 0, reason },
        },
        None => match sc.create.clone() {
            Create::Complete { in_progress } => Phase::Creating {
                left: Some(in_progress),
                outcome: Create::Complete { in_progress },
            },
            Create::Fail { in_progress, reason } => Phase::Creating {
                left: Some(in_progress),
                outcome: Create::Fail { in_progress, reason },
            },
            Create::Never => Phase::Creating {
                left: None,
                outcome: Create::Never,
            },
        },
    };
    let uuid = c.uuid().to_string();
    s.clusters.push(c);
    Response::json(202, &json!({ "uuid": uuid }))
}

/// The fields `GET /v1/clusters` shows (magnum's expand=False).
fn cluster_summary(c: &Map<String, Value>) -> Value {
    let keep = [
        "uuid",
        "name",
        "cluster_template_id",
        "keypair",
        "docker_volume_size",
        "labels",
        "node_count",
        "status",
        "master_flavor_id",
        "flavor_id",
        "create_timeout",
        "master_count",
        "stack_id",
        "health_status",
        "links",
    ];
    Value::Object(
        c.iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// GET of one cluster: the fault for this GET, else one step of the state
/// machine, then the cluster as magnum shows it.
fn get_cluster(s: &mut State, req: &HttpRequest, ident: &str) -> Response {
    let i = match find_cluster(s, ident) {
        Ok(i) => i,
        Err(r) => return r,
    };
    s.clusters[i].gets += 1;
    let n = s.clusters[i].gets;
    if let Some((_, fault)) = s.scenario.faults.iter().find(|(at, _)| *at == n).cloned() {
        return match fault {
            Fault::ServerError(status) => magnum_error(
                status,
                "Remote error: DBConnectionError (pymysql.err.OperationalError) (2013, 'Lost connection to MySQL server during query').",
            ),
            Fault::GatewayHtml(status) => Response::text(
                status,
                "text/html",
                &format!(
                    "<html><body><h1>{status} {}</h1>\nNo server is available to handle this request.\n</body></html>\n",
                    reason(status)
                ),
            )
            .with("Cache-Control", "no-cache"),
            Fault::Unauthorized => {
                if let Some(t) = req.header("x-auth-token").and_then(|t| s.tokens.get_mut(t)) {
                    t.valid = false;
                }
                unauthorized(s)
            }
        };
    }
    enum Step {
        Stay,
        Complete,
        CreateFailed(String),
        DeleteFailed(String),
        Gone,
    }
    let c = &mut s.clusters[i];
    let step = match &mut c.phase {
        Phase::Creating { left: Some(0), outcome } => match outcome {
            Create::Complete { .. } => Step::Complete,
            Create::Fail { reason, .. } => Step::CreateFailed(reason.clone()),
            Create::Never => Step::Stay,
        },
        Phase::Deleting { left: Some(0), fail } => match fail.take() {
            Some(reason) => Step::DeleteFailed(reason),
            None => Step::Gone,
        },
        Phase::Creating { left: Some(n), .. } | Phase::Deleting { left: Some(n), .. } => {
            *n -= 1;
            Step::Stay
        }
        _ => Step::Stay,
    };
    let api = c.kube.as_ref().map(|k| k.url());
    // The driver sets api_address as soon as CAPI knows the control plane
    // endpoint, before the cluster is complete.
    if matches!(c.phase, Phase::Creating { .. }) && c.gets >= 2 {
        c.json.insert("api_address".into(), json!(api));
    }
    match step {
        Step::Stay => {}
        Step::Complete => {
            c.phase = Phase::Created;
            c.json.insert("api_address".into(), json!(api));
            c.json.insert("coe_version".into(), json!("v1.30.4"));
            c.json.insert("health_status".into(), json!("HEALTHY"));
            let stack = format!("{}-{}", c.name(), &c.uuid()[..5]);
            c.json.insert("stack_id".into(), json!(stack));
            c.set_status("CREATE_COMPLETE", None);
        }
        Step::CreateFailed(reason) => {
            c.phase = Phase::Created;
            c.set_status("CREATE_FAILED", Some(&reason));
            c.json.insert("faults".into(), json!({}));
        }
        Step::DeleteFailed(reason) => {
            c.delete_failures_left = c.delete_failures_left.saturating_sub(1);
            c.phase = Phase::DeleteFailed;
            c.set_status("DELETE_FAILED", Some(&reason));
        }
        Step::Gone => {
            s.clusters.remove(i);
            return magnum_error(404, &format!("Cluster {ident} could not be found."));
        }
    }
    Response::json(200, &Value::Object(s.clusters[i].json.clone()))
}

// ---------------------------------------------------------------------------
// PKI: the cloud's CA (HTTPS), each cluster's CA, CSR signing.
// ---------------------------------------------------------------------------

struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    server_der: Vec<u8>,
    server_key_der: Vec<u8>,
}

impl Pki {
    /// A CA and a server certificate for 127.0.0.1 and localhost.
    fn server(ca_name: &str) -> Pki {
        let ca = ClusterCa::new(ca_name);
        let (server_der, server_key_der) = ca.server_cert();
        Pki {
            ca_pem: ca.pem.clone(),
            ca_der: ca.der.clone(),
            server_der,
            server_key_der,
        }
    }

    /// A rustls server config; with `client_ca`, client certificates are
    /// verified against it (but optional at the TLS layer).
    fn server_config(&self, client_ca: Option<&[u8]>) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(CertificateDer::from(ca.to_vec())).unwrap();
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        Arc::new(
            builder
                .with_single_cert(
                    vec![CertificateDer::from(self.server_der.clone())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
                )
                .unwrap(),
        )
    }
}

impl ClusterCa {
    fn new(name: &str) -> ClusterCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        ClusterCa {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for 127.0.0.1 signed by this CA: (cert DER,
    /// PKCS#8 key DER).
    fn server_cert(&self) -> (Vec<u8>, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }
}

/// A public key taken from a CSR, for rcgen to put in a certificate.
struct CsrKey {
    raw: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

/// One DER TLV: (tag, content, the whole TLV, what follows).
/// (tag, content, the whole TLV, what follows).
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn der(input: &[u8]) -> Result<Tlv<'_>, String> {
    let bad = || "truncated DER".to_string();
    let tag = *input.first().ok_or_else(bad)?;
    let first = *input.get(1).ok_or_else(bad)?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err("bad DER length".into());
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i).ok_or_else(bad)? as usize;
        }
        (len, 2 + n)
    };
    if input.len() < hdr + len {
        return Err(bad());
    }
    Ok((tag, &input[hdr..hdr + len], &input[..hdr + len], &input[hdr + len..]))
}

/// PEM to DER (the first block with this label).
pub fn pem_to_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    b64_decode(&pem[start..stop])
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' | b' ' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];

/// Signs a PEM CSR with the cluster CA, as magnum's conductor does: the
/// CSR's self-signature is checked, its public key and subject CN/O are
/// kept, and the certificate is for client authentication.
fn sign_csr(ca: &ClusterCa, csr_pem: &str) -> Result<String, String> {
    let der_bytes = pem_to_der(csr_pem, "CERTIFICATE REQUEST").ok_or("not a PEM CERTIFICATE REQUEST")?;
    let (tag, csr, _, _) = der(&der_bytes)?;
    if tag != 0x30 {
        return Err("not a CertificationRequest".into());
    }
    let (_, info, info_tlv, rest) = der(csr)?;
    let (_, sig_alg, _, rest) = der(rest)?;
    let (tag, sig, _, _) = der(rest)?;
    if tag != 0x03 || sig.is_empty() {
        return Err("no signature".into());
    }
    let signature = &sig[1..];
    let (_, sig_oid, _, _) = der(sig_alg)?;

    let (_, _version, _, rest) = der(info)?;
    let (_, subject, _, rest) = der(rest)?;
    let (_, spki, _, _) = der(rest)?;
    let (_, alg, _, rest) = der(spki)?;
    let (tag, key_bits, _, _) = der(rest)?;
    if tag != 0x03 || key_bits.is_empty() {
        return Err("no public key".into());
    }
    let raw = key_bits[1..].to_vec();
    let (_, key_oid, _, alg_rest) = der(alg)?;
    let curve = der(alg_rest).ok().map(|(_, c, _, _)| c);
    let (alg, verify): (
        &'static SignatureAlgorithm,
        &'static dyn ring::signature::VerificationAlgorithm,
    ) = match (key_oid, curve, sig_oid) {
        (OID_RSA, _, OID_SHA256_RSA) => (&rcgen::PKCS_RSA_SHA256, &ring::signature::RSA_PKCS1_2048_8192_SHA256),
        (OID_RSA, _, OID_SHA384_RSA) => (&rcgen::PKCS_RSA_SHA256, &ring::signature::RSA_PKCS1_2048_8192_SHA384),
        (OID_RSA, _, OID_SHA512_RSA) => (&rcgen::PKCS_RSA_SHA256, &ring::signature::RSA_PKCS1_2048_8192_SHA512),
        (OID_EC, Some(OID_P256), OID_ECDSA_SHA256) => {
            (&rcgen::PKCS_ECDSA_P256_SHA256, &ring::signature::ECDSA_P256_SHA256_ASN1)
        }
        (OID_EC, Some(OID_P384), OID_ECDSA_SHA384) => {
            (&rcgen::PKCS_ECDSA_P384_SHA384, &ring::signature::ECDSA_P384_SHA384_ASN1)
        }
        (OID_ED25519, _, OID_ED25519) => (&rcgen::PKCS_ED25519, &ring::signature::ED25519),
        _ => return Err("unsupported key or signature algorithm".into()),
    };
    ring::signature::UnparsedPublicKey::new(verify, &raw)
        .verify(info_tlv, signature)
        .map_err(|_| "the CSR's signature does not verify".to_string())?;

    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    // Name ::= SEQUENCE OF SET OF AttributeTypeAndValue
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (_, set, _, next) = der(rdns)?;
        rdns = next;
        let (_, atv, _, _) = der(set)?;
        let (_, oid, _, rest) = der(atv)?;
        let (_, value, _, _) = der(rest)?;
        let value = String::from_utf8_lossy(value).into_owned();
        match oid {
            OID_CN => params.distinguished_name.push(DnType::CommonName, value),
            OID_O => params.distinguished_name.push(DnType::OrganizationName, value),
            _ => {}
        }
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let now = now_secs();
    params.not_before = rcgen::date_time_ymd(civil(now - 86400).0, civil(now - 86400).1, civil(now - 86400).2);
    let later = now + 5 * 365 * 86400;
    params.not_after = rcgen::date_time_ymd(civil(later).0, civil(later).1, civil(later).2);
    let cert = params
        .signed_by(&CsrKey { raw, alg }, &ca.issuer)
        .map_err(|e| e.to_string())?;
    Ok(cert.pem())
}

// ---------------------------------------------------------------------------
// A cluster's Kubernetes API.
// ---------------------------------------------------------------------------

struct KubeApi {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl KubeApi {
    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn start(ca: &ClusterCa, cluster: &str, masters: u32, workers: u32, ready: u32) -> KubeApi {
        let (server_der, server_key_der) = ca.server_cert();
        let pki = Pki {
            ca_pem: ca.pem.clone(),
            ca_der: ca.der.clone(),
            server_der,
            server_key_der,
        };
        let config = pki.server_config(Some(&ca.der));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let nodes = Arc::new(node_list(cluster, masters, workers, ready));
        {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (config, nodes) = (config.clone(), nodes.clone());
                    std::thread::spawn(move || {
                        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                        let Ok(conn) = ServerConnection::new(config) else {
                            return;
                        };
                        let _ = serve_kube(StreamOwned::new(conn, stream), &nodes);
                    });
                }
            });
        }
        KubeApi { port, stop }
    }
}

fn node_list(cluster: &str, masters: u32, workers: u32, ready: u32) -> Value {
    let short: String = uuid4().chars().filter(char::is_ascii_alphanumeric).take(5).collect();
    let items: Vec<Value> = (0..masters + workers)
        .map(|i| {
            let (name, role) = if i < masters {
                (format!("{cluster}-{short}-control-plane-{i:05x}"), "control-plane")
            } else {
                (format!("{cluster}-{short}-default-worker-{:05x}", i - masters), "worker")
            };
            let is_ready = i < ready;
            let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"});
            if role == "control-plane" {
                labels["node-role.kubernetes.io/control-plane"] = json!("");
            }
            json!({
                "metadata": {"name": name, "uid": uuid4(), "labels": labels,
                    "creationTimestamp": iso_time(now_secs(), false)},
                "spec": {"providerID": format!("openstack:///{}", uuid4())},
                "status": {
                    "conditions": [{
                        "type": "Ready",
                        "status": if is_ready { "True" } else { "False" },
                        "reason": if is_ready { "KubeletReady" } else { "KubeletNotReady" },
                        "message": if is_ready { "kubelet is posting ready status" } else { "container runtime network not ready: NetworkReady=false" },
                        "lastHeartbeatTime": iso_time(now_secs(), false),
                        "lastTransitionTime": iso_time(now_secs(), false)
                    }],
                    "nodeInfo": {"kubeletVersion": "v1.30.4", "osImage": "Ubuntu 22.04.4 LTS"}
                }
            })
        })
        .collect();
    json!({"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "4242"}, "items": items})
}

fn serve_kube(mut tls: StreamOwned<ServerConnection, TcpStream>, nodes: &Value) -> std::io::Result<()> {
    loop {
        let req = {
            let mut reader = BufReader::new(&mut tls);
            let Some(req) = read_request(&mut reader)? else {
                return Ok(());
            };
            req
        };
        let has_cert = tls.conn.peer_certificates().is_some_and(|c| !c.is_empty());
        let path = req.target.split('?').next().unwrap_or("/").to_string();
        let status_json = |code: u16, reason: &str, message: &str| {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": message, "reason": reason, "code": code})
        };
        let (status, body) = if !has_cert {
            (401, status_json(401, "Unauthorized", "Unauthorized"))
        } else {
            match (req.method.as_str(), path.as_str()) {
                ("GET", "/version") => (
                    200,
                    json!({"major": "1", "minor": "30", "gitVersion": "v1.30.4", "platform": "linux/amd64"}),
                ),
                ("GET", "/api") => (
                    200,
                    json!({"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
                ),
                ("GET", "/apis") => (200, json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})),
                ("GET", "/api/v1") => (
                    200,
                    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                        {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node",
                         "verbs": ["get", "list", "watch"], "shortNames": ["no"]}]}),
                ),
                ("GET", "/api/v1/nodes") => (200, nodes.clone()),
                ("GET", p) if p.starts_with("/api/v1/nodes/") => {
                    let name = &p["/api/v1/nodes/".len()..];
                    match nodes["items"]
                        .as_array()
                        .and_then(|a| a.iter().find(|n| n["metadata"]["name"] == name))
                    {
                        Some(n) => (200, n.clone()),
                        None => (
                            404,
                            status_json(404, "NotFound", &format!("nodes \"{name}\" not found")),
                        ),
                    }
                }
                _ => (
                    404,
                    status_json(404, "NotFound", "the server could not find the requested resource"),
                ),
            }
        };
        let body = serde_json::to_vec(&body).unwrap();
        write!(
            tls,
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reason(status),
            body.len()
        )?;
        tls.write_all(&body)?;
        tls.flush()?;
    }
}

// ---------------------------------------------------------------------------
// Small helpers: ids, names, time.
// ---------------------------------------------------------------------------

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    b
}

pub fn uuid4() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// A token shaped like a Fernet token (`gAAAAAB...`, url-safe base64).
fn fernet_like_token() -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = random_bytes::<120>();
    let tail: String = b.iter().map(|x| A[(*x & 63) as usize] as char).collect();
    format!("gAAAAAB{tail}")
}

/// magnum's random names (`<adjective>-<noun>-<n>`), when none is given.
fn generated_name() -> String {
    let b = random_bytes::<3>();
    let adj = ["alpha", "brave", "calm", "delta", "eager", "fuzzy", "gamma", "happy"][(b[0] & 7) as usize];
    let noun = ["river", "stone", "cloud", "field", "comet", "maple", "ocean", "tiger"][(b[1] & 7) as usize];
    format!("{adj}-{noun}-{:02}", b[2] % 100)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// (year, month, day, hour, minute, second) of a Unix time.
fn civil(t: u64) -> (i32, u8, u8, u8, u8, u8) {
    let days = (t / 86400) as i64;
    let secs = t % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y as i32,
        m as u8,
        d as u8,
        (secs / 3600) as u8,
        (secs / 60 % 60) as u8,
        (secs % 60) as u8,
    )
}

/// `2024-05-02T10:00:00Z`, or with microseconds (Keystone's form).
fn iso_time(t: u64, micros: bool) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    if micros {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000000Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// Magnum's form: `2024-05-02T10:00:00+00:00`.
fn magnum_time() -> String {
    let (y, mo, d, h, mi, s) = civil(now_secs());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+00:00")
}

fn http_date() -> String {
    let t = now_secs();
    let (y, mo, d, h, mi, s) = civil(t);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][((t / 86400) % 7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][mo as usize - 1];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{mi:02}:{s:02} GMT")
}
