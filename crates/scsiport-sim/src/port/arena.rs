//! Where SRB blocks come from, and how the memory monitor guards them without a system call per
//! request.
//!
//! An SRB block (the SRB's page, its SRB extension, its sense buffer and, on Storport, the room
//! for its `STOR_SCATTER_GATHER_LIST`) is a slot of a *run*:
//! [`RUN_SLOTS`] slots laid out one after the other in one CPU mapping ([`DmaSpan`]), each part
//! on pages of its own but the sense buffer, which is in the SRB's page at [`SENSE_AT`]: every
//! page of a run costs a page table entry's change each time the run is guarded and unguarded,
//! which was a tenth of a 4 KiB read's wall-clock time with the sense buffer on a page of its
//! own. The run's address range is registered with the fault handler once
//! (`GuardKind::SrbRun`), for its whole life; the port names the SRB and the part from the
//! faulting address ([`Arena::describe`]).
//!
//! A completed block is poisoned at once (`complete.rs`). Then it is either guarded at once, on
//! its own (one `mprotect`), or left for its run:
//! - at once: every completion of the full quarantine; every completion that is not a plain
//!   successful `EXECUTE_SCSI` (errors, aborts, resets, timeouts, `ScsiPortCompleteRequest`, the
//!   bus scan's commands: the paths where a stale SRB pointer lives); the first [`WARM_UP`]
//!   successful ones of each arena, so that a miniport that touches every SRB it completes is
//!   caught on its first I/Os; and one in [`SAMPLE`] of the rest;
//! - with its run: when the last block of a run whose slots have all been handed out completes,
//!   the poison of every block of the run not yet guarded is verified (a write between completion
//!   and now is reported, naming the SRB, as the fault would have) and the whole run is guarded
//!   with one `mprotect`. A block still outstanding when the next run fills too (a straggler) does
//!   not hold its run's completed blocks unguarded: they are verified and guarded around it, and
//!   it is guarded on its own when it completes.
//!
//! A guarded run is unguarded (one `mprotect`) when it is reused, which needs every block of it
//! back from the port's quarantine list (`QUARANTINE` completions after its completion) and at
//! least `QUARANTINE` completions since the run was guarded. Two runs are made when the arena is;
//! more only while stragglers hold runs. So steady I/O costs two `mprotect` calls per
//! [`RUN_SLOTS`] requests.
//!
//! What is given up against guarding every block at once: a late *read* of a block that is
//! waiting for its run (at most about `RUN_SLOTS` plus the queue depth completions) sees the
//! poison instead of faulting. A late write in that window is still caught, by the poison, and
//! every late access after it faults as before.
//!
//! The full quarantine (`VerifierConfig::quarantine_all`) takes its blocks from runs too, never
//! reused: a run goes when all its blocks have been released.

use scsiport_sys::SCSI_REQUEST_BLOCK;

use crate::guard::{self, GuardHandle, GuardKind};
use crate::mem::{DmaRegion, DmaSpan, Layout, PAGE_SIZE};

use super::{Adapter, AdapterSt, MachineCore, POISON, QUARANTINE};

/// Blocks per run: two `mprotect` calls per this many requests.
pub(crate) const RUN_SLOTS: usize = 512;
/// Where the sense buffer is in its SRB's page: past the SRB, 8-byte aligned (as `verify` reads
/// it), with room for the largest sense buffer (`sense_len` is a `UCHAR`).
pub(crate) const SENSE_AT: usize = PAGE_SIZE / 2;
/// Successful requests of each arena whose blocks are guarded at once.
pub(crate) const WARM_UP: u64 = 32;
/// One in this many of the other successful requests is guarded at once.
pub(crate) const SAMPLE: u64 = 1024;

/// The sizes of a block's parts: what a run is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) ext: usize,
    pub(crate) sense: usize,
    /// Storport: room for the request's `STOR_SCATTER_GATHER_LIST` (0 on SCSI Port, and a list
    /// that does not fit gets memory of its own, `StorSt::build_scatter_gather`).
    pub(crate) list: usize,
}

/// A block's place: which arena (they change with the shape), which run, which slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotRef {
    arena: u64,
    run: u64,
    slot: usize,
}

/// What a block borrows from its slot.
pub(crate) struct Parts {
    pub(crate) srb: DmaRegion,
    pub(crate) ext: Option<DmaRegion>,
    pub(crate) sense: Option<DmaRegion>,
    /// Boxed, so that a SCSI Port block, which has none, moves a pointer's worth for it.
    pub(crate) list: Option<Box<DmaRegion>>,
    pub(crate) slot: SlotRef,
}

/// What [`Arena::put_back`] takes back: the SRB page, extension, sense buffer and list.
pub(crate) type Lent = (DmaRegion, Option<DmaRegion>, Option<DmaRegion>, Option<Box<DmaRegion>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not handed out since the run was (re)opened.
    Free,
    /// Handed out, not completed.
    Out,
    /// Completed and poisoned, not guarded yet.
    Pending,
    /// Completed and guarded.
    Guarded,
}

struct Slot {
    srb: Option<DmaRegion>,
    ext: Option<DmaRegion>,
    sense: Option<DmaRegion>,
    list: Option<Box<DmaRegion>>,
    state: State,
    /// The request the block last served.
    id: u64,
}

struct Run {
    id: u64,
    /// Registered for the run's life; dropped before the span.
    _guard: Option<GuardHandle>,
    span: DmaSpan,
    slots: Vec<Slot>,
    /// Bytes per slot.
    stride: usize,
    /// Next slot to hand out; `slots.len()` once the run is closed.
    next: usize,
    out: usize,
    pending: usize,
    /// Slots whose SRB page is back (not lent to a block).
    back: usize,
    /// Blocks released for good (the full quarantine).
    released: usize,
    /// The arena's completion count when the whole run was settled (guarded, or complete when
    /// the monitor is off).
    settled_at: Option<u64>,
    /// Whether the next run has filled while this one still had blocks out: its completed blocks
    /// were guarded around the stragglers, which are guarded on their own.
    swept: bool,
}

impl Run {
    fn closed(&self) -> bool {
        self.next >= self.slots.len()
    }

    fn slot_offset(&self, slot: usize) -> usize {
        slot * self.stride
    }
}

/// Poison found changed in a block waiting for its run: (address, request, part).
pub(crate) type Overwrite = (usize, u64, GuardKind);

/// An adapter's SRB blocks.
pub(crate) struct Arena {
    id: u64,
    shape: Shape,
    runs: Vec<Run>,
    /// The run being handed out.
    current: Option<u64>,
    next_run: u64,
    owner: u64,
    /// Whether runs are never reused (the full quarantine).
    keep: bool,
    completions: u64,
    successes: u64,
    /// Poison changes a straggler sweep found, reported with the next completion.
    stale_overwrites: Vec<Overwrite>,
    /// `mprotect` calls made, for the tests that hold the cost down.
    protects: u64,
}

fn arena_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Arena {
    pub(crate) fn new(owner: u64, shape: Shape, keep: bool) -> Self {
        Self { id: arena_id(), shape, runs: Vec::new(), current: None, next_run: 1, owner, keep, completions: 0, successes: 0, stale_overwrites: Vec::new(), protects: 0 }
    }

    fn pages(len: usize) -> usize {
        len.div_ceil(PAGE_SIZE)
    }

    fn make_run(&mut self, ad: &Adapter) -> Result<u64, String> {
        let Shape { ext, sense, list } = self.shape;
        let mut lens = Vec::with_capacity(RUN_SLOTS * 3);
        for _ in 0..RUN_SLOTS {
            lens.push(PAGE_SIZE);
            if ext > 0 {
                lens.push(ext);
            }
            if list > 0 {
                lens.push(list);
            }
        }
        let (span, regions) = ad.dma.alloc_span(&lens, Layout::Scattered).map_err(|e| e.to_string())?;
        let mut regions = regions.into_iter();
        let mut slots = Vec::with_capacity(RUN_SLOTS);
        for _ in 0..RUN_SLOTS {
            let srb = regions.next();
            let sense = Some(srb.as_ref().and_then(|p| p.view(SENSE_AT, sense.max(1))).ok_or("arena: the sense buffer does not fit its SRB's page")?);
            let ext = if ext > 0 { regions.next() } else { None };
            let list = if list > 0 { regions.next().map(Box::new) } else { None };
            slots.push(Slot { srb, ext, sense, list, state: State::Free, id: 0 });
        }
        let stride = (1 + Self::pages(ext) + Self::pages(list)) * PAGE_SIZE;
        let guard = guard::register(self.owner, span.va() as usize, span.len(), GuardKind::SrbRun, 0);
        let id = self.next_run;
        self.next_run += 1;
        self.runs.push(Run {
            id,
            _guard: guard,
            span,
            slots,
            stride,
            next: 0,
            out: 0,
            pending: 0,
            back: RUN_SLOTS,
            released: 0,
            settled_at: None,
            swept: false,
        });
        Ok(id)
    }

    fn run_mut(&mut self, id: u64) -> Option<&mut Run> {
        self.runs.iter_mut().find(|r| r.id == id)
    }

    /// A run to hand out from: the current one while it has free slots, else the oldest settled
    /// run that is whole again and out of quarantine (unguarded here), else a new one.
    fn open_run(&mut self, ad: &Adapter, monitor: bool) -> Result<u64, String> {
        if let Some(id) = self.current
            && self.runs.iter().any(|r| r.id == id && !r.closed())
        {
            return Ok(id);
        }
        if let Some(closing) = self.current.take() {
            self.sweep_stragglers(closing, monitor);
        }
        // A run made ahead and never handed out from (`make_run`'s second) goes first, as it is.
        if let Some(id) = self.runs.iter().find(|r| r.next == 0 && r.out == 0 && r.settled_at.is_none()).map(|r| r.id) {
            self.current = Some(id);
            return Ok(id);
        }
        let now = self.completions;
        let quarantine = QUARANTINE as u64;
        let reusable = (!self.keep)
            .then(|| {
                self.runs
                    .iter()
                    .filter(|r| r.back == r.slots.len() && r.settled_at.is_some_and(|at| now.saturating_sub(at) >= quarantine))
                    .min_by_key(|r| r.settled_at)
                    .map(|r| r.id)
            })
            .flatten();
        let id = if let Some(id) = reusable {
            let protects = &mut self.protects;
            if let Some(r) = self.runs.iter_mut().find(|r| r.id == id) {
                if monitor {
                    r.span.set_cpu_access(0, r.span.len(), true);
                    *protects += 1;
                }
                for s in &mut r.slots {
                    s.state = State::Free;
                }
                r.next = 0;
                r.settled_at = None;
                r.swept = false;
            }
            id
        } else {
            let id = self.make_run(ad)?;
            if self.runs.len() == 1 && !self.keep {
                // The second run of the ring, made now rather than in the middle of the I/O.
                self.make_run(ad)?;
            }
            id
        };
        self.current = Some(id);
        Ok(id)
    }

    /// Lends a block: the SRB page, the extension, and the sense buffer when `sense` is asked
    /// for. `monitor`: whether the memory monitor guards blocks.
    pub(crate) fn take(&mut self, ad: &Adapter, sense: bool, monitor: bool) -> Result<Parts, String> {
        let run_id = self.open_run(ad, monitor)?;
        let arena = self.id;
        let r = self.run_mut(run_id).ok_or("arena: no run")?;
        let slot = r.next;
        r.next += 1;
        r.out += 1;
        r.back -= 1;
        let s = r.slots.get_mut(slot).ok_or("arena: slot")?;
        s.state = State::Out;
        let srb = s.srb.take().ok_or("arena: a slot lent twice")?;
        let ext = s.ext.take();
        let sense = if sense { s.sense.take() } else { None };
        let list = s.list.take();
        Ok(Parts { srb, ext, sense, list, slot: SlotRef { arena, run: run_id, slot } })
    }

    /// Takes back what [`Self::take`] lent, once the block leaves the port's quarantine list.
    /// `None` (the full quarantine): the parts were released; the run goes with its last one.
    pub(crate) fn put_back(&mut self, at: SlotRef, parts: Option<Lent>) {
        if at.arena != self.id {
            return;
        }
        let Some(r) = self.run_mut(at.run) else { return };
        if let Some((srb, ext, sense, list)) = parts {
            if let Some(s) = r.slots.get_mut(at.slot) {
                s.srb = Some(srb);
                if ext.is_some() {
                    s.ext = ext;
                }
                if sense.is_some() {
                    s.sense = sense;
                }
                if list.is_some() {
                    s.list = list;
                }
                r.back += 1;
            }
        } else {
            r.released += 1;
            if r.released == r.slots.len() {
                let id = r.id;
                self.runs.retain(|r| r.id != id);
            }
        }
    }

    /// A lent block has completed (and been poisoned). `guard`: whether the memory monitor is
    /// on; `at_once`: whether this block is guarded now rather than with its run. Returns the
    /// blocks whose poison was found changed when a run was guarded.
    pub(crate) fn completed(&mut self, at: SlotRef, id: u64, success: bool, guard: bool, at_once: bool) -> Vec<Overwrite> {
        let mut found = std::mem::take(&mut self.stale_overwrites);
        if at.arena != self.id {
            return found;
        }
        self.completions += 1;
        let mut at_once = at_once;
        if success {
            self.successes += 1;
            at_once |= self.successes <= WARM_UP || self.successes.is_multiple_of(SAMPLE);
        } else {
            at_once = true;
        }
        let now = self.completions;
        let shape = self.shape;
        let protects = &mut self.protects;
        let Some(r) = self.runs.iter_mut().find(|r| r.id == at.run) else { return found };
        r.out = r.out.saturating_sub(1);
        let offset = r.slot_offset(at.slot);
        let stride = r.stride;
        let Some(s) = r.slots.get_mut(at.slot) else { return found };
        s.id = id;
        if !guard {
            s.state = State::Guarded;
        } else if at_once || r.swept {
            s.state = State::Guarded;
            r.span.set_cpu_access(offset, stride, false);
            *protects += 1;
        } else {
            s.state = State::Pending;
            r.pending += 1;
        }
        if r.closed() && r.out == 0 {
            if r.pending > 0 {
                verify(r, shape, &mut found);
                r.span.set_cpu_access(0, r.span.len(), false);
                *protects += 1;
                for s in &mut r.slots {
                    if s.state == State::Pending {
                        s.state = State::Guarded;
                    }
                }
                r.pending = 0;
            }
            r.settled_at = Some(now);
        }
        found
    }

    /// The adapter stops: every completed block is verified and guarded now, and the run being
    /// handed out is closed (the next request opens another), so that nothing of a stopped
    /// adapter waits for a run that may not fill. Returns the blocks whose poison changed.
    pub(crate) fn flush(&mut self, monitor: bool) -> Vec<Overwrite> {
        let mut found = std::mem::take(&mut self.stale_overwrites);
        self.current = None;
        let now = self.completions;
        let shape = self.shape;
        for r in &mut self.runs {
            let len = r.slots.len();
            let was_open = !r.closed();
            if was_open && self.keep {
                // Never handed out now: as good as released, so that the run can go.
                r.released += len - r.next;
            }
            r.next = len;
            if r.out == 0 {
                if monitor && (r.pending > 0 || was_open) {
                    verify(r, shape, &mut found);
                    r.span.set_cpu_access(0, r.span.len(), false);
                    self.protects += 1;
                }
                if r.settled_at.is_none() {
                    r.settled_at = Some(now);
                }
            } else if monitor && r.pending > 0 {
                self.protects += guard_around(r, shape, &mut found);
                r.swept = true;
            }
            for s in &mut r.slots {
                if s.state == State::Pending {
                    s.state = State::Guarded;
                }
            }
            r.pending = 0;
        }
        self.runs.retain(|r| r.released < r.slots.len());
        found
    }

    /// The run handed out before the current one has filled while this one still has blocks
    /// out: its completed blocks are verified and guarded around them, one `mprotect` per stretch
    /// between two stragglers, and the stragglers on their own when they complete.
    fn sweep_stragglers(&mut self, closing: u64, monitor: bool) {
        let shape = self.shape;
        let mut found = Vec::new();
        for r in self.runs.iter_mut().filter(|r| r.id != closing && r.closed() && r.out > 0 && !r.swept) {
            r.swept = true;
            if !monitor || r.pending == 0 {
                continue;
            }
            self.protects += guard_around(r, shape, &mut found);
            for s in &mut r.slots {
                if s.state == State::Pending {
                    s.state = State::Guarded;
                }
            }
            r.pending = 0;
        }
        self.stale_overwrites.extend(found);
    }


    /// The SRB and the part a faulting address of one of this arena's runs belongs to.
    pub(crate) fn describe(&self, addr: usize) -> Option<(GuardKind, u64)> {
        let r = self.runs.iter().find(|r| r.span.contains(addr))?;
        let off = addr - r.span.va() as usize;
        let slot = r.slots.get(off / r.stride)?;
        Some((part_kind(self.shape, off % r.stride), slot.id))
    }

    /// The runs the arena has (for tests).
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }
}

impl MachineCore {
    /// A block for a new SRB from the adapter's arena, which is made here with the first request
    /// (and made again should the extension's size change across a restart).
    pub(crate) fn take_block(&self, ad: &Adapter, st: &mut AdapterSt, sense: bool) -> Result<Parts, String> {
        // Storport's list holds at most `NumberOfPhysicalBreaks` elements (`StorSt::refuses`).
        let list = st.stor.as_ref().map_or(0, |s| {
            let elements = usize::try_from(s.max_breaks).unwrap_or(usize::MAX);
            elements.saturating_mul(super::stor::SG_ELEMENT).saturating_add(super::stor::SG_HEADER).min(PAGE_SIZE)
        });
        let shape = Shape { ext: st.caps.srb_ext, sense: usize::from(self.cfg.sense_len.max(1)), list };
        let keep = self.full_quarantine();
        let monitor = self.verifier.enabled && self.verifier.memory_monitor;
        if st.pool.as_ref().is_none_or(|a| a.shape != shape || a.keep != keep) {
            if let Some(old) = st.pool.take() {
                // Blocks of the old arena still lent keep its memory; none of it stays guarded
                // once its runs' registrations go.
                for r in &old.runs {
                    r.span.set_cpu_access(0, r.span.len(), true);
                }
            }
            st.pool = Some(Arena::new(self.owner, shape, keep));
        }
        st.pool.as_mut().ok_or("no arena")?.take(ad, sense, monitor)
    }

    /// The part and the SRB a fault in a run (`GuardKind::SrbRun`) hit.
    pub(crate) fn run_fault(&self, addr: usize) -> (GuardKind, u64) {
        self.adapters.iter().find_map(|ad| ad.st().pool.as_ref().and_then(|a| a.describe(addr))).unwrap_or((GuardKind::Srb, 0))
    }
}

/// Verifies the blocks of `r` waiting for their run and guards every stretch of completed
/// blocks between those still out, one `mprotect` each. Returns the calls made.
fn guard_around(r: &Run, shape: Shape, found: &mut Vec<Overwrite>) -> u64 {
    verify(r, shape, found);
    let mut calls = 0;
    let mut stretch: Option<usize> = None;
    for i in 0..=r.slots.len() {
        let guardable = r.slots.get(i).is_some_and(|s| s.state != State::Out);
        match (guardable, stretch) {
            (true, None) => stretch = Some(i),
            (false, Some(first)) => {
                r.span.set_cpu_access(first * r.stride, (i - first) * r.stride, false);
                calls += 1;
                stretch = None;
            }
            _ => {}
        }
    }
    calls
}

/// Which part of a slot byte `within` of it is: the sense buffer's bytes of the SRB's page,
/// the rest of that page the SRB. Storport's list is reported as the extension, as when it is
/// guarded on its own (`complete.rs`).
fn part_kind(shape: Shape, within: usize) -> GuardKind {
    if (SENSE_AT..SENSE_AT + shape.sense.max(1)).contains(&within) {
        GuardKind::SenseBuffer
    } else if within < PAGE_SIZE {
        GuardKind::Srb
    } else {
        GuardKind::SrbExtension
    }
}

/// Checks the poison of every block of `r` waiting for its run: the SRB, the extension, the
/// sense buffer and Storport's list as `complete.rs` wrote them.
fn verify(r: &Run, shape: Shape, found: &mut Vec<Overwrite>) {
    let base = r.span.va() as usize;
    let parts = [
        (0, size_of::<SCSI_REQUEST_BLOCK>(), GuardKind::Srb),
        (PAGE_SIZE, shape.ext, GuardKind::SrbExtension),
        (SENSE_AT, shape.sense, GuardKind::SenseBuffer),
    ];
    let list = (1 + Arena::pages(shape.ext)) * PAGE_SIZE;
    for (i, s) in r.slots.iter().enumerate() {
        if s.state != State::Pending {
            continue;
        }
        let slot = base + i * r.stride;
        let bad = parts
            .iter()
            .find_map(|&(off, len, kind)| first_unpoisoned(slot + off, len).map(|at| (at, kind)))
            .or_else(|| (shape.list > 0).then(|| first_unpoisoned(slot + list, shape.list).map(|at| (at, GuardKind::SrbExtension))).flatten());
        if let Some((at, kind)) = bad {
            found.push((at, s.id, kind));
        }
    }
}

/// The first byte of `start..start + len` that is not [`POISON`].
fn first_unpoisoned(start: usize, len: usize) -> Option<usize> {
    const WORD: u64 = u64::from_ne_bytes([POISON; 8]);
    let mut at = start;
    let end = start + len;
    // Four words at a time while they all hold the poison (every block of a plain completion
    // does): one test per 32 bytes. The first one that differs is found word by word below.
    while at + 32 <= end {
        let word = |i: usize| {
            // SAFETY: as in the loop below: word `i` (< 4) of the 32 bytes at `at`, all inside.
            unsafe { std::ptr::read_volatile((at as *const u64).wrapping_add(i)) ^ WORD }
        };
        if word(0) | word(1) | word(2) | word(3) != 0 {
            break;
        }
        at += 32;
    }
    while at + 8 <= end {
        // SAFETY: inside a run's CPU view, accessible (not guarded yet), 8-byte aligned (slots
        // start on pages, parts at offsets that are multiples of 8). Volatile: the miniport may
        // be writing it on another thread, which is what this looks for.
        if unsafe { std::ptr::read_volatile(at as *const u64) } != WORD {
            break;
        }
        at += 8;
    }
    while at < end {
        // SAFETY: as above.
        if unsafe { std::ptr::read_volatile(at as *const u8) } != POISON {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::port::Routine;
    use crate::pvscsi::PvscsiConfig;
    use crate::request::Request;
    use crate::verifier::{Rule, VerifierConfig};
    use crate::{Machine, test_miniport};

    fn machine() -> Machine {
        let b = Machine::builder().schedule(crate::Schedule::Deterministic { seed: 7 }).verifier(VerifierConfig::default()).argument_string("qd=4 tagged=1");
        crate::port::test_rig(b, PvscsiConfig { seed: 1, ..PvscsiConfig::default() }, test_miniport::driver_entry).0
    }

    /// Reads `n` blocks one after the other, or until a bug check.
    fn reads(m: &Machine, n: usize) {
        for lba in 0..n {
            if m.bugcheck().is_some() {
                return;
            }
            // The first meets the disk's UNIT ATTENTION (power on), as a class driver's would.
            let lba = u32::try_from(lba % 2048).unwrap();
            let c = m.execute(Request::read10(0, lba, 1, 512));
            if c.as_ref().is_ok_and(|c| !c.is_success()) {
                let _ = m.execute(Request::read10(0, lba, 1, 512));
            }
        }
    }

    /// (address of the SRB, request) of a completed block in state `state` in a run that is
    /// (`settled`) or is not guarded whole yet, past the warm-up's slots.
    fn block_in(m: &Machine, state: State, settled: bool) -> Option<(usize, u64)> {
        blocks_in(m, state, settled).first().copied()
    }

    /// Every block [`block_in`] could name, in run and slot order.
    fn blocks_in(m: &Machine, state: State, settled: bool) -> Vec<(usize, u64)> {
        let ad = &m.core().adapters[0];
        let st = ad.st();
        let Some(a) = st.pool.as_ref() else { return Vec::new() };
        a.runs
            .iter()
            .filter(|r| r.settled_at.is_some() == settled)
            .flat_map(|r| {
                r.slots.iter().enumerate().skip(usize::try_from(WARM_UP).unwrap() + 8).filter(|(_, s)| s.state == state).map(|(i, s)| (r.span.va() as usize + i * r.stride, s.id))
            })
            .collect()
    }

    fn protects(m: &Machine) -> u64 {
        m.core().adapters[0].st().pool.as_ref().map_or(0, |a| a.protects)
    }

    #[test]
    fn storport_lists_live_in_the_blocks_so_steady_reads_allocate_nothing() {
        // Storport's list for each request was memory of its own (a memfd, two mappings, an
        // mprotect and three munmaps per request); it is now built in the block's slot.
        let b = Machine::builder().port(crate::Port::Storport).schedule(crate::Schedule::Deterministic { seed: 7 });
        let (m, dma) = crate::port::test_rig(b, PvscsiConfig { seed: 1, ..PvscsiConfig::default() }, crate::stor_test_miniport::driver_entry);
        reads(&m, 100);
        let before = dma.regions_made();
        reads(&m, 2 * RUN_SLOTS);
        let made = dma.regions_made() - before;
        assert!(made < 8, "{made} DMA regions for {} reads", 2 * RUN_SLOTS);
        assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
    }

    #[test]
    fn steady_successes_cost_two_mprotects_per_run() {
        let m = machine();
        reads(&m, 100);
        let before = protects(&m);
        assert!(before >= WARM_UP, "the warm-up guards each block at once: {before}");
        reads(&m, 2 * RUN_SLOTS);
        let spent = protects(&m) - before;
        // Two runs closed (each guarded once), at most two reopened, one sample.
        assert!(spent <= 5, "{spent} mprotect calls for {} requests", 2 * RUN_SLOTS);
        reads(&m, RUN_SLOTS);
        let runs = m.core().adapters[0].st().pool.as_ref().map_or(0, Arena::runs);
        assert_eq!(runs, 2, "steady I/O makes no run (no mapping) beyond the ring's two");
        assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
    }

    #[test]
    fn a_write_after_completion_is_caught_by_the_poison_before_the_run_is_guarded() {
        let m = machine();
        reads(&m, 100);
        let (srb, id) = block_in(&m, State::Pending, false).expect("a block waiting for its run");
        let core = Arc::clone(m.core());
        let ad = Arc::clone(&core.adapters[0]);
        // The miniport writes the SRB's SrbStatus long after its completion: its page is not
        // guarded yet, so nothing faults now.
        core.call(Some(&ad), Routine::Timer, &[], || {
            // SAFETY: the block's SRB page, mapped and accessible while it waits for its run.
            unsafe { std::ptr::write_volatile((srb + 3) as *mut u8, 0x55) };
            0u8
        });
        assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
        // Its run fills and is guarded: the poison says what happened.
        reads(&m, RUN_SLOTS);
        let bug = m.bugcheck().expect("the write is reported");
        assert_eq!((bug.rule, bug.code), (Rule::TouchedAfterCompletion, 0xD1), "{bug:?}");
        assert_eq!(bug.params, [srb as u64 + 3, 2, 1], "{bug:?}");
        assert!(bug.message.contains(&format!("wrote a completed SRB at {:#x} (srb {id})", srb + 3)), "{}", bug.message);
        assert!(bug.message.contains("before its run was guarded"), "{}", bug.message);
    }

    #[test]
    fn a_stop_verifies_and_guards_what_waits_for_its_run() {
        let m = machine();
        reads(&m, 100);
        let (srb, id) = block_in(&m, State::Pending, false).expect("a block waiting for its run");
        let core = Arc::clone(m.core());
        let ad = Arc::clone(&core.adapters[0]);
        let sense = srb + SENSE_AT;
        core.call(Some(&ad), Routine::Timer, &[], || {
            // SAFETY: the block's sense buffer, mapped and accessible while it waits for its run.
            unsafe { std::ptr::write_volatile(sense as *mut u8, 0x70) };
            0u8
        });
        assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
        let _ = m.stop_adapter(0);
        let bug = m.bugcheck().expect("the write is reported when the adapter stops");
        assert_eq!((bug.rule, bug.params), (Rule::TouchedAfterCompletion, [sense as u64, 2, 1]), "{bug:?}");
        assert!(bug.message.contains(&format!("wrote the sense buffer of a completed SRB at {sense:#x} (srb {id})")), "{}", bug.message);
        // Every block is guarded now: a read of the SRB faults.
        // SAFETY: PROT_NONE since the stop: the read faults, is recorded, and completes.
        let _ = core.call(Some(&ad), Routine::Timer, &[], || unsafe { std::ptr::read_volatile(srb as *const u8) });
        let all = m.violations();
        assert!(all.iter().any(|v| v.message.contains(&format!("read a completed SRB at {srb:#x} (srb {id})"))), "{all:?}");
    }

    #[test]
    fn a_read_after_the_run_is_guarded_faults_and_names_the_srb_and_the_part() {
        let m = machine();
        reads(&m, RUN_SLOTS + 100);
        let guarded = blocks_in(&m, State::Guarded, true);
        let (srb, id) = *guarded.first().expect("a block of a guarded run");
        let core = Arc::clone(m.core());
        let ad = Arc::clone(&core.adapters[0]);
        // SAFETY: the block's SRB page is PROT_NONE: the read faults, the monitor records it and
        // makes the page readable, and the read completes.
        let byte = core.call(Some(&ad), Routine::Timer, &[], || unsafe { std::ptr::read_volatile((srb + 2) as *const u8) });
        assert_eq!(byte, POISON);
        let bug = m.bugcheck().expect("a bug check");
        assert_eq!((bug.rule, bug.code, bug.params), (Rule::TouchedAfterCompletion, 0xD1, [srb as u64 + 2, 2, 0]), "{bug:?}");
        assert!(bug.message.contains(&format!("read a completed SRB at {:#x} (srb {id}) in HwScsiTimer", srb + 2)), "{}", bug.message);
        // Another block's sense buffer, in its SRB's page (this block's page was made readable
        // for the read above): guarded, named as the sense buffer, not as the SRB.
        let (other, other_id) = *guarded.get(1).expect("a second block of a guarded run");
        let sense = other + SENSE_AT + 4;
        // SAFETY: as above.
        let _ = core.call(Some(&ad), Routine::Timer, &[], || unsafe { std::ptr::read_volatile(sense as *const u8) });
        let all = m.violations();
        assert!(
            all.iter().any(|v| v.message.contains(&format!("read the sense buffer of a completed SRB at {sense:#x} (srb {other_id})"))),
            "{all:?}"
        );
    }
}
