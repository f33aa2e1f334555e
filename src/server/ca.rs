//! A private certificate authority: a root, an intermediate that signs server certificates,
//! and the expiry checks an operator needs. Keys are written 0600.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::config::store;

pub const ROOT_CERT: &str = "root-ca.crt";
pub const ROOT_KEY: &str = "root-ca.key";
pub const INTERMEDIATE_CERT: &str = "intermediate-ca.crt";
pub const INTERMEDIATE_KEY: &str = "intermediate-ca.key";
/// What clients trust: the root (and the intermediate, which servers also send).
pub const BUNDLE: &str = "ca-bundle.crt";
/// Server certificates live here, `<hostname>.crt` (leaf + intermediate) and `<hostname>.key`.
pub const SERVER_DIR: &str = "server_certs";

const ROOT_DAYS: i64 = 3650;
const INTERMEDIATE_DAYS: i64 = 1825;
pub const SERVER_DAYS: i64 = 90;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{} already holds a CA", dir.display())]
    Exists { dir: PathBuf },
    #[error("{} holds no CA (missing {file})", dir.display())]
    NoCa { dir: PathBuf, file: &'static str },
    #[error("`{0}` is not a valid DNS name or IP address")]
    BadName(String),
    #[error("cannot make the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot read {}: {detail}", path.display())]
    Read { path: PathBuf, detail: String },
    #[error(transparent)]
    Write(#[from] crate::config::ConfigError),
}

/// Whether `name` is a DNS name (letters, digits, hyphens, dots; labels of 1..=63) or an IP.
pub fn valid_name(name: &str) -> bool {
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn ca_params(cn: &str, days: i64, path_len: Option<u8>) -> Result<CertificateParams, CaError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "vibectl");
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::minutes(5);
    p.not_after = now + Duration::days(days);
    Ok(p)
}

/// Make a root and an intermediate in `dir`, and the client bundle.
pub fn init(dir: &Path, force: bool) -> Result<(), CaError> {
    if dir.join(ROOT_CERT).exists() && !force {
        return Err(CaError::Exists {
            dir: dir.to_owned(),
        });
    }
    // A name of its own per CA: a client that trusts another vibectl CA must not take this
    // one's certificates for that one's (same names make webpki report BadSignature, not
    // UnknownIssuer).
    let id = format!("{:08x}", rand::random::<u32>());
    let root_key = KeyPair::generate()?;
    let root_params = ca_params(&format!("vibectl Root CA {id}"), ROOT_DAYS, Some(1))?;
    let root = root_params.self_signed(&root_key)?;
    let root_issuer = Issuer::new(root_params, &root_key);
    let inter_key = KeyPair::generate()?;
    let inter = ca_params(
        &format!("vibectl Intermediate CA {id}"),
        INTERMEDIATE_DAYS,
        Some(0),
    )?
    .signed_by(&inter_key, &root_issuer)?;
    store::write_atomic(&dir.join(ROOT_KEY), &root_key.serialize_pem(), true)?;
    store::write_atomic(
        &dir.join(INTERMEDIATE_KEY),
        &inter_key.serialize_pem(),
        true,
    )?;
    store::write_atomic(&dir.join(ROOT_CERT), &root.pem(), false)?;
    store::write_atomic(&dir.join(INTERMEDIATE_CERT), &inter.pem(), false)?;
    store::write_atomic(
        &dir.join(BUNDLE),
        &format!("{}{}", root.pem(), inter.pem()),
        false,
    )?;
    Ok(())
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|e| CaError::Read {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// A server certificate for `hostname` (plus `sans`), signed by the intermediate in `dir`.
/// Returns the paths of the certificate chain and the key.
pub fn server_cert(
    dir: &Path,
    hostname: &str,
    sans: &[String],
    days: i64,
    force: bool,
) -> Result<(PathBuf, PathBuf), CaError> {
    for name in std::iter::once(hostname).chain(sans.iter().map(String::as_str)) {
        if !valid_name(name) {
            return Err(CaError::BadName(name.to_owned()));
        }
    }
    for file in [INTERMEDIATE_CERT, INTERMEDIATE_KEY] {
        if !dir.join(file).exists() {
            return Err(CaError::NoCa {
                dir: dir.to_owned(),
                file,
            });
        }
    }
    let out_dir = dir.join(SERVER_DIR);
    let cert_path = out_dir.join(format!("{hostname}.crt"));
    let key_path = out_dir.join(format!("{hostname}.key"));
    if cert_path.exists() && !force {
        return Err(CaError::Exists { dir: cert_path });
    }
    let inter_pem = read(&dir.join(INTERMEDIATE_CERT))?;
    let inter_key = KeyPair::from_pem(&read(&dir.join(INTERMEDIATE_KEY))?)?;
    let issuer = Issuer::from_ca_cert_pem(&inter_pem, &inter_key)?;
    let mut names = vec![hostname.to_owned()];
    names.extend(sans.iter().filter(|s| s.as_str() != hostname).cloned());
    let mut p = CertificateParams::new(names)?;
    p.distinguished_name.push(DnType::CommonName, hostname);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::minutes(5);
    p.not_after = now + Duration::days(days);
    let key = KeyPair::generate()?;
    let leaf = p.signed_by(&key, &issuer)?;
    store::write_atomic(&key_path, &key.serialize_pem(), true)?;
    store::write_atomic(&cert_path, &format!("{}{}", leaf.pem(), inter_pem), false)?;
    Ok((cert_path, key_path))
}

/// A certificate's subject and expiry, for status and expiry checks.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub path: PathBuf,
    pub subject: String,
    pub not_after: OffsetDateTime,
}

impl CertInfo {
    pub fn days_left(&self) -> i64 {
        (self.not_after - OffsetDateTime::now_utc()).whole_days()
    }
}

/// The first certificate of a PEM file.
pub fn inspect(path: &Path) -> Result<CertInfo, CaError> {
    let bytes = std::fs::read(path).map_err(|e| CaError::Read {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|e| CaError::Read {
        path: path.to_owned(),
        detail: format!("not a PEM certificate: {e}"),
    })?;
    let cert = pem.parse_x509().map_err(|e| CaError::Read {
        path: path.to_owned(),
        detail: format!("not a certificate: {e}"),
    })?;
    Ok(CertInfo {
        path: path.to_owned(),
        subject: cert.subject().to_string(),
        not_after: cert.validity().not_after.to_datetime(),
    })
}

/// Every certificate a CA directory holds: root, intermediate and server certificates.
pub fn certificates(dir: &Path) -> Result<Vec<CertInfo>, CaError> {
    if !dir.join(ROOT_CERT).exists() {
        return Err(CaError::NoCa {
            dir: dir.to_owned(),
            file: ROOT_CERT,
        });
    }
    let mut out = vec![
        inspect(&dir.join(ROOT_CERT))?,
        inspect(&dir.join(INTERMEDIATE_CERT))?,
    ];
    if let Ok(entries) = std::fs::read_dir(dir.join(SERVER_DIR)) {
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        paths.sort();
        for p in paths {
            out.push(inspect(&p)?);
        }
    }
    Ok(out)
}
