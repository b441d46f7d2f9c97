//! What each sector of each disk may hold, given the writes sent so far: the oracle for "no data
//! the driver reports as good that is not".
//!
//! Every sector starts with a pattern of its own (so a read that returns the port's zero-filled
//! buffer is never mistaken for data) and every WRITE carries a pattern unique to it, sector by
//! sector. A sector's *candidates* are the contents it may have now:
//!
//! - a WRITE adds its content to the candidates of the sectors it covers when it is submitted
//!   (from then on the device may have written it);
//! - a WRITE that completes with `SRB_STATUS_SUCCESS` narrows its sectors to its own content and
//!   that of every other WRITE whose lifetime overlapped it (either may have landed last);
//! - a WRITE that fails leaves its content among the candidates (it may have landed or not);
//! - a command the oracle does not model that may write the medium (a raw CDB) makes the whole
//!   target unknown until the next [`Shadow::resync`].
//!
//! A READ is right when each sector it returns is among the candidates the sector had at any
//! moment of the READ's life: those at its submission plus every WRITE submitted since. When
//! the machine is idle, [`Shadow::resync`] compares the medium itself with the candidates (a
//! lost write, a write to the wrong blocks, a late DMA) and starts again from what it holds.

use std::collections::BTreeMap;

/// Bytes per sector of the virtual disks.
pub const SECTOR: usize = 512;

/// A sector's worth of recognisable data: target, LBA and a generation (0: the initial
/// contents; each WRITE has its own).
#[must_use]
pub fn pattern(target: u8, lba: u64, generation: u32) -> [u8; SECTOR] {
    let mut out = [0u8; SECTOR];
    let mut x = lba.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(target) << 56) ^ (u64::from(generation) << 20) ^ 0x5151;
    for chunk in out.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    out[..8].copy_from_slice(&lba.to_le_bytes());
    out[8] = target;
    out[9..13].copy_from_slice(&generation.to_le_bytes());
    out
}

/// `len` bytes of the patterns of `generation` from `lba` on (the last sector cut short).
#[must_use]
pub fn patterns(target: u8, lba: u64, len: usize, generation: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut l = lba;
    while out.len() < len {
        let p = pattern(target, l, generation);
        let n = (len - out.len()).min(SECTOR);
        out.extend_from_slice(&p[..n]);
        l = l.wrapping_add(1);
    }
    out
}

/// What a sector may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Content {
    /// The pattern of a generation.
    Pattern(u32),
    /// Bytes read from the medium at a resync that were no pattern (after a raw command).
    Bytes(Box<[u8]>),
}

impl Content {
    fn matches(&self, target: u8, lba: u64, data: &[u8]) -> bool {
        match self {
            Self::Pattern(g) => pattern(target, lba, *g).get(..data.len()) == Some(data),
            Self::Bytes(b) => b.get(..data.len()) == Some(data),
        }
    }
}

/// A WRITE the oracle follows.
#[derive(Clone, Debug)]
struct Write {
    target: u8,
    /// Sectors whose candidates it adds to (those its buffer covers completely).
    lbas: std::ops::Range<u64>,
    generation: u32,
    submitted: u64,
    completed: Option<u64>,
}

/// A READ in flight: the candidates of its sectors at submission.
#[derive(Clone, Debug)]
pub struct ReadToken {
    target: u8,
    lba: u64,
    submitted: u64,
    at_submission: Vec<Vec<Content>>,
}

/// The oracle of one machine's disks.
#[derive(Debug, Default)]
pub struct Shadow {
    /// Per target: the candidates of each sector.
    disks: BTreeMap<u8, Vec<Vec<Content>>>,
    /// Targets a raw command may have written since the last resync.
    unknown: BTreeMap<u8, bool>,
    writes: BTreeMap<u64, Write>,
    clock: u64,
    next_generation: u32,
}

impl Shadow {
    /// Follows a disk of `blocks` sectors at `target`, holding the generation-0 patterns.
    pub fn add_disk(&mut self, target: u8, blocks: u64) {
        let blocks = usize::try_from(blocks).unwrap_or(0);
        self.disks.insert(target, vec![vec![Content::Pattern(0)]; blocks]);
        self.unknown.insert(target, false);
        self.next_generation = self.next_generation.max(1);
    }

    /// The blocks of the disk at `target`, if there is one.
    #[must_use]
    pub fn blocks(&self, target: u8) -> Option<u64> {
        self.disks.get(&target).map(|d| d.len() as u64)
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// A fresh generation for a WRITE's data.
    pub fn generation(&mut self) -> u32 {
        let g = self.next_generation.max(1);
        self.next_generation = g.wrapping_add(1);
        g
    }

    /// A WRITE of `len` bytes of `generation`'s patterns to `target` from `lba` is submitted as
    /// request `id`: every sector of the disk its buffer fully covers may hold them from now on.
    /// (Sectors past the CDB's range are covered too: a driver that sends more than the CDB
    /// asks for writes them, and [`Self::resync`] then finds that no write the oracle believes
    /// in put that there.) `cdb_blocks` limits what it may write.
    pub fn write_submitted(&mut self, id: u64, target: u8, lba: u64, cdb_blocks: u64, len: usize, generation: u32) {
        let now = self.tick();
        let Some(disk) = self.disks.get_mut(&target) else { return };
        let full = (len / SECTOR) as u64;
        let end = lba.saturating_add(full.min(cdb_blocks)).min(disk.len() as u64);
        let lbas = lba.min(end)..end;
        for l in lbas.clone() {
            if let Some(cell) = disk.get_mut(usize::try_from(l).unwrap_or(usize::MAX)) {
                cell.push(Content::Pattern(generation));
            }
        }
        self.writes.insert(id, Write { target, lbas, generation, submitted: now, completed: None });
    }

    /// Request `id` (a WRITE) completed; `success`: with `SRB_STATUS_SUCCESS` and its full length.
    pub fn write_completed(&mut self, id: u64, success: bool) {
        let now = self.tick();
        let Some(w) = self.writes.get_mut(&id) else { return };
        w.completed = Some(now);
        if !success {
            return;
        }
        let w = w.clone();
        let overlapping: Vec<&Write> = self
            .writes
            .iter()
            .filter(|(other, o)| **other != id && o.target == w.target && o.completed.is_none_or(|c| c > w.submitted))
            .map(|(_, o)| o)
            .collect();
        let Some(disk) = self.disks.get_mut(&w.target) else { return };
        for l in w.lbas.clone() {
            let mut cell = vec![Content::Pattern(w.generation)];
            for o in &overlapping {
                if o.lbas.contains(&l) {
                    cell.push(Content::Pattern(o.generation));
                }
            }
            if let Some(c) = disk.get_mut(usize::try_from(l).unwrap_or(usize::MAX)) {
                *c = cell;
            }
        }
    }

    /// A command that may write `target` in ways the oracle does not follow was submitted.
    pub fn unknown_write(&mut self, target: u8) {
        if let Some(u) = self.unknown.get_mut(&target) {
            *u = true;
        }
    }

    /// A READ of `target` from `lba` is submitted: what its sectors may hold now.
    #[must_use]
    pub fn read_submitted(&mut self, target: u8, lba: u64, blocks: u64) -> ReadToken {
        let now = self.tick();
        let at_submission = self.disks.get(&target).map_or_else(Vec::new, |disk| {
            (lba..lba.saturating_add(blocks))
                .map(|l| usize::try_from(l).ok().and_then(|i| disk.get(i)).cloned().unwrap_or_default())
                .collect()
        });
        ReadToken { target, lba, submitted: now, at_submission }
    }

    /// A READ reported `data` as good (the bytes the driver says were transferred). Returns the
    /// first sector that holds something no WRITE can have put there, with a description.
    pub fn check_read(&mut self, token: &ReadToken, data: &[u8]) -> Result<(), String> {
        self.tick();
        if self.unknown.get(&token.target).copied().unwrap_or(true) {
            return Ok(());
        }
        for (i, chunk) in data.chunks(SECTOR).enumerate() {
            let lba = token.lba.saturating_add(i as u64);
            let mut candidates: Vec<&Content> = token.at_submission.get(i).map(|c| c.iter().collect()).unwrap_or_default();
            let later: Vec<Content> = self
                .writes
                .values()
                .filter(|w| w.target == token.target && w.submitted > token.submitted && w.lbas.contains(&lba))
                .map(|w| Content::Pattern(w.generation))
                .collect();
            candidates.extend(later.iter());
            if candidates.is_empty() {
                return Err(format!("sector {lba} of target {} (outside the disk) reported as read", token.target));
            }
            if !candidates.iter().any(|c| c.matches(token.target, lba, chunk)) {
                return Err(format!(
                    "target {} LBA {lba}: the data reported as read is none of what the sector can hold ({}; got {})",
                    token.target,
                    describe(&candidates),
                    describe_data(token.target, lba, chunk)
                ));
            }
        }
        Ok(())
    }

    /// With nothing in flight: every sector of the medium must hold one of its candidates
    /// (unless a raw command may have written it); then the medium is what the oracle starts
    /// from again.
    pub fn resync(&mut self, target: u8, medium: &[u8]) -> Result<(), String> {
        let unknown = self.unknown.get(&target).copied().unwrap_or(true);
        let Some(disk) = self.disks.get_mut(&target) else { return Ok(()) };
        let mut first_error = None;
        for (i, (cell, chunk)) in disk.iter_mut().zip(medium.chunks(SECTOR)).enumerate() {
            let lba = i as u64;
            if !unknown && first_error.is_none() && !cell.iter().any(|c| c.matches(target, lba, chunk)) {
                first_error = Some(format!(
                    "target {target} LBA {lba}: the medium holds something no write sent to it can have put there ({}; holds {})",
                    describe(&cell.iter().collect::<Vec<_>>()),
                    describe_data(target, lba, chunk)
                ));
            }
            let generation = u32::from_le_bytes(chunk.get(9..13).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
            *cell = vec![if pattern(target, lba, generation).as_slice() == chunk {
                Content::Pattern(generation)
            } else {
                Content::Bytes(chunk.into())
            }];
        }
        self.writes.retain(|_, w| w.target != target);
        if let Some(u) = self.unknown.get_mut(&target) {
            *u = false;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Targets followed.
    #[must_use]
    pub fn targets(&self) -> Vec<u8> {
        self.disks.keys().copied().collect()
    }
}

fn describe(candidates: &[&Content]) -> String {
    let list: Vec<String> = candidates
        .iter()
        .map(|c| match c {
            Content::Pattern(0) => "its initial contents".to_string(),
            Content::Pattern(g) => format!("write #{g}"),
            Content::Bytes(_) => "what a raw command left".to_string(),
        })
        .collect();
    format!("expected {}", list.join(" or "))
}

fn describe_data(target: u8, lba: u64, data: &[u8]) -> String {
    if data.iter().all(|b| *b == 0) {
        return "zeros".into();
    }
    let l = u64::from_le_bytes(data.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]));
    let t = data.get(8).copied().unwrap_or(0);
    let g = u32::from_le_bytes(data.get(9..13).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
    if pattern(t, l, g).get(..data.len()) == Some(data) {
        if (t, l) == (target, lba) { format!("write #{g}") } else { format!("target {t} LBA {l}'s write #{g}") }
    } else {
        format!("unrecognised bytes {:02x?}", &data[..data.len().min(16)])
    }
}

#[cfg(test)]
#[allow(clippy::many_single_char_names)] // generations a, b, c
mod tests {
    use super::*;

    #[test]
    fn a_read_sees_what_was_there_or_what_was_written_meanwhile() {
        let mut s = Shadow::default();
        s.add_disk(0, 8);
        let g = s.generation();
        let r = s.read_submitted(0, 2, 1);
        s.write_submitted(1, 0, 2, 1, SECTOR, g);
        assert!(s.check_read(&r, &pattern(0, 2, 0)).is_ok());
        assert!(s.check_read(&r, &pattern(0, 2, g)).is_ok());
        assert!(s.check_read(&r, &[0; SECTOR]).is_err(), "zeros are nothing the sector held");
        assert!(s.check_read(&r, &pattern(0, 3, 0)).is_err(), "another sector's data");
        assert!(s.check_read(&r, &pattern(1, 2, 0)).is_err(), "another disk's data");
        s.write_completed(1, true);
        let after = s.read_submitted(0, 2, 1);
        assert!(s.check_read(&after, &pattern(0, 2, 0)).is_err(), "a write reported done was lost");
        assert!(s.check_read(&after, &pattern(0, 2, g)[..100]).is_ok(), "a short read is checked on its bytes");
    }

    #[test]
    fn overlapping_writes_may_land_in_either_order_and_failed_ones_may_land() {
        let mut s = Shadow::default();
        s.add_disk(0, 8);
        let (a, b, c) = (s.generation(), s.generation(), s.generation());
        s.write_submitted(1, 0, 0, 2, 2 * SECTOR, a);
        s.write_submitted(2, 0, 1, 2, 2 * SECTOR, b);
        s.write_completed(1, true);
        s.write_completed(2, true);
        let r = s.read_submitted(0, 0, 3);
        assert!(s.check_read(&r, &[pattern(0, 0, a), pattern(0, 1, a), pattern(0, 2, b)].concat()).is_ok());
        assert!(s.check_read(&r, &[pattern(0, 0, a), pattern(0, 1, b), pattern(0, 2, b)].concat()).is_ok());
        assert!(s.check_read(&r, &[pattern(0, 0, 0), pattern(0, 1, b), pattern(0, 2, b)].concat()).is_err());
        s.write_submitted(3, 0, 5, 1, SECTOR, c);
        s.write_completed(3, false);
        let mut medium: Vec<u8> = (0..8).flat_map(|l| pattern(0, l, 0)).collect();
        medium[..SECTOR].copy_from_slice(&pattern(0, 0, a));
        medium[SECTOR..2 * SECTOR].copy_from_slice(&pattern(0, 1, b));
        medium[2 * SECTOR..3 * SECTOR].copy_from_slice(&pattern(0, 2, b));
        assert!(s.resync(0, &medium).is_ok(), "the failed write did not land");
        s.write_submitted(4, 0, 5, 1, SECTOR, c);
        s.write_completed(4, false);
        medium[5 * SECTOR..6 * SECTOR].copy_from_slice(&pattern(0, 5, c));
        assert!(s.resync(0, &medium).is_ok(), "the failed write landed");
        medium[7 * SECTOR..].copy_from_slice(&pattern(0, 5, c));
        assert!(s.resync(0, &medium).is_err(), "a write landed on the wrong sector");
    }

    #[test]
    fn writes_past_the_cdb_or_the_buffer_are_not_believed() {
        let mut s = Shadow::default();
        s.add_disk(0, 8);
        let g = s.generation();
        // A buffer of 3 sectors for a CDB of 2: the third must not change.
        s.write_submitted(1, 0, 0, 2, 3 * SECTOR, g);
        s.write_completed(1, true);
        let mut medium: Vec<u8> = (0..8).flat_map(|l| pattern(0, l, 0)).collect();
        medium[..3 * SECTOR].copy_from_slice(&patterns(0, 0, 3 * SECTOR, g));
        assert!(s.resync(0, &medium).is_err());
    }

    #[test]
    fn raw_commands_make_a_target_unknown_until_the_next_resync() {
        let mut s = Shadow::default();
        s.add_disk(0, 4);
        s.unknown_write(0);
        let r = s.read_submitted(0, 0, 1);
        assert!(s.check_read(&r, &[7; SECTOR]).is_ok());
        let medium = vec![7u8; 4 * SECTOR];
        assert!(s.resync(0, &medium).is_ok());
        let r = s.read_submitted(0, 0, 1);
        assert!(s.check_read(&r, &[7; SECTOR]).is_ok());
        assert!(s.check_read(&r, &pattern(0, 0, 0)).is_err());
    }
}
