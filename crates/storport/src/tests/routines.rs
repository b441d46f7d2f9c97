//! The trampolines against the recording port: what each routine of a small miniport makes the
//! wrapper ask of Storport, in which order, under which lock.

use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, Ordering};
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use scsiport_sys as sys;
use sys::storport as stor;

use super::fake_port::{self, Answers, Call, notifications};
use super::{FakeExtension, blank_srb, config};
use crate::extension::Extension;
use crate::miniport::{self as trampolines};
use crate::*;

/// A miniport with a fake device: register 0x00 is the interrupt status (write 1 to clear),
/// 0x10 the interrupt mask, 0x20 the doorbell.
struct Echo {
    targets: u8,
    builds: AtomicU32,
}
// SAFETY: an integer and an atomic.
unsafe impl Zeroable for Echo {}

struct EchoStartIo {
    registers: Option<Registers>,
    memory: Option<CommonBuffer>,
    slots: [Option<Srb<Echo>>; 4],
}
// SAFETY: `Option`s of NonNull-based handles, `None` when zero.
unsafe impl Zeroable for EchoStartIo {}

struct EchoInterrupt {
    registers: Option<Registers>,
    saved: u32,
    stops: u32,
    restarts: u32,
}
// SAFETY: an `Option<Registers>` (None when zero) and integers.
unsafe impl Zeroable for EchoInterrupt {}

#[derive(Clone, Copy)]
#[repr(C)]
struct Scratch {
    opcode: u32,
    segments: u32,
}
// SAFETY: two u32s.
unsafe impl Zeroable for Scratch {}
// SAFETY: two u32s, no padding.
unsafe impl AnyBitPattern for Scratch {}

const STATUS: u32 = 0x00;
const MASK: u32 = 0x10;
const DOORBELL: u32 = 0x20;

impl Miniport for Echo {
    type StartIoState = EchoStartIo;
    type InterruptState = EchoInterrupt;
    type DpcState = u32;
    type SrbExtension = Scratch;
    const HW_INIT: HwInitData =
        HwInitData { adapter_interface_type: sys::PCIBus, number_of_access_ranges: 2, map_buffers: MapBuffers::None };

    fn hw_find_adapter<'a>(
        &mut self,
        state: States<'_, Self>,
        ctx: &mut FindAdapterCtx<'a, Self>,
    ) -> Result<TransferLimits<'a>, FindAdapterError> {
        let range = ctx.config().access_ranges().find(AccessRange::in_memory).ok_or(FindAdapterError::NotFound)?;
        let registers = ctx.map_registers(&range).ok_or(FindAdapterError::Error)?;
        let limits = ctx.set_transfer_limits(0x1_0000, 17);
        let memory = ctx.uncached_extension(&limits, 4096).ok_or(FindAdapterError::Error)?;
        ctx.config().set_maximum_targets(8);
        self.targets = 8;
        state.start_io.registers = Some(registers);
        state.start_io.memory = Some(memory);
        state.interrupt.registers = Some(registers);
        Ok(limits)
    }

    fn hw_initialize(&self, interrupt: &mut EchoInterrupt, _: &mut InitializeCtx<'_, Self>) -> bool {
        interrupt.registers.is_some_and(|r| r.write_u32(MASK, 1))
    }

    fn hw_build_io<'a>(&self, ctx: &mut BuildIoCtx<'a, Self>, mut srb: Srb<Self>) -> BuildIo<'a, Self> {
        let opcode = srb.cdb().first().copied().unwrap_or(0);
        if opcode == 0x00 {
            // TEST UNIT READY: answered here, never started.
            return BuildIo::Completed(ctx.complete(srb, SrbStatus::Success));
        }
        let segments = ctx.scatter_gather_list(&srb).map_or(0, |list| list.len());
        if let Some(scratch) = srb.extension() {
            *scratch = Scratch { opcode: u32::from(opcode), segments: u32::try_from(segments).unwrap_or(0) };
        }
        self.builds.fetch_add(1, Ordering::Relaxed);
        BuildIo::StartIo(srb)
    }

    fn hw_start_io(&self, state: &mut EchoStartIo, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        let Some(slot) = state.slots.iter_mut().find(|slot| slot.is_none()) else {
            return ctx.complete(srb, SrbStatus::Busy);
        };
        *slot = Some(srb);
        if let Some(registers) = state.registers {
            registers.write_u32(DOORBELL, 1);
        }
        ctx.request_timer(500_000);
    }

    fn hw_interrupt(&self, interrupt: &mut EchoInterrupt, ctx: &mut InterruptCtx<'_, Self>) -> bool {
        let Some(registers) = interrupt.registers else { return false };
        let status = registers.read_u32(STATUS);
        if status == 0 {
            return false;
        }
        registers.write_u32(STATUS, status);
        interrupt.saved |= status;
        ctx.issue_dpc();
        true
    }

    fn hw_dpc(&self, runs: &mut u32, ctx: &mut DpcCtx<'_, Self>) {
        *runs += 1;
        let saved = ctx.synchronize(|interrupt, _| core::mem::take(&mut interrupt.saved)).unwrap_or(0);
        if saved != 0 {
            ctx.with_start_io_lock(|state, locked| {
                for slot in &mut state.slots {
                    if let Some(srb) = slot.take() {
                        locked.complete(srb, SrbStatus::Success);
                    }
                }
            });
        }
    }

    fn hw_reset_bus(&self, state: &mut EchoStartIo, ctx: &mut ResetBusCtx<'_, Self>, _: u8) -> bool {
        for slot in &mut state.slots {
            if let Some(srb) = slot.take() {
                ctx.complete(srb, SrbStatus::BusReset);
            }
        }
        true
    }

    fn hw_timer(&self, state: &mut EchoStartIo, ctx: &mut TimerCtx<'_, Self>) {
        for slot in &mut state.slots {
            if let Some(srb) = slot.take() {
                ctx.complete(srb, SrbStatus::Timeout);
            }
        }
    }

    fn hw_adapter_control(&self, interrupt: &mut EchoInterrupt, _: &mut AdapterControlCtx<'_, Self>, control: AdapterControl) {
        let registers = interrupt.registers;
        match control {
            AdapterControl::Stop => {
                interrupt.stops += 1;
                registers.map(|r| r.write_u32(MASK, 0));
            }
            AdapterControl::Restart => {
                interrupt.restarts += 1;
                registers.map(|r| r.write_u32(MASK, 1));
            }
        }
    }
}

/// A found Echo adapter: its device extension, fake registers and uncached memory.
struct Adapter {
    memory: FakeExtension,
    registers: Box<[u32; 16]>,
    _uncached: Vec<u64>,
    _ranges: Box<[sys::ACCESS_RANGE; 2]>,
}

impl Adapter {
    fn found() -> Self {
        let mut registers = Box::new([0u32; 16]);
        let mut uncached = vec![0u64; 512];
        answer(&mut registers, &mut uncached);
        let mut ranges = Box::new([
            sys::ACCESS_RANGE { RangeStart: sys::LARGE_INTEGER { QuadPart: 0xC000 }, RangeLength: 8, RangeInMemory: 0 },
            sys::ACCESS_RANGE { RangeStart: sys::LARGE_INTEGER { QuadPart: 0xFEBF_0000 }, RangeLength: 64, RangeInMemory: 1 },
        ]);
        let mut raw = config();
        raw.AccessRanges = ranges.as_mut_ptr();
        raw.NumberOfAccessRanges = 2;
        let mut memory = FakeExtension::new::<Echo>();
        let extension = memory.get::<Echo>().as_raw();
        let argument = c"dump=0";
        // SAFETY: the extension, ConfigInfo and argument string are valid for the call.
        let found = unsafe {
            trampolines::hw_find_adapter::<Echo>(
                extension,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                argument.as_ptr().cast_mut(),
                &raw mut raw,
                core::ptr::null_mut(),
            )
        };
        assert_eq!(found, sys::SP_RETURN_FOUND);
        // Full duplex and the limits, which HwStorFindAdapter had to set, are in ConfigInfo.
        assert_eq!(raw.SynchronizationModel, stor::StorSynchronizeFullDuplex);
        assert_eq!((raw.MaximumTransferLength, raw.NumberOfPhysicalBreaks), (0x1_0000, 17));
        assert_eq!(raw.MaximumNumberOfTargets, 8);
        let calls = fake_port::take();
        assert!(calls.contains(&Call::GetDeviceBase(0xFEBF_0000, 64, sys::FALSE)), "{calls:?}");
        assert!(calls.contains(&Call::GetUncachedExtension(4096)));
        Self { memory, registers, _uncached: uncached, _ranges: ranges }
    }

    fn raw(&mut self) -> *mut c_void {
        self.memory.get::<Echo>().as_raw()
    }

    fn extension(&mut self) -> &Extension<Echo> {
        self.memory.get::<Echo>()
    }

    /// `HwStorInitialize`, then the passive routine Storport was asked to call, with no interrupt
    /// in between; returns the routine `StorPortInitializeDpc` got.
    fn initialize(&mut self) -> stor::HW_DPC_ROUTINE {
        let raw = self.raw();
        // SAFETY: the found adapter's extension.
        assert_eq!(unsafe { trampolines::hw_initialize::<Echo>(raw) }, sys::TRUE);
        assert_eq!(self.registers[MASK as usize / 4], 1, "unmasked by HwStorInitialize");
        let calls = notifications(&fake_port::take());
        let [(stor::EnablePassiveInitialization, [routine, _, _, _])] = calls[..] else { panic!("{calls:?}") };
        // SAFETY: the routine the wrapper registered: a HW_PASSIVE_INITIALIZE_ROUTINE.
        let routine: stor::HW_PASSIVE_INITIALIZE_ROUTINE = unsafe { core::mem::transmute(routine) };
        // SAFETY: Storport calls it with the extension, at PASSIVE_LEVEL.
        assert_eq!(unsafe { routine(raw) }, sys::TRUE);
        let calls = notifications(&fake_port::take());
        let [(stor::InitializeDpc, [dpc, routine, _, _])] = calls[..] else { panic!("{calls:?}") };
        assert_eq!(dpc, raw as usize, "the DPC object is the first thing in the extension");
        // SAFETY: the routine the wrapper registered: a HW_DPC_ROUTINE.
        unsafe { core::mem::transmute::<usize, stor::HW_DPC_ROUTINE>(routine) }
    }
}

fn answer(registers: &mut [u32; 16], uncached: &mut [u64]) {
    fake_port::answer(Answers {
        uncached: (uncached.as_mut_ptr() as usize, 0x7_0000),
        device_base: registers.as_mut_ptr() as usize,
        scatter_gather: 0,
        contiguous: 4096,
    });
}

#[allow(clippy::unnecessary_box_returns)] // the port's requests do not move
fn srb(opcode: u8) -> Box<sys::SCSI_REQUEST_BLOCK> {
    let mut raw = Box::new(blank_srb());
    raw.Function = sys::SRB_FUNCTION_EXECUTE_SCSI;
    raw.CdbLength = 6;
    raw.Cdb[0] = opcode;
    raw
}

fn completions(calls: &[Call]) -> Vec<usize> {
    notifications(calls).into_iter().filter(|(kind, _)| *kind == stor::RequestComplete).map(|(_, a)| a[0]).collect()
}

#[test]
fn find_adapter_refuses_a_configuration_older_than_windows_8() {
    let mut memory = FakeExtension::new::<Echo>();
    let extension = memory.get::<Echo>().as_raw();
    let mut raw = config();
    raw.Length = 152; // srb.h's size: no Storport tail
    // SAFETY: valid arguments; the ConfigInfo is shorter than the wrapper's structure.
    let found = unsafe {
        trampolines::hw_find_adapter::<Echo>(
            extension,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            &raw mut raw,
            core::ptr::null_mut(),
        )
    };
    assert_eq!(found, sys::SP_RETURN_BAD_CONFIG);
    assert_eq!(raw.SynchronizationModel, stor::StorSynchronizeHalfDuplex, "nothing past Length touched");
    // No memory range: the miniport's NotFound comes through.
    let mut raw = config();
    // SAFETY: as above.
    let found = unsafe {
        trampolines::hw_find_adapter::<Echo>(
            extension,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            &raw mut raw,
            core::ptr::null_mut(),
        )
    };
    assert_eq!(found, sys::SP_RETURN_NOT_FOUND);
}

#[test]
fn uncached_extension_never_grows_past_the_first_allocation() {
    let mut registers = [0u32; 16];
    let mut uncached = vec![0u64; 1024];
    answer(&mut registers, &mut uncached);
    let mut memory = FakeExtension::new::<Echo>();
    let extension = memory.get::<Echo>();
    let mut raw = config();
    let mut ctx = FindAdapterCtx::<Echo>::new(extension, &mut raw, None);
    let limits = ctx.set_transfer_limits(4096, 16);
    let buffer = ctx.uncached_extension(&limits, 4096).unwrap();
    assert_eq!((buffer.pa(), buffer.len()), (0x7_0000, 4096));
    assert!(ctx.uncached_extension(&limits, 0).is_none());
    // A later HwStorFindAdapter (a Plug and Play restart) gets the same buffer back from
    // Storport: never a longer view of it.
    assert!(ctx.uncached_extension(&limits, 8192).is_none());
    assert_eq!(ctx.uncached_extension(&limits, 2048).map(|b| b.len()), Some(2048));
    // A different buffer than the first: refused.
    let mut other = vec![0u64; 1024];
    answer(&mut registers, &mut other);
    assert!(ctx.uncached_extension(&limits, 1024).is_none());
    // A buffer Storport says is not contiguous: refused.
    let mut fresh = FakeExtension::new::<Echo>();
    let mut raw = config();
    let mut ctx = FindAdapterCtx::<Echo>::new(fresh.get::<Echo>(), &mut raw, None);
    let limits = ctx.set_transfer_limits(4096, 16);
    assert!(ctx.uncached_extension(&limits, 8192).is_none(), "contiguous is 4096");
}

#[test]
fn build_io_starts_completes_or_refuses() {
    let mut adapter = Adapter::found();
    let raw = adapter.raw();
    // A READ with a two-element list: prepared in the SRB extension, passed on (TRUE).
    let mut list = super::ThreeElements {
        number_of_elements: 2,
        reserved: 0,
        list: [stor::STOR_SCATTER_GATHER_ELEMENT::default(); 3],
    };
    let mut registers = [0u32; 16];
    let mut uncached = vec![0u64; 8];
    fake_port::answer(Answers {
        uncached: (uncached.as_mut_ptr() as usize, 0),
        device_base: registers.as_mut_ptr() as usize,
        scatter_gather: (&raw mut list) as usize,
        contiguous: 0,
    });
    let mut scratch = Scratch { opcode: 0xFFFF, segments: 0xFFFF };
    let mut read = srb(0x28);
    read.SrbExtension = (&raw mut scratch).cast();
    // SAFETY: a request block and the found adapter's extension.
    assert_eq!(unsafe { trampolines::hw_build_io::<Echo>(raw, &raw mut *read) }, sys::TRUE);
    assert_eq!((scratch.opcode, scratch.segments), (0x28, 2));
    assert!(completions(&fake_port::take()).is_empty());
    // TEST UNIT READY: completed in HwStorBuildIo, which then returns FALSE.
    let mut tur = srb(0x00);
    // SAFETY: as above.
    assert_eq!(unsafe { trampolines::hw_build_io::<Echo>(raw, &raw mut *tur) }, sys::FALSE);
    assert_eq!(completions(&fake_port::take()), [(&raw mut *tur) as usize]);
    assert_eq!(tur.SrbStatus, sys::SRB_STATUS_SUCCESS);
    // A STORAGE_REQUEST_BLOCK, which the wrapper did not ask for: refused before the miniport.
    let mut extended = srb(0x28);
    extended.Function = sys::SRB_FUNCTION_STORAGE_REQUEST_BLOCK;
    // SAFETY: as above.
    assert_eq!(unsafe { trampolines::hw_build_io::<Echo>(raw, &raw mut *extended) }, sys::FALSE);
    assert_eq!(completions(&fake_port::take()), [(&raw mut *extended) as usize]);
    assert_eq!(extended.SrbStatus, sys::SRB_STATUS_INVALID_REQUEST);
    // SAFETY: as above; HwStorStartIo too.
    assert_eq!(unsafe { trampolines::hw_start_io::<Echo>(raw, &raw mut *extended) }, sys::TRUE);
    assert_eq!(completions(&fake_port::take()), [(&raw mut *extended) as usize]);
    // SAFETY: not in HwStorFindAdapter.
    assert_eq!(unsafe { adapter.extension().miniport() }.builds.load(Ordering::Relaxed), 1);
}

#[test]
fn interrupt_defers_to_the_dpc_which_completes_under_the_start_io_lock() {
    let mut adapter = Adapter::found();
    let raw = adapter.raw();
    let mut first = srb(0x28);
    let mut second = srb(0x2A);
    // SAFETY: request blocks and the found adapter's extension.
    unsafe {
        trampolines::hw_start_io::<Echo>(raw, &raw mut *first);
    }
    // SAFETY: as above.
    unsafe {
        trampolines::hw_start_io::<Echo>(raw, &raw mut *second);
    }
    let calls = fake_port::take();
    assert!(completions(&calls).is_empty(), "kept by HwStorStartIo");
    assert!(calls.contains(&Call::Register("StorPortWriteRegisterUlong", DOORBELL as usize, 1)));
    // An interrupt of another device on the line: not claimed.
    // SAFETY: as above.
    assert_eq!(unsafe { trampolines::hw_interrupt::<Echo>(raw) }, sys::FALSE);
    // The HBA's own, before the DPC exists (between HwStorInitialize and the passive routine):
    // claimed and acknowledged, the DPC remembered, not queued.
    adapter.registers[0] = 1;
    // SAFETY: as above.
    assert_eq!(unsafe { trampolines::hw_interrupt::<Echo>(raw) }, sys::TRUE);
    assert_eq!(adapter.registers[0], 1, "write-1 cleared by the miniport (the fake keeps the value)");
    assert!(notifications(&fake_port::take()).iter().all(|(kind, _)| *kind != stor::IssueDpc));
    // Initialisation issues it as soon as the DPC is initialised.
    let dpc = adapter.initialize_keeping_issue();
    // The DPC: the interrupt lock for what the ISR saved, then the StartIo lock around the
    // completions, released with the same handle.
    // SAFETY: the DPC routine with the object and extension Storport passes.
    unsafe { dpc(raw.cast(), raw, core::ptr::null_mut(), core::ptr::null_mut()) };
    let calls = fake_port::take();
    let sync = calls.iter().position(|c| *c == Call::SyncEnter).unwrap();
    assert_eq!(calls[sync + 1], Call::SyncExit);
    let events = notifications(&calls[sync + 2..]);
    let (stor::AcquireSpinLock, [lock, context, handle, _]) = events[0] else { panic!("{events:?}") };
    assert_eq!((lock, context), (stor::StartIoLock as usize, 0));
    assert_eq!(events[1], (stor::RequestComplete, [(&raw mut *first) as usize, 0, 0, 0]));
    assert_eq!(events[2], (stor::RequestComplete, [(&raw mut *second) as usize, 0, 0, 0]));
    assert_eq!(events[3], (stor::ReleaseSpinLock, [handle, 0, 0, 0]));
    assert_eq!(events.len(), 4);
    assert_eq!((first.SrbStatus, second.SrbStatus), (sys::SRB_STATUS_SUCCESS, sys::SRB_STATUS_SUCCESS));
    // A second instance while one runs (which Storport promises not to do) re-queues the DPC
    // instead of touching the DPC state.
    let extension = adapter.extension();
    let guard = extension.try_dpc_state().unwrap();
    // SAFETY: as above.
    unsafe { dpc(raw.cast(), raw, core::ptr::null_mut(), core::ptr::null_mut()) };
    drop(guard);
    let calls = notifications(&fake_port::take());
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, stor::IssueDpc);
    let mut guard = adapter.extension().try_dpc_state().unwrap();
    assert_eq!(*guard.state(), 1, "the DPC ran once");
}

impl Adapter {
    /// [`Adapter::initialize`], checking that the remembered DPC is issued right after
    /// `StorPortInitializeDpc`.
    fn initialize_keeping_issue(&mut self) -> stor::HW_DPC_ROUTINE {
        let raw = self.raw();
        // SAFETY: the found adapter's extension.
        assert_eq!(unsafe { trampolines::hw_initialize::<Echo>(raw) }, sys::TRUE);
        let calls = notifications(&fake_port::take());
        let [(stor::EnablePassiveInitialization, [routine, _, _, _])] = calls[..] else { panic!("{calls:?}") };
        // SAFETY: the routine the wrapper registered: a HW_PASSIVE_INITIALIZE_ROUTINE.
        let routine: stor::HW_PASSIVE_INITIALIZE_ROUTINE = unsafe { core::mem::transmute(routine) };
        // SAFETY: Storport calls it with the extension, at PASSIVE_LEVEL.
        assert_eq!(unsafe { routine(raw) }, sys::TRUE);
        let calls = notifications(&fake_port::take());
        let [(stor::InitializeDpc, [dpc, routine, _, _]), (stor::IssueDpc, [issued, _, _, _])] = calls[..] else {
            panic!("{calls:?}")
        };
        assert_eq!((dpc, issued), (raw as usize, raw as usize));
        // SAFETY: the routine the wrapper registered: a HW_DPC_ROUTINE.
        unsafe { core::mem::transmute::<usize, stor::HW_DPC_ROUTINE>(routine) }
    }
}

#[test]
fn issue_dpc_after_initialisation_queues_it_at_once() {
    let mut adapter = Adapter::found();
    let raw = adapter.raw();
    let _dpc = adapter.initialize();
    adapter.registers[0] = 1;
    // SAFETY: the found adapter's extension.
    assert_eq!(unsafe { trampolines::hw_interrupt::<Echo>(raw) }, sys::TRUE);
    let calls = fake_port::take();
    assert!(calls.contains(&Call::Register("StorPortReadRegisterUlong", 0, 1)));
    assert!(calls.contains(&Call::Register("StorPortWriteRegisterUlong", 0, 1)), "acknowledged");
    let issued = notifications(&calls);
    let [(stor::IssueDpc, [dpc, argument1, argument2, _result])] = issued[..] else { panic!("{issued:?}") };
    assert_eq!((dpc, argument1, argument2), (raw as usize, 0, 0));
}

#[test]
fn a_restart_does_not_queue_the_dpc_object_while_it_is_reinitialised() {
    let mut adapter = Adapter::found();
    let raw = adapter.raw();
    let _dpc = adapter.initialize();
    // A Plug and Play stop and start: HwStorInitialize again, and an interrupt before the
    // passive routine re-initialises the DPC object. The request is remembered, not queued.
    // SAFETY: the found adapter's extension.
    assert_eq!(unsafe { trampolines::hw_initialize::<Echo>(raw) }, sys::TRUE);
    let calls = notifications(&fake_port::take());
    let [(stor::EnablePassiveInitialization, [routine, _, _, _])] = calls[..] else { panic!("{calls:?}") };
    adapter.registers[0] = 1;
    // SAFETY: as above.
    assert_eq!(unsafe { trampolines::hw_interrupt::<Echo>(raw) }, sys::TRUE);
    assert!(notifications(&fake_port::take()).iter().all(|(kind, _)| *kind != stor::IssueDpc));
    // SAFETY: the routine the wrapper registered: a HW_PASSIVE_INITIALIZE_ROUTINE.
    let routine: stor::HW_PASSIVE_INITIALIZE_ROUTINE = unsafe { core::mem::transmute(routine) };
    // SAFETY: Storport calls it with the extension, at PASSIVE_LEVEL.
    assert_eq!(unsafe { routine(raw) }, sys::TRUE);
    let kinds: Vec<i32> = notifications(&fake_port::take()).into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(kinds, [stor::InitializeDpc, stor::IssueDpc]);
}

#[test]
fn reset_bus_and_timer_complete_what_start_io_holds() {
    let mut adapter = Adapter::found();
    let raw = adapter.raw();
    let mut requests: Vec<Box<sys::SCSI_REQUEST_BLOCK>> = (0..5).map(|_| srb(0x28)).collect();
    for request in &mut requests {
        // SAFETY: request blocks and the found adapter's extension.
        unsafe { trampolines::hw_start_io::<Echo>(raw, &raw mut **request) };
    }
    let calls = fake_port::take();
    // Four slots: the fifth is turned away with BUSY.
    assert_eq!(completions(&calls), [(&raw mut *requests[4]) as usize]);
    assert_eq!(requests[4].SrbStatus, sys::SRB_STATUS_BUSY);
    // Each start asked for the timer, with the wrapper's HwStorTimer.
    let timers: Vec<[usize; 4]> =
        notifications(&calls).into_iter().filter(|(kind, _)| *kind == stor::RequestTimerCall).map(|(_, a)| a).collect();
    assert_eq!(timers.len(), 4);
    assert!(timers.iter().all(|a| a[0] == trampolines::hw_timer::<Echo> as *const () as usize && a[1] == 500_000));
    // HwStorResetBus completes all four with BUS_RESET; a PathId past 255 is refused.
    // SAFETY: the found adapter's extension.
    assert_eq!(unsafe { trampolines::hw_reset_bus::<Echo>(raw, 0) }, sys::TRUE);
    assert_eq!(completions(&fake_port::take()).len(), 4);
    assert!(requests[..4].iter().all(|r| r.SrbStatus == sys::SRB_STATUS_BUS_RESET));
    // SAFETY: as above.
    assert_eq!(unsafe { trampolines::hw_reset_bus::<Echo>(raw, 300) }, sys::FALSE);
    // HwStorTimer: what is outstanding then times out.
    let mut late = srb(0x28);
    // SAFETY: as above.
    unsafe { trampolines::hw_start_io::<Echo>(raw, &raw mut *late) };
    fake_port::take();
    // SAFETY: as above.
    unsafe { trampolines::hw_timer::<Echo>(raw) };
    assert_eq!(completions(&fake_port::take()), [(&raw mut *late) as usize]);
    assert_eq!(late.SrbStatus, sys::SRB_STATUS_TIMEOUT);
}

#[test]
fn adapter_control_answers_the_query_and_passes_stop_and_restart() {
    let mut adapter = Adapter::found();
    let raw = adapter.raw();
    let mut list = super::ControlList::<24> { max: 24, entries: [0; 24] };
    // SAFETY: the query with the port's list.
    let status =
        unsafe { trampolines::hw_adapter_control::<Echo>(raw, sys::ScsiQuerySupportedControlTypes, (&raw mut list).cast()) };
    assert_eq!(status, sys::ScsiAdapterControlSuccess);
    assert_eq!(list.entries[..4], [1, 1, 1, 0]);
    assert!(list.entries[3..].iter().all(|e| *e == 0));
    // SAFETY: stop and restart take no parameters.
    let stop = unsafe { trampolines::hw_adapter_control::<Echo>(raw, sys::ScsiStopAdapter, core::ptr::null_mut()) };
    assert_eq!(stop, sys::ScsiAdapterControlSuccess);
    assert_eq!(adapter.registers[MASK as usize / 4], 0, "masked at stop");
    // SAFETY: as above.
    let restart = unsafe { trampolines::hw_adapter_control::<Echo>(raw, sys::ScsiRestartAdapter, core::ptr::null_mut()) };
    // A type not reported: success, and the miniport is not called.
    // SAFETY: as above.
    let boot = unsafe { trampolines::hw_adapter_control::<Echo>(raw, sys::ScsiSetBootConfig, core::ptr::null_mut()) };
    assert_eq!((restart, boot), (sys::ScsiAdapterControlSuccess, sys::ScsiAdapterControlSuccess));
    assert_eq!(adapter.registers[MASK as usize / 4], 1, "unmasked at restart");
    // SAFETY: the test holds no other reference into the extension.
    let (_, _, interrupt, _) = unsafe { adapter.extension().all() };
    assert_eq!((interrupt.stops, interrupt.restarts), (1, 1));
}

#[test]
fn port_services_reach_storport() {
    let mut adapter = Adapter::found();
    let extension = adapter.extension();
    let mut ctx = DpcCtx::<Echo>::new(extension);
    ctx.stall(20);
    assert!(ctx.pause(3) && ctx.resume() && ctx.busy(2) && ctx.ready());
    ctx.log_error(None, LuAddress::default(), sys::SP_INTERNAL_ADAPTER_ERROR, 7);
    ctx.reset_detected();
    ctx.bus_change_detected(0);
    assert_eq!(ctx.synchronize(|interrupt, _| interrupt.stops + 40), Some(40));
    let calls = fake_port::take();
    assert_eq!(
        calls,
        [
            Call::Stall(20),
            Call::Queue("pause", 3),
            Call::Queue("resume", 0),
            Call::Queue("busy", 2),
            Call::Queue("ready", 0),
            Call::LogError(sys::SP_INTERNAL_ADAPTER_ERROR, 7),
            Call::Notification(stor::ResetDetected, [0; 4]),
            Call::Notification(stor::BusChangeDetected, [0; 4]),
            Call::SyncEnter,
            Call::SyncExit,
        ]
    );
    // The SRB extension and the sense buffer by bus address, when contiguous enough.
    let mut sense = [0u8; 32];
    let mut scratch = Scratch { opcode: 0, segments: 0 };
    let mut request = srb(0x28);
    request.SrbExtension = (&raw mut scratch).cast();
    request.SenseInfoBuffer = sense.as_mut_ptr().cast();
    request.SenseInfoBufferLength = 32;
    // SAFETY: the test owns the request block.
    let handle = unsafe { Srb::<Echo>::from_raw(core::ptr::NonNull::from(&mut *request)) };
    assert!(ctx.srb_extension_physical_address(&handle).is_some(), "4096 contiguous >= 8");
    assert!(ctx.sense_physical_address(&handle).is_some());
    let mut registers = [0u32; 16];
    let mut uncached = vec![0u64; 8];
    fake_port::answer(Answers {
        uncached: (uncached.as_mut_ptr() as usize, 0),
        device_base: registers.as_mut_ptr() as usize,
        scatter_gather: 0,
        contiguous: 4,
    });
    assert!(ctx.srb_extension_physical_address(&handle).is_none(), "4 bytes contiguous < 8");
    assert!(ctx.sense_physical_address(&handle).is_none());
    let _ = handle.into_raw();
}

#[test]
fn registers_go_through_the_storport_accessors() {
    let mut window = Box::new([0u32; 4]);
    let base = window.as_mut_ptr() as usize;
    let mut uncached = [0u64; 1];
    fake_port::answer(Answers {
        uncached: (uncached.as_mut_ptr() as usize, 0),
        device_base: base,
        scatter_gather: 0,
        contiguous: 0,
    });
    let base = core::ptr::NonNull::new(base as *mut u8).unwrap();
    // SAFETY: `window` stands in for a 16-byte mapped range and outlives both handles.
    let memory = unsafe { Registers::new(core::ptr::null_mut(), base, 16, Space::Memory) };
    // SAFETY: as above.
    let ports = unsafe { Registers::new(core::ptr::null_mut(), base, 16, Space::Io) };
    assert!(memory.write_u32(4, 0xAABB_CCDD));
    assert_eq!(memory.read_u32(4), 0xAABB_CCDD);
    assert!(memory.write_u8(8, 0x5A));
    assert_eq!(memory.read_u16(8), 0x005A);
    assert!(ports.write_u16(12, 0x1234));
    assert_eq!(ports.read_u8(12), 0x34);
    // Outside the mapping or misaligned: refused without an access.
    assert!(!memory.write_u32(16, 1) && !memory.write_u32(2, 1));
    assert_eq!(memory.read_u32(14), u32::MAX);
    assert_eq!(
        fake_port::take(),
        [
            Call::Register("StorPortWriteRegisterUlong", 4, 0xAABB_CCDD),
            Call::Register("StorPortReadRegisterUlong", 4, 0xAABB_CCDD),
            Call::Register("StorPortWriteRegisterUchar", 8, 0x5A),
            Call::Register("StorPortReadRegisterUshort", 8, 0x5A),
            Call::Register("StorPortWritePortUshort", 12, 0x1234),
            Call::Register("StorPortReadPortUchar", 12, 0x34),
        ]
    );
    assert_eq!(window[1], 0xAABB_CCDD);
}
