//! Engine state, the decision log and each fleet's demand history, kept in SQLite in the state
//! directory, so that a restart resumes each fleet's recommendation history, scale events and
//! panic state — and so never scales down on lost history — keeps the forecaster's history
//! without refetching it, and can read recent decisions back.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::engine::{Decision, EngineState};

/// Decisions kept per fleet (about 4 days at a 15 s tick).
const DECISIONS_KEPT: i64 = 25_000;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created.
    #[error("{path}: cannot create the state directory: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the state directory.
    #[error(
        "{path}: another process holds this state directory (a second llm-autoscaler on the same \
         state would set the same groups twice): stop it, or give this one its own \
         `global.state_dir`; `fuser -v {path}` shows who holds it"
    )]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// SQLite failed.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be read back.
    #[error("state database {path}: fleet {fleet}: unreadable engine state: {source}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The fleet.
        fleet: String,
        /// The cause.
        #[source]
        source: crate::engine::StateError,
    },
    /// The integrity check found damage.
    #[error("state database {path}: integrity check failed: {detail}")]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// SQLite's first finding.
        detail: String,
    },
}

/// How the database was found at open: what an operator must hear about.
#[derive(Clone, Debug, PartialEq)]
pub enum Opened {
    /// The saved state, as left.
    Resumed,
    /// No database: a first start (or someone deleted it).
    Fresh,
    /// The database was damaged: moved aside, and a fresh one started.
    Recovered {
        /// Where the damaged file went.
        moved_to: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// The database could not be written (read-only or full filesystem, permissions): the
    /// daemon runs on an in-memory database from a fresh engine, persisting nothing.
    InMemory {
        /// Why it could not be written.
        why: String,
    },
}

/// The state database.
pub struct StateStore {
    conn: Connection,
    path: PathBuf,
    /// Held for the store's life: the state directory's flock (released by the kernel when the
    /// process dies, so a crash never leaves a stale lock).
    _lock: Option<std::fs::File>,
    opened: Opened,
}

/// Opens `path` as our database: one connection, exclusive locking, WAL, schema present,
/// `quick_check` clean.
///
/// Exclusive locking mode is set *before* WAL: SQLite then never maps a `-shm` file, so a
/// read-only or full filesystem is an error on a write rather than a SIGBUS on a mapped page
/// (which killed the daemon with nothing logged). Only this process reads the file while it
/// runs (the flock says so anyway).
fn open_db(path: &Path) -> Result<Connection, StoreError> {
    let sql = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(sql)?;
    conn.execute_batch(
        "PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;",
    )
    .map_err(sql)?;
    quick_check(&conn, path)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    Ok(conn)
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS engine_state (
         fleet TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS decisions (
         id INTEGER PRIMARY KEY AUTOINCREMENT, fleet TEXT NOT NULL, at TEXT NOT NULL,
         action TEXT NOT NULL, summary TEXT NOT NULL, decision TEXT NOT NULL);
     CREATE INDEX IF NOT EXISTS decisions_by_fleet ON decisions (fleet, id);
     CREATE TABLE IF NOT EXISTS demand (
         fleet TEXT NOT NULL, minute INTEGER NOT NULL, value REAL,
         PRIMARY KEY (fleet, minute));
     CREATE TABLE IF NOT EXISTS engine_state_set_aside (
         fleet TEXT NOT NULL, state TEXT NOT NULL, updated_at TEXT NOT NULL,
         set_aside_at TEXT NOT NULL, reason TEXT NOT NULL);";

/// SQLite's `quick_check`: `Damaged` with its first finding unless it says `ok`.
fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let verdict: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(StoreError::Damaged {
            path: path.to_path_buf(),
            detail: verdict,
        })
    }
}

/// Whether an open failure means the file is damaged (move it aside) rather than unwritable.
fn is_damage(e: &StoreError) -> bool {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match e {
        StoreError::Damaged { .. } => true,
        StoreError::Sqlite {
            source: rusqlite::Error::SqliteFailure(f, _),
            ..
        } => matches!(f.code, DatabaseCorrupt | NotADatabase),
        _ => false,
    }
}

/// Moves `path` and its WAL files aside as `<name>.corrupt-<unix secs>`; returns the new path.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("state.db");
    let target = path.with_file_name(format!("{name}.corrupt-{stamp}"));
    std::fs::rename(path, &target)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = path.with_file_name(format!("{name}{suffix}"));
        if side.exists() {
            let _ = std::fs::rename(
                &side,
                target.with_file_name(format!("{name}.corrupt-{stamp}{suffix}")),
            );
        }
    }
    Ok(target)
}

/// Takes the state directory's exclusive flock (on the directory itself, so a read-only
/// directory can still be locked); `Locked` when another process has it.
fn lock_dir(dir: &Path) -> Result<Option<std::fs::File>, StoreError> {
    let handle = match std::fs::File::open(dir) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(path = %dir.display(), error = %e, "the state directory cannot be locked: a second daemon on it would not be refused");
            return Ok(None);
        }
    };
    match handle.try_lock() {
        Ok(()) => Ok(Some(handle)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: dir.to_path_buf(),
        }),
        // A filesystem without flock (some network filesystems): run unguarded rather than not
        // at all, and say so.
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!(path = %dir.display(), error = %e, "the state directory cannot be locked: a second daemon on it would not be refused");
            Ok(None)
        }
    }
}

impl StateStore {
    /// Opens (creating) `state.db` in `dir`, holding the directory's lock.
    ///
    /// Never refuses to start over the database itself: a damaged one is moved aside and a
    /// fresh one started; one that cannot be written leaves the daemon on an in-memory
    /// database. Both start the engines fresh — a fresh engine never scales down before it has
    /// history — and [`StateStore::opened`] says which happened, for the log and `/metrics`.
    /// Refuses only a second process on the same directory.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = lock_dir(dir)?;
        let path = dir.join("state.db");
        let existed = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        let (conn, opened) = match open_db(&path) {
            Ok(conn) if existed => (conn, Opened::Resumed),
            Ok(conn) => (conn, Opened::Fresh),
            Err(e) if is_damage(&e) => match move_aside(&path).map(|to| (to, open_db(&path))) {
                Ok((moved_to, Ok(conn))) => (
                    conn,
                    Opened::Recovered {
                        moved_to,
                        why: e.to_string(),
                    },
                ),
                Ok((_, Err(fresh))) => {
                    Self::in_memory(&path, format!("{e}; a fresh database failed too: {fresh}"))?
                }
                Err(io) => Self::in_memory(&path, format!("{e}; moving it aside failed: {io}"))?,
            },
            Err(e) => Self::in_memory(&path, e.to_string())?,
        };
        Ok(StateStore {
            conn,
            path,
            _lock: lock,
            opened,
        })
    }

    fn in_memory(path: &Path, why: String) -> Result<(Connection, Opened), StoreError> {
        let sql = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_in_memory().map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok((conn, Opened::InMemory { why }))
    }

    /// How the database was found at open.
    pub fn opened(&self) -> &Opened {
        &self.opened
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's `quick_check` on the open database (a periodic check while running: damage
    /// written while the daemon runs would otherwise go unnoticed until the next start).
    pub fn check(&self) -> Result<(), StoreError> {
        // Exclusive mode keeps every page read in the cache: drop it, so the check reads what
        // is on disk now rather than what was read at open.
        self.conn
            .execute_batch("PRAGMA shrink_memory;")
            .map_err(|e| self.sql(e))?;
        quick_check(&self.conn, &self.path)
    }

    /// After a failed [`check`](Self::check): moves the damaged file aside and continues on a
    /// fresh one (the caller re-saves what it holds in memory). Returns where the file went.
    /// Whatever fails on the way leaves the store on an in-memory database, said by
    /// [`opened`](Self::opened) — never a file that silently is not one.
    pub fn recover(&mut self) -> Result<PathBuf, StoreError> {
        let fresh = Connection::open_in_memory().map_err(|e| self.sql(e))?;
        fresh.execute_batch(SCHEMA).map_err(|e| self.sql(e))?;
        // Close the damaged file before moving it (the old connection is dropped here).
        drop(std::mem::replace(&mut self.conn, fresh));
        let outcome = move_aside(&self.path)
            .map_err(|e| StoreError::Dir {
                path: self.path.clone(),
                source: e,
            })
            .and_then(|moved_to| open_db(&self.path).map(|conn| (moved_to, conn)));
        match outcome {
            Ok((moved_to, conn)) => {
                self.conn = conn;
                self.opened = Opened::Recovered {
                    moved_to: moved_to.clone(),
                    why: "integrity check failed while running".into(),
                };
                Ok(moved_to)
            }
            Err(e) => {
                self.opened = Opened::InMemory {
                    why: format!("recovering the damaged database failed: {e}"),
                };
                Err(e)
            }
        }
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The saved engine state of `fleet`, if any.
    pub fn load(&self, fleet: &str) -> Result<Option<EngineState>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM engine_state WHERE fleet = ?1",
                params![fleet],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        // Any earlier schema version is migrated on the way in.
        text.map(|t| {
            EngineState::from_json(&t).map_err(|source| StoreError::Corrupt {
                path: self.path.clone(),
                fleet: fleet.to_string(),
                source,
            })
        })
        .transpose()
    }

    /// Copies the saved state of `fleet` into `engine_state_set_aside`, with `reason`, before
    /// the fleet starts fresh over it: a state this build cannot resume — written by a newer
    /// build, unreadable, decided later than the clock — was overwritten by the fleet's first
    /// save, and rolling back to the build that wrote it found it gone. Returns the rows kept
    /// (0 when the fleet has no saved state).
    pub fn set_aside(
        &mut self,
        fleet: &str,
        reason: &str,
        now: crate::model::Timestamp,
    ) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "INSERT INTO engine_state_set_aside (fleet, state, updated_at, set_aside_at, reason)
                 SELECT fleet, state, updated_at, ?2, ?3 FROM engine_state WHERE fleet = ?1",
                params![fleet, now.to_string(), reason],
            )
            .map_err(|e| self.sql(e))
    }

    /// Saves a fleet's state and its decision, in one transaction.
    pub fn save(
        &mut self,
        fleet: &str,
        state: &EngineState,
        decision: &Decision,
    ) -> Result<(), StoreError> {
        let state_json = serde_json::to_string(state).unwrap_or_default();
        let decision_json = serde_json::to_string(decision).unwrap_or_default();
        let at = decision.at.to_string();
        let action = serde_json::to_value(decision.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        let run = || -> rusqlite::Result<()> {
            tx.execute(
                "INSERT INTO engine_state (fleet, state, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(fleet) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                params![fleet, state_json, at],
            )?;
            tx.execute(
                "INSERT INTO decisions (fleet, at, action, summary, decision) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![fleet, at, action, decision.summary, decision_json],
            )?;
            tx.execute(
                "DELETE FROM decisions WHERE fleet = ?1 AND id <= (SELECT MAX(id) FROM decisions WHERE fleet = ?1) - ?2",
                params![fleet, DECISIONS_KEPT],
            )?;
            Ok(())
        };
        run().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        tx.commit().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Appends demand minutes (minutes since the epoch; `None` = a gap) and forgets those
    /// before `keep_from`, in one transaction.
    pub fn save_demand(
        &mut self,
        fleet: &str,
        minutes: &[(i64, Option<f64>)],
        keep_from: i64,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO demand (fleet, minute, value) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql)?;
            for (minute, value) in minutes {
                insert.execute(params![fleet, minute, value]).map_err(sql)?;
            }
            tx.execute(
                "DELETE FROM demand WHERE fleet = ?1 AND minute < ?2",
                params![fleet, keep_from],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// A fleet's demand minutes from `from` on, oldest first.
    pub fn load_demand(
        &self,
        fleet: &str,
        from: i64,
    ) -> Result<Vec<(i64, Option<f64>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT minute, value FROM demand WHERE fleet = ?1 AND minute >= ?2 ORDER BY minute")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![fleet, from], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// The `limit` latest decision summaries of a fleet, newest first: `(at, summary)`.
    pub fn recent(&self, fleet: &str, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, summary FROM decisions WHERE fleet = ?1 ORDER BY id DESC LIMIT ?2")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![fleet, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// The fleet's logged decisions for the dashboard's history, oldest first: the last of each
    /// minute over the newest `minutes` minutes that have one, and the last `changes` capacity
    /// changes (JSON text each).
    pub fn history(
        &self,
        fleet: &str,
        minutes: usize,
        changes: usize,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        // `at` is RFC 3339 (`2026-12-01T10:24:15Z`): its first 16 characters are its minute.
        let per_minute = "SELECT decision FROM decisions WHERE id IN (
                SELECT MAX(id) FROM decisions WHERE fleet = ?1 GROUP BY substr(at, 1, 16)
                ORDER BY MAX(id) DESC LIMIT ?2) ORDER BY id";
        let changed = "SELECT decision FROM (SELECT id, decision FROM decisions
                WHERE fleet = ?1 AND action != 'hold' ORDER BY id DESC LIMIT ?2) ORDER BY id";
        let read = |sql: &str, limit: usize| -> Result<Vec<String>, StoreError> {
            let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
            let rows = stmt
                .query_map(params![fleet, limit as i64], |r| r.get(0))
                .map_err(|e| self.sql(e))?;
            rows.collect::<Result<Vec<String>, _>>()
                .map_err(|e| self.sql(e))
        };
        Ok((read(per_minute, minutes)?, read(changed, changes)?))
    }
}
