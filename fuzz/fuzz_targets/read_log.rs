//! Arbitrary bytes (gzip or not, any layout) through the log reader and the
//! aggregation: no panic, no unbounded allocation, statistics that add up.
#![no_main]

use bedrock_denied_models::reader::Reader;
use bedrock_denied_models::config::Config;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Hands the input out in pieces whose sizes come from the input itself, so every
/// block boundary is explored.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    i: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = if self.sizes.is_empty() {
            buf.len()
        } else {
            usize::from(self.sizes[self.i % self.sizes.len()]).max(1) * 97
        };
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    let reader = Reader::new(&Config::default());
    let (sizes, data) = input.split_at(input.len().min(4));
    let read = reader.read(Pieces { data, sizes, i: 0 }, None);
    assert_eq!(read.aggregate.denials(), read.stats.counts.denials);
    assert!(read.stats.counts.denials + read.stats.counts.skipped_lines() <= read.stats.counts.records);
    // Whatever happened, the whole input read at once agrees on the denials found
    // when reading ran to the end.
    if read.error.is_none() {
        let whole = reader.read(data, None);
        assert_eq!(whole.stats.counts.denials, read.stats.counts.denials);
        assert_eq!(whole.aggregate, read.aggregate);
    }
});
