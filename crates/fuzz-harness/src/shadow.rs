//! What each sector of each disk may hold, given the writes sent so far: the oracle for "no data
//! the driver reports as good that is not".
//!
//! Every sector starts with a pattern of its own (so a read that returns the port's zero-filled
//! buffer is never mistaken for data) and every WRITE carries a pattern unique to it, sector by
//! sector. A sector's *candidates* are the contents it may have now:
//!
//! - a WRITE adds its content to the candidates of the sectors of its CDB's range that its
//!   buffer covers when it is submitted (from then on the device may have written it);
//! - a WRITE whose buffer covers whole sectors past its CDB's range (its *beyond* sectors)
//!   adds its content to theirs too, but only while the driver may not know the target's block
//!   size: see below;
//! - a WRITE that completes with `SRB_STATUS_SUCCESS` narrows its sectors to its own content and
//!   that of every other WRITE whose lifetime overlapped it (either may have landed last);
//! - a WRITE that fails leaves its content among the candidates (it may have landed or not);
//! - a WRITE's beyond sectors lose its content again when it ends `SRB_STATUS_SUCCESS` (the
//!   judge holds a success to the CDB's bytes) or with a status the driver gives before the
//!   device sees the request ([`WriteEnd::Refused`]);
//! - a command the oracle does not model that may write the medium (a raw CDB) makes the whole
//!   target unknown until the next [`Shadow::resync`].
//!
//! **Beyond sectors.** Before the driver has learned a target's block size it cannot tell a
//! buffer longer than the CDB's blocks from blocks of another size: a buffer that holds a whole
//! number of blocks of a plausible size (a multiple of 512 up to 64 KiB) is sent whole
//! (driver/device.rs `plan_any`). QEMU's PVSCSI then transfers the whole buffer, in whole blocks
//! from the CDB's LBA, past the CDB's range (up to the end of the medium), and reports the
//! residual as DATARUN (shared/reference/pvscsi-facts.md §6.3; the device model,
//! crates/scsiport-sim/src/disk/block.rs `transfer_blocks`, does the same); the driver reports
//! that as `SRB_STATUS_DATA_OVERRUN`. So a WRITE of one block with a 1,024-byte buffer may write
//! the next sector too. The driver learns the block size from a READ CAPACITY(10)/(16) that
//! completes `SUCCESS` or `DATA_OVERRUN` with a buffer holding the block length (driver/device.rs
//! `learn_from`) and forgets it at a MODE SELECT that does. Once it knows, it sends only the CDB's
//! blocks and the device writes nothing past them: the beyond sectors of a WRITE submitted then
//! are not believed, so a driver that sent the whole buffer anyway is caught. The oracle follows
//! what the driver may know conservatively ([`Shadow::capacity_submitted`],
//! [`Shadow::mode_select_submitted`]): known only from the completion of a READ CAPACITY no MODE
//! SELECT raced with, and only for WRITEs submitted after it; unknown from the submission of a
//! MODE SELECT on, also for the WRITEs still in flight then (the port may start them only after
//! it).
//!
//! A READ is right when each sector it returns is among the candidates the sector had at any
//! moment of the READ's life: those at its submission plus every WRITE submitted since (and the
//! beyond sectors of every WRITE that became candidates since). When the machine is idle,
//! [`Shadow::resync`] compares the medium itself with the candidates (a lost write, a write to
//! the wrong blocks, a late DMA) and starts again from what it holds.

use std::collections::BTreeMap;
use std::ops::Range;

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
    /// Sectors of the CDB's range whose candidates it adds to (those its buffer covers
    /// completely).
    lbas: Range<u64>,
    /// Sectors past the CDB's range that its buffer covers completely, up to the end of the
    /// disk: what the device writes when the driver sends the buffer whole.
    beyond: Range<u64>,
    /// When the `beyond` sectors became candidates; `None` while they are not (the driver knew
    /// the block size) or no longer (the WRITE never reached the device).
    beyond_since: Option<u64>,
    generation: u32,
    submitted: u64,
    completed: Option<u64>,
}

impl Write {
    /// Whether its content is among the candidates of sector `lba` (as far as it goes).
    fn covers(&self, lba: u64) -> bool {
        self.lbas.contains(&lba) || (self.beyond_since.is_some() && self.beyond.contains(&lba))
    }
}

/// How a WRITE ended, for [`Shadow::write_completed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteEnd {
    /// `SRB_STATUS_SUCCESS` with its full length.
    Success,
    /// A status only the driver gives, before the device has seen the request
    /// (`SRB_STATUS_INVALID_REQUEST`, `INVALID_PATH_ID`, `INVALID_TARGET_ID`): nothing of it
    /// reached the medium. Its beyond sectors are dropped; its CDB's sectors keep it, as for
    /// [`Self::Failed`].
    Refused,
    /// Any other status: it may have landed, whole or in part.
    Failed,
}

/// What the driver may know of a target's block size (see the module documentation).
#[derive(Clone, Copy, Debug, Default)]
struct BlockSize {
    /// A READ CAPACITY taught it, and no MODE SELECT was submitted since.
    known: bool,
    /// MODE SELECTs submitted to the target so far.
    forgets: u64,
    /// Those of them not completed yet.
    forgets_pending: u64,
}

/// A READ CAPACITY in flight, for [`Shadow::capacity_completed`].
#[derive(Clone, Copy, Debug)]
pub struct CapacityToken {
    target: u8,
    /// [`BlockSize::forgets`] at its submission.
    forgets: u64,
    /// No MODE SELECT to the target was in flight at its submission.
    clean: bool,
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
    /// Per target: what the driver may know of its block size.
    sizes: BTreeMap<u8, BlockSize>,
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

    /// A WRITE of `len` bytes of `generation`'s patterns to `target` from `lba`, of `cdb_blocks`
    /// blocks as its CDB says, is submitted as request `id`: from now on the device may have
    /// written them to every sector of the CDB's range its buffer fully covers.
    ///
    /// The sectors past the CDB's range its buffer fully covers (up to the end of the disk) may
    /// hold them from now on only while the driver may not know the target's block size
    /// ([`Self::block_size_known`]): it then sends a buffer of whole blocks of a plausible size
    /// whole (driver/device.rs `plan_any`), and QEMU writes all of it (pvscsi-facts.md §6.3).
    /// Once the driver knows the size it sends the CDB's bytes alone, so a write past them is
    /// the driver's error, which [`Self::resync`] then finds.
    pub fn write_submitted(&mut self, id: u64, target: u8, lba: u64, cdb_blocks: u64, len: usize, generation: u32) {
        let now = self.tick();
        let whole = !self.block_size_known(target);
        let Some(disk) = self.disks.get_mut(&target) else { return };
        let covered = lba.saturating_add((len / SECTOR) as u64).min(disk.len() as u64);
        let cdb_end = lba.saturating_add(cdb_blocks).min(covered);
        let lbas = lba.min(cdb_end)..cdb_end;
        let beyond = cdb_end..covered;
        add(disk, lbas.clone(), generation);
        if whole {
            add(disk, beyond.clone(), generation);
        }
        self.writes.insert(id, Write { target, lbas, beyond, beyond_since: whole.then_some(now), generation, submitted: now, completed: None });
    }

    /// Request `id` (a WRITE) completed, as `end` says.
    pub fn write_completed(&mut self, id: u64, end: WriteEnd) {
        let now = self.tick();
        let Some(w) = self.writes.get_mut(&id) else { return };
        w.completed = Some(now);
        let w = w.clone();
        if end == WriteEnd::Success {
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
                    if o.covers(l) {
                        cell.push(Content::Pattern(o.generation));
                    }
                }
                if let Some(c) = disk.get_mut(usize::try_from(l).unwrap_or(usize::MAX)) {
                    *c = cell;
                }
            }
        }
        if end != WriteEnd::Failed && w.beyond_since.is_some() {
            // A success moved the CDB's bytes alone (the judge holds it to that), and a refused
            // request moved nothing.
            if let Some(disk) = self.disks.get_mut(&w.target) {
                for l in w.beyond.clone() {
                    if let Some(c) = disk.get_mut(usize::try_from(l).unwrap_or(usize::MAX)) {
                        c.retain(|c| *c != Content::Pattern(w.generation));
                    }
                }
            }
            if let Some(w) = self.writes.get_mut(&id) {
                w.beyond_since = None;
            }
        }
    }

    /// Whether the driver surely knows `target`'s block size, for a request submitted now.
    #[must_use]
    pub fn block_size_known(&self, target: u8) -> bool {
        self.sizes.get(&target).is_some_and(|s| s.known)
    }

    /// A READ CAPACITY(10)/(16) to `target` (LUN 0, bus 0) is submitted.
    #[must_use]
    pub fn capacity_submitted(&self, target: u8) -> CapacityToken {
        let s = self.sizes.get(&target).copied().unwrap_or_default();
        CapacityToken { target, forgets: s.forgets, clean: s.forgets_pending == 0 }
    }

    /// The READ CAPACITY of `token` completed; `learned`: as the driver learns from it
    /// (`SUCCESS` or `DATA_OVERRUN`, and its buffer holds a plausible block length). The block
    /// size is known from now on, unless a MODE SELECT to the target was in flight at any
    /// moment of the READ CAPACITY's life: the driver may have met their completions in either
    /// order.
    pub fn capacity_completed(&mut self, token: CapacityToken, learned: bool) {
        let s = self.sizes.entry(token.target).or_default();
        if learned && token.clean && s.forgets == token.forgets {
            s.known = true;
        }
    }

    /// A MODE SELECT to `target` is submitted: the driver forgets the block size when it
    /// completes, and may plan the WRITEs still in flight only after that (the port may hold
    /// them), so from now on their beyond sectors may be written too.
    pub fn mode_select_submitted(&mut self, target: u8) {
        let now = self.tick();
        let s = self.sizes.entry(target).or_default();
        s.known = false;
        s.forgets += 1;
        s.forgets_pending += 1;
        let Some(disk) = self.disks.get_mut(&target) else { return };
        for w in self.writes.values_mut().filter(|w| w.target == target && w.completed.is_none() && w.beyond_since.is_none()) {
            w.beyond_since = Some(now);
            add(disk, w.beyond.clone(), w.generation);
        }
    }

    /// A MODE SELECT to `target` completed.
    pub fn mode_select_completed(&mut self, target: u8) {
        let s = self.sizes.entry(target).or_default();
        s.forgets_pending = s.forgets_pending.saturating_sub(1);
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
                .filter(|w| {
                    w.target == token.target
                        && ((w.submitted > token.submitted && w.lbas.contains(&lba))
                            || (w.beyond_since.is_some_and(|t| t > token.submitted) && w.beyond.contains(&lba)))
                })
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

/// Adds `generation` to the candidates of the sectors `lbas` of `disk`.
fn add(disk: &mut [Vec<Content>], lbas: Range<u64>, generation: u32) {
    for l in lbas {
        if let Some(cell) = disk.get_mut(usize::try_from(l).unwrap_or(usize::MAX)) {
            cell.push(Content::Pattern(generation));
        }
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
        s.write_completed(1, WriteEnd::Success);
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
        s.write_completed(1, WriteEnd::Success);
        s.write_completed(2, WriteEnd::Success);
        let r = s.read_submitted(0, 0, 3);
        assert!(s.check_read(&r, &[pattern(0, 0, a), pattern(0, 1, a), pattern(0, 2, b)].concat()).is_ok());
        assert!(s.check_read(&r, &[pattern(0, 0, a), pattern(0, 1, b), pattern(0, 2, b)].concat()).is_ok());
        assert!(s.check_read(&r, &[pattern(0, 0, 0), pattern(0, 1, b), pattern(0, 2, b)].concat()).is_err());
        s.write_submitted(3, 0, 5, 1, SECTOR, c);
        s.write_completed(3, WriteEnd::Failed);
        let mut medium: Vec<u8> = (0..8).flat_map(|l| pattern(0, l, 0)).collect();
        medium[..SECTOR].copy_from_slice(&pattern(0, 0, a));
        medium[SECTOR..2 * SECTOR].copy_from_slice(&pattern(0, 1, b));
        medium[2 * SECTOR..3 * SECTOR].copy_from_slice(&pattern(0, 2, b));
        assert!(s.resync(0, &medium).is_ok(), "the failed write did not land");
        s.write_submitted(4, 0, 5, 1, SECTOR, c);
        s.write_completed(4, WriteEnd::Failed);
        medium[5 * SECTOR..6 * SECTOR].copy_from_slice(&pattern(0, 5, c));
        assert!(s.resync(0, &medium).is_ok(), "the failed write landed");
        medium[7 * SECTOR..].copy_from_slice(&pattern(0, 5, c));
        assert!(s.resync(0, &medium).is_err(), "a write landed on the wrong sector");
    }

    /// The driver learned the block size of target 0 from a READ CAPACITY.
    fn teach(s: &mut Shadow) {
        let t = s.capacity_submitted(0);
        s.capacity_completed(t, true);
        assert!(s.block_size_known(0));
    }

    fn initial(blocks: u64) -> Vec<u8> {
        (0..blocks).flat_map(|l| pattern(0, l, 0)).collect()
    }

    #[test]
    fn writes_past_the_cdb_or_the_buffer_are_not_believed() {
        let mut s = Shadow::default();
        s.add_disk(0, 8);
        let g = s.generation();
        // A buffer of 3 sectors for a CDB of 2, reported a success (the judge holds a success to
        // the CDB's length): the third must not change, block size known or not.
        s.write_submitted(1, 0, 0, 2, 3 * SECTOR, g);
        s.write_completed(1, WriteEnd::Success);
        let mut medium = initial(8);
        medium[..3 * SECTOR].copy_from_slice(&patterns(0, 0, 3 * SECTOR, g));
        assert!(s.resync(0, &medium).is_err());
        // With the block size known the driver sends the CDB's bytes alone: a WRITE that ends
        // DATA_OVERRUN (any status but a success) must not have written past them either.
        teach(&mut s);
        let medium = initial(8);
        assert!(s.resync(0, &medium).is_err(), "the medium the first case left is not this one");
        let g = s.generation();
        let r = s.read_submitted(0, 4, 1);
        s.write_submitted(2, 0, 3, 1, 2 * SECTOR, g);
        assert!(s.check_read(&r, &pattern(0, 4, g)).is_err(), "a READ meets a write past the CDB");
        s.write_completed(2, WriteEnd::Failed);
        let after = s.read_submitted(0, 4, 1);
        assert!(s.check_read(&after, &pattern(0, 4, g)).is_err());
        let mut medium = initial(8);
        medium[3 * SECTOR..5 * SECTOR].copy_from_slice(&patterns(0, 3, 2 * SECTOR, g));
        assert!(s.resync(0, &medium).is_err(), "a write past the CDB with the block size known");
        // A buffer of 1.5 sectors for a CDB of 2: the second sector is not the write's.
        let g = s.generation();
        s.write_submitted(3, 0, 0, 2, 3 * SECTOR / 2, g);
        s.write_completed(3, WriteEnd::Failed);
        let mut medium = initial(8);
        medium[..2 * SECTOR].copy_from_slice(&patterns(0, 0, 2 * SECTOR, g));
        assert!(s.resync(0, &medium).is_err(), "a sector the buffer does not cover");
    }

    #[test]
    fn before_the_block_size_is_known_a_write_may_fill_its_whole_buffer() {
        let mut s = Shadow::default();
        s.add_disk(0, 8);
        assert!(!s.block_size_known(0));
        let (a, b) = (s.generation(), s.generation());
        // One block at LBA 2 with two blocks' buffer; a READ of LBA 3 submitted before it sees
        // it; it ends DATA_OVERRUN (a status the device gave: it may have written both).
        let r = s.read_submitted(0, 3, 1);
        s.write_submitted(1, 0, 2, 1, 2 * SECTOR, a);
        assert!(s.check_read(&r, &pattern(0, 3, a)).is_ok());
        assert!(s.check_read(&r, &pattern(0, 4, a)).is_err(), "LBA 4's data");
        // At the end of the disk the device stops at the last sector.
        s.write_submitted(2, 0, 7, 1, 4 * SECTOR, b);
        s.write_completed(1, WriteEnd::Failed);
        s.write_completed(2, WriteEnd::Failed);
        let r = s.read_submitted(0, 3, 1);
        assert!(s.check_read(&r, &pattern(0, 3, a)).is_ok());
        assert!(s.check_read(&r, &pattern(0, 3, 0)).is_ok(), "or not");
        let mut medium = initial(8);
        medium[2 * SECTOR..4 * SECTOR].copy_from_slice(&patterns(0, 2, 2 * SECTOR, a));
        medium[7 * SECTOR..].copy_from_slice(&pattern(0, 7, b));
        assert!(s.resync(0, &medium).is_ok());
        // Only whole sectors: a buffer of 1.5 blocks covers none past the CDB.
        let c = s.generation();
        s.write_submitted(3, 0, 0, 1, 3 * SECTOR / 2, c);
        s.write_completed(3, WriteEnd::Failed);
        let mut bad = medium.clone();
        bad[..2 * SECTOR].copy_from_slice(&patterns(0, 0, 2 * SECTOR, c));
        assert!(s.resync(0, &bad).is_err());
    }

    #[test]
    fn a_success_keeps_what_an_overlapping_write_sent_whole_may_have_put_there() {
        let mut s = Shadow::default();
        s.add_disk(0, 8);
        let (a, b) = (s.generation(), s.generation());
        s.write_submitted(1, 0, 0, 1, 2 * SECTOR, a);
        s.write_submitted(2, 0, 1, 1, SECTOR, b);
        s.write_completed(2, WriteEnd::Success);
        s.write_completed(1, WriteEnd::Failed);
        let mut medium = initial(8);
        medium[..2 * SECTOR].copy_from_slice(&patterns(0, 0, 2 * SECTOR, a));
        assert!(s.resync(0, &medium).is_ok(), "the first landed last");
    }

    #[test]
    fn a_refused_write_wrote_nothing_past_its_cdb() {
        for end in [WriteEnd::Refused, WriteEnd::Success] {
            let mut s = Shadow::default();
            s.add_disk(0, 8);
            let g = s.generation();
            let before = s.read_submitted(0, 5, 1);
            s.write_submitted(1, 0, 4, 1, 2 * SECTOR, g);
            s.write_completed(1, end);
            assert!(s.check_read(&before, &pattern(0, 5, g)).is_err(), "{end:?}");
            let after = s.read_submitted(0, 5, 1);
            assert!(s.check_read(&after, &pattern(0, 5, g)).is_err(), "{end:?}");
            assert!(s.check_read(&after, &pattern(0, 5, 0)).is_ok(), "{end:?}");
            let mut medium = initial(8);
            medium[5 * SECTOR..6 * SECTOR].copy_from_slice(&pattern(0, 5, g));
            assert!(s.resync(0, &medium).is_err(), "{end:?}");
        }
    }

    #[test]
    fn the_block_size_is_known_after_read_capacity_until_mode_select() {
        let mut s = Shadow::default();
        s.add_disk(0, 8);
        s.add_disk(1, 8);
        // An answer the driver cannot learn from teaches nothing.
        let t = s.capacity_submitted(0);
        s.capacity_completed(t, false);
        assert!(!s.block_size_known(0));
        teach(&mut s);
        assert!(!s.block_size_known(1), "per target");
        // Known: a WRITE in flight when a MODE SELECT is submitted may be planned after it
        // completes, and then sent whole.
        let g = s.generation();
        s.write_submitted(1, 0, 2, 1, 2 * SECTOR, g);
        let r = s.read_submitted(0, 3, 1);
        assert!(s.check_read(&r, &pattern(0, 3, g)).is_err());
        s.mode_select_submitted(0);
        assert!(!s.block_size_known(0));
        assert!(s.check_read(&r, &pattern(0, 3, g)).is_ok());
        s.write_completed(1, WriteEnd::Failed);
        let mut medium = initial(8);
        medium[2 * SECTOR..4 * SECTOR].copy_from_slice(&patterns(0, 2, 2 * SECTOR, g));
        assert!(s.resync(0, &medium).is_ok());
        // A READ CAPACITY submitted while the MODE SELECT is in flight may complete first.
        let t = s.capacity_submitted(0);
        s.capacity_completed(t, true);
        assert!(!s.block_size_known(0));
        // One a MODE SELECT is submitted during the life of, too.
        s.mode_select_completed(0);
        let t = s.capacity_submitted(0);
        s.mode_select_submitted(0);
        s.mode_select_completed(0);
        s.capacity_completed(t, true);
        assert!(!s.block_size_known(0));
        // With no MODE SELECT in its life, it teaches.
        teach(&mut s);
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
