//! The wrapper against a port: a small miniport that answers requests itself (no device I/O)
//! exercises the parts of the wrapper the PVSCSI driver does not use — `MapBuffers` data
//! access, the SRB extension, timers, error logging, the control-type query — plus the ones it
//! does, on the SCSI Port emulator with its verifier on.
#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use scsiport::sys;
use scsiport::*;
use scsiport_sim::mem::SimDma;
use scsiport_sim::pvscsi::{PvscsiConfig, PvscsiDevice};
use scsiport_sim::{Machine, Request, Schedule, VerifierConfig};

/// Per-request scratch in the SRB extension, which the port does not initialise.
#[derive(Clone, Copy)]
#[repr(C)]
struct Scratch {
    stamp: u32,
    segments: u32,
}
// SAFETY: two u32s.
unsafe impl Zeroable for Scratch {}
// SAFETY: two u32s, no padding.
unsafe impl AnyBitPattern for Scratch {}

/// What the test reads back after a run (one machine per test, so a static is fine here).
static SEGMENT_SUM_OK: AtomicU32 = AtomicU32::new(0);
static SECOND_UNCACHED_REFUSED: AtomicU32 = AtomicU32::new(0);
static TIMER_COMPLETIONS: AtomicU32 = AtomicU32::new(0);

struct Echo {
    registers: Option<Registers>,
    common: Option<CommonBuffer>,
    deferred: Option<Srb<Echo>>,
    stamp: u32,
}

// SAFETY: `Option`s of NonNull-based handles (None when zero) and an integer.
unsafe impl Zeroable for Echo {}

impl Miniport for Echo {
    type SrbExtension = Scratch;
    type LuExtension = ();
    const HW_INIT: HwInitData = HwInitData {
        adapter_interface_type: sys::PCIBus,
        vendor_id: b"15AD",
        device_id: b"07C0",
        number_of_access_ranges: 1,
        map_buffers: true,
        need_physical_addresses: true,
        tagged_queuing: false,
        auto_request_sense: true,
        multiple_request_per_lu: false,
        receive_event: false,
    };
    const CONTROL_TYPES: ControlTypes = ControlTypes { stop: true, restart: true, set_boot_config: false, set_running_config: false };

    fn hw_find_adapter(&mut self, ctx: &mut FindAdapterCtx<'_, Self>) -> Result<(), FindAdapterError> {
        let range = ctx.config().access_ranges().find(|r| r.in_memory).ok_or(FindAdapterError::NotFound)?;
        self.registers = Some(ctx.map_registers(&range).ok_or(FindAdapterError::Error)?);
        let mut config = ctx.config();
        config.set_master(true);
        config.set_scatter_gather(true);
        config.set_maximum_transfer_length(64 * 1024);
        config.limit_physical_breaks(16);
        config.set_number_of_buses(1);
        config.set_maximum_targets(2);
        config.set_maximum_logical_units(1);
        self.common = ctx.uncached_extension(8192);
        if self.common.is_some() && ctx.uncached_extension(8192).is_none() {
            SECOND_UNCACHED_REFUSED.store(1, Ordering::SeqCst);
        }
        self.common.map(|_| ()).ok_or(FindAdapterError::Error)
    }

    fn hw_initialize(&mut self, _ctx: &mut InitializeCtx<'_, Self>) -> bool {
        self.common.is_some_and(|c| c.write_u32(0, 0xC0FF_EE00).is_some() && c.read_u32(0) == Some(0xC0FF_EE00))
    }

    fn hw_start_io(&mut self, ctx: &mut StartIoCtx<'_, Self>, mut srb: Srb<Self>) {
        if srb.function() != SrbFunction::ExecuteScsi || srb.address().target_id != 0 {
            let status = if srb.function() == SrbFunction::ExecuteScsi { SrbStatus::SelectionTimeout } else { SrbStatus::InvalidRequest };
            ctx.complete(srb, status);
            ctx.next_request();
            return;
        }
        // The SRB extension carries per-request state from here to completion.
        self.stamp = self.stamp.wrapping_add(1);
        let stamp = self.stamp;
        if let Some(scratch) = srb.extension() {
            scratch.stamp = stamp;
        }
        // Physical segments cover exactly DataTransferLength.
        let total: u64 = ctx.data_segments(&srb).map(|s| u64::from(s.unwrap().length)).sum();
        let count = u32::try_from(ctx.data_segments(&srb).count()).unwrap();
        if total == u64::from(srb.data_transfer_length()) {
            SEGMENT_SUM_OK.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(scratch) = srb.extension() {
            scratch.segments = count;
        }
        let opcode = srb.cdb().first().copied().unwrap_or(0);
        match opcode {
            // INQUIRY: answered from the mapped data buffer (MapBuffers).
            0x12 => {
                let buffer = srb.data_buffer().unwrap();
                buffer.fill(0);
                buffer[0] = 0x00;
                buffer[4] = 31;
                buffer[8..16].copy_from_slice(b"ECHO    ");
                ctx.complete(srb, SrbStatus::Success);
                ctx.next_request();
            }
            // READ(10): fill with the stamp, but finish from HwScsiTimer 100 µs later.
            0x28 => {
                let fill = u8::try_from(stamp & 0xFF).unwrap();
                srb.data_buffer().unwrap().fill(fill);
                self.deferred = Some(srb);
                ctx.request_timer(100);
                ctx.next_request();
            }
            // Anything else: CHECK CONDITION with sense, logged.
            _ => {
                ctx.log_error(Some(&srb), srb.address(), sys::SP_PROTOCOL_ERROR, 0x42);
                srb.set_scsi_status(sys::SCSISTAT_CHECK_CONDITION);
                srb.return_sense(|sense| {
                    sense[0] = 0x70;
                    sense[2] = sys::SCSI_SENSE_ILLEGAL_REQUEST;
                    sense[7] = 10;
                    sense[12] = sys::SCSI_ADSENSE_ILLEGAL_COMMAND;
                    18
                });
                ctx.complete(srb, SrbStatus::Error);
                ctx.next_request();
            }
        }
    }

    fn hw_timer(&mut self, ctx: &mut TimerCtx<'_, Self>) {
        if let Some(mut srb) = self.deferred.take() {
            // The stamp written in StartIo is still there.
            let fill = srb.data_buffer().unwrap()[0];
            let stamp = srb.extension().map(|s| s.stamp).unwrap();
            assert_eq!(u32::from(fill), stamp & 0xFF);
            TIMER_COMPLETIONS.fetch_add(1, Ordering::SeqCst);
            ctx.complete(srb, SrbStatus::Success);
        }
    }

    fn hw_interrupt(&mut self, _ctx: InterruptCtx<'_, Self>) -> InterruptResult {
        // This miniport never starts the device, so no interrupt is ever its own.
        InterruptResult::NotMine
    }

    fn hw_enable_interrupts_callback(&mut self, ctx: EnableInterruptsCtx<'_, Self>) -> DisableInterruptsRequested {
        ctx.call_disable_interrupts()
    }

    fn hw_disable_interrupts_callback(&mut self, _ctx: &mut DisableInterruptsCtx<'_, Self>) -> bool {
        true
    }

    fn hw_reset_bus(&mut self, ctx: &mut ResetBusCtx<'_, Self>, _path_id: u8) -> bool {
        if let Some(srb) = self.deferred.take() {
            ctx.complete(srb, SrbStatus::BusReset);
        }
        ctx.next_request();
        true
    }

    fn hw_adapter_control(&mut self, _ctx: &mut AdapterControlCtx<'_, Self>, control: AdapterControl) {
        if control == AdapterControl::Restart {
            let _ = self.registers.as_ref().map(|r| r.read_u32(0));
        }
    }
}

unsafe extern "win64" fn driver_entry(a: *mut core::ffi::c_void, b: *mut core::ffi::c_void) -> u32 {
    // SAFETY: called by the emulator as DriverEntry, with its arguments.
    unsafe { initialize::<Echo>(a, b) }
}

#[test]
fn wrapper_routines_on_the_emulator() {
    let builder = Machine::builder().schedule(Schedule::Deterministic { seed: 1 }).verifier(VerifierConfig::default());
    let dma = SimDma::default();
    let device = PvscsiDevice::new(PvscsiConfig::default(), Arc::new(dma.clone()), builder.clock());
    let machine = builder.adapter(Arc::new(device), Arc::new(dma)).build();
    machine.load_driver(driver_entry).expect("loads");
    assert_eq!(SECOND_UNCACHED_REFUSED.load(Ordering::SeqCst), 1, "a second uncached extension is refused");
    assert_eq!(machine.logical_units(0), vec![(0, 0, 0)]);

    let inquiry = machine.execute(Request::inquiry(0)).unwrap();
    assert!(inquiry.is_success());
    assert_eq!(&inquiry.data[8..16], b"ECHO    ");

    let mut stamps = Vec::new();
    for i in 0..4u32 {
        let read = machine.execute(Request::read10(0, i, 16, 8192).with_buffer_offset(0x300)).unwrap();
        assert!(read.is_success(), "{read:?}");
        assert!(read.data.iter().all(|b| *b == read.data[0]));
        stamps.push(read.data[0]);
    }
    // Each READ holds its own request's stamp, one more than the one before (not a buffer that
    // was never filled, which would be all zero too).
    assert!(stamps[0] != 0 && stamps.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "{stamps:?}");
    assert_eq!(TIMER_COMPLETIONS.load(Ordering::SeqCst), 4);

    let bad = machine.execute(Request::test_unit_ready(0)).unwrap();
    assert_eq!(bad.status(), sys::SRB_STATUS_ERROR);
    assert_ne!(bad.srb_status & sys::SRB_STATUS_AUTOSENSE_VALID, 0);
    assert_eq!(bad.sense.get(12), Some(&sys::SCSI_ADSENSE_ILLEGAL_COMMAND));

    assert!(SEGMENT_SUM_OK.load(Ordering::SeqCst) >= 6);
    machine.stop_adapter(0).unwrap();
    machine.restart_adapter(0).unwrap();
    assert!(machine.execute(Request::inquiry(0)).unwrap().is_success());
    assert_eq!(machine.violations(), Vec::new());
}
