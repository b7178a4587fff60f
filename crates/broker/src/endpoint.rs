//! The network endpoint: the broker's routes over TCP, with TLS (rustls) when the config gives
//! a certificate, client certificates when it gives a CA, and a client's token on every
//! request (`access.rs`). Connections are admitted and bounded by `conn.rs` as the socket's
//! are, counted per client address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

use super::conn::{ClientCertificate, Listener, Opened, Peer};
use deskpool_core::policy::access::TlsFiles;

/// Why the endpoint could not be served. Each message names the file or address.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot read {what} {}: {error}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        error: String,
    },
    #[error("{} holds no certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("the TLS files are not usable together: {0}")]
    Tls(String),
    #[error("{addr} is not a loopback address: without TLS the endpoint listens only on loopback")]
    PlainOffLoopback { addr: SocketAddr },
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// The endpoint's listening socket and, with TLS, its handshake.
pub(super) struct TcpEndpoint {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl TcpEndpoint {
    pub(super) async fn bind(
        addr: SocketAddr,
        tls: Option<&TlsFiles>,
    ) -> Result<TcpEndpoint, EndpointError> {
        // The config file refuses it too; a library caller gets the same rule.
        if tls.is_none() && !addr.ip().is_loopback() {
            return Err(EndpointError::PlainOffLoopback { addr });
        }
        let tls = tls
            .map(|files| tls_config(files).map(|c| TlsAcceptor::from(Arc::new(c))))
            .transpose()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| EndpointError::Listen { addr, error })?;
        Ok(TcpEndpoint { listener, tls })
    }

    pub(super) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection of the endpoint, with TLS or without.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

impl Listener for TcpEndpoint {
    type Raw = TcpStream;
    type Stream = Pin<Box<dyn Io>>;

    async fn accept(&self) -> std::io::Result<(TcpStream, Peer)> {
        let (stream, from) = self.listener.accept().await?;
        // Answers are small and often: no waiting to fill a segment.
        let _ = stream.set_nodelay(true);
        Ok((stream, Peer::Address(from.ip())))
    }

    async fn open(self: Arc<Self>, raw: TcpStream) -> std::io::Result<Opened<Pin<Box<dyn Io>>>> {
        let Some(acceptor) = &self.tls else {
            return Ok(Opened {
                stream: Box::pin(raw) as Pin<Box<dyn Io>>,
                certificate: None,
            });
        };
        let stream = acceptor.accept(raw).await?;
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|der| ClientCertificate(subject(der)));
        Ok(Opened {
            stream: Box::pin(stream) as Pin<Box<dyn Io>>,
            certificate,
        })
    }
}

/// The subject of a certificate as the audit log names a client (`CN=gateway, O=Example`).
fn subject(der: &CertificateDer) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert.subject().to_string(),
        Err(_) => "a certificate without a readable subject".to_string(),
    }
}

fn pem_error(what: &'static str, path: &Path, error: impl std::fmt::Display) -> EndpointError {
    EndpointError::Pem {
        what,
        path: path.to_path_buf(),
        error: error.to_string(),
    }
}

fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, EndpointError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(EndpointError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The server's TLS: its certificate chain and key, and with a CA the client certificates it
/// requires (an unknown, expired or missing one fails the handshake).
fn tls_config(files: &TlsFiles) -> Result<ServerConfig, EndpointError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("the certificate", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| pem_error("the private key", &files.key, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| EndpointError::Tls(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("the client CA", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| pem_error("the client CA", ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| pem_error("the client CA", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        EndpointError::Tls(format!(
            "{} and {}: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
