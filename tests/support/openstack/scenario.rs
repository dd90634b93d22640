//! The scenario: what the cloud holds and how it behaves.

use super::*;

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
