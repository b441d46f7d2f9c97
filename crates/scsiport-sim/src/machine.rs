//! The public face of the emulator: a [`Machine`] with one or more HBAs, a driver loaded into it,
//! and an upper edge that submits requests.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::hba::{Clock, Hba};
use crate::mem::DmaSpace;
use crate::port::{
    Adapter, CHAN_DEVICE, CHAN_DPC, CHAN_IRQ, Error, MachineCore, Port, PortConfig, RealClock, ResetState, Signal, Step,
    VirtualClock,
};
use crate::request::{Completion, Request, Ticket};
use crate::stats::Stats;
use crate::trace::Tracer;
use crate::verifier::{BugCheck, VerifierConfig};

/// A miniport's `DriverEntry`.
pub type DriverEntryFn = unsafe extern "win64" fn(scsiport_sys::PVOID, scsiport_sys::PVOID) -> scsiport_sys::ULONG;

/// How the machine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// One thread (the caller's), a virtual clock and a seeded choice among the events that are
    /// ready: device work, interrupt dispatch, the deferred-interrupt callbacks, `StartIo`, timers,
    /// timeouts. Interrupt dispatch, the enable callback and the miniport's calls take seeded
    /// virtual time (the latency model, [`PortConfig`]), so completions
    /// batch as on a real machine. The same seed gives the same run, trace byte for byte.
    Deterministic {
        /// Seed of the event choice.
        seed: u64,
    },
    /// Real time and real threads: the device, interrupt dispatch and the DPC each run on their
    /// own thread and the caller submits from its own, so races between the device and the
    /// driver show.
    Concurrent,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

/// An HBA to add: device, its DMA space, its interrupt line, its own `ArgumentString`.
type AdapterSpec = (Arc<dyn Hba>, Arc<dyn DmaSpace>, Option<u32>, Option<String>);

/// Builds a [`Machine`].
pub struct MachineBuilder {
    schedule: Schedule,
    port: Port,
    verifier: VerifierConfig,
    cfg: PortConfig,
    trace: Option<Box<dyn Write + Send>>,
    adapters: Vec<AdapterSpec>,
    vclock: Arc<VirtualClock>,
    rclock: Arc<RealClock>,
    wait_timeout: Duration,
}

impl std::fmt::Debug for MachineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineBuilder").field("schedule", &self.schedule).field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Default for MachineBuilder {
    fn default() -> Self {
        Self {
            schedule: Schedule::Deterministic { seed: 1 },
            port: Port::ScsiPort,
            verifier: VerifierConfig::default(),
            cfg: PortConfig::default(),
            trace: None,
            adapters: Vec::new(),
            vclock: Arc::new(VirtualClock::default()),
            rclock: Arc::new(RealClock::new()),
            wait_timeout: Duration::from_mins(1),
        }
    }
}

impl MachineBuilder {
    /// The schedule (default: deterministic, seed 1). Set it before asking for [`Self::clock`].
    #[must_use]
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The clock device models must use: virtual in the deterministic schedule, real otherwise.
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        match self.schedule {
            Schedule::Deterministic { .. } => Arc::clone(&self.vclock) as Arc<dyn Clock>,
            Schedule::Concurrent => Arc::clone(&self.rclock) as Arc<dyn Clock>,
        }
    }

    /// The port driver the machine emulates (default: SCSI Port). A Storport machine runs a
    /// Storport miniport: its `DriverEntry` calls `StorPortInitialize`, and a loaded image must
    /// import `STORPORT.SYS` (load it with [`crate::storport_exports`]).
    #[must_use]
    pub fn port(mut self, port: Port) -> Self {
        self.port = port;
        self
    }

    /// Verifier settings.
    #[must_use]
    pub fn verifier(mut self, v: VerifierConfig) -> Self {
        self.verifier = v;
        self
    }

    /// Port settings, all at once.
    #[must_use]
    pub fn port_config(mut self, cfg: PortConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// Writes the JSON Lines trace (`TRACE.md`) to `w`.
    #[must_use]
    pub fn trace(mut self, w: impl Write + Send + 'static) -> Self {
        self.trace = Some(Box::new(w));
        self
    }

    /// Traces the HBAs' DMA too (see [`PortConfig::trace_dma`]); nothing without [`Self::trace`].
    #[must_use]
    pub fn trace_dma(mut self, on: bool) -> Self {
        self.cfg.trace_dma = on;
        self
    }

    /// `ArgumentString` for `HwScsiFindAdapter`.
    #[must_use]
    pub fn argument_string(mut self, s: &str) -> Self {
        self.cfg.argument_string = Some(s.to_string());
        self
    }

    /// Crash-dump style loading (see [`PortConfig::dump_mode`]).
    #[must_use]
    pub fn dump_mode(mut self, on: bool) -> Self {
        self.cfg.dump_mode = on;
        self
    }

    /// `SenseInfoBufferLength` of each request (18..=255).
    #[must_use]
    pub fn sense_buffer_len(mut self, n: u8) -> Self {
        self.cfg.sense_len = n.max(18);
        self
    }

    /// The bus-reset hold.
    #[must_use]
    pub fn reset_hold(mut self, d: Duration) -> Self {
        self.cfg.reset_hold_ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// Contract §4.3 adversarial mode (`StartIo` concurrently with the enable callback); on
    /// Storport, the ISR between the register accesses of routines without the interrupt lock,
    /// and after their synchronized sections.
    #[must_use]
    pub fn adversarial(mut self, on: bool) -> Self {
        self.cfg.adversarial = on;
        self
    }

    /// How long (real time) a concurrent-schedule wait may take before it gives up.
    #[must_use]
    pub fn wait_timeout(mut self, d: Duration) -> Self {
        self.wait_timeout = d;
        self
    }

    /// Adds an HBA with its own interrupt line.
    #[must_use]
    pub fn adapter(mut self, hba: Arc<dyn Hba>, dma: Arc<dyn DmaSpace>) -> Self {
        self.adapters.push((hba, dma, None, None));
        self
    }

    /// Adds an HBA on interrupt line `line`; HBAs with the same line share it.
    #[must_use]
    pub fn adapter_on_line(mut self, hba: Arc<dyn Hba>, dma: Arc<dyn DmaSpace>, line: u32) -> Self {
        self.adapters.push((hba, dma, Some(line), None));
        self
    }

    /// Gives the adapter added last its own `ArgumentString` (e.g. to break only one of two
    /// HBAs sharing a line).
    #[must_use]
    pub fn adapter_args(mut self, args: &str) -> Self {
        if let Some(a) = self.adapters.last_mut() {
            a.3 = Some(args.to_string());
        }
        self
    }

    /// Builds the machine (and, in the concurrent schedule, starts its threads).
    #[must_use]
    pub fn build(self) -> Machine {
        crate::ffi::link();
        crate::stor_ffi::link();
        let deterministic = matches!(self.schedule, Schedule::Deterministic { .. });
        let seed = match self.schedule {
            Schedule::Deterministic { seed } => seed,
            Schedule::Concurrent => 0x9E37_79B9_7F4A_7C15,
        };
        let adapters = self
            .adapters
            .into_iter()
            .enumerate()
            .map(|(i, (hba, dma, line, args))| {
                let line = line.unwrap_or(1000 + u32::try_from(i).unwrap_or(0));
                Arc::new(Adapter::new(i, hba, dma, line, args))
            })
            .collect::<Vec<_>>();
        let clock: Arc<dyn Clock> =
            if deterministic { Arc::clone(&self.vclock) as Arc<dyn Clock> } else { Arc::clone(&self.rclock) as Arc<dyn Clock> };
        let core = Arc::new(MachineCore {
            owner: crate::guard::new_owner(),
            port: self.port,
            cfg: self.cfg,
            verifier: self.verifier,
            deterministic,
            vclock: deterministic.then(|| Arc::clone(&self.vclock)),
            clock,
            tracer: Tracer::new(self.trace),
            adapters,
            violations: Mutex::new(Vec::new()),
            bugcheck: Mutex::new(None),
            halted: AtomicBool::new(false),
            driver: Mutex::new(crate::port::DriverState::default()),
            completions: Mutex::new(rustc_hash::FxHashMap::default()),
            completions_waiting: AtomicUsize::new(0),
            done_cv: Signal::default(),
            next_id: AtomicU64::new(1),
            chans: Default::default(),
            rng: AtomicU64::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1),
            latency_rng: AtomicU64::new((seed ^ 0x6C61_7465_6E63_7921).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            irq_due: crate::state_lock::StateLock::new(crate::port::sorted::SortedMap::default()),
            irq_due_lines: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            faults_seen: AtomicU64::new(0),
            loaded: AtomicBool::new(false),
            arg_tokens: Box::new([0x4152_4731, 0x4152_4732]),
            image: Mutex::new(None),
            // On x64 `storport.h`'s register accessors are plain volatile accesses of the mapped
            // address, so a Storport miniport's direct accesses are legal: they are emulated as a
            // loaded image's are.
            direct_registers: AtomicBool::new(self.port == Port::Storport && cfg!(all(target_arch = "x86_64", target_os = "linux"))),
        });
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        crate::guard::set_direct_hook(crate::port::emulate_direct_access);
        if core.cfg.trace_dma && core.tracer.enabled() {
            for ad in &core.adapters {
                let (weak, index) = (Arc::downgrade(&core), ad.index);
                ad.hba.set_dma_trace(Some(Arc::new(move |access: &crate::hba::DmaAccess<'_>| {
                    if let Some(m) = weak.upgrade() {
                        m.tracer.emit_dma(m.now(), index, access);
                    }
                })));
            }
        }
        // The device wakes the concurrent schedule's threads; the deterministic schedule has
        // none to wake.
        for ad in core.adapters.iter().filter(|_| !deterministic) {
            let weak = Arc::downgrade(&core);
            ad.hba.set_waker(Arc::new(move || {
                if let Some(m) = weak.upgrade() {
                    m.chans[CHAN_DEVICE].kick();
                    m.kick_irq();
                }
            }));
        }
        let mut threads = Vec::new();
        if !deterministic {
            let mut roles: Vec<(&str, Role)> = vec![
                ("scsiport-sim-device", device_thread as fn(&Arc<MachineCore>)),
                ("scsiport-sim-interrupt", interrupt_thread),
                ("scsiport-sim-dpc", dpc_thread),
            ];
            if self.port == Port::Storport {
                // The miniport's DPC routines, apart from the thread that calls HwStorStartIo.
                roles.push(("scsiport-sim-stordpc", stor_dpc_thread));
            }
            for (name, f) in roles {
                let m = Arc::clone(&core);
                if let Ok(h) = std::thread::Builder::new().name(name.into()).spawn(move || f(&m)) {
                    threads.push(h);
                }
            }
        }
        Machine { core, threads, wait_timeout: self.wait_timeout }
    }
}

/// An emulated machine: HBAs, the port, and the loaded miniport.
pub struct Machine {
    core: Arc<MachineCore>,
    threads: Vec<JoinHandle<()>>,
    wait_timeout: Duration,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine").field("adapters", &self.core.adapters.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
impl Machine {
    /// The port, for the crate's own tests.
    pub(crate) fn core(&self) -> &Arc<MachineCore> {
        &self.core
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.core.stop.store(true, Ordering::Release);
        self.core.kick();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.core.tracer.flush();
    }
}

thread_local! {
    static WAIT_TIMEOUT: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::from_mins(1)) };
}

impl Machine {
    /// A builder.
    #[must_use]
    pub fn builder() -> MachineBuilder {
        MachineBuilder::default()
    }

    fn with_timeout<R>(&self, f: impl FnOnce() -> R) -> R {
        WAIT_TIMEOUT.with(|w| w.set(self.wait_timeout));
        f()
    }

    /// Loads the driver: `DriverEntry` (→ `ScsiPortInitialize`), then the PnP start of every adapter
    /// (`HwScsiFindAdapter`, extensions, interrupt, `HwScsiInitialize`, control query, bus scan).
    pub fn load_driver(&self, entry: DriverEntryFn) -> Result<(), Error> {
        self.with_timeout(|| {
            if self.core.loaded.swap(true, Ordering::AcqRel) {
                return Err(Error::Usage("a driver is already loaded".into()));
            }
            self.core.run_driver_entry(entry)?;
            for ad in &self.core.adapters {
                self.core.start_adapter(ad, self.core.cfg.scan)?;
            }
            self.core.halt_error().map_or(Ok(()), Err)
        })
    }

    /// Loads a driver image (`.sys`, see [`crate::pe`]) and runs it as [`Self::load_driver`] runs
    /// a linked-in one. Its code accesses registers directly, as a miniport does on Windows x64;
    /// each access faults and is emulated against the HBA (`mmio.rs`), in program order, traced
    /// as the accessor routine of the same width would be.
    pub fn load_image(&self, image: Arc<crate::pe::DriverImage>) -> Result<(), Error> {
        let module = self.core.port.module();
        if let Some((m, _)) = image.imports().iter().find(|(m, _)| !m.eq_ignore_ascii_case(module)) {
            return Err(Error::Usage(format!("the image imports from {m}; this machine emulates {module}")));
        }
        let entry = image.entry();
        *lock(&self.core.image) = Some(image);
        self.core.direct_registers.store(true, Ordering::Release);
        self.load_driver(entry)
    }

    /// The loaded image, if the driver is one.
    #[must_use]
    pub fn image(&self) -> Option<Arc<crate::pe::DriverImage>> {
        lock(&self.core.image).clone()
    }

    /// Submits a request to adapter 0.
    pub fn submit(&self, req: Request) -> Result<Ticket, Error> {
        self.submit_to(0, req)
    }

    /// Submits a request to an adapter.
    pub fn submit_to(&self, adapter: usize, req: Request) -> Result<Ticket, Error> {
        self.core.submit(adapter, req, crate::port::Scan::No)
    }

    /// A data buffer of `len` zeroed bytes in adapter `adapter`'s DMA memory, starting `offset`
    /// bytes (modulo 4096) into a page, for [`Request::with_port_buffer`]: requests that carry
    /// one move their data with the device's DMA alone, and the buffer can be used again.
    pub fn port_buffer(&self, adapter: usize, len: usize, offset: usize) -> Result<crate::PortBuffer, Error> {
        let ad = self.adapter(adapter)?;
        crate::PortBuffer::new(Arc::clone(&ad.dma), len, offset).map_err(Error::Usage)
    }

    /// Runs until the request completes and returns its completion.
    pub fn wait(&self, t: Ticket) -> Result<Completion, Error> {
        self.with_timeout(|| wait_ticket(&self.core, t, None))
    }

    /// Whether any completion is waiting to be taken: a cheap test before sweeping tickets
    /// with [`Self::try_take`].
    #[must_use]
    pub fn has_completions(&self) -> bool {
        self.core.completions_waiting.load(Ordering::Acquire) != 0
    }

    /// The completion of a request, if it has completed (does not run the machine).
    #[must_use]
    pub fn try_take(&self, t: Ticket) -> Option<Completion> {
        let c = take_locked(&mut lock(&self.core.completions), &self.core.completions_waiting, t);
        if c.as_ref().is_some_and(Completion::queue_frozen) {
            self.core.release_frozen();
        }
        c
    }

    /// Moves the completions of the tickets `mine` accepts into `out` (does not run the machine):
    /// one look at the waiting completions, where [`Self::try_take`] per ticket looks once per
    /// ticket outstanding. They are appended in the order `mine` accepted them, which is not the
    /// submission order.
    pub fn take_completed(&self, mut mine: impl FnMut(Ticket) -> bool, out: &mut Vec<Completion>) {
        let before = out.len();
        let mut g = lock(&self.core.completions);
        g.retain(|&t, c| {
            if !mine(Ticket(t)) {
                return true;
            }
            out.push(std::mem::replace(c, Completion::taken(Ticket(t))));
            false
        });
        self.core.completions_waiting.store(g.len(), Ordering::Release);
        drop(g);
        if out.get(before..).is_some_and(|new| new.iter().any(Completion::queue_frozen)) {
            self.core.release_frozen();
        }
    }

    /// Submits to adapter 0 and waits.
    pub fn execute(&self, req: Request) -> Result<Completion, Error> {
        let t = self.submit(req)?;
        self.wait(t)
    }

    /// Submits to an adapter and waits.
    pub fn execute_on(&self, adapter: usize, req: Request) -> Result<Completion, Error> {
        let t = self.submit_to(adapter, req)?;
        self.wait(t)
    }

    /// Runs until nothing is queued or outstanding on any adapter.
    pub fn run_until_idle(&self) -> Result<(), Error> {
        self.with_timeout(|| wait_idle(&self.core))
    }

    /// Runs for a span of machine time (deterministic: virtual; concurrent: real sleep).
    pub fn run_for(&self, d: Duration) -> Result<(), Error> {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if let Some(c) = &self.core.vclock {
            let until = c.now_ns().saturating_add(ns);
            loop {
                if let Some(e) = self.core.halt_error() {
                    return Err(e);
                }
                if c.now_ns() >= until {
                    return Ok(());
                }
                match self.core.det_step_until(until) {
                    Step::Progress => {}
                    Step::Idle => {
                        c.advance_to(until);
                    }
                }
            }
        } else {
            let end = Instant::now() + d;
            while Instant::now() < end {
                if let Some(e) = self.core.halt_error() {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(1).min(end.saturating_duration_since(Instant::now())));
            }
            self.core.halt_error().map_or(Ok(()), Err)
        }
    }

    /// Runs until `pred` holds (checked between events). In the deterministic schedule this
    /// thread holds the adapters' states and device models across the steps, letting go every
    /// few dozen, so `pred` must not wait for another thread's call into the machine (its own
    /// calls are fine).
    pub fn run_until(&self, mut pred: impl FnMut(&Machine) -> bool) -> Result<(), Error> {
        /// Deterministic steps run under one hold of the adapters' states and device models.
        const HOLD_STEPS: u32 = 64;
        let start = Instant::now();
        let mut held = None;
        let mut steps = 0u32;
        loop {
            if let Some(e) = self.core.halt_error() {
                return Err(e);
            }
            if pred(self) {
                return Ok(());
            }
            if self.core.deterministic {
                // The adapters' states and device models held across steps, let go every
                // `HOLD_STEPS` (so that another thread's call gets in) and when this returns: a
                // step's own hold and the models' locking are then nested, without a barrier.
                // `pred` runs inside the hold; what it asks of the machine on this thread is
                // nested too.
                if held.is_none() {
                    held = self.core.hold_for_steps();
                }
                steps = steps.wrapping_add(1);
                if let Step::Idle = self.core.det_step()
                    && !self.core.release_frozen()
                    && !pred(self)
                {
                    return Err(Error::Stuck("nothing left to run and the condition does not hold".into()));
                }
                if steps.is_multiple_of(HOLD_STEPS) {
                    held = None;
                }
            } else {
                if start.elapsed() > self.wait_timeout {
                    return Err(Error::Stuck("timed out waiting for the condition".into()));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Stops an adapter (`ScsiStopAdapter` after a flush; contract §3.7).
    pub fn stop_adapter(&self, adapter: usize) -> Result<(), Error> {
        let ad = self.adapter(adapter)?;
        self.with_timeout(|| self.core.stop(&ad))
    }

    /// Restarts a stopped adapter (power-management path).
    pub fn restart_adapter(&self, adapter: usize) -> Result<(), Error> {
        let ad = self.adapter(adapter)?;
        self.with_timeout(|| self.core.restart(&ad))
    }

    /// A PnP stop and start: `ScsiStopAdapter`, then `HwScsiFindAdapter`, `HwScsiInitialize` and the
    /// control query again.
    pub fn pnp_stop_start(&self, adapter: usize) -> Result<(), Error> {
        let ad = self.adapter(adapter)?;
        self.with_timeout(|| {
            self.core.stop(&ad)?;
            self.core.reinit(&ad)
        })
    }

    /// A port-initiated bus reset of bus `path_id` on an adapter, as SCSI Port does it after a
    /// timeout (contract §3.5, §7.2, §7.3): `HwScsiResetBus(PathId)` under the interrupt lock and
    /// never inside a deferred-interrupt window (from `CallEnableInterrupts` to the disable
    /// callback's return), `Stats::bus_resets` counted, the reset hold started for the requests
    /// outstanding at the miniport on that bus at that moment (0x1007 if one is still
    /// outstanding when it ends), and a `{"ev":"port","fn":"reset_bus"}` trace event
    /// (`TRACE.md`).
    ///
    /// Unlike [`Request::reset_bus`], which queues an `SRB_FUNCTION_RESET_BUS` request behind
    /// the LU's others, this reaches the miniport while requests are outstanding there. The ones
    /// it completes go back to their submitters with the status the miniport gave (normally
    /// `SRB_STATUS_BUS_RESET`, with `SRB_STATUS_QUEUE_FROZEN` for a frozen LU queue); requests
    /// still queued in the port are untouched and start when the hold ends.
    ///
    /// Deterministic schedule: the reset is the event loop's next event wherever it is allowed
    /// (at once, or when the open deferral window closes); returns once it has run. Concurrent
    /// schedule: the port's DPC thread runs it (also right as it closes a deferral window,
    /// before releasing the interrupt lock); returns once `HwScsiResetBus` has returned.
    pub fn reset_bus(&self, adapter: usize, path_id: u8) -> Result<(), Error> {
        let ad = self.adapter(adapter)?;
        self.with_timeout(|| wait_reset(&self.core, &ad, path_id))
    }

    fn adapter(&self, i: usize) -> Result<Arc<Adapter>, Error> {
        self.core.adapters.get(i).cloned().ok_or_else(|| Error::Usage(format!("no adapter {i}")))
    }

    /// The HBA of an adapter (downcast your own `Arc` to reach a model's fault hooks).
    #[must_use]
    pub fn hba(&self, adapter: usize) -> Option<Arc<dyn Hba>> {
        self.core.adapters.get(adapter).map(|a| Arc::clone(&a.hba))
    }

    /// Number of adapters.
    #[must_use]
    pub fn adapters(&self) -> usize {
        self.core.adapters.len()
    }

    /// The logical units the bus scan (or later I/O) found on an adapter: (path, target, lun).
    #[must_use]
    pub fn logical_units(&self, adapter: usize) -> Vec<(u8, u8, u8)> {
        self.core.adapters.get(adapter).map_or_else(Vec::new, |a| a.st().lu_list())
    }

    /// Counters of one adapter.
    #[must_use]
    pub fn stats_of(&self, adapter: usize) -> Stats {
        self.core.adapters.get(adapter).map_or_else(Stats::default, |a| a.st().stats.clone())
    }

    /// Counters summed over all adapters, with the verifier's result.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for a in &self.core.adapters {
            s.merge(&a.st().stats);
        }
        let v = lock(&self.core.violations);
        s.violations = v.iter().filter(|b| b.rule.fatal()).count() as u64;
        s.warnings = v.iter().filter(|b| !b.rule.fatal()).count() as u64;
        s
    }

    /// Every rule break recorded (fatal ones and warnings), in order.
    #[must_use]
    pub fn violations(&self) -> Vec<BugCheck> {
        lock(&self.core.violations).clone()
    }

    /// The bug check that halted the machine, if any.
    #[must_use]
    pub fn bugcheck(&self) -> Option<BugCheck> {
        lock(&self.core.bugcheck).clone()
    }

    /// Machine time (ns).
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        self.core.now()
    }

    /// Flushes the trace writer.
    pub fn flush_trace(&self) {
        self.core.tracer.flush();
    }

    /// Whether a trace is being written.
    #[must_use]
    pub fn tracing(&self) -> bool {
        self.core.tracer.enabled()
    }
}

fn wait_timeout() -> Duration {
    WAIT_TIMEOUT.with(std::cell::Cell::get)
}

/// Takes `t`'s completion out of the locked map, keeping the count of those left.
fn take_locked(map: &mut rustc_hash::FxHashMap<u64, Completion>, waiting: &AtomicUsize, t: Ticket) -> Option<Completion> {
    let c = map.remove(&t.0);
    waiting.store(map.len(), Ordering::Release);
    c
}

fn take(m: &MachineCore, t: Ticket) -> Option<Completion> {
    let c = take_locked(&mut lock(&m.completions), &m.completions_waiting, t);
    if c.as_ref().is_some_and(Completion::queue_frozen) {
        // The submitter has the error in hand: the class driver releases the queue.
        m.release_frozen();
    }
    c
}

/// Runs (deterministic) or waits (concurrent) until request `t` completes.
pub(crate) fn wait_ticket(m: &Arc<MachineCore>, t: Ticket, _limit: Option<Duration>) -> Result<Completion, Error> {
    if m.deterministic {
        loop {
            if let Some(c) = take(m, t) {
                return Ok(c);
            }
            if let Some(e) = m.halt_error() {
                return Err(e);
            }
            if let Step::Idle = m.det_step() {
                if let Some(c) = take(m, t) {
                    return Ok(c);
                }
                if let Some(e) = m.halt_error() {
                    return Err(e);
                }
                if !m.release_frozen() {
                    return Err(Error::Stuck(format!("request {} cannot complete: nothing left to run", t.0)));
                }
            }
        }
    }
    let start = Instant::now();
    let limit = wait_timeout();
    let mut g = lock(&m.completions);
    loop {
        if let Some(c) = take_locked(&mut g, &m.completions_waiting, t) {
            drop(g);
            if c.queue_frozen() {
                m.release_frozen();
            }
            return Ok(c);
        }
        if let Some(e) = m.halt_error() {
            return Err(e);
        }
        if start.elapsed() > limit {
            return Err(Error::Stuck(format!("request {} did not complete within {limit:?}", t.0)));
        }
        g = m.done_cv.wait_timeout(g, Duration::from_millis(10));
        if start.elapsed() > Duration::from_millis(50) {
            drop(g);
            m.release_frozen();
            g = lock(&m.completions);
        }
    }
}

/// Asks for a port-initiated bus reset and runs (deterministic) or waits (concurrent) until
/// `HwScsiResetBus` has returned.
fn wait_reset(m: &Arc<MachineCore>, ad: &Arc<Adapter>, path: u8) -> Result<(), Error> {
    let ticket = m.request_reset(ad, path)?;
    let start = Instant::now();
    let limit = wait_timeout();
    let failed = loop {
        match ad.reset_state(ticket) {
            ResetState::Done => return m.halt_error().map_or(Ok(()), Err),
            ResetState::Dead(phase) => {
                break Error::Usage(format!("adapter {} left the running phase ({phase:?}) before the bus reset ran", ad.index));
            }
            ResetState::Pending => {}
        }
        if let Some(e) = m.halt_error() {
            break e;
        }
        if m.deterministic {
            if let Step::Idle = m.det_step()
                && ad.reset_state(ticket) == ResetState::Pending
                && m.halt_error().is_none()
            {
                break Error::Stuck(format!("the bus reset of adapter {} cannot run: nothing left to run", ad.index));
            }
        } else {
            if start.elapsed() > limit {
                break Error::Stuck(format!("the bus reset of adapter {} did not run within {limit:?}", ad.index));
            }
            ad.wait_reset(ticket, Duration::from_millis(10));
        }
    };
    ad.cancel_reset(ticket);
    Err(failed)
}

/// Runs (deterministic) or waits (concurrent) until nothing is queued or outstanding.
pub(crate) fn wait_idle(m: &Arc<MachineCore>) -> Result<(), Error> {
    if m.deterministic {
        loop {
            if let Some(e) = m.halt_error() {
                return Err(e);
            }
            if !m.busy() {
                return Ok(());
            }
            if let Step::Idle = m.det_step() {
                if !m.busy() {
                    return Ok(());
                }
                if let Some(e) = m.halt_error() {
                    return Err(e);
                }
                if !m.release_frozen() {
                    return Err(Error::Stuck("requests remain but nothing can run".into()));
                }
            }
        }
    }
    let start = Instant::now();
    let limit = wait_timeout();
    loop {
        if let Some(e) = m.halt_error() {
            return Err(e);
        }
        if !m.busy() {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(Error::Stuck(format!("requests still outstanding after {limit:?}")));
        }
        m.release_frozen();
        std::thread::sleep(Duration::from_millis(2));
    }
}


fn running(m: &MachineCore) -> bool {
    !m.stop.load(Ordering::Acquire) && !m.is_halted()
}

fn device_thread(m: &Arc<MachineCore>) {
    let mut last = 0;
    while running(m) {
        let now = m.now();
        let mut next: Option<u64> = None;
        for ad in &m.adapters {
            match ad.hba.next_event_ns() {
                Some(t) if t <= now => {
                    ad.run_device(now);
                    m.note_line(ad);
                    m.kick_irq();
                }
                Some(t) => next = Some(next.map_or(t, |n| n.min(t))),
                None => {}
            }
        }
        let wait = next.map_or(Duration::from_millis(2), |t| Duration::from_nanos(t.saturating_sub(m.now())).min(Duration::from_millis(2)));
        if !wait.is_zero() {
            m.chans[CHAN_DEVICE].wait(&mut last, wait);
        }
    }
}

fn interrupt_thread(m: &Arc<MachineCore>) {
    let mut last = 0;
    let mut lines: Vec<u32> = m.adapters.iter().map(|a| a.line).collect();
    lines.sort_unstable();
    lines.dedup();
    let mut next_poll = Instant::now();
    while running(m) {
        let mut progress = false;
        for &l in &lines {
            if m.line_wants_service(l) {
                progress |= m.dispatch_line(l);
            }
        }
        if m.cfg.dump_mode && Instant::now() >= next_poll {
            next_poll = Instant::now() + Duration::from_nanos(m.cfg.dump_poll_ns);
            for ad in &m.adapters {
                let busy = {
                    let st = ad.st();
                    st.phase == crate::port::Phase::Running && st.has_active()
                };
                if busy {
                    m.poll(ad);
                }
            }
        }
        if !progress {
            m.chans[CHAN_IRQ].wait(&mut last, Duration::from_millis(1));
        }
    }
}

/// A thread of the concurrent schedule.
type Role = fn(&Arc<MachineCore>);

/// Storport's DPC routines (concurrent schedule), concurrent with `HwStorStartIo` on the DPC
/// thread and the submitters' threads, and with the ISR.
fn stor_dpc_thread(m: &Arc<MachineCore>) {
    let mut last = 0;
    while running(m) {
        let mut progress = false;
        for ad in &m.adapters {
            progress |= m.run_stor_dpc(ad);
        }
        if !progress {
            m.chans[CHAN_DPC].wait(&mut last, Duration::from_millis(1));
        }
    }
}

fn dpc_thread(m: &Arc<MachineCore>) {
    let mut last = 0;
    while running(m) {
        let mut progress = false;
        for ad in &m.adapters {
            progress |= m.run_requested_resets(ad);
            progress |= m.run_dpc(ad);
            progress |= m.run_timer(ad);
            progress |= m.run_timeouts(ad);
            progress |= m.run_hold_end(ad);
            progress |= m.run_rescan(ad);
            let mut n = 0;
            while n < 64 && m.try_start(ad) {
                n += 1;
                progress = true;
            }
            m.hang_check(ad);
        }
        if !progress {
            m.chans[CHAN_DPC].wait(&mut last, Duration::from_millis(1));
        }
    }
}
