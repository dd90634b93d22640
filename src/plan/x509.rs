//! Just enough DER to check a kubeconfig's certificates and key: a
//! certificate's notAfter and public key, and whether a private key is the
//! one that public key belongs to (ring parses the keys). Pure; reads
//! bytes only, and no input panics (fuzz/fuzz_targets/x509.rs).

use ring::signature::{self, KeyPair};

/// One TLV: (tag, contents, rest).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The number in `digits`, which must be ASCII digits only (a certificate
/// date is bytes, not text: a multi-byte character is refused here, never
/// sliced through).
fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as seconds
/// since the epoch; None for anything else, an impossible date included.
fn time(tag: u8, body: &[u8]) -> Option<i64> {
    let digits = body.strip_suffix(b"Z")?;
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy = number(&digits[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (number(&digits[..4])?, &digits[4..]),
        _ => return None,
    };
    let n = |i: usize| number(&rest[i..i + 2]);
    let month = time::Month::try_from(u8::try_from(n(0)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(n(2)?).ok()?).ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(n(4)?).ok()?,
        u8::try_from(n(6)?).ok()?,
        u8::try_from(n(8)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp())
}

/// What the kubeconfig checks need of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    /// notAfter, in seconds since the epoch.
    pub not_after: i64,
    /// The subjectPublicKey bits (an RSAPublicKey, an EC point, an Ed25519
    /// key), without the BIT STRING's unused-bits byte.
    pub public_key: Vec<u8>,
}

/// Read a DER certificate; None if it is not one.
pub fn parse(der: &[u8]) -> Option<Cert> {
    let (0x30, cert, _) = tlv(der)? else { return None };
    let (0x30, tbs, _) = tlv(cert)? else { return None };
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (0x30, validity, rest) = tlv(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, body, _) = tlv(after_not_before)?;
    let not_after = time(tag, body)?;
    // subject, then subjectPublicKeyInfo.
    let rest = tlv(rest)?.2;
    let (0x30, spki, _) = tlv(rest)? else { return None };
    let (0x30, _algorithm, rest) = tlv(spki)? else {
        return None;
    };
    let (0x03, bits, _) = tlv(rest)? else { return None };
    let (&0, key) = bits.split_first()? else { return None };
    Some(Cert {
        not_after,
        public_key: key.to_vec(),
    })
}

/// The certificate's notAfter, in seconds since the epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    parse(der).map(|c| c.not_after)
}

/// `YYYY-MM-DD` of seconds since the epoch.
pub fn date(epoch: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(epoch) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => format!("{epoch} s after 1970"),
    }
}

/// How a PEM private key is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// `RSA PRIVATE KEY` (kubeadm's).
    Pkcs1,
    /// `EC PRIVATE KEY` (k3s's).
    Sec1,
    /// `PRIVATE KEY`.
    Pkcs8,
}

/// The public key of a private key, in the form a certificate's
/// subjectPublicKey holds it. The error names what is wrong, never the key.
pub fn public_key(form: KeyForm, der: &[u8]) -> Result<Vec<u8>, String> {
    let rng = ring::rand::SystemRandom::new();
    let rejected = |what: &str, e: ring::error::KeyRejected| format!("is not a usable {what} private key ({e})");
    match form {
        KeyForm::Pkcs1 => signature::RsaKeyPair::from_der(der)
            .map(|k| k.public_key().as_ref().to_vec())
            .map_err(|e| rejected("RSA", e)),
        KeyForm::Sec1 => {
            // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
            //   [0] parameters, [1] publicKey BIT STRING } (RFC 5915).
            let bad = || "is not a readable EC private key".to_string();
            let (0x30, seq, _) = tlv(der).ok_or_else(bad)? else {
                return Err(bad());
            };
            let (0x02, [1], rest) = tlv(seq).ok_or_else(bad)? else {
                return Err(bad());
            };
            let (0x04, private, mut rest) = tlv(rest).ok_or_else(bad)? else {
                return Err(bad());
            };
            let mut public = None;
            while let Some((tag, body, next)) = tlv(rest) {
                if tag == 0xa1 {
                    if let Some((0x03, bits, _)) = tlv(body) {
                        public = bits.split_first().filter(|(u, _)| **u == 0).map(|(_, k)| k);
                    }
                }
                rest = next;
            }
            let public = public.ok_or("is an EC private key without its public key")?;
            let alg = match private.len() {
                32 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                48 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                _ => return Err("is an EC private key on a curve other than P-256 or P-384".into()),
            };
            signature::EcdsaKeyPair::from_private_key_and_public_key(alg, private, public, &rng)
                .map(|k| k.public_key().as_ref().to_vec())
                .map_err(|e| rejected("EC", e))
        }
        KeyForm::Pkcs8 => {
            if let Ok(k) = signature::RsaKeyPair::from_pkcs8(der) {
                return Ok(k.public_key().as_ref().to_vec());
            }
            for alg in [
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            ] {
                if let Ok(k) = signature::EcdsaKeyPair::from_pkcs8(alg, der, &rng) {
                    return Ok(k.public_key().as_ref().to_vec());
                }
            }
            signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map(|k| k.public_key().as_ref().to_vec())
                .map_err(|_| "is not a usable RSA, EC (P-256, P-384) or Ed25519 private key".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        use rustls_pki_types::pem::{PemObject, SectionKind};
        <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes())
            .next()
            .expect("a PEM section")
            .expect("valid PEM")
            .1
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2524607999));
        assert_eq!(time(0x18, b"20261124000000Z"), Some(1795478400));
        assert_eq!(date(1795478400), "2026-11-24");
        assert_eq!(date(0), "1970-01-01");
        assert!(time(0x17, b"garbage").is_none());
        assert!(time(0x17, b"701301000000Z").is_none(), "month 13");
        assert!(time(0x18, b"20260230000000Z").is_none(), "30 February");
        assert!(time(0x17, b"+70101000000Z").is_none(), "a sign is not a digit");
    }

    /// A multi-byte UTF-8 character where the digits belong: refused, not
    /// sliced through (the old reader panicked on both: `s[..2]`, `s[..4]`).
    #[test]
    fn non_ascii_times_are_refused_without_a_panic() {
        assert!(time(0x17, "2é1231235959Z".as_bytes()).is_none());
        assert!(time(0x17, "é12312359Z".as_bytes()).is_none());
        assert!(time(0x18, "202é1231235959Z".as_bytes()).is_none());
        assert!(time(0x18, "٢٠٢٦1231235959Z".as_bytes()).is_none());
    }

    #[test]
    fn a_certificate_with_a_non_ascii_not_after_is_not_read() {
        for (pem, tag_len, at) in [
            // A two-byte character across byte 4 of a GeneralizedTime
            // (`s[..4]`) and across byte 2 of a UTCTime (`s[..2]`).
            (include_str!("testdata/rsa.crt"), (0x18u8, 15usize), 3usize),
            (include_str!("testdata/expired.crt"), (0x17, 13), 1),
        ] {
            let good = der(pem);
            let cert = parse(&good).expect("the test certificate reads");
            // Find notAfter's TLV: the second time in validity.
            let stamp = crate::plan::x509::date(cert.not_after);
            assert!(stamp.len() == 10);
            let mut found = None;
            for i in 0..good.len().saturating_sub(tag_len.1 + 2) {
                if good[i] == tag_len.0
                    && usize::from(good[i + 1]) == tag_len.1
                    && time(tag_len.0, &good[i + 2..i + 2 + tag_len.1]) == Some(cert.not_after)
                {
                    found = Some(i + 2);
                }
            }
            let start = found.unwrap_or_else(|| panic!("no notAfter of tag {:#x} in the test certificate", tag_len.0));
            let mut bad = good.clone();
            bad[start + at..start + at + 2].copy_from_slice("é".as_bytes());
            assert!(parse(&bad).is_none());
            assert!(not_after(&bad).is_none());
        }
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(not_after(b"").is_none());
        assert!(not_after(&[0x30, 0x82, 0xff]).is_none());
        assert!(not_after(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_none());
    }

    #[test]
    fn keys_and_their_certificates() {
        let rsa = parse(&der(include_str!("testdata/rsa.crt"))).unwrap();
        let ec = parse(&der(include_str!("testdata/ec.crt"))).unwrap();
        let rsa_key = public_key(KeyForm::Pkcs1, &der(include_str!("testdata/rsa.key"))).unwrap();
        let ec_key = public_key(KeyForm::Sec1, &der(include_str!("testdata/ec.key"))).unwrap();
        let ec_pk8 = public_key(KeyForm::Pkcs8, &der(include_str!("testdata/ec.pk8"))).unwrap();
        assert_eq!(rsa.public_key, rsa_key);
        assert_eq!(ec.public_key, ec_key);
        assert_eq!(ec.public_key, ec_pk8);
        assert_ne!(rsa.public_key, ec_key);
        assert_eq!(
            date(parse(&der(include_str!("testdata/expired.crt"))).unwrap().not_after),
            "2024-01-02"
        );
        assert!(public_key(KeyForm::Pkcs1, b"\x30\x03\x02\x01\x00").is_err());
        assert!(public_key(KeyForm::Sec1, &der(include_str!("testdata/rsa.key"))).is_err());
        assert!(public_key(KeyForm::Pkcs8, &der(include_str!("testdata/rsa.key"))).is_err());
    }
}
