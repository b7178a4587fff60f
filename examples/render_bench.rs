//! Time to draw one dashboard frame of a large fleet (100 classes, 50 hosts, 10,000 desktops)
//! at 80x24, against a baseline drawn in the same run: a frame holding only an empty bordered
//! block. Prints medians over many frames.
//!
//! `cargo run --release --example render_bench [-- --frames N]`

use std::sync::Arc;
use std::time::Instant;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::widgets::{Block, Borders};

use deskpool_tui::app::App;
use deskpool_tui::sample;
use deskpool_tui::theme::Theme;
use deskpool_tui::views;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let frames: usize = std::env::args()
        .skip_while(|a| a != "--frames")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let (classes, hosts, desktops) = (100, 50, 10_000);
    let fleet = sample::fleet(classes, hosts);
    let at: jiff::Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
    let snapshot = Arc::new(sample::snapshot(&fleet, desktops, at));
    let mut app = App::new(fleet, false, "bench.toml".into(), true);
    let theme = Theme::default();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();

    let (mut dashboard, mut baseline) = (Vec::new(), Vec::new());
    for i in 0..frames + 50 {
        // Each frame starts from a new snapshot, as in the console.
        let t = Instant::now();
        app.on_snapshot(snapshot.clone());
        terminal.draw(|f| views::draw(f, &mut app, &theme)).unwrap();
        let d = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        terminal
            .draw(|f| {
                f.render_widget(
                    Block::default().borders(Borders::ALL).title(" empty "),
                    f.area(),
                )
            })
            .unwrap();
        let b = t.elapsed().as_secs_f64() * 1e3;
        if i >= 50 {
            dashboard.push(d);
            baseline.push(b);
        }
    }
    let ratios: Vec<f64> = dashboard
        .iter()
        .zip(&baseline)
        .map(|(d, b)| d / b)
        .collect();
    let (md, p95) = (median(dashboard.clone()), percentile(dashboard, 0.95));
    let mb = median(baseline);
    println!(
        "render_bench: {classes} classes, {hosts} hosts, {desktops} desktops, 80x24, {frames} frames after 50 warm-up"
    );
    println!("  dashboard frame   median {md:.3} ms   p95 {p95:.3} ms");
    println!("  baseline (empty bordered frame) median {mb:.3} ms");
    println!("  median ratio dashboard/baseline {:.1}x", median(ratios));
    println!(
        "RESULT render: one dashboard frame of {classes} classes, {hosts} hosts, {desktops} desktops at 80x24: median {md:.3} ms, p95 {p95:.3} ms (release build)"
    );
}
