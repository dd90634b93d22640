//! bench/dbus_probe.rs: what update-status's D-Bus part costs with one
//! thread and one round trip, against the same bus the charm talks to (not
//! part of the charm; built by bench/run.sh with rustc alone, no crates).
//!
//! Connects to DBUS_SYSTEM_BUS_ADDRESS (unix:path=...), authenticates
//! (EXTERNAL), sends Hello and waits for its reply (the bus's time to first
//! answer), then sends GetAll(org.freedesktop.systemd1.Unit) and
//! GetAll(org.freedesktop.systemd1.Service) for magnum-api and
//! magnum-conductor in one write (object paths computed as systemd escapes
//! them, so no LoadUnit) and reads the four replies: every property the
//! charm reads with twelve sequential calls. Prints
//! `connect_us hello_us getall_us` on stdout.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

fn pad(buf: &mut Vec<u8>, align: usize) {
    while buf.len() % align != 0 {
        buf.push(0);
    }
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    pad(buf, 4);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u32(buf, s.len() as u32);
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

fn put_sig(buf: &mut Vec<u8>, s: &str) {
    buf.push(s.len() as u8);
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

/// A header field (code, variant); `fields` starts at message offset 16,
/// which is 8-aligned, so aligning within it is aligning in the message.
fn field(fields: &mut Vec<u8>, code: u8, sig: &str, val: &str) {
    pad(fields, 8);
    fields.push(code);
    put_sig(fields, sig);
    if sig == "g" {
        put_sig(fields, val)
    } else {
        put_str(fields, val)
    }
}

fn method_call(serial: u32, dest: &str, path: &str, iface: &str, member: &str, arg: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(a) = arg {
        put_str(&mut body, a);
    }
    let mut fields = Vec::new();
    field(&mut fields, 1, "o", path);
    field(&mut fields, 2, "s", iface);
    field(&mut fields, 3, "s", member);
    field(&mut fields, 6, "s", dest);
    if arg.is_some() {
        field(&mut fields, 8, "g", "s");
    }
    let mut msg = vec![b'l', 1, 0, 1];
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    msg.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    msg.extend_from_slice(&fields);
    pad(&mut msg, 8);
    msg.extend_from_slice(&body);
    msg
}

/// systemd's object path for a unit: bytes other than [A-Za-z0-9] as _xx.
fn unit_path(unit: &str) -> String {
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

/// Read until `n` whole messages arrived; an error reply fails the probe.
fn read_replies(s: &mut UnixStream, buf: &mut Vec<u8>, mut n: usize) {
    let mut tmp = [0u8; 65536];
    while n > 0 {
        while buf.len() >= 16 {
            let body = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
            let flen = u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
            let total = (16 + flen + 7) / 8 * 8 + body;
            if buf.len() < total {
                break;
            }
            if buf[1] == 3 {
                eprintln!("dbus_probe: error reply: {:?}", String::from_utf8_lossy(&buf[..total]));
                std::process::exit(1);
            }
            buf.drain(..total);
            n -= 1;
            if n == 0 {
                return;
            }
        }
        let got = s.read(&mut tmp).expect("read from the bus");
        assert!(got > 0, "the bus closed the connection");
        buf.extend_from_slice(&tmp[..got]);
    }
}

fn main() {
    let addr = std::env::var("DBUS_SYSTEM_BUS_ADDRESS").expect("DBUS_SYSTEM_BUS_ADDRESS");
    let path = addr.strip_prefix("unix:path=").expect("a unix:path= address");
    let t0 = Instant::now();
    let mut s = UnixStream::connect(path).expect("connect to the bus");
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0);
    let hex: String = uid.to_string().bytes().map(|b| format!("{b:02x}")).collect();
    s.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes()).unwrap();
    let mut line = [0u8; 256];
    let n = s.read(&mut line).unwrap();
    assert!(line[..n].starts_with(b"OK "), "auth: {:?}", String::from_utf8_lossy(&line[..n]));
    let connected = t0.elapsed();
    let mut out = b"BEGIN\r\n".to_vec();
    out.extend(method_call(1, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", None));
    s.write_all(&out).unwrap();
    let mut buf = Vec::new();
    read_replies(&mut s, &mut buf, 1);
    let hello = t0.elapsed();
    let mut out = Vec::new();
    let mut serial = 2;
    for unit in ["magnum-api.service", "magnum-conductor.service"] {
        for iface in ["org.freedesktop.systemd1.Unit", "org.freedesktop.systemd1.Service"] {
            out.extend(method_call(serial, "org.freedesktop.systemd1", &unit_path(unit), "org.freedesktop.DBus.Properties", "GetAll", Some(iface)));
            serial += 1;
        }
    }
    s.write_all(&out).unwrap();
    read_replies(&mut s, &mut buf, 4);
    let all = t0.elapsed();
    println!("{} {} {}", connected.as_micros(), (hello - connected).as_micros(), (all - hello).as_micros());
}
