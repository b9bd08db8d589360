//! The one `unsafe` module: a safe wrapper over libdeflate's raw-deflate
//! decompressor, which (unlike the `libdeflater` crate) reports how many
//! input bytes a member used. That count is what walks concatenated gzip
//! members without scanning for the magic bytes.
//!
//! Covered by the `fuzz_object` fuzz target and by the property tests that
//! compare it against flate2's `MultiGzDecoder`.

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor,
    libdeflate_deflate_decompress_ex, libdeflate_free_decompressor,
    libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE as INSUFFICIENT_SPACE,
    libdeflate_result_LIBDEFLATE_SUCCESS as SUCCESS,
};

/// What one call to [`Inflater::inflate`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inflated {
    /// The deflate stream ended: `input` bytes were used and `output`
    /// bytes written at the start of the output buffer.
    Done { input: usize, output: usize },
    /// The output buffer was too small.
    NoSpace,
    /// Corrupt or truncated data (libdeflate does not say which).
    Bad,
}

/// An owned libdeflate decompressor.
pub(crate) struct Inflater(NonNull<libdeflate_decompressor>);

// SAFETY: a libdeflate decompressor is a plain heap object with no thread
// affinity or shared state; `Inflater` only uses it through `&mut self`.
unsafe impl Send for Inflater {}

impl Inflater {
    /// A new decompressor, or `None` if libdeflate cannot allocate one.
    pub(crate) fn new() -> Option<Self> {
        // SAFETY: the function has no preconditions; a null return is
        // handled by `NonNull::new`.
        let ptr = unsafe { libdeflate_alloc_decompressor() };
        NonNull::new(ptr).map(Inflater)
    }

    /// Inflates one raw deflate stream from the start of `input` into
    /// `output`. Bytes after the stream's end are not read.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Inflated {
        let mut used = 0usize;
        let mut written = 0usize;
        // SAFETY: `self.0` is a live decompressor (freed only in Drop) and
        // `&mut self` makes this the only use of it. The input and output
        // pointers and lengths come from valid slices, which do not
        // overlap (one is shared, one exclusive); libdeflate reads at most
        // `input.len()` bytes and writes at most `output.len()` bytes. The
        // two result pointers are valid, aligned, exclusive locals.
        let result = unsafe {
            libdeflate_deflate_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                output.as_mut_ptr().cast(),
                output.len(),
                &mut used,
                &mut written,
            )
        };
        if result == SUCCESS && used <= input.len() && written <= output.len()
        {
            Inflated::Done { input: used, output: written }
        } else if result == INSUFFICIENT_SPACE {
            Inflated::NoSpace
        } else {
            Inflated::Bad
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `libdeflate_alloc_decompressor`
        // and is freed exactly once, here.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        );
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reports_input_used_and_stops_at_stream_end() {
        let mut z = deflate(b"hello hello hello");
        let n = z.len();
        z.extend_from_slice(b"NEXT");
        let mut out = vec![0; 64];
        let mut inf = Inflater::new().unwrap();
        assert_eq!(
            inf.inflate(&z, &mut out),
            Inflated::Done { input: n, output: 17 }
        );
        assert_eq!(&out[..17], b"hello hello hello");
    }

    #[test]
    fn small_output_and_bad_data() {
        let z = deflate(&[b'x'; 1000]);
        let mut inf = Inflater::new().unwrap();
        assert_eq!(inf.inflate(&z, &mut [0; 10]), Inflated::NoSpace);
        assert_eq!(
            inf.inflate(&z[..z.len() / 2], &mut [0; 2000]),
            Inflated::Bad
        );
        assert_eq!(inf.inflate(&[0xff; 16], &mut [0; 2000]), Inflated::Bad);
        assert_eq!(inf.inflate(&[], &mut []), Inflated::Bad);
    }
}
