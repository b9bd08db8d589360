//! An object's CSV on its way to the target: in memory while the load's
//! CSV budget allows, in an unnamed temporary file beyond it.
//!
//! Everything the loader holds between converting an object and
//! committing its batch is CSV: objects being converted, objects waiting
//! in the batcher, the batch being loaded (and kept for a retry). Without
//! a bound, that is the batch size plus every object in flight, and a
//! single large object (Firehose's 128 MiB buffers inflate to several
//! hundred MB of CSV) needs all of its CSV in memory at once. A
//! [`CsvBudget`] caps the CSV held in memory by the whole load: the
//! converter hands over each object's CSV in [`PIECE_BYTES`] pieces
//! ([`Converter::convert_chunked`](crate::Converter::convert_chunked)),
//! and a [`CsvWriter`] keeps them in memory while the budget has room and
//! otherwise writes the object's CSV to a temporary file, which the
//! target reads back piece by piece. The file has no name (`O_TMPFILE`
//! where the system has it, otherwise unlinked at once), so nothing is
//! left behind however the process ends.
//!
//! Each piece holds whole CSV records, so a target may split a batch at
//! piece boundaries (Redshift's staged parts) without parsing across them.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

/// Size of the pieces the loader asks the converter for: the unit in
/// which CSV is kept in memory or written to a temporary file.
pub const PIECE_BYTES: usize = 1 << 20;

/// The CSV a load may hold in memory, for every object at once.
#[derive(Debug)]
pub struct CsvBudget {
    limit: u64,
    used: AtomicU64,
    dir: PathBuf,
    spilled_objects: AtomicU64,
    spilled_bytes: AtomicU64,
}

impl CsvBudget {
    /// A budget of `limit` bytes; objects beyond it go to temporary files
    /// in `dir` (`None`: [`std::env::temp_dir`], i.e. `$TMPDIR` or `/tmp`).
    #[must_use]
    pub fn new(limit: u64, dir: Option<PathBuf>) -> Arc<CsvBudget> {
        Arc::new(CsvBudget {
            limit,
            used: AtomicU64::new(0),
            dir: dir.unwrap_or_else(std::env::temp_dir),
            spilled_objects: AtomicU64::new(0),
            spilled_bytes: AtomicU64::new(0),
        })
    }

    /// The limit, in bytes.
    #[must_use]
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// CSV bytes held in memory now.
    #[must_use]
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Where temporary files go.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Objects whose CSV went to a temporary file, so far.
    #[must_use]
    pub fn spilled_objects(&self) -> u64 {
        self.spilled_objects.load(Ordering::Relaxed)
    }

    /// CSV bytes written to temporary files, so far.
    #[must_use]
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes.load(Ordering::Relaxed)
    }

    /// Takes `n` more bytes for `held`, if the budget has room.
    fn grow(self: &Arc<Self>, held: &mut Option<Held>, n: u64) -> bool {
        let ok = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok();
        if ok {
            match held {
                Some(h) => h.bytes += n,
                None => {
                    *held = Some(Held { budget: Arc::clone(self), bytes: n });
                }
            }
        }
        ok
    }
}

/// Bytes of a [`CsvBudget`] held by one object's CSV, given back on drop.
#[derive(Debug)]
struct Held {
    budget: Arc<CsvBudget>,
    bytes: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// An object's CSV records, each ending in a newline: pieces in memory,
/// or a temporary file read back piece by piece. Cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct Csv {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Memory { pieces: Vec<Bytes>, _held: Option<Arc<Held>> },
    File(Arc<Spilled>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Memory { pieces: Vec::new(), _held: None }
    }
}

/// A temporary file of CSV and where its pieces end.
#[derive(Debug)]
struct Spilled {
    file: File,
    ends: Vec<u64>,
    last: Option<u8>,
}

impl Csv {
    /// CSV bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        match &self.repr {
            Repr::Memory { pieces, .. } => {
                pieces.iter().map(|p| p.len() as u64).sum()
            }
            Repr::File(s) => s.ends.last().copied().unwrap_or(0),
        }
    }

    /// Whether there is no CSV.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the CSV is in a temporary file (reading a piece is then
    /// file I/O: call [`Csv::piece`] off the async runtime's threads).
    #[must_use]
    pub fn is_spilled(&self) -> bool {
        matches!(self.repr, Repr::File(_))
    }

    /// Number of pieces.
    #[must_use]
    pub fn pieces(&self) -> usize {
        match &self.repr {
            Repr::Memory { pieces, .. } => pieces.len(),
            Repr::File(s) => s.ends.len(),
        }
    }

    /// Piece `i` (whole records when the loader built it).
    ///
    /// # Errors
    ///
    /// Reading the temporary file failed, or there is no piece `i`.
    pub fn piece(&self, i: usize) -> io::Result<Bytes> {
        let missing = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no CSV piece {i}"),
            )
        };
        match &self.repr {
            Repr::Memory { pieces, .. } => {
                pieces.get(i).cloned().ok_or_else(missing)
            }
            Repr::File(s) => {
                let end = *s.ends.get(i).ok_or_else(missing)?;
                let start = match i.checked_sub(1) {
                    Some(j) => s.ends.get(j).copied().unwrap_or(0),
                    None => 0,
                };
                let len = usize::try_from(end - start)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                let mut buf = vec![0; len];
                s.file.read_exact_at(&mut buf, start)?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// Piece `i`, read on tokio's blocking pool when it is in a file.
    ///
    /// # Errors
    ///
    /// As [`Csv::piece`].
    pub async fn read_piece(&self, i: usize) -> io::Result<Bytes> {
        if !self.is_spilled() {
            return self.piece(i);
        }
        let csv = self.clone();
        tokio::task::spawn_blocking(move || csv.piece(i))
            .await
            .map_err(|e| io::Error::other(e.to_string()))?
    }

    /// The last byte, if any.
    #[must_use]
    pub fn last_byte(&self) -> Option<u8> {
        match &self.repr {
            Repr::Memory { pieces, .. } => {
                pieces.iter().rev().find_map(|p| p.last().copied())
            }
            Repr::File(s) => s.last,
        }
    }

    /// All of it in one buffer (for tests and small objects).
    ///
    /// # Errors
    ///
    /// Reading the temporary file failed.
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut out =
            Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        for i in 0..self.pieces() {
            out.extend_from_slice(&self.piece(i)?);
        }
        Ok(out)
    }
}

impl From<Bytes> for Csv {
    fn from(b: Bytes) -> Csv {
        let pieces = if b.is_empty() { Vec::new() } else { vec![b] };
        Csv { repr: Repr::Memory { pieces, _held: None } }
    }
}

impl From<Vec<u8>> for Csv {
    fn from(v: Vec<u8>) -> Csv {
        Csv::from(Bytes::from(v))
    }
}

impl From<&'static [u8]> for Csv {
    fn from(s: &'static [u8]) -> Csv {
        Csv::from(Bytes::from_static(s))
    }
}

impl From<String> for Csv {
    fn from(s: String) -> Csv {
        Csv::from(Bytes::from(s))
    }
}

/// Equal content (a temporary file that cannot be read equals nothing
/// but itself).
impl PartialEq for Csv {
    fn eq(&self, other: &Csv) -> bool {
        if let (Repr::File(a), Repr::File(b)) = (&self.repr, &other.repr) {
            if Arc::ptr_eq(a, b) {
                return true;
            }
        }
        self.len() == other.len()
            && matches!((self.to_vec(), other.to_vec()), (Ok(a), Ok(b)) if a == b)
    }
}

impl Eq for Csv {}

/// Builds one object's [`Csv`] from the converter's pieces, in memory
/// while the budget has room, then in a temporary file.
#[derive(Debug)]
pub struct CsvWriter {
    budget: Arc<CsvBudget>,
    pieces: Vec<Bytes>,
    held: Option<Held>,
    file: Option<Spilled>,
    error: Option<io::Error>,
}

impl CsvWriter {
    /// A writer drawing on `budget`.
    #[must_use]
    pub fn new(budget: &Arc<CsvBudget>) -> CsvWriter {
        CsvWriter {
            budget: Arc::clone(budget),
            pieces: Vec::new(),
            held: None,
            file: None,
            error: None,
        }
    }

    /// Takes `buf`'s bytes (whole records), leaving it empty with its
    /// capacity. A write error is kept for [`CsvWriter::finish`], and the
    /// rest of the object is then ignored.
    pub fn push(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() || self.error.is_some() {
            buf.clear();
            return;
        }
        let n = buf.len() as u64;
        if self.file.is_none() && self.budget.grow(&mut self.held, n) {
            self.pieces.push(Bytes::copy_from_slice(buf));
        } else if let Err(e) = self.spill(buf) {
            self.error = Some(e);
        }
        buf.clear();
    }

    fn spill(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            let file = tempfile::tempfile_in(&self.budget.dir)?;
            let mut s = Spilled { file, ends: Vec::new(), last: None };
            for p in std::mem::take(&mut self.pieces) {
                append(&mut s, &p)?;
            }
            self.held = None;
            self.file = Some(s);
            self.budget.spilled_objects.fetch_add(1, Ordering::Relaxed);
        }
        match &mut self.file {
            Some(s) => append(s, buf),
            None => Ok(()),
        }
    }

    /// The object's CSV, with `tail` (the converter's last, short piece)
    /// at its end.
    ///
    /// # Errors
    ///
    /// Writing the temporary file failed (a full disk): the object cannot
    /// be loaded from this run's copy.
    pub fn finish(mut self, tail: &mut Vec<u8>) -> io::Result<Csv> {
        self.push(tail);
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        Ok(match self.file.take() {
            Some(s) => {
                self.budget.spilled_bytes.fetch_add(
                    s.ends.last().copied().unwrap_or(0),
                    Ordering::Relaxed,
                );
                Csv { repr: Repr::File(Arc::new(s)) }
            }
            None => Csv {
                repr: Repr::Memory {
                    pieces: std::mem::take(&mut self.pieces),
                    _held: self.held.take().map(Arc::new),
                },
            },
        })
    }
}

fn append(s: &mut Spilled, piece: &[u8]) -> io::Result<()> {
    if piece.is_empty() {
        return Ok(());
    }
    s.file.write_all(piece)?;
    let end = s.ends.last().copied().unwrap_or(0) + piece.len() as u64;
    s.ends.push(end);
    s.last = piece.last().copied();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(budget: &Arc<CsvBudget>, pieces: &[&[u8]]) -> Csv {
        let mut w = CsvWriter::new(budget);
        for p in pieces {
            w.push(&mut p.to_vec());
        }
        w.finish(&mut Vec::new()).unwrap()
    }

    #[test]
    fn within_the_budget_stays_in_memory_and_is_given_back() {
        let budget = CsvBudget::new(100, None);
        let csv = write(&budget, &[b"a,1\n", b"b,2\n"]);
        assert!(!csv.is_spilled());
        assert_eq!(budget.used(), 8);
        assert_eq!(csv.to_vec().unwrap(), b"a,1\nb,2\n");
        assert_eq!(
            (csv.pieces(), csv.len(), csv.last_byte()),
            (2, 8, Some(b'\n'))
        );
        let copy = csv.clone();
        drop(csv);
        assert_eq!(budget.used(), 8, "a clone still holds it");
        drop(copy);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.spilled_objects(), 0);
    }

    #[test]
    fn beyond_the_budget_goes_to_a_file_with_the_same_pieces() {
        let budget = CsvBudget::new(10, None);
        let held = write(&budget, &[b"x,1\n"]);
        let csv = write(&budget, &[b"a,1\n", b"b,22\n", b"\"c\nd\",3\n"]);
        assert!(csv.is_spilled());
        assert_eq!(
            budget.used(),
            4,
            "the spilled object gave its memory back"
        );
        assert_eq!(csv.pieces(), 3);
        assert_eq!(&csv.piece(1).unwrap()[..], b"b,22\n");
        assert_eq!(&csv.piece(2).unwrap()[..], b"\"c\nd\",3\n");
        assert!(csv.piece(3).is_err());
        assert_eq!(csv.to_vec().unwrap(), b"a,1\nb,22\n\"c\nd\",3\n");
        assert_eq!(csv.len(), 17);
        assert_eq!(csv.last_byte(), Some(b'\n'));
        assert_eq!(csv, Csv::from(b"a,1\nb,22\n\"c\nd\",3\n".to_vec()));
        assert_eq!(
            (budget.spilled_objects(), budget.spilled_bytes()),
            (1, 17)
        );
        drop(held);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_zero_budget_spills_everything_and_empty_stays_empty() {
        let budget = CsvBudget::new(0, None);
        assert!(write(&budget, &[b"a\n"]).is_spilled());
        let empty = write(&budget, &[]);
        assert!(empty.is_empty() && !empty.is_spilled());
        assert_eq!(empty.pieces(), 0);
        assert_eq!(empty, Csv::default());
    }

    #[test]
    fn a_write_error_is_reported_by_finish() {
        let budget =
            CsvBudget::new(0, Some(PathBuf::from("/nonexistent/dir")));
        let mut w = CsvWriter::new(&budget);
        w.push(&mut b"a\n".to_vec());
        assert!(w.finish(&mut b"b\n".to_vec()).is_err());
    }
}
