//! Opening SMTP client connections for lettre with `TCP_NODELAY` set.
//!
//! lettre writes the message body and the final `.` in two writes; with Nagle's algorithm
//! on, the second waits for the peer's delayed ACK (40 ms on Linux) on every message. So we
//! open the socket ourselves, do TLS ourselves (implicit, or STARTTLS before lettre sees
//! the connection) and hand lettre a stream we can also write message content to.
//!
//! TLS client settings are built once per process: building them reads the system's root
//! certificates.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::deadline::{CutSwitch, DeadlineStream};
use crate::egress::{Egress, EgressError};
use crate::shared_stream::{self, Prefaced, SharedStream};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSecurity {
    None,
    Starttls,
    Implicit,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientTarget {
    pub host: String,
    pub port: u16,
    pub security: ClientSecurity,
    /// Accept any certificate (self-signed test servers).
    pub skip_tls_verify: bool,
    pub timeout: Duration,
    pub hello: String,
    /// Checked (a tenant's host) or trusted (the operator's).
    pub egress: Egress,
}

/// Why a connection could not be set up.
#[derive(Debug)]
pub enum ConnectError {
    /// Refused by the egress policy, unresolvable, or no TCP connection.
    Egress(EgressError),
    /// TLS below SMTP.
    Io(io::Error),
    /// An SMTP answer (greeting, EHLO, STARTTLS) or lettre's own checks.
    Smtp(SmtpError),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Egress(e) => write!(f, "{e}"),
            ConnectError::Io(e) => write!(f, "connection error: {e}"),
            ConnectError::Smtp(e) => write!(f, "{e}"),
        }
    }
}

impl From<SmtpError> for ConnectError {
    fn from(e: SmtpError) -> Self {
        ConnectError::Smtp(e)
    }
}

impl From<io::Error> for ConnectError {
    fn from(e: io::Error) -> Self {
        ConnectError::Io(e)
    }
}

/// An upstream SMTP connection: lettre's side, the stream under it (which the DATA phase
/// writes content to), the switch that kills it, and whether TLS is up.
pub struct Connected {
    pub conn: AsyncSmtpConnection,
    pub stream: SharedStream,
    pub cut: CutSwitch,
    pub encrypted: bool,
}

/// Connects (to an address the egress policy checked, for a tenant's host), sets up TLS as
/// asked (implicit, or STARTTLS: see [`crate::shared_stream`]), and reads the greeting and
/// EHLO. Every read and write from here on has a deadline.
pub async fn connect(target: &ClientTarget) -> Result<Connected, ConnectError> {
    let hello = ClientId::Domain(target.hello.clone());
    let mut tcp = target
        .egress
        .connect_tcp(&target.host, target.port, target.timeout)
        .await
        .map_err(ConnectError::Egress)?;
    tcp.set_nodelay(true)?;
    let cut = CutSwitch::default();
    let secured =
        |tls| DeadlineStream::new(TlsTransport(tls), target.timeout).with_cut(cut.clone());
    let (inner, encrypted): (Box<dyn AsyncTokioStream>, bool) = match target.security {
        ClientSecurity::Implicit => (Box::new(secured(tls_handshake(target, tcp).await?)), true),
        ClientSecurity::Starttls => {
            let greeting =
                shared_stream::starttls_dialogue(&mut tcp, &target.hello, target.timeout).await?;
            let tls = tls_handshake(target, tcp).await?;
            (
                Box::new(Prefaced::new(greeting.as_bytes(), secured(tls))),
                true,
            )
        }
        ClientSecurity::None => (
            Box::new(DeadlineStream::new(tcp, target.timeout).with_cut(cut.clone())),
            false,
        ),
    };
    let stream = SharedStream::new(inner);
    let conn =
        AsyncSmtpConnection::connect_with_transport(Box::new(stream.clone()), &hello).await?;
    Ok(Connected {
        conn,
        stream,
        cut,
        encrypted,
    })
}

/// The TLS handshake over `tcp`, within the target's timeout.
async fn tls_handshake(
    target: &ClientTarget,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let config = client_config(target.skip_tls_verify);
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| io_error(io::ErrorKind::InvalidInput, &e.to_string()))?;
    let tls = tokio::time::timeout(
        target.timeout,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| io_error(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    Ok(tls)
}

fn io_error(kind: io::ErrorKind, text: &str) -> io::Error {
    io::Error::new(kind, text.to_string())
}

/// The rustls client configuration (upstream TLS, the mailbox check), built once per
/// process for each of verify / skip-verify: the system's roots are read once.
pub(crate) fn client_config(skip_verify: bool) -> Arc<ClientConfig> {
    static VERIFYING: LazyLock<Arc<ClientConfig>> = LazyLock::new(|| build_client_config(false));
    static SKIPPING: LazyLock<Arc<ClientConfig>> = LazyLock::new(|| build_client_config(true));
    match skip_verify {
        true => SKIPPING.clone(),
        false => VERIFYING.clone(),
    }
}

fn build_client_config(skip_verify: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions");
    let config = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Arc::new(config)
}

/// For `skip_tls_verify` / `--insecure`: signatures are still checked, the chain is not.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Debug)]
struct TlsTransport(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsTransport {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsTransport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTransport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
