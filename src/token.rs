//! `deskpool token add`: a new client of the broker's network endpoint. The secret is made
//! here, printed once and never stored: the token file keeps its SHA-256.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use deskpool_broker::new_secret;
use deskpool_config::tokens::{parse_tokens, token_line};
use deskpool_core::policy::access::{ClientToken, Scope};
use deskpool_core::policy::names::check_name;

/// Appends a token for `name` with `scope` to `file` (made 0600 if missing) and prints its
/// secret. The file must read as it is, and the name must be new in it.
pub fn add(file: &Path, name: &str, scope: &str) -> anyhow::Result<()> {
    check_name(name).map_err(|e| anyhow::anyhow!("token name: {e}"))?;
    let scope = Scope::parse(scope).ok_or_else(|| {
        anyhow::anyhow!("unknown scope {scope:?}; expected read, assign or admin")
    })?;
    let existing = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => anyhow::bail!("cannot read {}: {e}", file.display()),
    };
    let tokens = parse_tokens(&existing, file)?;
    if tokens.iter().any(|t| t.name == name) {
        anyhow::bail!(
            "{} has a token for {name} already; remove its line to replace it",
            file.display()
        );
    }
    let (secret, sha256) = new_secret()?;
    let token = ClientToken {
        name: name.to_string(),
        scope,
        sha256,
    };
    let mut line = token_line(&token);
    if !existing.is_empty() && !existing.ends_with('\n') {
        line.insert(0, '\n');
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    println!("{secret}");
    eprintln!(
        "deskpool: token {name} (scope {}) added to {}; the secret above is shown only now. \
         A running serve takes it on SIGHUP (systemctl reload deskpool).",
        scope.name(),
        file.display()
    );
    Ok(())
}
