//! Login arrivals and departures per class, counted in 5-minute buckets over the last eight
//! days: what the console's sparklines draw and what demand models learn from. Kept across
//! restarts in `STATE_DIR/demand.json`, written atomically.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Width of a bucket.
pub const BUCKET_SECS: i64 = 300;
/// Buckets kept per class: eight days.
pub const BUCKETS: usize = 8 * 24 * 12;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Unix seconds at the start of the bucket.
    pub start: i64,
    pub logins: u32,
    pub logouts: u32,
}

/// Why a saved history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandHistory {
    classes: BTreeMap<String, VecDeque<Bucket>>,
}

impl DemandHistory {
    fn bucket(&mut self, class: &str, at: Timestamp) -> &mut Bucket {
        let start = at.as_second().div_euclid(BUCKET_SECS) * BUCKET_SECS;
        let series = self.classes.entry(class.to_string()).or_default();
        if series.back().is_none_or(|b| b.start < start) {
            series.push_back(Bucket {
                start,
                ..Bucket::default()
            });
            while series.len() > BUCKETS {
                series.pop_front();
            }
        }
        // A clock set back lands in the newest bucket rather than rewriting the past.
        series.back_mut().expect("just pushed")
    }

    pub fn record_login(&mut self, class: &str, at: Timestamp) {
        self.bucket(class, at).logins += 1;
    }

    pub fn record_logout(&mut self, class: &str, at: Timestamp) {
        self.bucket(class, at).logouts += 1;
    }

    /// Logins per bucket over the `n` buckets ending at `now` (oldest first, zeros where
    /// nothing happened).
    pub fn recent_logins(&self, class: &str, now: Timestamp, n: usize) -> Vec<u32> {
        let last = now.as_second().div_euclid(BUCKET_SECS) * BUCKET_SECS;
        let first = last - (n as i64 - 1) * BUCKET_SECS;
        let mut out = vec![0; n];
        if let Some(series) = self.classes.get(class) {
            for b in series.iter().rev().take_while(|b| b.start >= first) {
                if b.start <= last {
                    out[((b.start - first) / BUCKET_SECS) as usize] = b.logins;
                }
            }
        }
        out
    }

    /// Every bucket of a class, oldest first.
    pub fn buckets(&self, class: &str) -> impl Iterator<Item = &Bucket> {
        self.classes.get(class).into_iter().flatten()
    }

    /// Reads the history; a missing file is an empty history, an unreadable one an error.
    pub fn load(path: &Path) -> Result<DemandHistory, HistoryError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| HistoryError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DemandHistory::default()),
            Err(source) => Err(HistoryError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the history atomically (temp file in the same directory, then rename), readable
    /// by its owner alone (0600): it holds when users log in.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // A temp file left by an older version keeps its mode on open: set it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        drop(file);
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn logins_are_counted_in_five_minute_buckets() {
        let mut h = DemandHistory::default();
        h.record_login("office", at("2026-01-05T08:00:10Z"));
        h.record_login("office", at("2026-01-05T08:04:59Z"));
        h.record_login("office", at("2026-01-05T08:11:00Z"));
        h.record_logout("office", at("2026-01-05T08:12:00Z"));
        assert_eq!(
            h.recent_logins("office", at("2026-01-05T08:14:00Z"), 4),
            vec![0, 2, 0, 1]
        );
        assert_eq!(
            h.recent_logins("dev", at("2026-01-05T08:14:00Z"), 2),
            vec![0, 0]
        );
        assert_eq!(h.buckets("office").map(|b| b.logouts).sum::<u32>(), 1);
    }

    #[test]
    fn only_eight_days_are_kept() {
        let mut h = DemandHistory::default();
        let start = at("2026-01-01T00:00:00Z").as_second();
        for i in 0..(BUCKETS as i64 + 10) {
            h.record_login(
                "office",
                Timestamp::from_second(start + i * BUCKET_SECS).unwrap(),
            );
        }
        assert_eq!(h.buckets("office").count(), BUCKETS);
    }

    #[test]
    fn it_survives_a_restart_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demand.json");
        assert_eq!(
            DemandHistory::load(&path).unwrap(),
            DemandHistory::default(),
            "no file yet"
        );
        let mut h = DemandHistory::default();
        h.record_login("cad", at("2026-01-05T08:00:00Z"));
        // An older version's file, readable by all, is replaced by a private one.
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        h.save(&path).unwrap();
        assert_eq!(DemandHistory::load(&path).unwrap(), h);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        assert!(!dir.path().join("demand.json.tmp").exists());
        std::fs::write(&path, "{broken").unwrap();
        let error = DemandHistory::load(&path).unwrap_err();
        assert!(matches!(error, HistoryError::Parse { .. }), "{error:?}");
        assert!(error.to_string().contains("demand.json"), "{error}");
    }
}
