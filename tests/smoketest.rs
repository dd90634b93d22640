//! `juju run magnum-capi/0 smoketest` against the fake cloud (Keystone,
//! Glance, Nova, Neutron, Magnum and each new cluster's Kubernetes API),
//! which tests/openstack_fake.rs keeps honest against the real openstack
//! CLI. poll-seconds 0: the fake advances per poll, no sleeps.

mod support;

use serde_json::{json, Value};
use support::openstack::{Create, Delete, FakeOpenStack, Fault, Scenario};
use support::{Unit, KUBECONFIG};

const CREDS: &str = "secret:d1f8kq7mp25c77screds";

fn unit_for(cloud: &FakeOpenStack) -> Unit {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG);
    let c = cloud.credentials();
    unit.secret(CREDS, json!({"auth-url": cloud.auth_url(), "application-credential-id": c.application_credential_id, "application-credential-secret": c.application_credential_secret, "region-name": cloud.region()}));
    unit.config("openstack-credentials-secret", CREDS);
    unit.hook("install").run();
    unit
}

fn params(extra: Value) -> Value {
    let mut p = json!({"image": "ubuntu-jammy-kube-v1.30.4", "keypair": "mykey", "external-network": "public", "flavor": "m1.medium", "master-flavor": "m1.medium", "poll-seconds": 0, "timeout-minutes": 1});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

fn run(unit: &Unit, extra: Value) -> (Value, Option<String>, Vec<String>) {
    unit.action("smoketest", params(extra)).run();
    (unit.action_results(), unit.action_failed(), unit.action_log())
}

#[test]
fn a_healthy_cloud_passes_and_is_cleaned_up() {
    let cloud = FakeOpenStack::start(Scenario::default().create(Create::Complete { in_progress: 3 }));
    let unit = unit_for(&cloud);
    let (r, failed, log) = run(&unit, json!({"labels": "boot_volume_size=20,octavia_provider=ovn"}));
    assert_eq!(failed, None, "{r}\n{log:#?}");
    assert_eq!(r["result"], "pass");
    assert_eq!(r["cluster"]["status"], "CREATE_COMPLETE");
    assert_eq!(r["nodes"]["ready"], "2");
    assert_eq!(r["nodes"]["expected"], "2");
    assert_eq!(r["cleanup"], "done");
    assert!(
        log.iter()
            .any(|l| l.starts_with("status CREATE_IN_PROGRESS, ") && l.contains("/60")),
        "{log:#?}"
    );
    assert!(
        cloud.clusters().is_empty() && cloud.templates().is_empty(),
        "cleanup left resources"
    );
    // Unique names: <prefix>-<8 hex>.
    let name = r["cluster"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("magnum-smoketest-") && name.len() == "magnum-smoketest-".len() + 8,
        "{name}"
    );
    // The secret and the token never reach the output.
    let out = format!("{r} {log:?}");
    assert!(!out.contains(&cloud.credentials().application_credential_secret));
    for t in cloud.tokens_issued() {
        assert!(!out.contains(&t));
    }
}

#[test]
fn create_failed_is_reported_with_the_reason_and_cleaned_up() {
    let cloud = FakeOpenStack::start(Scenario::default().create(Create::Fail {
        in_progress: 2,
        reason: "Failed to create cluster: quota exceeded for instances".into(),
    }));
    let unit = unit_for(&cloud);
    let (r, failed, _) = run(&unit, json!({}));
    assert_eq!(r["result"], "fail");
    assert_eq!(r["cluster"]["status"], "CREATE_FAILED");
    assert!(r["cluster"]["status-reason"]
        .as_str()
        .unwrap()
        .contains("quota exceeded"));
    assert!(failed.unwrap().contains("quota exceeded"));
    assert_eq!(r["cleanup"], "done");
    assert!(r["investigate"]["0"]
        .as_str()
        .unwrap()
        .starts_with("openstack coe cluster show magnum-smoketest-"));
    assert!(cloud.clusters().is_empty() && cloud.templates().is_empty());
}

#[test]
fn keep_on_failure_keeps_the_cluster() {
    let cloud = FakeOpenStack::start(Scenario::default().create(Create::Fail {
        in_progress: 1,
        reason: "boom".into(),
    }));
    let unit = unit_for(&cloud);
    let (r, _, _) = run(&unit, json!({"keep-on-failure": true}));
    assert_eq!(r["cleanup"], "kept");
    assert_eq!(cloud.clusters().len(), 1);
    assert_eq!(cloud.templates().len(), 1);
}

#[test]
fn a_cluster_that_never_completes_times_out_and_is_deleted() {
    let cloud = FakeOpenStack::start(Scenario::default().create(Create::Never));
    let unit = unit_for(&cloud);
    let (r, failed, log) = run(&unit, json!({"timeout-minutes": 1}));
    assert_eq!(r["result"], "timeout", "{r}");
    assert!(failed.unwrap().contains("still CREATE_IN_PROGRESS"));
    assert!(
        log.iter().any(|l| l.contains("60/60")),
        "bounded by timeout / poll: {log:?}"
    );
    assert_eq!(r["cleanup"], "done");
}

#[test]
fn a_5xx_and_a_401_mid_poll_are_survived() {
    let cloud = FakeOpenStack::start(
        Scenario::default()
            .create(Create::Complete { in_progress: 4 })
            .fault_at_poll(2, Fault::ServerError(503))
            .fault_at_poll(3, Fault::Unauthorized),
    );
    let unit = unit_for(&cloud);
    let (r, failed, _) = run(&unit, json!({}));
    assert_eq!(failed, None, "{r}");
    assert_eq!(r["result"], "pass");
    assert!(cloud.auth_count() >= 2, "re-authenticated after the 401");
}

#[test]
fn a_failing_delete_is_reported_never_hidden() {
    let cloud = FakeOpenStack::start(Scenario::default().delete(Delete::Fail {
        in_progress: 1,
        times: 5,
        reason: "Stack delete failed".into(),
    }));
    let unit = unit_for(&cloud);
    let (r, failed, _) = run(&unit, json!({}));
    assert!(r["cleanup"].as_str().unwrap().starts_with("failed"), "{r}");
    assert!(failed.unwrap().contains("cleanup failed"));
}

#[test]
fn preflight_refuses_before_creating_anything() {
    for (extra, want) in [
        (json!({"image": "ubuntu-kube-tag-only"}), "kube_version"),
        (json!({"image": "cirros-0.6.2"}), "os_distro"),
        (json!({"image": "no-such-image"}), "not found"),
        (json!({"flavor": "m1.small"}), "minimum"),
        (json!({"keypair": "nokey"}), "keypair"),
        (json!({"external-network": "private"}), "not external"),
    ] {
        let cloud = FakeOpenStack::start(Scenario::default());
        let unit = unit_for(&cloud);
        let (r, failed, _) = run(&unit, extra.clone());
        let failed = failed.unwrap_or_else(|| panic!("{extra}: did not fail"));
        assert!(failed.contains(want), "{extra}: {failed}");
        assert_eq!(r["result"], "fail");
        assert_eq!(
            cloud.count("POST", "/magnum/v1/clustertemplates"),
            0,
            "{extra}: created something"
        );
    }
}

#[test]
fn leftovers_of_an_earlier_run_are_reported() {
    let cloud = FakeOpenStack::start(Scenario {
        leftover_clusters: vec!["magnum-smoketest-deadbeef".into()],
        ..Scenario::default()
    });
    let unit = unit_for(&cloud);
    let (r, _, _) = run(&unit, json!({}));
    assert!(
        r["preflight"]["leftovers"]
            .as_str()
            .unwrap()
            .contains("magnum-smoketest-deadbeef"),
        "{r}"
    );
}

#[test]
fn wrong_credentials_fail_at_once_with_the_fix() {
    let cloud = FakeOpenStack::start(Scenario::default());
    let unit = unit_for(&cloud);
    unit.secret(CREDS, json!({"auth-url": cloud.auth_url(), "application-credential-id": "wrong", "application-credential-secret": "wrong"}));
    let (_, failed, _) = run(&unit, json!({}));
    assert!(failed.unwrap().contains("openstack-credentials-secret"));
    assert_eq!(cloud.count("POST", "/magnum/v1/clustertemplates"), 0);
    unit.unset_config("openstack-credentials-secret");
    let (_, failed, _) = run(&unit, json!({}));
    assert!(failed.unwrap().contains("juju add-secret"));
}

/// Juju pins the revision of a secret a unit first read (secret-get without
/// --refresh returns it until the unit refreshes). A credentials rotation
/// reaches the next smoketest through the secret-changed hook that Juju
/// fires for it (JUJU_SECRET_ID names it), which refreshes the pin (issue
/// 19, item 1).
#[test]
fn a_credentials_rotation_reaches_the_next_smoketest() {
    let cloud = FakeOpenStack::start(Scenario::default().create(Create::Complete { in_progress: 1 }));
    let unit = unit_for(&cloud);
    let c = cloud.credentials();
    let creds = |secret: &str| json!({"auth-url": cloud.auth_url(), "application-credential-id": c.application_credential_id, "application-credential-secret": secret, "region-name": cloud.region()});
    // Revision 1: a revoked secret; the first read pins it.
    unit.secret(CREDS, creds("revoked-credential-secret"));
    let (r, failed, _) = run(&unit, json!({}));
    assert_eq!(r["result"], "fail", "{r}");
    assert!(failed.is_some());
    // juju update-secret: revision 2 is good, but the unit still reads
    // revision 1 until it refreshes.
    unit.secret(CREDS, creds(&c.application_credential_secret));
    let (r, _, _) = run(&unit, json!({}));
    assert_eq!(r["result"], "fail", "the pinned revision is still the revoked one: {r}");
    // Juju fires secret-changed for the credentials secret.
    unit.hook("secret-changed")
        .env(&[("JUJU_SECRET_ID", CREDS), ("JUJU_SECRET_LABEL", "")])
        .run();
    let (r, failed, log) = run(&unit, json!({}));
    assert_eq!(failed, None, "{r}\n{log:#?}");
    assert_eq!(r["result"], "pass", "{r}");
}
