//! A cluster's Kubernetes API: what `api_address` points at, over TLS
//! with the cluster's CA, answering a client certificate that CA signed.

use super::*;

pub(super) struct KubeApi {
    server: Server,
}

impl KubeApi {
    pub(super) fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.server.port())
    }

    pub(super) fn start(ca: &ClusterCa, cluster: &str, masters: u32, workers: u32, ready: u32) -> KubeApi {
        let (server_der, server_key_der) = ca.server_cert();
        let pki = Pki {
            ca_pem: ca.pem.clone(),
            ca_der: ca.der.clone(),
            server_der,
            server_key_der,
        };
        let config = pki.server_config(Some(&ca.der));
        let nodes = node_list(cluster, masters, workers, ready);
        // A connection is kept until the client closes it (or 30 s idle),
        // `Connection: close` or not.
        let options = http::Options::tls(config, Duration::from_secs(30));
        let server = Server::start("127.0.0.1:0", options, move |req: &HttpRequest| answer(req, &nodes)).unwrap();
        KubeApi { server }
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

/// The answer to one request: 401 without a client certificate, else
/// what kubectl reads for discovery and the nodes.
fn answer(req: &HttpRequest, nodes: &Value) -> Response {
    let status_json = |code: u16, reason: &str, message: &str| {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code})
    };
    let (status, body) = if !req.client_cert {
        (401, status_json(401, "Unauthorized", "Unauthorized"))
    } else {
        match (req.method.as_str(), req.path.as_str()) {
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
    Response::json(status, &body)
}
