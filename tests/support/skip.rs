//! Skipping a test that needs a real tool (a PyPI venv, kubectl) which is
//! not there: loudly, and never under MAGNUM_CAPI_REQUIRE_REAL (CI), where
//! it is a failure instead. Shared by tests/oslo_config.rs (through `mod
//! support`) and tests/openstack_fake.rs (by path).

use std::io::Write;

/// Panic when MAGNUM_CAPI_REQUIRE_REAL is set; else say on the test's
/// output that it skipped and why, and once per test binary on the real
/// stderr too (a passing test's eprintln! is captured, so a skipped
/// real-tool run could otherwise pass unseen). `what` names the file and
/// the tool, `how` what is missing and how to get it.
pub fn skip_real(what: &str, how: &str) {
    if std::env::var_os("MAGNUM_CAPI_REQUIRE_REAL").is_some() {
        panic!("MAGNUM_CAPI_REQUIRE_REAL is set and {how}");
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("SKIPPED {test}: {how}");
    static LOUD: std::sync::Once = std::sync::Once::new();
    LOUD.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n**************** SKIPPED: {what} ****************\n{how}\n(set MAGNUM_CAPI_REQUIRE_REAL=1 to make this a failure)\n***************************************************************\n"
        );
    });
}
