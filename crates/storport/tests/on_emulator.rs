//! The wrapper against a port: a small miniport on the Storport emulator (`scsiport-sim` with
//! `Port::Storport`), its verifier on, in both schedules. The device is an "echo" HBA defined
//! here — a doorbell register raises the interrupt line, a status register acknowledges it — so
//! that every routine of the wrapper runs the way Storport runs it: `HwStorFindAdapter` alone,
//! `HwStorInitialize` and the passive routine (where the wrapper initialises the DPC),
//! `HwStorBuildIo` without a lock (completing some requests itself), `HwStorStartIo` under the
//! StartIo lock, the ISR under the interrupt lock deferring to the DPC, the DPC taking the
//! interrupt lock (`synchronize`) and then the StartIo lock around its completions, the timer,
//! the port's bus reset, stop/restart and a Plug and Play restart; the port services (the
//! scatter/gather list, physical addresses, the uncached extension, error logging, the queue
//! controls, stalls, debug output) and the register and port accessors. The emulator's verifier
//! checks every call against Storport's rules, so a clean run is the assertion that the
//! wrapper keeps them.
#![cfg(target_os = "linux")]
#![allow(clippy::cast_possible_truncation)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use scsiport_sim::hba::{Bar, BarKind, Hba, PciIdentity, Waker};
use scsiport_sim::mem::SimDma;
use scsiport_sim::{Direction, Machine, Port as SimPort, PortConfig, Request, Schedule, VerifierConfig};
use storport::sys;
use storport::*;

// ---------------------------------------------------------------------------------------------
// The echo HBA
// ---------------------------------------------------------------------------------------------

/// Register 0x00: interrupt status (write 1s to clear); 0x10: interrupt mask (1 = enabled);
/// 0x20: doorbell (a write sets status bit 0). The line is high while status & mask.
const STATUS: u32 = 0x00;
const MASK: u32 = 0x10;
const DOORBELL: u32 = 0x20;
const SCRATCH: u32 = 0x30;
const MEM_BASE: u64 = 0xFEBF_0000;
const IO_BASE: u64 = 0xC000;

#[derive(Default)]
struct EchoHba {
    status: AtomicU32,
    mask: AtomicU32,
    scratch: AtomicU32,
    io: Mutex<[u8; 8]>,
    waker: Mutex<Option<Waker>>,
}

impl EchoHba {
    fn wake(&self) {
        let w = self.waker.lock().unwrap().clone();
        if let Some(w) = w {
            w();
        }
    }
}

impl Hba for EchoHba {
    fn identity(&self) -> PciIdentity {
        PciIdentity { vendor_id: 0x15AD, device_id: 0x07C0, subsystem_vendor_id: 0x15AD, subsystem_id: 0x07C0, revision: 2, class_code: 0x01_0000 }
    }
    fn bars(&self) -> Vec<Bar> {
        vec![Bar { index: 0, kind: BarKind::Io, base: IO_BASE, len: 8 }, Bar { index: 1, kind: BarKind::Memory, base: MEM_BASE, len: 0x1000 }]
    }
    fn config_read(&self, offset: u32, buf: &mut [u8]) -> usize {
        let n = buf.len().min(256usize.saturating_sub(offset as usize));
        buf[..n].fill(0);
        n
    }
    fn config_write(&self, _offset: u32, data: &[u8]) -> usize {
        data.len()
    }
    fn read(&self, bar: u8, offset: u64, _size: u8) -> u32 {
        if bar == 0 {
            return u32::from(self.io.lock().unwrap()[offset as usize % 8]);
        }
        match offset as u32 {
            STATUS => self.status.load(Ordering::SeqCst),
            MASK => self.mask.load(Ordering::SeqCst),
            SCRATCH => self.scratch.load(Ordering::SeqCst),
            _ => 0,
        }
    }
    fn write(&self, bar: u8, offset: u64, _size: u8, value: u32) {
        if bar == 0 {
            self.io.lock().unwrap()[offset as usize % 8] = value as u8;
            return;
        }
        match offset as u32 {
            STATUS => {
                self.status.fetch_and(!value, Ordering::SeqCst);
            }
            MASK => {
                self.mask.store(value, Ordering::SeqCst);
                self.wake();
            }
            DOORBELL => {
                self.status.fetch_or(1, Ordering::SeqCst);
                self.wake();
            }
            SCRATCH => self.scratch.store(value, Ordering::SeqCst),
            _ => {}
        }
    }
    fn irq_asserted(&self) -> bool {
        self.status.load(Ordering::SeqCst) & self.mask.load(Ordering::SeqCst) != 0
    }
    fn next_event_ns(&self) -> Option<u64> {
        None
    }
    fn run_due(&self, _now_ns: u64) -> bool {
        false
    }
    fn set_waker(&self, waker: Waker) {
        *self.waker.lock().unwrap() = Some(waker);
    }
    fn interrupts_unmasked(&self) -> Option<bool> {
        Some(self.mask.load(Ordering::SeqCst) != 0)
    }
}

// ---------------------------------------------------------------------------------------------
// The miniport
// ---------------------------------------------------------------------------------------------

/// Vendor opcodes of this test: finished by `HwStorTimer`; held until a bus reset; the queue
/// controls.
const OP_TIMER: u8 = 0xC0;
const OP_HOLD: u8 = 0xC1;
const OP_QUEUE: u8 = 0xC2;

/// What the test reads back. The tests take `SERIAL` so that one machine runs at a time.
static SERIAL: Mutex<()> = Mutex::new(());
static FIND_ADAPTER_CALLS: AtomicU32 = AtomicU32::new(0);
static UNCACHED_RULES_HELD: AtomicBool = AtomicBool::new(false);
static IO_PORT_ECHO: AtomicBool = AtomicBool::new(false);
static PASSIVE_CALLS: AtomicU32 = AtomicU32::new(0);
static SEGMENTS_MATCH: AtomicU32 = AtomicU32::new(0);
static EXTENSION_PA: AtomicU32 = AtomicU32::new(0);
static SENSE_PA: AtomicU32 = AtomicU32::new(0);
static DPC_RUNS: AtomicU32 = AtomicU32::new(0);
static TIMER_COMPLETIONS: AtomicU32 = AtomicU32::new(0);
static QUEUE_CONTROLS_OK: AtomicU32 = AtomicU32::new(0);
static HELD: AtomicU32 = AtomicU32::new(0);
static STOPS: AtomicU32 = AtomicU32::new(0);
static RESTARTS: AtomicU32 = AtomicU32::new(0);
/// The DPC routine lingers after its completions (a DPC still finishing as the adapter stops).
static SLOW_DPC: AtomicBool = AtomicBool::new(false);
/// An instance of the DPC routine is running.
static DPC_ACTIVE: AtomicBool = AtomicBool::new(false);
/// `HwStorFindAdapter` ran while a DPC routine was running.
static FIND_ADAPTER_DURING_DPC: AtomicBool = AtomicBool::new(false);

fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for c in [&FIND_ADAPTER_CALLS, &PASSIVE_CALLS, &SEGMENTS_MATCH, &EXTENSION_PA, &SENSE_PA, &DPC_RUNS, &TIMER_COMPLETIONS, &QUEUE_CONTROLS_OK, &HELD, &STOPS, &RESTARTS] {
        c.store(0, Ordering::SeqCst);
    }
    for f in [&UNCACHED_RULES_HELD, &IO_PORT_ECHO, &SLOW_DPC, &DPC_ACTIVE, &FIND_ADAPTER_DURING_DPC] {
        f.store(false, Ordering::SeqCst);
    }
    guard
}

/// Configuration, decided in `HwStorFindAdapter`, read by every routine.
struct Echo {
    targets: u8,
}
// SAFETY: an integer.
unsafe impl Zeroable for Echo {}

const SLOTS: usize = 32;

struct EchoStartIo {
    registers: Option<Registers>,
    memory: Option<CommonBuffer>,
    slots: [Option<Srb<Echo>>; SLOTS],
    held: [Option<Srb<Echo>>; 4],
    timed: Option<Srb<Echo>>,
}
// SAFETY: `Option`s of NonNull-based handles, `None` when zero.
unsafe impl Zeroable for EchoStartIo {}

struct EchoInterrupt {
    registers: Option<Registers>,
    saved: u32,
}
// SAFETY: an `Option<Registers>` (None when zero) and an integer.
unsafe impl Zeroable for EchoInterrupt {}

/// Per request, prepared in `HwStorBuildIo`.
#[derive(Clone, Copy)]
#[repr(C)]
struct Scratch {
    opcode: u32,
    segments: u32,
    fill: u32,
}
// SAFETY: three u32s.
unsafe impl Zeroable for Scratch {}
// SAFETY: three u32s, no padding.
unsafe impl AnyBitPattern for Scratch {}

impl Echo {
    /// The DPC's work: the completions the ISR saved.
    fn dpc(runs: &mut u32, ctx: &mut DpcCtx<'_, Self>) {
        *runs += 1;
        DPC_RUNS.fetch_add(1, Ordering::SeqCst);
        ctx.stall(1);
        let saved = ctx.synchronize(|interrupt, _| core::mem::take(&mut interrupt.saved)).unwrap_or(0);
        if saved == 0 {
            return;
        }
        ctx.with_start_io_lock(|state, locked| {
            for slot in &mut state.slots {
                if let Some(mut srb) = slot.take() {
                    let fill = srb.extension().map_or(0, |s| s.fill) as u8;
                    let read = srb.cdb().first() == Some(&0x28);
                    if read && let Some(buffer) = srb.data_buffer() {
                        buffer.fill(fill);
                    }
                    locked.complete(srb, SrbStatus::Success);
                }
            }
        });
    }
}

impl Miniport for Echo {
    type StartIoState = EchoStartIo;
    type InterruptState = EchoInterrupt;
    type DpcState = u32;
    type SrbExtension = Scratch;
    const HW_INIT: HwInitData =
        HwInitData { adapter_interface_type: sys::PCIBus, number_of_access_ranges: 2, map_buffers: MapBuffers::AllIncludingReadWrite };

    fn hw_find_adapter<'a>(
        &mut self,
        state: States<'_, Self>,
        ctx: &mut FindAdapterCtx<'a, Self>,
    ) -> Result<TransferLimits<'a>, FindAdapterError> {
        let generation = FIND_ADAPTER_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        if DPC_ACTIVE.load(Ordering::SeqCst) {
            FIND_ADAPTER_DURING_DPC.store(true, Ordering::SeqCst);
        }
        debug_print(1, c"echo: HwStorFindAdapter", u64::from(generation));
        let memory_range = ctx.config().access_ranges().find(AccessRange::in_memory).ok_or(FindAdapterError::NotFound)?;
        let io_range = ctx.config().access_ranges().find(|r| !r.in_memory()).ok_or(FindAdapterError::NotFound)?;
        let registers = ctx.map_registers(&memory_range).ok_or(FindAdapterError::Error)?;
        let ports = ctx.map_registers(&io_range).ok_or(FindAdapterError::Error)?;
        // The I/O range through StorPortWritePortUchar/ReadPortUchar.
        ports.write_u8(3, 0x5A);
        IO_PORT_ECHO.store(ports.read_u8(3) == 0x5A && ports.space() == Space::Io, Ordering::SeqCst);
        let limits = ctx.set_transfer_limits(0x2_0000, 33);
        // The uncached extension: 4096 bytes; never a longer view of it (also on the Plug and Play
        // restart, when Storport returns the same buffer), never zero bytes; a shorter one is fine.
        let memory = ctx.uncached_extension(&limits, 4096).ok_or(FindAdapterError::Error)?;
        let rules = ctx.uncached_extension(&limits, 8192).is_none()
            && ctx.uncached_extension(&limits, 0).is_none()
            && ctx.uncached_extension(&limits, 2048).is_some_and(|b| b.pa() == memory.pa() && b.len() == 2048);
        UNCACHED_RULES_HELD.store(rules, Ordering::SeqCst);
        let mut config = ctx.config();
        config.set_number_of_buses(1);
        config.set_maximum_targets(2);
        config.set_maximum_logical_units(1);
        config.set_max_ios_per_lun(SLOTS as u32);
        // Storport pauses the adapter this long after a bus reset (the default is 4 s).
        config.set_bus_reset_hold_time(10_000);
        self.targets = 1;
        state.start_io.registers = Some(registers);
        state.start_io.memory = Some(memory);
        state.interrupt.registers = Some(registers);
        Ok(limits)
    }

    fn hw_initialize(&self, interrupt: &mut EchoInterrupt, _: &mut InitializeCtx<'_, Self>) -> bool {
        interrupt.registers.is_some_and(|r| r.write_u32(MASK, 1))
    }

    fn hw_passive_initialize(&self, ctx: &mut PassiveInitializeCtx<'_, Self>) -> bool {
        ctx.stall(10);
        PASSIVE_CALLS.fetch_add(1, Ordering::SeqCst);
        true
    }

    fn hw_build_io<'a>(&self, ctx: &mut BuildIoCtx<'a, Self>, mut srb: Srb<Self>) -> BuildIo<'a, Self> {
        if srb.function() != SrbFunction::ExecuteScsi {
            // LU and device resets of the port's recovery: nothing to do for an echo.
            return BuildIo::StartIo(srb);
        }
        if srb.address().target_id >= self.targets {
            return BuildIo::Completed(ctx.complete(srb, SrbStatus::SelectionTimeout));
        }
        let opcode = srb.cdb().first().copied().unwrap_or(0);
        if opcode == 0x00 {
            // TEST UNIT READY: answered here, never started.
            return BuildIo::Completed(ctx.complete(srb, SrbStatus::Success));
        }
        // The scatter/gather list Storport built covers the transfer exactly.
        let (segments, total) = ctx.scatter_gather_list(&srb).map_or((0, 0), |l| (l.len(), l.total_length()));
        if total == u64::from(srb.data_transfer_length()) {
            SEGMENTS_MATCH.fetch_add(1, Ordering::SeqCst);
        }
        if ctx.srb_extension_physical_address(&srb).is_some() {
            EXTENSION_PA.fetch_add(1, Ordering::SeqCst);
        }
        let fill = srb.cdb().get(5).copied().map_or(0, u32::from) ^ 0xA5;
        if let Some(scratch) = srb.extension() {
            *scratch = Scratch { opcode: u32::from(opcode), segments: segments as u32, fill };
        }
        ctx.stall(2);
        BuildIo::StartIo(srb)
    }

    fn hw_start_io(&self, state: &mut EchoStartIo, ctx: &mut StartIoCtx<'_, Self>, mut srb: Srb<Self>) {
        if srb.function() != SrbFunction::ExecuteScsi {
            return ctx.complete(srb, SrbStatus::Success);
        }
        let scratch = srb.extension().map(|s| *s).expect("an SRB extension");
        match scratch.opcode as u8 {
            // INQUIRY: answered from the mapped data buffer.
            0x12 => {
                let buffer = srb.data_buffer().expect("mapped");
                buffer.fill(0);
                buffer[4] = 31;
                buffer[8..16].copy_from_slice(b"ECHO    ");
                ctx.complete(srb, SrbStatus::Success);
            }
            // READ(10), WRITE(10): to the "device", completed by the DPC after the interrupt.
            0x28 | 0x2A => {
                let Some(slot) = state.slots.iter_mut().find(|s| s.is_none()) else {
                    return ctx.complete(srb, SrbStatus::Busy);
                };
                *slot = Some(srb);
                if let Some(r) = state.registers {
                    r.write_u32(DOORBELL, 1);
                }
            }
            OP_TIMER => {
                if state.timed.is_some() {
                    return ctx.complete(srb, SrbStatus::Busy);
                }
                state.timed = Some(srb);
                ctx.request_timer(1000);
            }
            OP_HOLD => match state.held.iter_mut().find(|s| s.is_none()) {
                Some(slot) => {
                    *slot = Some(srb);
                    HELD.fetch_add(1, Ordering::SeqCst);
                }
                None => ctx.complete(srb, SrbStatus::Busy),
            },
            OP_QUEUE => {
                let ok = ctx.pause(1) && ctx.resume() && ctx.busy(2) && ctx.ready();
                if ok {
                    QUEUE_CONTROLS_OK.fetch_add(1, Ordering::SeqCst);
                }
                ctx.complete(srb, SrbStatus::Success);
            }
            // Anything else: CHECK CONDITION with sense, logged.
            _ => {
                ctx.log_error(Some(&srb), srb.address(), sys::SP_PROTOCOL_ERROR, 0x42);
                if ctx.sense_physical_address(&srb).is_some() {
                    SENSE_PA.fetch_add(1, Ordering::SeqCst);
                }
                srb.set_scsi_status(sys::SCSISTAT_CHECK_CONDITION);
                srb.return_sense(|sense| {
                    sense[0] = 0x70;
                    sense[2] = sys::SCSI_SENSE_ILLEGAL_REQUEST;
                    sense[7] = 10;
                    sense[12] = sys::SCSI_ADSENSE_ILLEGAL_COMMAND;
                    18
                });
                ctx.complete(srb, SrbStatus::Error);
            }
        }
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
        DPC_ACTIVE.store(true, Ordering::SeqCst);
        Self::dpc(runs, ctx);
        if SLOW_DPC.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        DPC_ACTIVE.store(false, Ordering::SeqCst);
    }

    fn hw_reset_bus(&self, state: &mut EchoStartIo, ctx: &mut ResetBusCtx<'_, Self>, _: u8) -> bool {
        for slot in state.slots.iter_mut().chain(state.held.iter_mut()).chain(core::iter::once(&mut state.timed)) {
            if let Some(srb) = slot.take() {
                ctx.complete(srb, SrbStatus::BusReset);
            }
        }
        ctx.stall(5);
        true
    }

    fn hw_timer(&self, state: &mut EchoStartIo, ctx: &mut TimerCtx<'_, Self>) {
        if let Some(srb) = state.timed.take() {
            // The common buffer is still there, and the scratch register answers.
            let common = state.memory.is_some_and(|m| m.write_u32(0, 0xC0FF_EE00).is_some() && m.read_u32(0) == Some(0xC0FF_EE00));
            let scratch = state.registers.is_some_and(|r| r.write_u32(SCRATCH, 7) && r.read_u32(SCRATCH) == 7);
            TIMER_COMPLETIONS.fetch_add(1, Ordering::SeqCst);
            ctx.complete(srb, if common && scratch { SrbStatus::Success } else { SrbStatus::Error });
        }
    }

    fn hw_adapter_control(&self, interrupt: &mut EchoInterrupt, _: &mut AdapterControlCtx<'_, Self>, control: AdapterControl) {
        let registers = interrupt.registers;
        match control {
            AdapterControl::Stop => {
                STOPS.fetch_add(1, Ordering::SeqCst);
                registers.map(|r| r.write_u32(MASK, 0));
            }
            AdapterControl::Restart => {
                RESTARTS.fetch_add(1, Ordering::SeqCst);
                registers.map(|r| r.write_u32(MASK, 1));
            }
        }
    }
}

unsafe extern "win64" fn driver_entry(a: *mut core::ffi::c_void, b: *mut core::ffi::c_void) -> u32 {
    // SAFETY: called by the emulator as DriverEntry, with its arguments.
    unsafe { initialize::<Echo>(a, b) }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A trace sink the test reads back.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn machine(schedule: Schedule) -> (Machine, Arc<EchoHba>, SharedBuf) {
    let trace = SharedBuf::default();
    // Real time in the concurrent schedule: the verifier's time limits scaled for a loaded host.
    let verifier = VerifierConfig { time_scale: 20.0, ..VerifierConfig::default() };
    let hba = Arc::new(EchoHba::default());
    let m = Machine::builder()
        .port(SimPort::Storport)
        .schedule(schedule)
        .verifier(verifier)
        .port_config(PortConfig::default())
        .trace(trace.clone())
        .adapter(hba.clone(), Arc::new(SimDma::default()))
        .build();
    (m, hba, trace)
}

fn vendor(opcode: u8) -> Request {
    Request::scsi(0, &[opcode, 0, 0, 0, 0, 0], Direction::None, Vec::new())
}

/// Runs the machine until `done` (in the concurrent schedule the port works on its own threads).
fn wait_until(m: &Machine, done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        m.run_for(std::time::Duration::from_millis(1)).unwrap();
    }
    panic!("not reached");
}

fn run(schedule: Schedule) {
    let (m, hba, trace) = machine(schedule);
    m.load_driver(driver_entry).expect("loads");
    assert_eq!(FIND_ADAPTER_CALLS.load(Ordering::SeqCst), 1);
    assert!(UNCACHED_RULES_HELD.load(Ordering::SeqCst), "the uncached extension's rules");
    assert!(IO_PORT_ECHO.load(Ordering::SeqCst), "the I/O port accessors");
    assert_eq!(PASSIVE_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(hba.mask.load(Ordering::SeqCst), 1, "HwStorInitialize unmasked");
    // The scan found target 0 (INQUIRY from StartIo) and not target 1 (refused in BuildIo).
    assert_eq!(m.logical_units(0), vec![(0, 0, 0)]);

    let inquiry = m.execute(Request::inquiry(0)).unwrap();
    assert!(inquiry.is_success());
    assert_eq!(&inquiry.data[8..16], b"ECHO    ");
    assert!(m.execute(Request::test_unit_ready(0)).unwrap().is_success(), "completed in HwStorBuildIo");

    // READs through the ISR and the DPC, at depth: each comes back filled by the DPC.
    let tickets: Vec<_> = (0..24u32).map(|i| (i, m.submit(Request::read10(0, i, 16, 8192).with_buffer_offset(0x300)).unwrap())).collect();
    for (i, t) in tickets {
        let c = m.wait(t).unwrap();
        assert!(c.is_success(), "{c:?}");
        // CDB byte 5 is the LBA's low byte; the DPC filled the buffer with it ^ 0xA5.
        assert!(c.data.iter().all(|b| *b == (i as u8) ^ 0xA5), "read {i}");
    }
    let writes: Vec<_> = (0..8u32).map(|i| m.submit(Request::write10(0, i, 8, vec![i as u8; 4096])).unwrap()).collect();
    for t in writes {
        assert!(m.wait(t).unwrap().is_success());
    }
    assert!(DPC_RUNS.load(Ordering::SeqCst) >= 1);
    assert!(SEGMENTS_MATCH.load(Ordering::SeqCst) >= 32, "every data request's list covers it");
    assert!(EXTENSION_PA.load(Ordering::SeqCst) >= 32);

    // The timer, the queue controls, an unknown command with sense and a logged error.
    assert!(m.execute(vendor(OP_TIMER)).unwrap().is_success());
    assert_eq!(TIMER_COMPLETIONS.load(Ordering::SeqCst), 1);
    assert!(m.execute(vendor(OP_QUEUE)).unwrap().is_success());
    assert_eq!(QUEUE_CONTROLS_OK.load(Ordering::SeqCst), 1);
    let bad = m.execute(vendor(0xC7)).unwrap();
    assert_eq!(bad.status(), sys::SRB_STATUS_ERROR);
    assert_ne!(bad.srb_status & sys::SRB_STATUS_AUTOSENSE_VALID, 0);
    assert_eq!(bad.sense.get(12), Some(&sys::SCSI_ADSENSE_ILLEGAL_COMMAND));
    assert_eq!(SENSE_PA.load(Ordering::SeqCst), 1);

    // The port's bus reset: what HwStorStartIo holds comes back BUS_RESET.
    let held: Vec<_> = (0..3).map(|_| m.submit(vendor(OP_HOLD)).unwrap()).collect();
    wait_until(&m, || HELD.load(Ordering::SeqCst) == 3);
    m.reset_bus(0, 0).unwrap();
    for t in held {
        let c = m.wait(t).unwrap();
        assert_eq!((c.status(), c.timed_out), (sys::SRB_STATUS_BUS_RESET, false), "{c:?}");
    }
    if matches!(schedule, Schedule::Deterministic { .. }) {
        // What Storport does on a timeout (virtual time, so at once): reset the logical unit,
        // then the target (the echo completes both SRBs and frees nothing), then the bus, whose
        // HwStorResetBus completes the request.
        let c = m.execute(vendor(OP_HOLD).with_timeout(1)).unwrap();
        assert_eq!((c.status(), c.timed_out), (sys::SRB_STATUS_BUS_RESET, true), "{c:?}");
    }

    // Stop and restart (interrupt state only), then a Plug and Play restart: HwStorFindAdapter
    // again with the device extension kept, the passive routine and the DPC again.
    m.stop_adapter(0).unwrap();
    assert_eq!(hba.mask.load(Ordering::SeqCst), 0);
    m.restart_adapter(0).unwrap();
    assert_eq!((STOPS.load(Ordering::SeqCst), RESTARTS.load(Ordering::SeqCst)), (1, 1));
    assert!(m.execute(Request::read10(0, 3, 8, 4096)).unwrap().is_success());
    m.pnp_stop_start(0).unwrap();
    assert_eq!(FIND_ADAPTER_CALLS.load(Ordering::SeqCst), 2);
    assert!(UNCACHED_RULES_HELD.load(Ordering::SeqCst), "the same buffer, no longer view");
    assert_eq!(PASSIVE_CALLS.load(Ordering::SeqCst), 2);
    let after = m.execute(Request::read10(0, 5, 8, 4096)).unwrap();
    assert!(after.is_success() && after.data.iter().all(|b| *b == 5 ^ 0xA5), "{after:?}");
    m.run_until_idle().unwrap();

    assert_eq!(m.violations(), Vec::new(), "{schedule:?}");
    let stats = m.stats();
    assert!(stats.build_io_calls >= 40 && stats.dpc_calls >= 1 && stats.interrupts >= 1, "{stats:?}");

    // Storport's calling pattern, as the trace shows it.
    m.flush_trace();
    let text = String::from_utf8(trace.0.lock().unwrap().clone()).unwrap();
    for needle in [
        "\"routine\":\"HwStorBuildIo\"",
        "\"routine\":\"HwStorStartIo\"",
        "\"routine\":\"HwStorInterrupt\"",
        "\"routine\":\"HwStorDpcRoutine\"",
        "\"routine\":\"HwStorPassiveInitializeRoutine\"",
        "\"routine\":\"HwStorTimer\"",
        "\"routine\":\"HwStorResetBus\"",
        "\"routine\":\"SynchronizedAccessRoutine\"",
        "\"fn\":\"StorPortAcquireSpinLock\"",
        "\"fn\":\"StorPortGetScatterGatherList\"",
        "\"text\":\"echo: HwStorFindAdapter 0x2",
    ] {
        assert!(text.contains(needle), "{schedule:?}: {needle}");
    }
    if matches!(schedule, Schedule::Deterministic { .. }) {
        for needle in ["\"fn\":\"reset_logical_unit\"", "\"fn\":\"reset_device\""] {
            assert!(text.contains(needle), "{needle}");
        }
    }
}

#[test]
fn wrapper_routines_on_the_storport_emulator_deterministic() {
    let _serial = serial();
    run(Schedule::Deterministic { seed: 3 });
}

#[test]
fn wrapper_routines_on_the_storport_emulator_concurrent() {
    let _serial = serial();
    run(Schedule::Concurrent);
}

#[test]
fn hw_stor_find_adapter_never_runs_beside_the_dpc_routine() {
    // A Plug and Play stop and start right after a request completed, while the DPC that
    // completed it is still running (it lingers 30 ms; concurrent schedule): the new
    // HwStorFindAdapter writes everything the DPC uses, so the wrapper makes it wait.
    let _serial = serial();
    let (m, _hba, _trace) = machine(Schedule::Concurrent);
    m.load_driver(driver_entry).expect("loads");
    SLOW_DPC.store(true, Ordering::SeqCst);
    assert!(m.execute(Request::read10(0, 3, 8, 4096)).unwrap().is_success());
    m.pnp_stop_start(0).unwrap();
    SLOW_DPC.store(false, Ordering::SeqCst);
    assert_eq!(FIND_ADAPTER_CALLS.load(Ordering::SeqCst), 2);
    assert!(!FIND_ADAPTER_DURING_DPC.load(Ordering::SeqCst), "HwStorFindAdapter ran beside the DPC routine");
    assert!(m.execute(Request::read10(0, 5, 8, 4096)).unwrap().is_success());
    m.run_until_idle().unwrap();
    assert_eq!(m.violations(), Vec::new());
}
