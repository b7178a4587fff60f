//! A span-aware reader over a parsed TOML document.
//!
//! The loader walks `toml_edit`'s span-preserving tree instead of deserialising with serde: that
//! way every mistake (unknown keys, wrong types, out-of-range numbers, semantic rules) is reported
//! with its key path and position, and all of them are collected, not just the first.

use toml_edit::{InlineTable, Item, Key, Table, Value};

use super::error::{Diag, Span};
use super::rules::IntRange;
use deskpool_core::policy::names::check_name;

/// A table, written either as a `[section]` or inline as `{ ... }`.
#[derive(Clone, Copy)]
enum Tbl<'a> {
    Table(&'a Table),
    Inline(&'a InlineTable),
}

impl<'a> Tbl<'a> {
    fn span(self) -> Option<Span> {
        match self {
            Tbl::Table(t) => t.span(),
            Tbl::Inline(t) => t.span(),
        }
    }

    fn keys(self) -> Vec<&'a str> {
        match self {
            Tbl::Table(t) => t.iter().map(|(k, _)| k).collect(),
            Tbl::Inline(t) => t.iter().map(|(k, _)| k).collect(),
        }
    }

    fn get(self, key: &str) -> Option<(&'a Key, &'a Item)> {
        match self {
            Tbl::Table(t) => t.get_key_value(key),
            Tbl::Inline(t) => t.get_key_value(key),
        }
    }
}

/// Any node of the tree: an item of a table or an element of an array.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn value(self) -> Option<&'a Value> {
        match self {
            Node::Item(Item::Value(v)) | Node::Value(v) => Some(v),
            _ => None,
        }
    }

    fn span(self) -> Option<Span> {
        match self {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
        }
    }

    /// What the node is, for "expected X, found Y" messages.
    fn kind(self) -> &'static str {
        match self {
            Node::Item(Item::None) => "nothing",
            Node::Item(Item::Table(_)) => "a table",
            Node::Item(Item::ArrayOfTables(_)) => "an array of tables",
            Node::Item(Item::Value(v)) | Node::Value(v) => match v {
                Value::String(_) => "a string",
                Value::Integer(_) => "an integer",
                Value::Float(_) => "a float",
                Value::Boolean(_) => "a boolean",
                Value::Datetime(_) => "a date-time",
                Value::Array(_) => "an array",
                Value::InlineTable(_) => "a table",
            },
        }
    }

    fn as_tbl(self) -> Option<Tbl<'a>> {
        match self {
            Node::Item(Item::Table(t)) => Some(Tbl::Table(t)),
            Node::Item(Item::Value(Value::InlineTable(t))) | Node::Value(Value::InlineTable(t)) => {
                Some(Tbl::Inline(t))
            }
            _ => None,
        }
    }
}

/// A table being read, with its key path (`classes[0].policy`) for messages.
pub(super) struct Section<'a> {
    tbl: Tbl<'a>,
    path: String,
    span: Option<Span>,
}

impl<'a> Section<'a> {
    pub(super) fn root(table: &'a Table) -> Section<'a> {
        Section {
            tbl: Tbl::Table(table),
            path: String::new(),
            span: Some(0..0),
        }
    }

    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// Where the table starts (its `[header]` or `{`), for errors about the whole table.
    pub(super) fn span(&self) -> Option<Span> {
        self.span.clone()
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn place(&self) -> String {
        if self.path.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in {}", self.path)
        }
    }

    /// Reports every key not in `allowed`, at the key.
    pub(super) fn check_keys(&self, diag: &mut Diag, allowed: &[&str]) {
        for key in self.tbl.keys() {
            if allowed.contains(&key) {
                continue;
            }
            let span = self
                .tbl
                .get(key)
                .and_then(|(k, item)| k.span().or_else(|| item.span()));
            let hint = closest(key, allowed)
                .map(|near| format!(" (did you mean {near:?}?)"))
                .unwrap_or_default();
            diag.error(
                span.or_else(|| self.span()),
                format!(
                    "unknown key {key:?} {}{hint}; expected one of {}",
                    self.place(),
                    allowed.join(", ")
                ),
            );
        }
    }

    pub(super) fn field(&self, key: &str) -> Option<Field<'a>> {
        let (k, item) = self.tbl.get(key)?;
        Some(Field {
            path: self.child_path(key),
            key_span: k.span().or_else(|| self.span()),
            node: Node::Item(item),
        })
    }

    /// Reads an optional key with `read`, or gives `default` when it is absent.
    /// `None` means the key is present but wrong (the error is recorded).
    pub(super) fn opt<T>(
        &self,
        diag: &mut Diag,
        key: &str,
        default: T,
        read: impl FnOnce(&Field<'a>, &mut Diag) -> Option<T>,
    ) -> Option<T> {
        match self.field(key) {
            Some(field) => read(&field, diag),
            None => Some(default),
        }
    }

    /// Reads a required key with `read`; reports it missing at the table otherwise.
    pub(super) fn req<T>(
        &self,
        diag: &mut Diag,
        key: &str,
        read: impl FnOnce(&Field<'a>, &mut Diag) -> Option<T>,
    ) -> Option<T> {
        match self.field(key) {
            Some(field) => read(&field, diag),
            None => {
                let at = if self.path.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", self.path)
                };
                diag.error(self.span(), format!("{at}missing key {key:?}"));
                None
            }
        }
    }
}

/// One key's value (or one array element) being read.
pub(super) struct Field<'a> {
    pub(super) path: String,
    key_span: Option<Span>,
    node: Node<'a>,
}

impl<'a> Field<'a> {
    /// Where the value is (the key when the value has no position of its own).
    pub(super) fn span(&self) -> Option<Span> {
        self.node.span().or_else(|| self.key_span.clone())
    }

    /// Where the key is (the value for array elements).
    pub(super) fn key_span(&self) -> Option<Span> {
        self.key_span.clone().or_else(|| self.node.span())
    }

    /// Reports `message` about this value, prefixed with its key path.
    pub(super) fn error(&self, diag: &mut Diag, message: impl std::fmt::Display) {
        diag.error(self.span(), format!("{}: {message}", self.path));
    }

    fn wrong_type(&self, diag: &mut Diag, expected: &str) {
        self.error(
            diag,
            format!("expected {expected}, found {}", self.node.kind()),
        );
    }

    /// The raw string value, without reporting anything (for cross-checks such as duplicates).
    pub(super) fn peek_str(&self) -> Option<&'a str> {
        self.node.value().and_then(Value::as_str)
    }

    pub(super) fn str(&self, diag: &mut Diag) -> Option<&'a str> {
        let found = self.peek_str();
        if found.is_none() {
            self.wrong_type(diag, "a string");
        }
        found
    }

    pub(super) fn bool(&self, diag: &mut Diag) -> Option<bool> {
        let found = self.node.value().and_then(Value::as_bool);
        if found.is_none() {
            self.wrong_type(diag, "a boolean (true or false)");
        }
        found
    }

    /// An integer in `lo ..= hi`, converted to the field's type (`hi` must fit in it).
    pub(super) fn int<T: TryFrom<i64>>(&self, diag: &mut Diag, lo: i64, hi: i64) -> Option<T> {
        self.ranged(diag, IntRange::new(lo, hi))
    }

    /// An integer in `range`, converted to the field's type (`range.hi` must fit in it).
    pub(super) fn ranged<T: TryFrom<i64>>(&self, diag: &mut Diag, range: IntRange) -> Option<T> {
        let Some(v) = self.node.value().and_then(Value::as_integer) else {
            self.wrong_type(diag, "an integer");
            return None;
        };
        if let Some(problem) = range.problem(v) {
            self.error(diag, problem);
            return None;
        }
        match T::try_from(v) {
            Ok(t) => Some(t),
            Err(_) => {
                self.error(diag, format!("{v} is too large; {}", range.expected()));
                None
            }
        }
    }

    /// A number (integer or float) in `lo ..= hi`.
    pub(super) fn float(&self, diag: &mut Diag, lo: f64, hi: f64) -> Option<f64> {
        let value = self.node.value();
        let Some(v) = value
            .and_then(Value::as_float)
            .or_else(|| value.and_then(Value::as_integer).map(|i| i as f64))
        else {
            self.wrong_type(diag, "a number");
            return None;
        };
        if let Some(problem) = super::rules::float_problem(v, lo, hi) {
            self.error(diag, problem);
            return None;
        }
        Some(v)
    }

    /// A safe libvirt object name (see [`check_name`]).
    pub(super) fn name(&self, diag: &mut Diag) -> Option<String> {
        let text = self.str(diag)?;
        match check_name(text) {
            Ok(()) => Some(text.to_string()),
            Err(why) => {
                self.error(diag, why);
                None
            }
        }
    }

    /// A table, `[section]` or `{ inline }`.
    pub(super) fn table(&self, diag: &mut Diag) -> Option<Section<'a>> {
        match self.node.as_tbl() {
            Some(tbl) => Some(Section {
                tbl,
                path: self.path.clone(),
                span: tbl.span().or_else(|| self.key_span()),
            }),
            None => {
                self.wrong_type(diag, "a table");
                None
            }
        }
    }

    /// An array of tables: `[[key]]` sections or an inline array of `{ ... }` tables. Elements
    /// that are not tables are reported and left out.
    pub(super) fn tables(&self, diag: &mut Diag) -> Option<Vec<Section<'a>>> {
        match self.node {
            Node::Item(Item::ArrayOfTables(array)) => Some(
                array
                    .iter()
                    .enumerate()
                    .map(|(i, table)| Section {
                        tbl: Tbl::Table(table),
                        path: format!("{}[{}]", self.path, i + 1),
                        span: table.span().or_else(|| self.key_span()),
                    })
                    .collect(),
            ),
            Node::Item(Item::Value(Value::Array(_))) | Node::Value(Value::Array(_)) => {
                let mut out = Vec::new();
                for element in self.elements() {
                    if let Some(section) = element.table_quiet() {
                        out.push(section);
                    } else {
                        element.wrong_type(diag, "a table");
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(diag, "an array of tables");
                None
            }
        }
    }

    fn table_quiet(&self) -> Option<Section<'a>> {
        let tbl = self.node.as_tbl()?;
        Some(Section {
            tbl,
            path: self.path.clone(),
            span: tbl.span().or_else(|| self.key_span()),
        })
    }

    fn elements(&self) -> Vec<Field<'a>> {
        match self.node.value() {
            Some(Value::Array(array)) => array
                .iter()
                .enumerate()
                .map(|(i, v)| Field {
                    path: format!("{}[{}]", self.path, i + 1),
                    key_span: v.span().or_else(|| self.span()),
                    node: Node::Value(v),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The elements of an inline array `[a, b, ...]`.
    pub(super) fn array(&self, diag: &mut Diag) -> Option<Vec<Field<'a>>> {
        if matches!(self.node.value(), Some(Value::Array(_))) {
            Some(self.elements())
        } else {
            self.wrong_type(diag, "an array");
            None
        }
    }
}

/// The allowed key closest to a misspelt one, if it is close enough to be a likely typo.
fn closest<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4) && *d < a.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key_only_for_likely_typos() {
        let allowed = ["name", "uri", "capacity", "standby"];
        assert_eq!(closest("capacty", &allowed), Some("capacity"));
        assert_eq!(closest("stanby", &allowed), Some("standby"));
        assert_eq!(closest("colour", &allowed), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
