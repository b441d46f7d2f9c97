//! CallEnableInterrupts can be requested only by HwScsiInterrupt.
use scsiport::*;

struct Hba;

// SAFETY: a unit struct has no bytes.
unsafe impl Zeroable for Hba {}

impl Miniport for Hba {
    type SrbExtension = ();
    type LuExtension = ();
    const HW_INIT: HwInitData = HwInitData {
        adapter_interface_type: sys::PCIBus,
        vendor_id: b"15AD",
        device_id: b"07C0",
        number_of_access_ranges: 1,
        map_buffers: false,
        need_physical_addresses: true,
        tagged_queuing: true,
        auto_request_sense: true,
        multiple_request_per_lu: true,
        receive_event: false,
    };
    const CONTROL_TYPES: ControlTypes = ControlTypes { stop: true, restart: false, set_boot_config: false, set_running_config: false };

    fn hw_find_adapter(&mut self, _ctx: &mut FindAdapterCtx<'_, Self>) -> Result<(), FindAdapterError> {
        Ok(())
    }
    fn hw_initialize(&mut self, _ctx: &mut InitializeCtx<'_, Self>) -> bool {
        true
    }
    fn hw_start_io(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        let _ = ctx.call_enable_interrupts();
        ctx.complete(srb, SrbStatus::Success);
    }
    fn hw_interrupt(&mut self, ctx: InterruptCtx<'_, Self>) -> InterruptResult {
        ctx.call_enable_interrupts()
    }
    fn hw_enable_interrupts_callback(&mut self, ctx: EnableInterruptsCtx<'_, Self>) -> DisableInterruptsRequested {
        ctx.call_disable_interrupts()
    }
    fn hw_disable_interrupts_callback(&mut self, _ctx: &mut DisableInterruptsCtx<'_, Self>) -> bool {
        true
    }
    fn hw_reset_bus(&mut self, ctx: &mut ResetBusCtx<'_, Self>, _path_id: u8) -> bool {
        ctx.next_request();
        true
    }
}

fn main() {}
