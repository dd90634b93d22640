//! The fake Nova (compute v2.1): flavors and keypairs.

use super::*;

/// Nova's microversion range (2024.1).
pub const NOVA_MAX_VERSION: &str = "2.96";

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

pub(super) fn nova(s: &mut State, req: &HttpRequest, rest: &[&str], query: &[(String, String)]) -> Response {
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
