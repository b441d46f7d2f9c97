//! The PVSCSI device logic, one copy for both port flavours: bring-up and ring setup, request
//! slots and contexts, the request descriptor and its scatter-gather list, completion and
//! message rings, abort and reset.
//!
//! It is generic over the port wrapper ([`Port`]) and never calls a port routine except through
//! the [`Notify`] it is given, so each flavour decides where it runs: SCSI Port runs all of it
//! in its serialised routines (`driver/scsi_port.rs`); Storport splits it by lock
//! (`driver/stor_port.rs`): the request descriptor is built in `HwStorBuildIo` with no lock, a
//! [`Device`] is owned by the `StartIo` lock, the interrupt mask by the interrupt lock.
//!
//! Everything the device writes (ring indexes, contexts, lengths, statuses) is untrusted: an
//! index out of range is ignored, a completion is accepted only for a context the driver
//! issued and has not seen complete, and sense lengths are bounded by both buffers.
//!
//! The functions the SCSI Port trampolines call out of line (`plan_any`,
//! [`Device::drain_messages`], `learn_from`, [`status::classify`]) are `extern "win64"`, the
//! trampolines' own convention: in the emulator's Linux build a routine of that convention that
//! calls a Rust (System V) function must save and restore xmm6–xmm15 in its prologue and
//! epilogue (callee-saved in the Windows x64 convention only), some 20 instructions on every call
//! even when the call is on a path not taken. On Windows both conventions are one. They are
//! called from Rust only, so their Rust types (slices, `Result`, structs) need not be C's.

use core::sync::atomic::{AtomicU32, Ordering, compiler_fence, fence};

use crate::cdb::{self, Direction};
use crate::hw;
use crate::layout::{self, Layout, SENSE_BYTES, SG_ELEMENTS, SG_LIST_BYTES};
use crate::port::{DataDirection, Notify, Port, Request, SharedMemory, SharedWords, SrbStatus, WordSink};
use crate::pvscsi::{
    CONFIG_CONTROLLER_ADDRESS, CONFIG_PAGE_CONTROLLER, COMMAND_STATUS_FAILED, PAGE_SHIFT, SETUP_MSG_RING_MAX_PAGES,
    SETUP_RINGS_MAX_PAGES, cmd, cmp, flags, host, intr, msg, req, sge, state,
};
use crate::status::{self, Completion};

/// The ID VMware reserves for the controller on a PVSCSI bus; reported as `InitiatorBusId` so
/// that the port does not scan it.
pub const INITIATOR_ID: u8 = 7;
/// Targets when the device cannot say (QEMU does not implement `CONFIG`); Linux assumes the
/// same (pvscsi-facts.md §4.7, Q10).
pub const DEFAULT_TARGETS: u8 = 16;
/// The most `MaximumNumberOfTargets` may be (`SCSI_MAXIMUM_TARGETS_PER_BUS`).
pub const MAX_TARGETS: u32 = 128;

/// Debug output with a value through the port `P`; compiled only with the `debug-print`
/// feature, so the shipping driver has no debug output and no import for it.
macro_rules! debug_print {
    ($port:ty, $message:literal, $value:expr) => {{
        #[cfg(feature = "debug-print")]
        <$port as $crate::port::Port>::debug_print($message, u64::from($value));
        #[cfg(not(feature = "debug-print"))]
        let _ = || $value;
    }};
}
pub(crate) use debug_print;

/// One request slot: the SRB the device is working on and the generation that makes its
/// context unique, so that a stale or forged completion is recognised.
#[derive(Debug)]
struct Slot<S> {
    srb: Option<S>,
    generation: u32,
    aborting: bool,
    /// Bytes the device was given (`dataLen`): at most `DataTransferLength`, less when the CDB
    /// transfers less, which is then reported as an underrun.
    sent: u32,
    /// A READ or WRITE: nothing to learn from its completion ([`learn_from`]).
    read_write: bool,
}

/// Counters of device misbehaviour the driver survived. Kept for debugging (visible in a
/// memory dump of the device extension); the driver's behaviour does not depend on them.
#[derive(Debug, Default)]
struct Counters {
    /// Completions whose context named no outstanding request.
    rejected_completions: u32,
    /// Times the device published a producer index out of range.
    bad_indexes: u32,
    /// Scatter-gather or descriptor writes that fell outside the uncached extension.
    layout_faults: u32,
}

/// The logical block size of each target, from its last READ CAPACITY answer; 0 when unknown.
///
/// Atomics, because on Storport it is read in `HwStorBuildIo` (no lock, any processor) and
/// written where completions are processed; a request planned just before a READ CAPACITY
/// answer is learned is planned as before the first one, which [`plan`] allows for.
#[derive(Debug)]
pub struct BlockSizes([AtomicU32; MAX_TARGETS as usize]);

impl BlockSizes {
    /// The block size of `target`, 0 when unknown.
    pub fn get(&self, target: u8) -> u32 {
        self.0.get(usize::from(target)).map_or(0, |b| b.load(Ordering::Relaxed))
    }

    fn set(&self, target: usize, size: u32) {
        if let Some(entry) = self.0.get(target) {
            entry.store(size, Ordering::Relaxed);
        }
    }
}

/// What a ring setup established: whether the message ring is on, and the starting indexes the
/// device wrote into the rings-state page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Started {
    /// `SETUP_MSG_RING` succeeded.
    pub msg_ring: bool,
    /// `SETUP_REQCALLTHRESHOLD` enabled the request-call threshold (VMware).
    pub req_call_threshold: bool,
    req_prod: u32,
    cmp_cons: u32,
    msg_cons: u32,
}

/// A request context: slot + 1 in the low byte (never 0), the slot's generation above it, and
/// the upper 32 bits zero, as VMware requires (pvscsi-facts.md §5.3).
///
/// A context is used again only once the device can no longer hold its earlier use: a slot is
/// freed when its completion has been consumed, or after an `ADAPTER_RESET`, which completes or
/// cancels everything the device had before it returns (QEMU's `pvscsi_reset_adapter` flushes
/// the cancelled requests into the old ring and asserts its request list empty; Linux's host
/// reset relies on VMware touching no ring memory afterwards, pvscsi-facts.md §7). The generation
/// only makes a device's stale or duplicated completions recognisable within one ring setup, so
/// it may start again from zero in a fresh device extension (a PnP start, the crash-dump
/// instance): every session resets the adapter before its first request ([`Device::reset_and_setup`]).
fn encode_context(slot: usize, generation: u32) -> u64 {
    let slot = u32::try_from(slot).unwrap_or(u32::MAX) & 0xFF;
    u64::from((generation << 8) | slot.wrapping_add(1))
}

/// The slot and generation of a context the device returned, if it is well-formed.
fn decode_context(context: u64) -> Option<(usize, u32)> {
    let low = u32::try_from(context).ok()?;
    let slot = (low & 0xFF).checked_sub(1)?;
    Some((slot as usize, low >> 8))
}

/// How a request goes to the device: its direction bits and how many bytes of its buffer the
/// device gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `flags::DIR_*`.
    pub direction: u32,
    /// Bytes of the buffer the device gets (`dataLen`).
    pub send: u32,
}

/// Whether `bytes` can be a logical block size: a multiple of 512 up to 64 KiB (QEMU's disks,
/// whose MODE SELECT may set any multiple of 512 up to 65024; VMware's 512 and 4096).
fn plausible_block_size(bytes: u64) -> bool {
    (512..=0x1_0000).contains(&bytes) && bytes.is_multiple_of(512)
}

/// Plans a request from its CDB, its flags and its buffer, or says why it must not go to the
/// device.
///
/// The device derives a command's direction and length from the CDB alone ([`cdb::transfer`]),
/// so the request it is given must agree with that:
///
/// - A direction contradicting the device's is refused: QEMU never completes such a request, and
///   its next adapter reset aborts QEMU (pvscsi-facts.md Q4); sent without direction bits, data
///   would move the other way than the class driver asked.
/// - A buffer shorter than a data-out transfer, or than a READ's blocks, is refused: QEMU moves
///   what the buffer holds and completes GOOD, so a short WRITE would half happen and be reported
///   done; with no buffer at all its DMA never completes. A data-in buffer shorter than an
///   allocation length is sent as it is: the device stops at its end.
/// - A buffer longer than the transfer is sent only the transfer's bytes (QEMU moves the whole
///   buffer, so a WRITE would overwrite blocks past the CDB's range) and the rest is reported
///   as an underrun at completion.
/// - A transfer over `MaximumTransferLength` is refused: the port promised never to send one.
/// - WRITE SAME without a data-out buffer (NDOB) is refused: QEMU completes it GOOD and writes
///   nothing.
///
/// The refusal is `SRB_STATUS_INVALID_REQUEST`, "the request contains invalid parameters"
/// (`DDI:ns-srb-_scsi_request_block`).
#[inline]
pub fn plan(srb_direction: DataDirection, cdb: &[u8], length: u32, block_size: u32) -> Result<Plan, SrbStatus> {
    match plan_read_write(srb_direction, cdb, length, block_size) {
        Some(plan) => Ok(plan),
        None => plan_any(srb_direction, cdb, length, block_size),
    }
}

/// [`plan`] for any CDB. Out of line, so that the I/O path keeps only the READ/WRITE plan; and
/// `extern "win64"` (see the module doc).
#[allow(improper_ctypes_definitions)] // called from Rust only: see the module doc
#[inline(never)]
extern "win64" fn plan_any(srb_direction: DataDirection, cdb: &[u8], length: u32, block_size: u32) -> Result<Plan, SrbStatus> {
    if length > layout::MAX_TRANSFER || cdb::is_write_same_without_data(cdb) {
        return Err(SrbStatus::InvalidRequest);
    }
    let transfer = cdb::transfer(cdb);
    let direction = match transfer.dir {
        Direction::None => return Ok(Plan { direction: flags::DIR_NONE, send: 0 }),
        Direction::In => flags::DIR_TOHOST,
        Direction::Out => flags::DIR_TODEVICE,
    };
    match (srb_direction, transfer.dir) {
        (DataDirection::In, Direction::Out) | (DataDirection::Out, Direction::In) => {
            return Err(SrbStatus::InvalidRequest);
        }
        // The class driver said no data moves, and gave a buffer anyway.
        (DataDirection::None, _) if length != 0 => return Err(SrbStatus::InvalidRequest),
        _ => {}
    }
    let wanted = match transfer.len {
        cdb::Length::Bytes(n) => n,
        cdb::Length::Blocks(n) if block_size != 0 => n.saturating_mul(u64::from(block_size)),
        // Before the first READ CAPACITY answer: the buffer must hold a whole number of blocks of
        // a size a disk can have.
        cdb::Length::Blocks(n) => match u64::from(length).checked_div(n) {
            Some(size) if plausible_block_size(size) && size.saturating_mul(n) == u64::from(length) => u64::from(length),
            _ => return Err(SrbStatus::InvalidRequest),
        },
    };
    let send = match u32::try_from(wanted) {
        Ok(wanted) if wanted <= length => wanted,
        _ if transfer.dir == Direction::In && !transfer.media => length,
        _ => return Err(SrbStatus::InvalidRequest),
    };
    Ok(Plan { direction, send })
}

/// The plan of a READ(10/16) or WRITE(10/16) of at least one block to a target whose block size
/// is known, and whose buffer and flags agree with it: the requests of the I/O path, planned
/// without [`cdb::transfer`]'s general decoding. It is the plan [`plan`] makes for them (the
/// device moves `blocks × block size` bytes the CDB's way, `scsi_req_xfer`, §6.3); any other
/// request, or one [`plan`] would refuse, is `None` and left to [`plan`]'s general rules.
#[inline]
fn plan_read_write(srb_direction: DataDirection, cdb: &[u8], length: u32, block_size: u32) -> Option<Plan> {
    let (blocks, write) = match cdb.first()? {
        // READ(10), WRITE(10): transfer length in bytes 7-8.
        0x28 | 0x2A => {
            let [opcode, _, _, _, _, _, _, high, low, _] = *cdb.first_chunk::<10>()?;
            (u32::from(u16::from_be_bytes([high, low])), opcode == 0x2A)
        }
        // READ(16), WRITE(16): transfer length in bytes 10-13.
        0x88 | 0x8A => {
            let [opcode, _, _, _, _, _, _, _, _, _, b0, b1, b2, b3, _, _] = *cdb.first_chunk::<16>()?;
            (u32::from_be_bytes([b0, b1, b2, b3]), opcode == 0x8A)
        }
        _ => return None,
    };
    // The CDB's direction, or both bits (unspecified). Two tests of the enum rather than a match
    // on it, which compiled to a jump table.
    let agrees = if write {
        matches!(srb_direction, DataDirection::Out | DataDirection::Unspecified)
    } else {
        matches!(srb_direction, DataDirection::In | DataDirection::Unspecified)
    };
    // No blocks (no data phase) and an unknown block size take the general path.
    let send = blocks.checked_mul(block_size).filter(|send| *send != 0)?;
    if !agrees || send > length || length > layout::MAX_TRANSFER {
        return None;
    }
    Some(Plan { direction: if write { flags::DIR_TODEVICE } else { flags::DIR_TOHOST }, send })
}

/// An `SRB_FUNCTION_EXECUTE_SCSI` request the device may be given, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Direction and length for the device.
    pub plan: Plan,
    /// READ or WRITE: rings `KICK_RW_IO`.
    pub read_write: bool,
}

/// The checks every `SRB_FUNCTION_EXECUTE_SCSI` request passes before it goes to the device, in
/// this order: one bus (`SRB_STATUS_INVALID_PATH_ID`), a target the HBA has
/// (`SRB_STATUS_INVALID_TARGET_ID`), a CDB of 1 to 16 bytes, and the [`plan`]
/// (`SRB_STATUS_INVALID_REQUEST`). Reads only the request and the block sizes, so Storport's
/// `HwStorBuildIo` can make them with no lock held.
pub fn check(srb: &impl Request, max_targets: u8, blocks: &BlockSizes) -> Result<Checked, SrbStatus> {
    let address = srb.address();
    if address.path_id != 0 {
        return Err(SrbStatus::InvalidPathId);
    }
    if address.target_id >= max_targets {
        return Err(SrbStatus::InvalidTargetId);
    }
    let cdb = srb.cdb();
    let (Some(&opcode), true) = (cdb.first(), usize::from(srb.cdb_length()) <= 16) else {
        return Err(SrbStatus::InvalidRequest);
    };
    let plan = plan(srb.data_direction(), cdb, srb.data_transfer_length(), blocks.get(address.target_id))?;
    Ok(Checked { plan, read_write: cdb::is_read_write(opcode) })
}

/// Where the device finds a request's data (`dataAddr` and the `WITH_SG_LIST` flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data {
    /// No data phase.
    None,
    /// One segment, at this bus address, straight in `dataAddr`, as Linux and FreeBSD do.
    Direct(u64),
    /// This many elements of a scatter-gather list.
    List(u32),
}

/// Lays the first `send` bytes of a buffer, given as its physical `segments`, out for the device
/// (§5.4). One segment goes straight into `dataAddr` with no list, as Linux's
/// `pvscsi_map_buffers` and FreeBSD do, so the device reads no element and none is written;
/// several are written as PVSCSI scatter-gather elements with `put(index, address, length)`. A
/// segment the port could not translate is `None`; segments past the first `send` bytes are not
/// asked for.
///
/// The port never splits a transfer of `MaximumTransferLength` into more pieces than
/// `NumberOfPhysicalBreaks` allows; a longer list is not one the device may get (`None`), nor is
/// a buffer holding less than `send`.
pub fn scatter_gather(
    mut segments: impl Iterator<Item = Option<(u64, u32)>>,
    send: u32,
    mut put: impl FnMut(u32, u64, u32) -> Option<()>,
) -> Option<Data> {
    if send == 0 {
        return Some(Data::None);
    }
    let (first, length) = segments.next()??;
    let first_length = length.min(send);
    let mut left = send.wrapping_sub(first_length);
    if left == 0 {
        return Some(Data::Direct(first));
    }
    // A list: the first element is written once a second segment shows there is one.
    put(0, first, first_length)?;
    let mut count: u32 = 1;
    while left != 0 {
        let (address, length) = segments.next()??;
        if count > layout::PHYSICAL_BREAKS || count >= SG_ELEMENTS {
            return None;
        }
        let length = length.min(left);
        left = left.wrapping_sub(length);
        put(count, address, length)?;
        count = count.checked_add(1)?;
    }
    Some(Data::List(count))
}

// The context and the sense address, which come from the slot when a descriptor is posted, are
// whole words (0 and 3), and a scatter-gather element is the two words `Device::map_data`
// writes: the address, then the length with the flags above it.
const _: () = assert!(req::CONTEXT == 0 && req::SENSE_ADDR == 3 * 8);
const _: () = assert!(sge::SIZE == 16 && sge::ADDR == 0 && sge::LENGTH == 8 && sge::FLAGS == 12);

/// A request descriptor (§5.3) staged before it goes into the ring: 128 bytes, as little-endian
/// 64-bit words. The context and the sense buffer are the slot's, filled in when it is posted
/// ([`Device::post`]).
///
/// Storport builds it in the SRB extension in `HwStorBuildIo`, with no lock, so that
/// `HwStorStartIo` only copies it. SCSI Port has no such split and writes its descriptors
/// straight into the ring ([`Device::issue`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Descriptor(pub [u64; 16]);

#[cfg_attr(all(target_os = "windows", not(feature = "storport")), allow(dead_code))] // Storport only
impl Descriptor {
    /// Sets the `bytes`-byte little-endian field at `offset` to `value`. Every field of the
    /// descriptor is naturally aligned, so none straddles two words; one that would is ignored.
    fn set(&mut self, offset: u32, bytes: u32, value: u64) {
        let shift = (offset & 7) << 3;
        let width = bytes << 3;
        let Some(word) = self.0.get_mut((offset >> 3) as usize) else { return };
        if width == 0 || shift.saturating_add(width) > 64 {
            return;
        }
        let mask = if width == 64 { u64::MAX } else { (1u64 << width).wrapping_sub(1) << shift };
        *word = (*word & !mask) | ((value << shift) & mask);
    }

    /// Points a descriptor built with [`Data::List`] at its scatter-gather list, once the list's
    /// place is known (Storport: the slot's list, chosen in `HwStorStartIo`).
    pub fn set_sg_list(&mut self, pa: u64) {
        self.set(req::DATA_ADDR, 8, pa);
    }

    /// The descriptor of `srb` with its data at `data` and its plan: all but the context and
    /// the sense address, which are the slot's ([`Device::post`]).
    pub fn new(srb: &impl Request, data: Data, plan: Plan, sg_list: u64) -> Self {
        let mut desc = Self::default();
        write_descriptor(&mut desc, srb, data, plan, sg_list, 0, 0);
        desc
    }

    /// Writes this descriptor into `out` with `context` and `sense` (words 0 and 3) filled in.
    fn copy_into(&self, out: &mut impl WordSink<16>, context: u64, sense: u64) {
        let [_, w1, w2, _, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15] = self.0;
        out.put::<0>(context);
        out.put::<1>(w1);
        out.put::<2>(w2);
        out.put::<3>(sense);
        out.put::<4>(w4);
        out.put::<5>(w5);
        out.put::<6>(w6);
        out.put::<7>(w7);
        out.put::<8>(w8);
        out.put::<9>(w9);
        out.put::<10>(w10);
        out.put::<11>(w11);
        out.put::<12>(w12);
        out.put::<13>(w13);
        out.put::<14>(w14);
        out.put::<15>(w15);
    }
}

impl WordSink<16> for Descriptor {
    fn put<const I: usize>(&mut self, value: u64) {
        if let Some(word) = self.0.get_mut(I) {
            *word = value;
        }
    }
}

/// Writes the request descriptor (§5.3) of `srb`, with its data at `data`, its plan, and the
/// slot's `context` and `sense` buffer, into `out`: all sixteen words, in order, each computed
/// as it is stored (the layout is checked below), so that nothing is zeroed first and then
/// rewritten field by field. SCSI Port writes it straight into the ring slot
/// ([`Device::issue`]); Storport into its staging copy ([`Descriptor::new`]). Inlined into each,
/// so that every word is stored where it is computed, with no staging copy in between.
#[allow(clippy::inline_always)] // measured: see the commit that made it so
#[inline(always)]
fn write_descriptor(
    out: &mut impl WordSink<16>,
    srb: &impl Request,
    data: Data,
    plan: Plan,
    sg_list: u64,
    context: u64,
    sense: u64,
) {
    let (data_addr, sg_flag) = match data {
        Data::None => (0, 0),
        Data::Direct(address) => (address, 0),
        Data::List(_) => (sg_list, flags::WITH_SG_LIST),
    };
    let address = srb.address();
    // The 16 CDB bytes are two whole words (0x28, 0x30), the bytes past the CDB zero.
    let [cdb_low, cdb_high] = srb.cdb_words();
    let cdb_len = u64::try_from(srb.cdb().len()).unwrap_or(0) & 0xFF;
    out.put::<0>(context);
    out.put::<1>(data_addr);
    out.put::<2>(u64::from(plan.send));
    out.put::<3>(sense);
    out.put::<4>(u64::from(SENSE_BYTES) | (u64::from(sg_flag | plan.direction) << 32));
    out.put::<5>(cdb_low);
    out.put::<6>(cdb_high);
    // CDB length at 0x38; a single-level LUN in byte 1 of the SAM LUN at 0x39 (§5.3).
    out.put::<7>(cdb_len | (u64::from(address.lun) << 16));
    // Tag message at 0x41, bus 0 at 0x42, target at 0x43; no vCPU hint.
    out.put::<8>((u64::from(srb.tag_message()) << 8) | (u64::from(address.target_id) << 24));
    out.put::<9>(0);
    out.put::<10>(0);
    out.put::<11>(0);
    out.put::<12>(0);
    out.put::<13>(0);
    out.put::<14>(0);
    out.put::<15>(0);
}

// The words `Descriptor::new` builds, field by field (§5.3): data address and length, sense
// length and flags in word 4, the CDB in words 5 and 6, its length and the LUN in word 7, tag,
// bus and target in word 8.
const _: () = assert!(
    req::CONTEXT == 0x00
        && req::DATA_ADDR == 0x08
        && req::DATA_LEN == 0x10
        && req::SENSE_ADDR == 0x18
        && req::SENSE_LEN == 0x20
        && req::FLAGS == 0x24
        && req::CDB == 0x28
        && req::CDB_LEN == 0x38
        && req::LUN == 0x39
        && req::TAG == 0x41
        && req::BUS == 0x42
        && req::TARGET == 0x43
        && req::VCPU_HINT == 0x44
        && req::SIZE == 128
);

/// The interrupt mask and the deferral state: SCSI Port's device extension holds one, Storport's
/// interrupt-lock state another.
#[derive(Debug, Default)]
pub struct Interrupts {
    /// `INTR_MASK` while interrupts are enabled.
    pub enabled_mask: u32,
    /// The ISR masked the HBA and the deferred part (SCSI Port's disable callback, Storport's
    /// DPC) has not unmasked it yet.
    pub deferred: bool,
    /// `INTR_STATUS` bits the ISR saw, for the deferred part (read by SCSI Port's; Storport's
    /// DPC drains both rings whatever they were).
    #[cfg_attr(all(target_os = "windows", feature = "storport"), allow(dead_code))] // read on SCSI Port only
    pub saved_status: u32,
}

impl Interrupts {
    /// `INTR_MASK` as it should be now.
    pub fn current_mask(&self) -> u32 {
        if self.deferred { 0 } else { self.enabled_mask }
    }

    /// The ISR's first half: reads `INTR_STATUS` and claims only an interrupt this HBA raised,
    /// a status bit its current mask lets through (the line may be shared; in crash-dump mode,
    /// where the ISR is polled with the HBA masked, any bit). Acknowledges what it claims and
    /// returns it.
    pub fn claim(&self, regs: &impl crate::port::Registers, dump: bool) -> Option<u32> {
        let status = match hw::read_intr_status(regs) {
            u32::MAX => all_ones(regs)?,
            status => status,
        };
        let raised = if dump { status & intr::ALL_SUPPORTED } else { status & self.current_mask() };
        if raised == 0 {
            return None;
        }
        hw::ack_intr(regs, raised);
        Some(raised)
    }

    /// Masks the HBA until the deferred part runs, saving what was raised for it.
    pub fn defer(&mut self, regs: &impl crate::port::Registers, raised: u32) {
        hw::mask_intr(regs);
        self.deferred = true;
        self.saved_status |= raised;
    }

    /// The deferred part's end: unmasks the HBA. PVSCSI's line is `INTR_STATUS & INTR_MASK`,
    /// re-evaluated on every mask write, so completions posted meanwhile raise it again at once
    /// and nothing is lost (pvscsi-facts.md §3, §11).
    pub fn undefer(&mut self, regs: &impl crate::port::Registers) {
        self.deferred = false;
        hw::unmask_intr(regs, self.current_mask());
    }
}

/// What a slot remembers of its request for the completion's rules.
#[derive(Clone, Copy, Debug)]
struct Sent {
    /// The bytes the device was given.
    bytes: u32,
    /// The driver asked the device to abort it.
    aborting: bool,
    /// READ or WRITE.
    read_write: bool,
}

/// An `INTR_STATUS` of all ones: `None` when the mask reads all ones too, the device being gone (a
/// surprise removal reads all ones from every register, and the driver never writes all ones to
/// the mask), so that the line, if up, is another device's; otherwise the status, read again,
/// which a device still there may have set to all ones, garbage or not, and whose bits the mask
/// lets through are claimed and acknowledged like any, or a line it holds up would never drop
/// (an interrupt storm, found by the hostile fuzz target). In the image, where a register read
/// is one `mov`, inlined; in the Linux build, where it is a call into the emulator, out of line
/// and `extern "win64"` (see the module doc), with the status read again rather than kept across
/// the call: either way the ISR's common path keeps its registers.
#[cold]
#[cfg_attr(target_os = "windows", inline(always))]
#[cfg_attr(not(target_os = "windows"), inline(never))]
#[allow(improper_ctypes_definitions)] // called from Rust only: see the module doc
extern "win64" fn all_ones(regs: &impl crate::port::Registers) -> Option<u32> {
    (hw::read_intr_mask(regs) != u32::MAX).then(|| hw::read_intr_status(regs))
}

/// The interrupt bits to enable after a ring setup: completions, and messages when the ring
/// exists; none in crash-dump mode, where the ISR is polled.
pub fn enabled_mask(dump: bool, msg_ring: bool) -> u32 {
    if dump {
        0
    } else if msg_ring {
        intr::CMPL_MASK | intr::MSG_MASK
    } else {
        intr::CMPL_MASK
    }
}

/// The request side of the HBA: mapped registers, the uncached extension, the rings' indexes
/// and the slots of outstanding requests.
#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)] // independent facts of the device's state, each set at bring-up
pub struct Device<P: Port> {
    /// The register window.
    pub regs: Option<P::Registers>,
    /// The uncached extension, carved as [`Layout`] says.
    pub mem: Option<P::Memory>,
    /// Crash-dump mode: the smaller layout.
    pub dump: bool,
    /// Rings set up, requests accepted.
    pub running: bool,
    msg_ring: bool,
    /// The device publishes a request-call threshold (VMware, §4.8): READ/WRITE requests are
    /// kicked only when it says so ([`Self::kick`]).
    req_call_threshold: bool,
    /// Producer index of the request ring; the device only reads it.
    req_prod: u32,
    /// Consumer index of the completion ring; the device never reads it in QEMU.
    cmp_cons: u32,
    /// Consumer index of the message ring.
    msg_cons: u32,
    /// Bit `n` set: slot `n` holds a request.
    busy: u64,
    /// The rings as [`Device::reset_and_setup`] proved them inside `mem`, so that a request or a
    /// completion costs no bounds or alignment check: `None` until the first ring setup.
    rings: Rings<P::Memory>,
    slots: [Slot<P::Srb>; 64],
    counters: Counters,
}

/// Words in the rings-state page (§4.3): one page.
const STATE_WORDS: usize = 512;
/// Words in a request descriptor.
const REQ_WORDS: usize = 16;
/// Words in a completion descriptor.
const CMP_WORDS: usize = 4;
const _: () = assert!(
    STATE_WORDS * 8 == crate::pvscsi::PAGE_SIZE as usize && REQ_WORDS * 8 == req::SIZE as usize && CMP_WORDS * 8 == cmp::SIZE as usize
);

/// The rings-state page, the request and completion rings, and the sense buffers' bus address,
/// each checked against the uncached extension once, when the rings are set up
/// ([`Rings::prove`]), instead of on every request and completion. Separate `Option`s, each
/// `None` as all zeros (the wrappers' `Zeroable` impls), so the device extension stays valid
/// zeroed.
#[derive(Debug)]
struct Rings<M: SharedMemory> {
    state: Option<M::Words<STATE_WORDS>>,
    req: Option<M::Ring<REQ_WORDS>>,
    cmp: Option<M::Ring<CMP_WORDS>>,
    /// Bus address of slot 0's sense buffer; the buffers of all `layout.slots` lie inside the
    /// extension (checked in [`Rings::prove`]).
    sense_pa: u64,
    /// Bit `n` set for each of the `layout.slots` slots whose sense buffer was checked: the slots
    /// a request may take ([`Device::alloc_slot`]), without a look at the layout per request.
    slots: u64,
}

impl<M: SharedMemory> Rings<M> {
    /// The rings of `layout` in `mem`, or `None` if any part of them falls outside it.
    fn prove(mem: &M, layout: Layout) -> Option<Self> {
        let sense_bytes = layout.slots.checked_mul(SENSE_BYTES)?;
        let sense_pa = mem.window(layout.sense, sense_bytes)?.pa();
        Some(Self {
            state: Some(mem.words::<STATE_WORDS>(0)?),
            req: Some(mem.ring::<REQ_WORDS>(layout.req, layout.req_entries())?),
            cmp: Some(mem.ring::<CMP_WORDS>(layout.cmp, layout.cmp_entries())?),
            sense_pa,
            slots: low_bits(layout.slots),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Bring-up
// ---------------------------------------------------------------------------------------------

/// `SETUP_RINGS` with all 132 words (§4.3), then checks that the device took it: status 0
/// and the ring sizes it wrote into the rings-state page.
fn setup_rings(regs: &impl crate::port::Registers, mem: &impl SharedMemory, layout: Layout) -> bool {
    let page = |offset: u32, index: u32, count: u32| -> u64 {
        if index < count {
            mem.pa().wrapping_add(u64::from(offset.wrapping_add(index << PAGE_SHIFT))) >> PAGE_SHIFT
        } else {
            0
        }
    };
    let state_ppn = mem.pa() >> PAGE_SHIFT;
    let words = [layout.req_pages, layout.cmp_pages, lo(state_ppn), hi(state_ppn)].into_iter().chain(
        (0..SETUP_RINGS_MAX_PAGES)
            .map(|i| page(layout.req, i, layout.req_pages))
            .chain((0..SETUP_RINGS_MAX_PAGES).map(|i| page(layout.cmp, i, layout.cmp_pages)))
            .flat_map(|ppn| [lo(ppn), hi(ppn)]),
    );
    if hw::write_command_words(regs, cmd::SETUP_RINGS, words) != 0 {
        return false;
    }
    let req_log2 = mem.read_u32(state::REQ_NUM_ENTRIES_LOG2);
    let cmp_log2 = mem.read_u32(state::CMP_NUM_ENTRIES_LOG2);
    req_log2 == Some(layout.req_entries().trailing_zeros()) && cmp_log2 == Some(layout.cmp_entries().trailing_zeros())
}

/// `SETUP_MSG_RING` (§4.4), when the device has it: hot-plug messages turn into
/// `BusChangeDetected`. Issued after `SETUP_RINGS`, as the interface requires.
fn setup_msg_ring(regs: &impl crate::port::Registers, mem: &impl SharedMemory, layout: Layout) -> bool {
    if layout.msg_pages == 0 || !hw::command_supported(regs, cmd::SETUP_MSG_RING) {
        return false;
    }
    let page = |index: u32| -> u64 {
        if index < layout.msg_pages {
            mem.pa().wrapping_add(u64::from(layout.msg.wrapping_add(index << PAGE_SHIFT))) >> PAGE_SHIFT
        } else {
            0
        }
    };
    let words = [layout.msg_pages, 0]
        .into_iter()
        .chain((0..SETUP_MSG_RING_MAX_PAGES).map(page).flat_map(|ppn| [lo(ppn), hi(ppn)]));
    hw::write_command_words(regs, cmd::SETUP_MSG_RING, words) != COMMAND_STATUS_FAILED
}

/// The number of targets the device reports through `CONFIG` (the controller page's
/// `numPhys`, §4.7), using `scratch` (a page of the uncached extension not yet in use) for
/// the answer. QEMU does not implement `CONFIG`: `None`.
pub fn query_max_targets(regs: &impl crate::port::Registers, scratch: &impl SharedMemory) -> Option<u8> {
    const HEADER_HOST_STATUS: u32 = 6;
    const HEADER_SCSI_STATUS: u32 = 8;
    const NUM_PHYS: u32 = 472;
    scratch.zero(0, NUM_PHYS.wrapping_add(8))?;
    // Pre-filled as failed, so a device that writes nothing reads as failure.
    scratch.write_u16(HEADER_HOST_STATUS, host::INVPARAM)?;
    scratch.write_u16(HEADER_SCSI_STATUS, u16::from(status::SCSISTAT_CHECK_CONDITION))?;
    let pa = scratch.pa();
    let words = [lo(pa), hi(pa), 0, CONFIG_CONTROLLER_ADDRESS, CONFIG_PAGE_CONTROLLER, 0];
    let result = hw::write_command(regs, cmd::CONFIG, &words);
    let answered = result != COMMAND_STATUS_FAILED
        && scratch.read_u16(HEADER_HOST_STATUS)? == host::SUCCESS
        && scratch.read_u16(HEADER_SCSI_STATUS)? == 0;
    let targets = if answered { scratch.read_u32(NUM_PHYS)? } else { 0 };
    scratch.zero(0, NUM_PHYS.wrapping_add(8))?;
    u8::try_from(targets.min(MAX_TARGETS)).ok().filter(|t| *t > 0)
}

/// The scratch page [`query_max_targets`] may use before the rings are set up: the start of
/// the scatter-gather area.
pub fn scratch(mem: &impl SharedMemory, layout: Layout) -> Option<impl SharedMemory> {
    mem.window(layout.sg, SG_LIST_BYTES)
}

/// How many times [`Device::reset_and_setup`] resets the adapter and sends `SETUP_RINGS` before
/// it gives the HBA up. A reset from the device side (the machine reset of §7, which clears
/// the pending command) between two of the command's 132 data words leaves the rest of them
/// with no command, each setting `COMMAND_STATUS` to −1 (pvscsi-facts.md §4.1): the rings do not
/// exist. The next try, from a fresh `ADAPTER_RESET`, is whole; a device that fails three in a
/// row is not coming back.
pub const SETUP_ATTEMPTS: usize = 3;

/// Resets the adapter (unless `reset` is false: the caller has just done so) and sets the rings
/// up afresh in `mem`, leaving the HBA masked; [`Device::apply`] takes the result on the request
/// side. With `coalesce`, the request-call threshold is turned on where the device has it (not
/// in crash-dump mode, which keeps to the simplest protocol).
pub fn setup(regs: &impl crate::port::Registers, mem: &impl SharedMemory, layout: Layout, coalesce: bool, reset: bool) -> Option<Started> {
    hw::mask_intr(regs);
    if reset {
        hw::adapter_reset(regs);
    }
    // The rings and the state page start from zero, as Linux does before SETUP_RINGS.
    mem.zero(0, layout.sg)?;
    if !setup_rings(regs, mem, layout) {
        return None;
    }
    // After SETUP_RINGS (an adapter reset turns it off again, §7), and before SETUP_MSG_RING,
    // whose status (34) is then what COMMAND_STATUS holds while the driver runs, as before the
    // threshold: a QEMU probe of the idle device reads it (crates/rspvscsi-sim/probe/qemu-7.2.json).
    let req_call_threshold = coalesce && hw::enable_req_call_threshold(regs);
    let msg_ring = setup_msg_ring(regs, mem, layout);
    // The device writes the starting indexes into the rings-state page as part of the setup
    // (0 on QEMU and in every open driver's experience, §4.3); take them from there rather
    // than assume them. They only ever select a slot through a mask.
    let started = Started {
        msg_ring,
        req_call_threshold,
        req_prod: mem.read_u32(state::REQ_PROD_IDX).unwrap_or(0),
        cmp_cons: mem.read_u32(state::CMP_CONS_IDX).unwrap_or(0),
        msg_cons: mem.read_u32(state::MSG_CONS_IDX).unwrap_or(0),
    };
    hw::ack_intr(regs, intr::ALL_SUPPORTED);
    Some(started)
}

impl<P: Port> Device<P> {
    /// How the uncached extension is carved.
    pub fn layout(&self) -> Layout {
        if self.dump { layout::DUMP } else { layout::NORMAL }
    }

    /// Takes a ring setup's result: the indexes to start from. Requests still in slots are the
    /// caller's to complete.
    pub fn apply(&mut self, started: Started) {
        self.msg_ring = started.msg_ring;
        self.req_call_threshold = started.req_call_threshold;
        self.req_prod = started.req_prod;
        self.cmp_cons = started.cmp_cons;
        self.msg_cons = started.msg_cons;
    }

    /// Resets the adapter and sets the rings up afresh in the same memory ([`setup`]), leaving
    /// the HBA masked. Returns the interrupt mask to enable, `None` if the rings could not be set
    /// up in [`SETUP_ATTEMPTS`] tries. Used by SCSI Port's `ScsiRestartAdapter`: firmware may
    /// have used the device since the stop (a resume from hibernation boots through it).
    #[cfg_attr(all(target_os = "windows", feature = "storport"), allow(dead_code))] // SCSI Port only
    pub fn reset_and_setup(&mut self) -> Option<u32> {
        self.setup_again(false)
    }

    /// [`Self::reset_and_setup`] for bring-up, which has reset the adapter itself just before,
    /// to query it (the bus reset does the same inside [`Self::reset_bus`]).
    pub fn setup_after_reset(&mut self) -> Option<u32> {
        self.setup_again(true)
    }

    /// [`Self::reset_and_setup`], whose first try sends no `ADAPTER_RESET` when `just_reset`:
    /// the caller has sent one (bring-up, the bus reset, which drained the old ring since), and
    /// the device does nothing until `SETUP_RINGS` (pvscsi-facts.md §7; the recipes of §9, as
    /// Linux's probe and host reset, reset once). A failed try is still retried from a fresh
    /// reset.
    fn setup_again(&mut self, just_reset: bool) -> Option<u32> {
        let (Some(regs), Some(mem)) = (self.regs.as_ref(), self.mem.as_ref()) else { return None };
        let rings = Rings::prove(mem, self.layout())?;
        let started = (0..SETUP_ATTEMPTS).find_map(|attempt| setup(regs, mem, self.layout(), !self.dump, attempt > 0 || !just_reset))?;
        self.rings = rings;
        self.apply(started);
        Some(enabled_mask(self.dump, started.msg_ring))
    }

    // -----------------------------------------------------------------------------------------
    // Slots
    // -----------------------------------------------------------------------------------------

    /// A free slot, with a new generation; `None` when all are busy.
    pub fn alloc_slot(&mut self) -> Option<usize> {
        // No slot before the rings are set up (none is proved); `running` keeps requests away
        // until then anyway.
        let free = !self.busy & self.rings.slots;
        if free == 0 {
            return None;
        }
        let index = free.trailing_zeros() as usize;
        let slot = self.slots.get_mut(index)?;
        slot.generation = slot.generation.wrapping_add(1) & 0x00FF_FFFF;
        slot.aborting = false;
        self.busy |= 1 << index;
        Some(index)
    }

    /// Frees a slot, giving back the request it held.
    pub fn release_slot(&mut self, index: usize) -> Option<P::Srb> {
        let slot = self.slots.get_mut(index)?;
        self.busy &= !(1u64 << (index & 63));
        slot.srb.take()
    }

    fn find_slot(&self, id: <P::Srb as Request>::Id) -> Option<usize> {
        self.slots.iter().position(|slot| slot.srb.as_ref().map(Request::id) == Some(id))
    }

    /// Counts a scatter-gather or descriptor write that did not fit the layout.
    pub fn layout_fault(&mut self) {
        self.counters.layout_faults = self.counters.layout_faults.wrapping_add(1);
    }

    // -----------------------------------------------------------------------------------------
    // Submission
    // -----------------------------------------------------------------------------------------

    /// Where slot `slot`'s scatter-gather list lives in the uncached extension (SCSI Port).
    fn sg_list_offset(&self, slot: usize) -> Option<u32> {
        self.layout().sg.checked_add(u32::try_from(slot).ok()?.checked_mul(SG_LIST_BYTES)?)
    }

    /// Writes the scatter-gather list of a request, given as its physical `segments`, into
    /// `slot`'s list in the uncached extension, and returns where the device finds the data and
    /// the list's bus address. Only the first `send` bytes of the buffer go to the device.
    pub fn map_data(&self, slot: usize, send: u32, segments: impl Iterator<Item = Option<(u64, u32)>>) -> Option<(Data, u64)> {
        if send == 0 {
            return Some((Data::None, 0));
        }
        let mem = self.mem.as_ref()?;
        let list = self.sg_list_offset(slot)?;
        let data = scatter_gather(segments, send, |index, address, length| {
            // An element is two words: the address, then the length with flags 0 above it.
            let element = list.checked_add(index.checked_mul(sge::SIZE)?)?;
            mem.write_u64s(element, [address, u64::from(length)].into_iter())
        })?;
        Some((data, if matches!(data, Data::List(_)) { mem.pa_at(list)? } else { 0 }))
    }

    /// Puts `desc` into the next request descriptor with `slot`'s context and sense buffer, and
    /// publishes it (§5.2, §5.3). Returns whether the request was posted.
    #[cfg_attr(all(target_os = "windows", not(feature = "storport")), allow(dead_code))] // Storport only
    pub fn post(&mut self, slot: usize, desc: &Descriptor) -> Option<()> {
        self.publish(slot, |out, context, sense| desc.copy_into(out, context, sense))
    }

    /// Writes the next request descriptor in place with `write(slot, context, sense address)`,
    /// and publishes it (§5.2, §5.3). Returns whether the request was posted. Inlined, so that
    /// `write` is.
    #[allow(clippy::inline_always)] // measured: see the commit that made it so
    #[inline(always)]
    fn publish(
        &mut self,
        slot: usize,
        write: impl FnOnce(&mut <P::Memory as SharedMemory>::Words<16>, u64, u64),
    ) -> Option<()> {
        let (Some(state), Some(ring)) = (self.rings.state, self.rings.req) else { return None };
        // The slot's sense buffer is one of those `Rings::prove` checked.
        let index = u32::try_from(slot).ok().filter(|index| self.rings.slots.checked_shr(*index).is_some_and(|bits| bits & 1 != 0))?;
        let sense = self.rings.sense_pa.wrapping_add(u64::from(index.wrapping_mul(SENSE_BYTES)));
        let context = encode_context(slot, self.slots.get(slot)?.generation);
        // The ring slot, proved with the ring; its 16 words are stored straight into it as they
        // are computed, with volatile stores, which the compiler keeps in program order and never
        // merges, drops or moves across one another.
        let mut out = P::Memory::entry(&ring, self.req_prod);
        write(&mut out, context, sense);
        // The descriptor must be visible before the producer index that publishes it: a release
        // fence, which on x86-64 emits no instruction (stores are not reordered with older
        // stores) and keeps the compiler from sinking the descriptor's stores below the index.
        fence(Ordering::Release);
        self.req_prod = self.req_prod.wrapping_add(1);
        state.write_u32::<{ state::REQ_PROD_IDX }>(self.req_prod);
        // And the index before the doorbell that follows (`hw::kick`, an MMIO store: in order
        // with the stores before it on x86-64, and WRITE_REGISTER_ULONG fences on its own). No
        // full fence: the device only reads the index, and nothing on this path stores and then
        // loads what the device writes, the one reordering x86-64 permits. Linux's
        // `pvscsi_queue_ring` uses a compiler barrier before `reqProdIdx++` and nothing after it,
        // as "PVSCSI is only supported on X86 which has strong memory access ordering"
        // (pvscsi-facts.md §5.2: fill, barrier, index, kick).
        compiler_fence(Ordering::Release);
        Some(())
    }

    /// Posts a checked request in `slot`, its descriptor written straight into the ring
    /// ([`write_descriptor`]) with its data at `data` (`sg_list`: the list's bus address, for
    /// [`Data::List`]), and rings the doorbell: the device has it. On a layout fault the slot is
    /// freed and the request comes back.
    #[cfg_attr(all(target_os = "windows", feature = "storport"), allow(dead_code))] // SCSI Port only
    #[inline]
    pub fn issue(&mut self, slot: usize, srb: P::Srb, data: Data, sg_list: u64, checked: Checked) -> Result<(), P::Srb> {
        let plan = checked.plan;
        let posted = self.publish(slot, |out, context, sense| {
            write_descriptor(out, &srb, data, plan, sg_list, context, sense);
        });
        if posted.is_none() {
            self.layout_fault();
            self.release_slot(slot);
            return Err(srb);
        }
        self.hand_over(slot, srb, checked);
        Ok(())
    }

    /// The second half of [`Self::issue`], for a descriptor already [`posted`](Self::post) from
    /// where it was built (Storport's SRB extension): keeps the request in its slot and rings the
    /// doorbell.
    #[inline]
    pub fn hand_over(&mut self, slot: usize, srb: P::Srb, checked: Checked) {
        if let Some(entry) = self.slots.get_mut(slot) {
            entry.srb = Some(srb);
            entry.sent = checked.plan.send;
            entry.read_write = checked.read_write;
        }
        self.kick(checked.read_write);
    }

    /// Rings the doorbell for the request just posted (§5.7), unless the request-call threshold
    /// lets the device find it on its own: with the threshold on, a READ or WRITE is kicked only
    /// when `reqProdIdx − reqConsIdx ≥ reqCallThreshold`, the rule of Linux's `pvscsi_kick_io` and
    /// FreeBSD's `pvscsi_kick_io`; every other command always is. On QEMU, which has no threshold,
    /// every request is kicked.
    #[inline]
    fn kick(&self, read_write: bool) {
        let Some(regs) = self.regs.as_ref() else { return };
        if read_write && self.req_call_threshold && !self.kick_needed() {
            return;
        }
        hw::kick(regs, read_write);
    }

    /// Whether the device wants a kick for what the request ring holds now. Both values are the
    /// device's and untrusted: a threshold of more than the ring holds can only be garbage, and is
    /// answered with a kick, as is an unreadable one, so a device cannot stop kicks by publishing
    /// one.
    fn kick_needed(&self) -> bool {
        let Some(state) = self.rings.state else { return true };
        // The one full fence of the submission path: the producer index was just stored, and the
        // device's consumer index and threshold are loaded next, the store-then-load pair that
        // x86-64 may reorder. Without it this processor could read a threshold the device had
        // already lowered (it went idle) while the device had not yet seen the new index, and
        // neither side would act. (Linux's driver relies on a compiler barrier here.)
        fence(Ordering::SeqCst);
        let consumed = state.read_u32::<{ state::REQ_CONS_IDX }>();
        let threshold = state.read_u32::<{ state::REQ_CALL_THRESHOLD }>();
        threshold > self.layout().req_entries() || self.req_prod.wrapping_sub(consumed) >= threshold
    }

    /// `SRB_FUNCTION_ABORT_COMMAND` (`KG:handling-srb-function-abort-command`): if the request
    /// is still outstanding, ask the device to abort it; the aborted request completes through
    /// the ring (`SRB_STATUS_ABORTED`, or its own status if it finished first). Otherwise the
    /// abort fails.
    pub fn abort(&mut self, target: Option<<P::Srb as Request>::Id>) -> SrbStatus {
        let found = target.and_then(|id| self.find_slot(id));
        match (found, self.regs.as_ref()) {
            (Some(index), Some(regs)) => {
                if let Some(slot) = self.slots.get_mut(index)
                    && !slot.aborting
                {
                    slot.aborting = true;
                    let target = slot.srb.as_ref().map_or(0, |s| s.address().target_id);
                    hw::abort_command(regs, encode_context(index, slot.generation), target);
                }
                SrbStatus::Success
            }
            _ => SrbStatus::AbortFailed,
        }
    }

    /// `RESET_DEVICE` for a target (`SRB_FUNCTION_RESET_DEVICE`, and Storport's
    /// `SRB_FUNCTION_RESET_LOGICAL_UNIT`). The target's active requests, which the docs ask the
    /// miniport to complete (`DDI-storport:ns-storport-_scsi_request_block`), come back through
    /// the ring with BUSRESET: PVSCSI posts those cancellations after the command returns
    /// (pvscsi-facts.md §7), and completing a request here, before the device has let go of it,
    /// would hand its buffer back while the device may still write it. A request the device lost
    /// altogether times out again and meets the bus reset, which completes everything.
    pub fn reset_device(&self, target: u8) -> SrbStatus {
        let ok = self.regs.as_ref().is_some_and(|regs| hw::reset_device(regs, target));
        if ok { SrbStatus::Success } else { SrbStatus::Error }
    }

    /// Completes every outstanding request with `SRB_STATUS_BUS_RESET`.
    fn fail_all(&mut self, n: &mut impl Notify<P>) {
        for index in 0..self.slots.len() {
            if let Some(srb) = self.release_slot(index) {
                n.complete(srb, SrbStatus::BusReset);
            }
        }
    }

    /// A bus reset: `HwScsiResetBus`, `HwStorResetBus`, `SRB_FUNCTION_RESET_BUS`.
    ///
    /// It uses `ADAPTER_RESET`, which resets every device on the bus like `RESET_BUS` but, unlike
    /// it, returns only when the device has cancelled everything and stopped touching request
    /// memory (pvscsi-facts.md §7; Linux's host reset). That is what lets every outstanding
    /// request be completed, once, before the routine returns, as both ports require
    /// (`REF:HwScsiResetBus`, `DDI-storport:nc-storport-hw_reset_bus`). Before it lets go of the
    /// rings, `ADAPTER_RESET` writes every completion the device still had, cancelled or finished,
    /// into the old completion ring, and touches that memory no more (§7): so the ring is drained
    /// once more before the rings are set up again, as Linux's host reset does, and a request the
    /// device had finished completes with its own status instead of `SRB_STATUS_BUS_RESET`.
    /// Returns the interrupt mask to enable (the HBA is left masked), `None` if the rings could
    /// not be set up again, which stops I/O.
    pub fn reset_bus(&mut self, n: &mut impl Notify<P>, blocks: &BlockSizes) -> Option<u32> {
        debug_print!(P, c"rspvscsi: bus reset, outstanding requests", self.busy.count_ones());
        let just_reset = if let Some(regs) = self.regs.as_ref() {
            hw::mask_intr(regs);
            hw::adapter_reset(regs);
            true
        } else {
            false
        };
        self.drain_completions(n, blocks);
        let mask = self.setup_again(just_reset);
        self.fail_all(n);
        self.running = mask.is_some();
        mask
    }

    // -----------------------------------------------------------------------------------------
    // Completion
    // -----------------------------------------------------------------------------------------

    /// Reads one completion descriptor (§5.5): its first 24 bytes, which hold every field, as
    /// three words read once each.
    fn read_completion(desc: &<P::Memory as SharedMemory>::Words<CMP_WORDS>) -> (u64, Completion) {
        let words: [u64; 3] = [desc.get::<0>(), desc.get::<1>(), desc.get::<2>()];
        let field = |offset: u32, bits: u32| -> u64 {
            let word = words.get((offset >> 3) as usize).copied().unwrap_or(0);
            (word >> ((offset & 7) << 3)) & low_bits(bits)
        };
        #[allow(clippy::cast_possible_truncation)] // each field is masked to its width first
        let completion = Completion {
            data_len: field(cmp::DATA_LEN, 64),
            sense_len: field(cmp::SENSE_LEN, 32) as u32,
            host_status: field(cmp::HOST_STATUS, 16) as u16,
            scsi_status: field(cmp::SCSI_STATUS, 16) as u16,
        };
        (field(cmp::CONTEXT, 64), completion)
    }

    /// Completes the request a completion names, if it names one the driver issued and has not
    /// completed yet.
    fn complete_one(&mut self, n: &mut impl Notify<P>, blocks: &BlockSizes, context: u64, completion: &Completion) -> bool {
        let valid = decode_context(context).filter(|(index, generation)| {
            self.slots.get(*index).is_some_and(|slot| slot.srb.is_some() && slot.generation == *generation)
        });
        let Some((index, _)) = valid else {
            self.counters.rejected_completions = self.counters.rejected_completions.wrapping_add(1);
            debug_print!(P, c"rspvscsi: completion for no outstanding request, context", context);
            return false;
        };
        let (aborting, sent, read_write) =
            self.slots.get(index).map_or((false, 0, false), |slot| (slot.aborting, slot.sent, slot.read_write));
        let Some(mut srb) = self.release_slot(index) else { return false };
        if status::is_good(completion, sent) && sent == srb.data_transfer_length() {
            // The I/O path: GOOD, all of the buffer transferred. What the general path below makes
            // of it (SRB_STATUS_SUCCESS, ScsiStatus GOOD, no underrun, sense or log), with nothing
            // to learn from a READ or WRITE.
            if !read_write {
                learn_from(blocks, &mut srb);
            }
            srb.set_scsi_status(status::SCSISTAT_GOOD);
            n.complete(srb, SrbStatus::Success);
            return true;
        }
        self.complete_by_the_rules(n, blocks, index, srb, completion, Sent { bytes: sent, aborting, read_write });
        true
    }

    /// Every completion but the I/O path's: the status rules (`status::classify`), underruns,
    /// sense, the error log. Out of line, so that the drain loop keeps only the I/O path, and
    /// `extern "win64"` (see the module doc).
    #[inline(never)]
    #[allow(improper_ctypes_definitions)] // called from Rust only: see the module doc
    extern "win64" fn complete_by_the_rules(
        &mut self,
        n: &mut impl Notify<P>,
        blocks: &BlockSizes,
        index: usize,
        mut srb: P::Srb,
        completion: &Completion,
        slot: Sent,
    ) {
        let Sent { bytes: sent, aborting, read_write } = slot;
        let mut outcome = status::classify(completion, sent, srb.sense_capacity(), SENSE_BYTES, aborting);
        if outcome.status == SrbStatus::Success && sent < srb.data_transfer_length() {
            // The device was given less than the buffer because the CDB transfers less: an
            // underrun, SRB_STATUS_DATA_OVERRUN with the bytes transferred
            // (`KG:error-handling-in-scsi-miniport-drivers`). QEMU cannot say how many of them it
            // filled (§6.3); `sent` bounds them.
            outcome.status = SrbStatus::DataOverrun;
            outcome.transferred = Some(sent);
        }
        if outcome.status == SrbStatus::Success && read_write && matches!(completion.host_status, host::DATARUN | host::DATA_UNDERRUN) {
            // A READ or WRITE the device says moved other than its CDB's bytes: the buffer and
            // the CDB disagree, which the driver could not check before it knew the disk's block
            // size (READ CAPACITY teaches it), so it sent the buffer whole. QEMU moves the whole
            // buffer and reports the residual as DATARUN (§6.3): an underrun or an overrun,
            // `SRB_STATUS_DATA_OVERRUN`, not a success. With the block size known the driver
            // sends the CDB's bytes and the device reports no residual.
            outcome.status = SrbStatus::DataOverrun;
        }
        if matches!(outcome.status, SrbStatus::Success | SrbStatus::DataOverrun) {
            learn_from(blocks, &mut srb);
        }
        srb.set_scsi_status(outcome.scsi_status);
        if let Some(bytes) = outcome.transferred {
            srb.set_transferred(bytes);
        }
        if outcome.sense_bytes != 0 {
            let sense = u32::try_from(index)
                .ok()
                .and_then(|i| i.checked_mul(SENSE_BYTES))
                .and_then(|o| o.checked_add(self.layout().sense));
            if let (Some(mem), Some(sense)) = (self.mem.as_ref(), sense) {
                srb.return_sense(|buffer| {
                    let n = buffer.len().min(outcome.sense_bytes as usize);
                    buffer.get_mut(..n).and_then(|dst| mem.read_bytes(sense, dst)).map_or(0, |()| n)
                });
            }
        }
        if let Some(code) = outcome.log {
            n.log_error(&srb, code, u32::from(completion.host_status));
        }
        n.complete(srb, outcome.status);
    }

    /// Drains the completion ring (§5.2). Returns whether any request was completed.
    pub fn drain_completions(&mut self, n: &mut impl Notify<P>, blocks: &BlockSizes) -> bool {
        let layout = self.layout();
        let (Some(state), Some(ring)) = (self.rings.state, self.rings.cmp) else { return false };
        let produced = state.read_u32::<{ state::CMP_PROD_IDX }>();
        let pending = produced.wrapping_sub(self.cmp_cons);
        if pending > layout.cmp_entries() {
            // More than the ring holds: the index is garbage. Take nothing; requests the device
            // really finished are recovered by the port's timeout and the bus reset.
            self.counters.bad_indexes = self.counters.bad_indexes.wrapping_add(1);
            debug_print!(P, c"rspvscsi: completion producer index out of range", produced);
            return false;
        }
        // Descriptors are read after the producer index that published them.
        fence(Ordering::Acquire);
        let mut completed = false;
        for _ in 0..pending {
            // Read as the device wrote it; `complete_one` validates the context before use.
            let (context, completion) = Self::read_completion(&P::Memory::entry(&ring, self.cmp_cons));
            self.cmp_cons = self.cmp_cons.wrapping_add(1);
            completed |= self.complete_one(n, blocks, context, &completion);
        }
        fence(Ordering::Release);
        // The device may read it to know which slots are free (VMware).
        state.write_u32::<{ state::CMP_CONS_IDX }>(self.cmp_cons);
        completed
    }

    /// Drains the message ring (§5.6). Returns whether a device was added or removed.
    /// `extern "win64"`: see the module doc.
    pub extern "win64" fn drain_messages(&mut self, blocks: &BlockSizes) -> bool {
        if !self.msg_ring {
            return false;
        }
        let layout = self.layout();
        let Some(mem) = self.mem else { return false };
        let Some(produced) = mem.read_u32(state::MSG_PROD_IDX) else { return false };
        let entries = layout.msg_pages.wrapping_mul(msg::PER_PAGE);
        let pending = produced.wrapping_sub(self.msg_cons);
        if pending > entries {
            self.counters.bad_indexes = self.counters.bad_indexes.wrapping_add(1);
            return false;
        }
        fence(Ordering::Acquire);
        let mut changed = false;
        for _ in 0..pending {
            let index = self.msg_cons & entries.wrapping_sub(1);
            let desc = index.checked_mul(msg::SIZE).and_then(|o| o.checked_add(layout.msg));
            let kind = desc.and_then(|desc| mem.read_u32(desc.checked_add(msg::TYPE)?));
            if matches!(kind, Some(msg::TYPE_DEV_ADDED | msg::TYPE_DEV_REMOVED)) {
                changed = true;
                // Another disk, or none: its block size is to be learned again.
                let target = desc.and_then(|desc| mem.read_u32(desc.checked_add(msg::TARGET)?));
                if let Some(target) = target.and_then(|t| usize::try_from(t).ok()) {
                    blocks.set(target, 0);
                }
            }
            self.msg_cons = self.msg_cons.wrapping_add(1);
        }
        let _ = mem.write_u32(state::MSG_CONS_IDX, self.msg_cons);
        changed
    }
}

/// What a command that succeeded tells about its target: READ CAPACITY its logical block size
/// (read from the data buffer, which the port maps for this: SCSI Port's `MapBuffers`,
/// Storport's `STOR_MAP_NON_READ_WRITE_BUFFERS`; what the device wrote is checked before use),
/// MODE SELECT that it may have changed it (QEMU lets a block descriptor set any multiple of 512
/// up to 65024). `extern "win64"`: see the module doc.
extern "win64" fn learn_from(blocks: &BlockSizes, srb: &mut impl Request) {
    let target = usize::from(srb.address().target_id);
    let cdb = srb.cdb();
    let mode_select = matches!(cdb.first(), Some(0x15 | 0x55));
    let learned = match cdb::capacity_block_length_at(cdb) {
        Some(at) => srb
            .data_buffer()
            .and_then(|data| cdb::capacity_block_length(at, data))
            .filter(|size| plausible_block_size(u64::from(*size))),
        None => mode_select.then_some(0),
    };
    if let Some(size) = learned {
        blocks.set(target, size);
    }
}

fn lo(value: u64) -> u32 {
    #[allow(clippy::cast_possible_truncation)] // the low word, deliberately
    let low = value as u32;
    low
}

fn hi(value: u64) -> u32 {
    lo(value >> 32)
}

fn low_bits(count: u32) -> u64 {
    if count >= 64 { u64::MAX } else { (1u64 << count).wrapping_sub(1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Address;

    #[test]
    fn contexts_round_trip_and_reject_garbage() {
        for slot in [0usize, 1, 63] {
            for generation in [0u32, 1, 0x00FF_FFFF] {
                let context = encode_context(slot, generation);
                assert_ne!(context, 0);
                assert_eq!(context >> 32, 0);
                assert_eq!(decode_context(context), Some((slot, generation)));
            }
        }
        assert_eq!(decode_context(0), None);
        assert_eq!(decode_context(1 << 40), None);
        assert_eq!(decode_context(0x100), None, "slot byte 0 is never issued");
    }

    #[test]
    fn plans_follow_the_device_not_the_flags() {
        use DataDirection as D;
        let read10 = [0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0];
        let write10 = [0x2A, 0, 0, 0, 0, 8, 0, 0, 8, 0];
        let ok = |direction, send| Ok(Plan { direction, send });
        assert_eq!(plan(D::In, &read10, 4096, 512), ok(flags::DIR_TOHOST, 4096));
        assert_eq!(plan(D::Out, &write10, 4096, 512), ok(flags::DIR_TODEVICE, 4096));
        assert_eq!(plan(D::Unspecified, &read10, 4096, 512), ok(flags::DIR_TOHOST, 4096));
        // Contradictions, and data where the class driver said there is none.
        assert_eq!(plan(D::Out, &read10, 4096, 512), Err(SrbStatus::InvalidRequest));
        assert_eq!(plan(D::In, &write10, 4096, 512), Err(SrbStatus::InvalidRequest));
        assert_eq!(plan(D::None, &read10, 4096, 512), Err(SrbStatus::InvalidRequest));
        // WRITE(10) of 8 blocks from 512 bytes, or from none: refused, known block size or not.
        assert_eq!(plan(D::Out, &write10, 512, 512), Err(SrbStatus::InvalidRequest));
        assert_eq!(plan(D::Out, &write10, 512, 0), Err(SrbStatus::InvalidRequest));
        assert_eq!(plan(D::Out, &write10, 0, 512), Err(SrbStatus::InvalidRequest));
        assert_eq!(plan(D::None, &write10, 0, 0), Err(SrbStatus::InvalidRequest));
        assert_eq!(plan(D::In, &read10, 2048, 512), Err(SrbStatus::InvalidRequest), "a READ into too small a buffer");
        // A longer buffer gets only the CDB's bytes; unknown block size: a plausible one.
        assert_eq!(plan(D::Out, &write10, 8192, 512), ok(flags::DIR_TODEVICE, 4096));
        assert_eq!(plan(D::Out, &write10, 32768, 0), ok(flags::DIR_TODEVICE, 32768));
        assert_eq!(plan(D::Out, &write10, 32768, 4096), ok(flags::DIR_TODEVICE, 32768));
        // Limits.
        let big = [0x28, 0, 0, 0, 0, 0, 0, 1, 1, 0];
        assert_eq!(plan(D::In, &big, 257 * 512, 512), Err(SrbStatus::InvalidRequest), "over MaximumTransferLength");
        assert_eq!(plan(D::In, &[0x28, 0, 0, 0, 0, 0, 0, 1, 0, 0], 128 * 1024, 512), ok(flags::DIR_TOHOST, 128 * 1024));
        // Allocation lengths: a short buffer is filled up to its end; a long one gets the length.
        let inquiry = [0x12, 0, 0, 0, 255, 0];
        assert_eq!(plan(D::In, &inquiry, 36, 0), ok(flags::DIR_TOHOST, 36));
        assert_eq!(plan(D::In, &inquiry, 512, 0), ok(flags::DIR_TOHOST, 255));
        // Parameter lists must be all there.
        let mode_select = [0x15, 0x10, 0, 0, 24, 0];
        assert_eq!(plan(D::Out, &mode_select, 12, 0), Err(SrbStatus::InvalidRequest));
        assert_eq!(plan(D::Out, &mode_select, 24, 0), ok(flags::DIR_TODEVICE, 24));
        // No data phase: nothing is sent, whatever the buffer.
        assert_eq!(plan(D::In, &[0, 0, 0, 0, 0, 0], 512, 0), ok(flags::DIR_NONE, 0));
        // WRITE ATOMIC(16) as a pass-through sends it: data-out to SCSI, data-in to QEMU.
        let write_atomic = [0x9C, 0, 0, 0, 0, 0, 0, 0, 0, 0x64, 0, 0, 0, 1, 0, 0];
        assert_eq!(plan(D::Out, &write_atomic, 512, 512), Err(SrbStatus::InvalidRequest));
        // WRITE SAME with NDOB.
        assert_eq!(plan(D::None, &[0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0], 0, 512), Err(SrbStatus::InvalidRequest));
    }

    #[test]
    fn the_read_write_plan_is_the_general_one() {
        use DataDirection as D;
        let mut fast = 0;
        for opcode in [0x28u8, 0x2A, 0x88, 0x8A] {
            for blocks in [0u32, 1, 8, 256, 0xFFFF, 0x0100_0000, u32::MAX] {
                let mut cdb = [0u8; 16];
                cdb[0] = opcode;
                if opcode < 0x80 {
                    cdb[7..9].copy_from_slice(&u16::try_from(blocks.min(0xFFFF)).unwrap().to_be_bytes());
                } else {
                    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
                }
                for cdb_len in [6usize, 10, 12, 16] {
                    let cdb = &cdb[..cdb_len];
                    for direction in [D::None, D::In, D::Out, D::Unspecified] {
                        for length in [0u32, 511, 512, 4096, 4097, layout::MAX_TRANSFER, layout::MAX_TRANSFER + 512, u32::MAX] {
                            for block_size in [0u32, 512, 4096] {
                                let general = plan_any(direction, cdb, length, block_size);
                                if let Some(p) = plan_read_write(direction, cdb, length, block_size) {
                                    fast += 1;
                                    assert_eq!(Ok(p), general, "{cdb:02x?} {direction:?} {length} {block_size}");
                                }
                                assert_eq!(plan(direction, cdb, length, block_size), general);
                            }
                        }
                    }
                }
            }
        }
        assert!(fast > 100, "the fast path was taken {fast} times");
    }

    #[test]
    fn slot_mask() {
        assert_eq!(low_bits(8), 0xFF);
        assert_eq!(low_bits(64), u64::MAX);
    }

    #[test]
    fn scatter_gather_lists() {
        let mut put = Vec::new();
        let segments = [(0x1000u64, 4096u32), (0x3000, 4096), (0x9000, 4096)];
        // The first 6000 bytes of three pages: two elements, the second cut short.
        let data = scatter_gather(segments.iter().map(|s| Some(*s)), 6000, |i, a, l| {
            put.push((i, a, l));
            Some(())
        });
        assert_eq!(data, Some(Data::List(2)));
        assert_eq!(put, [(0, 0x1000, 4096), (1, 0x3000, 6000 - 4096)]);
        // One segment goes straight in dataAddr, and no element is written; nothing to send, no
        // list. The segments past the data sent are not asked for.
        let mut asked = 0;
        let one = segments.iter().inspect(|_| asked += 1).map(|s| Some(*s));
        assert_eq!(scatter_gather(one, 100, |_, _, _| None), Some(Data::Direct(0x1000)));
        assert_eq!(asked, 1);
        assert_eq!(scatter_gather(core::iter::once(None), 512, |_, _, _| Some(())), None, "an untranslatable first segment");
        assert_eq!(scatter_gather(core::iter::empty(), 0, |_, _, _| Some(())), Some(Data::None));
        // A buffer shorter than what is to be sent, an untranslatable segment, a full list.
        assert_eq!(scatter_gather(segments.iter().map(|s| Some(*s)), 3 * 4096 + 1, |_, _, _| Some(())), None);
        assert_eq!(scatter_gather([Some((0x1000, 512)), None].into_iter(), 1024, |_, _, _| Some(())), None);
        let many = (0..64u64).map(|i| Some((i << 12, 512)));
        assert_eq!(scatter_gather(many, 64 * 512, |_, _, _| Some(())), None, "more than NumberOfPhysicalBreaks + 1");
        assert_eq!(scatter_gather(segments.iter().map(|s| Some(*s)), 8192, |_, _, _| None), None, "a write that does not fit");
    }

    /// A request with only what [`Descriptor::new`] reads.
    struct Fake {
        cdb: Vec<u8>,
        address: Address,
        tag: u8,
    }

    impl Request for Fake {
        type Id = usize;
        fn id(&self) -> usize {
            0
        }
        fn address(&self) -> Address {
            self.address
        }
        fn cdb(&self) -> &[u8] {
            &self.cdb
        }
        fn cdb_length(&self) -> u8 {
            u8::try_from(self.cdb.len()).unwrap()
        }
        fn cdb_words(&self) -> [u64; 2] {
            let mut bytes = [0u8; 16];
            bytes[..self.cdb.len()].copy_from_slice(&self.cdb);
            [u64::from_le_bytes(bytes[..8].try_into().unwrap()), u64::from_le_bytes(bytes[8..].try_into().unwrap())]
        }
        fn data_direction(&self) -> DataDirection {
            DataDirection::In
        }
        fn data_transfer_length(&self) -> u32 {
            4096
        }
        fn tag_message(&self) -> u8 {
            self.tag
        }
        fn sense_capacity(&self) -> u8 {
            0
        }
        fn return_sense(&mut self, _: impl FnOnce(&mut [u8]) -> usize) -> u8 {
            0
        }
        fn set_scsi_status(&mut self, _: u8) {}
        fn set_transferred(&mut self, _: u32) {}
        fn data_buffer(&mut self) -> Option<&mut [u8]> {
            None
        }
    }

    #[test]
    fn a_descriptor_is_its_fields() {
        let cases = [
            (vec![0x28, 0, 0, 0, 0x10, 0, 0, 0, 8, 0], Data::Direct(0x1234_5000), flags::DIR_TOHOST, 4096),
            ((0x80..0x90).collect::<Vec<u8>>(), Data::List(3), flags::DIR_TODEVICE, 12288),
            (vec![0x12, 0, 0, 0, 36, 0], Data::None, flags::DIR_NONE, 0),
            (vec![0], Data::None, flags::DIR_NONE, 0),
        ];
        for (cdb, data, direction, send) in cases {
            let srb = Fake { cdb: cdb.clone(), address: Address { path_id: 0, target_id: 0x5A, lun: 0xC3 }, tag: 0x21 };
            // Field by field, each byte of the CDB on its own, into a zeroed descriptor.
            let mut expected = Descriptor::default();
            let (address, sg) = match data {
                Data::None => (0, 0),
                Data::Direct(a) => (a, 0),
                Data::List(_) => (0xABC0_0000, flags::WITH_SG_LIST),
            };
            expected.set(req::DATA_ADDR, 8, address);
            expected.set(req::DATA_LEN, 8, u64::from(send));
            expected.set(req::SENSE_LEN, 4, u64::from(SENSE_BYTES));
            expected.set(req::FLAGS, 4, u64::from(sg | direction));
            for (i, byte) in (0u32..).zip(&cdb) {
                expected.set(req::CDB + i, 1, u64::from(*byte));
            }
            expected.set(req::CDB_LEN, 1, cdb.len() as u64);
            expected.set(req::LUN + 1, 1, 0xC3);
            expected.set(req::TAG, 1, 0x21);
            expected.set(req::TARGET, 1, 0x5A);
            assert_eq!(Descriptor::new(&srb, data, Plan { direction, send }, 0xABC0_0000), expected, "{cdb:02x?}");
        }
    }

    #[test]
    fn descriptor_fields_land_at_their_offsets() {
        let mut d = Descriptor::default();
        d.set(req::DATA_LEN, 8, 0x1122_3344_5566_7788);
        d.set(req::FLAGS, 4, 0x18);
        d.set(req::CDB_LEN, 1, 10);
        d.set(req::LUN + 1, 1, 3);
        d.set(req::TAG, 1, 0x20);
        d.set(req::TARGET, 1, 5);
        let bytes: Vec<u8> = d.0.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(&bytes[0x10..0x18], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&bytes[0x24..0x28], &[0x18, 0, 0, 0]);
        assert_eq!((bytes[0x38], bytes[0x3A], bytes[0x41], bytes[0x42], bytes[0x43]), (10, 3, 0x20, 0, 5));
        // Setting a byte leaves its neighbours alone.
        d.set(req::BUS, 1, 0);
        assert_eq!(d.0[8] >> 24 & 0xFF, 5);
    }
}
