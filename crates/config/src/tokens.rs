//! The token file of the broker's network endpoint: one client a line, `NAME SCOPE SHA256`
//! (the SHA-256 of the client's secret in lowercase hex), `#` starting a comment. Errors name
//! the token file with line and column, as the config file's do.

use std::collections::HashMap;
use std::path::Path;

use super::error::{ConfigErrors, Diag, Span};
use deskpool_core::policy::access::{ClientToken, Scope, is_sha256_hex};
use deskpool_core::policy::names::check_name;

/// The tokens of the file `path`, or every mistake in it.
pub fn parse_tokens(text: &str, path: &Path) -> Result<Vec<ClientToken>, ConfigErrors> {
    let mut diag = Diag::new(path, text);
    let tokens = tokens_in(&mut diag, text);
    if diag.has_errors() {
        return Err(diag.into_errors());
    }
    Ok(tokens)
}

/// The line the token file holds for a client (what `deskpool token add` appends).
pub fn token_line(token: &ClientToken) -> String {
    format!("{} {} {}\n", token.name, token.scope.name(), token.sha256)
}

/// Reads the token file `path` named in the config file at `at`: its errors are added to the
/// config's (each with the token file's own line and column).
pub(super) fn read_token_file(
    d: &mut Diag,
    path: &Path,
    at: Option<Span>,
) -> Option<Vec<ClientToken>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            d.error(at, format!("tokens: cannot read {}: {e}", path.display()));
            return None;
        }
    };
    match parse_tokens(&text, path) {
        Ok(tokens) => Some(tokens),
        Err(errors) => {
            errors.0.into_iter().for_each(|e| d.push(e));
            None
        }
    }
}

fn tokens_in(d: &mut Diag, text: &str) -> Vec<ClientToken> {
    let mut tokens = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut digests: HashMap<String, usize> = HashMap::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.split('#').next().unwrap_or_default();
        let words: Vec<(usize, &str)> = words(content).map(|(at, w)| (start + at, w)).collect();
        if words.is_empty() {
            continue;
        }
        let at = |(i, w): (usize, &str)| Some(i..i + w.len());
        let [name, scope, digest] = words[..] else {
            d.error(
                at(words[0]),
                format!(
                    "expected NAME SCOPE SHA256 (three words), found {}",
                    words.len()
                ),
            );
            continue;
        };
        let line_no = d.line_of(&(start..start));
        let mut ok = true;
        if let Err(e) = check_name(name.1) {
            d.error(at(name), format!("token name: {e}"));
            ok = false;
        } else if let Some(first) = names.insert(name.1.to_string(), line_no) {
            d.error(
                at(name),
                format!(
                    "token name {:?} is given twice (first at line {first})",
                    name.1
                ),
            );
            ok = false;
        }
        let parsed = Scope::parse(scope.1);
        if parsed.is_none() {
            d.error(
                at(scope),
                format!(
                    "unknown scope {:?}; expected read, assign or admin",
                    scope.1
                ),
            );
        }
        if !is_sha256_hex(digest.1) {
            d.error(
                at(digest),
                "expected the SHA-256 of the secret as 64 lowercase hex digits",
            );
            ok = false;
        } else if let Some(first) = digests.insert(digest.1.to_string(), line_no) {
            d.error(
                at(digest),
                format!(
                    "this digest is given twice (first at line {first}): one secret per client"
                ),
            );
            ok = false;
        }
        if let (true, Some(scope)) = (ok, parsed) {
            tokens.push(ClientToken {
                name: name.1.to_string(),
                scope,
                sha256: digest.1.to_string(),
            });
        }
    }
    tokens
}

/// The whitespace-separated words of `line` with their byte offsets.
fn words(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split_ascii_whitespace()
        .map(move |w| (w.as_ptr() as usize - line.as_ptr() as usize, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn tokens_are_read_with_comments_and_blank_lines() {
        let text = format!(
            "# clients\ngateway assign {}\n\n  monitor   read {}  # Prometheus\n",
            digest('a'),
            digest('b')
        );
        let tokens = parse_tokens(&text, Path::new("t")).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[1].name, "monitor");
        assert_eq!(tokens[1].scope, Scope::Read);
        assert_eq!(
            token_line(&tokens[0]),
            format!("gateway assign {}\n", digest('a'))
        );
    }

    #[test]
    fn every_mistake_is_named_with_its_line_and_column() {
        let text = format!(
            "ok read {a}\nok admin {b}\nbad writer {c}\nshort {c}\nx read ABC\ny read {a}\n",
            a = digest('a'),
            b = digest('b'),
            c = digest('c'),
        );
        let errors = parse_tokens(&text, Path::new("/etc/deskpool/tokens"))
            .unwrap_err()
            .to_string();
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(
            lines,
            [
                "/etc/deskpool/tokens:2:1: token name \"ok\" is given twice (first at line 1)",
                "/etc/deskpool/tokens:3:5: unknown scope \"writer\"; expected read, assign or admin",
                "/etc/deskpool/tokens:4:1: expected NAME SCOPE SHA256 (three words), found 2",
                "/etc/deskpool/tokens:5:8: expected the SHA-256 of the secret as 64 lowercase hex digits",
                "/etc/deskpool/tokens:6:8: this digest is given twice (first at line 1): one secret per client",
            ]
        );
    }
}
