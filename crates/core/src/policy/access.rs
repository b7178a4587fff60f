//! Who may use the broker's network endpoint, and for what: the clients' bearer tokens (stored
//! as SHA-256 digests, never in clear) with their scopes, and the TLS files of the endpoint.

use std::path::PathBuf;

/// What a token lets its client do. Each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// GET endpoints: classes, status, snapshots, events, the stream, metrics.
    Read,
    /// Logins and logouts (assign, release) as well as reads.
    Assign,
    /// Everything: admin commands (pause, policies, drains, recycles) as well.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Assign, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Assign => "assign",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == text)
    }

    /// Whether a client with this scope may do what `needed` asks for.
    pub fn covers(self, needed: Scope) -> bool {
        self >= needed
    }
}

/// One client's token, as the token file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientToken {
    /// The client's name: what the audit log and the engine's events say it did.
    pub name: String,
    pub scope: Scope,
    /// SHA-256 of the secret, 64 lowercase hex digits.
    pub sha256: String,
}

/// The endpoint's certificate chain and key (PEM), and the CA its clients' certificates must
/// be signed by when client certificates are required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Whether `text` is a SHA-256 digest as the token file writes it.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scope_covers_the_ones_before_it_only() {
        assert!(Scope::Admin.covers(Scope::Assign));
        assert!(Scope::Assign.covers(Scope::Read));
        assert!(Scope::Read.covers(Scope::Read));
        assert!(!Scope::Read.covers(Scope::Assign));
        assert!(!Scope::Assign.covers(Scope::Admin));
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.name()), Some(s));
        }
        assert_eq!(Scope::parse("Admin"), None);
    }

    #[test]
    fn a_digest_is_64_lowercase_hex_digits() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex(&"ab".repeat(31)));
    }
}
