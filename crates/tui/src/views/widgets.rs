//! The pieces the views share: bordered blocks, the selected row's style, a class's buffer
//! health colour, bars (gauges), fixed-scale sparklines, ages, cut and wrapped text.

use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders};

use crate::theme::{Area, Slot, Theme};
use deskpool_api::ClassStatus;

/// A bordered block with a title, in an area's colours.
pub(crate) fn block<'a>(title: impl Into<Line<'a>>, area: Area, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(area, Slot::Border))
        .title(title.into().style(theme.style(area, Slot::Title)))
        .style(theme.base(area))
}

/// The selected row: the theme's selection text on its selection colour (a pair each theme
/// chooses to read well together; plain text on the selection need not).
pub(crate) fn selected(area: Area, theme: &Theme) -> Style {
    theme.selected(area).add_modifier(Modifier::BOLD)
}

/// The highlight of a selected row whose cells carry their own colours (health, state): the
/// background marks the row and each cell keeps its colour.
pub(crate) fn selected_keeping_colours(area: Area, theme: &Theme) -> Style {
    Style::default()
        .bg(theme.color(area, Slot::Selection))
        .add_modifier(Modifier::BOLD)
}

/// Where a bordered table's rows are (inside the border, below its one-line header), from the
/// first row shown (`offset`): what a mouse click is read against.
pub(crate) fn list_rows(table: ratatui::layout::Rect, offset: usize) -> crate::app::ListRows {
    crate::app::ListRows {
        left: table.x + 1,
        top: table.y + 2,
        width: table.width.saturating_sub(2),
        height: table.height.saturating_sub(3),
        offset,
    }
}

/// Buffer health: at target, below it, or empty while something is wanted.
pub(crate) fn buffer_slot(c: &ClassStatus) -> Slot {
    let p = &c.plan;
    if p.buffer_target > 0 && p.buffer == 0 {
        Slot::Error
    } else if p.buffer < p.buffer_target {
        Slot::Warning
    } else {
        Slot::Ok
    }
}

/// A bar of `width` cells filled to `value / max`.
pub(crate) fn bar(value: u32, max: u32, width: usize) -> String {
    let filled = if max == 0 {
        if value > 0 { width } else { 0 }
    } else {
        ((u64::from(value.min(max)) * width as u64 + u64::from(max) / 2) / u64::from(max)) as usize
    };
    let mut s = "█".repeat(filled);
    s.push_str(&"░".repeat(width - filled));
    s
}

/// A sparkline of the last `width` of `values` on a fixed scale: `max` (or more) draws a full
/// cell, 0 the lowest one, whatever the values' own maximum.
pub(crate) fn spark_scaled(values: &[u64], max: u64, width: usize) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let mut s: String = values
        .iter()
        .rev()
        .take(width)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|&v| LEVELS[(v.min(max) * 7 + max / 2).checked_div(max).unwrap_or(0) as usize])
        .collect();
    while s.chars().count() < width {
        s.insert(0, ' ');
    }
    s
}

/// "42s", "5m", "3h", "2d".
pub(crate) fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// A table column: the width its widest value wants, the least it can be given, and when it is
/// left out of a narrow table (`drop_rank` 0: never; higher ranks go first).
pub(crate) struct Column {
    pub want: u16,
    pub min: u16,
    pub drop_rank: u8,
}

/// Widths of `columns` in a bordered table `width` cells wide (a 1-cell selection marker, one
/// cell between columns); `None` for a column left out. Columns are left out, highest rank
/// first, while their least widths do not fit; the room left goes to each column in order up
/// to what it wants, and what remains to the last one.
pub(crate) fn column_widths(width: u16, columns: &[Column]) -> Vec<Option<u16>> {
    let inner = width.saturating_sub(3);
    let mut kept: Vec<bool> = vec![true; columns.len()];
    let needed = |kept: &[bool]| -> u16 {
        let shown = columns.iter().zip(kept).filter(|(_, k)| **k);
        let (count, sum) = shown.fold((0u16, 0u16), |(n, s), (c, _)| (n + 1, s + c.min));
        sum + count.saturating_sub(1)
    };
    while needed(&kept) > inner {
        let next = (0..columns.len())
            .filter(|&i| kept[i] && columns[i].drop_rank > 0)
            .max_by_key(|&i| columns[i].drop_rank);
        match next {
            Some(i) => kept[i] = false,
            None => break,
        }
    }
    let mut widths: Vec<Option<u16>> = columns
        .iter()
        .zip(&kept)
        .map(|(c, k)| k.then_some(c.min))
        .collect();
    let mut room = inner.saturating_sub(needed(&kept));
    for (w, c) in widths.iter_mut().zip(columns) {
        if let Some(w) = w {
            let more = c.want.saturating_sub(*w).min(room);
            *w += more;
            room -= more;
        }
    }
    if let Some(last) = widths.iter_mut().rev().find_map(|w| w.as_mut()) {
        *last += room;
    }
    widths
}

/// The cells of the columns [`column_widths`] kept (`Some` width), in order.
pub(crate) fn shown_cells<'a>(
    cells: Vec<ratatui::widgets::Cell<'a>>,
    widths: &[Option<u16>],
) -> Vec<ratatui::widgets::Cell<'a>> {
    cells
        .into_iter()
        .zip(widths)
        .filter_map(|(c, w)| w.map(|_| c))
        .collect()
}

/// Cuts `text` to `width` characters, marking the cut.
pub(crate) fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// `text` wrapped at word boundaries to `width`, each line after the first indented by
/// `indent` spaces (a word longer than a line is cut across lines, never lost).
pub(crate) fn wrap_hanging(text: &str, width: usize, indent: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let room = |lines: &Vec<String>| {
        if lines.is_empty() {
            width
        } else {
            width.saturating_sub(indent)
        }
        .max(1)
    };
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = line.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= room(&lines) {
                if gap == 1 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a whole line.
            let cut = room(&lines);
            lines.push(word.drain(..cut).collect());
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    for l in lines.iter_mut().skip(1) {
        l.insert_str(0, &" ".repeat(indent));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_tables_leave_columns_out_by_rank_and_wide_ones_give_each_what_it_wants() {
        let columns = [
            Column {
                want: 30,
                min: 10,
                drop_rank: 0,
            },
            Column {
                want: 8,
                min: 8,
                drop_rank: 2,
            },
            Column {
                want: 20,
                min: 6,
                drop_rank: 0,
            },
            Column {
                want: 6,
                min: 6,
                drop_rank: 1,
            },
        ];
        // 160 wide: everything at its want, the rest to the last.
        let wide = column_widths(160, &columns);
        assert_eq!(wide[..3], [Some(30), Some(8), Some(20)]);
        assert_eq!(wide[3], Some(160 - 3 - 3 - 58));
        // 35 wide: the rank-2 column goes first, then rank 1 only if still needed.
        let narrow = column_widths(35, &columns);
        assert_eq!(narrow[1], None);
        assert!(narrow[3].is_some(), "{narrow:?}");
        let total: u16 = narrow.iter().flatten().sum::<u16>() + 2;
        assert_eq!(total, 35 - 3);
        assert!(column_widths(40, &columns).iter().all(Option::is_some));
        assert_eq!(column_widths(20, &columns)[3], None);
    }

    #[test]
    fn bars_and_sparklines_scale() {
        assert_eq!(bar(5, 10, 10), "█████░░░░░");
        assert_eq!(bar(12, 10, 4), "████");
        assert_eq!(bar(0, 0, 3), "░░░");
        assert_eq!(spark_scaled(&[0, 7, 14], 14, 5), "  ▁▅█");
        assert_eq!(age(30), "30s");
        assert_eq!(age(600), "10m");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(spark_scaled(&[1, 2], 2, 3), " ▅█");
        assert_eq!(spark_scaled(&[1, 9], 4, 2), "▃█");
    }

    #[test]
    fn wrapped_text_hangs_under_its_first_line_and_loses_nothing() {
        let lines = wrap_hanging("buffer 3 below target 12: 4 in creation, pacing", 20, 4);
        assert_eq!(
            lines,
            [
                "buffer 3 below",
                "    target 12: 4 in",
                "    creation, pacing"
            ]
        );
        let lines = wrap_hanging("abcdefghij", 6, 2);
        assert_eq!(lines, ["abcdef", "  ghij"]);
        assert_eq!(wrap_hanging("", 10, 2), [""]);
    }
}
