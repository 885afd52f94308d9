//! Output files (`--json`, `--plot`): the check made while parsing the arguments, and the write.

use std::path::{Path, PathBuf};

/// `--json PATH`: checks that a file can be created at `v` (without leaving anything there).
pub fn output_path(v: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(v);
    if v.is_empty() || p.is_dir() || p.file_name().is_none() {
        return Err(format!("{v:?} is not a file path"));
    }
    let tmp = temp_path(&p);
    match std::fs::File::create(&tmp) {
        Ok(_) => {
            let _ = std::fs::remove_file(&tmp);
            Ok(p)
        }
        Err(e) => Err(format!("cannot write {v:?}: {e}")),
    }
}

/// `--plot PATH`: the SVG and the PNG go to the same directory as PATH, so one check covers both.
pub fn plot_path(v: &str) -> Result<PathBuf, String> {
    output_path(v)
}

fn temp_path(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// Writes `bytes` to a temporary file beside `p` and renames it over `p`: no partial file.
pub fn write_output(p: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = temp_path(p);
    let r = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, p));
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", p.display())
    })
}
