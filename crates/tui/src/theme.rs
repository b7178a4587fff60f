//! Colour themes: semantic colour slots, with optional per-area overrides, read from TOML.
//!
//! Widgets never name colours; they ask the theme for a slot in their area:
//! `theme.style(Area::Hosts, Slot::Warning)`. A theme file gives every slot in `[colors]`, and
//! may override any of them for one area in `[areas.NAME]`:
//!
//! ```toml
//! name = "mine"
//! [colors]            # every slot is required
//! background = "#1e1e2e"
//! text = "white"
//! ...
//! [areas.status_bar]  # optional; any subset of the slots
//! background = 236
//! ```
//!
//! Colours are ratatui's names (`green`, `lightred`, ...), `reset` (the terminal's own colour),
//! `#rrggbb`, or a 256-colour index `0..=255`. The three built-in themes (`dark`, the default,
//! `light` and `high-contrast`) are the files in `themes/`, embedded at build time. Mistakes are
//! reported like configuration errors: `FILE:LINE:COL: key: what is wrong`, all of them.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Style};
use toml_edit::{ImDocument, Item, Key, Table, Value};

use deskpool_config::line_col;

/// A semantic colour slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Background,
    Text,
    /// Keys, links, the focused widget.
    Accent,
    Ok,
    Warning,
    Error,
    /// Hints, timestamps, disabled entries.
    Muted,
    Border,
    /// Background of the selected row.
    Selection,
    /// Text of the selected row.
    SelectionText,
    Title,
}

impl Slot {
    pub const ALL: [Slot; 11] = [
        Slot::Background,
        Slot::Text,
        Slot::Accent,
        Slot::Ok,
        Slot::Warning,
        Slot::Error,
        Slot::Muted,
        Slot::Border,
        Slot::Selection,
        Slot::SelectionText,
        Slot::Title,
    ];

    /// The slot's key in a theme file.
    pub fn key(self) -> &'static str {
        match self {
            Slot::Background => "background",
            Slot::Text => "text",
            Slot::Accent => "accent",
            Slot::Ok => "ok",
            Slot::Warning => "warning",
            Slot::Error => "error",
            Slot::Muted => "muted",
            Slot::Border => "border",
            Slot::Selection => "selection",
            Slot::SelectionText => "selection_text",
            Slot::Title => "title",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn from_key(key: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// A region of the console that may colour some slots its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    Dashboard,
    Detail,
    Editor,
    Events,
    Help,
    Hosts,
    StatusBar,
    CommandLine,
    Popup,
}

impl Area {
    pub const ALL: [Area; 9] = [
        Area::Dashboard,
        Area::Detail,
        Area::Editor,
        Area::Events,
        Area::Help,
        Area::Hosts,
        Area::StatusBar,
        Area::CommandLine,
        Area::Popup,
    ];

    /// The area's key in a theme file (`[areas.status_bar]`).
    pub fn key(self) -> &'static str {
        match self {
            Area::Dashboard => "dashboard",
            Area::Detail => "detail",
            Area::Editor => "editor",
            Area::Events => "events",
            Area::Help => "help",
            Area::Hosts => "hosts",
            Area::StatusBar => "status_bar",
            Area::CommandLine => "command_line",
            Area::Popup => "popup",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn from_key(key: &str) -> Option<Area> {
        Area::ALL.into_iter().find(|a| a.key() == key)
    }
}

const SLOTS: usize = Slot::ALL.len();
const AREAS: usize = Area::ALL.len();

/// The built-in themes, by name; the first is the default.
const BUILTIN: [(&str, &str); 3] = [
    ("dark", include_str!("../../../themes/dark.toml")),
    ("light", include_str!("../../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../../themes/high-contrast.toml"),
    ),
];
/// The config file accepts these names: the list is the config crate's, the themes are here.
const BUILTIN_NAMES: &[&str] = deskpool_config::BUILTIN_THEMES;

/// The colour names a theme accepts, lower case.
const COLOR_NAMES: [(&str, Color); 19] = [
    ("reset", Color::Reset),
    ("black", Color::Black),
    ("red", Color::Red),
    ("green", Color::Green),
    ("yellow", Color::Yellow),
    ("blue", Color::Blue),
    ("magenta", Color::Magenta),
    ("cyan", Color::Cyan),
    ("gray", Color::Gray),
    ("grey", Color::Gray),
    ("darkgray", Color::DarkGray),
    ("darkgrey", Color::DarkGray),
    ("lightred", Color::LightRed),
    ("lightgreen", Color::LightGreen),
    ("lightyellow", Color::LightYellow),
    ("lightblue", Color::LightBlue),
    ("lightmagenta", Color::LightMagenta),
    ("lightcyan", Color::LightCyan),
    ("white", Color::White),
];

const COLOR_HELP: &str = "use a name (green, lightred, ...), #rrggbb or 0-255";

/// A colour theme: a colour for every slot, and per-area overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    name: String,
    colors: [Color; SLOTS],
    areas: [[Option<Color>; SLOTS]; AREAS],
}

impl Default for Theme {
    /// The `dark` theme (or, should it ever fail to parse, the terminal's own colours).
    fn default() -> Theme {
        Theme::builtin(BUILTIN_NAMES[0]).unwrap_or_else(Theme::terminal)
    }
}

impl Theme {
    /// The names of the built-in themes; the first is the default.
    pub fn names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// A built-in theme by name.
    pub fn builtin(name: &str) -> Option<Theme> {
        let (file, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Theme::parse(text, Path::new(&format!("themes/{file}.toml"))).ok()
    }

    /// A built-in theme by name, else the theme file at that path.
    pub fn load(name_or_path: &str) -> Result<Theme, ThemeError> {
        if let Some(theme) = Theme::builtin(name_or_path) {
            return Ok(theme);
        }
        let path = Path::new(name_or_path);
        let looks_like_path = name_or_path.contains(std::path::MAIN_SEPARATOR)
            || name_or_path.ends_with(".toml")
            || path.exists();
        if !looks_like_path {
            return Err(ThemeError::UnknownTheme {
                name: name_or_path.to_string(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|error| ThemeError::Unreadable {
            file: path.to_path_buf(),
            error,
        })?;
        Theme::parse(&text, path)
    }

    /// Parses theme `text`; `file` names it in messages and gives the default name.
    pub fn parse(text: &str, file: &Path) -> Result<Theme, ThemeError> {
        let mut reader = Reader {
            text,
            problems: Vec::new(),
        };
        let theme = reader.theme(file);
        match theme {
            Some(theme) if reader.problems.is_empty() => Ok(theme),
            _ => {
                reader.problems.sort_by_key(|p| (p.line, p.col));
                Err(ThemeError::Invalid {
                    file: file.to_path_buf(),
                    problems: reader.problems,
                })
            }
        }
    }

    /// Every slot the terminal's own colour: for terminals where any colour is too much.
    pub fn terminal() -> Theme {
        Theme {
            name: "terminal".to_string(),
            colors: [Color::Reset; SLOTS],
            areas: [[None; SLOTS]; AREAS],
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The colour of `slot` in `area` (the area's override, else the theme's colour).
    pub fn color(&self, area: Area, slot: Slot) -> Color {
        self.areas[area.index()][slot.index()].unwrap_or(self.colors[slot.index()])
    }

    /// `slot`'s colour on the area's background.
    pub fn style(&self, area: Area, slot: Slot) -> Style {
        Style::new()
            .fg(self.color(area, slot))
            .bg(self.color(area, Slot::Background))
    }

    /// Text on the area's background: the style to fill an area with.
    pub fn base(&self, area: Area) -> Style {
        self.style(area, Slot::Text)
    }

    /// The selected row: selection text on the selection colour.
    pub fn selected(&self, area: Area) -> Style {
        Style::new()
            .fg(self.color(area, Slot::SelectionText))
            .bg(self.color(area, Slot::Selection))
    }
}

/// Why a theme could not be loaded.
#[derive(Debug)]
pub enum ThemeError {
    /// Not a built-in theme name, and not a path either.
    UnknownTheme { name: String },
    Unreadable {
        file: PathBuf,
        error: std::io::Error,
    },
    /// Every mistake in a theme file, in the order they appear.
    Invalid {
        file: PathBuf,
        problems: Vec<ThemeProblem>,
    },
}

/// One mistake in a theme file. `line` and `col` are 1-based; `key` is the key path
/// (`colors.ok`, `areas.popup.border`), empty for syntax errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeProblem {
    pub line: usize,
    pub col: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ThemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThemeError::UnknownTheme { name } => write!(
                f,
                "unknown theme {name:?}; the built-in themes are {} (or give the path of a \
                 theme file)",
                BUILTIN_NAMES.join(", ")
            ),
            ThemeError::Unreadable { file, error } => {
                write!(f, "{}: cannot read: {error}", file.display())
            }
            ThemeError::Invalid { file, problems } => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{}:{}:{}: ", file.display(), p.line, p.col)?;
                    if !p.key.is_empty() {
                        write!(f, "{}: ", p.key)?;
                    }
                    write!(f, "{}", p.message)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ThemeError {}

/// Reads a theme document, collecting every problem with its position.
struct Reader<'a> {
    text: &'a str,
    problems: Vec<ThemeProblem>,
}

impl Reader<'_> {
    fn problem(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        let (line, col) = line_col(self.text, span.map_or(0, |s| s.start));
        self.problems.push(ThemeProblem {
            line,
            col,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn theme(&mut self, file: &Path) -> Option<Theme> {
        let doc = match ImDocument::parse(self.text) {
            Ok(doc) => doc,
            Err(e) => {
                let message = e.message().trim().replace('\n', "; ");
                self.problem(e.span(), "", format!("TOML syntax error: {message}"));
                return None;
            }
        };
        let root = doc.as_table();
        let mut name = file
            .file_stem()
            .map_or_else(|| "theme".to_string(), |s| s.to_string_lossy().into_owned());
        let mut colors = None;
        let mut areas = [[None; SLOTS]; AREAS];
        for (key, item) in root.iter() {
            let key_span = root.key(key).and_then(Key::span);
            match key {
                "name" => match item.as_str() {
                    Some(text) if !text.trim().is_empty() => name = text.to_string(),
                    _ => self.problem(item.span(), "name", "expected a non-empty string"),
                },
                "colors" => match item.as_table_like() {
                    Some(_) => colors = Some(self.colors(root, item)),
                    None => self.problem(item.span(), "colors", "expected a table of colours"),
                },
                "areas" => self.areas(item, &mut areas),
                other => self.problem(
                    key_span,
                    other,
                    "unknown key; a theme has name, [colors] and [areas.NAME]",
                ),
            }
        }
        let Some(colors) = colors else {
            if !root.contains_key("colors") {
                self.problem(
                    Some(0..0),
                    "colors",
                    format!(
                        "missing; a theme needs a [colors] table with every slot: {}",
                        slot_list()
                    ),
                );
            }
            return None;
        };
        let colors = colors?;
        Some(Theme {
            name,
            colors,
            areas,
        })
    }

    /// `[colors]`: every slot, each a colour.
    fn colors(&mut self, root: &Table, item: &Item) -> Option<[Color; SLOTS]> {
        let slots = self.slots("colors", item);
        let header = root.get("colors").and_then(|i| match i {
            Item::Table(t) => t.span(),
            other => other.span(),
        });
        let mut out = [Color::Reset; SLOTS];
        let mut complete = true;
        for slot in Slot::ALL {
            match slots[slot.index()] {
                Some(color) => out[slot.index()] = color,
                None => {
                    complete = false;
                    // Only report slots that are absent (a bad value was reported already).
                    if !item
                        .as_table_like()
                        .is_some_and(|t| t.contains_key(slot.key()))
                    {
                        self.problem(
                            header.clone(),
                            &format!("colors.{}", slot.key()),
                            "missing; every slot is required in [colors]",
                        );
                    }
                }
            }
        }
        complete.then_some(out)
    }

    /// `[areas.NAME]` tables of overrides.
    fn areas(&mut self, item: &Item, areas: &mut [[Option<Color>; SLOTS]; AREAS]) {
        let Some(table) = item.as_table_like() else {
            self.problem(
                item.span(),
                "areas",
                "expected a table of [areas.NAME] tables",
            );
            return;
        };
        for (key, sub) in table.iter() {
            let path = format!("areas.{key}");
            let Some(area) = Area::from_key(key) else {
                let span = table.key(key).and_then(Key::span).or_else(|| sub.span());
                self.problem(
                    span,
                    &path,
                    format!(
                        "unknown area; expected one of {}",
                        Area::ALL.map(Area::key).join(", ")
                    ),
                );
                continue;
            };
            if sub.as_table_like().is_none() {
                self.problem(sub.span(), &path, "expected a table of colours");
                continue;
            }
            areas[area.index()] = self.slots(&path, sub);
        }
    }

    /// The slots set in a table of colours; unknown slots and bad colours are reported.
    fn slots(&mut self, path: &str, item: &Item) -> [Option<Color>; SLOTS] {
        let mut out = [None; SLOTS];
        let Some(table) = item.as_table_like() else {
            return out;
        };
        for (key, value) in table.iter() {
            let key_path = format!("{path}.{key}");
            let Some(slot) = Slot::from_key(key) else {
                let span = table.key(key).and_then(Key::span).or_else(|| value.span());
                self.problem(
                    span,
                    &key_path,
                    format!("unknown slot; expected one of {}", slot_list()),
                );
                continue;
            };
            match value.as_value() {
                Some(v) => match parse_color(v) {
                    Ok(color) => out[slot.index()] = Some(color),
                    Err(why) => self.problem(v.span(), &key_path, why.to_string()),
                },
                None => self.problem(
                    value.span(),
                    &key_path,
                    format!("expected a colour; {COLOR_HELP}"),
                ),
            }
        }
        out
    }
}

fn slot_list() -> String {
    Slot::ALL.map(Slot::key).join(", ")
}

/// Why a theme value is not a colour; the message is the one the theme's problem shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ColorError {
    #[error("{text:?} is not a colour; {COLOR_HELP}")]
    UnknownName { text: String },
    #[error("{value} is not a colour; {COLOR_HELP}")]
    IndexOutOfRange { value: i64 },
    /// `found` is the kind of TOML value given instead ("a float", "an array", ...).
    #[error("expected a colour, found {found}; {COLOR_HELP}")]
    NotAColour { found: &'static str },
}

/// A colour value: a name, `reset`, `#rrggbb`, or an index (integer or digits) 0-255.
fn parse_color(value: &Value) -> Result<Color, ColorError> {
    match value {
        Value::String(s) => color_from_str(s.value()).ok_or_else(|| ColorError::UnknownName {
            text: s.value().to_string(),
        }),
        Value::Integer(i) => u8::try_from(*i.value())
            .map(Color::Indexed)
            .map_err(|_| ColorError::IndexOutOfRange { value: *i.value() }),
        other => Err(ColorError::NotAColour {
            found: match other {
                Value::Float(_) => "a float",
                Value::Boolean(_) => "a boolean",
                Value::Datetime(_) => "a date-time",
                Value::Array(_) => "an array",
                _ => "a table",
            },
        }),
    }
}

fn color_from_str(text: &str) -> Option<Color> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix('#') {
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let n = u32::from_str_radix(hex, 16).ok()?;
        let [_, r, g, b] = n.to_be_bytes();
        return Some(Color::Rgb(r, g, b));
    }
    if !lower.is_empty() && lower.chars().all(|c| c.is_ascii_digit()) {
        return lower.parse::<u8>().ok().map(Color::Indexed);
    }
    COLOR_NAMES
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, color)| *color)
}

#[cfg(test)]
#[path = "theme_tests.rs"]
mod tests;
