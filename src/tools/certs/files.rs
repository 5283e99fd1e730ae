//! Writing the example PKI to disk: never over an existing file unless forced, and private
//! keys readable by their owner only.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::CertsError;

/// One file to write; `secret` files get mode 0600 on Unix.
pub(super) struct OutFile {
    path: PathBuf,
    contents: Vec<u8>,
    secret: bool,
}

impl OutFile {
    pub(super) fn public(path: PathBuf, contents: impl Into<Vec<u8>>) -> OutFile {
        OutFile {
            path,
            contents: contents.into(),
            secret: false,
        }
    }

    pub(super) fn secret(path: PathBuf, contents: impl Into<Vec<u8>>) -> OutFile {
        OutFile {
            path,
            contents: contents.into(),
            secret: true,
        }
    }
}

pub(super) fn write_all(dir: &Path, files: &[OutFile], force: bool) -> Result<(), CertsError> {
    if !force {
        if let Some(existing) = files.iter().find(|f| f.path.exists()) {
            return Err(CertsError::Exists(existing.path.clone()));
        }
    }
    fs::create_dir_all(dir).map_err(|source| CertsError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    files.iter().try_for_each(write_file)
}

pub(super) fn write_file(file: &OutFile) -> Result<(), CertsError> {
    let fail = |source| CertsError::Write {
        path: file.path.clone(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if file.secret {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // `mode` applies only when the file is created; an overwritten key file may have been
        // readable, so tighten it before the secret goes in.
        options.mode(0o600);
        if file.path.exists() {
            fs::set_permissions(&file.path, fs::Permissions::from_mode(0o600)).map_err(fail)?;
        }
    }
    let mut handle = options.open(&file.path).map_err(fail)?;
    handle.write_all(&file.contents).map_err(fail)?;
    handle.sync_all().map_err(fail)
}
