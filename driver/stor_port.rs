//! The Storport flavour (`rspvscsi_storport.sys`): the PVSCSI miniport on Storport, as glue over
//! the device logic in `device.rs` and the `storport` wrapper.
//!
//! Where the work goes, against the SCSI Port flavour (`scsi_port.rs`):
//!
//! - Storport runs a physical miniport full duplex (the wrapper sets
//!   `StorSynchronizeFullDuplex`, `KG:full-duplex-mode`), so the device extension is split by
//!   the lock that owns each part (`DDI-storport:nf-storport-storportacquirespinlock`): [`Hba`]
//!   is read-only configuration and the block sizes (atomics), readable everywhere; the
//!   [`Device`] (slots, ring indexes) belongs to the `StartIo` lock; the interrupt mask to the
//!   interrupt lock.
//! - `HwStorBuildIo`, with no lock held, checks the request, translates Storport's
//!   scatter/gather list and builds the request descriptor in the SRB extension, touching
//!   nothing else (`KG:unsynchronized-hwstorbuildio-routine`, `DDI-storport:nc-storport-hw_startio`:
//!   "the best driver performance is achieved by preparing as much data as possible in
//!   `HwStorBuildIo`"). `HwStorStartIo`, under the `StartIo` lock, takes a slot, copies the
//!   descriptor into the ring and rings the doorbell.
//! - `HwStorInterrupt` claims and acknowledges the interrupt, masks the HBA and issues the DPC
//!   (`DDI-storport:nc-storport-hw_interrupt`: everything that need not run at DIRQL is deferred
//!   to the DPC); it completes nothing. The DPC takes the `StartIo` lock, which owns the rings,
//!   drains them (`DDI-storport:nc-storport-hw_dpc_routine`), and unmasks the HBA at its end
//!   under the interrupt lock ([`Hba::end_deferral`]). This is SCSI Port's deferred callback pair
//!   (`HwScsiInterrupt` masks, `HwScsiDisableInterruptsCallback` unmasks) with the DPC in the
//!   callbacks' place: while the DPC is pending the device raises no interrupt, so one interrupt
//!   and one DPC carry a whole batch of completions. Nothing is lost at the unmask: PVSCSI's line
//!   is `INTR_STATUS & INTR_MASK`, re-evaluated on every mask write (pvscsi-facts.md §3, §11), so
//!   a completion posted after the DPC's last look at the ring raises it again at once.
//! - The HBA is never left masked: only the ISR masks it, always together with
//!   `StorPortIssueDpc`, and a DPC issued while one is queued is the same DPC, which runs once
//!   (`DDI-storport:nf-storport-storportissuedpc`); a DPC issued while it runs is queued again,
//!   so the ISR's batch is always drained by a run that starts after it. The mask the DPC
//!   restores is the one the interrupt lock holds now, so a DPC left over from before a stop
//!   keeps a stopped HBA masked; a restart and `HwStorInitialize` forget a deferral whose DPC
//!   may not come (the DPC object is initialised again on a Plug and Play start), and a bus
//!   reset leaves an HBA with a deferral masked for its DPC to unmask.
//! - There is no readiness to signal: Storport ignores `NextRequest`
//!   (`KG:storport-queue-management`), and the port is told how many requests the HBA takes
//!   (`MaxNumberOfIO`), so a request never waits for a slot.
//!
//! Crash-dump mode is not supported: the wrapper does not cover it (Storport polls the ISR
//! there and has no DPCs), so `HwStorFindAdapter` refuses a dump-mode load.

use core::sync::atomic::{AtomicU32, Ordering};

use storport::sys;
use storport::{
    AdapterControl, AdapterControlCtx, AnyBitPattern, BuildIo, BuildIoCtx, DpcCtx, FindAdapterCtx, FindAdapterError,
    HwInitData, InitializeCtx, InterruptCtx, LuAddress, MapBuffers, Miniport, Notify as _, Port as _, ResetBusCtx,
    Srb, SrbFunction, StartIoCtx, States, Synchronize, TransferLimits, Zeroable,
};

use crate::device::{self, BlockSizes, Checked, DEFAULT_TARGETS, Data, Descriptor, Device, INITIATOR_ID, Interrupts, Plan, debug_print};
use crate::hw;
use crate::layout::{self, Layout};
use crate::port::{self, SrbStatus};
use crate::pvscsi::{MEM_SPACE_SIZE, intr};

/// The Storport wrapper's types, for the device logic.
#[derive(Debug)]
pub enum StorPort {}

impl port::Port for StorPort {
    type Registers = storport::Registers;
    type Memory = storport::CommonBuffer;
    type Srb = Srb<Hba>;

    fn debug_print(message: &core::ffi::CStr, value: u64) {
        storport::debug_print(1, message, value);
    }
}

port::forward_wrapper!(memory: storport::CommonBuffer, srb: Srb<Hba>, wrapper: storport);

impl port::Registers for storport::Registers {
    #[inline]
    fn read_u32<const OFFSET: u32>(&self) -> u32 {
        storport::Registers::read_u32(self, OFFSET)
    }
    #[inline]
    fn write_u32<const OFFSET: u32>(&self, value: u32) {
        let _ = storport::Registers::write_u32(self, OFFSET, value);
    }
}
port::srb_status_into!(storport::SrbStatus);

/// Every Storport context that may complete requests is a notifier for the device logic.
impl<C: storport::Notify<Hba>> port::Notify<StorPort> for C {
    fn complete(&mut self, srb: Srb<Hba>, status: SrbStatus) {
        storport::Notify::complete(self, srb, status.into());
    }

    fn log_error(&mut self, srb: &Srb<Hba>, code: u32, unique: u32) {
        storport::Port::log_error(self, Some(srb), srb.address(), code, unique);
    }
}

/// The SRB extension: what `HwStorBuildIo` prepared for `HwStorStartIo`. Storport does not
/// initialise it and gives a retried request a fresh one
/// (`DDI-storport:ns-storport-_hw_initialization_data~r1`, `SrbExtensionSize`), so it is plain
/// words, and `HwStorStartIo` only trusts it for requests `HwStorBuildIo` passed on.
///
/// The scatter-gather elements are not in it: a list's place is the slot's, known in
/// `HwStorStartIo`, which writes it there straight from Storport's list (an intermediate copy
/// would be the image's only `memcpy`, which a miniport has no source for).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Prepared {
    /// The request descriptor, all but the context and the sense address (and, for a list,
    /// the list's address).
    desc: Descriptor,
    /// More than one element: `desc` names a list, to be written in `HwStorStartIo`.
    list: u32,
    /// `flags::DIR_*`.
    direction: u32,
    /// Bytes the device gets.
    send: u32,
    /// READ or WRITE (1): the doorbell to ring.
    read_write: u32,
}

// SAFETY: `Prepared` is `repr(C)` of `u64` words and `u32`s (four of them, so no padding at the
// end), all of which accept every bit pattern, including zero.
unsafe impl Zeroable for Prepared {}
// SAFETY: as above.
unsafe impl AnyBitPattern for Prepared {}

impl Prepared {
    fn checked(&self) -> Checked {
        Checked { plan: Plan { direction: self.direction, send: self.send }, read_write: self.read_write != 0 }
    }
}

/// The part of the device extension every routine reads: configuration written in
/// `HwStorFindAdapter`, and the block sizes, which `HwStorBuildIo` reads with no lock.
#[derive(Debug)]
pub struct Hba {
    max_targets: u8,
    blocks: BlockSizes,
    /// `ScsiRestartAdapter`s done, so that the `StartIo` side takes the new rings' indexes.
    restarts: AtomicU32,
}

// SAFETY: an integer and atomics, all valid as zero.
unsafe impl Zeroable for Hba {}

/// Owned by the `StartIo` lock: the request side of the HBA.
#[derive(Debug)]
pub struct StartIoState {
    dev: Device<StorPort>,
    /// The `Hba::restarts` this side has caught up with.
    restarts_seen: u32,
}

// SAFETY: `Option<Registers>`, `Option<CommonBuffer>` and `Option<Srb<_>>` are `None` when zero
// (their only niche is a `NonNull`, see the `Zeroable` impls in `storport`); the rest are
// integers and `bool`s, and arrays and structs of such.
unsafe impl Zeroable for StartIoState {}

/// Owned by the interrupt lock: the register handle the ISR reads, and the interrupt mask.
#[derive(Debug)]
pub struct InterruptState {
    regs: Option<storport::Registers>,
    irq: Interrupts,
}

// SAFETY: as for `StartIoState`: `None`, `false`, zeros.
unsafe impl Zeroable for InterruptState {}

impl Hba {
    /// Sets the rings up again after a `ScsiRestartAdapter`, before the `StartIo` lock's holder
    /// touches them. The restart itself runs under the interrupt lock, concurrently with a DPC
    /// or `HwStorStartIo` that may still be using the old rings under the `StartIo` lock
    /// (`DDI-storport:nf-storport-storportacquirespinlock`), and cannot take that lock (the order
    /// is `StartIo` before interrupt), so it leaves the rings to this side. No request is
    /// outstanding across a stop (`DDI-storport:ne-storport-scsi_adapter_control_type`); any the
    /// driver still held would be completed with `SRB_STATUS_BUS_RESET`.
    fn catch_up<C: storport::Notify<Self> + Synchronize<Self>>(&self, st: &mut StartIoState, ctx: &mut C) {
        let restarts = self.restarts.load(Ordering::Acquire);
        if restarts == st.restarts_seen {
            return;
        }
        st.restarts_seen = restarts;
        self.reset_bus(st, ctx);
    }

    /// An `SRB_FUNCTION_EXECUTE_SCSI` request `HwStorBuildIo` prepared: into a slot and the ring.
    fn execute_scsi(st: &mut StartIoState, ctx: &mut StartIoCtx<'_, Self>, mut srb: Srb<Self>) {
        if !st.dev.running {
            // Storport sends nothing to a stopped adapter, so this is one whose reset or restart
            // failed (the rings could not be set up again): the HBA is gone as far as I/O goes.
            return ctx.complete(srb, storport::SrbStatus::NoHba);
        }
        let Some(&mut Prepared { list, send, .. }) = srb.extension() else {
            return ctx.complete(srb, storport::SrbStatus::Error);
        };
        let Some(slot) = st.dev.alloc_slot() else {
            // Only if Storport sent more than MaxNumberOfIO: it retries a busy request through
            // HwStorBuildIo (`DDI-storport:nc-storport-hw_startio`).
            return ctx.complete(srb, storport::SrbStatus::Busy);
        };
        let mapped = if list == 0 {
            Some((Data::None, 0))
        } else {
            let sgl = ctx.scatter_gather_list(&srb);
            let segments = sgl.iter().flat_map(storport::ScatterGatherList::iter).map(|s| Some((s.address, s.length)));
            st.dev.map_data(slot, send, segments)
        };
        let (Some((_, list_pa)), Some(prepared)) = (mapped, srb.extension()) else {
            st.dev.layout_fault();
            st.dev.release_slot(slot);
            return ctx.complete(srb, storport::SrbStatus::InvalidRequest);
        };
        if list != 0 {
            prepared.desc.set_sg_list(list_pa);
        }
        let checked = prepared.checked();
        if st.dev.post(slot, &prepared.desc).is_none() {
            st.dev.layout_fault();
            st.dev.release_slot(slot);
            return ctx.complete(srb, storport::SrbStatus::Error);
        }
        st.dev.hand_over(slot, srb, checked);
    }

    /// The bus reset of `HwStorResetBus` and `SRB_FUNCTION_RESET_BUS`: every outstanding request
    /// completed (`DDI-storport:nc-storport-hw_reset_bus`), the HBA unmasked again under the
    /// interrupt lock, which owns the mask; if the ISR masked it and its DPC is still to come, it
    /// stays masked (`current_mask`) and that DPC unmasks it.
    fn reset_bus<C: storport::Notify<Self> + Synchronize<Self>>(&self, st: &mut StartIoState, ctx: &mut C) -> bool {
        // The reset masks the HBA first, and the ISR, which may run between any two of its
        // register writes (this holds only the `StartIo` lock), must know that when it happens:
        // status the device sets meanwhile is not an interrupt the HBA raised, and an ISR still
        // judging by the old mask would claim it. Both change together, under the interrupt
        // lock: with the ISR's mask cleared and the HBA left unmasked until `device::setup`,
        // status already pending would hold the line up with no ISR to claim it, an interrupt
        // storm for as long as this thread waits to run on (`DDI-storport:nc-storport-hw_interrupt`).
        ctx.synchronize(|irq, _| {
            irq.irq.enabled_mask = 0;
            if let Some(regs) = irq.regs.as_ref() {
                hw::mask_intr(regs);
            }
        });
        let mask = st.dev.reset_bus(ctx, &self.blocks);
        if mask.is_none() {
            // Out of service from here on (`KG:scsi-miniport-driver-s-hwscsiresetbus-routine`:
            // a failed bus reset is logged).
            storport::Port::log_error(ctx, None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, port::RESET_FAILED);
        }
        ctx.synchronize(|irq, _| {
            if let Some(mask) = mask {
                irq.irq.enabled_mask = mask;
            }
            if let Some(regs) = irq.regs.as_ref() {
                hw::unmask_intr(regs, irq.irq.current_mask());
            }
        });
        mask.is_some()
    }

    /// The DPC's end (`StorPortSynchronizeAccess`, the interrupt lock, which owns the mask):
    /// unmasks the HBA the ISR masked, as SCSI Port's `HwScsiDisableInterruptsCallback` does, and
    /// nothing else. The mask written is the current one, 0 if the adapter was stopped meanwhile;
    /// PVSCSI re-raises the line at once for a completion the DPC did not see
    /// (`Interrupts::undefer`).
    fn end_deferral(irq: &mut InterruptState) {
        if !irq.irq.deferred {
            // Forgotten by a restart or a new `HwStorInitialize` (or `HwStorFindAdapter`): what
            // the mask is now is theirs, and an HBA not yet initialised stays masked.
            return;
        }
        irq.irq.saved_status = 0;
        match irq.regs.as_ref() {
            Some(regs) => irq.irq.undefer(regs),
            None => irq.irq.deferred = false,
        }
    }

    /// Completes a request `HwStorBuildIo` does not pass on.
    fn refuse<'a>(ctx: &mut BuildIoCtx<'a, Self>, srb: Srb<Self>, status: SrbStatus) -> BuildIo<'a, Self> {
        BuildIo::Completed(ctx.complete(srb, status.into()))
    }
}

impl Miniport for Hba {
    type StartIoState = StartIoState;
    type InterruptState = InterruptState;
    type DpcState = ();
    type SrbExtension = Prepared;

    const HW_INIT: HwInitData = HwInitData {
        adapter_interface_type: sys::PCIBus,
        number_of_access_ranges: 2,
        // READ CAPACITY answers are read (the logical block size, to hold each READ and WRITE to
        // the length of its CDB); READ and WRITE buffers are not, so they stay unmapped
        // (`KG:use-of-mapping-buffers-in-the-storport-i-o-model`).
        map_buffers: MapBuffers::NonReadWrite,
    };

    /// Claims the first memory range of at least 32 KiB (QEMU's BAR0, VMware's BAR1), sets the
    /// transfer limits and the configuration, resets the HBA, gets the uncached extension and
    /// sets up the rings (`DDI-storport:nc-storport-hw_find_adapter`).
    fn hw_find_adapter<'a>(&mut self, state: States<'_, Self>, ctx: &mut FindAdapterCtx<'a, Self>) -> Result<TransferLimits<'a>, FindAdapterError> {
        if ctx.config().dump_mode() != 0 {
            return Err(FindAdapterError::NotFound);
        }
        let range = ctx.config().access_ranges().find(|range| range.in_memory() && range.length() >= MEM_SPACE_SIZE);
        let Some(range) = range else {
            debug_print!(StorPort, c"rspvscsi: no memory range of 32 KiB among the access ranges", 0u32);
            return Err(FindAdapterError::NotFound);
        };
        let Some(regs) = ctx.map_registers(&range) else {
            debug_print!(StorPort, c"rspvscsi: StorPortGetDeviceBase failed for", range.start());
            ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 1);
            return Err(FindAdapterError::Error);
        };
        let layout: Layout = layout::NORMAL;
        let slots = layout.slots;

        // Everything StorPortGetUncachedExtension depends on is final before it is called
        // (`DDI-storport:nf-storport-storportgetuncachedextension`).
        // Storport counts NumberOfPhysicalBreaks in scatter/gather elements, one more than SCSI
        // Port's breaks (`DDI-storport:ns-storport-_port_configuration_information`: "the maximum
        // number of physical pages the storage adapter can manage in a single transfer"), so a
        // MaximumTransferLength buffer at any alignment needs PHYSICAL_BREAKS + 1.
        let limits = ctx.set_transfer_limits(layout::MAX_TRANSFER, layout::PHYSICAL_BREAKS.saturating_add(1));
        let mut config = ctx.config();
        config.set_caches_data(false);
        config.set_dma64();
        config.set_number_of_buses(1);
        config.set_initiator_bus_id(0, INITIATOR_ID);
        config.set_maximum_logical_units(1);
        // No more requests than slots, per adapter and per LU
        // (`DDI-storport:ns-storport-_port_configuration_information`, `MaxNumberOfIO`,
        // `MaxIOsPerLun`, `InitialLunQueueDepth`).
        // PVSCSI can abort one request (ABORT_CMD, pvscsi-facts.md §4.5).
        config.support_abort_command();
        config.set_max_number_of_io(slots);
        config.set_max_ios_per_lun(slots);
        config.set_initial_lun_queue_depth(slots);

        // Quiet first: whatever ran before may have left the device active, and INTR_MASK
        // survives resets (Q11).
        hw::mask_intr(&regs);
        hw::adapter_reset(&regs);

        let Some(mem) = ctx.uncached_extension(&limits, layout.total) else {
            debug_print!(StorPort, c"rspvscsi: no uncached extension of bytes", layout.total);
            ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 2);
            return Err(FindAdapterError::Error);
        };
        let targets = device::scratch(&mem, layout)
            .and_then(|scratch| device::query_max_targets(&regs, &scratch))
            .unwrap_or(DEFAULT_TARGETS);
        ctx.config().set_maximum_targets(targets);
        self.max_targets = targets;

        let dev = &mut state.start_io.dev;
        dev.dump = false;
        dev.regs = Some(regs);
        dev.mem = Some(mem);
        // The reset above is the setup's: the query left nothing behind.
        let Some(mask) = dev.setup_after_reset() else {
            ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 3);
            return Err(FindAdapterError::Error);
        };
        dev.running = true;
        state.start_io.restarts_seen = self.restarts.load(Ordering::Relaxed);
        *state.interrupt = InterruptState { regs: Some(regs), irq: Interrupts { enabled_mask: mask, deferred: false, saved_status: 0 } };
        Ok(limits)
    }

    /// Clears anything pending and unmasks completion (and message) interrupts; the ISR's state
    /// is ready before the first can arrive (`DDI-storport:nc-storport-hw_initialize`).
    fn hw_initialize(&self, irq: &mut InterruptState, _ctx: &mut InitializeCtx<'_, Self>) -> bool {
        let Some(regs) = irq.regs.as_ref() else { return false };
        // A deferral from before (its DPC object is about to be initialised again) is void.
        irq.irq.deferred = false;
        hw::ack_intr(regs, intr::ALL_SUPPORTED);
        hw::unmask_intr(regs, irq.irq.current_mask());
        true
    }

    /// `HwStorBuildIo`: everything about a request that needs neither a lock nor the hardware
    /// (`KG:unsynchronized-hwstorbuildio-routine`): the checks, the plan, the scatter-gather
    /// elements from Storport's list (`KG:access-to-scatter-gather-lists-in-the-storport-i-o-model`)
    /// and the request descriptor, into the SRB extension. Requests that cannot go to the device
    /// are completed here and never reach `HwStorStartIo` (`DDI-storport:nc-storport-hw_buildio`).
    fn hw_build_io<'a>(&self, ctx: &mut BuildIoCtx<'a, Self>, mut srb: Srb<Self>) -> BuildIo<'a, Self> {
        match srb.function() {
            SrbFunction::ExecuteScsi => {}
            // Need the device's state: under the `StartIo` lock.
            SrbFunction::AbortCommand | SrbFunction::ResetBus | SrbFunction::ResetDevice | SrbFunction::ResetLogicalUnit => {
                return BuildIo::StartIo(srb);
            }
            // PVSCSI has no cache of its own (CachesData is FALSE), and its disks no power states.
            SrbFunction::Flush | SrbFunction::Shutdown | SrbFunction::Power => return Self::refuse(ctx, srb, SrbStatus::Success),
            SrbFunction::IoControl | SrbFunction::Wmi | SrbFunction::Pnp | SrbFunction::Other(_) => {
                return Self::refuse(ctx, srb, SrbStatus::InvalidRequest);
            }
        }
        let checked = match device::check(&srb, self.max_targets, &self.blocks) {
            Ok(checked) => checked,
            Err(status) => return Self::refuse(ctx, srb, status),
        };
        // Checked against the device's limits here, so that HwStorStartIo only copies.
        let data = {
            let list = ctx.scatter_gather_list(&srb);
            let segments = list.iter().flat_map(storport::ScatterGatherList::iter).map(|s| Some((s.address, s.length)));
            device::scatter_gather(segments, checked.plan.send, |_, _, _| Some(()))
        };
        let Some(data) = data else { return Self::refuse(ctx, srb, SrbStatus::InvalidRequest) };
        let desc = Descriptor::new(&srb, data, checked.plan, 0);
        let Some(prepared) = srb.extension() else { return Self::refuse(ctx, srb, SrbStatus::Error) };
        prepared.desc = desc;
        prepared.list = u32::from(matches!(data, Data::List(_)));
        prepared.direction = checked.plan.direction;
        prepared.send = checked.plan.send;
        prepared.read_write = u32::from(checked.read_write);
        BuildIo::StartIo(srb)
    }

    /// `HwStorStartIo` (`DDI-storport:nc-storport-hw_startio`): under the `StartIo` lock, posts
    /// what `HwStorBuildIo` prepared and rings the doorbell; the device functions that need the
    /// device's state.
    fn hw_start_io(&self, st: &mut StartIoState, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        self.catch_up(st, ctx);
        match srb.function() {
            SrbFunction::ExecuteScsi => Self::execute_scsi(st, ctx, srb),
            SrbFunction::AbortCommand => {
                let status = st.dev.abort(srb.abort_target());
                ctx.complete(srb, status.into());
            }
            SrbFunction::ResetBus => {
                let status = if self.reset_bus(st, ctx) { SrbStatus::Success } else { SrbStatus::Error };
                ctx.complete(srb, status.into());
            }
            // PVSCSI resets a target (LUN 0, the only one it exposes, pvscsi-facts.md §4.6), which
            // is also the logical unit reset Storport asks for first when a request times out.
            SrbFunction::ResetDevice | SrbFunction::ResetLogicalUnit => {
                let status = st.dev.reset_device(port::Request::address(&srb).target_id);
                ctx.complete(srb, status.into());
            }
            _ => ctx.complete(srb, storport::SrbStatus::InvalidRequest),
        }
    }

    /// `HwStorInterrupt` (`DDI-storport:nc-storport-hw_interrupt`): claims only an interrupt this
    /// HBA raised (the line may be shared), acknowledges it, masks the HBA until the DPC has run
    /// and issues the DPC (`DDI-storport:nf-storport-storportissuedpc`). Nothing else at DIRQL.
    fn hw_interrupt(&self, irq: &mut InterruptState, ctx: &mut InterruptCtx<'_, Self>) -> bool {
        let Some(regs) = irq.regs.as_ref() else { return false };
        let Some(raised) = irq.irq.claim(regs, false) else { return false };
        irq.irq.defer(regs, raised);
        // FALSE means the DPC is queued already, and that run drains the rings and unmasks.
        ctx.issue_dpc();
        true
    }

    /// `HwStorDpcRoutine` (`DDI-storport:nc-storport-hw_dpc_routine`): with the `StartIo` lock,
    /// which owns the rings and the slots (`DDI-storport:nf-storport-storportacquirespinlock`),
    /// drains the message ring and the completion ring and completes what the device finished;
    /// then, with the `StartIo` lock released, unmasks the HBA under the interrupt lock.
    fn hw_dpc(&self, _dpc: &mut (), ctx: &mut DpcCtx<'_, Self>) {
        ctx.with_start_io_lock(|st, locked| {
            self.catch_up(st, locked);
            if st.dev.drain_messages(&self.blocks) {
                locked.bus_change_detected(0);
            }
            st.dev.drain_completions(locked, &self.blocks);
        });
        ctx.synchronize(|irq, _| Self::end_deferral(irq));
    }

    /// `HwStorResetBus` (`DDI-storport:nc-storport-hw_reset_bus`), under the `StartIo` lock.
    fn hw_reset_bus(&self, st: &mut StartIoState, ctx: &mut ResetBusCtx<'_, Self>, _path_id: u8) -> bool {
        // Sets the rings up, which a pending restart needs too.
        st.restarts_seen = self.restarts.load(Ordering::Acquire);
        self.reset_bus(st, ctx)
    }

    /// `HwStorAdapterControl` for the types a physical miniport must support
    /// (`DDI-storport:nc-storport-hw_adapter_control`; the wrapper answers
    /// `ScsiQuerySupportedControlTypes`), under the interrupt lock.
    fn hw_adapter_control(&self, irq: &mut InterruptState, _ctx: &mut AdapterControlCtx<'_, Self>, control: AdapterControl) {
        match control {
            AdapterControl::Stop => {
                // No request is outstanding (`DDI-storport:ne-storport-scsi_adapter_control_type`).
                // Masked from here on, so the ISR claims nothing (a shared line); the registers
                // may already be gone after a surprise removal, which costs nothing. A DPC still
                // to run or running must not touch the registers either (a Plug and Play stop
                // releases them): the deferral is over, so it unmasks nothing (`end_deferral`).
                irq.irq.enabled_mask = 0;
                irq.irq.deferred = false;
                irq.irq.saved_status = 0;
                if let Some(regs) = irq.regs.as_ref() {
                    hw::mask_intr(regs);
                    hw::adapter_reset(regs);
                }
            }
            AdapterControl::Restart => {
                // What HwStorInitialize does needs the rings, which the `StartIo` lock owns: the
                // next holder of that lock sets them up again and unmasks (`Hba::catch_up`), and
                // until then the HBA stays masked and quiet, as the stop left it. A deferral from
                // before the stop is forgotten: its DPC, if it still comes, unmasks nothing
                // (`Hba::end_deferral` writes the current mask) and the restart owes it nothing.
                irq.irq.deferred = false;
                irq.irq.saved_status = 0;
                self.restarts.fetch_add(1, Ordering::Release);
            }
        }
    }
}

/// `DriverEntry` of the Storport flavour: registers the miniport with Storport and returns what
/// `StorPortInitialize` returned (`DDI-storport:nf-storport-storportinitialize`).
///
/// # Safety
/// Called by the system (or the emulator) as a driver's entry point, with the two arguments it
/// gives a Storport miniport.
pub unsafe extern "win64" fn driver_entry(argument1: *mut core::ffi::c_void, argument2: *mut core::ffi::c_void) -> u32 {
    // SAFETY: this is DriverEntry, and the arguments are its own, unchanged.
    unsafe { storport::initialize::<Hba>(argument1, argument2) }
}
