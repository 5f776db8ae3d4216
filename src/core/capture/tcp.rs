//! TCP reassembly for one direction of one connection, without I/O.
//!
//! Segments arrive in capture order: retransmitted, duplicated, overlapping,
//! out of order, or after a gap. [`HalfStream::push`] returns the bytes that have
//! just become contiguous; [`HalfStream::skip_gap`] gives up on missing bytes and
//! resumes at the next segment held, recording the gap. A stream whose SYN was not
//! captured starts at the first segment seen.

use std::collections::BTreeMap;

/// Bytes held out of order per direction before new ones are dropped.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

/// A hole in the reassembled stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Stream offset where the missing bytes start.
    pub at: u64,
    /// How many bytes are missing.
    pub len: u64,
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct HalfStream {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    /// Next offset to deliver.
    next: u64,
    /// Segments ahead of `next`, by offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Holes skipped so far.
    pub gaps: Vec<Gap>,
    /// Segments dropped because they fell before the first byte seen (mid-stream starts).
    pub before_start: u64,
    /// Bytes dropped because too much was held out of order.
    pub overflow: u64,
    /// A SYN was seen.
    pub saw_syn: bool,
    /// FIN or RST was seen.
    pub closed: bool,
}

impl HalfStream {
    /// Offset of the next byte to deliver (= bytes delivered plus gaps).
    pub fn offset(&self) -> u64 {
        self.next
    }

    /// True when bytes are held beyond a hole.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Take a segment; append newly contiguous bytes to `out`.
    pub fn push(&mut self, seq: u32, syn: bool, payload: &[u8], out: &mut Vec<u8>) {
        if syn {
            self.saw_syn = true;
            // The SYN consumes one sequence number; data starts after it. A SYN seen
            // after data (odd captures) re-bases only if nothing was delivered.
            if self.base.is_none() || self.next == 0 {
                self.base = Some(seq.wrapping_add(1));
            }
            if payload.is_empty() {
                return;
            }
        }
        if payload.is_empty() {
            return;
        }
        let base = *self.base.get_or_insert(seq);
        let rel = seq.wrapping_sub(base);
        if rel >= 1 << 31 {
            // Before the first byte we saw: the capture started mid-stream.
            self.before_start += 1;
            return;
        }
        let start = u64::from(rel) + self.wrap_epoch(rel);
        self.insert(start, payload, out);
    }

    /// Offsets past 4 GiB: sequence numbers wrap; streams that long are beyond
    /// what a handshake needs, so offsets are kept within the current 4 GiB window.
    fn wrap_epoch(&self, rel: u32) -> u64 {
        let epoch = self.next & !0xffff_ffff;
        let candidate = epoch + u64::from(rel);
        if candidate + (1 << 31) < self.next {
            epoch + (1 << 32)
        } else {
            epoch
        }
    }

    fn insert(&mut self, start: u64, payload: &[u8], out: &mut Vec<u8>) {
        let end = start + payload.len() as u64;
        if end <= self.next {
            return; // retransmission of delivered bytes
        }
        if start <= self.next {
            let skip = (self.next - start) as usize;
            out.extend_from_slice(&payload[skip..]);
            self.next = end;
            self.drain(out);
            return;
        }
        if self.pending_bytes + payload.len() > MAX_PENDING {
            self.overflow += payload.len() as u64;
            return;
        }
        let keep = match self.pending.get(&start) {
            Some(existing) => existing.len() < payload.len(),
            None => true,
        };
        if keep {
            if let Some(old) = self.pending.insert(start, payload.to_vec()) {
                self.pending_bytes -= old.len();
            }
            self.pending_bytes += payload.len();
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        while let Some((&start, _)) = self.pending.first_key_value() {
            if start > self.next {
                break;
            }
            let Some((_, data)) = self.pending.pop_first() else {
                break;
            };
            self.pending_bytes -= data.len();
            let end = start + data.len() as u64;
            if end > self.next {
                let skip = (self.next - start) as usize;
                out.extend_from_slice(&data[skip..]);
                self.next = end;
            }
        }
    }

    /// Give up on the hole before the next held segment: record it, deliver what
    /// follows. Returns the gap, or `None` when nothing is held.
    pub fn skip_gap(&mut self, out: &mut Vec<u8>) -> Option<Gap> {
        let (&start, _) = self.pending.first_key_value()?;
        let gap = Gap {
            at: self.next,
            len: start - self.next,
        };
        self.gaps.push(gap);
        self.next = start;
        self.drain(out);
        Some(gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(h: &mut HalfStream, seq: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        h.push(seq, false, data, &mut out);
        out
    }

    #[test]
    fn in_order_retransmit_overlap_out_of_order() {
        let mut h = HalfStream::default();
        let mut out = Vec::new();
        h.push(999, true, b"", &mut out);
        assert_eq!(feed(&mut h, 1000, b"abc"), b"abc");
        assert_eq!(feed(&mut h, 1000, b"abc"), b"", "retransmission");
        assert_eq!(feed(&mut h, 1006, b"ghi"), b"", "ahead: held");
        assert_eq!(
            feed(&mut h, 1002, b"cdef"),
            b"defghi",
            "overlap then the held bytes"
        );
        assert_eq!(h.offset(), 9);
    }

    #[test]
    fn gaps_are_skipped_and_recorded() {
        let mut h = HalfStream::default();
        feed(&mut h, 5000, b"hello");
        feed(&mut h, 5010, b"world");
        let mut out = Vec::new();
        let gap = h.skip_gap(&mut out).unwrap();
        assert_eq!(gap, Gap { at: 5, len: 5 });
        assert_eq!(out, b"world");
        assert!(h.skip_gap(&mut out).is_none());
    }

    #[test]
    fn midstream_start_and_wraparound() {
        let mut h = HalfStream::default();
        assert_eq!(feed(&mut h, u32::MAX - 1, b"ab"), b"ab");
        assert_eq!(feed(&mut h, 0, b"cd"), b"cd", "sequence numbers wrap");
        assert_eq!(
            feed(&mut h, u32::MAX - 10, b"zz"),
            b"",
            "before the first byte seen"
        );
        assert_eq!(h.before_start, 1);
    }

    #[test]
    fn any_segment_order_gives_the_same_stream() {
        let data: Vec<u8> = (0..200u8).collect();
        let chunks: Vec<(u32, &[u8])> = data
            .chunks(17)
            .enumerate()
            .map(|(i, c)| (100 + (i * 17) as u32, c))
            .collect();
        for rotation in 0..chunks.len() {
            let mut h = HalfStream::default();
            let mut out = Vec::new();
            h.push(99, true, b"", &mut out);
            let mut order = chunks.clone();
            order.rotate_left(rotation);
            let last = order.len() - 1;
            order.swap(0, last);
            for (seq, c) in &order {
                h.push(*seq, false, c, &mut out);
            }
            assert_eq!(out, data, "rotation {rotation}");
        }
    }

    /// A small deterministic generator (xorshift64*), so that every run tries
    /// the same cases and a failure names its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// Property: whatever the segment order, duplication or overlap, the bytes
    /// delivered are the bytes sent, once, in order (sequence numbers wrapping
    /// through zero included).
    #[test]
    fn any_order_duplication_or_overlap_gives_the_same_bytes() {
        for seed in 1..=400u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let len = 1 + rng.below(6000) as usize;
            let stream: Vec<u8> = (0..len).map(|i| (i * 31 + seed as usize) as u8).collect();
            // Segments that cover the stream, then copies of random overlapping slices.
            let mut segments: Vec<(usize, usize)> = Vec::new();
            let mut at = 0;
            while at < len {
                let n = 1 + rng.below(1500) as usize;
                segments.push((at, (at + n).min(len)));
                at += n;
            }
            for _ in 0..rng.below(20) {
                let a = rng.below(len as u64) as usize;
                let b = (a + 1 + rng.below(3000) as usize).min(len);
                segments.push((a, b));
            }
            // Shuffle (Fisher-Yates).
            for i in (1..segments.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                segments.swap(i, j);
            }
            let isn = (rng.next() as u32).wrapping_sub(2000); // near the wrap for some seeds
            let mut h = HalfStream::default();
            let mut out = Vec::new();
            h.push(isn, true, b"", &mut out);
            for (a, b) in &segments {
                let seq = isn.wrapping_add(1).wrapping_add(*a as u32);
                h.push(seq, false, &stream[*a..*b], &mut out);
            }
            assert_eq!(out.len(), stream.len(), "seed {seed}");
            assert!(out == stream, "seed {seed}: bytes differ");
            assert!(!h.has_pending() && h.gaps.is_empty(), "seed {seed}");
        }
    }
}
