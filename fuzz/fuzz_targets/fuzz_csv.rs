//! CSV fields: the fuzzer's bytes, as text, written with `RowWriter` in
//! both dialects must equal the plain definition of CSV quoting (quote
//! when the field holds `,` `"` CR or LF, double every quote), and a row
//! of them must read back with the `csv` crate as the same fields. Covers
//! the SSSE3 quoting blocks in `src/write/csv.rs`.
#![no_main]

use cwl_copy::{Dialect, RowWriter};
use libfuzzer_sys::fuzz_target;

fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('"', "\"\""))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).replace('\0', "");
    // Several fields: the whole text, and its pieces between 0xfe bytes
    // (lossy-decoded to U+FFFD), so rows have varied widths.
    let mut fields: Vec<&str> = text.split('\u{fffd}').collect();
    fields.push(&text);
    for d in [Dialect::Postgres, Dialect::Redshift] {
        let mut w = RowWriter::new(d);
        let mut row = Vec::new();
        let mut kept = Vec::new();
        for f in &fields {
            let before = row.len();
            match w.field(&mut row, f) {
                Ok(()) => {}
                Err(_) => {
                    // Only the Redshift NULL marker is refused.
                    assert!(d == Dialect::Redshift && *f == "\\N");
                    assert_eq!(row.len(), before);
                    continue;
                }
            }
            let sep = usize::from(!kept.is_empty());
            let got = std::str::from_utf8(&row[before + sep..]).unwrap();
            let must = f.contains([',', '"', '\r', '\n'])
                || f.is_empty()
                || (d == Dialect::Postgres && *f == "\\.");
            let want = if must { quoted(f) } else { (*f).to_owned() };
            assert_eq!(got, want);
            kept.push(*f);
        }
        w.end_row(&mut row);
        if kept.is_empty() {
            continue;
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&row[..]);
        let rec = rdr.records().next().unwrap().unwrap();
        assert_eq!(rec.iter().collect::<Vec<_>>(), kept);
    }
});
