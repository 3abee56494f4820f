//! `todo-api backup`: a consistent copy of a SQLite database while the
//! server keeps serving, through SQLite's online backup API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// How long a copy waits for a lock the server holds (a checkpoint, say).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the copy may find the source busy before it gives up.
const BUSY_ATTEMPTS: u32 = 100;

/// What a finished copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    pub pages: i32,
}

/// Copies the database at `source` into the new file `destination`, in
/// one step of the backup API: one read transaction, so the copy is the
/// database as of one moment, every write committed before it included,
/// while the server's writes go on (WAL mode lets them). The copy is
/// written beside `destination`, checked (`PRAGMA integrity_check`), made
/// durable and only then renamed into place; it is one self-contained file
/// in rollback-journal mode, which `serve` turns back to WAL when it opens
/// it. The error is a sentence for the operator.
pub fn backup(source: &Path, destination: &Path) -> Result<BackupReport, String> {
    if destination.exists() {
        return Err(format!(
            "{} exists already: back up to a new file",
            destination.display()
        ));
    }
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open the database {}: {e}", source.display()))?;
    from.busy_timeout(BUSY_TIMEOUT).map_err(describe)?;
    let partial = partial_path(destination);
    let result = copy_into(&from, &partial);
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let report = result?;
    std::fs::rename(&partial, destination)
        .map_err(|e| format!("cannot move the copy to {}: {e}", destination.display()))?;
    sync_directory_of(destination);
    Ok(report)
}

fn copy_into(from: &Connection, partial: &Path) -> Result<BackupReport, String> {
    let mut to = Connection::open(partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let pages = {
        let backup = Backup::new(from, &mut to).map_err(describe)?;
        let mut busy = 0;
        loop {
            match backup.step(-1).map_err(describe)? {
                StepResult::Done => break,
                StepResult::More => {}
                _ if busy < BUSY_ATTEMPTS => {
                    busy += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return Err("the database stayed locked; try again".into()),
            }
        }
        backup.progress().pagecount
    };
    to.pragma_update(None, "journal_mode", "DELETE")
        .map_err(describe)?;
    let check: String = to
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(describe)?;
    if check != "ok" {
        return Err(format!("the copy failed its integrity check: {check}"));
    }
    drop(to);
    std::fs::File::open(partial)
        .and_then(|file| file.sync_all())
        .map_err(|e| format!("cannot flush the copy to disk: {e}"))?;
    Ok(BackupReport { pages })
}

/// `FILE.partial`, beside `FILE` so that the rename stays on one file system.
fn partial_path(destination: &Path) -> PathBuf {
    let mut name = destination.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Makes the rename itself durable; a directory that cannot be opened
/// (some file systems) leaves it to the next sync of the system.
fn sync_directory_of(file: &Path) {
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(directory) = std::fs::File::open(directory) {
        let _ = directory.sync_all();
    }
}

fn describe(error: rusqlite::Error) -> String {
    format!("the backup failed: {error}")
}
