//! A run's certificates: one run CA, and node certificates it signs (for learners and actors
//! alike — every node proves itself to the other side). Made by `spikerl cert`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::QuicError;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const CA_NAME: &str = "spikerl run CA";

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> QuicError + '_ {
    move |e| QuicError::Certs(format!("{}: {e}", path.display()))
}

fn rc(e: rcgen::Error) -> QuicError {
    QuicError::Certs(e.to_string())
}

/// Writes a file readable only by its owner (keys), atomically.
fn write_private(path: &Path, contents: &str) -> Result<(), QuicError> {
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(io(&tmp))?;
        f.write_all(contents.as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Makes `dir/ca.pem` and `dir/ca.key` unless they exist; returns whether it made them.
pub fn ensure_ca(dir: &Path) -> Result<bool, QuicError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    match (cert.exists(), key.exists()) {
        (true, true) => return Ok(false),
        (false, false) => {}
        _ => return Err(QuicError::Certs(format!("{} holds one of {CA_CERT} and {CA_KEY} but not the other", dir.display()))),
    }
    let key_pair = KeyPair::generate().map_err(rc)?;
    let ca = ca_params().self_signed(&key_pair).map_err(rc)?;
    write_private(&key, &key_pair.serialize_pem())?;
    write_private(&cert, &ca.pem())?;
    Ok(true)
}

/// Signs a node certificate for `hosts` (DNS names or IP addresses the node is reached at)
/// with the CA in `dir`; writes `dir/NAME.pem` and `dir/NAME.key`.
pub fn make_node(dir: &Path, name: &str, hosts: &[String]) -> Result<TlsFiles, QuicError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || name == "ca" {
        return Err(QuicError::Certs(format!("node name {name:?}: use letters, digits, '-' or '_' (not \"ca\")")));
    }
    let ca_key_path = dir.join(CA_KEY);
    let ca_key_pem = std::fs::read_to_string(&ca_key_path).map_err(io(&ca_key_path))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(rc)?;
    let issuer = Issuer::new(ca_params(), ca_key);
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    for host in hosts {
        params.subject_alt_names.push(match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.clone().try_into().map_err(|e: rcgen::Error| QuicError::Certs(format!("host {host:?}: {e}")))?),
        });
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key_pair = KeyPair::generate().map_err(rc)?;
    let cert = params.signed_by(&key_pair, &issuer).map_err(rc)?;
    let files = TlsFiles::in_dir(dir, name);
    write_private(&files.key, &key_pair.serialize_pem())?;
    write_private(&files.cert, &cert.pem())?;
    Ok(files)
}

/// Where a node's TLS material is: the run CA, its certificate and its key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `DIR/ca.pem`, `DIR/NAME.pem`, `DIR/NAME.key`: what `spikerl cert` writes.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Self { ca: dir.join(CA_CERT), cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}.key")) }
    }

    pub(crate) fn load(&self) -> Result<LoadedTls, QuicError> {
        let bad = |path: &Path, e: String| QuicError::Certs(format!("{}: {e}", path.display()));
        let read_certs = |path: &Path| -> Result<Vec<CertificateDer<'static>>, QuicError> {
            let certs: Vec<_> = CertificateDer::pem_file_iter(path).map_err(|e| bad(path, e.to_string()))?.collect::<Result<_, _>>().map_err(|e| bad(path, e.to_string()))?;
            if certs.is_empty() {
                return Err(bad(path, "no certificate in it".into()));
            }
            Ok(certs)
        };
        let mut roots = rustls::RootCertStore::empty();
        for ca in read_certs(&self.ca)? {
            roots.add(ca).map_err(|e| bad(&self.ca, e.to_string()))?;
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| bad(&self.key, e.to_string()))?;
        Ok(LoadedTls { roots: Arc::new(roots), chain: read_certs(&self.cert)?, key })
    }
}

pub(crate) struct LoadedTls {
    pub roots: Arc<rustls::RootCertStore>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// The run token in `dir/token`, made (random, 128 bits) if absent.
pub fn ensure_token(dir: &Path) -> Result<String, QuicError> {
    let path = dir.join("token");
    if path.exists() {
        return read_token(&path);
    }
    let mut bytes = [0u8; 16];
    {
        use std::io::Read;
        let urandom = Path::new("/dev/urandom");
        std::fs::File::open(urandom).and_then(|mut f| f.read_exact(&mut bytes)).map_err(io(urandom))?;
    }
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &format!("{token}\n"))?;
    Ok(token)
}

/// The run token a node presents or expects: `given` (a `--token` flag), else
/// `$SPIKERL_TOKEN`, else the first line of `certs_dir/token` (what `spikerl cert` writes).
pub fn run_token(given: Option<&str>, certs_dir: &Path) -> Result<String, QuicError> {
    if let Some(t) = given {
        return Ok(t.to_string());
    }
    match std::env::var("SPIKERL_TOKEN") {
        Ok(t) if !t.is_empty() => Ok(t),
        _ => read_token(&certs_dir.join("token")).map_err(|e| QuicError::Certs(format!("no run token: pass --token, set SPIKERL_TOKEN, or put the run's token file in {} ({e})", certs_dir.display()))),
    }
}

/// A token file's first line.
pub fn read_token(path: &Path) -> Result<String, QuicError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(QuicError::Certs(format!("{} holds no token", path.display())));
    }
    Ok(token)
}
