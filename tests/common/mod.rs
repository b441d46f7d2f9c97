//! Shared setup of the driver's integration tests: the rspvscsi driver loaded into the SCSI
//! Port emulator over the PVSCSI device model with RAM disks, in either schedule.
#![allow(dead_code, clippy::missing_panics_doc, clippy::must_use_candidate)]

use std::sync::{Arc, Mutex};

use scsiport_sim::disk::{Disk, Sense};
use scsiport_sim::mem::SimDma;
use scsiport_sim::pvscsi::{Effect, Injection, Latency, PvscsiConfig, PvscsiDevice, PvscsiLayout};
use scsiport_sim::{Completion, Machine, Port as SimPort, Request, Schedule, Ticket, VerifierConfig};

pub use scsiport::sys;

/// Sector size of the virtual disks.
pub const SECTOR: usize = 512;

/// The driver under test: the test crates named `sys_*` and `stor_sys_*` (`tests/sys_*.rs`,
/// each the same suite as the file it includes) run the shipping image, `rspvscsi.sys` or
/// `rspvscsi_storport.sys` as `cargo xtask sys` builds it, loaded by the emulator's PE loader;
/// the others run the driver linked into the test.
pub fn runs_the_image() -> bool {
    let name = env!("CARGO_CRATE_NAME");
    name.starts_with("sys_") || name.starts_with("stor_sys_")
}

/// The port flavour under test: the test crates named `stor_*` (`tests/stor_*.rs`, each the same
/// suite as the file it includes) run the Storport flavour on the emulator's Storport; the
/// others the SCSI Port flavour on SCSI Port.
pub fn port_of_this_suite() -> SimPort {
    if env!("CARGO_CRATE_NAME").starts_with("stor_") { SimPort::Storport } else { SimPort::ScsiPort }
}

/// Whether this suite runs the Storport flavour: for the few assertions about what only one
/// port does (SCSI Port's deferred callbacks and `NextRequest`, Storport's DPC).
pub fn storport() -> bool {
    port_of_this_suite() == SimPort::Storport
}

/// The image of `flavor` (see [`image_bytes`]).
fn flavor_of_this_suite() -> &'static xtask::sys::Flavor {
    if storport() { &xtask::sys::STORPORT } else { &xtask::sys::SCSIPORT }
}

/// `rspvscsi.sys` as `cargo xtask sys` builds it, once per test binary, or why it cannot be
/// built on this machine (see `xtask::sys::unavailable_reason`; in CI, `RSPVSCSI_CI=1`, that is a
/// failure).
pub fn image_bytes() -> Result<&'static [u8], String> {
    static IMAGE: std::sync::OnceLock<Result<Vec<u8>, String>> = std::sync::OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if let Some(reason) = xtask::sys::unavailable_reason() {
                assert!(!xtask::in_ci(), "RSPVSCSI_CI=1 but rspvscsi.sys cannot be built: {reason}");
                return Err(reason);
            }
            let package = xtask::sys::build(flavor_of_this_suite(), &xtask::sys::Options::default(), &mut |_| {})
                .unwrap_or_else(|e| panic!("cargo xtask sys: {e:#}"));
            Ok(std::fs::read(&package.sys).expect("reading the .sys"))
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// A fresh load of `rspvscsi.sys` (each machine gets its own mapping, as each Windows boot does).
pub fn load_image() -> Result<Arc<scsiport_sim::pe::DriverImage>, String> {
    let bytes = image_bytes()?;
    let image = if storport() {
        scsiport_sim::pe::load("rspvscsi_storport.sys", bytes, &scsiport_sim::storport_exports()).expect("the PE loader takes rspvscsi_storport.sys")
    } else {
        scsiport_sim::pe::load("rspvscsi.sys", bytes, &scsiport_sim::scsiport_exports()).expect("the PE loader takes rspvscsi.sys")
    };
    Ok(Arc::new(image))
}

/// The C reference miniport, `rspvscsi_c.sys` as `cargo xtask sys --c-reference` builds it
/// (`xtask::c_reference`), once per test binary and set of preprocessor symbols, or why it cannot
/// be built here (MinGW-w64 missing; in CI, `RSPVSCSI_CI=1`, a failure).
pub fn c_reference_bytes(defines: &[&str]) -> Result<Vec<u8>, String> {
    type Built = std::collections::HashMap<Vec<String>, Result<Vec<u8>, String>>;
    static BUILT: std::sync::OnceLock<Mutex<Built>> = std::sync::OnceLock::new();
    let defines: Vec<String> = defines.iter().map(ToString::to_string).collect();
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap();
    built
        .entry(defines.clone())
        .or_insert_with(|| {
            if let Some(reason) = xtask::c_reference::unavailable_reason() {
                assert!(!xtask::in_ci(), "RSPVSCSI_CI=1 but the C reference cannot be built: {reason}");
                return Err(reason);
            }
            let package = xtask::c_reference::build(&xtask::c_reference::Options { defines }, &mut |_| {})
                .unwrap_or_else(|e| panic!("cargo xtask sys --c-reference: {e:#}"));
            Ok(std::fs::read(&package.sys).expect("reading rspvscsi_c.sys"))
        })
        .clone()
}

/// A fresh load of the C reference (built with `defines`).
pub fn load_c_reference(defines: &[&str]) -> Result<Arc<scsiport_sim::pe::DriverImage>, String> {
    let bytes = c_reference_bytes(defines)?;
    let image = scsiport_sim::pe::load(xtask::c_reference::SYS_NAME, &bytes, &scsiport_sim::scsiport_exports())
        .expect("the PE loader takes rspvscsi_c.sys");
    Ok(Arc::new(image))
}

/// Which driver a rig runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// The driver crate linked into the test.
    Linked,
    /// `rspvscsi.sys`, loaded by the PE loader.
    Image,
    /// The C reference miniport, `rspvscsi_c.sys`, loaded by the PE loader.
    CReference,
}

impl Driver {
    /// What the running suite is about: the image in `sys_*` crates, the C reference in
    /// `c_reference`.
    pub fn of_this_suite() -> Self {
        if runs_the_image() {
            Self::Image
        } else if env!("CARGO_CRATE_NAME") == "c_reference" {
            Self::CReference
        } else {
            Self::Linked
        }
    }
}

/// Both schedules: deterministic (seeded) and concurrent (device on its own thread).
pub fn schedules() -> [Schedule; 2] {
    [Schedule::Deterministic { seed: 0x5eed }, Schedule::Concurrent]
}

/// A trace sink the test can read back.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a test machine looks like.
#[derive(Clone, Debug)]
#[allow(clippy::struct_excessive_bools)] // independent switches of the machine, as MachineBuilder has them
pub struct Config {
    pub schedule: Schedule,
    /// One RAM disk of `disk_bytes` per target listed.
    pub targets: Vec<u8>,
    pub disk_bytes: u64,
    pub layout: PvscsiLayout,
    pub latency: Latency,
    pub argument_string: String,
    pub trace: bool,
    /// With `trace`: the device's DMA too (`PortConfig::trace_dma`).
    pub trace_dma: bool,
    pub initial_index: u32,
    pub verifier: VerifierConfig,
    /// Load the way the crash-dump stack does: NULL `DriverEntry` arguments, `dump=1`, no
    /// interrupt connected, the ISR polled.
    pub dump_mode: bool,
    /// SCSI Port's bus-reset hold (emulator default 4 s).
    pub reset_hold: Option<std::time::Duration>,
    /// Run `HwScsiStartIo` on another thread while the enable callback runs (contract §4.3's
    /// adversarial mode).
    pub adversarial: bool,
    /// The driver under test (default: the one the suite is about, [`Driver::of_this_suite`]).
    pub driver: Driver,
    /// The port driver and the flavour on it (default: [`port_of_this_suite`]).
    pub port: SimPort,
}

impl Config {
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            targets: vec![0, 1],
            disk_bytes: 8 << 20,
            layout: PvscsiLayout::Qemu,
            latency: Latency::default(),
            argument_string: String::new(),
            trace: false,
            trace_dma: false,
            initial_index: 0,
            verifier: VerifierConfig::default(),
            dump_mode: false,
            reset_hold: None,
            adversarial: false,
            driver: Driver::of_this_suite(),
            port: port_of_this_suite(),
        }
    }
}

/// A machine with the driver loaded.
pub struct Rig {
    pub machine: Machine,
    pub device: PvscsiDevice,
    pub disks: Vec<(u8, Disk)>,
    /// The schedule it runs in: what a test may expect of counts that depend on timing.
    pub schedule: Schedule,
    trace: Option<SharedBuf>,
}

impl Rig {
    pub fn new(config: &Config) -> Self {
        let trace = config.trace.then(SharedBuf::default);
        let mut builder = Machine::builder()
            .port(config.port)
            .schedule(config.schedule)
            .verifier(config.verifier.clone())
            .argument_string(&config.argument_string)
            .dump_mode(config.dump_mode)
            .adversarial(config.adversarial)
            .trace_dma(config.trace_dma);
        if let Some(hold) = config.reset_hold {
            builder = builder.reset_hold(hold);
        }
        if let Some(buf) = &trace {
            builder = builder.trace(buf.clone());
        }
        let dma = SimDma::default();
        let device_config = PvscsiConfig {
            layout: config.layout,
            latency: config.latency,
            initial_index: config.initial_index,
            ..PvscsiConfig::default()
        };
        let device = PvscsiDevice::new(device_config, Arc::new(dma.clone()), builder.clock());
        let mut disks = Vec::new();
        for &target in &config.targets {
            let disk = Disk::ram(config.disk_bytes).unwrap();
            device.attach(target, disk.clone()).unwrap();
            disks.push((target, disk));
        }
        let machine = builder.adapter(Arc::new(device.clone()), Arc::new(dma)).build();
        match config.driver {
            Driver::Image => match load_image() {
                Ok(image) => machine.load_image(image).expect("rspvscsi.sys loads"),
                Err(reason) => {
                    // The whole suite is about the image: nothing of it can run here. Written
                    // to the file descriptor, past the test harness's output capture.
                    use std::io::Write as _;
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "SKIPPED: {} runs a driver image, which cannot be built here: {reason}",
                        env!("CARGO_CRATE_NAME")
                    );
                    std::process::exit(0);
                }
            },
            Driver::CReference => match load_c_reference(&[]) {
                Ok(image) => machine.load_image(image).expect("rspvscsi_c.sys loads"),
                Err(reason) => {
                    use std::io::Write as _;
                    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {} runs rspvscsi_c.sys, which cannot be built here: {reason}", env!("CARGO_CRATE_NAME"));
                    std::process::exit(0);
                }
            },
            Driver::Linked if config.port == SimPort::Storport => {
                machine.load_driver(rspvscsi::stor_port::driver_entry).expect("the driver loads");
            }
            Driver::Linked => machine.load_driver(rspvscsi::scsi_port::driver_entry).expect("the driver loads"),
        }
        Self { machine, device, disks, schedule: config.schedule, trace }
    }

    /// Loaded with the defaults: two 8 MiB disks on targets 0 and 1.
    pub fn default_on(schedule: Schedule) -> Self {
        Self::new(&Config::new(schedule))
    }

    pub fn disk(&self, target: u8) -> &Disk {
        &self.disks.iter().find(|(t, _)| *t == target).unwrap().1
    }

    /// Runs a request; on a unit attention (the device's normal report after power-on or a
    /// reset, pvscsi-facts.md Q17) runs it again, as a class driver does.
    pub fn execute(&self, request: &Request) -> Completion {
        // Resets of any kind so far: the port's bus resets and the device's own.
        let resets = || {
            let d = self.device.stats();
            self.machine.stats().bus_resets + d.bus_resets + d.device_resets + d.adapter_resets
        };
        for _ in 0..4 {
            let before = resets();
            let c = self.machine.execute(request.clone()).expect("no bug check");
            // Storport escalates a timeout per logical unit (LU, target, bus reset), so after a
            // recovery on two disks the second disk's bus reset may still be on its way and
            // complete a fresh request with BUS_RESET; a class driver retries it (seen in
            // recovery.rs's device-side adapter reset, about one run in ten, concurrent schedule).
            // Only then: a BUS_RESET with no reset while the request was out is a driver's error.
            let late_bus_reset = storport() && c.status() == sys::SRB_STATUS_BUS_RESET && resets() > before;
            if !is_unit_attention(&c) && !late_bus_reset {
                return c;
            }
        }
        panic!("unit attention (or Storport's late bus reset) did not clear");
    }

    /// Clears the power-on unit attention of every disk.
    pub fn settle(&self) {
        for (target, _) in &self.disks {
            let c = self.execute(&Request::test_unit_ready(*target));
            assert!(c.is_success(), "TEST UNIT READY on {target}: {c:?}");
        }
    }

    pub fn write(&self, target: u8, lba: u32, data: Vec<u8>) -> Completion {
        let blocks = u16::try_from(data.len() / SECTOR).unwrap();
        self.execute(&Request::write10(target, lba, blocks, data))
    }

    pub fn read(&self, target: u8, lba: u32, blocks: u16) -> Completion {
        self.execute(&Request::read10(target, lba, blocks, usize::from(blocks) * SECTOR))
    }

    /// No verifier violation, no DMA outside the driver's buffers, no request the device
    /// could never complete.
    pub fn assert_clean(&self) {
        assert_eq!(self.machine.violations(), Vec::new(), "verifier violations");
        let device = self.device.stats();
        assert_eq!(device.dma_faults, 0, "DMA faults: {:?}", device.last_dma_fault);
        assert_eq!(device.direction_contradictions, 0, "requests QEMU would never complete (and then abort at a reset)");
        assert_eq!(device.dma_waits, 0, "block transfers without a buffer, which QEMU never completes");
        assert_eq!(device.bad_contexts, 0, "contexts VMware would refuse");
        assert_eq!(device.completion_overflows, 0, "completion ring overrun");
        assert_eq!(device.narrow_accesses + device.misaligned_accesses + device.invalid_accesses, 0);
    }

    /// The trace, parsed.
    pub fn trace(&self) -> Vec<serde_json::Value> {
        // Let the concurrent schedule's threads finish what they started (a callback may still
        // be running after the last request was handed back).
        self.machine.run_until_idle().expect("idle");
        self.machine.flush_trace();
        let buf = self.trace.as_ref().expect("built with trace: true");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).expect("each trace line is JSON")).collect()
    }
}

pub fn is_unit_attention(c: &Completion) -> bool {
    c.status() == sys::SRB_STATUS_ERROR
        && c.scsi_status == sys::SCSISTAT_CHECK_CONDITION
        && c.sense.get(2).is_some_and(|k| k & 0x0F == sys::SCSI_SENSE_UNIT_ATTENTION)
}

/// Sense key, ASC, ASCQ of fixed-format sense.
pub fn sense_triple(c: &Completion) -> Option<(u8, u8, u8)> {
    Some((c.sense.get(2)? & 0x0F, *c.sense.get(12)?, *c.sense.get(13)?))
}

/// A sector's worth of recognisable data: which target and LBA it belongs to, and a generation.
pub fn pattern(target: u8, lba: u64, generation: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(SECTOR);
    let mut x = lba.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(target) << 56) ^ u64::from(generation);
    while out.len() < SECTOR {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out[..8].copy_from_slice(&lba.to_le_bytes());
    out[8] = target;
    out
}

/// `blocks` sectors of pattern from `lba`.
pub fn patterns(target: u8, lba: u64, blocks: u64, generation: u32) -> Vec<u8> {
    (lba..lba + blocks).flat_map(|l| pattern(target, l, generation)).collect()
}

/// Writes generation `generation` to `count` 8-block stripes on both targets, all submitted at
/// once; each with its target, LBA and ticket.
pub fn submit_stripes(rig: &Rig, count: u32, generation: u32) -> Vec<(u8, u32, scsiport_sim::Ticket)> {
    (0..count)
        .map(|i| {
            let target = u8::try_from(i % 2).unwrap();
            let lba = (i / 2) * 8;
            let data = patterns(target, u64::from(lba), 8, generation);
            (target, lba, rig.machine.submit(Request::write10(target, lba, 8, data)).unwrap())
        })
        .collect()
}

/// Fixed-format sense helper for injections.
pub fn sense(key: u8, asc: u8, ascq: u8) -> Sense {
    Sense::new(key, asc, ascq)
}

/// A routine or service as this suite's port names it in the trace: SCSI Port's name as given
/// (`HwScsiStartIo`, `ScsiPortGetUncachedExtension`), Storport's counterpart in the `stor_*`
/// suites (`HwStorStartIo`, `StorPortGetUncachedExtension`; crates/scsiport-sim/TRACE.md).
pub fn named(scsi_port_name: &str) -> String {
    if storport() {
        scsi_port_name.replacen("HwScsi", "HwStor", 1).replacen("ScsiPort", "StorPort", 1)
    } else {
        scsi_port_name.to_string()
    }
}

/// The image file this suite loads.
pub fn image_name() -> &'static str {
    if storport() { "rspvscsi_storport.sys" } else { "rspvscsi.sys" }
}

/// A bus reset that finds completions the device never posted (`Effect::Unposted`): four reads of
/// target 1 the device has finished without posting them, and one it sits on. The
/// `ADAPTER_RESET` writes the four into the old ring (pvscsi-facts.md §7), and the reset must
/// complete them with their own status and data; the one the device sat on ends with
/// `BUS_RESET`. `what` names the run in failure messages.
pub fn reset_finding_unposted_completions(rig: &Rig, what: &str) {
    rig.settle();
    let data = patterns(1, 100, 4, 7);
    assert!(rig.write(1, 100, data.clone()).is_success());
    rig.device.inject(Injection::lbas(100..104, Effect::Unposted).on_target(1));
    rig.device.inject(Injection::lbas(200..201, Effect::Lose).on_target(1));
    let before = rig.device.stats().requests;
    let finished: Vec<Ticket> = (0..4u32).map(|i| rig.machine.submit(Request::read10(1, 100 + i, 1, SECTOR)).unwrap()).collect();
    let hung = rig.machine.submit(Request::read10(1, 200, 1, SECTOR)).unwrap();
    let device = rig.device.clone();
    // The device has taken all five and finished four (they are no longer in flight).
    rig.machine.run_until(|_| device.stats().requests >= before + 5 && device.in_flight() == 1).unwrap();
    let reset = rig.machine.execute(Request::reset_bus(0)).unwrap();
    assert!(reset.is_success(), "{what}: {reset:?}");
    for (i, t) in finished.into_iter().enumerate() {
        let c = rig.machine.wait(t).unwrap();
        assert!(c.is_success(), "{what}: read {i}: {c:?}");
        assert_eq!(c.data, data[i * SECTOR..(i + 1) * SECTOR], "{what}: read {i}'s data");
    }
    assert_eq!(rig.machine.wait(hung).unwrap().status(), sys::SRB_STATUS_BUS_RESET, "{what}");
    rig.device.clear_injections();
}
