//! The fake Glance (image v2).

use super::*;

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

pub(super) fn glance(s: &mut State, req: &HttpRequest, rest: &[&str], query: &[(String, String)]) -> Response {
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
