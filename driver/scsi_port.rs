//! The SCSI Port flavour (`rspvscsi.sys`): the device extension and the SCSI Port routines,
//! as glue over the device logic in `device.rs`.
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
//! SCSI Port serialises all of these routines, so the whole device extension is one `&mut`.
//! What SCSI Port adds to the shared logic is readiness: every routine that takes a request
//! says when it can take the next (`NextRequest`, `NextLuRequest`).

use scsiport::sys;
use scsiport::{
    AdapterControl, AdapterControlCtx, ControlTypes, DisableInterruptsCtx, DisableInterruptsRequested,
    EnableInterruptsCtx, FindAdapterCtx, FindAdapterError, HwInitData, InitializeCtx, InterruptCtx, InterruptResult,
    LuAddress, Miniport, Notify as _, Port as _, ResetBusCtx, Srb, SrbFunction, StartIoCtx, Zeroable,
};

use crate::device::{self, BlockSizes, DEFAULT_TARGETS, Device, INITIATOR_ID, Interrupts, debug_print};
use crate::hw;
use crate::layout;
use crate::port::{self, SrbStatus};
use crate::pvscsi::{MEM_SPACE_SIZE, intr};

/// The SCSI Port wrapper's types, for the device logic.
#[derive(Debug)]
pub enum ScsiPort {}

/// PVSCSI's registers: the memory range of at least `MEM_SPACE_SIZE` that `HwScsiFindAdapter`
/// claims, proved so when it is mapped, so that no register access checks it again.
pub type Registers = scsiport::MemoryWindow<MEM_SPACE_SIZE>;

impl port::Port for ScsiPort {
    type Registers = Registers;
    type Memory = scsiport::CommonBuffer;
    type Srb = Srb<Adapter>;

    fn debug_print(message: &core::ffi::CStr, value: u64) {
        scsiport::debug_print(1, message, value);
    }
}

port::forward_wrapper!(memory: scsiport::CommonBuffer, srb: Srb<Adapter>, wrapper: scsiport);

impl port::Registers for Registers {
    #[inline]
    fn read_u32<const OFFSET: u32>(&self) -> u32 {
        Registers::read_u32::<OFFSET>(self)
    }
    #[inline]
    fn write_u32<const OFFSET: u32>(&self, value: u32) {
        Registers::write_u32::<OFFSET>(self, value);
    }
}
port::srb_status_into!(scsiport::SrbStatus);

/// Every SCSI Port context that may complete requests is a notifier for the device logic.
impl<C: scsiport::Notify<Adapter>> port::Notify<ScsiPort> for C {
    fn complete(&mut self, srb: Srb<Adapter>, status: SrbStatus) {
        scsiport::Notify::complete(self, srb, status.into());
    }

    fn log_error(&mut self, srb: &Srb<Adapter>, code: u32, unique: u32) {
        scsiport::Port::log_error(self, Some(srb), srb.address(), code, unique);
    }
}

/// The device extension.
#[derive(Debug)]
pub struct Adapter {
    dev: Device<ScsiPort>,
    irq: Interrupts,
    blocks: BlockSizes,
    max_targets: u8,
    /// A request was turned away with `SRB_STATUS_BUSY` without `NextRequest`; the next
    /// completion owes the port one.
    owe_next_request: bool,
}

// SAFETY: every field is valid all-zero: `Option<Registers>`, `Option<CommonBuffer>` and
// `Option<Srb<_>>` are `None` (their only niche is a `NonNull`, see the `Zeroable` impls in
// `scsiport`), `bool`s are `false`, integers and atomics are 0, and arrays/structs of such are
// too.
unsafe impl Zeroable for Adapter {}

/// Completes a request the driver will not send to the device, and signals readiness.
fn reject(ctx: &mut StartIoCtx<'_, Adapter>, srb: Srb<Adapter>, status: SrbStatus) {
    ctx.complete(srb, status.into());
    ctx.next_request();
}

impl Adapter {
    fn execute_scsi(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        let address = srb.address();
        let tagged = srb.queue_tag().is_some();
        if !self.dev.running {
            // SCSI Port sends nothing to a stopped adapter, so this is one whose reset failed
            // (rings could not be set up again): the HBA is gone as far as I/O goes.
            return reject(ctx, srb, SrbStatus::NoHba);
        }
        let checked = match device::check(&srb, self.max_targets, &self.blocks) {
            Ok(checked) => checked,
            Err(status) => return reject(ctx, srb, status),
        };
        let Some(slot) = self.dev.alloc_slot() else {
            // Every slot is busy: let the port retry, and signal readiness only when a
            // completion frees a slot (`KG:return-from-hwscsistartio`).
            ctx.complete(srb, scsiport::SrbStatus::Busy);
            self.owe_next_request = true;
            return;
        };
        let segments = ctx.data_segments(&srb).map(|s| s.ok().map(|s| (s.address, s.length)));
        let Some((data, list)) = self.dev.map_data(slot, checked.plan.send, segments) else {
            self.dev.layout_fault();
            self.dev.release_slot(slot);
            return reject(ctx, srb, SrbStatus::InvalidRequest);
        };
        if let Err(srb) = self.dev.issue(slot, srb, data, list, checked) {
            return reject(ctx, srb, SrbStatus::Error);
        }
        // A tagged request leaves the LU open for more; an untagged one must not
        // (0xF1/0x1005: NextLuRequest with an untagged request active).
        if tagged {
            ctx.next_lu_request(LuAddress { path_id: address.path_id, target_id: address.target_id, lun: address.lun });
        } else {
            ctx.next_request();
        }
    }

    /// `HwScsiStartIo` for every function but `SRB_FUNCTION_EXECUTE_SCSI`. Out of line, and
    /// `extern "win64"`, the convention of the trampoline it is called from, so that in the
    /// emulator's Linux build the trampoline's prologue need not save xmm6–xmm15 for the System V
    /// functions this one calls (callee-saved in the Windows x64 convention only); on Windows both
    /// conventions are one.
    #[cold]
    #[inline(never)]
    extern "win64" fn start_other(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        match srb.function() {
            SrbFunction::AbortCommand => {
                let status = self.dev.abort(srb.abort_target());
                ctx.complete(srb, status.into());
                ctx.next_request();
            }
            SrbFunction::ResetBus => {
                let status = if self.dev.dump || self.reset_bus(ctx) { SrbStatus::Success } else { SrbStatus::Error };
                ctx.complete(srb, status.into());
                ctx.next_request();
            }
            SrbFunction::ResetDevice => {
                let status = self.dev.reset_device(port::Request::address(&srb).target_id);
                ctx.complete(srb, status.into());
                ctx.next_request();
            }
            // PVSCSI has no cache of its own (CachesData is FALSE, so these should not come).
            SrbFunction::Flush | SrbFunction::Shutdown => {
                ctx.complete(srb, scsiport::SrbStatus::Success);
                ctx.next_request();
            }
            // IoControl, Wmi, Pnp and any other function; EXECUTE_SCSI does not come here, and
            // execute_scsi is called from hw_start_io alone, so that it is inlined there.
            _ => {
                ctx.complete(srb, scsiport::SrbStatus::InvalidRequest);
                ctx.next_request();
            }
        }
    }

    /// The bus reset of `HwScsiResetBus` and `SRB_FUNCTION_RESET_BUS`: every outstanding
    /// request completed, the HBA unmasked again. A reset after which the device would not take
    /// its rings again leaves the HBA out of service, and is logged, as a failed bus reset should
    /// be (`KG:scsi-miniport-driver-s-hwscsiresetbus-routine`).
    fn reset_bus(&mut self, ctx: &mut impl scsiport::Notify<Self>) -> bool {
        let mask = self.dev.reset_bus(ctx, &self.blocks);
        if let Some(mask) = mask {
            self.irq.enabled_mask = mask;
        } else {
            scsiport::Port::log_error(ctx, None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, port::RESET_FAILED);
        }
        self.owe_next_request = false;
        if let Some(regs) = self.dev.regs.as_ref() {
            hw::unmask_intr(regs, self.irq.current_mask());
        }
        mask.is_some()
    }

    /// The ISR's work in crash-dump mode, where the dump stack polls it with interrupts off and
    /// there is no deferral: everything inline. Out of line, so that the normal path's
    /// prologue saves only the registers it uses; and `extern "win64"`, the convention of the
    /// trampoline that calls it, so that this stays true in the emulator's Linux build too, where
    /// a call from the trampoline to a Rust (System V) function would make its prologue save
    /// xmm6–xmm15 (callee-saved in the Windows x64 convention only) on every interrupt. On Windows
    /// both conventions are the same.
    #[cold]
    #[inline(never)]
    extern "win64" fn dump_interrupt(&mut self, ctx: &mut InterruptCtx<'_, Self>) {
        self.dev.drain_messages(&self.blocks);
        self.process_completions(ctx);
    }

    /// Completes what the device finished and signals readiness if anything was freed.
    fn process_completions(&mut self, ctx: &mut impl scsiport::Notify<Self>) {
        let completed = self.dev.drain_completions(ctx, &self.blocks);
        if completed || self.owe_next_request {
            self.owe_next_request = false;
            ctx.next_request();
        }
    }
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
        // to the length of its CDB). SCSI Port maps every buffer for that; the Storport flavour
        // asks for STOR_MAP_NON_READ_WRITE_BUFFERS instead.
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
        self.dev.dump = ctx.argument("dump").is_some_and(|value| value == b"1");
        let range = ctx.config().access_ranges().find(|range| range.in_memory && range.length >= MEM_SPACE_SIZE);
        let Some(range) = range else {
            debug_print!(ScsiPort, c"rspvscsi: no memory range of 32 KiB among the access ranges", 0u32);
            return Err(FindAdapterError::NotFound);
        };
        let Some(regs) = ctx.map_registers(&range) else {
            debug_print!(ScsiPort, c"rspvscsi: ScsiPortGetDeviceBase failed for", range.start);
            ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 1);
            return Err(FindAdapterError::Error);
        };
        // The range was chosen for being in memory space and long enough; the window proves it.
        let regs = match regs.memory_window::<MEM_SPACE_SIZE>() {
            Ok(regs) => regs,
            Err(regs) => {
                ctx.unmap_registers(regs);
                return Err(FindAdapterError::NotFound);
            }
        };
        let layout = self.dev.layout();

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
            debug_print!(ScsiPort, c"rspvscsi: no uncached extension of bytes", layout.total);
            ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 2);
            ctx.unmap_registers(regs.into_registers());
            return Err(FindAdapterError::Error);
        };
        let targets = device::scratch(&mem, layout)
            .and_then(|scratch| device::query_max_targets(&regs, &scratch))
            .unwrap_or(DEFAULT_TARGETS);
        ctx.config().set_maximum_targets(targets);

        self.max_targets = targets;
        self.dev.regs = Some(regs);
        self.dev.mem = Some(mem);
        // The reset above is the setup's: the query left nothing behind.
        let Some(mask) = self.dev.setup_after_reset() else {
            debug_print!(ScsiPort, c"rspvscsi: SETUP_RINGS failed, COMMAND_STATUS", self.dev.regs.as_ref().map_or(0, Registers::read_u32::<{ crate::pvscsi::reg::COMMAND_STATUS }>));
            ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 3);
            if let Some(regs) = self.dev.regs.take() {
                ctx.unmap_registers(regs.into_registers());
            }
            return Err(FindAdapterError::Error);
        };
        self.irq.enabled_mask = mask;
        self.dev.running = true;
        Ok(())
    }

    /// Clears anything pending and unmasks completion (and message) interrupts.
    fn hw_initialize(&mut self, _ctx: &mut InitializeCtx<'_, Self>) -> bool {
        let Some(regs) = self.dev.regs.as_ref() else { return false };
        hw::ack_intr(regs, intr::ALL_SUPPORTED);
        hw::unmask_intr(regs, self.irq.current_mask());
        true
    }

    /// Inlined into the wrapper's trampoline, as SCSI Port's most frequent routine: one call,
    /// one frame and one set of register saves fewer per request (measured: see the commit that
    /// made it so). `SRB_FUNCTION_EXECUTE_SCSI` comes inline with it, every other function out of
    /// line ([`Self::start_other`]).
    #[allow(clippy::inline_always)] // measured: see the commit that made it so
    #[inline(always)]
    fn hw_start_io(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        if srb.function() == SrbFunction::ExecuteScsi {
            self.execute_scsi(ctx, srb);
        } else {
            self.start_other(ctx, srb);
        }
    }

    /// Only aborts and resets are ever parked (never `SRB_FUNCTION_EXECUTE_SCSI`).
    fn hw_start_io_parked(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        self.start_other(ctx, srb);
    }

    /// Claims only an interrupt this HBA raised: a status bit its current mask lets through
    /// (the line may be shared). Acknowledges it, masks the HBA, saves the status and defers.
    fn hw_interrupt(&mut self, mut ctx: InterruptCtx<'_, Self>) -> InterruptResult {
        let Some(regs) = self.dev.regs.as_ref() else { return InterruptResult::NotMine };
        let Some(raised) = self.irq.claim(regs, self.dev.dump) else { return InterruptResult::NotMine };
        if self.dev.dump {
            self.dump_interrupt(&mut ctx);
            return InterruptResult::Handled;
        }
        self.irq.defer(regs, raised);
        ctx.call_enable_interrupts()
    }

    fn hw_enable_interrupts_callback(&mut self, mut ctx: EnableInterruptsCtx<'_, Self>) -> DisableInterruptsRequested {
        let status = core::mem::take(&mut self.irq.saved_status);
        if status & intr::MSG_MASK != 0 && self.dev.drain_messages(&self.blocks) {
            ctx.bus_change_detected(0);
        }
        // Drained whatever the status said: a completion posted after the ISR's acknowledgement
        // is already in the ring.
        self.process_completions(&mut ctx);
        ctx.call_disable_interrupts()
    }

    fn hw_disable_interrupts_callback(&mut self, _ctx: &mut DisableInterruptsCtx<'_, Self>) -> bool {
        let Some(regs) = self.dev.regs.as_ref() else {
            self.irq.deferred = false;
            return false;
        };
        self.irq.undefer(regs);
        true
    }

    fn hw_reset_bus(&mut self, ctx: &mut ResetBusCtx<'_, Self>, _path_id: u8) -> bool {
        // The dump stack asks miniports to ignore bus resets
        // (`KG:restrictions-on-miniport-drivers-that-manage-the-boot-drive`).
        let ok = self.dev.dump || self.reset_bus(ctx);
        ctx.next_request();
        ok
    }

    fn hw_adapter_control(&mut self, _ctx: &mut AdapterControlCtx<'_, Self>, control: AdapterControl) {
        match control {
            AdapterControl::Stop => {
                // No requests are outstanding (`REF:HwScsiAdapterControl`). Quiesce the device;
                // registers may already be gone after a surprise removal, which costs nothing.
                self.dev.running = false;
                // Masked from here on; HwScsiInterrupt then claims nothing (a shared line).
                self.irq.enabled_mask = 0;
                if let Some(regs) = self.dev.regs.as_ref() {
                    hw::mask_intr(regs);
                    hw::adapter_reset(regs);
                }
            }
            AdapterControl::Restart => {
                self.irq.deferred = false;
                self.irq.saved_status = 0;
                let mask = self.dev.reset_and_setup();
                if let Some(mask) = mask {
                    self.irq.enabled_mask = mask;
                }
                self.dev.running = mask.is_some();
                if let Some(regs) = self.dev.regs.as_ref() {
                    hw::unmask_intr(regs, self.irq.current_mask());
                }
            }
            AdapterControl::SetBootConfig | AdapterControl::SetRunningConfig => {}
        }
    }
}

/// `DriverEntry` of the SCSI Port flavour: registers the miniport with SCSI Port and returns
/// what `ScsiPortInitialize` returned (`KG:driverentry-of-scsi-miniport-driver`). In crash-dump
/// mode both arguments are NULL; they are passed on unchanged either way.
///
/// # Safety
/// Called by the system (or the emulator) as a driver's entry point, with the two arguments it
/// gives a SCSI miniport.
pub unsafe extern "win64" fn driver_entry(argument1: *mut core::ffi::c_void, argument2: *mut core::ffi::c_void) -> u32 {
    // SAFETY: this is DriverEntry, and the arguments are its own, unchanged.
    unsafe { scsiport::initialize::<Adapter>(argument1, argument2) }
}
