//! Configuration, fault hooks and introspection types of the PVSCSI model.

use std::ops::Range;
use std::sync::Arc;

use crate::disk::Sense;
use crate::mem::DmaFault;

use super::pci::PvscsiLayout;

/// Completion latency: each request completes a uniformly drawn time in `[min_ns, max_ns]` after
/// its kick (seeded, so a deterministic run is reproducible).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    /// Shortest latency.
    pub min_ns: u64,
    /// Longest latency.
    pub max_ns: u64,
}

impl Latency {
    /// Always `ns`.
    #[must_use]
    pub const fn fixed(ns: u64) -> Self {
        Self { min_ns: ns, max_ns: ns }
    }

    /// Uniform in `[min_ns, max_ns]` (swapped if given the wrong way round).
    #[must_use]
    pub const fn range(min_ns: u64, max_ns: u64) -> Self {
        if min_ns <= max_ns { Self { min_ns, max_ns } } else { Self { min_ns: max_ns, max_ns: min_ns } }
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::range(20_000, 100_000)
    }
}

/// Settings of a [`PvscsiDevice`](super::PvscsiDevice).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // independent device properties
pub struct PvscsiConfig {
    /// QEMU-like (default) or VMware-like identity, BARs and completion reporting.
    pub layout: PvscsiLayout,
    /// Request completion latency.
    pub latency: Latency,
    /// Seed of the latency generator.
    pub seed: u64,
    /// QEMU's `use_msg` property: whether `SETUP_MSG_RING` is accepted (pvscsi-facts.md §1, Q9).
    pub use_msg: bool,
    /// VMware layout: the target count CONFIG reports (numPhys) and the bound on target ids.
    /// QEMU layout ignores it (ids 0..=64).
    pub max_targets: u8,
    /// Whether config space has the MSI capability at 0x7C (both real devices have it).
    pub msi_capability: bool,
    /// Whether config space has the PCI Express capability at 0x40, ahead of MSI: QEMU's device
    /// has it on a PCI Express bus (`q35`, what the QEMU harness runs), VMware's always. Off:
    /// QEMU on a conventional PCI bus (the `pc` machine).
    pub express_capability: bool,
    /// Bus address assigned to the MMIO BAR (32 KiB aligned).
    pub mmio_base: u64,
    /// Bus address assigned to VMware's I/O BAR.
    pub io_base: u16,
    /// The PCI interrupt line register value.
    pub interrupt_line: u8,
    /// Reproduce QEMU's request-index wrap hang (pvscsi-facts.md §8 Q8): the consumer counter is
    /// 64-bit and compared with the 32-bit `reqProdIdx`, so request processing stops for good once
    /// the driver's index wraps past 0xFFFFFFFF. Off by default (indexes wrap correctly).
    pub q8_index_wrap: bool,
    /// Index value `SETUP_RINGS` starts the request and completion rings at (QEMU: always 0). A
    /// value close to 2³² lets a test push a driver's index arithmetic through the u32 wrap
    /// without four billion requests; a driver that reads the indexes back from the rings-state
    /// page copes, one that assumes 0 does not.
    pub initial_index: u32,
}

impl Default for PvscsiConfig {
    fn default() -> Self {
        Self {
            layout: PvscsiLayout::Qemu,
            latency: Latency::default(),
            seed: 1,
            use_msg: true,
            max_targets: 16,
            msi_capability: true,
            express_capability: true,
            mmio_base: 0xFEB8_0000,
            io_base: 0xC000,
            interrupt_line: 11,
            q8_index_wrap: false,
            initial_index: 0,
        }
    }
}

/// What an [`Injection`] does to a matching request instead of (or in addition to) running it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Complete with this host status, SCSI status 0, no data moved, no sense.
    Host(u16),
    /// Complete with CHECK CONDITION and this sense (written by DMA like a real one), no data moved.
    Check(Sense),
    /// Complete with this SCSI status (BUSY, TASK SET FULL, RESERVATION CONFLICT, ...), no sense.
    Status(u8),
    /// Run normally but complete after this latency (a slow request).
    Latency(u64),
    /// Never complete on its own (a hung back end); aborts and resets still cancel it.
    Lose,
    /// Run normally (the data moved, its status the real one) but leave the completion in the
    /// device, never posted on its own: a device that lost track of posting it. The next
    /// `ADAPTER_RESET` writes it into the old completion ring with every other completion the
    /// device holds (pvscsi-facts.md §7), which is where a driver's host reset finds it.
    Unposted,
}

/// Forces a result on requests that match. Fields left `None` match anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Only requests to this target id.
    pub target: Option<u8>,
    /// Only this opcode.
    pub opcode: Option<u8>,
    /// Only block commands (READ/WRITE/VERIFY) whose block range overlaps this one.
    pub lbas: Option<Range<u64>>,
    /// Only the next `n` matching requests; `None` = every matching request until removed.
    pub count: Option<u64>,
    /// What happens.
    pub effect: Effect,
}

impl Injection {
    /// The next `n` requests (any target, any command).
    #[must_use]
    pub fn next(n: u64, effect: Effect) -> Self {
        Self { target: None, opcode: None, lbas: None, count: Some(n), effect }
    }

    /// Every block command touching `lbas` (on any target unless narrowed).
    #[must_use]
    pub fn lbas(lbas: Range<u64>, effect: Effect) -> Self {
        Self { target: None, opcode: None, lbas: Some(lbas), count: None, effect }
    }

    /// Narrows to one target.
    #[must_use]
    pub fn on_target(mut self, target: u8) -> Self {
        self.target = Some(target);
        self
    }

    /// Narrows to one opcode.
    #[must_use]
    pub fn on_opcode(mut self, opcode: u8) -> Self {
        self.opcode = Some(opcode);
        self
    }
}

/// Handle of an installed injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InjectionId(pub u64);

/// One kind of garbage the hostile mode writes (each proves that a driver validates what the
/// device writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostileAction {
    /// Write a random (often huge) cmpProdIdx instead of the right one for this batch.
    GarbageCmpProdIdx,
    /// Post a completion whose context was never issued.
    UnknownContext,
    /// Post a second completion for a context just completed.
    DuplicateContext,
    /// Post a completion for a context completed long ago: the oldest of the last 256 the device
    /// posted since its last adapter reset. A device keeps nothing of its requests across
    /// `ADAPTER_RESET` (QEMU asserts its request list empty there; Linux's host reset relies on
    /// VMware touching no ring memory afterwards), so not even a hostile one can replay an
    /// older context; the driver's contexts may start again after such a reset.
    StaleContext,
    /// Give a completion a senseLen larger than any sense buffer.
    BogusSenseLen,
    /// Give a completion a dataLen larger than the request.
    BogusDataLen,
    /// Give a completion an undefined host status and a random SCSI status.
    GarbageStatus,
    /// Overwrite reqNumEntriesLog2 / cmpNumEntriesLog2 in the rings-state page.
    GarbageLog2,
    /// Overwrite reqConsIdx in the rings-state page.
    GarbageReqConsIdx,
    /// Set `INTR_STATUS.CMPL_0` (and raise the line) with nothing posted.
    SpuriousInterrupt,
}

impl HostileAction {
    /// Every action.
    pub const ALL: [Self; 10] = [
        Self::GarbageCmpProdIdx,
        Self::UnknownContext,
        Self::DuplicateContext,
        Self::StaleContext,
        Self::BogusSenseLen,
        Self::BogusDataLen,
        Self::GarbageStatus,
        Self::GarbageLog2,
        Self::GarbageReqConsIdx,
        Self::SpuriousInterrupt,
    ];
}

/// One write of a hostile device with its value given by the caller instead of drawn from the
/// hostile generator: what a fuzzer drives ([`PvscsiDevice::hostile_write`](super::PvscsiDevice::hostile_write)).
///
/// Every write here is one a driver can recognise as garbage or survive, never a lie it could
/// not tell from the truth: a context the device makes up always has its top bit set, which no
/// driver issues (VMware requires a context's upper 32 bits to be zero, pvscsi-facts.md §5.3),
/// and a real completion is never given another request's context or a well-formed status it
/// did not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostileWrite {
    /// A [`HostileAction`], with this value wherever the action would draw one (the index, the
    /// context, the length, the status).
    Action(HostileAction, u64),
    /// The newest real completion of the batch claims this many bytes moved (a short or long
    /// transfer the device did not make); nothing without a real completion.
    DataLen(u64),
    /// A message of this type about this target on the message ring (QEMU posts only
    /// `DEV_ADDED` and `DEV_REMOVED`), `msgProdIdx` advanced and `MSG_0` raised; nothing without
    /// a message ring or with it full.
    Message {
        /// `type`.
        kind: u32,
        /// `target`.
        target: u32,
    },
    /// `msgProdIdx` overwritten with this value and `MSG_0` raised (with a message ring).
    MsgProdIdx(u32),
    /// These bits set in `INTR_STATUS` (defined or not) and the line re-evaluated.
    IntrStatus(u32),
}

/// Hostile mode: the device writes garbage at random moments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostileConfig {
    /// Seed of the hostile generator (independent of the latency generator).
    pub seed: u64,
    /// Chance, per mille, that a completion batch carries one garbage action.
    pub permille: u32,
    /// Also act on its own this often (then the device is never idle).
    pub interval_ns: Option<u64>,
    /// The actions to choose from; empty means all of [`HostileAction::ALL`].
    pub actions: Vec<HostileAction>,
}

impl Default for HostileConfig {
    fn default() -> Self {
        Self { seed: 0x5EED, permille: 100, interval_ns: None, actions: Vec::new() }
    }
}

/// When a scheduled fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// At this clock time.
    AtNs(u64),
    /// Once this many more requests have been taken from the ring (counted from `schedule`).
    AfterRequests(u64),
    /// Inside the `COMMAND_DATA` write of the data word `after_words + 1` of the driver's next
    /// command `code`, before the device takes the word: between two of the driver's register
    /// writes, where the concurrent schedule can put a reset from the device side, here at a
    /// chosen word. Never fires if the command has no more words than `after_words`.
    DuringCommand {
        /// The command (`PVSCSI_CMD_*`).
        code: u32,
        /// Data words the device has taken when the action runs.
        after_words: usize,
    },
}

/// A device-side action, run immediately through the API or later through
/// [`schedule`](super::PvscsiDevice::schedule). Scheduled actions run in `run_due`, never inside
/// a register access, but for [`Trigger::DuringCommand`], whose point is to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// A bus reset from another initiator: in-flight requests complete with BUSRESET, every
    /// disk gets a unit attention.
    BusReset,
    /// A reset of one target.
    DeviceReset(u8),
    /// An adapter reset from the device side: as the `ADAPTER_RESET` command, but ending with the
    /// line low (see `PvscsiDevice::adapter_reset`).
    AdapterReset,
    /// Install an injection.
    Inject(Injection),
    /// Change the completion latency.
    SetLatency(Latency),
    /// Turn hostile mode on or off.
    SetHostile(Option<HostileConfig>),
    /// One garbage action.
    Hostile(HostileAction),
    /// Hot-unplug a target.
    Detach(u8),
}

/// Where a DMA fault happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DmaSite {
    /// The rings-state page.
    RingsState,
    /// A request descriptor slot.
    RequestDescriptor,
    /// A request's SG list.
    SgList,
    /// A request's data buffer.
    Data,
    /// A request's sense buffer.
    Sense,
    /// A completion descriptor slot.
    Completion,
    /// A message descriptor slot.
    Message,
    /// The CONFIG answer page.
    Config,
}

impl DmaSite {
    /// The name the trace gives it (`TRACE.md`, `dma` events).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::RingsState => "rings-state",
            Self::RequestDescriptor => "request",
            Self::SgList => "sg-list",
            Self::Data => "data",
            Self::Sense => "sense",
            Self::Completion => "completion",
            Self::Message => "message",
            Self::Config => "config",
        }
    }
}

/// A recorded DMA fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaFaultRecord {
    /// What the device was accessing.
    pub site: DmaSite,
    /// The failing access.
    pub fault: DmaFault,
    /// The request's context, when the access belonged to one.
    pub context: Option<u64>,
}

/// Counters for tests and the emulator's verifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Register reads through the MMIO BAR.
    pub reg_reads: u64,
    /// Register writes through the MMIO BAR.
    pub reg_writes: u64,
    /// 1- or 2-byte register accesses (converted as QEMU does; a driver should not make them).
    pub narrow_accesses: u64,
    /// Misaligned register accesses (rejected: reads 0, writes dropped).
    pub misaligned_accesses: u64,
    /// Accesses of a size other than 1, 2, 4, or outside the BAR.
    pub invalid_accesses: u64,
    /// Commands executed (COMMAND writes that completed, incl. unknown ones).
    pub commands: u64,
    /// Unknown / unsupported commands (status −1 by the "unknown" handler).
    pub unknown_commands: u64,
    /// Data words that arrived with no command pending.
    pub stray_command_words: u64,
    /// Kicks.
    pub kicks: u64,
    /// Kicks ignored because the rings were not set up.
    pub kicks_ignored: u64,
    /// Requests the device took from the request ring without a kick, with the request-call
    /// threshold on (VMware layout).
    pub requests_polled: u64,
    /// `SETUP_RINGS` accepted with a page count that is not a power of two (pvscsi-facts.md Q2).
    pub non_power_of_two_rings: u64,
    /// Requests taken from the request ring.
    pub requests: u64,
    /// Kicks that stopped because `reqProdIdx − consumed ≥ 1024`.
    pub req_prod_out_of_range: u64,
    /// Kicks that stopped at a descriptor address of 0 (pvscsi-facts.md Q3).
    pub null_descriptors: u64,
    /// Kicks stalled by the Q8 index wrap (only with `q8_index_wrap`).
    pub index_wrap_stalls: u64,
    /// Requests with reserved or `OUT_OF_BAND_CDB` flag bits set.
    pub bad_flags: u64,
    /// Requests whose context is 0 or has upper 32 bits set (VMware forbids both).
    pub bad_contexts: u64,
    /// SG elements with non-zero flags (QEMU ignores them; chain elements are not honoured).
    pub sg_flagged_elements: u64,
    /// Requests answered with selection timeout.
    pub selection_timeouts: u64,
    /// Requests whose direction flags contradict the CDB: never completed (pvscsi-facts.md Q4).
    pub direction_contradictions: u64,
    /// Contradicting requests still held when an adapter reset came — the point where QEMU
    /// aborts the whole VM.
    pub stuck_at_adapter_reset: u64,
    /// READs and WRITEs of blocks given no buffer at all (no SG list, `dataLen` 0): QEMU's DMA
    /// helper waits for a mapping of the one empty segment that never comes, so they never
    /// complete on their own; a reset or an abort cancels them (QEMU 7.2, run).
    pub dma_waits: u64,
    /// Requests that got an injected effect.
    pub injected: u64,
    /// Completions written to the completion ring (including hostile ones).
    pub completions_posted: u64,
    /// Completion batches (cmpProdIdx updates).
    pub batches: u64,
    /// Completions dropped because no rings were set up.
    pub completions_dropped: u64,
    /// Completion writes over an entry the driver had not consumed (`cmpConsIdx` read for this
    /// statistic only; the device never acts on it, like QEMU, pvscsi-facts.md Q7).
    pub completion_overflows: u64,
    /// Rising edges of the INTx line.
    pub interrupts_raised: u64,
    /// MSI messages that would have been sent (MSI enabled in config space).
    pub msi_messages: u64,
    /// Messages posted on the message ring.
    pub messages_posted: u64,
    /// Messages dropped: no message ring although the rings are set up, or no room.
    pub messages_dropped: u64,
    /// `ABORT_CMD` commands.
    pub aborts: u64,
    /// `ABORT_CMD` commands that cancelled a request.
    pub aborts_matched: u64,
    /// Bus resets (command or fault hook).
    pub bus_resets: u64,
    /// Device resets.
    pub device_resets: u64,
    /// Adapter resets (command, fault hook or machine reset).
    pub adapter_resets: u64,
    /// DMA faults.
    pub dma_faults: u64,
    /// The last DMA fault.
    pub last_dma_fault: Option<DmaFaultRecord>,
    /// Hostile actions performed.
    pub hostile_actions: u64,
    /// The last hostile action.
    pub last_hostile: Option<HostileAction>,
}

/// Register and ring state, for tests and the verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registers {
    /// `COMMAND_STATUS`.
    pub command_status: u32,
    /// `INTR_STATUS`.
    pub intr_status: u32,
    /// `INTR_MASK`.
    pub intr_mask: u32,
    /// The INTx level the device drives (before the PCI Interrupt Disable bit).
    pub line: bool,
    /// The command waiting for data words (0 = none).
    pub pending_command: u32,
    /// Data words received for it.
    pub pending_words: usize,
    /// Whether `SETUP_RINGS` is in effect.
    pub rings_valid: bool,
    /// Whether `SETUP_MSG_RING` is in effect.
    pub msg_ring_valid: bool,
}

/// The ring setup the device is using.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingInfo {
    /// Rings-state page PA.
    pub rings_state_pa: u64,
    /// log2 of the request ring entries.
    pub req_entries_log2: u32,
    /// log2 of the completion ring entries.
    pub cmp_entries_log2: u32,
    /// log2 of the message ring entries (0 without a message ring).
    pub msg_entries_log2: u32,
    /// Requests consumed (QEMU's 64-bit counter).
    pub consumed: u64,
    /// Completions written (the next cmpProdIdx).
    pub completions_filled: u32,
    /// Messages written.
    pub messages_filled: u32,
}

/// Something the device did, for the emulator's trace. Delivered after the device lock is
/// released, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A command finished with this `COMMAND_STATUS`.
    Command {
        /// Command code.
        code: u32,
        /// Resulting status.
        status: u32,
    },
    /// A kick took `taken` requests.
    Kick {
        /// Requests taken.
        taken: u32,
    },
    /// A request was accepted.
    Request {
        /// Context.
        context: u64,
        /// Target id.
        target: u8,
        /// LUN byte.
        lun: u8,
        /// Opcode (0 without a CDB).
        opcode: u8,
    },
    /// A completion was written.
    Completion {
        /// Context.
        context: u64,
        /// Host status.
        host_status: u16,
        /// SCSI status.
        scsi_status: u16,
    },
    /// cmpProdIdx was written after `count` completions.
    Batch {
        /// Completions in the batch.
        count: u32,
        /// The value written.
        cmp_prod_idx: u32,
    },
    /// The INTx line changed.
    Irq {
        /// New level.
        asserted: bool,
    },
    /// A reset happened.
    Reset {
        /// "adapter", "bus", "device" or "machine".
        kind: &'static str,
    },
    /// A DMA fault was recorded.
    DmaFault(DmaFaultRecord),
    /// A hostile action was taken.
    Hostile(HostileAction),
    /// A hostile write with a given value was made.
    HostileWrite(HostileWrite),
    /// A message was posted.
    Message {
        /// Message type.
        kind: u32,
        /// Target id.
        target: u8,
    },
}

/// Receives device events.
pub type EventSink = Arc<dyn Fn(&DeviceEvent) + Send + Sync>;

/// Why an API call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvscsiError {
    /// The target id is outside what the bus accepts.
    BadTarget(u8),
    /// A target is already attached there.
    Occupied(u8),
}

impl std::fmt::Display for PvscsiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadTarget(t) => write!(f, "target id {t} is outside the bus"),
            Self::Occupied(t) => write!(f, "target id {t} already has a device"),
        }
    }
}

impl std::error::Error for PvscsiError {}
