//! What nodes running in this test process log. Tracing allows one subscriber per process, and
//! every test shares this process, so the first test that asks installs the one subscriber
//! ([`init`]) and it serves them all:
//!
//! - a test run by [`with_logs`] reads the lines its own nodes logged ([`Logs::assert_logged`]):
//!   its runtime's threads and its own thread tag what they log with the test, so lines of
//!   the same kind from another test running beside it (another hostile member, another `FRA`)
//!   never count; the lines of threads no such test owns are not kept;
//! - with `RUST_LOG` set (e.g. `RUST_LOG=accord=debug`), every line is printed too, as the
//!   tests' output.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use super::eventually;

thread_local! {
    /// The test run by [`with_logs`] that this thread works for; 0 for none.
    static TEST: Cell<u64> = const { Cell::new(0) };
}

/// The lines kept, by test; a test's entry lives from [`with_logs`] to the end of its run.
static KEPT: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());

/// Installs the process's subscriber, once; safe to call from every test.
pub fn init() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let keep = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(Keeper)
            .with_filter(LevelFilter::INFO.and(filter_fn(|_| TEST.with(Cell::get) != 0)));
        let print = std::env::var_os("RUST_LOG").is_some().then(|| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::from_default_env())
        });
        let _ = tracing_subscriber::registry().with(keep).with(print).try_init();
    });
}

/// Runs an async test on a runtime of its own (two worker threads, as
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` does), keeping what its nodes
/// log for [`Logs::assert_logged`]: every thread of the runtime, and the test's own thread while
/// it runs the test, tag their lines with the test.
pub fn with_logs<F: Future<Output = ()>>(test: impl FnOnce(Logs) -> F) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    init();
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    // Declared before the runtime, so dropped after it: lines logged while the runtime shuts
    // down are still the test's.
    let _keeping = Keeping::start(id);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || TEST.with(|t| t.set(id)))
        .build()
        .expect("a runtime for the test");
    runtime.block_on(test(Logs { test: id }));
}

/// The lines one test's nodes logged.
#[derive(Clone, Copy)]
pub struct Logs {
    test: u64,
}

impl Logs {
    /// Waits until one line this test's nodes logged contains every one of `needles`.
    pub async fn assert_logged(&self, needles: &[&str]) {
        eventually(&format!("a log line containing {needles:?}"), || {
            let kept = lock();
            let text = kept.get(&self.test).map(String::as_str).unwrap_or_default();
            match text.lines().find(|line| needles.iter().all(|n| line.contains(n))) {
                Some(_) => Ok(()),
                None => {
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    Err(format!("last lines of this test (newest first):\n{}", tail.join("\n")))
                }
            }
        })
        .await;
    }
}

/// A test's entry in [`KEPT`], and its tag on the test's own thread, for as long as it runs
/// (even when it panics).
struct Keeping {
    test: u64,
    before: u64,
}

impl Keeping {
    fn start(test: u64) -> Keeping {
        lock().insert(test, String::new());
        let before = TEST.with(|t| t.replace(test));
        Keeping { test, before }
    }
}

impl Drop for Keeping {
    fn drop(&mut self) {
        TEST.with(|t| t.set(self.before));
        lock().remove(&self.test);
    }
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<u64, String>> {
    KEPT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Appends what it is given to the lines of the test its thread works for (if that test still
/// runs).
struct Keeper;

impl io::Write for Keeper {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let test = TEST.with(Cell::get);
        if let Some(lines) = lock().get_mut(&test) {
            lines.push_str(&String::from_utf8_lossy(bytes));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Keeper {
    type Writer = Keeper;

    fn make_writer(&'a self) -> Keeper {
        Keeper
    }
}
