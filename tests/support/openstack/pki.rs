//! PKI: the cloud's CA (HTTPS), each cluster's CA, CSR signing.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    PublicKeyData, SanType, SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::*;

pub(super) struct Pki {
    pub(super) ca_pem: String,
    pub(super) ca_der: Vec<u8>,
    pub(super) server_der: Vec<u8>,
    pub(super) server_key_der: Vec<u8>,
}

impl Pki {
    /// A CA and a server certificate for 127.0.0.1 and localhost.
    pub(super) fn server(ca_name: &str) -> Pki {
        let ca = ClusterCa::new(ca_name);
        let (server_der, server_key_der) = ca.server_cert();
        Pki {
            ca_pem: ca.pem.clone(),
            ca_der: ca.der.clone(),
            server_der,
            server_key_der,
        }
    }

    /// A rustls server config; with `client_ca`, client certificates are
    /// verified against it (but optional at the TLS layer).
    pub(super) fn server_config(&self, client_ca: Option<&[u8]>) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(CertificateDer::from(ca.to_vec())).unwrap();
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        Arc::new(
            builder
                .with_single_cert(
                    vec![CertificateDer::from(self.server_der.clone())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
                )
                .unwrap(),
        )
    }
}

impl ClusterCa {
    pub(super) fn new(name: &str) -> ClusterCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        ClusterCa {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for 127.0.0.1 signed by this CA: (cert DER,
    /// PKCS#8 key DER).
    pub(super) fn server_cert(&self) -> (Vec<u8>, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }
}

/// A public key taken from a CSR, for rcgen to put in a certificate.
struct CsrKey {
    raw: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

/// One DER TLV: (tag, content, the whole TLV, what follows).
/// (tag, content, the whole TLV, what follows).
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn der(input: &[u8]) -> Result<Tlv<'_>, String> {
    let bad = || "truncated DER".to_string();
    let tag = *input.first().ok_or_else(bad)?;
    let first = *input.get(1).ok_or_else(bad)?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err("bad DER length".into());
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i).ok_or_else(bad)? as usize;
        }
        (len, 2 + n)
    };
    if input.len() < hdr + len {
        return Err(bad());
    }
    Ok((tag, &input[hdr..hdr + len], &input[..hdr + len], &input[hdr + len..]))
}

/// PEM to DER (the first block with this label).
pub fn pem_to_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let b64: String = pem[start..stop].split_ascii_whitespace().collect();
    PEM_BASE64.decode(b64).ok()
}

/// Standard base64 as PEM bodies use it, padding optional.
const PEM_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];

/// Signs a PEM CSR with the cluster CA, as magnum's conductor does: the
/// CSR's self-signature is checked, its public key and subject CN/O are
/// kept, and the certificate is for client authentication.
pub(super) fn sign_csr(ca: &ClusterCa, csr_pem: &str) -> Result<String, String> {
    let der_bytes = pem_to_der(csr_pem, "CERTIFICATE REQUEST").ok_or("not a PEM CERTIFICATE REQUEST")?;
    let (tag, csr, _, _) = der(&der_bytes)?;
    if tag != 0x30 {
        return Err("not a CertificationRequest".into());
    }
    let (_, info, info_tlv, rest) = der(csr)?;
    let (_, sig_alg, _, rest) = der(rest)?;
    let (tag, sig, _, _) = der(rest)?;
    if tag != 0x03 || sig.is_empty() {
        return Err("no signature".into());
    }
    let signature = &sig[1..];
    let (_, sig_oid, _, _) = der(sig_alg)?;

    let (_, _version, _, rest) = der(info)?;
    let (_, subject, _, rest) = der(rest)?;
    let (_, spki, _, _) = der(rest)?;
    let (_, alg, _, rest) = der(spki)?;
    let (tag, key_bits, _, _) = der(rest)?;
    if tag != 0x03 || key_bits.is_empty() {
        return Err("no public key".into());
    }
    let raw = key_bits[1..].to_vec();
    let (_, key_oid, _, alg_rest) = der(alg)?;
    let curve = der(alg_rest).ok().map(|(_, c, _, _)| c);
    let (alg, verify): (
        &'static SignatureAlgorithm,
        &'static dyn ring::signature::VerificationAlgorithm,
    ) = match (key_oid, curve, sig_oid) {
        (OID_RSA, _, OID_SHA256_RSA) => (&rcgen::PKCS_RSA_SHA256, &ring::signature::RSA_PKCS1_2048_8192_SHA256),
        (OID_RSA, _, OID_SHA384_RSA) => (&rcgen::PKCS_RSA_SHA256, &ring::signature::RSA_PKCS1_2048_8192_SHA384),
        (OID_RSA, _, OID_SHA512_RSA) => (&rcgen::PKCS_RSA_SHA256, &ring::signature::RSA_PKCS1_2048_8192_SHA512),
        (OID_EC, Some(OID_P256), OID_ECDSA_SHA256) => {
            (&rcgen::PKCS_ECDSA_P256_SHA256, &ring::signature::ECDSA_P256_SHA256_ASN1)
        }
        (OID_EC, Some(OID_P384), OID_ECDSA_SHA384) => {
            (&rcgen::PKCS_ECDSA_P384_SHA384, &ring::signature::ECDSA_P384_SHA384_ASN1)
        }
        (OID_ED25519, _, OID_ED25519) => (&rcgen::PKCS_ED25519, &ring::signature::ED25519),
        _ => return Err("unsupported key or signature algorithm".into()),
    };
    ring::signature::UnparsedPublicKey::new(verify, &raw)
        .verify(info_tlv, signature)
        .map_err(|_| "the CSR's signature does not verify".to_string())?;

    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    // Name ::= SEQUENCE OF SET OF AttributeTypeAndValue
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (_, set, _, next) = der(rdns)?;
        rdns = next;
        let (_, atv, _, _) = der(set)?;
        let (_, oid, _, rest) = der(atv)?;
        let (_, value, _, _) = der(rest)?;
        let value = String::from_utf8_lossy(value).into_owned();
        match oid {
            OID_CN => params.distinguished_name.push(DnType::CommonName, value),
            OID_O => params.distinguished_name.push(DnType::OrganizationName, value),
            _ => {}
        }
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    // From midnight (UTC) yesterday to midnight five years on.
    let now = now_secs();
    params.not_before = utc(now - 86400).replace_time(time::Time::MIDNIGHT);
    params.not_after = utc(now + 5 * 365 * 86400).replace_time(time::Time::MIDNIGHT);
    let cert = params
        .signed_by(&CsrKey { raw, alg }, &ca.issuer)
        .map_err(|e| e.to_string())?;
    Ok(cert.pem())
}
