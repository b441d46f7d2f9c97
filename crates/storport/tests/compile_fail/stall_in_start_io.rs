//! No StorPortStallExecution in HwStorStartIo (Static Driver Verifier rule StorPortStartIo, DT:storport-storportstartio).
use storport::*;

/// The shared part: configuration, readable everywhere.
struct Hba {
    targets: u8,
}

// SAFETY: an integer.
unsafe impl Zeroable for Hba {}

/// The state of both locks: a register mapping and the request at the device.
struct Hardware {
    registers: Option<Registers>,
    outstanding: Option<Srb<Hba>>,
}

// SAFETY: `Option`s of NonNull-based handles, `None` when zero.
unsafe impl Zeroable for Hardware {}

impl Miniport for Hba {
    type StartIoState = Hardware;
    type InterruptState = Hardware;
    type DpcState = ();
    type SrbExtension = u64;
    const HW_INIT: HwInitData =
        HwInitData { adapter_interface_type: sys::PCIBus, number_of_access_ranges: 1, map_buffers: MapBuffers::None };

    fn hw_find_adapter<'a>(
        &mut self,
        state: States<'_, Self>,
        ctx: &mut FindAdapterCtx<'a, Self>,
    ) -> Result<TransferLimits<'a>, FindAdapterError> {
        let range = ctx.config().access_ranges().find(AccessRange::in_memory).ok_or(FindAdapterError::NotFound)?;
        let registers = ctx.map_registers(&range);
        state.start_io.registers = registers;
        state.interrupt.registers = registers;
        let limits = ctx.set_transfer_limits(0x1_0000, 17);
        let _memory = ctx.uncached_extension(&limits, 4096).ok_or(FindAdapterError::Error)?;
        self.targets = 8;
        Ok(limits)
    }
    fn hw_initialize(&self, interrupt: &mut Hardware, ctx: &mut InitializeCtx<'_, Self>) -> bool {
        let _ = ctx;
        interrupt.registers.is_some_and(|registers| registers.write_u32(0x10, 1))
    }
    fn hw_build_io<'a>(&self, ctx: &mut BuildIoCtx<'a, Self>, srb: Srb<Self>) -> BuildIo<'a, Self> {
        if srb.address().target_id >= self.targets {
            return BuildIo::Completed(ctx.complete(srb, SrbStatus::InvalidTargetId));
        }
        BuildIo::StartIo(srb)
    }
    fn hw_start_io(&self, state: &mut Hardware, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        ctx.stall(100);
        state.outstanding = Some(srb);
    }
    fn hw_interrupt(&self, state: &mut Hardware, ctx: &mut InterruptCtx<'_, Self>) -> bool {
        let Some(registers) = state.registers else { return false };
        let status = registers.read_u32(0);
        if status == 0 {
            return false;
        }
        registers.write_u32(0, status);
        ctx.issue_dpc()
    }
    fn hw_dpc(&self, _dpc: &mut (), ctx: &mut DpcCtx<'_, Self>) {
        let _ = ctx.synchronize(|interrupt, _| interrupt.registers.is_some());
        ctx.with_start_io_lock(|state, locked| {
            if let Some(srb) = state.outstanding.take() {
                locked.complete(srb, SrbStatus::Success);
            }
        });
    }
    fn hw_reset_bus(&self, state: &mut Hardware, ctx: &mut ResetBusCtx<'_, Self>, _path_id: u8) -> bool {
        if let Some(srb) = state.outstanding.take() {
            ctx.complete(srb, SrbStatus::BusReset);
        }
        true
    }
    fn hw_adapter_control(&self, interrupt: &mut Hardware, _ctx: &mut AdapterControlCtx<'_, Self>, control: AdapterControl) {
        if let Some(registers) = interrupt.registers {
            registers.write_u32(0x10, u32::from(control == AdapterControl::Restart));
        }
    }
}

fn main() {}
