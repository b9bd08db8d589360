//! Local files: each INPUT path is a file, or a directory walked
//! recursively with each directory's entries in name order (with
//! [`walkdir`], which follows symbolic links and reports a link loop as an
//! error instead of recursing forever).

use std::path::{Path, PathBuf};

use super::{Location, ObjectRef, SourceError};

/// Every file under `path`, in sorted order, as [`ObjectRef`]s whose
/// ledger key is the canonical path.
///
/// # Errors
///
/// [`SourceError::Io`] for a path that cannot be read or canonicalised,
/// [`SourceError::Loop`] for a symbolic-link loop.
pub fn list(path: &Path) -> Result<Vec<ObjectRef>, SourceError> {
    let mut out = Vec::new();
    let walk =
        walkdir::WalkDir::new(path).follow_links(true).sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(|e| walk_error(path, e))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let file = entry.path().to_path_buf();
        let canonical = std::fs::canonicalize(&file).map_err(|source| {
            SourceError::Io { op: "reading", path: file.clone(), source }
        })?;
        let relative = match file.strip_prefix(path) {
            Ok(r) if !r.as_os_str().is_empty() => r.to_path_buf(),
            _ => PathBuf::from(file.file_name().unwrap_or(file.as_os_str())),
        };
        let size = entry.metadata().ok().map(|m| m.len());
        out.push(ObjectRef {
            name: file.to_string_lossy().into_owned(),
            ledger_key: canonical.to_string_lossy().into_owned(),
            location: Location::File(file),
            relative,
            size,
            etag: None,
        });
    }
    Ok(out)
}

fn walk_error(root: &Path, e: walkdir::Error) -> SourceError {
    if let Some(ancestor) = e.loop_ancestor() {
        return SourceError::Loop {
            path: e.path().unwrap_or(root).to_path_buf(),
            ancestor: ancestor.to_path_buf(),
        };
    }
    let path = e.path().unwrap_or(root).to_path_buf();
    let source = e
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("directory walk failed"));
    SourceError::Io { op: "listing", path, source }
}

/// Reads the whole of `path` into `buf`, reusing its capacity.
///
/// # Errors
///
/// The I/O error, as [`SourceError::Io`].
pub fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<(), SourceError> {
    use std::io::Read as _;
    let io = |source| SourceError::Io {
        op: "reading",
        path: path.to_path_buf(),
        source,
    };
    buf.clear();
    let mut f = std::fs::File::open(path).map_err(io)?;
    if let Ok(m) = f.metadata() {
        buf.reserve(usize::try_from(m.len()).unwrap_or(0));
    }
    f.read_to_end(buf).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_and_keys_canonically() {
        let dir = std::env::temp_dir()
            .join(format!("cwl-copy-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b/c")).unwrap();
        for f in ["b/c/z", "b/a", "a.txt", "b.txt"] {
            std::fs::write(dir.join(f), f).unwrap();
        }
        let refs = list(&dir).unwrap();
        let rel: Vec<String> = refs
            .iter()
            .map(|r| r.relative.to_string_lossy().into_owned())
            .collect();
        assert_eq!(rel, ["a.txt", "b/a", "b/c/z", "b.txt"]);
        // The same files through a path with `.` and `..` in it have the
        // same ledger keys.
        let odd = dir.join("b/../.");
        let again = list(&odd).unwrap();
        let keys = |v: &[ObjectRef]| {
            v.iter().map(|r| r.ledger_key.clone()).collect::<Vec<_>>()
        };
        assert_eq!(keys(&refs), keys(&again));
        assert_ne!(refs[0].name, again[0].name);

        // A symlink loop is an error naming it, not a stack overflow.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&dir, dir.join("b/c/loop")).unwrap();
            let e = list(&dir).unwrap_err();
            assert!(matches!(e, SourceError::Loop { .. }), "{e}");
            assert!(e.to_string().contains("loop"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_path_is_named() {
        let e = list(Path::new("/no/such/cwl-copy/input")).unwrap_err();
        assert!(e.to_string().contains("/no/such/cwl-copy/input"), "{e}");
    }
}
