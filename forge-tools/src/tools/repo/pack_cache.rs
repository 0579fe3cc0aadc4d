//! A cache of the packs clones are sent, in the manner of GitLab's pack-objects cache.
//!
//! `git upload-pack` hands the choice of objects to `git pack-objects`, which counts,
//! compresses and writes the pack: most of a clone's server time, and the same work for every
//! full clone of an unchanged repository. The web node runs upload-pack with
//! `uploadpack.packObjectsHook` (from the command line, where git accepts it) naming
//! `forge pack-objects-hook`, which runs [`run_hook`]: for a full clone (objects wanted, none
//! had, no shallow or partial cut) the pack is looked up by a digest of pack-objects' options
//! and input, which name every object it will hold, so an entry is never stale; on a miss
//! pack-objects runs as usual and its output is written to the client and the cache at once.
//! Fetches (the client has objects) go straight to pack-objects.
//!
//! Entries live in the repository (`forge-pack-cache/`), so they go with it when it is
//! deleted; at most [`KEEP`] per repository, the least recently used dropped first.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use sha2::{Digest, Sha256};

/// The `forge` subcommand git runs as the hook.
pub const HOOK_COMMAND: &str = "pack-objects-hook";
/// The cache's folder inside a bare repository.
pub const DIR: &str = "forge-pack-cache";
/// Packs kept per repository (distinct clients ask with a few distinct option sets).
pub const KEEP: usize = 4;
/// Largest pack-objects input read (the wanted and had object ids; upload-pack's own limit
/// on a negotiation is far below).
const MAX_INPUT: u64 = 64 << 20;

/// The value of `uploadpack.packObjectsHook` that runs `exe`'s hook (quoted for the shell
/// git runs it with).
pub fn hook_config(exe: &Path) -> String {
    let quoted = exe.to_string_lossy().replace('\'', r"'\''");
    format!("uploadpack.packObjectsHook='{quoted}' {HOOK_COMMAND}")
}

/// The cache key of a pack-objects run, or `None` when it is not a full clone's.
///
/// Options that change only what is printed on standard error (progress) are left out, so a
/// clone with and without a terminal shares the entry.
pub fn key(args: &[OsString], input: &[u8]) -> Option<String> {
    let mut wants = 0usize;
    let mut after_not = false;
    for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if line == b"--not" {
            after_not = true;
        } else if line.starts_with(b"--") {
            // --shallow <id> and anything else this code does not know: not cached.
            return None;
        } else if after_not {
            // The client has objects: a fetch, different every time.
            return None;
        } else {
            wants += 1;
        }
    }
    if wants == 0 {
        return None;
    }
    let mut hash = Sha256::new();
    for arg in args {
        let arg = arg.to_string_lossy();
        if arg.starts_with("--shallow-file") || arg.starts_with("--filter") {
            return None;
        }
        if matches!(
            &*arg,
            "--progress" | "--all-progress" | "--all-progress-implied" | "-q"
        ) {
            continue;
        }
        hash.update(arg.as_bytes());
        hash.update([0]);
    }
    hash.update([0xff]);
    hash.update(input);
    Some(hex::encode(hash.finalize()))
}

/// Runs the hook: `args` are what git appended (`git pack-objects <options>`), the request
/// is on standard input, the pack goes to standard output. Returns pack-objects' exit code.
pub fn run_hook(args: &[OsString]) -> io::Result<ExitCode> {
    // `git [<git options>] pack-objects <options>`: a shallow clone's git options name a
    // file of its cut (`--shallow-file`), which the key cannot see: not cached.
    let at = args.iter().position(|a| a == "pack-objects");
    let (program, git_opts, rest) = match (args.first(), at) {
        (Some(git), Some(at)) if at >= 1 => (git, &args[1..at], &args[at + 1..]),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "expected `git pack-objects ...`",
            ));
        }
    };
    let mut input = Vec::new();
    io::stdin().lock().take(MAX_INPUT).read_to_end(&mut input)?;
    let repo = std::env::var_os("GIT_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let dir = repo.join(DIR);
    let key = if git_opts.is_empty() {
        key(rest, &input)
    } else {
        None
    };
    if let Some(k) = &key
        && let Ok(file) = File::open(dir.join(format!("{k}.pack")))
    {
        // Marks it recently used (the mtime orders eviction); a failure only ages it.
        let _ = file.set_modified(std::time::SystemTime::now());
        io::copy(
            &mut BufReader::with_capacity(1 << 16, file),
            &mut io::stdout().lock(),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut child = Command::new(program)
        .args(git_opts)
        .arg("pack-objects")
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    // pack-objects reads all of its input before it writes: no deadlock writing it first.
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&input)?;
    }
    let mut from = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("pack-objects has no output"))?;
    let mut entry = key.as_ref().and_then(|k| Entry::create(&dir, k).ok());
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = out.write_all(&buf[..n]) {
            // The client went away: stop pack-objects, keep nothing.
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        if let Some(e) = &mut entry
            && e.file.write_all(&buf[..n]).is_err()
        {
            // A full disk costs the cache, not the clone.
            entry = None;
        }
    }
    out.flush()?;
    let status = child.wait()?;
    if status.success()
        && let Some(e) = entry
    {
        e.keep(&dir);
    }
    Ok(ExitCode::from(
        u8::try_from(status.code().unwrap_or(1)).unwrap_or(1),
    ))
}

/// A pack being written to the cache: a temporary file renamed into place when complete.
struct Entry {
    file: File,
    temp: PathBuf,
    path: PathBuf,
}

impl Entry {
    fn create(dir: &Path, key: &str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let temp = dir.join(format!(
            "tmp-{key}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        Ok(Self {
            file: File::create(&temp)?,
            temp,
            path: dir.join(format!("{key}.pack")),
        })
    }

    fn keep(self, dir: &Path) {
        let kept = self.file.sync_all().is_ok() && std::fs::rename(&self.temp, &self.path).is_ok();
        if !kept {
            let _ = std::fs::remove_file(&self.temp);
        }
        prune(dir);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // After a rename this finds nothing to remove.
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// Drops the least recently used packs beyond [`KEEP`], and temporary files an interrupted
/// run left (older than an hour).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut packs = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let modified = e.metadata().and_then(|m| m.modified()).unwrap_or(now);
        if name.ends_with(".pack") {
            packs.push((modified, e.path()));
        } else if name.starts_with("tmp-")
            && now
                .duration_since(modified)
                .is_ok_and(|age| age.as_secs() > 3600)
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
    packs.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (_, path) in packs.into_iter().skip(KEEP) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn only_full_clones_are_cached_and_progress_does_not_split_them() {
        let opts = args(&[
            "--revs",
            "--thin",
            "--stdout",
            "--progress",
            "--delta-base-offset",
        ]);
        let quiet = args(&["--revs", "--thin", "--stdout", "--delta-base-offset"]);
        let clone = format!("{A}\n{B}\n--not\n");
        let k = key(&opts, clone.as_bytes()).unwrap();
        assert_eq!(key(&quiet, clone.as_bytes()), Some(k.clone()));
        // Other wants, other options: other entries.
        assert_ne!(
            key(&opts, format!("{A}\n--not\n").as_bytes()),
            Some(k.clone())
        );
        assert_ne!(
            key(&args(&["--revs", "--stdout"]), clone.as_bytes()),
            Some(k)
        );
        // Fetches (objects had), shallow and partial clones, empty requests: not cached.
        assert_eq!(key(&opts, format!("{A}\n--not\n{B}\n").as_bytes()), None);
        assert_eq!(
            key(&opts, format!("--shallow {A}\n{B}\n--not\n").as_bytes()),
            None
        );
        assert_eq!(
            key(&args(&["--stdout", "--filter=blob:none"]), clone.as_bytes()),
            None
        );
        assert_eq!(key(&args(&["--shallow-file", "x"]), clone.as_bytes()), None);
        assert_eq!(key(&opts, b"--not\n"), None);
    }

    #[test]
    fn the_hook_setting_quotes_the_program_for_the_shell() {
        let c = hook_config(Path::new("/opt/it's here/forge"));
        assert_eq!(
            c,
            r"uploadpack.packObjectsHook='/opt/it'\''s here/forge' pack-objects-hook"
        );
    }

    #[test]
    fn pruning_keeps_the_most_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::time::SystemTime::now() - std::time::Duration::from_secs(100);
        for i in 0..(KEEP + 2) {
            let p = dir.path().join(format!("{i}.pack"));
            let f = File::create(&p).unwrap();
            f.set_modified(base + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        let stale = dir.path().join("tmp-old");
        File::create(&stale)
            .unwrap()
            .set_modified(base - std::time::Duration::from_secs(7200))
            .unwrap();
        prune(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["2.pack", "3.pack", "4.pack", "5.pack"]);
    }
}
