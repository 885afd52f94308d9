//! Output files (`--json`, `--plot`): what is at the path decides how it is written.
//!
//! * absent, or a regular file: written atomically, to a temporary file beside it that is then
//!   renamed over it (a reader never sees half a file; a replaced file keeps its permissions);
//! * a symbolic link: the same for its target (the link stays a link; a dangling link gets its
//!   target created);
//! * a FIFO, a character device (`/dev/null`, a terminal), or any path under `/dev` or `/proc`
//!   (`/dev/stdout`): written through, in place;
//! * a directory, a block device, a socket: refused while the arguments are checked (exit 2).
//!
//! Every write error is reported (exit 1): `--json /dev/full` fails with "No space left on
//! device".

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// How a path is written.
#[derive(Debug, PartialEq)]
enum Target {
    /// Atomically: this regular file (a symbolic link's target, resolved) is replaced or created.
    Replace(PathBuf),
    /// In place, through the path as given.
    Through,
}

/// Decides how `p` is written, or why it cannot be.
fn target(p: &Path) -> Result<Target, String> {
    let shown = p.display();
    if p.as_os_str().is_empty() || p.file_name().is_none() {
        return Err(format!("{:?} is not a file path", p.as_os_str()));
    }
    let special = p.starts_with("/dev") || p.starts_with("/proc");
    match fs::metadata(p) {
        Ok(m) if m.is_dir() => Err(format!("{shown:?} is a directory")),
        Ok(m) if special || m.file_type().is_fifo() || m.file_type().is_char_device() => {
            Ok(Target::Through)
        }
        Ok(m) if m.is_file() => fs::canonicalize(p)
            .map(Target::Replace)
            .map_err(|e| format!("cannot resolve {shown:?}: {e}")),
        Ok(m) => {
            let what = if m.file_type().is_block_device() {
                "a block device"
            } else if m.file_type().is_socket() {
                "a socket"
            } else {
                "not a regular file"
            };
            Err(format!(
                "{shown:?} is {what}: write to a regular file, a FIFO or a character device"
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if special {
                Ok(Target::Through)
            } else {
                dangling_target(p).map(Target::Replace)
            }
        }
        Err(e) => Err(format!("cannot write {shown:?}: {e}")),
    }
}

/// The path a write to absent `p` creates: `p`, or the end of its chain of dangling links.
fn dangling_target(p: &Path) -> Result<PathBuf, String> {
    let mut at = p.to_path_buf();
    for _ in 0..40 {
        match fs::read_link(&at) {
            Ok(next) => {
                at = match at.parent() {
                    Some(dir) if next.is_relative() => dir.join(next),
                    _ => next,
                }
            }
            Err(_) => return Ok(at), // not a link: the file to create
        }
    }
    Err(format!(
        "{:?}: too many levels of symbolic links",
        p.display()
    ))
}

fn temp_path(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// Creates the temporary file for an atomic write of `p` (never following a link there).
fn create_temp(p: &Path) -> io::Result<(PathBuf, fs::File)> {
    let tmp = temp_path(p);
    let _ = fs::remove_file(&tmp); // a leftover of a killed run with the same pid
    let f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    Ok((tmp, f))
}

/// `--json PATH`: checks that PATH can be written (see the module docs), leaving nothing behind.
pub fn output_path(v: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(v);
    if let Target::Replace(file) = target(&p)? {
        let (tmp, _) = create_temp(&file).map_err(|e| format!("cannot write {v:?}: {e}"))?;
        let _ = fs::remove_file(tmp);
    }
    Ok(p)
}

/// `--plot PATH`: checks both files it names, PATH.svg and PATH.png (and that PATH is no
/// directory, which would be a surprising place for `PATH.svg`).
pub fn plot_path(v: &str) -> Result<PathBuf, String> {
    if Path::new(v).is_dir() {
        return Err(format!(
            "{v:?} is a directory: --plot takes a name such as {}/plot for plot.svg and plot.png",
            v.trim_end_matches('/')
        ));
    }
    let (svg, png) = crate::plot::paths(Path::new(v));
    for p in [svg, png] {
        output_path(&p.to_string_lossy())?;
    }
    Ok(PathBuf::from(v))
}

/// Writes `bytes` to `p` (see the module docs); returns whether it created a new file.
pub fn write_output(p: &Path, bytes: &[u8]) -> Result<bool, String> {
    let err = |e: io::Error| format!("cannot write {}: {e}", p.display());
    match target(p)? {
        Target::Through => {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(p)
                .map_err(err)?;
            f.write_all(bytes).and_then(|_| f.flush()).map_err(err)?;
            Ok(false)
        }
        Target::Replace(file) => {
            let old = fs::metadata(&file).ok();
            let (tmp, mut f) = create_temp(&file).map_err(err)?;
            let r = f
                .write_all(bytes)
                .and_then(|_| f.sync_all())
                .and_then(|_| match &old {
                    Some(m) => fs::set_permissions(&tmp, m.permissions()),
                    None => Ok(()),
                })
                .and_then(|_| fs::rename(&tmp, &file));
            if let Err(e) = r {
                let _ = fs::remove_file(&tmp);
                return Err(err(e));
            }
            Ok(old.is_none())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pvlock-files-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn targets() {
        let d = dir("targets");
        let file = d.join("a.json");
        fs::write(&file, "old").unwrap();
        std::os::unix::fs::symlink("a.json", d.join("link")).unwrap();
        std::os::unix::fs::symlink("sub/../b.json", d.join("dangling")).unwrap();
        let canon = fs::canonicalize(&d).unwrap();
        assert_eq!(target(&file), Ok(Target::Replace(canon.join("a.json"))));
        assert_eq!(
            target(&d.join("link")),
            Ok(Target::Replace(canon.join("a.json")))
        );
        assert_eq!(
            target(&d.join("new.json")),
            Ok(Target::Replace(d.join("new.json")))
        );
        assert_eq!(
            target(&d.join("dangling")),
            Ok(Target::Replace(d.join("sub/../b.json")))
        );
        assert!(target(&d).unwrap_err().contains("is a directory"));
        assert!(target(Path::new("")).is_err());
        assert_eq!(target(Path::new("/dev/null")), Ok(Target::Through));
        assert_eq!(target(Path::new("/dev/stdout")), Ok(Target::Through));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn replace_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("perm");
        let file = d.join("a.json");
        fs::write(&file, "old").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(write_output(&file, b"new"), Ok(false));
        assert_eq!(fs::read_to_string(&file).unwrap(), "new");
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(write_output(&d.join("b.json"), b"x"), Ok(true));
        let left: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
        let _ = fs::remove_dir_all(&d);
    }
}
