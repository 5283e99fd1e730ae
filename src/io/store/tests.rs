//! Store tests: aggregates always equal a recompute from the records, whatever sequence of
//! inserts and replacements; raw person ids never reach the store; metadata mismatches are
//! clear errors.

use proptest::prelude::*;

use super::records::StoredRecord;
use super::*;
use crate::domain::consortium::{Definition, UnknownDuration};
use crate::domain::date::Date;
use crate::domain::model::{Cube, Period};
use crate::domain::record::{EventType, Reason, Record, Sex};

fn deu() -> Country {
    Country::parse("DEU").unwrap()
}

fn record(id: u8, variant: u8) -> Record {
    let event_type = EventType::ALL[usize::from(variant % 4)];
    let partners = ["FRA", "ITA", "POL"];
    Record {
        event_id: format!("E{id}"),
        person_id: format!("person-secret-{id}"),
        event_type,
        event_date: Date {
            year: 2024,
            month: 1 + variant % 12,
            day: 1 + variant % 28,
        },
        citizenship: Country::parse(["SYR", "FRA", "XXX"][usize::from(variant % 3)]).unwrap(),
        country_of_birth: None,
        partner_country: Country::parse(partners[usize::from(variant / 4 % 3)]),
        sex: Sex::ALL[usize::from(variant / 3 % 4)],
        birth_year: (variant % 5 != 0).then_some(1950 + i32::from(variant)),
        reason: Reason::ALL[usize::from(variant % 6)],
        duration_months: match variant % 4 {
            0 => None,
            1 => Some(6),
            _ => Some(24),
        },
    }
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, deu(), Definition::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random batches of records with repeated ids (replacements, within and across batches):
    /// the live aggregates and counts always equal a recompute from the stored records.
    #[test]
    fn aggregates_equal_a_recompute(batches in proptest::collection::vec(
        proptest::collection::vec((0u8..20, any::<u8>()), 1..30), 1..6)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let mut latest = std::collections::BTreeMap::new();
        for batch in &batches {
            let records: Vec<Record> = batch.iter().map(|(id, v)| record(*id, *v)).collect();
            store.ingest(&records).unwrap();
            for (id, v) in batch {
                latest.insert(*id, *v);
            }
        }
        let report = store.check(&mut |_| {}).unwrap();
        prop_assert!(report.differences.is_empty(), "{:?}", report.differences);
        prop_assert_eq!(report.records, latest.len() as u64);
        let counts = store.record_counts().unwrap();
        prop_assert_eq!(counts.values().sum::<u64>(), latest.len() as u64);
        for t in EventType::ALL {
            let want = latest.values().filter(|v| EventType::ALL[usize::from(**v % 4)] == t).count() as u64;
            prop_assert_eq!(counts[&t], want);
        }
    }
}

#[test]
fn replacing_an_event_moves_its_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut r = record(1, 4); // immigration, unknown duration: counts in flows by default
    store.ingest(std::slice::from_ref(&r)).unwrap();
    let year = Period::Year(2024);
    let before = store.period_tallies(Cube::Flows, year).unwrap();
    assert_eq!(before.values().map(|t| t.count).sum::<i64>(), 1);
    r.event_type = EventType::AsylumApplication;
    let outcome = store.ingest(std::slice::from_ref(&r)).unwrap();
    assert_eq!(outcome, IngestOutcome { stored: 1, replaced: 1 });
    assert!(store.period_tallies(Cube::Flows, year).unwrap().is_empty());
    assert_eq!(
        store
            .period_tallies(Cube::Asylum, year)
            .unwrap()
            .values()
            .map(|t| t.count)
            .sum::<i64>(),
        1
    );
    // Re-ingesting the identical record changes nothing.
    store.ingest(std::slice::from_ref(&r)).unwrap();
    assert_eq!(store.record_total(), 1);
    assert!(store.check(&mut |_| {}).unwrap().differences.is_empty());
}

#[test]
fn raw_person_ids_never_reach_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let records: Vec<Record> = (0..10).map(|i| record(i, i)).collect();
    store.ingest(&records).unwrap();
    store.flush().unwrap();
    assert!(!store.contains_bytes(b"person-secret"));
    // And not on disk either (sled files hold only what the tree holds).
    drop(store);
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(13).any(|w| w == b"person-secret"), "{}", entry.display());
    }
    // The pseudonym is stable under the node secret across reopenings.
    let a = open(dir.path()).pseudonym("x");
    assert_eq!(a, open(dir.path()).pseudonym("x"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn metadata_mismatches_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let fra = Country::parse("FRA").unwrap();
    let err = Store::open(dir.path(), fra, Definition::default()).err().unwrap();
    assert!(matches!(err, StoreError::WrongCountry { .. }), "{err}");
    let other = Definition {
        min_duration_months: 6,
        unknown_duration: UnknownDuration::Exclude,
    };
    let err = Store::open(dir.path(), deu(), other).err().unwrap();
    assert!(err.to_string().contains("min_duration_months=12"), "{err}");
    {
        let store = open(dir.path());
        store.tree.insert(b"m:format", 99u32.to_be_bytes().as_slice()).unwrap();
        store.flush().unwrap();
    }
    let err = Store::open(dir.path(), deu(), Definition::default()).err().unwrap();
    assert!(
        matches!(
            err,
            StoreError::Version {
                found: 99,
                expected: super::FORMAT_VERSION,
                ..
            }
        ),
        "{err}"
    );
    {
        let store = Store::open_any_definition(dir.path(), deu(), Definition::default());
        assert!(store.is_err(), "format 99 is refused whatever the definition");
    }
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let key = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let err = super::migrate(dir.path(), Some(&key)).err().unwrap();
    assert!(matches!(err, StoreError::Version { found: 99, .. }), "{err}");
    assert!(
        !dir.path().join("store-format-99.backup").exists(),
        "nothing written for a newer store"
    );
    {
        let db = super::open_db(&dir.path().join("store")).unwrap();
        db.open_tree("accord")
            .unwrap()
            .insert(b"m:format", 1u32.to_be_bytes().as_slice())
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path(), deu(), Definition::default()).err().unwrap();
    assert!(
        matches!(err, StoreError::NeedsMigration { found: 1, .. })
            && err.to_string().contains("accord check --migrate"),
        "{err}"
    );
}

#[test]
fn a_second_open_while_held_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _held = open(dir.path());
    let err = Store::open(dir.path(), deu(), Definition::default()).err().unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn data_dir_and_everything_in_it_are_private_to_the_node_user() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested").join("deu");
    let store = open(&data_dir);
    store.ingest(&[record(1, 0), record(2, 1)]).unwrap();
    store.flush().unwrap();
    drop(store);
    assert_eq!(mode(&data_dir), 0o700);
    let files = walk(&data_dir);
    assert!(files.iter().any(|f| f.ends_with("node.secret")), "{files:?}");
    assert!(files.iter().any(|f| f.starts_with(data_dir.join("store"))), "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        assert!(
            !f.to_string_lossy().ends_with(".tmp"),
            "staged secret left behind: {}",
            f.display()
        );
    }
    assert_eq!(mode(&data_dir.join("store")), 0o700);
    assert_eq!(std::fs::read(data_dir.join("node.secret")).unwrap().len(), 32);
}

#[cfg(unix)]
#[test]
fn a_loosened_data_dir_and_store_are_tightened_on_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    set_mode(dir.path(), 0o755);
    set_mode(&dir.path().join("store"), 0o755);
    let loosened: Vec<_> = walk(&dir.path().join("store"));
    for f in &loosened {
        set_mode(f, 0o644);
    }
    drop(open(dir.path()));
    assert_eq!(mode(dir.path()), 0o700);
    assert_eq!(mode(&dir.path().join("store")), 0o700);
    for f in &loosened {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
}

#[cfg(unix)]
#[test]
fn a_node_secret_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path()).pseudonym("x");
    let secret = dir.path().join("node.secret");
    set_mode(&secret, 0o644);
    let err = Store::open(dir.path(), deu(), Definition::default())
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Secret { .. }), "{err:?}");
    assert!(text.contains("mode is 644") && text.contains("chmod 600"), "{text}");
    set_mode(&secret, 0o600);
    assert_eq!(open(dir.path()).pseudonym("x"), a, "the same secret after the fix");
}

#[test]
fn a_leftover_staged_secret_from_a_crash_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    // A crash between creating the staged file and renaming it leaves it, empty, behind.
    std::fs::write(dir.path().join("node.secret.tmp"), b"").unwrap();
    let store = open(dir.path());
    let p = store.pseudonym("x");
    drop(store);
    assert!(!dir.path().join("node.secret.tmp").exists());
    assert_eq!(std::fs::read(dir.path().join("node.secret")).unwrap().len(), 32);
    assert_eq!(open(dir.path()).pseudonym("x"), p);
}

#[test]
fn stored_records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for v in 0..=255u8 {
        let s = store.to_stored(&record(1, v));
        assert_eq!(StoredRecord::decode(&s.encode()), Some(s));
    }
    assert_eq!(StoredRecord::decode(&[0; 10]), None);
}

/// After the consortium changes its definition, `open_rebuilding` rebuilds the aggregates from
/// the records: they equal those of a store that ingested the same records under the new
/// definition, in one step, and the store opens normally afterwards.
#[test]
fn a_changed_definition_is_rebuilt_from_the_records() {
    let records: Vec<Record> = (0..200u8).map(|i| record(i, i.wrapping_mul(37))).collect();
    let other = Definition {
        min_duration_months: 6,
        unknown_duration: UnknownDuration::Exclude,
    };
    let old = tempfile::tempdir().unwrap();
    open(old.path()).ingest(&records).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let reference = Store::open(fresh.path(), deu(), other).unwrap();
    reference.ingest(&records).unwrap();

    assert!(matches!(
        Store::open(old.path(), deu(), other).err().unwrap(),
        StoreError::DefinitionChanged { .. }
    ));
    let (store, rebuilt) = Store::open_rebuilding(old.path(), deu(), other, &mut |_| {}).unwrap();
    let rebuilt = rebuilt.expect("the definition changed");
    assert_eq!(rebuilt.records, 200);
    assert!(rebuilt.from.contains("min_duration_months=12") && rebuilt.to.contains("min_duration_months=6"));
    // Counts only: cell keys follow each store's own secret.
    let counts = |s: &Store, cube| -> std::collections::BTreeMap<Vec<String>, i64> {
        let period = Period::parse("2024").unwrap();
        let tallies = s.period_tallies(cube, period).unwrap();
        tallies.into_iter().map(|(k, t)| (k, t.count)).collect()
    };
    for cube in [Cube::Flows, Cube::Asylum, Cube::Permits] {
        let want = counts(&reference, cube);
        assert!(!want.is_empty(), "{cube}");
        assert_eq!(counts(&store, cube), want, "{cube}");
    }
    let unchanged = tempfile::tempdir().unwrap();
    let under_old = open(unchanged.path());
    under_old.ingest(&records).unwrap();
    assert_ne!(
        counts(&under_old, Cube::Flows),
        counts(&store, Cube::Flows),
        "the definition changes the flows cube"
    );
    assert_eq!(store.record_counts().unwrap(), reference.record_counts().unwrap());
    assert!(store.check(&mut |_| {}).unwrap().differences.is_empty());
    drop(store);

    let (store, again) = Store::open_rebuilding(old.path(), deu(), other, &mut |_| {}).unwrap();
    assert_eq!(again, None, "nothing to rebuild the second time");
    drop(store);
    assert!(Store::open(old.path(), deu(), other).is_ok());
}

/// Rows of a file with repeated event ids (later rows win) and more rows than one staging chunk.
fn file_rows() -> Vec<Record> {
    (0..2_500u32)
        .map(|i| record((i % 251) as u8, (i % 253) as u8))
        .collect()
}

/// The staging files left in the store's data directory.
fn staged_keys(store: &Store) -> usize {
    std::fs::read_dir(store.path.with_file_name("staging")).map_or(0, |d| d.count())
}

/// The year's counts per cell of each cube (the cell keys' sums differ between stores: each has
/// its own secret).
fn tallies(store: &Store) -> Vec<BTreeMap<Vec<String>, i64>> {
    [Cube::Flows, Cube::Asylum, Cube::Permits]
        .into_iter()
        .map(|cube| {
            let cells = store.period_tallies(cube, Period::Year(2024)).unwrap();
            cells.into_iter().map(|(k, t)| (k, t.count)).collect()
        })
        .collect()
}

use std::collections::BTreeMap;

#[test]
fn a_staged_file_stores_what_the_direct_path_stores() {
    let rows = file_rows();
    let direct_dir = tempfile::tempdir().unwrap();
    let direct = open(direct_dir.path());
    let mut want = IngestOutcome::default();
    for batch in rows.chunks(1_000) {
        want.add(direct.ingest(batch).unwrap());
    }
    let staged_dir = tempfile::tempdir().unwrap();
    let staged = open(staged_dir.path());
    let session = staged.begin_staging();
    // Batch boundaries other than the direct path's and the move's.
    for batch in rows.chunks(700) {
        staged.stage(session, batch).unwrap();
    }
    assert_eq!(staged.record_total(), 0, "staged rows are not records yet");
    assert!(
        tallies(&staged).iter().all(BTreeMap::is_empty),
        "staged rows are not counted"
    );
    let got = staged.commit_staged(session).unwrap();
    assert_eq!(got, want);
    assert_eq!(staged.record_total(), direct.record_total());
    assert_eq!(staged.record_counts().unwrap(), direct.record_counts().unwrap());
    assert_eq!(tallies(&staged), tallies(&direct));
    assert!(staged.check(&mut |_| {}).unwrap().differences.is_empty());
    assert_eq!(staged_keys(&staged), 0, "nothing stays staged");
}

#[test]
fn a_dropped_file_leaves_the_store_as_it_was_and_staged_rows_are_pseudonymised() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.ingest(&[record(1, 4)]).unwrap();
    let before = tallies(&store);
    let session = store.begin_staging();
    store.stage(session, &file_rows()[..300]).unwrap();
    store.flush().unwrap();
    assert!(!store.contains_bytes(b"person-secret"));
    store.drop_staged(session).unwrap();
    assert_eq!(staged_keys(&store), 0);
    assert_eq!(store.record_total(), 1);
    assert_eq!(tallies(&store), before);
    drop(store);
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(13).any(|w| w == b"person-secret"), "{}", entry.display());
    }
}

#[test]
fn at_open_a_file_whose_end_arrived_is_stored_and_one_without_it_dropped() {
    let rows = file_rows();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // A node stopped mid-stream: one file without its end ...
    let cut = store.begin_staging();
    store.stage(cut, &rows[..1_200]).unwrap();
    // ... and one whose end arrived, stopped mid-move: its first 600 rows applied, the file
    // marked ready.
    let ended = store.begin_staging();
    store.stage(ended, &rows).unwrap();
    store.ingest(&rows[..600]).unwrap();
    let staging = store.path.with_file_name("staging");
    std::fs::rename(
        staging.join(format!("{ended}.part")),
        staging.join(format!("{ended}.ready")),
    )
    .unwrap();
    store.flush().unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(staged_keys(&store), 0);
    let direct_dir = tempfile::tempdir().unwrap();
    let direct = open(direct_dir.path());
    direct.ingest(&rows).unwrap();
    assert_eq!(store.record_total(), direct.record_total());
    assert_eq!(tallies(&store), tallies(&direct));
    assert!(store.check(&mut |_| {}).unwrap().differences.is_empty());
}
