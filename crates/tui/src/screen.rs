//! The console's screens, and how the title names them. Both the app (which screens are open)
//! and the strings (each screen's keys and help) read this; neither depends on the other for it.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Detail { class: String },
    Hosts,
    Events,
    Editor,
    Help,
}

impl Screen {
    pub fn title(&self) -> String {
        match self {
            Screen::Dashboard => "dashboard".into(),
            Screen::Detail { class } => format!("class {class}"),
            Screen::Hosts => "hosts".into(),
            Screen::Events => "events".into(),
            Screen::Editor => "policy editor".into(),
            Screen::Help => "help".into(),
        }
    }
}
