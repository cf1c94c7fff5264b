//! A client connection that is plaintext or TLS, and can change from one to the other once.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Between taking the plaintext stream and getting the TLS one back.
    Closed,
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed")
}

/// Bytes read at most at once: a small message arrives whole.
const READ_SIZE: usize = 16 * 1024;

impl Conn {
    /// Waits for bytes and hands them to `feed`; `Ok(0)` when the client closed.
    ///
    /// A plaintext connection waits for readability first and reads into a buffer that
    /// lives only while the bytes are fed, so an idle session holds no read buffer (10,000
    /// idle connections would otherwise hold 160 MB of them). A TLS connection reads
    /// through rustls, which may hold decrypted bytes already, into `tls_buf`, made on
    /// its first read.
    pub async fn read_with(
        &mut self,
        tls_buf: &mut Vec<u8>,
        mut feed: impl FnMut(&[u8]),
    ) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => loop {
                s.readable().await?;
                let mut buf = [0u8; READ_SIZE];
                match s.try_read(&mut buf) {
                    Ok(n) => {
                        feed(&buf[..n]);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            },
            Conn::Tls(s) => {
                if tls_buf.is_empty() {
                    tls_buf.resize(READ_SIZE, 0);
                }
                let n = s.read(tls_buf).await?;
                feed(&tls_buf[..n]);
                Ok(n)
            }
            Conn::Closed => Err(closed()),
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(bytes).await,
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Closed => Err(closed()),
        }
    }

    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.shutdown().await,
            Conn::Tls(s) => s.shutdown().await,
            Conn::Closed => Ok(()),
        }
    }
}
