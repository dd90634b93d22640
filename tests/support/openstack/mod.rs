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
//!
//! One file per service it fakes: keystone.rs, glance.rs, nova.rs,
//! neutron.rs, cinder.rs, magnum.rs, kube.rs (a cluster's Kubernetes API),
//! beside scenario.rs (what the cloud holds) and pki.rs (the CAs and CSR
//! signing). This file holds the shared state, the catalog, the routing
//! and the server (support/http.rs, which whoever includes this module
//! includes as its sibling `http`).
#![allow(dead_code)]

mod cinder;
mod glance;
mod keystone;
mod kube;
mod magnum;
mod neutron;
mod nova;
mod pki;
mod scenario;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{Issuer, KeyPair};
use serde_json::{json, Map, Value};

use super::http::{self, reason, Request as HttpRequest, Response, Server};
use cinder::cinder;
use glance::glance;
use keystone::keystone;
use kube::KubeApi;
use magnum::{magnum, new_cluster, new_template};
use neutron::neutron;
use nova::nova;
use pki::Pki;

// For the tests; a crate that uses only part of the fake (fake-cloud)
// does not use these.
#[allow(unused_imports)]
pub use magnum::{MAGNUM_MAX_VERSION, MAGNUM_MIN_VERSION};
#[allow(unused_imports)]
pub use nova::NOVA_MAX_VERSION;
#[allow(unused_imports)]
pub use pki::pem_to_der;
pub use scenario::{Create, Credentials, Delete, Fault, Flavor, Image, Network, Scenario};

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
        super::http::header(&self.headers, name)
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
    server: Server,
    scheme: &'static str,
    ca_pem: Option<String>,
    state: Arc<Mutex<State>>,
}

impl Drop for FakeOpenStack {
    fn drop(&mut self) {
        self.server.stop();
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
        // Keep-alive until the client says `Connection: close`; every
        // answer dated.
        let options = http::Options {
            tls: tls_config,
            read_timeout: Duration::from_secs(30),
            honour_close: true,
            date: true,
        };
        let handler = {
            let state = state.clone();
            move |req: &HttpRequest| {
                let mut s = lock(&state);
                let resp = route(&mut s, req);
                let (service, interface) = classify(&req.path);
                s.requests.push(Request {
                    method: req.method.clone(),
                    path: req.target(),
                    service,
                    interface,
                    headers: req.headers.clone(),
                    body: String::from_utf8_lossy(&req.body).into_owned(),
                    status: resp.status,
                });
                resp
            }
        };
        FakeOpenStack {
            server: Server::serve(listener, options, handler),
            scheme,
            ca_pem,
            state,
        }
    }

    /// `http://127.0.0.1:PORT` (https with `Scenario::tls`).
    pub fn base_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.server.port())
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

/// The templates and clusters `Scenario` says were there before the test.
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
// The catalog.
// ---------------------------------------------------------------------------

/// The services in Keystone's catalog: (type, name).
const CATALOG: [(&str, &str); 5] = [
    ("identity", "keystone"),
    ("container-infra", "magnum"),
    ("image", "glance"),
    ("compute", "nova"),
    ("network", "neutron"),
];

/// The token's catalog: every service with public, internal and admin
/// endpoints in one region.
fn catalog(base: &str, region: &str) -> Vec<Value> {
    CATALOG
        .iter()
        .map(|(ty, name)| {
            let endpoints: Vec<Value> = ["public", "internal", "admin"]
                .iter()
                .map(|i| {
                    json!({"id": uuid4().replace('-', ""), "interface": i, "region_id": region,
                           "region": region, "url": endpoint_url(base, ty, i)})
                })
                .collect();
            json!({"endpoints": endpoints, "id": uuid4().replace('-', ""), "type": ty, "name": name})
        })
        .collect()
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

// ---------------------------------------------------------------------------
// Routing.
// ---------------------------------------------------------------------------

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

fn route(s: &mut State, req: &HttpRequest) -> Response {
    let (interface, path) = split_interface(&req.path);
    s.root = match interface {
        "public" => s.base.clone(),
        other => format!("{}/{other}", s.base),
    };
    let query = query_pairs(req.query.as_deref().unwrap_or(""));
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

/// A Unix time as a UTC date and time.
fn utc(t: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `2024-05-02T10:00:00Z`, or with microseconds (Keystone's form).
fn iso_time(t: u64, micros: bool) -> String {
    let d = utc(t);
    let (y, mo, day, h, mi, s) = (d.year(), d.month() as u8, d.day(), d.hour(), d.minute(), d.second());
    if micros {
        format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}.000000Z")
    } else {
        format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// Magnum's form: `2024-05-02T10:00:00+00:00`.
fn magnum_time() -> String {
    let d = utc(now_secs());
    let (y, mo, day, h, mi, s) = (d.year(), d.month() as u8, d.day(), d.hour(), d.minute(), d.second());
    format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}+00:00")
}
