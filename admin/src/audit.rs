//! The audit log: one JSON line per admin action (who, what, the outcome), appended and
//! synced before the action's answer is sent, exportable as JSON and CSV.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix milliseconds.
    pub time_ms: u64,
    /// The session that asked (0: the service itself, or a failed login).
    pub session: u64,
    /// What was asked, for example `propose` or `approve`.
    pub action: String,
    /// What it was about: a proposal id, a title, a contract.
    pub subject: String,
    /// `ok`, or why it failed.
    pub outcome: String,
    /// The transaction it submitted, if any (hex).
    pub transaction: Option<String>,
}

/// The audit log file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    pub fn open(path: PathBuf) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
        Ok(Self { path, file: Mutex::new(file) })
    }

    /// Appends `entry` and syncs it.
    pub fn record(&self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Every entry, oldest first (a line that does not parse is skipped and reported).
    pub fn entries(&self) -> std::io::Result<Vec<Entry>> {
        let _writing = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let reader = std::io::BufReader::new(std::fs::File::open(&self.path)?);
        let mut entries = Vec::new();
        for (number, line) in reader.lines().enumerate() {
            let line = line?;
            match serde_json::from_str(&line) {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    tracing::warn!(line = number + 1, %error, "skipping a damaged audit line")
                }
            }
        }
        Ok(entries)
    }
}

/// `entries` as CSV with a header row. Fields are quoted and quotes doubled; a field that
/// a spreadsheet would read as a formula (`=`, `+`, `-`, `@`) is prefixed with `'`.
pub fn to_csv(entries: &[Entry]) -> String {
    let mut out = String::from("time_ms,session,action,subject,outcome,transaction\n");
    for entry in entries {
        let fields = [
            entry.time_ms.to_string(),
            entry.session.to_string(),
            entry.action.clone(),
            entry.subject.clone(),
            entry.outcome.clone(),
            entry.transaction.clone().unwrap_or_default(),
        ];
        let row: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(field: &str) -> String {
    let guarded = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(subject: &str) -> Entry {
        Entry {
            time_ms: 1,
            session: 2,
            action: "propose".into(),
            subject: subject.into(),
            outcome: "ok".into(),
            transaction: None,
        }
    }

    #[test]
    fn entries_survive_a_reopen_and_export_as_safe_csv() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("audit.jsonl");
        let log = AuditLog::open(path.clone()).unwrap();
        log.record(&entry("a \"quoted\", title")).unwrap();
        log.record(&entry("=HYPERLINK(\"x\")")).unwrap();
        drop(log);
        let entries = AuditLog::open(path).unwrap().entries().unwrap();
        assert_eq!(entries.len(), 2);
        let csv = to_csv(&entries);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[1], r#""1","2","propose","a ""quoted"", title","ok","""#);
        assert!(lines[2].contains(r#""'=HYPERLINK(""x"")""#), "{}", lines[2]);
    }
}
