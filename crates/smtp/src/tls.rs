//! TLS for the listeners: certificate files from config, or a self-signed certificate
//! generated into the data directory once and reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("tls: {0}")]
    Config(String),
}

/// Where the self-signed pair lives under the data directory.
pub fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Makes the self-signed pair for `hostname` unless it already exists.
pub fn ensure_self_signed(data_dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = generated_paths(data_dir);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let dir = cert_path.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir).map_err(|e| TlsError::Write {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let names = vec![hostname.to_string(), "localhost".to_string()];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Config(e.to_string()))?;
    write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, generated.cert.pem()).map_err(|e| TlsError::Write {
        path: cert_path.clone(),
        message: e.to_string(),
    })?;
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| TlsError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    file.write_all(contents).map_err(|e| TlsError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The certificate and key files `[tls]` names, or the self-signed pair in the data
/// directory (made on first use).
pub fn certificate_files(
    tls: &sluice_config::TlsConfig,
    data_dir: &Path,
    hostname: &str,
) -> Result<(PathBuf, PathBuf), TlsError> {
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Ok((cert.clone(), key.clone())),
        _ => ensure_self_signed(data_dir, hostname),
    }
}

/// The listeners' TLS as `[tls]` says: its files (or the self-signed pair) and the oldest
/// version offered.
pub fn from_config(
    tls: &sluice_config::TlsConfig,
    data_dir: &Path,
    hostname: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert, key) = certificate_files(tls, data_dir, hostname)?;
    server_config(&cert, &key, &tls.min_version)
}

/// A rustls server config (aws-lc-rs) from PEM files: TLS 1.2 and 1.3, or 1.3 alone when
/// `min_version` is "1.3".
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
    min_version: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: rustls::pki_types::pem::Error| TlsError::Read {
            path,
            message: e.to_string(),
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(read_err(cert_path))?
        .collect::<Result<_, _>>()
        .map_err(read_err(cert_path))?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(read_err(key_path))?;
    static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    static TLS12_AND_13: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS12, &rustls::version::TLS13];
    let versions = if min_version == "1.3" {
        TLS13_ONLY
    } else {
        TLS12_AND_13
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}
