//! The fake Keystone (identity v3): tokens for application credentials and
//! passwords, token validation and revocation.

use super::*;

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

pub(super) fn keystone(s: &mut State, req: &HttpRequest, rest: &[&str]) -> Response {
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
        let catalog = catalog(&s.base, &s.scenario.region);
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
