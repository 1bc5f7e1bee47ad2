//! Arbitrary bytes (gzip or not, Bedrock or CloudTrail shaped) through the log reader
//! and the aggregation: no panic, no unbounded allocation, statistics that add up.
#![no_main]

use bedrock_denied_models::aggregate::scan_object;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::logs::DenialMatcher;
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
    let config = Config::default();
    let matcher = DenialMatcher::new(&config.denial_codes);
    let spec = config.window();
    let (sizes, data) = input.split_at(input.len().min(4));
    let (agg, outcome) = scan_object(Pieces { data, sizes, i: 0 }, &matcher, &spec);
    let counted: u64 = agg.keys.values().flat_map(|k| k.buckets.values()).sum();
    assert_eq!(counted, outcome.stats.denials);
    assert!(outcome.stats.denials + outcome.stats.skipped.total() <= outcome.stats.records);
    // Whatever happened, the whole input read at once agrees on the denials found
    // when reading ran to the end.
    if outcome.error.is_none() {
        let (agg2, whole) = scan_object(data, &matcher, &spec);
        assert_eq!(whole.stats.denials, outcome.stats.denials);
        assert_eq!(agg2, agg);
    }
});
