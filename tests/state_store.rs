//! The state database degrades safely: a damaged file is moved aside and a fresh one started
//! (never a crash loop), a file that cannot be written leaves the daemon on an in-memory
//! database (`tests/daemon.rs` runs the daemon on one: it scales, and `/metrics` and
//! `/healthz` say so), and a second process on the same directory is refused.

use std::path::PathBuf;

use llm_autoscaler::engine::{decide, EngineState};
use llm_autoscaler::model::Timestamp;
use llm_autoscaler::store::{Opened, StateStore, StoreError};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "llm-autoscaler-store-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn moved_aside(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("state.db.corrupt-") && !n.ends_with("-wal"))
        .collect()
}

/// A store holding one saved state and decision for `fleet`.
fn save_one(store: &mut StateStore, fleet: &str) {
    let cfg =
        llm_autoscaler::cost::load_policy(std::path::Path::new("config/example.toml")).unwrap();
    let f = &cfg.fleets[0];
    let now = Timestamp::from_secs(1_800_000_000);
    let (d, st) = decide(f, &Default::default(), &EngineState::default(), now);
    store.save(fleet, &st, &d).unwrap();
}

/// How a test damages a database file.
type Damage = Box<dyn Fn(&std::path::Path)>;

#[test]
fn each_damaged_database_is_moved_aside_and_a_fresh_one_works() {
    // (case, what the file holds before the open)
    let cases: Vec<(&str, Damage)> = vec![
        (
            "garbage",
            Box::new(|p| std::fs::write(p, vec![0xA5u8; 8192]).unwrap()),
        ),
        (
            "overwritten-header",
            Box::new(|p| {
                let mut bytes = std::fs::read(p).unwrap();
                bytes[..16].copy_from_slice(b"not sqlite here!");
                std::fs::write(p, bytes).unwrap();
            }),
        ),
        (
            "damaged-pages",
            Box::new(|p| {
                let mut bytes = std::fs::read(p).unwrap();
                // Past the first page (the schema): scribble over the tables' b-tree pages.
                for b in bytes.iter_mut().skip(4096 + 8).take(8192) {
                    *b = 0xFF;
                }
                std::fs::write(p, bytes).unwrap();
            }),
        ),
    ];
    for (name, damage) in cases {
        let dir = tmpdir(name);
        {
            let mut s = StateStore::open(&dir).unwrap();
            assert_eq!(*s.opened(), Opened::Fresh, "{name}");
            for fleet in ["a", "b", "c", "d", "e", "f"] {
                save_one(&mut s, fleet);
            }
        }
        damage(&dir.join("state.db"));
        let mut s = StateStore::open(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            matches!(s.opened(), Opened::Recovered { .. }),
            "{name}: {:?}",
            s.opened()
        );
        assert_eq!(
            moved_aside(&dir).len(),
            1,
            "{name}: the damaged file is kept"
        );
        // The fresh database works.
        assert!(s.load("a").unwrap().is_none(), "{name}");
        save_one(&mut s, "a");
        assert!(s.load("a").unwrap().is_some(), "{name}");
        assert!(s.check().is_ok(), "{name}");
    }
}

#[test]
fn an_empty_or_missing_database_starts_fresh_and_says_so() {
    let dir = tmpdir("empty");
    std::fs::write(dir.join("state.db"), b"").unwrap();
    assert_eq!(*StateStore::open(&dir).unwrap().opened(), Opened::Fresh);
    let mut s = StateStore::open(&dir).unwrap();
    save_one(&mut s, "a");
    drop(s);
    assert_eq!(*StateStore::open(&dir).unwrap().opened(), Opened::Resumed);
}

#[test]
fn a_second_store_on_a_held_directory_is_refused_with_the_remedy() {
    let dir = tmpdir("locked");
    let first = StateStore::open(&dir).unwrap();
    let err = StateStore::open(&dir).err().expect("refused");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("global.state_dir") && msg.contains("fuser"),
        "{msg}"
    );
    drop(first);
    assert!(StateStore::open(&dir).is_ok(), "released with the store");
}

/// Damage written while the daemon runs (another process, a failing disk) is found by the
/// periodic `quick_check` and moved aside; the store goes on with a fresh file.
#[test]
fn damage_found_while_running_is_moved_aside_and_the_store_goes_on() {
    let dir = tmpdir("running");
    let mut s = StateStore::open(&dir).unwrap();
    for fleet in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        save_one(&mut s, fleet);
    }
    assert!(s.check().is_ok());
    // Checkpoint so the tables live in the main file, then scribble over its pages.
    drop(s);
    let mut s = StateStore::open(&dir).unwrap();
    let path = dir.join("state.db");
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(4096 + 8).take(8192) {
        *b = 0xFF;
    }
    std::fs::write(&path, bytes).unwrap();
    let found = s.check();
    assert!(found.is_err(), "the damage went unnoticed");
    let moved = s.recover().unwrap();
    assert!(moved.exists(), "{}", moved.display());
    assert!(matches!(s.opened(), Opened::Recovered { .. }));
    save_one(&mut s, "a");
    assert!(s.load("a").unwrap().is_some());
    assert!(s.check().is_ok());
}
