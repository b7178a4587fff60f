//! `[broker]`'s network endpoint: `listen`, the TLS files and the token file.

use std::path::Path;

use super::*;
use deskpool_core::policy::access::Scope;

struct Dir {
    dir: tempfile::TempDir,
    base: String,
}

impl Dir {
    /// A directory with the example config's hosts and classes, a token file, and files for
    /// the TLS keys (their content is the broker's to read).
    fn new() -> Dir {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deskpool.toml"),
        )
        .unwrap();
        let digest = "0123456789abcdef".repeat(4);
        std::fs::write(dir.path().join("tokens"), format!("gw assign {digest}\n")).unwrap();
        for f in ["cert.pem", "key.pem", "ca.pem"] {
            std::fs::write(dir.path().join(f), "PEM").unwrap();
        }
        Dir { dir, base }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("deskpool.toml")
    }

    fn parse(&self, broker: &str) -> Result<Fleet, String> {
        parse_str(&format!("[broker]\n{broker}\n{}", self.base), &self.path())
            .map_err(|e| e.to_string())
    }

    /// The one error `broker` gets, which must start with `at` (`line:col`) and contain `needle`.
    fn refused(&self, broker: &str, at: &str, needle: &str) {
        let errors = self.parse(broker).unwrap_err();
        let prefix = format!("{}:{at}: ", self.path().display());
        assert!(
            errors.lines().count() == 1 && errors.starts_with(&prefix) && errors.contains(needle),
            "{broker:?} gave:\n{errors}"
        );
    }
}

#[test]
fn a_loopback_endpoint_with_tokens_is_read_with_paths_relative_to_the_config() {
    let d = Dir::new();
    let fleet = d
        .parse("listen = \"127.0.0.1:8443\"\ntokens = \"tokens\"")
        .unwrap();
    let b = &fleet.broker;
    assert_eq!(b.listen, Some("127.0.0.1:8443".parse().unwrap()));
    assert_eq!(b.tls, None);
    assert_eq!(b.tokens_file, Some(d.dir.path().join("tokens")));
    assert_eq!(b.tokens.len(), 1);
    assert_eq!(
        (b.tokens[0].name.as_str(), b.tokens[0].scope),
        ("gw", Scope::Assign)
    );

    let fleet = d
        .parse(
            "listen = \"[::]:8443\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n\
             client_ca = \"ca.pem\"\ntokens = \"tokens\"",
        )
        .unwrap();
    let tls = fleet.broker.tls.unwrap();
    assert_eq!(tls.cert, d.dir.path().join("cert.pem"));
    assert_eq!(tls.client_ca, Some(d.dir.path().join("ca.pem")));
}

#[test]
fn a_plain_endpoint_off_loopback_is_refused_naming_the_key() {
    let d = Dir::new();
    d.refused(
        "listen = \"0.0.0.0:8443\"\ntokens = \"tokens\"",
        "2:10",
        "broker.listen: 0.0.0.0:8443 is not a loopback address: without TLS",
    );
    d.refused(
        "listen = \"192.168.1.4:8443\"\ntokens = \"tokens\"",
        "2:10",
        "not a loopback address",
    );
}

#[test]
fn endpoint_keys_that_do_not_fit_together_are_refused() {
    let d = Dir::new();
    d.refused(
        "listen = \"localhost:8443\"",
        "2:10",
        "not an IP address and port",
    );
    d.refused("listen = \"127.0.0.1:0\"", "2:10", "port 0");
    d.refused("listen = \"127.0.0.1:8443\"", "2:10", "needs tokens = FILE");
    d.refused(
        "tokens = \"tokens\"",
        "2:10",
        "no effect without [broker] listen",
    );
    d.refused(
        "listen = \"127.0.0.1:8443\"\ntokens = \"tokens\"\ntls_cert = \"cert.pem\"",
        "4:12",
        "needs tls_key too",
    );
    d.refused(
        "listen = \"127.0.0.1:8443\"\ntokens = \"tokens\"\nclient_ca = \"ca.pem\"",
        "4:13",
        "client certificates need TLS",
    );
    d.refused(
        "listen = \"127.0.0.1:8443\"\ntokens = \"missing\"",
        "3:10",
        "is not a file",
    );
}

#[test]
fn a_mistake_in_the_token_file_is_named_in_that_file() {
    let d = Dir::new();
    std::fs::write(d.dir.path().join("tokens"), "gw superuser abc\n").unwrap();
    let errors = d
        .parse("listen = \"127.0.0.1:8443\"\ntokens = \"tokens\"")
        .unwrap_err();
    let tokens = d.dir.path().join("tokens");
    assert_eq!(
        errors,
        format!(
            "{t}:1:4: unknown scope \"superuser\"; expected read, assign or admin\n\
             {t}:1:14: expected the SHA-256 of the secret as 64 lowercase hex digits",
            t = tokens.display()
        )
    );
}
