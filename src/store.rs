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
}

/// The state database.
pub struct StateStore {
    conn: Connection,
    path: PathBuf,
}

impl StateStore {
    /// Opens (creating) `state.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("state.db");
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS engine_state (
                 fleet TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS decisions (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, fleet TEXT NOT NULL, at TEXT NOT NULL,
                 action TEXT NOT NULL, summary TEXT NOT NULL, decision TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS decisions_by_fleet ON decisions (fleet, id);
             CREATE TABLE IF NOT EXISTS demand (
                 fleet TEXT NOT NULL, minute INTEGER NOT NULL, value REAL,
                 PRIMARY KEY (fleet, minute));",
        )
        .map_err(sql)?;
        Ok(StateStore { conn, path })
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
}
