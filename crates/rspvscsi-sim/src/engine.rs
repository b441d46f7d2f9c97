//! The I/O engine: keeps `qd` requests outstanding, retries what the device asks to be retried,
//! reissues what a bus reset completed, checks what it reads, and measures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use scsiport_sim::{Completion, Error, PortBuffer, Request, Schedule, Ticket};
use scsiport_sys as sys;

use crate::extents::Extents;
use crate::pattern::{self, SECTOR};
use crate::progress::Progress;
use crate::rig::{self, DiskInfo, Rig};

/// Largest transfer: the driver's `MaximumTransferLength`.
pub const MAX_TRANSFER: u64 = 128 * 1024;
/// Requests a random workload runs when neither `--count` nor `--seconds` is given.
pub const DEFAULT_COUNT: u64 = 2000;
/// Retries of one request on UNIT ATTENTION before it counts as an error.
const UA_RETRIES: u32 = 8;
/// Reissues of one request completed by bus resets before it counts as an error.
const RESET_REISSUES: u32 = 16;
/// Errors and mismatches described in detail (the rest are only counted).
const LOG_LIMIT: usize = 10;

/// The I/O a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Random reads and writes, reads checked.
    Mixed,
    /// Random reads.
    Read,
    /// Random writes.
    Write,
    /// Every sector written with the pattern.
    WritePattern,
    /// Every sector read and checked.
    VerifyPattern,
}

/// A run's shape.
#[derive(Clone, Debug)]
pub struct Spec {
    /// What to do.
    pub kind: Kind,
    /// Outstanding requests.
    pub qd: usize,
    /// Sectors per request (`None`: the workload's default).
    pub bs_sectors: Option<u32>,
    /// Stop after this many requests.
    pub count: Option<u64>,
    /// Stop after this long (wall time).
    pub seconds: Option<f64>,
    /// Requests completed before IOPS starts counting (`--ramp`).
    pub ramp: Option<u64>,
    /// Seed of the workload and pattern.
    pub seed: u64,
    /// Offset of each data buffer inside its first page.
    pub buffer_offset: u16,
    /// A bus reset after every N requests.
    pub reset_every: Option<u64>,
    /// Draw a progress bar if the run is long and stderr is a terminal.
    pub progress: bool,
    /// Pattern workloads: cover only the first N sectors of each disk.
    pub pattern_sectors: Option<u64>,
}

impl Spec {
    /// A spec with the defaults of the command line.
    #[must_use]
    pub fn new(kind: Kind, seed: u64) -> Self {
        Self {
            kind,
            qd: 16,
            bs_sectors: None,
            count: None,
            seconds: None,
            ramp: None,
            seed,
            buffer_offset: 0,
            reset_every: None,
            progress: false,
            pattern_sectors: None,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Requests completed (each counted once, however often it was retried).
    pub ios: u64,
    /// Of which reads.
    pub reads: u64,
    /// Of which writes.
    pub writes: u64,
    /// Bytes moved by successful requests.
    pub bytes: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// Sectors read back that did not hold what was written.
    pub mismatches: u64,
    /// Sectors read back and checked.
    pub sectors_checked: u64,
    /// Retries after UNIT ATTENTION.
    pub ua_retries: u64,
    /// Requests reissued after a bus reset completed them.
    pub reset_reissues: u64,
    /// Bus resets submitted.
    pub resets: u64,
    /// Requests outstanding when the resets were submitted (summed): what they could catch.
    pub in_flight_at_resets: u64,
    /// Latencies of the completed requests (ns of machine time).
    pub latencies: Vec<u64>,
    /// Descriptions of the first errors.
    pub error_log: Vec<String>,
    /// Descriptions of the first mismatches.
    pub mismatch_log: Vec<String>,
    /// Every sector read back that did not hold what was written, as extents by kind.
    pub mismatch_extents: Extents,
    /// Write-pattern: every sector it did not write (a failed write, never issued because the
    /// run stopped, or in flight when the machine stopped).
    pub unwritten: Extents,
    /// Wall time of the run.
    pub wall: Duration,
    /// Machine time of the run (virtual in the deterministic schedule).
    pub machine_ns: u64,
    /// Where the ramp ended (`--ramp`): the requests completed by then, and the wall and
    /// machine time it took. `None` without a ramp, or when the run ended before it did.
    pub ramp: Option<(u64, Duration, u64)>,
    /// The machine stopped (bug check, or nothing could run).
    pub halted: Option<Error>,
}

impl Outcome {
    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.error_log.len() < LOG_LIMIT {
            self.error_log.push(msg);
        }
    }

    /// Adds another run's counts (for scenarios made of several runs).
    pub fn merge(&mut self, o: &Outcome) {
        if self.ios == 0 && self.ramp.is_none() {
            // The first run's ramp is the start of the whole.
            self.ramp = o.ramp;
        }
        self.ios += o.ios;
        self.reads += o.reads;
        self.writes += o.writes;
        self.bytes += o.bytes;
        self.errors += o.errors;
        self.mismatches += o.mismatches;
        self.sectors_checked += o.sectors_checked;
        self.ua_retries += o.ua_retries;
        self.reset_reissues += o.reset_reissues;
        self.resets += o.resets;
        self.in_flight_at_resets += o.in_flight_at_resets;
        self.latencies.extend_from_slice(&o.latencies);
        self.error_log.extend(o.error_log.iter().take(LOG_LIMIT.saturating_sub(self.error_log.len())).cloned());
        self.mismatch_log.extend(o.mismatch_log.iter().take(LOG_LIMIT.saturating_sub(self.mismatch_log.len())).cloned());
        self.mismatch_extents.extend(&o.mismatch_extents);
        self.unwritten.extend(&o.unwritten);
        self.wall += o.wall;
        self.machine_ns += o.machine_ns;
        if self.halted.is_none() {
            self.halted.clone_from(&o.halted);
        }
    }
}

/// What a read must find.
#[derive(Clone, Debug)]
enum Expect {
    /// Nothing known.
    Nothing,
    /// Every sector the pattern of this seed.
    Seed(u64),
    /// Per sector: the seed it was last written with, if known.
    Sectors(Vec<Option<u64>>),
}

/// One request of the workload.
#[derive(Clone, Copy, Debug)]
struct Op {
    disk: usize,
    lba: u64,
    blocks: u32,
    write: bool,
    /// Writes: the seed of the data. Verify-pattern reads: the seed expected.
    seed: u64,
}

/// The workload's source of requests.
struct Generator {
    kind: Kind,
    disks: Vec<DiskInfo>,
    rng: u64,
    bs: Option<u32>,
    seed: u64,
    /// Next LBA per disk (pattern workloads).
    cursor: Vec<u64>,
    next_disk: usize,
    generation: u64,
    /// Extents written (mixed), for reads to come back to.
    written: Vec<(usize, u64, u32)>,
}

/// Extents the mixed workload remembers for reading back.
const WRITTEN_KEEP: usize = 4096;

impl Generator {
    fn new(kind: Kind, disks: &[DiskInfo], bs: Option<u32>, seed: u64) -> Self {
        Self {
            kind,
            disks: disks.to_vec(),
            rng: seed ^ 0x5DEE_CE66_D1CE_4E5B,
            bs,
            seed,
            cursor: vec![0; disks.len()],
            next_disk: 0,
            generation: 0,
            written: Vec::new(),
        }
    }

    fn rand(&mut self) -> u64 {
        pattern::splitmix64(&mut self.rng)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 { 0 } else { self.rand() % n }
    }

    /// Total requests of a pattern workload.
    fn pattern_total(&self) -> u64 {
        let bs = u64::from(self.bs.unwrap_or(1).max(1));
        self.disks.iter().map(|d| d.blocks.div_ceil(bs)).sum()
    }

    fn next(&mut self) -> Option<Op> {
        if self.disks.is_empty() {
            return None;
        }
        match self.kind {
            Kind::WritePattern | Kind::VerifyPattern => {
                let bs = u64::from(self.bs.unwrap_or(1).max(1));
                for _ in 0..self.disks.len() {
                    let d = self.next_disk;
                    self.next_disk = (self.next_disk + 1) % self.disks.len();
                    let (lba, blocks) = (self.cursor[d], self.disks[d].blocks);
                    if lba < blocks {
                        let n = bs.min(blocks - lba);
                        self.cursor[d] = lba + n;
                        return Some(Op {
                            disk: d,
                            lba,
                            blocks: u32::try_from(n).unwrap_or(1),
                            write: self.kind == Kind::WritePattern,
                            seed: self.seed,
                        });
                    }
                }
                None
            }
            Kind::Mixed | Kind::Read | Kind::Write => {
                let write = match self.kind {
                    Kind::Read => false,
                    Kind::Write => true,
                    _ => self.written.is_empty() || self.rand() & 1 == 0,
                };
                if self.kind == Kind::Mixed && !write {
                    let i = usize::try_from(self.below(self.written.len() as u64)).unwrap_or(0);
                    let (disk, lba, blocks) = self.written[i];
                    return Some(Op { disk, lba, blocks, write, seed: 0 });
                }
                let disk = usize::try_from(self.below(self.disks.len() as u64)).unwrap_or(0);
                let cap = self.disks[disk].blocks;
                // Default sizes: mixed 1..=128 sectors at random.
                let blocks = match self.bs {
                    Some(b) => u64::from(b),
                    None => 1 + self.below(128),
                }
                .min(cap);
                let lba = self.below(cap - blocks + 1);
                let blocks = u32::try_from(blocks).unwrap_or(1);
                self.generation += 1;
                let seed = pattern::generation_seed(self.seed, self.disks[disk].target, self.generation);
                if write && self.kind == Kind::Mixed {
                    if self.written.len() < WRITTEN_KEEP {
                        self.written.push((disk, lba, blocks));
                    } else {
                        let i = usize::try_from(self.below(WRITTEN_KEEP as u64)).unwrap_or(0);
                        self.written[i] = (disk, lba, blocks);
                    }
                }
                Some(Op { disk, lba, blocks, write, seed })
            }
        }
    }
}

/// Sectors per request when `--bs` is not given (`None`: random sizes).
#[must_use]
pub fn default_bs_sectors(kind: Kind) -> Option<u32> {
    match kind {
        Kind::WritePattern | Kind::VerifyPattern => Some(128),
        Kind::Read | Kind::Write => Some(8),
        Kind::Mixed => None,
    }
}

/// A request at the port. Its `Request` is not kept: a retry builds it again from `op` (a
/// write's data is the pattern of its seed), so that no copy of the payload is made per request.
struct Outstanding {
    ticket: Ticket,
    /// `None`: a bus reset.
    op: Option<Op>,
    expect: Expect,
    ua_retries: u32,
    reissues: u32,
}

/// Runs a workload on a rig.
pub struct Engine<'a> {
    rig: &'a Rig,
    spec: Spec,
    source: Generator,
    /// Per disk: LBA → seed of the sector's last write (mixed only).
    shadow: Vec<HashMap<u64, u64>>,
    outstanding: Vec<Outstanding>,
    pending: Option<Op>,
    out: Outcome,
    submitted: u64,
    deterministic: bool,
    /// A bus reset is to be submitted after the next completions.
    reset_due: bool,
    /// Data buffers of completed reads, for the next reads (see `request`), so that none is
    /// allocated per request.
    spare: Vec<PortBuffer>,
    /// Requests in `outstanding` that are I/O (not bus resets), kept instead of counted.
    in_flight: usize,
    /// Writes among them: a read conflicts with nothing while there are none.
    writes_in_flight: usize,
    /// The tickets of `outstanding` with their places there, by ticket: a completion is looked
    /// up instead of compared with every entry. Rebuilt when `outstanding` changes.
    by_ticket: Vec<(u64, usize)>,
    /// Lists of `collect`, kept from sweep to sweep so that a sweep allocates nothing.
    taken: Vec<Completion>,
    taken_once: Vec<Option<Completion>>,
    places: Vec<(usize, usize)>,
    found: Vec<(usize, Completion)>,
}

impl<'a> Engine<'a> {
    /// An engine for `spec` over the rig's disks.
    #[must_use]
    pub fn new(rig: &'a Rig, spec: Spec) -> Self {
        let bs = spec.bs_sectors.or_else(|| default_bs_sectors(spec.kind));
        let mut disks = rig.disks.clone();
        if let Some(limit) = spec.pattern_sectors {
            for d in &mut disks {
                d.blocks = d.blocks.min(limit);
            }
        }
        let source = Generator::new(spec.kind, &disks, bs, spec.seed);
        let deterministic = matches!(rig.config.schedule, Schedule::Deterministic { .. });
        Self {
            rig,
            spec,
            source,
            shadow: vec![HashMap::new(); rig.disks.len()],
            outstanding: Vec::new(),
            pending: None,
            out: Outcome::default(),
            submitted: 0,
            deterministic,
            reset_due: false,
            spare: Vec::new(),
            in_flight: 0,
            writes_in_flight: 0,
            by_ticket: Vec::new(),
            taken: Vec::new(),
            taken_once: Vec::new(),
            places: Vec::new(),
            found: Vec::new(),
        }
    }

    /// Requests the run will make, if known in advance.
    fn total(&self) -> Option<u64> {
        let natural = match self.spec.kind {
            Kind::WritePattern | Kind::VerifyPattern => Some(self.source.pattern_total()),
            _ => None,
        };
        match (self.spec.count, natural, self.spec.seconds) {
            (Some(c), Some(n), _) => Some(c.min(n)),
            (Some(c), None, _) => Some(c),
            (None, Some(n), _) => Some(n),
            (None, None, None) => Some(DEFAULT_COUNT),
            (None, None, Some(_)) => None,
        }
    }

    fn limit(&self) -> Option<u64> {
        match (self.spec.count, self.spec.seconds, self.spec.kind) {
            (Some(c), _, _) => Some(c),
            (None, None, Kind::Mixed | Kind::Read | Kind::Write) => Some(DEFAULT_COUNT),
            _ => None,
        }
    }

    /// Runs to the end and returns what happened.
    #[must_use]
    pub fn run(mut self) -> Outcome {
        let started = Instant::now();
        let t0 = self.rig.machine.now_ns();
        let deadline = self.spec.seconds.map(|s| started + Duration::from_secs_f64(s));
        let mut progress = Progress::new(self.spec.progress, self.total(), deadline.map(|_| started));
        let limit = self.limit();
        let result = (|| -> Result<(), Error> {
            loop {
                let time_up = deadline.is_some_and(|d| Instant::now() >= d);
                let count_up = limit.is_some_and(|l| self.submitted >= l);
                if !(time_up || count_up || self.reset_due) {
                    self.fill()?;
                }
                if self.reset_due {
                    self.reset()?;
                }
                if self.outstanding.is_empty() {
                    if time_up || count_up || self.pending.is_none() {
                        break;
                    }
                    // A pending op that conflicts with nothing: fill() will take it.
                    continue;
                }
                let mut found = self.collect()?;
                for (i, c) in found.drain(..) {
                    self.complete(i, c)?;
                }
                self.found = found;
                // Remove the finished entries (marked by `complete`).
                self.outstanding.retain(|o| o.ticket.0 != 0);
                self.index_tickets();
                progress.update(self.out.ios, self.spec.seconds.map(|s| started.elapsed().as_secs_f64() / s));
                if self.out.ramp.is_none()
                    && self.spec.ramp.is_some_and(|r| self.out.ios >= r)
                {
                    self.out.ramp = Some((self.out.ios, started.elapsed(), self.rig.machine.now_ns().saturating_sub(t0)));
                }
            }
            self.rig.machine.run_until_idle()
        })();
        progress.finish();
        if let Err(e) = result {
            self.out.halted = Some(e);
        }
        if self.spec.kind == Kind::WritePattern {
            self.note_unwritten();
        }
        self.out.wall = started.elapsed();
        self.out.machine_ns = self.rig.machine.now_ns().saturating_sub(t0);
        self.out
    }

    /// Write-pattern: the sectors the run never wrote (stopped by --count, --seconds or the
    /// machine) or that were in flight when it stopped.
    fn note_unwritten(&mut self) {
        let live = self.outstanding.iter().filter(|o| o.ticket.0 != 0).filter_map(|o| o.op);
        for op in live.chain(self.pending) {
            self.out.unwritten.add(self.rig.disks[op.disk].target, op.lba, u64::from(op.blocks), "in-flight");
        }
        for (d, info) in self.source.disks.iter().enumerate() {
            let from = self.source.cursor[d];
            self.out.unwritten.add(info.target, from, info.blocks.saturating_sub(from), "not-written");
        }
    }

    /// Submits until `qd` requests are outstanding, the workload ends, or the next request
    /// overlaps one in flight (it waits then: reads and writes of the same sectors never race).
    fn fill(&mut self) -> Result<(), Error> {
        let limit = self.limit();
        while self.in_flight < self.spec.qd {
            if limit.is_some_and(|l| self.submitted >= l) {
                break;
            }
            let op = match self.pending.take() {
                Some(op) => op,
                None => match self.source.next() {
                    Some(op) => op,
                    None => break,
                },
            };
            if self.conflicts(&op) {
                self.pending = Some(op);
                break;
            }
            self.submit(op)?;
            self.submitted += 1;
            if let Some(n) = self.spec.reset_every
                && n > 0
                && self.submitted.is_multiple_of(n)
            {
                // Made right away: the port holds the reset until the miniport has requests to
                // meet (`Machine::reset_bus`).
                self.reset_due = true;
                break;
            }
        }
        Ok(())
    }

    /// The bus reset that is due, made the way SCSI Port makes one after a timeout:
    /// `HwScsiResetBus` called by the port with the requests outstanding at the miniport
    /// (`Machine::reset_bus`). A class driver's `SRB_FUNCTION_RESET_BUS` would instead wait in
    /// the port's queue behind the LU's tagged requests and catch nothing.
    fn reset(&mut self) -> Result<(), Error> {
        self.reset_due = false;
        self.out.resets += 1;
        self.out.in_flight_at_resets += self.in_flight as u64;
        self.rig.machine.reset_bus(0, 0)
    }

    fn conflicts(&self, op: &Op) -> bool {
        if !op.write && self.writes_in_flight == 0 {
            return false;
        }
        self.outstanding.iter().filter_map(|o| o.op.as_ref()).any(|o| {
            o.disk == op.disk && (o.write || op.write) && o.lba < op.lba + u64::from(op.blocks) && op.lba < o.lba + u64::from(o.blocks)
        })
    }

    fn submit(&mut self, op: Op) -> Result<(), Error> {
        let expect = if op.write {
            if self.spec.kind == Kind::Mixed {
                let shadow = &mut self.shadow[op.disk];
                for l in op.lba..op.lba + u64::from(op.blocks) {
                    shadow.insert(l, op.seed);
                }
            }
            Expect::Nothing
        } else {
            match self.spec.kind {
                Kind::VerifyPattern => Expect::Seed(op.seed),
                Kind::Mixed => {
                    let shadow = &self.shadow[op.disk];
                    Expect::Sectors((op.lba..op.lba + u64::from(op.blocks)).map(|l| shadow.get(&l).copied()).collect())
                }
                _ => Expect::Nothing,
            }
        };
        let req = self.request(&op)?;
        let ticket = self.rig.machine.submit(req)?;
        self.outstanding.push(Outstanding { ticket, op: Some(op), expect, ua_retries: 0, reissues: 0 });
        // Tickets grow, so a new one usually goes at the end.
        if self.by_ticket.last().is_none_or(|l| l.0 < ticket.0) {
            self.by_ticket.push((ticket.0, self.outstanding.len() - 1));
        } else {
            self.index_tickets();
        }
        self.in_flight += 1;
        if op.write {
            self.writes_in_flight += 1;
        }
        Ok(())
    }

    /// The request for `op`: a write carries its seed's pattern; a read a [`PortBuffer`], a
    /// spare one when there is one, which the device's DMA fills in place and `finish` checks
    /// where it is. A read whose data is checked gets a zeroed buffer, so that sectors the
    /// device did not write read as zeros, not as an earlier read's data (`complete` checks only
    /// a read that reported every byte transferred).
    fn request(&mut self, op: &Op) -> Result<Request, Error> {
        let target = self.rig.disks[op.disk].target;
        let offset = usize::from(self.spec.buffer_offset);
        if op.write {
            let req = rig::rw_request(target, op.lba, op.blocks, Some(pattern::sectors(op.lba, op.blocks as usize, op.seed)));
            return Ok(req.with_buffer_offset(offset));
        }
        let len = op.blocks as usize * SECTOR;
        let mut buf = match self.spare.pop() {
            Some(b) if b.capacity() >= len => b,
            _ => {
                // Room for the largest read of the workload, so that one buffer serves them all.
                let most = self.source.bs.unwrap_or(128).max(op.blocks) as usize * SECTOR;
                self.rig.machine.port_buffer(0, most, offset)?
            }
        };
        buf.set_len(len);
        if matches!(self.spec.kind, Kind::Mixed | Kind::VerifyPattern) {
            buf.bytes_mut().fill(0);
        }
        Ok(rig::read_request(target, op.lba, op.blocks, Vec::new()).with_port_buffer(buf))
    }

    /// `by_ticket` for the current `outstanding`: its entries still at the port (ticket 0 is
    /// a finished one), sorted by ticket. `outstanding` is mostly in ticket order already, so
    /// the sort has little to do.
    fn index_tickets(&mut self) {
        self.by_ticket.clear();
        self.by_ticket.extend(self.outstanding.iter().enumerate().filter(|(_, o)| o.ticket.0 != 0).map(|(i, o)| (o.ticket.0, i)));
        self.by_ticket.sort_unstable();
    }

    /// Completions that are ready, at least one (runs or waits for it), each with its place in
    /// `outstanding`, in the order of `outstanding`: the order a sweep of its tickets would
    /// find them in, so the run does not depend on the order the port keeps them in.
    fn collect(&mut self) -> Result<Vec<(usize, Completion)>, Error> {
        let m = &self.rig.machine;
        let by_ticket = &self.by_ticket;
        let place = |t: Ticket| by_ticket.binary_search_by_key(&t.0, |e| e.0).ok().and_then(|k| by_ticket.get(k)).map(|e| e.1);
        let (taken, taken_once, places) = (&mut self.taken, &mut self.taken_once, &mut self.places);
        let mut sweep = |found: &mut Vec<(usize, Completion)>| {
            taken.clear();
            places.clear();
            // `take_completed` appends in the order it accepts: the k-th accepted is `taken[k]`.
            m.take_completed(
                |t| {
                    let Some(i) = place(t) else { return false };
                    places.push((i, places.len()));
                    true
                },
                taken,
            );
            places.sort_unstable();
            taken_once.clear();
            taken_once.extend(taken.drain(..).map(Some));
            for &(i, k) in places.iter() {
                if let Some(c) = taken_once.get_mut(k).and_then(Option::take) {
                    found.push((i, c));
                }
            }
        };
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        // Only a step that completed something is worth a sweep.
        if m.has_completions() {
            sweep(&mut found);
        }
        if !found.is_empty() {
            return Ok(found);
        }
        if self.deterministic {
            m.run_until(|m| {
                if m.has_completions() {
                    sweep(&mut found);
                }
                !found.is_empty()
            })?;
        } else {
            let oldest = self.outstanding.first().map(|o| o.ticket).ok_or_else(|| Error::Usage("nothing outstanding".into()))?;
            let c = m.wait(oldest)?;
            found.push((0, c));
            let mut rest = Vec::new();
            sweep(&mut rest);
            found.extend(rest.into_iter().filter(|(i, _)| *i != 0));
        }
        Ok(found)
    }

    /// Handles one completion of `outstanding[i]`; marks the entry finished (ticket 0) or
    /// resubmits it under a new ticket.
    fn complete(&mut self, i: usize, c: Completion) -> Result<(), Error> {
        let done = self.finish(i, &c);
        if self.spare.len() < self.spec.qd
            && let Some(b) = c.port_buffer
        {
            self.spare.push(b);
        }
        done
    }

    fn finish(&mut self, i: usize, c: &Completion) -> Result<(), Error> {
        let entry = &mut self.outstanding[i];
        let Some(op) = entry.op else {
            // The bus reset itself.
            if !c.is_success() {
                let msg = format!("RESET BUS: {}", rig::describe(c));
                self.out.error(msg);
            }
            entry.ticket = Ticket(0);
            return Ok(());
        };
        let target = self.rig.disks[op.disk].target;
        // Formatted only for an error.
        let what = || format!("{} t{target} LBA {} x{}", if op.write { "WRITE" } else { "READ" }, op.lba, op.blocks);
        let status = c.status();
        let retry = if rig::is_unit_attention(c) && entry.ua_retries < UA_RETRIES {
            entry.ua_retries += 1;
            self.out.ua_retries += 1;
            true
        } else if status == sys::SRB_STATUS_BUS_RESET && self.out.resets > 0 && entry.reissues < RESET_REISSUES {
            entry.reissues += 1;
            self.out.reset_reissues += 1;
            true
        } else {
            false
        };
        if retry {
            let req = self.request(&op)?;
            self.outstanding[i].ticket = self.rig.machine.submit(req)?;
            self.index_tickets();
            return Ok(());
        }
        entry.ticket = Ticket(0);
        let expect = std::mem::replace(&mut entry.expect, Expect::Nothing);
        self.in_flight -= 1;
        if op.write {
            self.writes_in_flight -= 1;
        }
        self.out.ios += 1;
        if op.write {
            self.out.writes += 1;
        } else {
            self.out.reads += 1;
        }
        self.out.latencies.push(c.latency_ns);
        let want = u64::from(op.blocks) * SECTOR as u64;
        if !c.is_success() {
            if op.write && self.spec.kind == Kind::Mixed {
                // What the failed write left on the medium is unknown.
                let shadow = &mut self.shadow[op.disk];
                for l in op.lba..op.lba + u64::from(op.blocks) {
                    shadow.remove(&l);
                }
            }
            if op.write && self.spec.kind == Kind::WritePattern {
                self.out.unwritten.add(target, op.lba, u64::from(op.blocks), "write-failed");
            }
            self.out.error(format!("{}: {}", what(), rig::describe(c)));
            return Ok(());
        }
        if u64::from(c.data_transfer_length) != want {
            if op.write && self.spec.kind == Kind::WritePattern {
                self.out.unwritten.add(target, op.lba, u64::from(op.blocks), "write-failed");
            }
            self.out.error(format!("{}: SUCCESS with {} of {want} bytes", what(), c.data_transfer_length));
            return Ok(());
        }
        self.out.bytes += want;
        if !op.write {
            self.check(op, target, &expect, c.bytes());
        }
        Ok(())
    }

    fn check(&mut self, op: Op, target: u8, expect: &Expect, data: &[u8]) {
        if matches!(expect, Expect::Nothing) {
            return;
        }
        for (i, sector) in data.chunks_exact(SECTOR).enumerate() {
            let lba = op.lba + i as u64;
            let seed = match expect {
                Expect::Nothing => None,
                Expect::Seed(s) => Some(*s),
                Expect::Sectors(v) => v.get(i).copied().flatten(),
            };
            let Some(seed) = seed else { continue };
            self.out.sectors_checked += 1;
            if let Err(m) = pattern::check_sector(lba, seed, sector) {
                self.out.mismatches += 1;
                self.out.mismatch_extents.add(target, lba, 1, m.kind());
                if self.out.mismatch_log.len() < LOG_LIMIT {
                    self.out.mismatch_log.push(format!("t{target} {m}"));
                }
            }
        }
    }
}
