//! The PVSCSI adapter: the device extension and the SCSI Port routines.
//!
//! Routine by routine this follows Microsoft's description of a SCSI Port miniport whose
//! interrupt work is deferred (contract §4.3): `HwScsiInterrupt` claims the interrupt,
//! acknowledges it, masks the HBA and requests `CallEnableInterrupts`;
//! `HwScsiEnableInterruptsCallback` drains the completion ring, completes requests, asks for
//! more and requests `CallDisableInterrupts`; `HwScsiDisableInterruptsCallback` unmasks the HBA.
//! PVSCSI suits this well: its line is `INTR_STATUS & INTR_MASK`, re-evaluated on every mask
//! write, so unmasking with completions still pending re-asserts the line and nothing is lost
//! (pvscsi-facts.md §3, §11).
//!
//! Everything the device writes (ring indexes, contexts, lengths, statuses) is untrusted: an
//! index out of range is ignored, a completion is accepted only for a context the driver
//! issued and has not seen complete, and sense lengths are bounded by both buffers.

use core::sync::atomic::{Ordering, fence};

use scsiport::sys;
use scsiport::{
    AdapterControl, AdapterControlCtx, CommonBuffer, ControlTypes, DataDirection, DisableInterruptsCtx,
    DisableInterruptsRequested, EnableInterruptsCtx, FindAdapterCtx, FindAdapterError, HwInitData, InitializeCtx,
    InterruptCtx, InterruptResult, LuAddress, Miniport, Notify, Port, Registers, ResetBusCtx, Srb, SrbFunction,
    SrbId, SrbStatus, StartIoCtx, Zeroable,
};

use crate::cdb::{self, Direction};
use crate::hw;
use crate::layout::{self, Layout, SENSE_BYTES, SG_ELEMENTS, SG_LIST_BYTES};
use crate::pvscsi::{
    CONFIG_CONTROLLER_ADDRESS, CONFIG_PAGE_CONTROLLER, COMMAND_STATUS_FAILED, MEM_SPACE_SIZE, PAGE_SHIFT,
    SETUP_MSG_RING_MAX_PAGES, SETUP_RINGS_MAX_PAGES, cmd, cmp, flags, host, intr, msg, req, sge, state,
};
use crate::status::{self, Completion};

/// The ID VMware reserves for the controller on a PVSCSI bus; reported as `InitiatorBusId` so
/// that SCSI Port does not scan it.
const INITIATOR_ID: u8 = 7;
/// Targets when the device cannot say (QEMU does not implement `CONFIG`); Linux assumes the
/// same (pvscsi-facts.md §4.7, Q10).
const DEFAULT_TARGETS: u8 = 16;
/// The most `MaximumNumberOfTargets` may be (`SCSI_MAXIMUM_TARGETS_PER_BUS`).
const MAX_TARGETS: u32 = 128;

/// One request slot: the SRB the device is working on and the generation that makes its
/// context unique, so that a stale or forged completion is recognised.
#[derive(Debug)]
struct Slot {
    srb: Option<Srb<Adapter>>,
    generation: u32,
    aborting: bool,
    /// Bytes the device was given (`dataLen`): at most `DataTransferLength`, less when the CDB
    /// transfers less, which is then reported as an underrun.
    sent: u32,
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

/// The device extension.
#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)] // independent states, not a mode in disguise
pub struct Adapter {
    regs: Option<Registers>,
    mem: Option<CommonBuffer>,
    dump: bool,
    /// Rings set up, requests accepted.
    running: bool,
    msg_ring: bool,
    /// `INTR_MASK` while interrupts are enabled.
    enabled_mask: u32,
    /// The ISR masked the HBA and the disable callback has not run yet.
    deferred: bool,
    /// `INTR_STATUS` bits the ISR saw, for the enable callback.
    saved_status: u32,
    max_targets: u8,
    /// Producer index of the request ring; the device only reads it.
    req_prod: u32,
    /// Consumer index of the completion ring; the device never reads it in QEMU.
    cmp_cons: u32,
    /// Consumer index of the message ring.
    msg_cons: u32,
    /// Bit `n` set: slot `n` holds a request.
    busy: u64,
    /// A request was turned away with `SRB_STATUS_BUSY` without `NextRequest`; the next
    /// completion owes the port one.
    owe_next_request: bool,
    slots: [Slot; 64],
    /// Logical block size of each target, from its last READ CAPACITY answer; 0 when unknown.
    block_size: [u32; MAX_TARGETS as usize],
    counters: Counters,
}

// SAFETY: every field is valid all-zero: `Option<Registers>`, `Option<CommonBuffer>` and
// `Option<Srb<_>>` are `None` (their only niche is a `NonNull`, see the `Zeroable` impls in
// `scsiport`), `bool`s are `false`, integers are 0, and arrays/structs of such are too.
unsafe impl Zeroable for Adapter {}

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
/// instance): every session resets the adapter before its first request ([`Adapter::reset_and_setup`]).
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
struct Plan {
    direction: u32,
    send: u32,
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
fn plan(srb_direction: DataDirection, cdb: &[u8], length: u32, block_size: u32) -> Result<Plan, SrbStatus> {
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

impl Adapter {
    fn layout(&self) -> Layout {
        if self.dump { layout::DUMP } else { layout::NORMAL }
    }

    /// `INTR_MASK` as it should be now.
    fn current_mask(&self) -> u32 {
        if self.deferred { 0 } else { self.enabled_mask }
    }

    // ---------------------------------------------------------------------------------------
    // Bring-up
    // ---------------------------------------------------------------------------------------

    /// `SETUP_RINGS` with all 132 words (§4.3), then checks that the device took it: status 0
    /// and the ring sizes it wrote into the rings-state page.
    fn setup_rings(&self, regs: &Registers, mem: &CommonBuffer) -> bool {
        let layout = self.layout();
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
    fn setup_msg_ring(&self, regs: &Registers, mem: &CommonBuffer) -> bool {
        let layout = self.layout();
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
    fn query_max_targets(regs: &Registers, scratch: &CommonBuffer) -> Option<u8> {
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

    /// Resets the adapter and sets the rings up afresh in the same memory, leaving the HBA masked
    /// and `enabled_mask` saying what to unmask (bring-up unmasks in `HwScsiInitialize`, the
    /// others right away). Used by bring-up, `HwScsiResetBus` and `ScsiRestartAdapter`.
    fn reset_and_setup(&mut self) -> bool {
        let (Some(regs), Some(mem)) = (self.regs.as_ref(), self.mem.as_ref()) else { return false };
        hw::mask_intr(regs);
        hw::adapter_reset(regs);
        let layout = self.layout();
        // The rings and the state page start from zero, as Linux does before SETUP_RINGS.
        if mem.zero(0, layout.sg).is_none() {
            return false;
        }
        if !self.setup_rings(regs, mem) {
            return false;
        }
        self.msg_ring = self.setup_msg_ring(regs, mem);
        // The device writes the starting indexes into the rings-state page as part of the setup
        // (0 on QEMU and in every open driver's experience, §4.3); take them from there rather
        // than assume them. They only ever select a slot through a mask.
        self.req_prod = mem.read_u32(state::REQ_PROD_IDX).unwrap_or(0);
        self.cmp_cons = mem.read_u32(state::CMP_CONS_IDX).unwrap_or(0);
        self.msg_cons = mem.read_u32(state::MSG_CONS_IDX).unwrap_or(0);
        self.enabled_mask = if self.dump {
            0
        } else if self.msg_ring {
            intr::CMPL_MASK | intr::MSG_MASK
        } else {
            intr::CMPL_MASK
        };
        hw::ack_intr(regs, intr::ALL_SUPPORTED);
        true
    }

    // ---------------------------------------------------------------------------------------
    // Slots
    // ---------------------------------------------------------------------------------------

    fn alloc_slot(&mut self) -> Option<usize> {
        let slots = self.layout().slots;
        let free = !self.busy & low_bits(slots);
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

    fn release_slot(&mut self, index: usize) -> Option<Srb<Self>> {
        let slot = self.slots.get_mut(index)?;
        self.busy &= !(1u64 << (index & 63));
        slot.srb.take()
    }

    fn find_slot(&self, id: SrbId) -> Option<usize> {
        self.slots.iter().position(|slot| slot.srb.as_ref().map(Srb::id) == Some(id))
    }

    // ---------------------------------------------------------------------------------------
    // Submission
    // ---------------------------------------------------------------------------------------

    /// Writes the request's scatter-gather list into its slot and returns `dataAddr` and the
    /// flag to set: a single segment goes directly in `dataAddr`, as Linux and FreeBSD do.
    ///
    /// Only the first `send` bytes of the buffer are given to the device.
    fn map_data(&self, ctx: &StartIoCtx<'_, Self>, srb: &Srb<Self>, slot: usize, send: u32) -> Option<(u64, u32)> {
        if send == 0 {
            return Some((0, 0));
        }
        let mem = self.mem.as_ref()?;
        let list = self.layout().sg.checked_add(u32::try_from(slot).ok()?.checked_mul(SG_LIST_BYTES)?)?;
        let mut count: u32 = 0;
        let mut first = 0;
        let mut left = send;
        for segment in ctx.data_segments(srb) {
            let segment = segment.ok()?;
            if left == 0 {
                break;
            }
            // The port never splits a transfer of MaximumTransferLength into more pieces than
            // NumberOfPhysicalBreaks allows; a list that long is not one the device may get.
            if count > layout::PHYSICAL_BREAKS || count >= SG_ELEMENTS {
                return None;
            }
            let length = segment.length.min(left);
            left = left.wrapping_sub(length);
            let element = list.checked_add(count.checked_mul(sge::SIZE)?)?;
            mem.write_u64(element.checked_add(sge::ADDR)?, segment.address)?;
            mem.write_u32(element.checked_add(sge::LENGTH)?, length)?;
            mem.write_u32(element.checked_add(sge::FLAGS)?, 0)?;
            if count == 0 {
                first = segment.address;
            }
            count = count.checked_add(1)?;
        }
        if left != 0 {
            return None;
        }
        match count {
            0 => None,
            1 => Some((first, 0)),
            _ => Some((mem.pa_at(list)?, flags::WITH_SG_LIST)),
        }
    }

    /// Fills the next request descriptor and publishes it (§5.2, §5.3). Returns whether the
    /// request was posted.
    fn post(&mut self, srb: &Srb<Self>, slot: usize, data: (u64, u32), plan: Plan) -> Option<()> {
        let layout = self.layout();
        let mem = self.mem.as_ref()?;
        let index = self.req_prod & layout.req_entries().wrapping_sub(1);
        let desc = layout.req.checked_add(index.checked_mul(req::SIZE)?)?;
        let sense = layout.sense.checked_add(u32::try_from(slot).ok()?.checked_mul(SENSE_BYTES)?)?;
        let generation = self.slots.get(slot)?.generation;
        let address = srb.address();
        let cdb = srb.cdb();
        let tag = srb.queue_action().map_or(sys::SRB_SIMPLE_TAG_REQUEST, scsiport::QueueAction::message);

        for offset in (0..req::SIZE).step_by(8) {
            mem.write_u64(desc.checked_add(offset)?, 0)?;
        }
        mem.write_u64(desc.checked_add(req::CONTEXT)?, encode_context(slot, generation))?;
        mem.write_u64(desc.checked_add(req::DATA_ADDR)?, data.0)?;
        mem.write_u64(desc.checked_add(req::DATA_LEN)?, u64::from(plan.send))?;
        mem.write_u64(desc.checked_add(req::SENSE_ADDR)?, mem.pa_at(sense)?)?;
        mem.write_u32(desc.checked_add(req::SENSE_LEN)?, SENSE_BYTES)?;
        mem.write_u32(desc.checked_add(req::FLAGS)?, data.1 | plan.direction)?;
        mem.write_bytes(desc.checked_add(req::CDB)?, cdb)?;
        mem.write_u8(desc.checked_add(req::CDB_LEN)?, u8::try_from(cdb.len()).ok()?)?;
        // Single-level LUN in byte 1 of the SAM LUN (§5.3).
        mem.write_u8(desc.checked_add(req::LUN)?.checked_add(1)?, address.lun)?;
        mem.write_u8(desc.checked_add(req::TAG)?, tag)?;
        mem.write_u8(desc.checked_add(req::BUS)?, 0)?;
        mem.write_u8(desc.checked_add(req::TARGET)?, address.target_id)?;

        // The descriptor must be visible before the producer index that publishes it.
        fence(Ordering::Release);
        self.req_prod = self.req_prod.wrapping_add(1);
        mem.write_u32(state::REQ_PROD_IDX, self.req_prod)?;
        fence(Ordering::SeqCst);
        Some(())
    }

    fn execute_scsi(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        let address = srb.address();
        let tagged = srb.queue_tag().is_some();
        if !self.running {
            // SCSI Port sends nothing to a stopped adapter, so this is one whose reset failed
            // (rings could not be set up again): the HBA is gone as far as I/O goes.
            return reject(ctx, srb, SrbStatus::NoHba);
        }
        if address.path_id != 0 {
            return reject(ctx, srb, SrbStatus::InvalidPathId);
        }
        if address.target_id >= self.max_targets {
            return reject(ctx, srb, SrbStatus::InvalidTargetId);
        }
        let cdb = srb.cdb();
        let (Some(&opcode), true) = (cdb.first(), usize::from(srb.cdb_length()) <= 16) else {
            return reject(ctx, srb, SrbStatus::InvalidRequest);
        };
        let block_size = self.block_size.get(usize::from(address.target_id)).copied().unwrap_or(0);
        let plan = match plan(srb.data_direction(), cdb, srb.data_transfer_length(), block_size) {
            Ok(plan) => plan,
            Err(status) => return reject(ctx, srb, status),
        };
        let Some(slot) = self.alloc_slot() else {
            // Every slot is busy: let the port retry, and signal readiness only when a
            // completion frees a slot (`KG:return-from-hwscsistartio`).
            ctx.complete(srb, SrbStatus::Busy);
            self.owe_next_request = true;
            return;
        };
        let Some(data) = self.map_data(ctx, &srb, slot, plan.send) else {
            self.counters.layout_faults = self.counters.layout_faults.wrapping_add(1);
            self.release_slot(slot);
            return reject(ctx, srb, SrbStatus::InvalidRequest);
        };
        if self.post(&srb, slot, data, plan).is_none() {
            self.counters.layout_faults = self.counters.layout_faults.wrapping_add(1);
            self.release_slot(slot);
            return reject(ctx, srb, SrbStatus::Error);
        }
        if let Some(entry) = self.slots.get_mut(slot) {
            entry.srb = Some(srb);
            entry.sent = plan.send;
        }
        if let Some(regs) = self.regs.as_ref() {
            hw::kick(regs, cdb::is_read_write(opcode));
        }
        // A tagged request leaves the LU open for more; an untagged one must not
        // (0xF1/0x1005: NextLuRequest with an untagged request active).
        if tagged { ctx.next_lu_request(address) } else { ctx.next_request() }
    }

    /// `SRB_FUNCTION_ABORT_COMMAND` (`KG:handling-srb-function-abort-command`): if the request
    /// is still outstanding, ask the device to abort it; the aborted request completes through
    /// the ring (`SRB_STATUS_ABORTED`, or its own status if it finished first). Otherwise the
    /// abort fails.
    fn abort(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        let found = srb.abort_target().and_then(|id| self.find_slot(id));
        let status = match (found, self.regs.as_ref()) {
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
        };
        ctx.complete(srb, status);
        ctx.next_request();
    }

    /// Completes every outstanding request with `SRB_STATUS_BUS_RESET`.
    fn fail_all(&mut self, ctx: &mut impl Notify<Self>) {
        for index in 0..self.slots.len() {
            if let Some(srb) = self.release_slot(index) {
                ctx.complete(srb, SrbStatus::BusReset);
            }
        }
    }

    /// The bus reset of `HwScsiResetBus` and `SRB_FUNCTION_RESET_BUS`.
    ///
    /// It uses `ADAPTER_RESET`, which resets every device on the bus like `RESET_BUS` but, unlike
    /// it, returns only when the device has cancelled everything and stopped touching request
    /// memory (pvscsi-facts.md §7; Linux's host reset). That is what lets every outstanding
    /// request be completed, once, before the routine returns, as SCSI Port requires
    /// (`REF:HwScsiResetBus`); completions the device still had are dropped with the old rings.
    fn reset_bus(&mut self, ctx: &mut impl Notify<Self>) -> bool {
        debug_print!(c"rspvscsi: bus reset, outstanding requests", self.busy.count_ones());
        let ok = self.reset_and_setup();
        self.fail_all(ctx);
        self.owe_next_request = false;
        self.running = ok;
        if let Some(regs) = self.regs.as_ref() {
            hw::unmask_intr(regs, self.current_mask());
        }
        ok
    }

    // ---------------------------------------------------------------------------------------
    // Completion
    // ---------------------------------------------------------------------------------------

    /// Reads one completion descriptor (§5.5).
    fn read_completion(mem: &CommonBuffer, desc: u32) -> Option<(u64, Completion)> {
        Some((
            mem.read_u64(desc.checked_add(cmp::CONTEXT)?)?,
            Completion {
                data_len: mem.read_u64(desc.checked_add(cmp::DATA_LEN)?)?,
                sense_len: mem.read_u32(desc.checked_add(cmp::SENSE_LEN)?)?,
                host_status: mem.read_u16(desc.checked_add(cmp::HOST_STATUS)?)?,
                scsi_status: mem.read_u16(desc.checked_add(cmp::SCSI_STATUS)?)?,
            },
        ))
    }

    /// Completes the request a completion names, if it names one the driver issued and has not
    /// completed yet.
    fn complete_one(&mut self, ctx: &mut impl Notify<Self>, context: u64, completion: &Completion) -> bool {
        let valid = decode_context(context).filter(|(index, generation)| {
            self.slots.get(*index).is_some_and(|slot| slot.srb.is_some() && slot.generation == *generation)
        });
        let Some((index, _)) = valid else {
            self.counters.rejected_completions = self.counters.rejected_completions.wrapping_add(1);
            debug_print!(c"rspvscsi: completion for no outstanding request, context", context);
            return false;
        };
        let (aborting, sent) = self.slots.get(index).map_or((false, 0), |slot| (slot.aborting, slot.sent));
        let Some(mut srb) = self.release_slot(index) else { return false };
        let mut outcome = status::classify(completion, sent, srb.sense_capacity(), SENSE_BYTES, aborting);
        if outcome.status == SrbStatus::Success && sent < srb.data_transfer_length() {
            // The device was given less than the buffer because the CDB transfers less: an
            // underrun, SRB_STATUS_DATA_OVERRUN with the bytes transferred
            // (`KG:error-handling-in-scsi-miniport-drivers`). QEMU cannot say how many of them it
            // filled (§6.3); `sent` bounds them.
            outcome.status = SrbStatus::DataOverrun;
            outcome.transferred = Some(sent);
        }
        if matches!(outcome.status, SrbStatus::Success | SrbStatus::DataOverrun) {
            self.learn_from(&mut srb);
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
            ctx.log_error(Some(&srb), srb.address(), code, u32::from(completion.host_status));
        }
        ctx.complete(srb, outcome.status);
        true
    }

    /// What a command that succeeded tells about its target: READ CAPACITY its logical block size
    /// (read from the data buffer, mapped for this: `MapBuffers`; what the device wrote is
    /// checked before use), MODE SELECT that it may have changed it (QEMU lets a block
    /// descriptor set any multiple of 512 up to 65024).
    fn learn_from(&mut self, srb: &mut Srb<Self>) {
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
        if let (Some(size), Some(entry)) = (learned, self.block_size.get_mut(target)) {
            *entry = size;
        }
    }

    /// Drains the completion ring (§5.2). Returns whether any request was completed.
    fn drain_completions(&mut self, ctx: &mut impl Notify<Self>) -> bool {
        let layout = self.layout();
        let Some(mem) = self.mem else { return false };
        let Some(produced) = mem.read_u32(state::CMP_PROD_IDX) else { return false };
        let pending = produced.wrapping_sub(self.cmp_cons);
        if pending > layout.cmp_entries() {
            // More than the ring holds: the index is garbage. Take nothing; requests the device
            // really finished are recovered by the port's timeout and HwScsiResetBus.
            self.counters.bad_indexes = self.counters.bad_indexes.wrapping_add(1);
            debug_print!(c"rspvscsi: completion producer index out of range", produced);
            return false;
        }
        // Descriptors are read after the producer index that published them.
        fence(Ordering::Acquire);
        let mut completed = false;
        for _ in 0..pending {
            let index = self.cmp_cons & layout.cmp_entries().wrapping_sub(1);
            let Some(desc) = index.checked_mul(cmp::SIZE).and_then(|o| o.checked_add(layout.cmp)) else { break };
            let Some((context, completion)) = Self::read_completion(&mem, desc) else { break };
            self.cmp_cons = self.cmp_cons.wrapping_add(1);
            completed |= self.complete_one(ctx, context, &completion);
        }
        fence(Ordering::Release);
        // The device may read it to know which slots are free (VMware).
        let _ = mem.write_u32(state::CMP_CONS_IDX, self.cmp_cons);
        completed
    }

    /// Drains the message ring (§5.6). Returns whether a device was added or removed.
    fn drain_messages(&mut self) -> bool {
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
                if let Some(entry) = target.and_then(|t| self.block_size.get_mut(usize::try_from(t).ok()?)) {
                    *entry = 0;
                }
            }
            self.msg_cons = self.msg_cons.wrapping_add(1);
        }
        let _ = mem.write_u32(state::MSG_CONS_IDX, self.msg_cons);
        changed
    }

    /// Completes what the device finished and signals readiness if anything was freed.
    fn process_completions(&mut self, ctx: &mut impl Notify<Self>) {
        let completed = self.drain_completions(ctx);
        if completed || self.owe_next_request {
            self.owe_next_request = false;
            ctx.next_request();
        }
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

/// Completes a request the driver will not send to the device, and signals readiness.
fn reject(ctx: &mut StartIoCtx<'_, Adapter>, srb: Srb<Adapter>, status: SrbStatus) {
    ctx.complete(srb, status);
    ctx.next_request();
}

impl Miniport for Adapter {
    type SrbExtension = ();
    type LuExtension = ();

    const HW_INIT: HwInitData = HwInitData {
        adapter_interface_type: sys::PCIBus,
        vendor_id: b"15AD",
        device_id: b"07C0",
        number_of_access_ranges: 2,
        // Only READ CAPACITY answers are read (the logical block size, to hold each READ and WRITE
        // to the length of its CDB). SCSI Port maps every buffer for that; a Storport build
        // would ask for STOR_MAP_NON_READ_WRITE_BUFFERS instead.
        map_buffers: true,
        need_physical_addresses: true,
        tagged_queuing: true,
        auto_request_sense: true,
        multiple_request_per_lu: true,
        receive_event: false,
    };

    const CONTROL_TYPES: ControlTypes =
        ControlTypes { stop: true, restart: true, set_boot_config: false, set_running_config: false };

    /// Claims the first memory range of at least 32 KiB (QEMU's BAR0, VMware's BAR1), resets
    /// the HBA, fills in the configuration, carves the uncached extension and sets up the rings.
    /// `dump=1` in `ArgumentString` selects crash-dump mode: a smaller layout, no interrupts,
    /// every completion handled inline when the dump stack polls `HwScsiInterrupt`.
    fn hw_find_adapter(&mut self, ctx: &mut FindAdapterCtx<'_, Self>) -> Result<(), FindAdapterError> {
        self.dump = ctx.argument("dump").is_some_and(|value| value == b"1");
        let range = ctx.config().access_ranges().find(|range| range.in_memory && range.length >= MEM_SPACE_SIZE);
        let Some(range) = range else {
            debug_print!(c"rspvscsi: no memory range of 32 KiB among the access ranges", 0u32);
            return Err(FindAdapterError::NotFound);
        };
        let Some(regs) = ctx.map_registers(&range) else {
            debug_print!(c"rspvscsi: ScsiPortGetDeviceBase failed for", range.start);
            ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 1);
            return Err(FindAdapterError::Error);
        };
        let layout = self.layout();

        // Everything ScsiPortGetUncachedExtension depends on is final before it is called
        // (`DDI:nf-srb-scsiportgetuncachedextension`).
        let mut config = ctx.config();
        config.set_maximum_transfer_length(layout::MAX_TRANSFER);
        config.limit_physical_breaks(layout::PHYSICAL_BREAKS);
        config.set_scatter_gather(true);
        config.set_master(true);
        config.set_caches_data(false);
        config.set_dma64();
        config.set_number_of_buses(1);
        config.set_initiator_bus_id(0, INITIATOR_ID);
        config.set_maximum_logical_units(1);
        config.set_tagged_queuing(true);
        config.set_multiple_request_per_lu(true);
        config.set_auto_request_sense(true);

        // Quiet first: whatever ran before (firmware, a previous driver) may have left the
        // device active, and INTR_MASK survives resets (Q11).
        hw::mask_intr(&regs);
        hw::adapter_reset(&regs);

        let Some(mem) = ctx.uncached_extension(layout.total) else {
            debug_print!(c"rspvscsi: no uncached extension of bytes", layout.total);
            ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 2);
            ctx.unmap_registers(regs);
            return Err(FindAdapterError::Error);
        };
        let targets = mem
            .window(layout.sg, SG_LIST_BYTES)
            .and_then(|scratch| Self::query_max_targets(&regs, &scratch))
            .unwrap_or(DEFAULT_TARGETS);
        ctx.config().set_maximum_targets(targets);

        self.max_targets = targets;
        self.regs = Some(regs);
        self.mem = Some(mem);
        if !self.reset_and_setup() {
            debug_print!(c"rspvscsi: SETUP_RINGS failed, COMMAND_STATUS", self.regs.as_ref().map_or(0, |r| r.read_u32(crate::pvscsi::reg::COMMAND_STATUS)));
            ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 3);
            if let Some(regs) = self.regs.take() {
                ctx.unmap_registers(regs);
            }
            return Err(FindAdapterError::Error);
        }
        self.running = true;
        Ok(())
    }

    /// Clears anything pending and unmasks completion (and message) interrupts.
    fn hw_initialize(&mut self, _ctx: &mut InitializeCtx<'_, Self>) -> bool {
        let Some(regs) = self.regs.as_ref() else { return false };
        hw::ack_intr(regs, intr::ALL_SUPPORTED);
        hw::unmask_intr(regs, self.current_mask());
        true
    }

    fn hw_start_io(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        match srb.function() {
            SrbFunction::ExecuteScsi => self.execute_scsi(ctx, srb),
            SrbFunction::AbortCommand => self.abort(ctx, srb),
            SrbFunction::ResetBus => {
                let status = if self.dump || self.reset_bus(ctx) { SrbStatus::Success } else { SrbStatus::Error };
                ctx.complete(srb, status);
                ctx.next_request();
            }
            SrbFunction::ResetDevice => {
                // Requests the reset cancels come back through the ring with BUSRESET.
                let address = srb.address();
                let ok = self.regs.as_ref().is_some_and(|regs| hw::reset_device(regs, address.target_id, address.lun));
                ctx.complete(srb, if ok { SrbStatus::Success } else { SrbStatus::Error });
                ctx.next_request();
            }
            // PVSCSI has no cache of its own (CachesData is FALSE, so these should not come).
            SrbFunction::Flush | SrbFunction::Shutdown => {
                ctx.complete(srb, SrbStatus::Success);
                ctx.next_request();
            }
            SrbFunction::IoControl | SrbFunction::Wmi | SrbFunction::Pnp | SrbFunction::Other(_) => {
                ctx.complete(srb, SrbStatus::InvalidRequest);
                ctx.next_request();
            }
        }
    }

    /// Claims only an interrupt this HBA raised: a status bit its current mask lets through
    /// (the line may be shared). Acknowledges it, masks the HBA, saves the status and defers.
    fn hw_interrupt(&mut self, mut ctx: InterruptCtx<'_, Self>) -> InterruptResult {
        let Some(regs) = self.regs.as_ref() else { return InterruptResult::NotMine };
        let status = hw::read_intr_status(regs);
        if status == u32::MAX {
            // All ones: the device is gone (surprise removal).
            return InterruptResult::NotMine;
        }
        let raised = if self.dump { status & intr::ALL_SUPPORTED } else { status & self.current_mask() };
        if raised == 0 {
            return InterruptResult::NotMine;
        }
        hw::ack_intr(regs, raised);
        if self.dump {
            // The dump stack polls the ISR with interrupts off and has no deferral.
            self.drain_messages();
            self.process_completions(&mut ctx);
            return InterruptResult::Handled;
        }
        hw::mask_intr(regs);
        self.deferred = true;
        self.saved_status |= raised;
        ctx.call_enable_interrupts()
    }

    fn hw_enable_interrupts_callback(&mut self, mut ctx: EnableInterruptsCtx<'_, Self>) -> DisableInterruptsRequested {
        let status = core::mem::take(&mut self.saved_status);
        if status & intr::MSG_MASK != 0 && self.drain_messages() {
            ctx.bus_change_detected(0);
        }
        // Drained whatever the status said: a completion posted after the ISR's acknowledgement
        // is already in the ring.
        self.process_completions(&mut ctx);
        ctx.call_disable_interrupts()
    }

    fn hw_disable_interrupts_callback(&mut self, _ctx: &mut DisableInterruptsCtx<'_, Self>) -> bool {
        self.deferred = false;
        let Some(regs) = self.regs.as_ref() else { return false };
        hw::unmask_intr(regs, self.current_mask());
        true
    }

    fn hw_reset_bus(&mut self, ctx: &mut ResetBusCtx<'_, Self>, _path_id: u8) -> bool {
        // The dump stack asks miniports to ignore bus resets
        // (`KG:restrictions-on-miniport-drivers-that-manage-the-boot-drive`).
        let ok = self.dump || self.reset_bus(ctx);
        ctx.next_request();
        ok
    }

    fn hw_adapter_control(&mut self, _ctx: &mut AdapterControlCtx<'_, Self>, control: AdapterControl) {
        match control {
            AdapterControl::Stop => {
                // No requests are outstanding (`REF:HwScsiAdapterControl`). Quiesce the device;
                // registers may already be gone after a surprise removal, which costs nothing.
                self.running = false;
                // Masked from here on; HwScsiInterrupt then claims nothing (a shared line).
                self.enabled_mask = 0;
                if let Some(regs) = self.regs.as_ref() {
                    hw::mask_intr(regs);
                    hw::adapter_reset(regs);
                }
            }
            AdapterControl::Restart => {
                self.deferred = false;
                self.saved_status = 0;
                self.running = self.reset_and_setup();
                if let Some(regs) = self.regs.as_ref() {
                    hw::unmask_intr(regs, self.current_mask());
                }
            }
            AdapterControl::SetBootConfig | AdapterControl::SetRunningConfig => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn slot_mask() {
        assert_eq!(low_bits(8), 0xFF);
        assert_eq!(low_bits(64), u64::MAX);
    }
}
