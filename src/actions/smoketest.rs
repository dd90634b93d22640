//! `juju run magnum-capi/0 smoketest`: the runbook's section 11 done from
//! the unit. Preflight before creating anything, a template and a cluster
//! with unique names, polling with progress, the new cluster's nodes counted
//! through its own API (kubeconfig made as `openstack coe cluster config`
//! makes it), cleanup always (unless kept on failure), structured results.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::clients::kube::Kube;
use crate::clients::openstack::{enc, OpenStack};
use crate::juju::Stop;
use crate::juju::{HookTools, SecretError};
use crate::plan::credentials;
use crate::plan::kubeconfig::KubeTarget;
use crate::plan::settings::Settings;
use crate::unit::Root;

/// The action's parameters (actions.yaml), checked.
#[derive(Debug, Clone)]
pub struct Params {
    pub image: String,
    pub keypair: String,
    pub external_network: String,
    pub flavor: String,
    pub master_flavor: String,
    pub network_driver: String,
    pub labels: BTreeMap<String, String>,
    pub master_count: u64,
    pub node_count: u64,
    pub timeout_minutes: u64,
    pub poll_seconds: u64,
    pub keep_on_failure: bool,
    pub name_prefix: String,
}

fn name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.chars().all(|c| !c.is_control())
}

impl Params {
    pub fn parse(p: &BTreeMap<String, Value>) -> Result<Params, String> {
        let s = |k: &str, default: Option<&str>| -> Result<String, String> {
            match (p.get(k), default) {
                (Some(Value::String(v)), _) if name_ok(v.trim()) => Ok(v.trim().to_string()),
                (Some(Value::String(v)), Some(d)) if v.trim().is_empty() => Ok(d.to_string()),
                (None | Some(Value::Null), Some(d)) => Ok(d.to_string()),
                (None | Some(Value::Null), None) => Err(format!(
                    "parameter {k} is required: juju run magnum-capi/0 smoketest {k}=<value> ..."
                )),
                _ => Err(format!(
                    "parameter {k} must be a non-empty name without control characters"
                )),
            }
        };
        let n = |k: &str, default: u64, min: u64, max: u64| -> Result<u64, String> {
            match p.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Number(v)) => v
                    .as_u64()
                    .filter(|v| (min..=max).contains(v))
                    .ok_or_else(|| format!("parameter {k} must be an integer from {min} to {max}")),
                Some(_) => Err(format!("parameter {k} must be an integer")),
            }
        };
        let labels_text = s("labels", Some(""))?;
        let mut labels = BTreeMap::new();
        for pair in labels_text.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("label {pair:?} is not key=value"))?;
            if k.trim().is_empty() {
                return Err(format!("label {pair:?} has an empty key"));
            }
            labels.insert(k.trim().to_string(), v.trim().to_string());
        }
        let prefix = s("name-prefix", Some("magnum-smoketest"))?;
        if !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') || prefix.len() > 40 {
            return Err("parameter name-prefix: letters, digits and hyphens, at most 40".into());
        }
        Ok(Params {
            image: s("image", None)?,
            keypair: s("keypair", None)?,
            external_network: s("external-network", None)?,
            flavor: s("flavor", None)?,
            master_flavor: s("master-flavor", None)?,
            network_driver: s("network-driver", Some("calico"))?,
            labels,
            master_count: n("master-count", 1, 1, 7)?,
            node_count: n("node-count", 1, 0, 100)?,
            timeout_minutes: n("timeout-minutes", 30, 1, 24 * 60)?,
            poll_seconds: n("poll-seconds", 30, 0, 3600)?,
            keep_on_failure: match p.get("keep-on-failure") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err("parameter keep-on-failure must be true or false".into()),
            },
            name_prefix: prefix,
        })
    }
}

fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}

/// 8 hex characters, unique enough for two runs not to collide.
fn short_id() -> String {
    let nanos = crate::clock::since_epoch().as_nanos();
    format!("{:08x}", (nanos as u64 ^ (u64::from(std::process::id()) << 32)) as u32)
}

/// The OpenStack client from the credentials secret, authenticated;
/// `Stop::Report` says what to run to fix it.
pub fn openstack(tools: &HookTools, uri: Option<&str>) -> Result<OpenStack, Stop<String>> {
    let fix = |m: String| Err(Stop::Report(m));
    let Some(uri) = uri else {
        return fix("openstack-credentials-secret unset: juju add-secret smoketest-creds auth-url=... username=... password=... project-name=... && juju grant-secret smoketest-creds magnum-capi && juju config magnum-capi openstack-credentials-secret=<secret uri>".into());
    };
    let content = match tools.secret_get(uri, false)? {
        Ok(c) => c,
        Err(SecretError::NotGranted) => {
            return fix(format!(
                "secret {uri} not granted: juju grant-secret <secret name> magnum-capi"
            ))
        }
        Err(SecretError::NotFound) => {
            return fix(format!(
                "secret {uri} not found: check juju secrets and openstack-credentials-secret"
            ))
        }
        Err(SecretError::Other(e)) => return fix(format!("cannot read secret {uri}: {e}")),
    };
    let creds = credentials::parse(&content).map_err(Stop::Report)?;
    let os = OpenStack::new(creds, Duration::from_secs(30))?;
    os.authenticate().map_err(|e| Stop::Report(format!("{e:#}")))?;
    Ok(os)
}

struct Run<'a> {
    tools: &'a HookTools,
    results: Vec<(String, String)>,
}

impl Run<'_> {
    fn set(&mut self, k: &str, v: impl Into<String>) {
        self.results.push((k.to_string(), v.into()));
    }
    fn log(&self, line: &str) -> Result<()> {
        self.tools.action_log(line)
    }
    /// Report and fail the action with `message`.
    fn fail(mut self, result: &str, message: &str) -> Result<()> {
        self.set("result", result);
        self.tools.action_set(&self.results)?;
        self.tools.action_fail(message)
    }
}

pub fn run(_root: &Root, tools: &HookTools) -> Result<()> {
    let start = Instant::now();
    let mut run = Run {
        tools,
        results: Vec::new(),
    };
    let params = match Params::parse(&tools.action_get()?) {
        Ok(p) => p,
        Err(m) => return run.fail("fail", &m),
    };
    let raw = tools.config_get()?;
    let settings = match Settings::parse(&raw) {
        Ok(s) => s,
        Err(m) => return run.fail("fail", &m),
    };
    let os = match openstack(tools, settings.openstack_credentials_secret.as_deref()) {
        Ok(os) => os,
        Err(Stop::Report(m)) => return run.fail("fail", &m),
        Err(Stop::Failed(e)) => return Err(e),
    };

    run.set("credentials", os.method().describe());

    // Preflight: nothing is created unless all of it holds.
    let preflight = match preflight(&os, &params, &settings) {
        Ok(p) => p,
        Err(e) => return run.fail("fail", &format!("preflight: {e:#}")),
    };
    for (name, outcome) in &preflight.checks {
        run.log(&format!("preflight {name}: {outcome}"))?;
        run.set(&format!("preflight.{name}"), outcome.clone());
    }
    if let Some(problem) = preflight.problems.first() {
        run.set("cleanup", "nothing created");
        return run.fail("fail", &format!("preflight failed: {problem}"));
    }

    // Create.
    let id = short_id();
    let name = format!("{}-{id}", params.name_prefix);
    let template_body = json!({
        "name": name,
        "image_id": preflight.image_id,
        "keypair_id": params.keypair,
        "external_network_id": preflight.network_id,
        "flavor_id": params.flavor,
        "master_flavor_id": params.master_flavor,
        "coe": "kubernetes",
        "network_driver": params.network_driver,
        "labels": params.labels,
    });
    let template = match os.magnum_ok("POST", "/clustertemplates", Some(&template_body)) {
        Ok(t) => t["uuid"].as_str().unwrap_or("").to_string(),
        Err(e) => return run.fail("fail", &format!("cluster template create: {e:#}")),
    };
    run.log(&format!("created cluster template {name} ({template})"))?;
    run.set("template.name", &name);
    let cluster_body = json!({"name": name, "cluster_template_id": template, "master_count": params.master_count, "node_count": params.node_count});
    let cluster = match os.magnum_ok("POST", "/clusters", Some(&cluster_body)) {
        Ok(c) => c["uuid"].as_str().unwrap_or("").to_string(),
        Err(e) => {
            let cleanup = delete_template(&os, &template);
            run.set("cleanup", cleanup.clone());
            return run.fail("fail", &format!("cluster create: {e:#}; cleanup: {cleanup}"));
        }
    };
    run.log(&format!("created cluster {name} ({cluster})"))?;
    run.set("cluster.name", &name);
    run.set("cluster.uuid", &cluster);

    // Poll.
    let max_polls = (params.timeout_minutes * 60).div_ceil(params.poll_seconds.max(1));
    let deadline = Duration::from_secs(params.timeout_minutes * 60);
    let mut status = String::from("UNKNOWN");
    let mut reason = String::new();
    let mut api_address = String::new();
    let mut poll = 0;
    let mut poll_errors = 0;
    let outcome = loop {
        poll += 1;
        match os.magnum("GET", &format!("/clusters/{}", enc(&cluster)), None) {
            Ok(a) if a.ok() => {
                status = a.body["status"].as_str().unwrap_or("UNKNOWN").to_string();
                reason = a.body["status_reason"].as_str().unwrap_or("").to_string();
                api_address = a.body["api_address"].as_str().unwrap_or("").to_string();
            }
            Ok(a) => {
                poll_errors += 1;
                run.log(&format!("poll {poll}: {}", a.error_text()))?;
            }
            Err(e) => {
                poll_errors += 1;
                run.log(&format!("poll {poll}: {e:#}"))?;
            }
        }
        run.log(&format!(
            "status {status}, {} elapsed, {poll}/{max_polls}",
            elapsed(start.elapsed())
        ))?;
        match status.as_str() {
            "CREATE_COMPLETE" => break "complete",
            "CREATE_FAILED" => break "failed",
            _ => {}
        }
        if poll >= max_polls || start.elapsed() >= deadline || poll_errors > 10 {
            break "timeout";
        }
        std::thread::sleep(Duration::from_secs(params.poll_seconds));
    };
    run.set("cluster.status", &status);
    run.set("cluster.status-reason", &reason);

    // Nodes, through the new cluster's own API.
    let expected = params.master_count + params.node_count;
    run.set("nodes.expected", expected.to_string());
    let mut passed = false;
    if outcome == "complete" {
        match ready_nodes(&os, &cluster, &api_address) {
            Ok(ready) => {
                run.log(&format!("{ready}/{expected} nodes Ready"))?;
                run.set("nodes.ready", ready.to_string());
                passed = ready == expected;
            }
            Err(e) => {
                run.log(&format!("counting nodes: {e:#}"))?;
                run.set("nodes.ready", "unknown");
                run.set("nodes.error", format!("{e:#}"));
            }
        }
    }

    // Cleanup, always, unless kept for investigation.
    let cleanup = if !passed && params.keep_on_failure {
        run.log(&format!("keeping cluster {name} and its template for investigation"))?;
        "kept".to_string()
    } else {
        run.log(&format!("deleting cluster {name}"))?;
        let c = delete_cluster(&os, &cluster, &params, &run)?;
        let t = if c == "done" {
            delete_template(&os, &template)
        } else {
            "skipped (cluster not deleted)".to_string()
        };
        if c == "done" && t == "done" {
            "done".to_string()
        } else {
            format!("failed: cluster {c}; template {t}")
        }
    };
    run.set("cleanup", &cleanup);
    run.set("duration", elapsed(start.elapsed()));
    let result = match (outcome, passed) {
        (_, true) => "pass",
        ("timeout", _) => "timeout",
        _ => "fail",
    };
    if result == "pass" && cleanup.starts_with("failed") {
        run.set("result", "pass");
        tools.action_set(&run.results)?;
        return tools.action_fail(&format!(
            "the cluster worked but cleanup failed: {cleanup}; delete {name} by hand"
        ));
    }
    if result == "pass" {
        run.set("result", "pass");
        return tools.action_set(&run.results);
    }
    let commands = [
        format!("openstack coe cluster show {name}"),
        "kubectl --kubeconfig /etc/magnum/kubeconfig get cluster,machines -A".to_string(),
        "juju exec --unit magnum/leader -- sudo journalctl -u magnum-conductor --since '30 minutes ago'".to_string(),
        "juju run magnum-capi/0 verify".to_string(),
    ];
    for (i, c) in commands.iter().enumerate() {
        run.set(&format!("investigate.{i}"), c.clone());
    }
    let why = match outcome {
        "failed" => match credentials::trust_hint(os.method(), &reason) {
            Some(hint) => format!("cluster {name} CREATE_FAILED: {reason} ({hint})"),
            None => format!("cluster {name} CREATE_FAILED: {reason}"),
        },
        "timeout" => format!("cluster {name} still {status} after {}", elapsed(start.elapsed())),
        _ => format!("cluster {name} CREATE_COMPLETE but not all {expected} nodes are Ready"),
    };
    run.fail(result, &format!("{why}; cleanup: {cleanup}"))
}

struct Preflight {
    checks: Vec<(String, String)>,
    problems: Vec<String>,
    image_id: String,
    network_id: String,
}

fn preflight(os: &OpenStack, p: &Params, settings: &Settings) -> Result<Preflight> {
    let mut pf = Preflight {
        checks: vec![],
        problems: vec![],
        image_id: String::new(),
        network_id: String::new(),
    };
    let check = |pf: &mut Preflight, name: &str, problem: Option<String>, ok: String| match problem {
        Some(m) => {
            pf.checks.push((name.to_string(), format!("fail - {m}")));
            pf.problems.push(m);
        }
        None => pf.checks.push((name.to_string(), format!("pass - {ok}"))),
    };
    // The image: the driver picks by os_distro and reads kube_version.
    match os.image(&p.image)? {
        None => check(
            &mut pf,
            "image",
            Some(format!("image {} not found: openstack image list", p.image)),
            String::new(),
        ),
        Some(img) => {
            pf.image_id = img["id"].as_str().unwrap_or("").to_string();
            let distro = img["os_distro"].as_str().unwrap_or("");
            let problem = if !["ubuntu", "flatcar"].contains(&distro) {
                Some(format!("image {} has os_distro={distro:?}; the CAPI driver serves ubuntu and flatcar: openstack image set --property os_distro=ubuntu {}", p.image, p.image))
            } else if img["kube_version"].as_str().is_none_or(str::is_empty) {
                let hint = if img.get("kube_tag").is_some() || p.labels.contains_key("kube_tag") {
                    " (it has kube_tag, which the driver does not read)"
                } else {
                    ""
                };
                Some(format!("image {} has no kube_version property{hint}: openstack image set --property kube_version=v1.30.4 {}", p.image, p.image))
            } else {
                None
            };
            check(
                &mut pf,
                "image",
                problem,
                format!(
                    "{} os_distro={distro} kube_version={}",
                    p.image,
                    img["kube_version"].as_str().unwrap_or("")
                ),
            );
        }
    }
    // Flavors against [capi_helm] minimum_flavor_ram/vcpus as configured.
    let setting = |key: &str, default: u64| {
        settings
            .driver_options
            .iter()
            .find(|o| o.key == key)
            .and_then(|o| o.value.parse().ok())
            .unwrap_or(default)
    };
    let (min_ram, min_vcpus) = (setting("minimum_flavor_ram", 2048), setting("minimum_flavor_vcpus", 2));
    for (name, flavor) in [("flavor", &p.flavor), ("master-flavor", &p.master_flavor)] {
        match os.flavor(flavor)? {
            None => check(
                &mut pf,
                name,
                Some(format!("flavor {flavor} not found: openstack flavor list")),
                String::new(),
            ),
            Some(f) => {
                let (ram, vcpus) = (f["ram"].as_u64().unwrap_or(0), f["vcpus"].as_u64().unwrap_or(0));
                let problem = (ram < min_ram || vcpus < min_vcpus).then(|| {
                    format!("flavor {flavor} has {vcpus} vCPU / {ram} MiB, under the driver's minimum {min_vcpus} vCPU / {min_ram} MiB: pick a larger {name}")
                });
                check(&mut pf, name, problem, format!("{flavor} {vcpus} vCPU / {ram} MiB"));
            }
        }
    }
    let kp = os.keypair_exists(&p.keypair)?;
    check(
        &mut pf,
        "keypair",
        (!kp).then(|| {
            format!(
                "keypair {} not found: openstack keypair create --public-key ~/.ssh/id_rsa.pub {}",
                p.keypair, p.keypair
            )
        }),
        p.keypair.clone(),
    );
    match os.network(&p.external_network)? {
        None => check(
            &mut pf,
            "external-network",
            Some(format!(
                "network {} not found: openstack network list --external",
                p.external_network
            )),
            String::new(),
        ),
        Some(n) => {
            pf.network_id = n["id"].as_str().unwrap_or("").to_string();
            let external = n["router:external"].as_bool().unwrap_or(false);
            check(
                &mut pf,
                "external-network",
                (!external).then(|| {
                    format!(
                        "network {} is not external: openstack network list --external",
                        p.external_network
                    )
                }),
                p.external_network.clone(),
            );
        }
    }
    // Leftovers of earlier runs: reported, not fatal (names are unique).
    let prefix = format!("{}-", p.name_prefix);
    let mut left = Vec::new();
    for (kind, path, key) in [
        ("cluster", "/clusters", "clusters"),
        ("template", "/clustertemplates", "clustertemplates"),
    ] {
        if let Ok(list) = os.magnum_ok("GET", path, None) {
            for item in list[key].as_array().into_iter().flatten() {
                if let Some(n) = item["name"].as_str().filter(|n| n.starts_with(&prefix)) {
                    left.push(format!("{kind} {n}"));
                }
            }
        }
    }
    pf.checks.push((
        "leftovers".into(),
        if left.is_empty() {
            "pass - none".into()
        } else {
            format!(
                "warning - from earlier runs: {} (openstack coe cluster delete / cluster template delete)",
                left.join(", ")
            )
        },
    ));
    Ok(pf)
}

/// The new cluster's Ready nodes: its kubeconfig is made as `openstack coe
/// cluster config` makes it (the cluster CA, and a client certificate for
/// a fresh key signed by Magnum from a CSR with CN=admin, O=system:masters).
fn ready_nodes(os: &OpenStack, cluster: &str, api_address: &str) -> Result<u64> {
    let ca = os.magnum_ok("GET", &format!("/certificates/{}", enc(cluster)), None)?;
    let ca_pem = ca["pem"]
        .as_str()
        .context("no CA in the certificates answer")?
        .to_string();
    let key = rcgen::KeyPair::generate().context("cannot make a key")?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).context("csr params")?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "admin");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    let csr = params
        .serialize_request(&key)
        .context("cannot make a CSR")?
        .pem()
        .context("CSR to PEM")?;
    let signed = os.magnum_ok(
        "POST",
        "/certificates",
        Some(&json!({"cluster_uuid": cluster, "csr": csr})),
    )?;
    let cert_pem = signed["pem"]
        .as_str()
        .context("no certificate in the answer")?
        .to_string();
    let target = KubeTarget {
        server: api_address.to_string(),
        ca_pem: Some(ca_pem.into_bytes()),
        client_cert_pem: Some(cert_pem.into_bytes()),
        client_key_pem: Some(key.serialize_pem().into_bytes()),
        token: None,
        insecure_skip_tls_verify: false,
        plugin: false,
    };
    let kube = Kube::new(target, Duration::from_secs(20))?;
    let (status, body) = kube.get("/api/v1/nodes")?;
    if status != 200 {
        anyhow::bail!("GET {api_address}/api/v1/nodes: HTTP {status}");
    }
    let nodes: Value = serde_json::from_str(&body).context("nodes list is not JSON")?;
    Ok(nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count() as u64)
}

fn delete_cluster(os: &OpenStack, cluster: &str, p: &Params, run: &Run) -> Result<String> {
    let path = format!("/clusters/{}", enc(cluster));
    match os.magnum("DELETE", &path, None) {
        Ok(a) if a.ok() || a.status == 404 => {}
        Ok(a) => return Ok(format!("delete refused ({})", a.error_text())),
        Err(e) => return Ok(format!("delete failed ({e:#})")),
    }
    let max = (p.timeout_minutes * 60).div_ceil(p.poll_seconds.max(1));
    for i in 1..=max {
        match os.magnum("GET", &path, None) {
            Ok(a) if a.status == 404 => return Ok("done".into()),
            Ok(a) if a.ok() => {
                let status = a.body["status"].as_str().unwrap_or("");
                run.log(&format!("deleting: status {status}, {i}/{max}"))?;
                if status == "DELETE_FAILED" {
                    return Ok(format!(
                        "DELETE_FAILED: {}",
                        a.body["status_reason"].as_str().unwrap_or("")
                    ));
                }
            }
            Ok(a) => run.log(&format!("deleting: {}", a.error_text()))?,
            Err(e) => run.log(&format!("deleting: {e:#}"))?,
        }
        std::thread::sleep(Duration::from_secs(p.poll_seconds));
    }
    Ok("still deleting at the timeout".into())
}

/// Magnum refuses a template delete with an error body (the CLI hides it
/// behind exit 0, FACTS.md): check the answer, never assume.
fn delete_template(os: &OpenStack, template: &str) -> String {
    match os.magnum("DELETE", &format!("/clustertemplates/{}", enc(template)), None) {
        Ok(a) if a.ok() || a.status == 404 => "done".into(),
        Ok(a) => format!("refused ({})", a.error_text()),
        Err(e) => format!("failed ({e:#})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parameters_have_the_runbooks_defaults() {
        let params = Params::parse(&p(json!({"image": "ubuntu-jammy", "keypair": "ops", "external-network": "ext_net", "flavor": "m1.medium", "master-flavor": "m1.medium", "labels": "boot_volume_size=20, octavia_provider=ovn"}))).unwrap();
        assert_eq!(params.network_driver, "calico");
        assert_eq!(
            (
                params.master_count,
                params.node_count,
                params.timeout_minutes,
                params.poll_seconds
            ),
            (1, 1, 30, 30)
        );
        assert_eq!(params.labels.get("octavia_provider").map(String::as_str), Some("ovn"));
        assert_eq!(params.name_prefix, "magnum-smoketest");
    }

    #[test]
    fn bad_parameters_say_which() {
        assert!(Params::parse(&p(json!({}))).unwrap_err().contains("image"));
        let base = json!({"image": "i", "keypair": "k", "external-network": "n", "flavor": "f", "master-flavor": "f"});
        for (k, v, want) in [
            ("labels", json!("novalue"), "key=value"),
            ("master-count", json!(0), "master-count"),
            ("name-prefix", json!("a b"), "name-prefix"),
            ("image", json!("x\ny"), "image"),
            ("keep-on-failure", json!("yes"), "keep-on-failure"),
        ] {
            let mut b = base.clone();
            b[k] = v;
            assert!(Params::parse(&p(b)).unwrap_err().contains(want), "{k}");
        }
    }
}
