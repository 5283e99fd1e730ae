//! Accord's benchmark suite: one bench binary (registered as `ingest`, `harness = false`) that
//! measures every performance target the issues set, each beside a baseline measured in the same
//! run on the same machine, so a figure can be judged without trusting numbers from elsewhere.
//!
//! ```text
//! cargo bench --bench ingest -- ingest|publish|verify|view|convergence|fidelity|all
//! ```
//!
//! Measurements whose peak memory matters run in a child process (this binary re-executed with
//! `child <job>`), because `VmHWM` is per process. The figures and their targets are written up in
//! `BENCHMARKS.md`; the code lives in `benches/suite/`.

mod suite;

fn main() {
    suite::main();
}
