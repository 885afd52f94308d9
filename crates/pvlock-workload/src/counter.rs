//! `counter`: one hot lock protecting a small struct on two cache lines. Each critical section
//! increments the count and makes `cs` volatile read-modify-writes spread over the struct's other
//! 15 words (`cs` is the bench's and the guest's `--cs`), so its length is set by the caller and
//! the compiler cannot merge or drop the writes. It draws no random numbers.
//!
//! The guest's `drain` workload uses the same data with `cs` 0: the count alone.

/// Words of [`CounterData`] after the count.
const LINES: usize = 15;

/// `counter`'s protected data: the acquisition count and 15 more words, two cache lines.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct CounterData {
    count: u64,
    lines: [u64; LINES],
}

impl CounterData {
    /// All zero.
    #[inline]
    pub const fn new() -> Self {
        CounterData {
            count: 0,
            lines: [0; LINES],
        }
    }

    /// The critical section: counts the acquisition, then makes `cs` volatile writes, the i-th
    /// adding i to word i mod 15.
    #[inline]
    pub fn apply(&mut self, cs: u32) {
        self.count += 1;
        for i in 0..cs as usize {
            let p = &mut self.lines[i % LINES] as *mut u64;
            // SAFETY: `p` comes from a live `&mut` to one of our words, so it is valid, aligned
            // and unaliased; volatile so that every write is made.
            unsafe { p.write_volatile(p.read_volatile().wrapping_add(i as u64)) };
        }
    }

    /// Acquisitions counted by [`apply`](Self::apply).
    #[inline]
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl Default for CounterData {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::CounterData;

    #[test]
    fn counts_and_writes() {
        let mut d = CounterData::new();
        d.apply(0);
        assert_eq!((d.count(), d.lines), (1, [0; 15]));
        d.apply(20);
        assert_eq!(d.count(), 2);
        // Word w got every i < 20 with i mod 15 == w: w, plus w + 15 for w < 5.
        for (w, &v) in d.lines.iter().enumerate() {
            let w = w as u64;
            assert_eq!(v, if w < 5 { 2 * w + 15 } else { w });
        }
    }
}
