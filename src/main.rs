//! The `accord` command: parse arguments, run one subcommand, print errors once, exit non-zero
//! on failure. Each subcommand is a small function in `cli/` over the library.

mod cli;

use clap::Parser;

fn main() {
    treat_file_size_limit_as_full_disk();
    limit_malloc_arenas();
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        Err(e) => usage_error(e),
    };
    cli::init_logging(&args);
    match cli::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // One line: the error and its causes, joined.
            let mut line = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !line.contains(&c) {
                    line.push_str(": ");
                    line.push_str(&c);
                }
            }
            // The reason alone, so a message like `fra.csv:1042: citizenship: ...` starts the line.
            eprintln!("{line}");
            std::process::exit(1);
        }
    }
}

/// A write past the file-size limit (`ulimit -f`, `RLIMIT_FSIZE`) kills the process with
/// SIGXFSZ by default, in the middle of a store write and with no message. Ignored, the write
/// fails with `EFBIG` instead, which reaches the command as an I/O error like a full disk's
/// `ENOSPC`: the command stops with a clear message and the store keeps its last flushed state.
fn treat_file_size_limit_as_full_disk() {
    // SAFETY: called first in `main`, before any thread exists; SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// glibc gives each thread that allocates under contention an arena of its own (up to eight
/// per core), and memory freed in one arena is not reused by another: a daemon whose tokio and
/// blocking threads take turns computing views held a third more memory than it used (27
/// daemons each holding a real-size year: 183 MiB at most, 126 MiB with two arenas; BENCHMARKS
/// §10). Two arenas, unless the operator sets `MALLOC_ARENA_MAX` (which glibc then reads).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called in `main` before any thread exists; mallopt only sets a parameter.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Help and version print as clap makes them; a usage mistake becomes one line (SPEC §6) and
/// exit code 2, clap's convention for usage errors.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    eprintln!("{}", cli::one_line_usage_error(&e.render().to_string()));
    std::process::exit(2);
}
