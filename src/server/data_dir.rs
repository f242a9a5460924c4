//! The data directory and the rules for its files: it and everything in it are the owner's only
//! (chatd refuses to start otherwise, naming the `chmod` that fixes it), the database is created
//! owner-only before SQLite touches it (its `-wal` and `-shm` files take its mode), and a server
//! key is never made next to an existing database unless the operator asks for a new identity.
//! Commands that only read find the directory or fail naming it; they never create anything.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::auth::{KeyFileError, load_or_create_key};

/// The database's file name in the data directory.
pub const DATABASE: &str = "chat.db";
/// The server's static key (its identity; clients pin its fingerprint).
pub const SERVER_KEY: &str = "server_x25519.key";
/// The secret behind the fake salts of unknown user names.
pub const AUTH_SECRET: &str = "auth_secret.key";
/// The control socket of a running server.
pub const CONTROL_SOCKET: &str = "chatd.sock";

/// Why the data directory cannot be used.
#[derive(Debug)]
pub enum DataDirError {
    /// A command that only reads was pointed at a directory that does not exist.
    Missing(PathBuf),
    /// A file a command needs is not there (`what` says which and why it matters).
    MissingFile {
        path: PathBuf,
        what: &'static str,
    },
    /// The directory or files in it are open to group or others: each path with its mode and
    /// the mode it should have.
    Exposed(Vec<(PathBuf, u32, u32)>),
    /// The server key is missing while the database exists (a partial restore?).
    KeyMissing {
        key: PathBuf,
        database: PathBuf,
    },
    /// A key file is unusable.
    Key {
        path: PathBuf,
        source: KeyFileError,
    },
    Io {
        what: String,
        source: io::Error,
    },
}

impl fmt::Display for DataDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataDirError::Missing(dir) => write!(
                f,
                "data directory {} does not exist (check --data-dir, or data_dir in the \
                 configuration file)",
                dir.display()
            ),
            DataDirError::MissingFile { path, what } => {
                write!(f, "{} does not exist: {what}", path.display())
            }
            DataDirError::Exposed(paths) => {
                let list: Vec<String> = paths
                    .iter()
                    .map(|(path, mode, _)| format!("{} (mode {mode:03o})", path.display()))
                    .collect();
                let fix: Vec<String> = paths
                    .iter()
                    .map(|(path, _, wanted)| {
                        format!("chmod {wanted:o} {}", shell_quote(&path.to_string_lossy()))
                    })
                    .collect();
                write!(
                    f,
                    "refusing to start: group or others can access {}; the data directory holds \
                     every message and the login verifiers. Fix it with: {}",
                    list.join(", "),
                    fix.join(" && ")
                )
            }
            DataDirError::KeyMissing { key, database } => write!(
                f,
                "refusing to start: {} is missing but {} exists. A new key would give this \
                 server a new identity, and every client that connected before would refuse it \
                 with \"SERVER KEY CHANGED ... possible MITM\". Restore the key file from your \
                 backup; or, to make a new identity on purpose, start once with --new-identity \
                 and tell your users the new fingerprint (chatd fingerprint)",
                key.display(),
                database.display()
            ),
            DataDirError::Key { path, source } => write!(f, "{}: {source}", path.display()),
            DataDirError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for DataDirError {}

/// The files of a data directory a server may use: checked, created where allowed.
#[derive(Debug)]
pub struct ServerFiles {
    pub database: PathBuf,
    pub server_key: [u8; 32],
    pub auth_secret: zeroize::Zeroizing<[u8; 32]>,
    pub control_socket: PathBuf,
}

impl Drop for ServerFiles {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.server_key);
    }
}

/// Prepares `dir` for a server: creates it (mode 0700) if missing, refuses it when it or a file
/// in it is open to group or others, creates chat.db owner-only if missing, and reads or makes
/// the key files. A missing server key next to an existing chat.db is an error unless
/// `new_identity`.
pub fn for_server(dir: &Path, new_identity: bool) -> Result<ServerFiles, DataDirError> {
    create_private_dir(dir)?;
    check_private(dir)?;
    let database = dir.join(DATABASE);
    let key_path = dir.join(SERVER_KEY);
    if database.exists() && !key_path.exists() && !new_identity {
        return Err(DataDirError::KeyMissing {
            key: key_path,
            database,
        });
    }
    create_private_file(&database)?;
    let server_key = read_or_make_key(&key_path)?;
    let auth_secret = zeroize::Zeroizing::new(read_or_make_key(&dir.join(AUTH_SECRET))?);
    Ok(ServerFiles {
        database,
        server_key,
        auth_secret,
        control_socket: dir.join(CONTROL_SOCKET),
    })
}

/// Prepares `dir` for a command that changes accounts without a running server: creates the
/// directory (0700) if missing, and when there is no chat.db yet creates it owner-only together
/// with the key files, as a server's first start would (so that the server later starts on it).
/// Returns the database's path.
pub fn for_offline_writes(dir: &Path) -> Result<PathBuf, DataDirError> {
    create_private_dir(dir)?;
    let database = dir.join(DATABASE);
    if !database.exists() {
        create_private_file(&database)?;
        read_or_make_key(&dir.join(SERVER_KEY))?;
        read_or_make_key(&dir.join(AUTH_SECRET))?;
    }
    Ok(database)
}

/// For a command that only reads: `dir` must exist (and is not created).
pub fn existing(dir: &Path) -> Result<(), DataDirError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(DataDirError::Io {
            what: format!("data directory {}", dir.display()),
            source: io::Error::other("not a directory"),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(DataDirError::Missing(dir.to_path_buf()))
        }
        Err(source) => Err(DataDirError::Io {
            what: format!("data directory {}", dir.display()),
            source,
        }),
    }
}

/// For a command that only reads the database: its path, which must exist.
pub fn existing_database(dir: &Path) -> Result<PathBuf, DataDirError> {
    existing(dir)?;
    let database = dir.join(DATABASE);
    if !database.exists() {
        return Err(DataDirError::MissingFile {
            path: database,
            what: "chatd has not run with this data directory yet (check --data-dir)",
        });
    }
    Ok(database)
}

/// The server key of `dir`, which must exist (for `chatd fingerprint`; nothing is created).
pub fn existing_server_key(dir: &Path) -> Result<[u8; 32], DataDirError> {
    existing(dir)?;
    let path = dir.join(SERVER_KEY);
    if !path.exists() {
        return Err(DataDirError::MissingFile {
            path,
            what: "chatd has not run with this data directory yet (check --data-dir)",
        });
    }
    // It exists, so this only reads it (and checks its mode).
    read_or_make_key(&path)
}

/// Every path in `dir` (and `dir` itself) that group or others may access: directories should
/// be 0700, files 0600. Symbolic links are judged by what they point at; sockets and other
/// special files are left alone (chatd replaces its own socket at start).
pub fn exposed(dir: &Path) -> Result<Vec<(PathBuf, u32, u32)>, DataDirError> {
    let io_error = |what: &Path| {
        let what = what.display().to_string();
        move |source| DataDirError::Io { what, source }
    };
    let mut found = Vec::new();
    let mode = fs::metadata(dir)
        .map_err(io_error(dir))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        found.push((dir.to_path_buf(), mode, 0o700));
    }
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            // A dangling link or a file removed meanwhile: nothing to read there.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(&path)(e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        let wanted = if meta.is_dir() {
            0o700
        } else if meta.is_file() {
            0o600
        } else {
            continue;
        };
        if mode & 0o077 != 0 {
            found.push((path, mode, wanted));
        }
    }
    found.sort();
    Ok(found)
}

fn check_private(dir: &Path) -> Result<(), DataDirError> {
    let exposed = exposed(dir)?;
    if exposed.is_empty() {
        Ok(())
    } else {
        Err(DataDirError::Exposed(exposed))
    }
}

fn create_private_dir(dir: &Path) -> Result<(), DataDirError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| DataDirError::Io {
            what: format!("cannot create data directory {}", dir.display()),
            source,
        })
}

/// Creates an empty file with mode 0600 unless it exists. SQLite then opens it as a new
/// database, and gives its journal files the same mode.
fn create_private_file(path: &Path) -> Result<(), DataDirError> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(DataDirError::Io {
            what: format!("cannot create {}", path.display()),
            source,
        }),
    }
}

fn read_or_make_key(path: &Path) -> Result<[u8; 32], DataDirError> {
    load_or_create_key(path).map_err(|source| DataDirError::Key {
        path: path.to_path_buf(),
        source,
    })
}

/// `text` as one shell word: unchanged when it is plain, else in single quotes.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_new_directory_is_made_private_with_its_files() {
        let top = tempfile::tempdir().expect("tempdir");
        let dir = top.path().join("data");
        let files = for_server(&dir, false).expect("prepared");
        assert_eq!(mode(&dir), 0o700);
        for name in [DATABASE, SERVER_KEY, AUTH_SECRET] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        assert_eq!(files.database, dir.join(DATABASE));
        assert_eq!(files.control_socket, dir.join(CONTROL_SOCKET));
        // The same key next time.
        let again = for_server(&dir, false).expect("again");
        assert_eq!(again.server_key, files.server_key);
    }

    #[test]
    fn an_exposed_directory_or_file_is_refused_with_the_fix() {
        let top = tempfile::tempdir().expect("tempdir");
        let dir = top.path().join("my data");
        fs::create_dir(&dir).expect("mkdir");
        chmod(&dir, 0o755);
        let e = for_server(&dir, false).expect_err("refused").to_string();
        assert!(e.contains("(mode 755)"), "{e}");
        assert!(e.contains(&format!("chmod 700 '{}'", dir.display())), "{e}");
        assert!(
            !dir.join(DATABASE).exists(),
            "nothing made in an exposed directory"
        );

        chmod(&dir, 0o700);
        for_server(&dir, false).expect("prepared");
        chmod(&dir.join(DATABASE), 0o644);
        chmod(&dir.join(AUTH_SECRET), 0o640);
        let e = for_server(&dir, false).expect_err("refused").to_string();
        let db = dir.join(DATABASE);
        let secret = dir.join(AUTH_SECRET);
        assert!(
            e.contains(&format!(
                "chmod 600 '{}' && chmod 600 '{}'",
                secret.display(),
                db.display()
            )),
            "{e}"
        );
        assert_eq!(exposed(&dir).expect("listed").len(), 2);
    }

    #[test]
    fn a_missing_key_next_to_a_database_needs_new_identity() {
        let top = tempfile::tempdir().expect("tempdir");
        let dir = top.path().join("data");
        let first = for_server(&dir, false).expect("prepared").server_key;
        fs::remove_file(dir.join(SERVER_KEY)).expect("rm");
        let e = for_server(&dir, false).expect_err("refused").to_string();
        assert!(
            e.contains("SERVER KEY CHANGED") && e.contains("--new-identity"),
            "{e}"
        );
        assert!(!dir.join(SERVER_KEY).exists(), "no key was made");
        let second = for_server(&dir, true).expect("new identity").server_key;
        assert_ne!(first, second);
    }

    #[test]
    fn read_only_lookups_create_nothing() {
        let top = tempfile::tempdir().expect("tempdir");
        let dir = top.path().join("typo");
        let e = existing_database(&dir).expect_err("missing").to_string();
        assert!(e.contains(&dir.display().to_string()), "{e}");
        assert!(matches!(
            existing_server_key(&dir),
            Err(DataDirError::Missing(_))
        ));
        assert!(!dir.exists());
        fs::create_dir(&dir).expect("mkdir");
        assert!(matches!(
            existing_server_key(&dir),
            Err(DataDirError::MissingFile { .. })
        ));
        assert!(matches!(
            existing_database(&dir),
            Err(DataDirError::MissingFile { .. })
        ));
        assert_eq!(fs::read_dir(&dir).expect("dir").count(), 0);
    }

    #[test]
    fn offline_writes_make_a_directory_a_server_starts_on() {
        let top = tempfile::tempdir().expect("tempdir");
        let dir = top.path().join("data");
        let db = for_offline_writes(&dir).expect("prepared");
        assert!(db.exists() && dir.join(SERVER_KEY).exists());
        for_server(&dir, false).expect("the server starts on it");
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_quote("/var/lib/chatd"), "/var/lib/chatd");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
