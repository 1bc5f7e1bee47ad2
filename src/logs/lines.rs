//! JSON lines (Bedrock model-invocation logs): every line is a record, and only lines
//! the prefilter flags are parsed. The prefilter runs over whole blocks, like a grep.

use super::buffer::LineBuffer;
use super::record::Unusable;
use super::{fill, Collector, Denial, Stop};
use std::io::Read;

/// Reads the rest of `input` as JSON lines, starting with what `buf` already holds.
pub(super) fn read_lines<F: FnMut(Denial)>(
    buf: &mut LineBuffer,
    input: &mut dyn Read,
    out: &mut Collector<'_, F>,
) -> Result<(), Stop> {
    let mut candidates = Vec::new();
    loop {
        block(buf.lines(), out, &mut candidates);
        buf.consume_lines();
        if buf.is_eof() {
            return Ok(());
        }
        fill(buf, input, out)?;
    }
}

/// Whole lines (the last may lack its `\n` at the end of the object): counts records,
/// then parses the lines the prefilter flags.
fn block<F: FnMut(Denial)>(block: &[u8], out: &mut Collector<'_, F>, candidates: &mut Vec<usize>) {
    if block.is_empty() {
        return;
    }
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', block) {
        count_line(&block[start..end], out);
        start = end + 1;
    }
    count_line(&block[start..], out);
    out.matcher.candidates(block, candidates);
    let mut parsed_up_to = 0;
    for &at in candidates.iter() {
        if at < parsed_up_to {
            continue;
        }
        let from = memchr::memrchr(b'\n', &block[..at]).map_or(0, |i| i + 1);
        let to = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |i| at + i);
        let line = block[from..to].trim_ascii();
        // A line not shaped like an object was already counted as invalid.
        if is_object_shaped(line) {
            out.classify(line);
        }
        parsed_up_to = to + 1;
    }
}

fn is_object_shaped(line: &[u8]) -> bool {
    line.first() == Some(&b'{') && line.last() == Some(&b'}')
}

/// Every non-blank line is a record; one not shaped like a JSON object is counted as
/// invalid even when it cannot be a denial.
fn count_line<F: FnMut(Denial)>(line: &[u8], out: &mut Collector<'_, F>) {
    let line = line.trim_ascii();
    if line.is_empty() {
        return;
    }
    if is_object_shaped(line) {
        out.stats.counts.records += 1;
    } else {
        out.skip(Unusable::InvalidJson);
    }
}
