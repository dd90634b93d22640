//! The fake Magnum (container-infra v1): microversions, cluster templates,
//! clusters and their state machine, certificates.

use super::pki::sign_csr;
use super::*;

/// Magnum's microversion range (magnum 18, OpenStack 2024.1).
pub const MAGNUM_MIN_VERSION: &str = "1.1";
pub const MAGNUM_MAX_VERSION: &str = "1.11";

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

pub(super) fn magnum(s: &mut State, req: &HttpRequest, rest: &[&str], query: &[(String, String)]) -> Response {
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

pub(super) fn new_template(base: &str, sc: &Scenario, b: &Map<String, Value>, distro: &str) -> Map<String, Value> {
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

pub(super) fn new_cluster(
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
