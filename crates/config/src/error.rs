//! Configuration errors, and the collector that turns byte offsets into `line:col` positions.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One mistake in a configuration file.
///
/// `line` and `col` are 1-based (the column counts characters, not bytes). Both are 0 when the
/// error concerns the whole file (it cannot be read); `Display` then leaves the position out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every mistake found in a configuration file, in the order they appear in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub(super) type Span = Range<usize>;

/// 1-based line and column (in characters) of byte `offset` in `text`, as configuration errors
/// count them (also used for other files the program reads, such as themes).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    Diag::new(Path::new(""), text).position(offset)
}

/// Collects errors about one file's text, positioned from byte spans.
pub(super) struct Diag<'a> {
    file: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
}

impl<'a> Diag<'a> {
    pub(super) fn new(file: &'a Path, text: &'a str) -> Diag<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Diag {
            file,
            text,
            line_starts,
            errors: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        (line, col)
    }

    /// 1-based line of a span (for "first declared at line N" notes).
    pub(super) fn line_of(&self, span: &Span) -> usize {
        self.position(span.start).0
    }

    /// Records an error at the start of `span` (the start of the file without one).
    pub(super) fn error(&mut self, span: Option<Span>, message: impl Into<String>) {
        let (line, col) = self.position(span.map_or(0, |s| s.start));
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            col,
            message: message.into(),
        });
    }

    /// Records an error already positioned (in another file the config names).
    pub(super) fn push(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    pub(super) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors, sorted by position (stable: errors at one place keep their order).
    pub(super) fn into_errors(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|e| (e.line, e.col));
        ConfigErrors(self.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n\nlast";
        let diag = Diag::new(Path::new("f.toml"), text);
        assert_eq!(diag.position(0), (1, 1));
        assert_eq!(diag.position(4), (1, 5));
        assert_eq!(diag.position(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters: the quote is column 6.
        let quote = text.find('"').unwrap();
        assert_eq!(diag.position(quote), (2, 6));
        assert_eq!(diag.position(text.find("last").unwrap()), (4, 1));
        assert_eq!(diag.position(10_000), (4, 5));
    }

    #[test]
    fn display_puts_each_error_on_its_own_line() {
        let errors = ConfigErrors(vec![
            ConfigError {
                file: "d.toml".into(),
                line: 3,
                col: 7,
                message: "bad".into(),
            },
            ConfigError {
                file: "d.toml".into(),
                line: 0,
                col: 0,
                message: "cannot read: gone".into(),
            },
        ]);
        assert_eq!(
            errors.to_string(),
            "d.toml:3:7: bad\nd.toml: cannot read: gone"
        );
    }

    #[test]
    fn errors_come_out_sorted_by_position() {
        let text = "x\ny\nz";
        let mut diag = Diag::new(Path::new("f"), text);
        diag.error(Some(4..5), "third");
        diag.error(Some(0..1), "first");
        diag.error(Some(2..3), "second");
        let messages: Vec<_> = diag
            .into_errors()
            .0
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(messages, ["first", "second", "third"]);
    }
}
