//! The mouse: a click selects a list's row (a click on the selected class opens it), the wheel
//! scrolls the list or the help page. Where the rows are is what the last draw put there.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use super::{App, Effect, Mode};
use crate::screen::Screen;

/// Rows the wheel moves at a time.
const WHEEL_ROWS: isize = 3;

/// Where the rows of the list on screen are: `top` is the screen row of the first row shown,
/// which is row `offset` of the list; `height` rows fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRows {
    pub left: u16,
    pub top: u16,
    pub width: u16,
    pub height: u16,
    pub offset: usize,
}

impl ListRows {
    /// The list row under the screen cell (`column`, `row`), if any.
    fn row_at(&self, column: u16, row: u16) -> Option<usize> {
        let inside = (self.left..self.left + self.width).contains(&column)
            && (self.top..self.top + self.height).contains(&row);
        inside.then(|| self.offset + usize::from(row - self.top))
    }
}

impl App {
    pub(super) fn mouse(&mut self, event: &MouseEvent) -> Vec<Effect> {
        // Nothing acts unseen or behind a question; the editor takes no clicks.
        if self.too_small
            || self.popup.is_some()
            || !matches!(self.mode, Mode::Normal)
            || *self.screen() == Screen::Editor
        {
            return Vec::new();
        }
        match event.kind {
            MouseEventKind::ScrollDown => self.move_rows(WHEEL_ROWS),
            MouseEventKind::ScrollUp => self.move_rows(-WHEEL_ROWS),
            MouseEventKind::Down(MouseButton::Left) => {
                let Some(row) = self
                    .list_rows
                    .and_then(|rows| rows.row_at(event.column, event.row))
                else {
                    return Vec::new();
                };
                if row >= self.list_len() || *self.screen() == Screen::Help {
                    return Vec::new();
                }
                self.status = None;
                let again = self.row_mut().is_some_and(|r| *r == row);
                if let Some(selected) = self.row_mut() {
                    *selected = row;
                }
                if again
                    && *self.screen() == Screen::Dashboard
                    && let Some(class) = self.selected_class()
                {
                    let class = class.to_string();
                    self.push(Screen::Detail { class });
                }
            }
            _ => {}
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_maps_to_the_list_row_under_it() {
        let rows = ListRows {
            left: 1,
            top: 3,
            width: 78,
            height: 4,
            offset: 10,
        };
        assert_eq!(rows.row_at(5, 3), Some(10));
        assert_eq!(rows.row_at(5, 6), Some(13));
        assert_eq!(rows.row_at(5, 7), None, "below the list");
        assert_eq!(rows.row_at(5, 2), None, "the header");
        assert_eq!(rows.row_at(0, 4), None, "the border");
    }
}
