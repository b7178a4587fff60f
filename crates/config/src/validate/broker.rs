//! `[broker]`: the Unix socket, and the optional network endpoint (`listen`) with its TLS files
//! and its clients' token file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::settings::{file_path, socket_path};
use crate::error::Diag;
use crate::reader::{Field, Section};
use crate::tokens::read_token_file;
use deskpool_core::policy::BrokerSettings;
use deskpool_core::policy::access::TlsFiles;

pub(super) const BROKER_KEYS: &[&str] = &[
    "socket",
    "listen",
    "tls_cert",
    "tls_key",
    "client_ca",
    "tokens",
];

pub(super) fn broker(d: &mut Diag, s: &Section, base_dir: &Path) -> Option<BrokerSettings> {
    s.check_keys(d, BROKER_KEYS);
    let socket = s.opt(d, "socket", None, |f, d| {
        socket_path(f, d, base_dir).map(Some)
    });
    let listen = s.opt(d, "listen", None, |f, d| address(f, d).map(Some));
    let file = |key: &str, d: &mut Diag| {
        s.opt(d, key, None, |f, d| existing_file(f, d, base_dir).map(Some))
    };
    let cert = file("tls_cert", d);
    let key = file("tls_key", d);
    let client_ca = file("client_ca", d);
    let tokens_file = file("tokens", d);
    let (listen, cert, key, client_ca, tokens_file) =
        (listen?, cert?, key?, client_ca?, tokens_file?);
    let socket = socket?;

    // Every endpoint key but listen means nothing without it.
    if listen.is_none() {
        for key in ["tls_cert", "tls_key", "client_ca", "tokens"] {
            if let Some(f) = s.field(key) {
                f.error(
                    d,
                    "has no effect without [broker] listen (the network endpoint)",
                );
            }
        }
        return Some(BrokerSettings {
            socket,
            ..BrokerSettings::default()
        });
    }
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: client_ca.clone(),
        }),
        (None, None) => None,
        (cert, _) => {
            let (present, missing) = if cert.is_some() {
                ("tls_cert", "tls_key")
            } else {
                ("tls_key", "tls_cert")
            };
            if let Some(f) = s.field(present) {
                f.error(
                    d,
                    format!("needs {missing} too (the certificate and its key)"),
                );
            }
            return None;
        }
    };
    let field = |key| s.field(key).expect("a key that was read");
    if tls.is_none() {
        if client_ca.is_some() {
            field("client_ca").error(d, "client certificates need TLS: set tls_cert and tls_key");
            return None;
        }
        if let Some(addr) = listen.filter(|a| !a.ip().is_loopback()) {
            field("listen").error(
                d,
                format!(
                    "{addr} is not a loopback address: without TLS (tls_cert and tls_key) the \
                     endpoint listens only on loopback, such as 127.0.0.1:{}",
                    addr.port()
                ),
            );
            return None;
        }
    }
    let Some(tokens_file) = tokens_file else {
        field("listen").error(
            d,
            "the endpoint needs tokens = FILE, its clients' tokens (`deskpool token add`)",
        );
        return None;
    };
    let tokens = read_token_file(d, &tokens_file, field("tokens").span())?;
    Some(BrokerSettings {
        socket,
        listen,
        tls,
        tokens_file: Some(tokens_file),
        tokens,
    })
}

/// `HOST:PORT` with an IP address (`127.0.0.1:8443`, `[::1]:8443`).
fn address(f: &Field, d: &mut Diag) -> Option<SocketAddr> {
    let text = f.str(d)?;
    match text.parse::<SocketAddr>() {
        Ok(addr) if addr.port() == 0 => {
            f.error(
                d,
                format!("{text:?} has port 0; give the port to listen on"),
            );
            None
        }
        Ok(addr) => Some(addr),
        Err(_) => {
            f.error(
                d,
                format!("{text:?} is not an IP address and port such as \"127.0.0.1:8443\""),
            );
            None
        }
    }
}

/// A path relative to the config file, to a file that exists.
fn existing_file(f: &Field, d: &mut Diag, base_dir: &Path) -> Option<PathBuf> {
    let path = file_path(f, d, base_dir)?;
    if !path.is_file() {
        f.error(d, format!("{} is not a file", path.display()));
        return None;
    }
    Some(path)
}
