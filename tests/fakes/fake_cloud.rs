//! fake-cloud: the fake Glance v2, Nova v2.1 and Neutron v2.0 of
//! tests/support/openstack/ as a process, beside a REAL Keystone (the
//! real-unit tier's control plane, tests/realunit/controlplane.sh). The
//! real magnum-api and magnum-conductor read images, flavors, keypairs and
//! networks (and the driver Cinder's volume types) from it through the real
//! Keystone catalog (`image`, `compute`, `block-storage`
//! and `network` endpoints registered as `http://ADDR/image`,
//! `http://ADDR/compute/v2.1` and `http://ADDR/network`).
//!
//! Tokens: every token comes from the real Keystone and is checked against
//! it as keystonemiddleware does (`GET /v3/auth/tokens` with the service's
//! own token in X-Auth-Token and the user's in X-Subject-Token; 200 means
//! valid: keystone/api/auth.py AuthTokenResource.get,
//! keystonemiddleware/auth_token/_identity.py verify_token). So a client
//! that sends no token, or a bad one, gets the 401 a real service gives.
//! The fake's own Keystone and Magnum routes stay in the process but are
//! not in the catalog.
//!
//! Usage: fake-cloud --listen 127.0.0.1:9999 --keystone http://127.0.0.1:5000/v3
//!                   --user magnum --password PW [--project service]
//! Prints `fake-cloud listening on http://ADDR` and serves until killed.

#[path = "../support/http.rs"]
mod http;
#[path = "../support/openstack/mod.rs"]
mod openstack;

use std::sync::{Mutex, OnceLock};

use openstack::{FakeOpenStack, Scenario};
use serde_json::json;

struct ServiceAuth {
    keystone: String,
    user: String,
    password: String,
    project: String,
    agent: ureq::Agent,
    token: Mutex<Option<String>>,
}

static AUTH: OnceLock<ServiceAuth> = OnceLock::new();

impl ServiceAuth {
    /// A project-scoped token for the service user (password method, as
    /// keystonemiddleware's `[keystone_authtoken]` password plugin gets it).
    fn service_token(&self) -> Option<String> {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.user, "domain": {"id": "default"}, "password": self.password}}},
            "scope": {"project": {"name": self.project, "domain": {"id": "default"}}}
        }});
        let resp = self
            .agent
            .post(format!("{}/auth/tokens", self.keystone))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .ok()?;
        if resp.status().as_u16() != 201 {
            eprintln!("fake-cloud: Keystone refused the service user: HTTP {}", resp.status());
            return None;
        }
        resp.headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Keystone's answer to GET /v3/auth/tokens for `subject`: Some(true)
    /// valid, Some(false) not, None when the service token was refused.
    fn check(&self, service: &str, subject: &str) -> Option<bool> {
        let resp = self
            .agent
            .get(format!("{}/auth/tokens", self.keystone))
            .header("X-Auth-Token", service)
            .header("X-Subject-Token", subject)
            .call()
            .ok()?;
        match resp.status().as_u16() {
            200 => Some(true),
            401 | 403 => None,
            _ => Some(false),
        }
    }
}

fn validate(subject: &str) -> bool {
    let Some(auth) = AUTH.get() else { return false };
    let mut cached = auth.token.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..2 {
        if cached.is_none() {
            *cached = auth.service_token();
        }
        let Some(service) = cached.clone() else { return false };
        match auth.check(&service, subject) {
            Some(v) => {
                eprintln!(
                    "fake-cloud: token {}... {}",
                    &subject[..subject.len().min(8)],
                    if v { "valid" } else { "rejected" }
                );
                return v;
            }
            // The service token expired or was revoked: get a new one once.
            None => *cached = None,
        }
    }
    false
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let need = |name: &str| -> String {
        arg(name).unwrap_or_else(|| {
            eprintln!("usage: fake-cloud --listen ADDR --keystone URL/v3 --user NAME --password PW [--project NAME]");
            eprintln!("fake-cloud: missing {name}");
            std::process::exit(2)
        })
    };
    let listen = need("--listen");
    let auth = ServiceAuth {
        keystone: need("--keystone").trim_end_matches('/').to_string(),
        user: need("--user"),
        password: need("--password"),
        project: arg("--project").unwrap_or_else(|| "service".into()),
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .new_agent(),
        token: Mutex::new(None),
    };
    let _ = AUTH.set(auth);
    // The default scenario's cloud: an Ubuntu image with os_distro and
    // kube_version, flavors m1.small (1 vCPU, 2 GiB), m1.medium (2 vCPU,
    // 4 GiB) and ds4G, keypair mykey, external network public.
    let scenario = Scenario {
        external_tokens: Some(validate),
        ..Scenario::default()
    };
    let cloud = FakeOpenStack::start_on(scenario, &listen);
    println!("fake-cloud listening on {}", cloud.base_url());
    loop {
        std::thread::park();
    }
}
