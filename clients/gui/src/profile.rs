//! The client profiles offered at login: the line client's file (`$XDG_CONFIG_HOME/chat/config`,
//! parsed by `chat::profiles`), whose server, user, password file, PSK file, `known_servers`
//! and room a profile fills in. Secret files must be readable by their owner only, or they are
//! refused with the `chmod` that fixes them, as the line client (and ssh) do.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use chat::profiles::{Dirs, Profile, Profiles};
use zeroize::Zeroizing;

/// The longest secret file read.
const MAX_SECRET_FILE: u64 = 4096;

/// Reads the profiles file at `path` (a missing file has no profiles).
pub fn load(path: &Path, home: Option<&Path>) -> Result<Profiles, String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profiles::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let base = path.parent().map_or_else(PathBuf::new, Path::to_path_buf);
    Profiles::parse(
        &text,
        &path.display().to_string(),
        &Dirs { base: &base, home },
    )
    .map_err(|e| e.to_string())
}

/// The names of the profiles, in file order.
pub fn names(profiles: &Profiles) -> Vec<String> {
    profiles.named.iter().map(|(n, _)| n.clone()).collect()
}

/// The settings of profile `name` over the file's defaults.
pub fn select(profiles: &Profiles, name: &str) -> Result<Profile, String> {
    profiles.select(Some(name)).map_err(|e| e.to_string())
}

/// Why a file with permission bits `mode` may not hold a secret, with the fix.
pub fn open_to_others(mode: u32, path: &Path) -> Option<String> {
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is open to others (mode {:04o}); it must be readable by you only: chmod {:o} {}",
            path.display(),
            mode & 0o7777,
            (mode & 0o700) | 0o400,
            path.display()
        )
    })
}

/// The first line of a secret file (a password file), refused unless owner-only.
pub fn read_secret_line(path: &Path) -> Result<Zeroizing<String>, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .permissions()
            .mode();
        if let Some(problem) = open_to_others(mode, path) {
            return Err(problem);
        }
    }
    let mut bytes = Zeroizing::new(Vec::new());
    fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(format!("{} is too large", path.display()));
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(format!("the first line of {} is empty", path.display()));
    }
    Ok(Zeroizing::new(line.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_come_from_the_line_clients_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        assert!(load(&path, None).expect("no file").named.is_empty());
        fs::write(&path, "[profile broken]\nsever = x:1\n").expect("write");
        assert!(load(&path, None).is_err_and(|e| e.contains("did you mean server")));
        fs::write(
            &path,
            "user = alice\n[profile work]\nserver = chat.work:5555\npassword_file = work.pw\n\
             room = ops\n",
        )
        .expect("write");
        let profiles = load(&path, None).expect("valid");
        assert_eq!(names(&profiles), vec!["work"]);
        let work = select(&profiles, "work").expect("known");
        assert_eq!(work.server.as_deref(), Some("chat.work:5555"));
        assert_eq!(work.user.as_deref(), Some("alice"));
        assert_eq!(work.room.as_deref(), Some("ops"));
        assert_eq!(work.password_file, Some(dir.path().join("work.pw")));
        assert!(select(&profiles, "wrok").is_err_and(|e| e.contains("did you mean work")));
    }

    #[test]
    fn secret_files_must_be_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        fs::write(&path, "correct horse battery staple\nignored\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let refused = read_secret_line(&path).expect_err("open to others");
        assert!(
            refused.contains("mode 0644") && refused.contains("chmod 600"),
            "{refused}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            read_secret_line(&path).expect("owner only").as_str(),
            "correct horse battery staple"
        );
        assert_eq!(open_to_others(0o400, &path), None);
    }
}
