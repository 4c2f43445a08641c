//! The streaming GHES usage-file scanner, fed in one piece and in odd-sized
//! short reads: both must give the same verdict.
#![no_main]
use std::io::Read;

use airlock::usage::sniff;
use libfuzzer_sys::fuzz_target;

/// Hands out at most `n` bytes per read, to hit every buffer boundary.
struct Trickle<'a> {
    data: &'a [u8],
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let k = self.n.min(out.len()).min(self.data.len());
        out[..k].copy_from_slice(&self.data[..k]);
        self.data = &self.data[k..];
        Ok(k)
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = format!("{:?}", sniff(data));
    let n = 1 + data.first().copied().unwrap_or(0) as usize % 13;
    let trickled = format!("{:?}", sniff(Trickle { data, n }));
    assert_eq!(whole, trickled);
});
