//! The device state machine: registers, commands, rings, completions, resets, faults.
//!
//! Everything here runs under the device lock; [`super::PvscsiDevice`] takes it, calls in, and
//! afterwards (lock released) calls the waker and the event sink.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::disk::{self, DataBuffer, DataFault, ScsiTarget, XferDir};
use crate::hba::{Clock, DmaAccess, DmaTrace};
use crate::mem::{DmaFault, GuestMemory};
use crate::port::sorted::SortedSet;

use super::pci::{PciConfig, PvscsiLayout};
use super::regs::{
    self, CMD_STATUS_FAILED, CMD_STATUS_NOT_ENOUGH_DATA, CMD_STATUS_OK, CMP_DESC_SIZE, CMP_PER_PAGE,
    INTR_CMPL_0, INTR_MSG_0, MAX_MSG_PAGES, MAX_REQ_QUEUE_DEPTH, MAX_RING_PAGES, MAX_SG_ELEMS,
    MAX_TARGET, MSG_DESC_SIZE, MSG_PER_PAGE, PAGE_SHIFT, REQ_DESC_SIZE, REQ_PER_PAGE, SG_ELEM_SIZE,
    cmd, flags, host, rs,
};
use super::ring::{CmpDesc, MsgDesc, ReqDesc, SgElem};
use super::types::{
    DeviceEvent, DmaFaultRecord, DmaSite, Effect, FaultAction, HostileAction, HostileConfig, HostileWrite,
    Injection, InjectionId, Latency, PvscsiConfig, Registers, RingInfo, Stats, Trigger,
};

/// `SplitMix64`: small, seedable, good enough for latencies and garbage.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.next_u64() % span,
            None => self.next_u64(),
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { usize::try_from(self.next_u64() % n as u64).unwrap_or(0) }
    }
}

/// A request taken from the ring and not finished.
struct InFlight {
    seq: u64,
    desc: ReqDesc,
    /// Target id and LUN byte it was routed to.
    target: u8,
    lun: u8,
    /// Data segments (PA, length) built at kick time, as QEMU reads the SG list in the kick.
    segs: Vec<(u64, u64)>,
    /// When it finishes (`u64::MAX`: never on its own).
    due: u64,
    effect: Option<Effect>,
    /// Direction contradiction: QEMU never completes it (pvscsi-facts.md Q4).
    stuck: bool,
}

/// The requests in flight in the order they were queued (QEMU's request list), with an index of
/// the live ones (not stuck) by (due, submission), so that the device finds the next to finish
/// without a scan of them all per scheduler step.
#[derive(Default)]
struct InFlightSet {
    /// By queue position: position `base + i` in slot `i`, `None` once removed (the front slot
    /// is never `None`). Positions only grow, so a request is queued at the back and removed
    /// in place: no request (some 200 bytes) moves, as it would in a map's nodes.
    queued: VecDeque<Option<InFlight>>,
    /// The position of `queued[0]`.
    base: u64,
    /// Requests in `queued`.
    count: usize,
    /// (due, seq, queue position) of each live request.
    due: SortedSet<(u64, u64, u64)>,
    next_position: u64,
}

impl InFlightSet {
    /// Queues `r` at the end.
    fn push(&mut self, r: InFlight) {
        let at = self.next_position;
        self.next_position += 1;
        if !r.stuck {
            self.due.insert((r.due, r.seq, at));
        }
        if self.queued.is_empty() {
            self.base = at;
        }
        self.queued.push_back(Some(r));
        self.count += 1;
    }

    fn remove(&mut self, at: u64) -> Option<InFlight> {
        let i = usize::try_from(at.checked_sub(self.base)?).ok()?;
        let r = self.queued.get_mut(i)?.take()?;
        self.count -= 1;
        while self.queued.front().is_some_and(Option::is_none) {
            self.queued.pop_front();
            self.base += 1;
        }
        if !r.stuck {
            // Requests finish mostly in due order: the first entry, without a search.
            let key = (r.due, r.seq, at);
            if self.due.first() == Some(&key) {
                self.due.pop_first();
            } else {
                self.due.remove(&key);
            }
        }
        Some(r)
    }

    /// The requests with their queue positions, in queue order.
    fn iter(&self) -> impl Iterator<Item = (u64, &InFlight)> {
        let base = self.base;
        self.queued.iter().enumerate().filter_map(move |(i, r)| Some((base + i as u64, r.as_ref()?)))
    }

    /// Queue positions of the requests matching `pred`, in queue order.
    fn positions(&self, pred: impl Fn(&InFlight) -> bool) -> Vec<u64> {
        self.iter().filter(|(_, r)| pred(r)).map(|(at, _)| at).collect()
    }

    /// Queue positions of the live requests due by `now`, in (due, seq) order, into `out`
    /// (cleared first; the caller keeps it from step to step, so no step allocates).
    fn due_by(&self, now: u64, out: &mut Vec<u64>) {
        out.clear();
        out.extend(self.due.at_or_before(&(now, u64::MAX, u64::MAX)).map(|k| k.2));
    }

    /// When the first live request that finishes on its own is due.
    fn next_due(&self) -> Option<u64> {
        self.due.first().map(|k| k.0).filter(|&t| t != u64::MAX)
    }

    fn len(&self) -> usize {
        self.count
    }

    fn live(&self) -> usize {
        self.due.len()
    }

    fn clear(&mut self) {
        self.queued.clear();
        self.count = 0;
        self.due.clear();
    }
}

/// A finished request waiting for the completion worker.
struct Done {
    at: u64,
    cmp: CmpDesc,
}

struct Scheduled {
    at_ns: Option<u64>,
    at_requests: Option<u64>,
    /// `Trigger::DuringCommand`: the command, and the data word (counted from 1) before which
    /// the action runs.
    during: Option<(u32, usize)>,
    action: FaultAction,
}

struct Hostile {
    cfg: HostileConfig,
    rng: Rng,
    next_at: Option<u64>,
}

/// A queued one-off hostile write: an action whose value the generator draws when it runs, or
/// a write with its value given.
#[derive(Clone, Copy, Debug)]
enum Queued {
    Drawn(HostileAction),
    Given(HostileWrite),
}

/// The data of one request in guest memory, seen by the target as a flat buffer.
struct SgBuffer<'a> {
    mem: &'a dyn GuestMemory,
    segs: &'a [(u64, u64)],
    len: u64,
    fault: Option<DmaFault>,
    /// The DMA trace, when it is on.
    trace: Option<&'a DmaTrace>,
}

impl SgBuffer<'_> {
    /// Visits the (PA, piece) pairs covering `[offset, offset + len)`.
    fn walk(
        &mut self,
        offset: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(u64, std::ops::Range<usize>) -> Result<(), DmaFault>,
    ) -> Result<(), DataFault> {
        let fault = DataFault { offset };
        if offset.checked_add(len as u64).is_none_or(|end| end > self.len) {
            return Err(fault);
        }
        let mut seg_start = 0u64;
        let mut done = 0usize;
        for &(pa, seg_len) in self.segs {
            if done == len {
                break;
            }
            let pos = offset + done as u64;
            let seg_end = seg_start.saturating_add(seg_len);
            if pos < seg_end {
                let within = pos - seg_start;
                let n = usize::try_from((seg_end - pos).min((len - done) as u64)).unwrap_or(len - done);
                let Some(at) = pa.checked_add(within) else {
                    self.fault = Some(DmaFault { pa, len: n, write });
                    return Err(fault);
                };
                if let Err(e) = f(at, done..done + n) {
                    self.fault = Some(e);
                    return Err(DataFault { offset: pos });
                }
                done += n;
            }
            seg_start = seg_end;
        }
        if done == len { Ok(()) } else { Err(fault) }
    }
}

impl DataBuffer for SgBuffer<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<(), DataFault> {
        let (mem, trace) = (self.mem, self.trace);
        self.walk(offset, out.len(), false, |pa, r| match out.get_mut(r) {
            Some(dst) => {
                mem.read(pa, dst)?;
                if let Some(t) = trace {
                    t(&DmaAccess { what: DmaSite::Data.name(), write: false, pa, data: dst });
                }
                Ok(())
            }
            None => Err(DmaFault { pa, len: 0, write: false }),
        })
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DataFault> {
        let (mem, trace) = (self.mem, self.trace);
        self.walk(offset, data.len(), true, |pa, r| match data.get(r) {
            Some(src) => {
                mem.write(pa, src)?;
                if let Some(t) = trace {
                    t(&DmaAccess { what: DmaSite::Data.name(), write: true, pa, data: src });
                }
                Ok(())
            }
            None => Err(DmaFault { pa, len: 0, write: true }),
        })
    }
}

/// Everything behind the device lock.
#[allow(clippy::struct_excessive_bools)] // the flags are QEMU's, one per piece of device state
pub(crate) struct State {
    pub(crate) cfg: PvscsiConfig,
    mem: Arc<dyn GuestMemory>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) pci: PciConfig,

    // Registers (pvscsi-facts.md §2).
    cur_cmd: u32,
    words: Vec<u32>,
    cmd_status: u32,
    intr_status: u32,
    intr_mask: u32,
    line: bool,

    // Rings (§5, QEMU's ring manager).
    rings_valid: bool,
    msg_valid: bool,
    rs_pa: u64,
    req_pages: [u64; MAX_RING_PAGES],
    cmp_pages: [u64; MAX_RING_PAGES],
    msg_pages: [u64; MAX_MSG_PAGES],
    req_log2: u32,
    cmp_log2: u32,
    msg_log2: u32,
    consumed: u64,
    filled_cmp: u32,
    filled_msg: u32,
    /// `SETUP_REQCALLTHRESHOLD` turned the request-call threshold on (VMware layout only).
    req_call: bool,
    /// The `reqCallThreshold` last published in the rings-state page (0: none yet).
    req_call_threshold: u32,

    // Requests.
    seq: u64,
    in_flight: InFlightSet,
    /// Segment lists of finished requests, for the next requests to fill: a request's list is
    /// taken from here at the kick and comes back when it has run, so that the I/O path does
    /// not allocate one per request.
    seg_pool: Vec<Vec<(u64, u64)>>,
    /// `run_due`'s list of the requests due, and `post`'s batch, kept between calls for the
    /// same reason.
    due_scratch: Vec<u64>,
    batch_scratch: Vec<CmpDesc>,
    done: VecDeque<Done>,
    history: VecDeque<u64>,

    targets: Vec<Option<Arc<dyn ScsiTarget>>>,

    rng: Rng,
    latency: Latency,
    injections: Vec<(InjectionId, Injection)>,
    next_injection: u64,
    scheduled: Vec<Scheduled>,
    due_actions: VecDeque<(u64, FaultAction)>,
    hostile: Option<Hostile>,
    hostile_pending: VecDeque<(u64, Queued)>,
    /// Commands of this code fail, this many more times (`PvscsiDevice::fail_commands`).
    failing: Option<(u32, u32)>,
    /// Completions of finished requests left unposted (`Effect::Unposted`), until an
    /// `ADAPTER_RESET`.
    unposted: Vec<CmpDesc>,

    pub(crate) stats: Stats,
    /// Receives every DMA access when the machine traces them (`Hba::set_dma_trace`).
    pub(crate) dma_trace: Option<DmaTrace>,
    pub(crate) events: Vec<DeviceEvent>,
    pub(crate) want_events: bool,
    /// Set when the scheduler must be woken (line changed or new device work).
    pub(crate) wake: bool,
}

const HISTORY: usize = 256;

/// At most this many segment lists wait in `State::seg_pool` (more requests than that are
/// never in flight at once: the request ring holds no more).
const SEG_POOL_MAX: usize = MAX_REQ_QUEUE_DEPTH as usize;

/// The `reqCallThreshold` the model publishes while it has requests in flight (VMware does not
/// document its own): the driver then kicks only once this many requests wait unconsumed.
pub const BUSY_REQ_CALL_THRESHOLD: u32 = 8;

fn ppn_pa(lo: u32, hi: u32) -> u64 {
    ((u64::from(hi) << 32) | u64::from(lo)) << PAGE_SHIFT
}

impl State {
    pub(crate) fn new(cfg: PvscsiConfig, mem: Arc<dyn GuestMemory>, clock: Arc<dyn Clock>) -> Self {
        let pci = Self::fresh_pci(&cfg);
        Self {
            rng: Rng::new(cfg.seed),
            latency: cfg.latency,
            cfg,
            mem,
            clock,
            pci,
            cur_cmd: cmd::FIRST,
            words: Vec::with_capacity(regs::MAX_COMMAND_WORDS),
            cmd_status: CMD_STATUS_OK,
            intr_status: 0,
            intr_mask: 0,
            line: false,
            rings_valid: false,
            msg_valid: false,
            rs_pa: 0,
            req_pages: [0; MAX_RING_PAGES],
            cmp_pages: [0; MAX_RING_PAGES],
            msg_pages: [0; MAX_MSG_PAGES],
            req_log2: 0,
            cmp_log2: 0,
            msg_log2: 0,
            consumed: 0,
            filled_cmp: 0,
            filled_msg: 0,
            req_call: false,
            req_call_threshold: 0,
            seq: 0,
            in_flight: InFlightSet::default(),
            seg_pool: Vec::new(),
            due_scratch: Vec::new(),
            batch_scratch: Vec::new(),
            done: VecDeque::new(),
            history: VecDeque::with_capacity(HISTORY),
            targets: (0..=MAX_TARGET).map(|_| None).collect(),
            injections: Vec::new(),
            next_injection: 1,
            scheduled: Vec::new(),
            due_actions: VecDeque::new(),
            hostile: None,
            hostile_pending: VecDeque::new(),
            failing: None,
            unposted: Vec::new(),
            stats: Stats::default(),
            dma_trace: None,
            events: Vec::new(),
            want_events: false,
            wake: false,
        }
    }

    fn fresh_pci(cfg: &PvscsiConfig) -> PciConfig {
        PciConfig::new(cfg.layout, cfg.mmio_base, cfg.io_base, cfg.interrupt_line, cfg.msi_capability, cfg.express_capability)
    }

    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    fn event(&mut self, e: DeviceEvent) {
        if self.want_events {
            self.events.push(e);
        }
    }

    fn record_fault(&mut self, site: DmaSite, fault: DmaFault, context: Option<u64>) {
        let rec = DmaFaultRecord { site, fault, context };
        self.stats.dma_faults += 1;
        self.stats.last_dma_fault = Some(rec);
        self.event(DeviceEvent::DmaFault(rec));
    }

    // ---------------------------------------------------------------- DMA helpers

    fn dma_read(&mut self, site: DmaSite, pa: u64, buf: &mut [u8], ctx: Option<u64>) -> bool {
        match self.mem.read(pa, buf) {
            Ok(()) => {
                if let Some(t) = &self.dma_trace {
                    t(&DmaAccess { what: site.name(), write: false, pa, data: buf });
                }
                true
            }
            Err(f) => {
                self.record_fault(site, f, ctx);
                false
            }
        }
    }

    fn dma_write(&mut self, site: DmaSite, pa: u64, data: &[u8], ctx: Option<u64>) -> bool {
        match self.mem.write(pa, data) {
            Ok(()) => {
                if let Some(t) = &self.dma_trace {
                    t(&DmaAccess { what: site.name(), write: true, pa, data });
                }
                true
            }
            Err(f) => {
                self.record_fault(site, f, ctx);
                false
            }
        }
    }

    fn rs_read(&mut self, off: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        let pa = self.rs_pa.wrapping_add(off);
        self.dma_read(DmaSite::RingsState, pa, &mut b, None).then(|| u32::from_le_bytes(b))
    }

    fn rs_write(&mut self, off: u64, v: u32) {
        let pa = self.rs_pa.wrapping_add(off);
        self.dma_write(DmaSite::RingsState, pa, &v.to_le_bytes(), None);
    }

    // ---------------------------------------------------------------- interrupts (§3)

    /// QEMU `pvscsi_update_irq_status`: INTx level = (status & mask) ≠ 0; with MSI enabled in
    /// config space, one message per update that wants an interrupt and INTx untouched.
    fn update_irq(&mut self) {
        let want = self.intr_status & self.intr_mask != 0;
        if self.pci.msi_enabled() {
            if want {
                self.stats.msi_messages += 1;
                self.wake = true;
            }
            return;
        }
        self.set_line(want);
    }

    pub(crate) fn set_line(&mut self, level: bool) {
        if level != self.line {
            self.line = level;
            if level {
                self.stats.interrupts_raised += 1;
            }
            self.wake = true;
            self.event(DeviceEvent::Irq { asserted: level });
        }
    }

    pub(crate) fn line(&self) -> bool {
        self.line
    }

    // ---------------------------------------------------------------- registers (§2)

    pub(crate) fn reg_read(&mut self, offset: u64) -> u32 {
        self.stats.reg_reads += 1;
        match offset {
            regs::REG_COMMAND_STATUS => self.cmd_status,
            regs::REG_INTR_STATUS => self.intr_status,
            regs::REG_INTR_MASK => self.intr_mask,
            _ => 0,
        }
    }

    pub(crate) fn reg_write(&mut self, offset: u64, value: u32) {
        self.stats.reg_writes += 1;
        match offset {
            regs::REG_COMMAND => self.on_command(value),
            regs::REG_COMMAND_DATA => self.on_command_data(value),
            regs::REG_INTR_STATUS => {
                self.intr_status &= !value;
                self.update_irq();
                // QEMU schedules its completion worker here if completions are queued.
                if !self.done.is_empty() {
                    self.wake = true;
                }
            }
            regs::REG_INTR_MASK => {
                self.intr_mask = value;
                self.update_irq();
            }
            regs::REG_KICK_NON_RW_IO | regs::REG_KICK_RW_IO => self.kick(),
            _ => {}
        }
    }

    pub(crate) fn registers(&self) -> Registers {
        Registers {
            command_status: self.cmd_status,
            intr_status: self.intr_status,
            intr_mask: self.intr_mask,
            line: self.line,
            pending_command: self.cur_cmd,
            pending_words: self.words.len(),
            rings_valid: self.rings_valid,
            msg_ring_valid: self.msg_valid,
        }
    }

    pub(crate) fn ring_info(&self) -> RingInfo {
        RingInfo {
            rings_state_pa: self.rs_pa,
            req_entries_log2: self.req_log2,
            cmp_entries_log2: self.cmp_log2,
            msg_entries_log2: if self.msg_valid { self.msg_log2 } else { 0 },
            consumed: self.consumed,
            completions_filled: self.filled_cmp,
            messages_filled: self.filled_msg,
        }
    }

    // ---------------------------------------------------------------- commands (§4)

    /// QEMU `pvscsi_on_command`: codes 1..=9 become current, anything else the "unknown"
    /// pseudo-command 0; status −2; a command without data runs at once.
    fn on_command(&mut self, code: u32) {
        let known = code > cmd::FIRST && code < cmd::LAST || code == cmd::SETUP_REQCALLTHRESHOLD && self.vmware();
        self.cur_cmd = if known { code } else { cmd::FIRST };
        self.words.clear();
        self.cmd_status = CMD_STATUS_NOT_ENOUGH_DATA;
        self.process_command();
    }

    fn on_command_data(&mut self, word: u32) {
        let arriving = (self.cur_cmd, self.words.len().saturating_add(1));
        if let Some(i) = self.scheduled.iter().position(|s| s.during == Some(arriving)) {
            // A test's `Trigger::DuringCommand`: the action first, then the word meets what it
            // left (after an adapter reset, no command: a stray word).
            let s = self.scheduled.remove(i);
            self.apply(s.action);
        }
        if self.cur_cmd == cmd::FIRST {
            self.stats.stray_command_words += 1;
        }
        self.words.push(word);
        self.process_command();
    }

    fn process_command(&mut self) {
        let needed = if self.cur_cmd == cmd::SETUP_REQCALLTHRESHOLD { 1 } else { regs::command_words(self.cur_cmd) };
        if self.words.len() < needed {
            return;
        }
        let code = self.cur_cmd;
        self.stats.commands += 1;
        let status = match code {
            _ if self.fails(code) => CMD_STATUS_FAILED,
            cmd::ADAPTER_RESET => {
                self.adapter_reset("adapter");
                CMD_STATUS_OK
            }
            cmd::SETUP_RINGS => self.setup_rings(),
            cmd::RESET_BUS => {
                self.bus_reset();
                CMD_STATUS_OK
            }
            cmd::RESET_DEVICE => {
                let lun = self.words_lun(1);
                let target = self.words.first().copied().unwrap_or(u32::MAX);
                self.reset_device_cmd(target, lun)
            }
            cmd::ABORT_CMD => {
                let ctx = u64::from(self.word(0)) | (u64::from(self.word(1)) << 32);
                self.abort(ctx);
                CMD_STATUS_OK
            }
            cmd::CONFIG if self.cfg.layout == PvscsiLayout::Vmware => self.config_cmd(),
            cmd::SETUP_REQCALLTHRESHOLD => self.setup_req_call_threshold(),
            cmd::SETUP_MSG_RING => self.setup_msg_ring(),
            _ => {
                // FIRST (unknown), ISSUE_SCSI, CONFIG under QEMU, DEVICE_UNPLUG.
                self.stats.unknown_commands += 1;
                CMD_STATUS_FAILED
            }
        };
        self.cmd_status = status;
        self.cur_cmd = cmd::FIRST;
        self.words.clear();
        self.event(DeviceEvent::Command { code, status });
    }

    fn word(&self, i: usize) -> u32 {
        self.words.get(i).copied().unwrap_or(0)
    }

    /// The 8 LUN bytes starting at word `i`.
    fn words_lun(&self, i: usize) -> [u8; 8] {
        let mut lun = [0u8; 8];
        lun[..4].copy_from_slice(&self.word(i).to_le_bytes());
        lun[4..].copy_from_slice(&self.word(i + 1).to_le_bytes());
        lun
    }

    /// QEMU `pvscsi_on_cmd_setup_rings` + `pvscsi_ring_init_data` (pvscsi-facts.md §4.3).
    fn setup_rings(&mut self) -> u32 {
        let req_n = self.word(0);
        let cmp_n = self.word(1);
        let max = u32::try_from(MAX_RING_PAGES).unwrap_or(32);
        if req_n == 0 || req_n > max || cmp_n == 0 || cmp_n > max {
            return CMD_STATUS_FAILED;
        }
        if !req_n.is_power_of_two() || !cmp_n.is_power_of_two() {
            self.stats.non_power_of_two_rings += 1;
        }
        self.rs_pa = ppn_pa(self.word(2), self.word(3));
        // Only the first n slots are replaced: a non-power-of-two count rounds the ring up and
        // the extra slots use whatever is left there (0, or a page of an earlier setup), Q2.
        for i in 0..req_n as usize {
            self.req_pages[i] = ppn_pa(self.word(4 + 2 * i), self.word(5 + 2 * i));
        }
        for i in 0..cmp_n as usize {
            self.cmp_pages[i] = ppn_pa(self.word(68 + 2 * i), self.word(69 + 2 * i));
        }
        self.req_log2 = regs::bit_length(req_n * REQ_PER_PAGE - 1);
        self.cmp_log2 = regs::bit_length(cmp_n * CMP_PER_PAGE - 1);
        let init = self.cfg.initial_index;
        self.consumed = u64::from(init);
        self.filled_cmp = init;
        self.rs_write(rs::REQ_PROD_IDX, init);
        self.rs_write(rs::REQ_CONS_IDX, init);
        self.rs_write(rs::REQ_NUM_ENTRIES_LOG2, self.req_log2);
        self.rs_write(rs::CMP_PROD_IDX, init);
        self.rs_write(rs::CMP_CONS_IDX, init);
        self.rs_write(rs::CMP_NUM_ENTRIES_LOG2, self.cmp_log2);
        self.rings_valid = true;
        CMD_STATUS_OK
    }

    /// QEMU `pvscsi_on_cmd_setup_msg_ring` (pvscsi-facts.md §4.4): refused without `use_msg`;
    /// a no-op returning 34 before `SETUP_RINGS`.
    fn setup_msg_ring(&mut self) -> u32 {
        if !self.cfg.use_msg {
            return CMD_STATUS_FAILED;
        }
        if self.rings_valid {
            let n = self.word(0);
            if n == 0 || n > u32::try_from(MAX_MSG_PAGES).unwrap_or(16) {
                return CMD_STATUS_FAILED;
            }
            for i in 0..n as usize {
                self.msg_pages[i] = ppn_pa(self.word(2 + 2 * i), self.word(3 + 2 * i));
            }
            self.msg_log2 = regs::bit_length(n * MSG_PER_PAGE - 1);
            self.filled_msg = 0;
            self.rs_write(rs::MSG_PROD_IDX, 0);
            self.rs_write(rs::MSG_CONS_IDX, 0);
            self.rs_write(rs::MSG_NUM_ENTRIES_LOG2, self.msg_log2);
            self.msg_valid = true;
        }
        u32::try_from(regs::command_words(cmd::SETUP_MSG_RING)).unwrap_or(34)
    }

    fn vmware(&self) -> bool {
        self.cfg.layout == PvscsiLayout::Vmware
    }

    /// `SETUP_REQCALLTHRESHOLD` in VMware mode (pvscsi-facts.md §4.8; the command and the
    /// rings-state field are in Linux's and FreeBSD's headers, the driver's side of the rule in
    /// their `pvscsi_kick_io`: a READ/WRITE is kicked only when `reqProdIdx − reqConsIdx ≥
    /// reqCallThreshold`). `enable` turns it on or off; the status is 1 when it is on, 0 when off
    /// (Linux takes any non-zero status for "enabled"). QEMU does not know the command: in the
    /// QEMU layout it never gets here, the probe reads 0xFFFFFFFF.
    ///
    /// What VMware publishes is not documented. The model publishes 1 while it has no request in
    /// flight, so that the next READ/WRITE is kicked, and [`BUSY_REQ_CALL_THRESHOLD`] while it
    /// has, when it looks at the request ring itself each time it runs its completions
    /// ([`Self::poll_request_ring`]); a driver that skips a kick it owes leaves its request
    /// unseen until the port times it out.
    fn setup_req_call_threshold(&mut self) -> u32 {
        self.req_call = self.word(0) != 0;
        self.req_call_threshold = 0;
        self.publish_req_call_threshold();
        u32::from(self.req_call)
    }

    /// Writes `reqCallThreshold` for the device's state now, when it changed.
    fn publish_req_call_threshold(&mut self) {
        if !self.req_call || !self.rings_valid {
            return;
        }
        let threshold = if self.in_flight.next_due().is_some() { BUSY_REQ_CALL_THRESHOLD } else { 1 };
        if threshold != self.req_call_threshold {
            self.req_call_threshold = threshold;
            self.rs_write(rs::REQ_CALL_THRESHOLD, threshold);
        }
    }

    /// With the threshold on, the device takes what the driver posted without a kick whenever it
    /// runs its completions; then publishes the threshold for what it holds afterwards, and, if
    /// that let it go idle (threshold 1), looks once more, closing the race with a driver that
    /// posted under the old threshold (the driver orders its index store before its threshold
    /// load; the device here its threshold store before its index load).
    fn poll_request_ring(&mut self) {
        if !self.req_call || !self.rings_valid {
            return;
        }
        let taken = self.process_request_ring();
        self.stats.requests_polled += u64::from(taken);
        self.publish_req_call_threshold();
        if self.req_call_threshold == 1 {
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            let taken = self.process_request_ring();
            self.stats.requests_polled += u64::from(taken);
            self.publish_req_call_threshold();
        }
    }

    /// CONFIG in VMware mode (pvscsi-facts.md §4.7): the controller page, with numPhys.
    fn config_cmd(&mut self) -> u32 {
        let cmp_addr = u64::from(self.word(0)) | (u64::from(self.word(1)) << 32);
        let page = self.word(4);
        if page != regs::CONFIG_PAGE_CONTROLLER {
            return CMD_STATUS_FAILED;
        }
        let mut a = vec![0u8; regs::CONFIG_CONTROLLER_PAGE_LEN];
        a[0..4].copy_from_slice(&page.to_le_bytes());
        let dwords = u16::try_from(regs::CONFIG_CONTROLLER_PAGE_LEN / 4).unwrap_or(0);
        a[4..6].copy_from_slice(&dwords.to_le_bytes());
        // hostStatus SUCCESS, scsiStatus GOOD (bytes 6..10 stay zero).
        a[16..24].copy_from_slice(&0x5000_C29F_0000_0001u64.to_le_bytes());
        for (i, ch) in "VMware".encode_utf16().enumerate() {
            a[24 + 2 * i..26 + 2 * i].copy_from_slice(&ch.to_le_bytes());
        }
        let n = regs::CONFIG_NUM_PHYS_OFFSET;
        a[n..n + 4].copy_from_slice(&u32::from(self.cfg.max_targets).to_le_bytes());
        if self.dma_write(DmaSite::Config, cmp_addr, &a, None) { CMD_STATUS_OK } else { CMD_STATUS_FAILED }
    }

    // ---------------------------------------------------------------- targets (§6.4)

    fn max_target(&self) -> u8 {
        match self.cfg.layout {
            PvscsiLayout::Qemu => MAX_TARGET,
            PvscsiLayout::Vmware => self.cfg.max_targets.saturating_sub(1).min(MAX_TARGET),
        }
    }

    /// QEMU `pvscsi_device_find`: LUN bytes other than `lun[1]` must be 0, bus 0, target in range,
    /// and a device at that id (any LUN; the target answers foreign LUNs itself).
    fn lookup(&self, bus: u8, target: u8, lun: [u8; 8]) -> Option<(&dyn ScsiTarget, u8)> {
        if lun[0] != 0 || lun[2..].iter().any(|&b| b != 0) || bus != 0 || target > self.max_target() {
            return None;
        }
        let t = self.targets.get(usize::from(target))?.as_deref()?;
        Some((t, lun[1]))
    }

    pub(crate) fn attach(&mut self, target: u8, t: Arc<dyn ScsiTarget>) -> Result<(), super::PvscsiError> {
        if target > self.max_target() {
            return Err(super::PvscsiError::BadTarget(target));
        }
        let slot = self.targets.get_mut(usize::from(target)).ok_or(super::PvscsiError::BadTarget(target))?;
        if slot.is_some() {
            return Err(super::PvscsiError::Occupied(target));
        }
        *slot = Some(t);
        self.send_msg(regs::msg::DEV_ADDED, target);
        Ok(())
    }

    /// Hot-unplug (pvscsi-facts.md §5.6, §7): the message goes out first, then the device's
    /// requests are cancelled outside a reset, i.e. with ABORTQUEUE.
    pub(crate) fn detach(&mut self, target: u8) -> Option<Arc<dyn ScsiTarget>> {
        let present = self.targets.get(usize::from(target)).is_some_and(Option::is_some);
        if !present {
            return None;
        }
        self.send_msg(regs::msg::DEV_REMOVED, target);
        self.cancel_where(|r| r.target == target, host::ABORTQUEUE);
        self.targets.get_mut(usize::from(target)).and_then(Option::take)
    }

    pub(crate) fn target(&self, target: u8) -> Option<Arc<dyn ScsiTarget>> {
        self.targets.get(usize::from(target)).cloned().flatten()
    }

    pub(crate) fn target_ids(&self) -> Vec<u8> {
        (0..=MAX_TARGET).filter(|&t| self.targets.get(usize::from(t)).is_some_and(Option::is_some)).collect()
    }

    // ---------------------------------------------------------------- kick (§5.7)

    /// QEMU `pvscsi_process_io`: pop every posted descriptor (while `reqProdIdx ≠ consumed` and
    /// `reqProdIdx − consumed < 1024`), start each request, then write reqConsIdx. Nothing is
    /// completed here; even immediate errors are only queued.
    fn kick(&mut self) {
        self.stats.kicks += 1;
        if !self.rings_valid {
            self.stats.kicks_ignored += 1;
            return;
        }
        let taken = self.process_request_ring();
        self.publish_req_call_threshold();
        self.event(DeviceEvent::Kick { taken });
    }

    /// The body of a kick: takes every posted descriptor and writes reqConsIdx; returns how many.
    fn process_request_ring(&mut self) -> u32 {
        let now = self.now();
        let mut taken = 0u32;
        while let Some(prod) = self.rs_read(rs::REQ_PROD_IDX) {
            let c = regs::lo32(self.consumed);
            let go32 = prod != c && prod.wrapping_sub(c) < MAX_REQ_QUEUE_DEPTH;
            let go = if self.cfg.q8_index_wrap {
                // QEMU compares the u32 producer index with its u64 counter in 64 bits.
                let p = u64::from(prod);
                p != self.consumed && p.wrapping_sub(self.consumed) < u64::from(MAX_REQ_QUEUE_DEPTH)
            } else {
                go32
            };
            if !go {
                if go32 {
                    self.stats.index_wrap_stalls += 1;
                } else if prod != c {
                    self.stats.req_prod_out_of_range += 1;
                }
                break;
            }
            let slot = regs::lo32(self.consumed) & ((1u32 << self.req_log2) - 1);
            self.consumed = if self.cfg.q8_index_wrap {
                self.consumed.wrapping_add(1)
            } else {
                u64::from(regs::lo32(self.consumed).wrapping_add(1))
            };
            let page = self.req_pages.get((slot / REQ_PER_PAGE) as usize).copied().unwrap_or(0);
            let pa = page.wrapping_add(u64::from(slot % REQ_PER_PAGE) * REQ_DESC_SIZE as u64);
            if pa == 0 {
                // Q3: address 0 means "no descriptor" to QEMU; the index is consumed anyway.
                self.stats.null_descriptors += 1;
                break;
            }
            let mut raw = [0u8; REQ_DESC_SIZE];
            if !self.dma_read(DmaSite::RequestDescriptor, pa, &mut raw, None) {
                // The slot is consumed but no request can be formed (QEMU would read whatever the
                // bus returns); nothing will complete for it.
                continue;
            }
            taken += 1;
            self.accept(ReqDesc::from_bytes(&raw), now);
        }
        self.rs_write(rs::REQ_CONS_IDX, regs::lo32(self.consumed));
        if taken > 0 {
            self.wake = true;
        }
        taken
    }

    fn accept(&mut self, d: ReqDesc, now: u64) {
        self.stats.requests += 1;
        self.seq += 1;
        self.arm_request_triggers(now);
        if d.flags & (flags::RESERVED_MASK | flags::OUT_OF_BAND_CDB) != 0 {
            self.stats.bad_flags += 1;
        }
        if d.context == 0 || d.context >> 32 != 0 {
            self.stats.bad_contexts += 1;
        }
        let cdb = d.cdb();
        let opcode = cdb.first().copied().unwrap_or(0);
        self.event(DeviceEvent::Request { context: d.context, target: d.target, lun: d.lun[1], opcode });
        let Some((dir, lun)) = self.lookup(d.bus, d.target, d.lun).map(|(target, lun)| (target.transfer(lun, cdb).dir, lun)) else {
            self.stats.selection_timeouts += 1;
            self.finish_now(CmpDesc { context: d.context, host_status: host::SELTIMEO, ..CmpDesc::default() }, now);
            return;
        };
        let contradiction = (d.flags & flags::DIR_TODEVICE != 0 && dir == XferDir::FromDevice)
            || (d.flags & flags::DIR_TOHOST != 0 && dir == XferDir::ToDevice);
        let seq = self.seq;
        if contradiction {
            // QEMU sets BADMSG and cancels a request it never enqueued: no completion ever.
            self.stats.direction_contradictions += 1;
            self.in_flight.push(InFlight {
                seq,
                desc: d,
                target: d.target,
                lun,
                segs: Vec::new(),
                due: u64::MAX,
                effect: None,
                stuck: true,
            });
            return;
        }
        let Some(segs) = self.build_segments(&d) else {
            // Our choice for a DMA fault while reading the SG list: INVPARAM ("invalid parameter
            // in CCB or SG list"), no data moved. QEMU would read whatever the bus returns.
            self.finish_now(CmpDesc { context: d.context, host_status: host::INVPARAM, ..CmpDesc::default() }, now);
            return;
        };
        let effect = self.match_injection(&d);
        let latency = match effect {
            Some(Effect::Latency(ns)) => ns,
            _ => self.rng.between(self.latency.min_ns, self.latency.max_ns),
        };
        let due = if effect == Some(Effect::Lose) { u64::MAX } else { now.saturating_add(latency) };
        self.in_flight.push(InFlight { seq, desc: d, target: d.target, lun, segs, due, effect, stuck: false });
    }

    /// Whether QEMU would still be waiting for this request's data: a READ, WRITE or WRITE AND
    /// VERIFY of blocks that passed scsi-hd's checks (so it went to `dma_blk_io`) with a
    /// descriptor that has no SG list and `dataLen` 0. `pvscsi_build_sglist` then adds one
    /// 0-byte segment, `dma_blk_cb` can map nothing of it and waits for a map client, again and
    /// again; the request completes only when a reset or an abort cancels it. With an SG list of
    /// no bytes there is no segment and it completes at once. Seen on QEMU 7.2: a WRITE(10) of 8
    /// blocks sent that way timed out.
    fn waits_for_dma(r: &InFlight, cmp: &CmpDesc) -> bool {
        // The descriptor's fields first: a request with data (all but a few) needs no decoding
        // of its CDB.
        r.lun == 0
            && r.effect.is_none()
            && r.desc.flags & flags::WITH_SG_LIST == 0
            && r.desc.data_len == 0
            && cmp.host_status != host::SELTIMEO
            && cmp.scsi_status == u16::from(disk::STATUS_GOOD)
            && matches!(
                disk::cdb::block_range(r.desc.cdb()),
                Some((disk::cdb::BlockOp::Read | disk::cdb::BlockOp::Write | disk::cdb::BlockOp::WriteVerify, range)) if range.blocks > 0
            )
    }

    /// QEMU `pvscsi_convert_sglist` / `pvscsi_build_sglist` (pvscsi-facts.md §5.4): without the
    /// SG flag one segment (dataAddr, dataLen); with it, elements read in sequence from dataAddr,
    /// zero-length ones skipped, until dataLen bytes or 2048 elements. `None` on a DMA fault.
    fn build_segments(&mut self, d: &ReqDesc) -> Option<Vec<(u64, u64)>> {
        if d.flags & flags::WITH_SG_LIST == 0 && d.data_len == 0 {
            return Some(Vec::new());
        }
        let mut segs = self.seg_pool.pop().unwrap_or_default();
        segs.clear();
        if d.flags & flags::WITH_SG_LIST == 0 {
            segs.push((d.data_addr, d.data_len));
            return Some(segs);
        }
        let mut remaining = d.data_len;
        let mut at = d.data_addr;
        let mut elems = 0usize;
        while remaining > 0 && elems < MAX_SG_ELEMS {
            let mut raw = [0u8; SG_ELEM_SIZE];
            if !self.dma_read(DmaSite::SgList, at, &mut raw, Some(d.context)) {
                self.recycle_segments(segs);
                return None;
            }
            let e = SgElem::from_bytes(&raw);
            elems += 1;
            at = at.wrapping_add(SG_ELEM_SIZE as u64);
            if e.flags != 0 {
                self.stats.sg_flagged_elements += 1;
            }
            if e.length == 0 {
                continue;
            }
            let n = remaining.min(u64::from(e.length));
            segs.push((e.addr, n));
            remaining -= n;
        }
        Some(segs)
    }

    /// Gives a finished request's segment list back for a later request.
    fn recycle_segments(&mut self, segs: Vec<(u64, u64)>) {
        if segs.capacity() > 0 && self.seg_pool.len() < SEG_POOL_MAX {
            self.seg_pool.push(segs);
        }
    }

    fn match_injection(&mut self, d: &ReqDesc) -> Option<Effect> {
        if self.injections.is_empty() {
            return None;
        }
        let cdb = d.cdb();
        let opcode = cdb.first().copied();
        let range = disk::cdb::block_range(cdb).map(|(_, r)| r);
        let idx = self.injections.iter().position(|(_, inj)| {
            inj.count != Some(0)
                && inj.target.is_none_or(|t| t == d.target)
                && inj.opcode.is_none_or(|o| Some(o) == opcode)
                && inj.lbas.as_ref().is_none_or(|want| {
                    range.is_some_and(|r| r.lba < want.end && want.start < r.lba.saturating_add(r.blocks.max(1)))
                })
        })?;
        let (_, inj) = self.injections.get_mut(idx)?;
        let effect = inj.effect;
        if let Some(n) = inj.count.as_mut() {
            *n -= 1;
            if *n == 0 {
                self.injections.remove(idx);
            }
        }
        self.stats.injected += 1;
        Some(effect)
    }

    fn finish_now(&mut self, cmp: CmpDesc, now: u64) {
        self.done.push_back(Done { at: now, cmp });
        self.wake = true;
    }

    // ---------------------------------------------------------------- execution and completion

    /// Runs one request whose time has come and builds its completion (QEMU
    /// `pvscsi_command_complete`, `pvscsi_write_sense`; statuses per pvscsi-facts.md §6).
    fn execute(&mut self, r: &InFlight) -> CmpDesc {
        let ctx = r.desc.context;
        let mut cmp = CmpDesc { context: ctx, ..CmpDesc::default() };
        // Borrowed, not an `Arc` cloned per command (two locked instructions).
        let Some(target) = self.targets.get(usize::from(r.target)).and_then(Option::as_deref) else {
            cmp.host_status = host::SELTIMEO;
            return cmp;
        };
        let cdb = r.desc.cdb();
        let resp = match r.effect {
            Some(Effect::Host(h)) => {
                cmp.host_status = h;
                return cmp;
            }
            Some(Effect::Status(s)) => {
                cmp.scsi_status = u16::from(s);
                return cmp;
            }
            Some(Effect::Check(sense)) => disk::ScsiResponse::check(sense, target.transfer(r.lun, cdb).len),
            _ => {
                let len = r.segs.iter().fold(0u64, |a, &(_, n)| a.saturating_add(n));
                let mut buf = SgBuffer { mem: &*self.mem, segs: &r.segs, len, fault: None, trace: self.dma_trace.as_ref() };
                let resp = target.execute(r.lun, cdb, &mut buf);
                let fault = buf.fault;
                if let Some(f) = fault {
                    // Our choice for a data-buffer DMA fault: INVPARAM, SCSI status 0.
                    self.record_fault(DmaSite::Data, f, Some(ctx));
                    cmp.host_status = host::INVPARAM;
                    return cmp;
                }
                resp
            }
        };
        cmp.scsi_status = u16::from(resp.status);
        cmp.host_status = match self.cfg.layout {
            // QEMU: any non-zero residual is DATARUN; dataLen stays 0 (§6.3, Q5).
            PvscsiLayout::Qemu => {
                if resp.residual != 0 {
                    host::DATARUN
                } else {
                    host::SUCCESS
                }
            }
            // VMware: dataLen = bytes moved; a short answer is SUCCESS with that length (what
            // Linux's completion code expects of VMware), a block transfer shorter than its CDB
            // is DATA_UNDERRUN, a buffer longer than the CDB is DATARUN.
            PvscsiLayout::Vmware => {
                cmp.data_len = resp.transferred;
                let block = disk::cdb::block_range(cdb).is_some();
                if resp.status != disk::STATUS_GOOD || resp.residual == 0 {
                    host::SUCCESS
                } else if resp.residual < 0 {
                    host::DATARUN
                } else if block {
                    host::DATA_UNDERRUN
                } else {
                    host::SUCCESS
                }
            }
        };
        if resp.status == disk::STATUS_CHECK_CONDITION {
            let n = resp.sense.len().min(r.desc.sense_len as usize);
            if let Some(sense) = resp.sense.get(..n).filter(|s| !s.is_empty()) {
                if self.dma_write(DmaSite::Sense, r.desc.sense_addr, sense, Some(ctx)) {
                    cmp.sense_len = u32::try_from(n).unwrap_or(u32::MAX);
                } else {
                    // Our choice: the sense could not be delivered, so say so.
                    cmp.host_status = host::SENSFAILED;
                }
            }
        }
        cmp
    }

    /// The completion worker (QEMU `pvscsi_process_completion_queue`): every queued completion,
    /// in finish order, into the ring; cmpProdIdx once; then `CMPL_0` and the line. `hostile` are
    /// garbage actions to mix into this batch.
    fn post(&mut self, hostile: &[Queued]) {
        let mut batch = std::mem::take(&mut self.batch_scratch);
        batch.clear();
        batch.extend(self.done.drain(..).map(|d| d.cmp));
        self.post_batch(hostile, &mut batch);
        self.batch_scratch = batch;
    }

    fn post_batch(&mut self, hostile: &[Queued], batch: &mut Vec<CmpDesc>) {
        let real = batch.len();
        let mut prod_override = None;
        let mut spurious = false;
        for &q in hostile {
            match q {
                Queued::Drawn(a) => self.apply_hostile(a, None, batch, &mut prod_override, &mut spurious),
                Queued::Given(HostileWrite::Action(a, g)) => {
                    self.apply_hostile(a, Some(g), batch, &mut prod_override, &mut spurious);
                }
                Queued::Given(w) => self.apply_hostile_write(w, real, batch),
            }
        }
        if !self.rings_valid {
            self.stats.completions_dropped += batch.len() as u64;
            return;
        }
        if !batch.is_empty() {
            let cons = self.peek_cmp_cons();
            let entries = 1u32 << self.cmp_log2;
            let mask = entries - 1;
            for c in batch.iter() {
                if let Some(cons) = cons
                    && self.filled_cmp.wrapping_sub(cons) >= entries
                {
                    self.stats.completion_overflows += 1;
                }
                let slot = self.filled_cmp & mask;
                self.filled_cmp = self.filled_cmp.wrapping_add(1);
                let page = self.cmp_pages.get((slot / CMP_PER_PAGE) as usize).copied().unwrap_or(0);
                let pa = page.wrapping_add(u64::from(slot % CMP_PER_PAGE) * CMP_DESC_SIZE as u64);
                self.dma_write(DmaSite::Completion, pa, &c.to_bytes(), Some(c.context));
                self.stats.completions_posted += 1;
                if self.history.len() == HISTORY {
                    self.history.pop_front();
                }
                self.history.push_back(c.context);
                self.event(DeviceEvent::Completion {
                    context: c.context,
                    host_status: c.host_status,
                    scsi_status: c.scsi_status,
                });
            }
            let prod = prod_override.unwrap_or(self.filled_cmp);
            self.rs_write(rs::CMP_PROD_IDX, prod);
            self.stats.batches += 1;
            self.event(DeviceEvent::Batch { count: u32::try_from(batch.len()).unwrap_or(u32::MAX), cmp_prod_idx: prod });
        } else if let Some(prod) = prod_override {
            self.rs_write(rs::CMP_PROD_IDX, prod);
        }
        if !batch.is_empty() || spurious || prod_override.is_some() {
            self.intr_status |= INTR_CMPL_0;
            self.update_irq();
        }
    }

    /// cmpConsIdx, read only for the overflow statistic; a fault here is not recorded (the
    /// device does not really make this access).
    fn peek_cmp_cons(&self) -> Option<u32> {
        let mut b = [0u8; 4];
        self.mem.read(self.rs_pa.wrapping_add(rs::CMP_CONS_IDX), &mut b).ok().map(|()| u32::from_le_bytes(b))
    }

    // ---------------------------------------------------------------- resets (§6.4, §7)

    /// Cancels matching in-flight requests (not the stuck ones, which QEMU never enqueued) with
    /// `status`, in submission order.
    fn cancel_where(&mut self, pred: impl Fn(&InFlight) -> bool, status: u16) {
        let now = self.now();
        for at in self.in_flight.positions(|r| !r.stuck && pred(r)) {
            let Some(r) = self.in_flight.remove(at) else { continue };
            self.done.push_back(Done {
                at: now,
                cmp: CmpDesc { context: r.desc.context, host_status: status, ..CmpDesc::default() },
            });
            self.wake = true;
        }
    }

    fn reset_targets(&mut self, only: Option<u8>) {
        for (id, t) in self.targets.iter().enumerate() {
            if let Some(t) = t
                && only.is_none_or(|o| usize::from(o) == id)
            {
                t.reset();
            }
        }
    }

    /// `RESET_BUS` (or another initiator's bus reset): in-flight requests → BUSRESET, posted later
    /// by the completion worker; every disk gets a unit attention.
    pub(crate) fn bus_reset(&mut self) {
        self.stats.bus_resets += 1;
        self.cancel_where(|_| true, host::BUSRESET);
        self.reset_targets(None);
        self.event(DeviceEvent::Reset { kind: "bus" });
    }

    fn reset_device_cmd(&mut self, target: u32, lun: [u8; 8]) -> u32 {
        let Ok(t) = u8::try_from(target) else { return CMD_STATUS_FAILED };
        if self.lookup(0, t, lun).is_none() {
            return CMD_STATUS_FAILED;
        }
        self.device_reset(t);
        CMD_STATUS_OK
    }

    /// `RESET_DEVICE`: that device's in-flight requests → BUSRESET, posted later.
    pub(crate) fn device_reset(&mut self, target: u8) {
        self.stats.device_resets += 1;
        self.cancel_where(|r| r.target == target, host::BUSRESET);
        self.reset_targets(Some(target));
        self.event(DeviceEvent::Reset { kind: "device" });
    }

    /// `ABORT_CMD` (QEMU `pvscsi_on_cmd_abort`): the first in-flight request with that context, in
    /// submission order; a stuck one absorbs the abort without completing.
    fn abort(&mut self, context: u64) {
        self.stats.aborts += 1;
        let Some((at, first)) = self.in_flight.iter().find(|(_, r)| r.desc.context == context) else { return };
        if first.stuck {
            return;
        }
        let Some(r) = self.in_flight.remove(at) else { return };
        self.stats.aborts_matched += 1;
        let now = self.now();
        self.finish_now(
            CmpDesc { context: r.desc.context, host_status: host::ABORTQUEUE, ..CmpDesc::default() },
            now,
        );
    }

    /// `ADAPTER_RESET` (QEMU `pvscsi_reset_adapter`, pvscsi-facts.md §7): cancel everything with
    /// BUSRESET, flush every queued completion synchronously into the old ring (`CMPL_0`, line
    /// update), then forget the rings and zero `INTR_STATUS` *without* re-evaluating the line (the
    /// §3 quirk). `INTR_MASK` survives.
    pub(crate) fn adapter_reset(&mut self, kind: &'static str) {
        self.stats.adapter_resets += 1;
        self.cancel_where(|_| true, host::BUSRESET);
        self.reset_targets(None);
        let stuck = self.in_flight.len() as u64;
        if stuck > 0 {
            // Here QEMU's assertion that its request list is empty fails and the VM dies.
            self.stats.stuck_at_adapter_reset += stuck;
            self.in_flight.clear();
        }
        // Every completion the device holds goes into the old ring, those it never posted too.
        let now = self.now();
        let unposted = std::mem::take(&mut self.unposted);
        self.done.extend(unposted.into_iter().map(|cmp| Done { at: now, cmp }));
        if !self.done.is_empty() {
            self.post(&[]);
        }
        self.rings_valid = false;
        self.msg_valid = false;
        self.rs_pa = 0;
        self.req_pages = [0; MAX_RING_PAGES];
        self.cmp_pages = [0; MAX_RING_PAGES];
        self.msg_pages = [0; MAX_MSG_PAGES];
        self.req_log2 = 0;
        self.cmp_log2 = 0;
        self.msg_log2 = 0;
        self.consumed = 0;
        self.filled_cmp = 0;
        self.filled_msg = 0;
        // Set up again after a reset, as Linux does (pvscsi-facts.md §7).
        self.req_call = false;
        self.req_call_threshold = 0;
        // Nothing of the old requests remains: QEMU asserts its request list empty here and
        // frees each request as it posts it, and Linux's host reset relies on VMware touching no
        // ring memory afterwards (pvscsi-facts.md §7). So even a hostile device can replay only
        // completions it posted since (`HostileAction::StaleContext`).
        self.history.clear();
        self.intr_status = 0;
        self.cur_cmd = cmd::FIRST;
        self.words.clear();
        self.cmd_status = CMD_STATUS_OK;
        self.event(DeviceEvent::Reset { kind });
    }

    /// An adapter reset the device makes on its own. QEMU runs `pvscsi_reset_adapter` only for the
    /// driver's `ADAPTER_RESET` command and from its device reset handler (`pvscsi_reset`), after
    /// which the PCI core deasserts INTx (`pci_do_device_reset`); VMware documents no reset of its
    /// own. So the line is low afterwards: `INTR_STATUS` is 0, and the stale-line quirk of
    /// [`Self::adapter_reset`] belongs to the command alone, which the driver issues and then
    /// acknowledges. Unlike [`Self::machine_reset`] config space stays as it was, so the driver can
    /// recover (through its own reset after the port's timeout).
    pub(crate) fn device_side_adapter_reset(&mut self) {
        self.adapter_reset("adapter");
        self.update_irq();
    }

    /// Machine (PCI) reset: as `ADAPTER_RESET`, then the PCI core deasserts INTx and config space
    /// returns to its power-on state. `INTR_MASK` survives (pvscsi-facts.md Q11).
    pub(crate) fn machine_reset(&mut self) {
        self.adapter_reset("machine");
        self.pci = Self::fresh_pci(&self.cfg);
        self.set_line(false);
    }

    // ---------------------------------------------------------------- messages (§5.6)

    /// QEMU `pvscsi_send_msg`: only with a message ring and room (`msgProdIdx − msgConsIdx <
    /// entries`, both read from the page), then `MSG_0` and the line.
    fn send_msg(&mut self, kind: u32, target: u8) {
        self.send_msg_raw(kind, u32::from(target));
    }

    fn send_msg_raw(&mut self, kind: u32, target: u32) {
        if !self.msg_valid {
            // Devices attached before the driver set up any rings are the machine's initial
            // configuration, not a hot-plug the driver could have heard of.
            if self.rings_valid {
                self.stats.messages_dropped += 1;
            }
            return;
        }
        let entries = 1u32 << self.msg_log2;
        let (Some(prod), Some(cons)) = (self.rs_read(rs::MSG_PROD_IDX), self.rs_read(rs::MSG_CONS_IDX)) else {
            self.stats.messages_dropped += 1;
            return;
        };
        if prod.wrapping_sub(cons) >= entries {
            self.stats.messages_dropped += 1;
            return;
        }
        let slot = self.filled_msg & (entries - 1);
        self.filled_msg = self.filled_msg.wrapping_add(1);
        let page = self.msg_pages.get((slot / MSG_PER_PAGE) as usize).copied().unwrap_or(0);
        let pa = page.wrapping_add(u64::from(slot % MSG_PER_PAGE) * MSG_DESC_SIZE as u64);
        let m = MsgDesc { kind, bus: 0, target, lun: [0; 8] };
        self.dma_write(DmaSite::Message, pa, &m.to_bytes(), None);
        self.rs_write(rs::MSG_PROD_IDX, self.filled_msg);
        self.stats.messages_posted += 1;
        self.event(DeviceEvent::Message { kind, target: u8::try_from(target).unwrap_or(u8::MAX) });
        self.intr_status |= INTR_MSG_0;
        self.update_irq();
    }

    // ---------------------------------------------------------------- faults

    pub(crate) fn set_latency(&mut self, l: Latency) {
        self.latency = l;
    }

    pub(crate) fn inject(&mut self, inj: Injection) -> InjectionId {
        let id = InjectionId(self.next_injection);
        self.next_injection += 1;
        self.injections.push((id, inj));
        id
    }

    pub(crate) fn remove_injection(&mut self, id: InjectionId) -> bool {
        let before = self.injections.len();
        self.injections.retain(|(i, _)| *i != id);
        before != self.injections.len()
    }

    pub(crate) fn clear_injections(&mut self) {
        self.injections.clear();
    }

    pub(crate) fn set_hostile(&mut self, cfg: Option<HostileConfig>) {
        let now = self.now();
        self.hostile = cfg.map(|cfg| Hostile {
            rng: Rng::new(cfg.seed),
            next_at: cfg.interval_ns.map(|i| now.saturating_add(i)),
            cfg,
        });
        self.wake = true;
    }

    pub(crate) fn fail_commands(&mut self, code: u32, times: u32) {
        self.failing = (times > 0).then_some((code, times));
    }

    /// Whether this command fails by [`Self::fail_commands`], counting it.
    fn fails(&mut self, code: u32) -> bool {
        match self.failing {
            Some((c, n)) if c == code => {
                self.failing = (n > 1).then_some((c, n - 1));
                true
            }
            _ => false,
        }
    }

    pub(crate) fn hostile_once(&mut self, a: HostileAction) {
        let now = self.now();
        self.hostile_pending.push_back((now, Queued::Drawn(a)));
        self.wake = true;
    }

    pub(crate) fn hostile_write(&mut self, w: HostileWrite) {
        let now = self.now();
        self.hostile_pending.push_back((now, Queued::Given(w)));
        self.wake = true;
    }

    pub(crate) fn schedule(&mut self, trigger: Trigger, action: FaultAction) {
        let s = match trigger {
            Trigger::AtNs(t) => Scheduled { at_ns: Some(t), at_requests: None, during: None, action },
            Trigger::AfterRequests(n) => {
                Scheduled { at_ns: None, at_requests: Some(self.stats.requests.saturating_add(n)), during: None, action }
            }
            Trigger::DuringCommand { code, after_words } => {
                Scheduled { at_ns: None, at_requests: None, during: Some((code, after_words.saturating_add(1))), action }
            }
        };
        self.scheduled.push(s);
        self.wake = true;
    }

    fn arm_request_triggers(&mut self, now: u64) {
        let n = self.stats.requests;
        let mut i = 0;
        while i < self.scheduled.len() {
            if self.scheduled.get(i).and_then(|s| s.at_requests).is_some_and(|at| n >= at) {
                let s = self.scheduled.remove(i);
                self.due_actions.push_back((now, s.action));
                self.wake = true;
            } else {
                i += 1;
            }
        }
    }

    /// Runs a device-side action now.
    pub(crate) fn apply(&mut self, a: FaultAction) {
        match a {
            FaultAction::BusReset => self.bus_reset(),
            FaultAction::DeviceReset(t) => self.device_reset(t),
            FaultAction::AdapterReset => self.device_side_adapter_reset(),
            FaultAction::Inject(i) => {
                self.inject(i);
            }
            FaultAction::SetLatency(l) => self.set_latency(l),
            FaultAction::SetHostile(h) => self.set_hostile(h),
            FaultAction::Hostile(h) => {
                let now = self.now();
                self.hostile_pending.push_back((now, Queued::Drawn(h)));
            }
            FaultAction::Detach(t) => {
                self.detach(t);
            }
        }
    }

    fn pick_hostile(h: &mut Hostile) -> HostileAction {
        let list: &[HostileAction] = if h.cfg.actions.is_empty() { &HostileAction::ALL } else { &h.cfg.actions };
        let i = h.rng.below(list.len());
        list.get(i).copied().unwrap_or(HostileAction::SpuriousInterrupt)
    }

    fn garbage(&mut self) -> u64 {
        match self.hostile.as_mut() {
            Some(h) => h.rng.next_u64(),
            None => self.rng.next_u64(),
        }
    }

    /// One hostile action on the batch about to be posted (or on the rings-state page), with
    /// `g` as its garbage (drawn from the generator when `None`).
    ///
    /// A context it makes up has its top bit set: no driver issues one (a context's upper 32
    /// bits are zero, pvscsi-facts.md §5.3), so the driver can always tell it from a request it
    /// holds. Without that, a caller choosing `g` (a fuzzer) could name a request in flight, a
    /// lie no driver can detect.
    fn apply_hostile(
        &mut self,
        a: HostileAction,
        g: Option<u64>,
        batch: &mut Vec<CmpDesc>,
        prod_override: &mut Option<u32>,
        spurious: &mut bool,
    ) {
        if !self.rings_valid {
            return;
        }
        self.stats.hostile_actions += 1;
        self.stats.last_hostile = Some(a);
        self.event(DeviceEvent::Hostile(a));
        let g = g.unwrap_or_else(|| self.garbage());
        let made_up = g | (1 << 63);
        let stale = self.history.front().copied();
        // A completion to corrupt: the newest real one, or a made-up one for a stale context.
        let victim = |batch: &mut Vec<CmpDesc>| -> usize {
            if batch.is_empty() {
                batch.push(CmpDesc { context: stale.unwrap_or(made_up), ..CmpDesc::default() });
            }
            batch.len() - 1
        };
        match a {
            HostileAction::GarbageCmpProdIdx => {
                let v = [regs::lo32(g), self.filled_cmp.wrapping_add(0x8000_0000), self.filled_cmp.wrapping_sub(1)];
                *prod_override = Some(v.get((g >> 40) as usize % v.len()).copied().unwrap_or(u32::MAX));
            }
            HostileAction::UnknownContext => {
                batch.push(CmpDesc { context: g | (1 << 63), ..CmpDesc::default() });
            }
            HostileAction::DuplicateContext => {
                let c = batch.last().copied().or_else(|| {
                    self.history.back().map(|&context| CmpDesc { context, ..CmpDesc::default() })
                });
                batch.push(c.unwrap_or(CmpDesc { context: made_up, ..CmpDesc::default() }));
            }
            HostileAction::StaleContext => {
                batch.push(CmpDesc { context: stale.unwrap_or(made_up), ..CmpDesc::default() });
            }
            HostileAction::BogusSenseLen => {
                let i = victim(batch);
                if let Some(c) = batch.get_mut(i) {
                    c.sense_len = 0xFFFF_0000 | (regs::lo32(g) & 0xFFFF);
                }
            }
            HostileAction::BogusDataLen => {
                let i = victim(batch);
                if let Some(c) = batch.get_mut(i) {
                    c.data_len = u64::MAX - (g & 0xFFFF);
                }
            }
            HostileAction::GarbageStatus => {
                let i = victim(batch);
                if let Some(c) = batch.get_mut(i) {
                    c.host_status = 0x8000 | u16::try_from(g & 0x7FFF).unwrap_or(0);
                    c.scsi_status = u16::try_from((g >> 16) & 0xFF).unwrap_or(0);
                }
            }
            HostileAction::GarbageLog2 => {
                self.rs_write(rs::REQ_NUM_ENTRIES_LOG2, regs::lo32(g));
                self.rs_write(rs::CMP_NUM_ENTRIES_LOG2, (g >> 32) as u32);
            }
            HostileAction::GarbageReqConsIdx => {
                self.rs_write(rs::REQ_CONS_IDX, regs::lo32(g >> 16));
            }
            HostileAction::SpuriousInterrupt => *spurious = true,
        }
    }

    /// One [`HostileWrite`] other than an action, on the batch about to be posted, whose first
    /// `real` completions are real.
    fn apply_hostile_write(&mut self, w: HostileWrite, real: usize, batch: &mut [CmpDesc]) {
        self.stats.hostile_actions += 1;
        self.event(DeviceEvent::HostileWrite(w));
        match w {
            HostileWrite::Action(..) => {}
            HostileWrite::DataLen(n) => {
                if let Some(c) = real.checked_sub(1).and_then(|i| batch.get_mut(i)) {
                    c.data_len = n;
                }
            }
            HostileWrite::Message { kind, target } => self.send_msg_raw(kind, target),
            HostileWrite::MsgProdIdx(v) => {
                if self.msg_valid {
                    self.rs_write(rs::MSG_PROD_IDX, v);
                    self.intr_status |= INTR_MSG_0;
                    self.update_irq();
                }
            }
            HostileWrite::IntrStatus(bits) => {
                self.intr_status |= bits;
                self.update_irq();
            }
        }
    }

    // ---------------------------------------------------------------- scheduling

    pub(crate) fn next_event(&self) -> Option<u64> {
        let mut t: Option<u64> = None;
        let mut take = |v: u64| t = Some(t.map_or(v, |c| c.min(v)));
        if let Some(d) = self.done.front() {
            take(d.at);
        }
        if let Some(due) = self.in_flight.next_due() {
            take(due);
        }
        for s in &self.scheduled {
            if let Some(at) = s.at_ns {
                take(at);
            }
        }
        if let Some((at, _)) = self.due_actions.front() {
            take(*at);
        }
        if let Some((at, _)) = self.hostile_pending.front()
            && !self.hostile_waits()
        {
            take(*at);
        }
        if let Some(at) = self.hostile.as_ref().and_then(|h| h.next_at) {
            take(at);
        }
        t
    }

    /// The device's own work due at `now`: scheduled faults, requests whose latency has
    /// elapsed (executed in (due, submission) order), hostile actions, then one completion batch.
    pub(crate) fn run_due(&mut self, now: u64) -> bool {
        let mut did = false;
        let mut i = 0;
        while i < self.scheduled.len() {
            if self.scheduled.get(i).and_then(|s| s.at_ns).is_some_and(|at| at <= now) {
                let s = self.scheduled.remove(i);
                self.due_actions.push_back((now, s.action));
            } else {
                i += 1;
            }
        }
        while self.due_actions.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, a)) = self.due_actions.pop_front() {
                self.apply(a);
                did = true;
            }
        }
        let mut due = std::mem::take(&mut self.due_scratch);
        self.in_flight.due_by(now, &mut due);
        for &at in &due {
            let Some(mut r) = self.in_flight.remove(at) else { continue };
            let cmp = self.execute(&r);
            did = true;
            if Self::waits_for_dma(&r, &cmp) {
                // Never completes on its own; resets and aborts still cancel it.
                self.stats.dma_waits += 1;
                r.due = u64::MAX;
                self.in_flight.push(r);
                continue;
            }
            if r.effect == Some(Effect::Unposted) {
                self.unposted.push(cmp);
            } else {
                self.done.push_back(Done { at: r.due, cmp });
            }
            self.recycle_segments(r.segs);
        }
        self.due_scratch = due;
        let mut hostile = Vec::new();
        if let Some(h) = self.hostile.as_mut()
            && let Some(at) = h.next_at
            && at <= now
        {
            h.next_at = h.cfg.interval_ns.map(|i| now.saturating_add(i.max(1)));
            hostile.push(Queued::Drawn(Self::pick_hostile(h)));
        }
        if !self.done.is_empty()
            && let Some(h) = self.hostile.as_mut()
            && h.rng.next_u64() % 1000 < u64::from(h.cfg.permille)
        {
            hostile.push(Queued::Drawn(Self::pick_hostile(h)));
        }
        // A queued one-off action waits for the next batch of real completions while requests
        // are on their way, so that it has something to corrupt.
        while !self.hostile_waits() && self.hostile_pending.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, a)) = self.hostile_pending.pop_front() {
                hostile.push(a);
            }
        }
        if !self.done.is_empty() || !hostile.is_empty() {
            self.post(&hostile);
            did = true;
        }
        if did {
            self.poll_request_ring();
        }
        did
    }

    /// Whether queued one-off hostile actions should wait: nothing finished yet, but requests
    /// that will finish are in flight.
    fn hostile_waits(&self) -> bool {
        self.done.is_empty() && self.in_flight.next_due().is_some()
    }

    pub(crate) fn in_flight_count(&self) -> usize {
        self.in_flight.live()
    }

    pub(crate) fn stuck_count(&self) -> usize {
        self.in_flight.len() - self.in_flight.live()
    }

    pub(crate) fn queued_completions(&self) -> usize {
        self.done.len()
    }

    pub(crate) fn set_consumed(&mut self, v: u64) {
        self.consumed = if self.cfg.q8_index_wrap { v } else { v & u64::from(u32::MAX) };
    }
}
