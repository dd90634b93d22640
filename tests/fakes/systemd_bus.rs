//! A fake systemd on D-Bus: `fake-systemd-bus <socket>` listens on a unix
//! socket and answers as the system bus would with systemd behind it:
//! `Hello`, `Manager.LoadUnit`, `Manager.ListUnitsByNames`, and the
//! Unit/Service properties the charm
//! reads, from the services in world.json (so a fake `systemctl restart`
//! is seen). Each call is recorded in calls.jsonl as tool "dbus". Prints
//! "ready" once it accepts connections.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use serde_json::{json, Value};
use zbus::blocking::connection::Builder;
use zbus::interface;
use zbus::zvariant::OwnedObjectPath;

use crate::Fake;

/// systemd's object path for a unit: bytes other than [A-Za-z0-9] as _xx.
pub fn unit_path(unit: &str) -> String {
    let mut p = String::from("/org/freedesktop/systemd1/unit/");
    for b in unit.bytes() {
        if b.is_ascii_alphanumeric() {
            p.push(b as char);
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

fn record(args: &[&str]) {
    let fake = Fake::load();
    fake.append("calls.jsonl", &json!({"tool": "dbus", "args": args}).to_string());
}

fn service(name: &str) -> Value {
    let fake = Fake::load();
    fake.get("services").get(name).cloned().unwrap_or(
        json!({"active_state": "inactive", "sub_state": "dead", "result": "success", "n_restarts": 0, "start": 0}),
    )
}

struct Bus;

#[interface(name = "org.freedesktop.DBus")]
impl Bus {
    fn hello(&self) -> String {
        ":1.42".to_string()
    }
}

struct Manager;

#[interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    fn load_unit(&self, name: &str) -> zbus::fdo::Result<OwnedObjectPath> {
        record(&["LoadUnit", name]);
        OwnedObjectPath::try_from(unit_path(name)).map_err(|e| zbus::fdo::Error::InvalidArgs(e.to_string()))
    }

    /// As systemd: (name, description, load state, active state, sub
    /// state, following, object path, job id, job type, job path) per name.
    #[allow(clippy::type_complexity)]
    fn list_units_by_names(
        &self,
        names: Vec<String>,
    ) -> Vec<(
        String,
        String,
        String,
        String,
        String,
        String,
        OwnedObjectPath,
        u32,
        String,
        OwnedObjectPath,
    )> {
        let mut args = vec!["ListUnitsByNames"];
        args.extend(names.iter().map(String::as_str));
        record(&args);
        names
            .iter()
            .map(|unit| {
                let s = service(unit.strip_suffix(".service").unwrap_or(unit));
                (
                    unit.clone(),
                    format!("fake {unit}"),
                    "loaded".to_string(),
                    s["active_state"].as_str().unwrap_or("inactive").to_string(),
                    s["sub_state"].as_str().unwrap_or("dead").to_string(),
                    String::new(),
                    OwnedObjectPath::try_from(unit_path(unit)).unwrap(),
                    0,
                    String::new(),
                    OwnedObjectPath::try_from("/").unwrap(),
                )
            })
            .collect()
    }
}

struct Unit(String);

#[interface(name = "org.freedesktop.systemd1.Unit")]
impl Unit {
    #[zbus(property)]
    fn active_state(&self) -> String {
        record(&["Get", "ActiveState", &self.0]);
        service(&self.0)["active_state"]
            .as_str()
            .unwrap_or("inactive")
            .to_string()
    }
    #[zbus(property)]
    fn sub_state(&self) -> String {
        record(&["Get", "SubState", &self.0]);
        service(&self.0)["sub_state"].as_str().unwrap_or("dead").to_string()
    }
}

struct Service(String);

#[interface(name = "org.freedesktop.systemd1.Service")]
impl Service {
    #[zbus(property)]
    fn result(&self) -> String {
        record(&["Get", "Result", &self.0]);
        service(&self.0)["result"].as_str().unwrap_or("success").to_string()
    }
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> u32 {
        record(&["Get", "NRestarts", &self.0]);
        service(&self.0)["n_restarts"].as_u64().unwrap_or(0) as u32
    }
    #[zbus(property, name = "ExecMainStartTimestampMonotonic")]
    fn exec_main_start_timestamp_monotonic(&self) -> u64 {
        record(&["Get", "ExecMainStartTimestampMonotonic", &self.0]);
        service(&self.0)["start"].as_u64().unwrap_or(0)
    }
}

pub fn serve(socket: PathBuf) -> std::process::ExitCode {
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).expect("bind the fake bus socket");
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut connections = Vec::new();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        #[allow(deprecated)]
        let mut builder = Builder::unix_stream(stream)
            .server(zbus::Guid::generate())
            .expect("server guid")
            .p2p()
            .serve_at("/org/freedesktop/DBus", Bus)
            .unwrap()
            .serve_at("/org/freedesktop/systemd1", Manager)
            .unwrap();
        for name in ["magnum-api", "magnum-conductor"] {
            let path = zbus::zvariant::OwnedObjectPath::try_from(unit_path(&format!("{name}.service"))).unwrap();
            builder = builder
                .serve_at(path.clone(), Unit(name.to_string()))
                .unwrap()
                .serve_at(path, Service(name.to_string()))
                .unwrap();
        }
        match builder.build() {
            Ok(conn) => connections.push(conn),
            Err(e) => eprintln!("fake-systemd-bus: handshake failed: {e}"),
        }
    }
    std::process::ExitCode::SUCCESS
}
