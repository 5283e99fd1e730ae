//! The `accord` command: parse arguments, run one subcommand, print errors once, exit non-zero
//! on failure. Each subcommand is a small function in `cli/` over the library.

mod cli;

use clap::Parser;

fn main() {
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
