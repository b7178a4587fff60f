//! Tests of themes: the built-ins, overrides, and each kind of mistake with its position.

use std::path::Path;

use super::*;

const FULL_COLORS: &str = r##"[colors]
background = "#1e1e2e"
text = "white"
accent = "lightblue"
ok = "green"
warning = 220
error = "#ff0000"
muted = "darkgray"
border = "gray"
selection = 238
selection_text = "reset"
title = "Yellow"
"##;

fn problems(text: &str) -> Vec<ThemeProblem> {
    match Theme::parse(text, Path::new("mytheme.toml")) {
        Ok(_) => panic!("the theme was accepted:\n{text}"),
        Err(ThemeError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[test]
fn every_builtin_loads_with_distinct_ok_warning_and_error_colours() {
    assert_eq!(Theme::names(), ["dark", "light", "high-contrast"]);
    for name in Theme::names() {
        let theme = Theme::builtin(name).unwrap_or_else(|| panic!("{name} does not load"));
        assert_eq!(theme.name(), *name);
        for area in Area::ALL {
            let ok = theme.color(area, Slot::Ok);
            let warning = theme.color(area, Slot::Warning);
            let error = theme.color(area, Slot::Error);
            assert!(
                ok != warning && warning != error && ok != error,
                "{name}/{area:?}: ok, warning and error must differ"
            );
            for slot in Slot::ALL
                .into_iter()
                .filter(|s| !matches!(s, Slot::Background | Slot::SelectionText))
            {
                assert_ne!(
                    theme.color(area, slot),
                    theme.color(area, Slot::Background),
                    "{name}/{area:?}: {slot:?} is invisible on the background"
                );
            }
            assert_ne!(
                theme.color(area, Slot::Selection),
                theme.color(area, Slot::SelectionText),
                "{name}/{area:?}: selected text is invisible"
            );
        }
        // Loading by name gives the same theme.
        assert_eq!(Theme::load(name).unwrap(), theme);
    }
    assert_eq!(Theme::default(), Theme::builtin("dark").unwrap());
}

#[test]
fn the_high_contrast_theme_uses_no_greys() {
    let theme = Theme::builtin("high-contrast").unwrap();
    for area in Area::ALL {
        for slot in Slot::ALL {
            let color = theme.color(area, slot);
            // Greys: the 232-255 ramp, and the named greys.
            let grey = matches!(color, Color::Gray | Color::DarkGray)
                || matches!(color, Color::Indexed(i) if i >= 232);
            assert!(!grey, "{area:?}/{slot:?} is a grey: {color:?}");
            assert!(
                !matches!(color, Color::Rgb(..)),
                "{area:?}/{slot:?} needs true colour"
            );
        }
    }
}

#[test]
fn a_theme_file_with_area_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    let text = format!(
        "name = \"mine\"\n{FULL_COLORS}\n[areas.status_bar]\nbackground = \"#313244\"\n\
         [areas.popup]\nborder = 51\n"
    );
    std::fs::write(&path, text).unwrap();
    let theme = Theme::load(path.to_str().unwrap()).unwrap();
    assert_eq!(theme.name(), "mine");
    assert_eq!(
        theme.color(Area::Dashboard, Slot::Background),
        Color::Rgb(0x1e, 0x1e, 0x2e)
    );
    assert_eq!(
        theme.color(Area::StatusBar, Slot::Background),
        Color::Rgb(0x31, 0x32, 0x44)
    );
    // What an area does not override comes from [colors].
    assert_eq!(theme.color(Area::StatusBar, Slot::Text), Color::White);
    assert_eq!(theme.color(Area::Popup, Slot::Border), Color::Indexed(51));
    assert_eq!(theme.color(Area::Hosts, Slot::Border), Color::Gray);
    assert_eq!(theme.color(Area::Hosts, Slot::Warning), Color::Indexed(220));
    assert_eq!(theme.color(Area::Hosts, Slot::SelectionText), Color::Reset);
    assert_eq!(theme.color(Area::Hosts, Slot::Title), Color::Yellow);

    assert_eq!(
        theme.style(Area::StatusBar, Slot::Error),
        Style::new()
            .fg(Color::Rgb(0xff, 0, 0))
            .bg(Color::Rgb(0x31, 0x32, 0x44))
    );
    assert_eq!(
        theme.base(Area::Events),
        Style::new()
            .fg(Color::White)
            .bg(Color::Rgb(0x1e, 0x1e, 0x2e))
    );
    assert_eq!(
        theme.selected(Area::Events),
        Style::new().fg(Color::Reset).bg(Color::Indexed(238))
    );
}

#[test]
fn the_name_defaults_to_the_file_stem() {
    let theme = Theme::parse(FULL_COLORS, Path::new("dir/ocean.toml")).unwrap();
    assert_eq!(theme.name(), "ocean");
}

#[test]
fn a_bad_colour_names_the_key_and_its_position() {
    let text = FULL_COLORS.replace("ok = \"green\"", "ok = \"gren\"");
    let err = Theme::parse(&text, Path::new("mytheme.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mytheme.toml:5:6: colors.ok: \"gren\" is not a colour; use a name (green, lightred, ...), \
         #rrggbb or 0-255"
    );
    let text = FULL_COLORS.replace("warning = 220", "warning = 256");
    let p = problems(&text);
    assert_eq!(
        (
            p[0].line,
            p[0].col,
            p[0].key.as_str(),
            p[0].message.as_str()
        ),
        (
            6,
            11,
            "colors.warning",
            "256 is not a colour; use a name (green, lightred, ...), #rrggbb or 0-255"
        )
    );
    let text = FULL_COLORS.replace("\"#ff0000\"", "\"#ff00\"");
    let p = problems(&text);
    assert_eq!(
        (p[0].line, p[0].col, p[0].key.as_str()),
        (7, 9, "colors.error")
    );
    let text = FULL_COLORS.replace("selection = 238", "selection = true");
    let p = problems(&text);
    assert_eq!((p[0].line, p[0].col), (10, 13));
    assert!(
        p[0].message
            .starts_with("expected a colour, found a boolean")
    );
}

#[test]
fn unknown_keys_areas_and_slots_are_reported_at_the_key() {
    let text = format!(
        "name = \"x\"\nauthor = \"me\"\n{FULL_COLORS}oky = \"green\"\n\
         [areas.sidebar]\ntext = \"red\"\n[areas.popup]\nshadow = \"black\"\n"
    );
    let p = problems(&text);
    let found: Vec<_> = p.iter().map(|p| (p.line, p.col, p.key.as_str())).collect();
    assert_eq!(
        found,
        [
            (2, 1, "author"),
            (15, 1, "colors.oky"),
            (16, 8, "areas.sidebar"),
            (19, 1, "areas.popup.shadow"),
        ]
    );
    assert!(p[0].message.starts_with("unknown key"));
    assert!(
        p[1].message
            .starts_with("unknown slot; expected one of background, text")
    );
    assert!(p[2].message.contains("dashboard, detail, editor"));
    assert!(p[3].message.starts_with("unknown slot"));
}

#[test]
fn every_missing_slot_is_reported_at_the_colors_table() {
    let text = FULL_COLORS
        .replace("muted = \"darkgray\"\n", "")
        .replace("title = \"Yellow\"\n", "");
    let text = format!("name = \"x\"\n\n{text}");
    let err = Theme::parse(&text, Path::new("mytheme.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mytheme.toml:3:1: colors.muted: missing; every slot is required in [colors]\n\
         mytheme.toml:3:1: colors.title: missing; every slot is required in [colors]"
    );
    let p = problems("name = \"x\"\n");
    assert_eq!((p[0].line, p[0].col, p[0].key.as_str()), (1, 1, "colors"));
    assert!(p[0].message.contains("background, text, accent"));
}

#[test]
fn a_syntax_error_is_positioned() {
    let text = FULL_COLORS.replace("ok = \"green\"", "ok = \"green");
    let p = problems(&text);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, 5);
    assert!(
        p[0].message.starts_with("TOML syntax error"),
        "{}",
        p[0].message
    );
}

#[test]
fn unknown_names_and_unreadable_files() {
    let err = Theme::load("solarized").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown theme \"solarized\"; the built-in themes are dark, light, high-contrast (or \
         give the path of a theme file)"
    );
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone.toml");
    let err = Theme::load(gone.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, ThemeError::Unreadable { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read:", gone.display()))
    );
}

#[test]
fn colours_parse_by_name_hex_and_index() {
    assert_eq!(color_from_str("LightRed"), Some(Color::LightRed));
    assert_eq!(color_from_str("grey"), Some(Color::Gray));
    assert_eq!(color_from_str("reset"), Some(Color::Reset));
    assert_eq!(color_from_str("#0A0b0C"), Some(Color::Rgb(10, 11, 12)));
    assert_eq!(color_from_str("17"), Some(Color::Indexed(17)));
    for bad in ["", "#12345", "#12345g", "256", "-1", "purple", "#+12345"] {
        assert_eq!(color_from_str(bad), None, "{bad:?}");
    }
}

#[test]
fn the_built_in_themes_are_exactly_the_names_the_config_accepts() {
    let defined: Vec<&str> = BUILTIN.iter().map(|(name, _)| *name).collect();
    assert_eq!(defined, deskpool_config::BUILTIN_THEMES);
    for name in deskpool_config::BUILTIN_THEMES {
        assert!(
            Theme::builtin(name).is_some(),
            "built-in theme {name} does not parse"
        );
    }
}
