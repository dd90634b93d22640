//! The fake Neutron (network v2.0).

use super::*;

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

pub(super) fn neutron(s: &mut State, req: &HttpRequest, rest: &[&str], query: &[(String, String)]) -> Response {
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
