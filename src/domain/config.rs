//! What configuration files share, whether a node's own or the consortium's (SPEC §7): the
//! error that names the file, the key and the problem, the checks both make (a member code, a
//! disclosure floor), and the one way a TOML syntax error is reported. Pure: the files are read
//! in `io::config`.

use std::path::{Path, PathBuf};

use crate::domain::model::Country;

/// A configuration problem, naming the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    /// The file is not valid TOML or has a wrongly typed or unknown key.
    #[error("{file}: {message}")]
    Syntax { file: PathBuf, message: String },
    /// The file is larger than any configuration file Accord reads.
    #[error("{file}: {size} bytes, over the limit of {limit} bytes for a configuration file: not read")]
    TooLarge { file: PathBuf, size: u64, limit: u64 },
    /// A key has a value Accord cannot use.
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },
}

/// The one constructor of [`ConfigError::Invalid`]: the message may quote a value from the
/// file, so it is cut to an excerpt (a value can be a whole 100 MB line).
pub(crate) fn invalid(file: &Path, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_path_buf(),
        key: crate::domain::excerpt::excerpt(&key.into()).into_owned(),
        message: crate::domain::excerpt::excerpt(&message.into()).into_owned(),
    }
}

/// The one constructor of [`ConfigError::Syntax`]. A TOML error's own text quotes the
/// offending line whole (and serde's messages quote values whole): here it becomes the line
/// and column, an excerpt of the message and an excerpt of the line around the column.
pub(crate) fn syntax(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = crate::domain::excerpt::excerpt(e.message().trim_end()).replace('\n', " ");
    let message = match e.span() {
        Some(span) => {
            let (line, column, shown) = crate::domain::excerpt::line_at(text, span.start);
            format!("TOML parse error at line {line}, column {column}: {message} (in: {shown})")
        }
        None => format!("TOML parse error: {message}"),
    };
    ConfigError::Syntax {
        file: file.to_path_buf(),
        message,
    }
}

/// The weakest disclosure settings a consortium for real data may choose (SPEC §10): below
/// them a published figure pins a person down (a threshold of 1 or 2 hides nothing an analyst
/// cannot subtract; noise of at most 1 makes a published 1 an exact 2).
pub const MIN_THRESHOLD: u32 = 3;
pub const MIN_MAX_NOISE: u32 = 2;
pub const MIN_SMALL_COUNT: u32 = 3;

/// Refuses a disclosure setting below its floor unless the consortium is for tests only.
pub(crate) fn floor(file: &Path, test_only: bool, key: &str, value: u32, min: u32) -> Result<(), ConfigError> {
    if value < min && !test_only {
        return Err(invalid(
            file,
            key,
            format!("{value} is below the floor of {min} for real data (allowed only with test_only = true)"),
        ));
    }
    Ok(())
}

/// A member code: an ISO 3166-1 alpha-3 code (not `XXX` or `XXA`).
pub(crate) fn country(file: &Path, key: &str, code: &str) -> Result<Country, ConfigError> {
    Country::parse(code)
        .filter(|c| c.is_iso())
        .ok_or_else(|| invalid(file, key, format!("not an ISO 3166-1 alpha-3 member code: {code:?}")))
}
