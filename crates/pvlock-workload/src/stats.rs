//! `stats`: [`FLOWS`] flow-statistics records, each under its own lock, as in the flow statistics
//! of Open vSwitch. Half of the updates go to flow 0, the others uniformly to any of the four, so
//! flow 0's lock is hot (5/8 of the updates). An update adds one packet of 64..=1463 bytes, sets
//! last-used to the flow's operation count and ORs in one of 8 TCP flag bits.
//!
//! Before the lock, [`FlowUpdate::random`] draws the flow, size and flag (one draw); under the
//! flow's lock, [`FlowStats::apply`] counts the acquisition and adds the update.

/// Flow records.
pub const FLOWS: usize = 4;

/// One flow's statistics, on a cache line of its own.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct FlowStats {
    ops: u64,
    packets: u64,
    bytes: u64,
    used: u64,
    tcp_flags: u64,
}

/// One update, chosen before the lock: the flow, the packet's size and its TCP flag.
#[derive(Clone, Copy, Debug)]
pub struct FlowUpdate {
    flow: usize,
    bytes: u64,
    flag: u64,
}

impl FlowUpdate {
    /// The next update, all from one draw: bit 0 picks flow 0 or a uniform flow (bits 1-2), bits
    /// 8 and up the size, bits 24-26 the flag.
    #[inline]
    pub fn random(rng: &mut crate::Rng) -> FlowUpdate {
        let r = rng.next();
        let flow = if r & 1 == 0 {
            0
        } else {
            ((r >> 1) % FLOWS as u64) as usize
        };
        let bytes = 64 + (r >> 8) % 1400;
        let flag = 1u64 << ((r >> 24) % 8);
        FlowUpdate { flow, bytes, flag }
    }

    /// The index of the flow, whose lock the update takes (below [`FLOWS`]).
    #[inline]
    pub fn flow(&self) -> usize {
        self.flow
    }
}

impl FlowStats {
    /// All zero.
    #[inline]
    pub const fn new() -> Self {
        FlowStats {
            ops: 0,
            packets: 0,
            bytes: 0,
            used: 0,
            tcp_flags: 0,
        }
    }

    /// The critical section of `u` (on its flow): counts the acquisition and adds the packet.
    #[inline]
    pub fn apply(&mut self, u: FlowUpdate) {
        self.ops += 1;
        self.packets += 1;
        self.bytes += u.bytes;
        self.used = self.ops;
        self.tcp_flags |= u.flag;
    }

    /// Acquisitions counted by [`apply`](Self::apply).
    #[inline]
    pub fn ops(&self) -> u64 {
        self.ops
    }
}

impl Default for FlowStats {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{FlowStats, FlowUpdate, FLOWS};
    use crate::Rng;

    #[test]
    fn counts_and_stays_in_range() {
        let mut rng = Rng::new(5);
        let mut flows: [FlowStats; FLOWS] = core::array::from_fn(|_| FlowStats::new());
        for _ in 0..10_000 {
            let u = FlowUpdate::random(&mut rng);
            assert!((64..=1463).contains(&u.bytes));
            assert!(u.flag.is_power_of_two() && u.flag < 1 << 8);
            flows[u.flow()].apply(u);
        }
        assert_eq!(flows.iter().map(FlowStats::ops).sum::<u64>(), 10_000);
        // Flow 0 takes 5/8 of the updates.
        assert!(
            (5_900..6_600).contains(&flows[0].ops()),
            "{}",
            flows[0].ops()
        );
        assert!(flows.iter().all(|f| f.used == f.ops && f.packets == f.ops));
    }
}
