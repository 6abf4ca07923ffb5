//! The exclusive lock file that keeps a second Patchbay process off one SQLite database.

use patchbay_store::{StoreError, StoreResult};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::sync::Mutex;

/// Holds `<db path>.lock` locked until [`LockFile::release`] or drop. The OS drops the lock when
/// the process dies, so a crash never leaves a stale lock behind.
pub(crate) struct LockFile {
    file: Mutex<Option<File>>,
}

impl LockFile {
    /// Takes the lock, or fails with `Conflict` naming the database and the lock file.
    pub(crate) fn acquire(db_path: &Path) -> StoreResult<Self> {
        let mut lock_path = db_path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = Path::new(&lock_path);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(lock_path).map_err(|e| {
            StoreError::Unavailable(format!("cannot open lock file {}: {}", lock_path.display(), e.kind()))
        })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { file: Mutex::new(Some(file)) }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Conflict(format!(
                "another Patchbay process is using {} (lock file {})",
                db_path.display(),
                lock_path.display()
            ))),
            Err(TryLockError::Error(e)) => {
                Err(StoreError::Unavailable(format!("cannot lock {}: {}", lock_path.display(), e.kind())))
            }
        }
    }

    /// Unlocks (closing the file releases the lock).
    pub(crate) fn release(&self) {
        let mut guard = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.take();
    }
}
