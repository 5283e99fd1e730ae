//! The `accord` command: parse arguments, run one subcommand, print errors once, exit non-zero
//! on failure. Each subcommand is a small function in `cli/` over the library.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Args::parse();
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
            eprintln!("accord: {line}");
            std::process::exit(1);
        }
    }
}
