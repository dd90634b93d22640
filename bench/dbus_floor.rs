//! bench/dbus_floor.rs: the least a process can do to learn from systemd
//! over D-Bus whether the two services run; the real-unit table's fourth
//! dispatcher (not part of the charm; built by bench/realunit.sh with rustc
//! alone, no crates).
//!
//! Connects to the system bus, sends AUTH EXTERNAL, BEGIN, Hello and one
//! Manager.ListUnitsByNames for magnum-api and magnum-conductor in a single
//! write, and reads until the ListUnitsByNames reply has arrived (skipping
//! Hello's reply and the NameAcquired signal). No state file, no stat, no
//! parsing of the answer: any charm that asks systemd over the bus pays at
//! least this.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

fn pad(buf: &mut Vec<u8>, align: usize) {
    while buf.len() % align != 0 {
        buf.push(0);
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    pad(buf, 4);
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

fn field(fields: &mut Vec<u8>, code: u8, sig: &str, val: &str) {
    pad(fields, 8);
    fields.push(code);
    fields.extend_from_slice(&[1, sig.as_bytes()[0], 0]);
    if sig == "g" {
        fields.push(val.len() as u8);
        fields.extend_from_slice(val.as_bytes());
        fields.push(0);
    } else {
        put_str(fields, val);
    }
}

fn call(serial: u32, dest: &str, path: &str, iface: &str, member: &str, names: Option<&[&str]>) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(names) = names {
        body.extend_from_slice(&[0; 4]);
        for n in names {
            put_str(&mut body, n);
        }
        let len = (body.len() - 4) as u32;
        body[..4].copy_from_slice(&len.to_le_bytes());
    }
    let mut fields = Vec::new();
    field(&mut fields, 1, "o", path);
    field(&mut fields, 2, "s", iface);
    field(&mut fields, 3, "s", member);
    field(&mut fields, 6, "s", dest);
    if names.is_some() {
        field(&mut fields, 8, "g", "as");
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

fn main() {
    let mut s = UnixStream::connect("/run/dbus/system_bus_socket").expect("connect to the system bus");
    let mut out = b"\0AUTH EXTERNAL 30\r\nBEGIN\r\n".to_vec();
    out.extend(call(1, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", None));
    out.extend(call(
        2,
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "ListUnitsByNames",
        Some(&["magnum-api.service", "magnum-conductor.service"]),
    ));
    s.write_all(&out).expect("write to the system bus");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut authed = false;
    loop {
        let n = s.read(&mut chunk).expect("read from the system bus");
        assert!(n > 0, "the bus closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if !authed {
            let Some(i) = buf.windows(2).position(|w| w == b"\r\n") else { continue };
            assert!(buf.starts_with(b"OK "), "authentication refused");
            buf.drain(..i + 2);
            authed = true;
        }
        // Whole messages: done at the reply to serial 2 (header field 5).
        while buf.len() >= 16 {
            let word = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]) as usize;
            let total = (16 + word(12)).div_ceil(8) * 8 + word(4);
            if buf.len() < total {
                break;
            }
            let fields = &buf[16..16 + word(12)];
            let mut i = 0;
            while i + 8 <= fields.len() {
                if fields[i] == 5 && fields[i + 2] == b'u' && (buf[1] == 2 || buf[1] == 3) {
                    let serial = u32::from_le_bytes([fields[i + 4], fields[i + 5], fields[i + 6], fields[i + 7]]);
                    if serial == 2 {
                        assert_eq!(buf[1], 2, "ListUnitsByNames failed");
                        return;
                    }
                }
                // next field: code, signature, value (aligned); skip by the
                // value's type (only o, s, g, u appear in headers)
                let sig = fields[i + 2];
                let mut j = i + 4;
                j = match sig {
                    b'u' => j + 4,
                    b'g' => j + 1 + usize::from(fields[j]) + 1,
                    _ => {
                        let len = u32::from_le_bytes([fields[j], fields[j + 1], fields[j + 2], fields[j + 3]]) as usize;
                        j + 4 + len + 1
                    }
                };
                i = j.div_ceil(8) * 8;
            }
            buf.drain(..total);
        }
    }
}
