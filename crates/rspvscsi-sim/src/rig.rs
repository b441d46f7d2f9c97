//! Building a machine: the HBA (model or uio), its disks, the miniport, and what the driver
//! found on the bus.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scsiport_sim::disk::{Disk, DiskConfig};
use scsiport_sim::mem::SimDma;
use scsiport_sim::pvscsi::{Latency, PvscsiConfig, PvscsiDevice, PvscsiLayout};
use scsiport_sim::{Completion, DriverEntryFn, Error, Machine, Request, Schedule, VerifierConfig};
use scsiport_sys as sys;

use crate::cli::{DiskSpec, HbaArg, MiniportArg, ModeArg, PortArg, RunArgs};
use crate::pattern::SECTOR;

/// The ID the driver reports as its own (`InitiatorBusId`); no disk goes there.
pub const INITIATOR_ID: u8 = 7;
/// Targets the driver scans on either layout (ids 0..16).
pub const MAX_TARGETS: u8 = 16;
/// How often a request is retried when the device reports UNIT ATTENTION.
const UA_RETRIES: u32 = 8;

/// Target IDs for `n` disks: 0, 1, ... skipping the initiator's.
#[must_use]
pub fn disk_targets(n: usize) -> Vec<u8> {
    (0..MAX_TARGETS).filter(|&t| t != INITIATOR_ID).take(n).collect()
}

/// A disk the driver found: INQUIRY and READ CAPACITY answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    /// Target ID.
    pub target: u8,
    /// Number of logical blocks.
    pub blocks: u64,
    /// Logical block size.
    pub block_size: u32,
    /// INQUIRY vendor and product.
    pub vendor: String,
    /// INQUIRY product.
    pub product: String,
}

impl DiskInfo {
    /// Capacity in bytes.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.blocks * u64::from(self.block_size)
    }
}

/// A model disk and the spec it came from.
#[derive(Clone, Debug)]
pub struct ModelDisk {
    /// Target ID.
    pub target: u8,
    /// The disk (a handle to the same medium the model uses).
    pub disk: Disk,
    /// The raw image behind it, for a `file:` disk.
    pub image: Option<PathBuf>,
}

/// Whether a run may write to `file:` images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// It only reads: images are opened read-only (write-protected disks).
    ReadOnly,
    /// It writes, and the user asked for it.
    Write,
    /// It writes, but nobody asked: refused when there is an image. The text says what writes.
    WriteUnasked(String),
}

/// Checks the `file:` disks before anything opens them: each exists, is a regular file of
/// whole 512-byte sectors, appears once, and is not the trace file. A usage error otherwise.
///
/// # Errors
/// The first problem, as a message naming the option.
/// `--driver PATH`: a file to read (what is in it is the loader's to judge, when the run starts).
///
/// # Errors
/// A missing path or one that is not a regular file.
pub fn check_driver(path: &Path) -> Result<(), String> {
    let md = std::fs::metadata(path).map_err(|e| format!("--driver {}: {e}", path.display()))?;
    if md.is_file() { Ok(()) } else { Err(format!("--driver {}: not a regular file (a driver image, .sys)", path.display())) }
}

pub fn check_images(disks: &[DiskSpec], trace: Option<&Path>) -> Result<(), String> {
    let trace_id = trace.and_then(|t| std::fs::metadata(t).ok()).map(|m| (m.dev(), m.ino()));
    let mut seen: Vec<((u64, u64), &str)> = Vec::new();
    for path in disks.iter().filter_map(DiskSpec::file) {
        let md = std::fs::metadata(path).map_err(|e| format!("--disk file:{path}: {e}"))?;
        if md.is_dir() {
            return Err(format!("--disk file:{path}: is a directory, not a raw image"));
        }
        if !md.is_file() {
            return Err(format!("--disk file:{path}: not a regular file (a raw image is a file of whole 512-byte sectors)"));
        }
        let len = md.len();
        if len < SECTOR as u64 {
            return Err(format!("--disk file:{path}: {len} bytes, less than one 512-byte sector"));
        }
        if len % SECTOR as u64 != 0 {
            return Err(format!(
                "--disk file:{path}: {len} bytes is not a whole number of 512-byte sectors ({} sectors and {} bytes more, which no LBA reaches); make it a multiple of 512 first (e.g. truncate -s %512 {path})",
                len / SECTOR as u64,
                len % SECTOR as u64
            ));
        }
        let id = (md.dev(), md.ino());
        if let Some((_, first)) = seen.iter().find(|(i, _)| *i == id) {
            return Err(format!(
                "--disk file:{path} is the same file as --disk file:{first}: two targets on one image overwrite each other's data"
            ));
        }
        if trace_id == Some(id) {
            return Err(format!("--trace {} is the image of --disk file:{path}: the trace would overwrite it", trace.map_or_else(String::new, |t| t.display().to_string())));
        }
        seen.push((id, path));
    }
    Ok(())
}

/// The trace file: remembers the first error writing it (the emulator's tracer only stops
/// tracing on one), so that a run whose trace is incomplete fails.
struct TraceFile {
    out: BufWriter<File>,
    error: Arc<Mutex<Option<String>>>,
}

impl TraceFile {
    fn note<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            let mut g = self.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            g.get_or_insert_with(|| e.to_string());
        }
        r
    }
}

impl Write for TraceFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.out.write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.out.flush();
        self.note(r)
    }
}

/// What making a write run durable did: SYNCHRONIZE CACHE through the driver to each disk,
/// then `fsync` of each image.
#[derive(Clone, Debug, Default)]
pub struct Durability {
    /// Per target: whether SYNCHRONIZE CACHE succeeded, and the completion.
    pub synchronize_cache: Vec<(u8, bool, String)>,
    /// Per image: whether the fsync succeeded, and the error if not.
    pub fsync: Vec<(PathBuf, bool, String)>,
}



/// How a machine is made.
#[derive(Clone, Debug)]
#[allow(clippy::struct_excessive_bools)] // independent options of a run, each from its own flag
pub struct RigConfig {
    /// The port driver, and so the driver's flavour.
    pub port: PortArg,
    /// The miniport.
    pub miniport: MiniportArg,
    /// A driver image to load instead of the linked-in driver.
    pub driver: Option<PathBuf>,
    /// `ArgumentString`.
    pub argument_string: Option<String>,
    /// The HBA.
    pub hba: HbaArg,
    /// Disk specs for the model.
    pub disks: Vec<DiskSpec>,
    /// The schedule.
    pub schedule: Schedule,
    /// Trace file.
    pub trace: Option<PathBuf>,
    /// The device's DMA in the trace too.
    pub trace_dma: bool,
    /// Multiplier on the verifier's routine time limits.
    pub time_scale: f64,
    /// Reset hold.
    pub reset_hold: Duration,
    /// Model latency (µs).
    pub latency_us: Option<(u64, u64)>,
    /// Seed of the model's latency generator.
    pub seed: u64,
    /// Open `file:` images read-only (write-protected): the run does not write.
    pub read_only: bool,
    /// Whether the verifier checks the run (`--no-verifier` clears it): off is
    /// `VerifierConfig::off`, with the time scale kept.
    pub verifier: bool,
    /// The memory monitor's full quarantine (`VerifierConfig::quarantine_all`); off leaves the
    /// verifier's default (on with `SCSIPORT_SIM_QUARANTINE=all`).
    pub quarantine_all: bool,
    /// The emulator's adversarial mode (`MachineBuilder::adversarial`): on Storport,
    /// `HwStorInterrupt` runs after each register access of a routine that does not hold the
    /// interrupt lock, as it preempts one on Windows.
    pub adversarial: bool,
}

impl RigConfig {
    /// From the command line; `default_disks` when no `--disk` was given; `access` says whether
    /// the run writes and whether that was asked for.
    ///
    /// # Errors
    /// A deterministic schedule asked for real hardware, options the HBA cannot have, images
    /// that are missing, not whole sectors or given twice, an unasked write to an image.
    pub fn from_args(a: &RunArgs, default_disks: &[&str], access: &Access) -> Result<Self, String> {
        let mode = a.mode.unwrap_or(if a.hba.is_model() { ModeArg::Deterministic } else { ModeArg::Concurrent });
        if mode == ModeArg::Deterministic && !a.hba.is_model() {
            return Err("--mode deterministic needs the device model: real hardware runs in real time (use --mode concurrent)".into());
        }
        if !a.hba.is_model() && !a.disks.is_empty() {
            return Err("--disk describes model disks; with --hba uio the disks are whatever the device has".into());
        }
        if !a.hba.is_model() && a.latency_us.is_some() {
            return Err("--latency-us sets the device model's latency; real hardware has its own".into());
        }
        if let Some(path) = &a.driver {
            check_driver(path)?;
        }
        let disks: Vec<DiskSpec> = if a.disks.is_empty() { default_disks.iter().map(|s| DiskSpec::fixed(s)).collect() } else { a.disks.clone() };
        check_images(&disks, a.trace.as_deref())?;
        if let (Access::WriteUnasked(what), Some(image)) = (access, disks.iter().find_map(DiskSpec::file)) {
            return Err(format!(
                "{what} writes to every disk, and --disk file:{image} is an image: pass --allow-write (or name a writing workload with --workload) to let it, or run a workload that only reads (--workload verify-pattern, read, inquiry)"
            ));
        }
        if disks.len() > disk_targets(usize::MAX).len() {
            return Err(format!("at most {} disks (targets 0..{MAX_TARGETS} without {INITIATOR_ID})", disk_targets(usize::MAX).len()));
        }
        Ok(Self {
            port: a.port,
            miniport: a.miniport,
            driver: a.driver.clone(),
            argument_string: a.argument_string.clone(),
            hba: a.hba.clone(),
            disks,
            schedule: match mode {
                ModeArg::Deterministic => Schedule::Deterministic { seed: a.seed },
                ModeArg::Concurrent => Schedule::Concurrent,
            },
            trace: a.trace.clone(),
            trace_dma: a.trace_dma,
            time_scale: a.time_scale,
            reset_hold: Duration::from_millis(a.reset_hold_ms),
            latency_us: a.latency_us,
            seed: a.seed,
            read_only: *access == Access::ReadOnly,
            verifier: !a.no_verifier,
            quarantine_all: false,
            adversarial: false,
        })
    }

    /// The verifier's settings: the defaults, with the time scale and the full quarantine asked
    /// for (which the environment may have switched on already); everything off without the
    /// verifier.
    fn verifier(&self) -> VerifierConfig {
        if !self.verifier {
            return VerifierConfig { time_scale: self.time_scale, ..VerifierConfig::off() };
        }
        let default = VerifierConfig::default();
        VerifierConfig { time_scale: self.time_scale, quarantine_all: self.quarantine_all || default.quarantine_all, ..default }
    }

    /// The mode's name.
    #[must_use]
    pub fn mode_name(&self) -> &'static str {
        match self.schedule {
            Schedule::Deterministic { .. } => "deterministic",
            Schedule::Concurrent => "concurrent",
        }
    }

    /// A one-line description of the HBA.
    #[must_use]
    pub fn hba_description(&self) -> String {
        match &self.hba {
            HbaArg::Model => "PVSCSI model (QEMU layout)".into(),
            HbaArg::ModelVmware => "PVSCSI model (VMware layout)".into(),
            HbaArg::Uio(bdf) => format!("PCI {bdf} through uio"),
        }
    }

    /// The driver's short name for `--json`: `rspvscsi`, `test`, or the image's file name.
    #[must_use]
    pub fn miniport_key(&self) -> String {
        match (&self.driver, self.miniport) {
            (Some(path), _) => image_name(path),
            (None, MiniportArg::Rspvscsi) => "rspvscsi".into(),
            (None, MiniportArg::Test) => "test".into(),
        }
    }

    /// The miniport's name, as the run's header says which driver ran: the linked-in one, the
    /// test miniport, or an image by its file name.
    #[must_use]
    pub fn miniport_name(&self) -> String {
        let name = match (&self.driver, self.miniport) {
            (Some(path), _) => format!("{} miniport (PE image, {})", image_name(path), path.display()),
            (None, MiniportArg::Rspvscsi) => "rspvscsi miniport (linked in)".into(),
            (None, MiniportArg::Test) => "test miniport".into(),
        };
        match self.port {
            PortArg::Scsiport => name,
            PortArg::Storport => format!("{name} on Storport"),
        }
    }
}

/// The file name an image is loaded under (`rspvscsi.sys`).
fn image_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// A machine with the miniport loaded and the disks it found.
pub struct Rig {
    /// The real device, when there is one (dropped before the machine's last reference).
    pub uio: Option<Arc<scsiport_sim::uio::UioHba>>,
    /// The machine.
    pub machine: Machine,
    /// The device model, when the HBA is the model.
    pub model: Option<PvscsiDevice>,
    /// The model's disks.
    pub model_disks: Vec<ModelDisk>,
    /// The disks the driver found (INQUIRY type 0, READ CAPACITY), by target.
    pub disks: Vec<DiskInfo>,
    /// Unit attentions retried so far.
    pub ua_retries: u32,
    /// How it was made.
    pub config: RigConfig,
    /// Time the load took (wall).
    pub load_time: Duration,
    /// The first error writing the trace file.
    trace_error: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig").field("disks", &self.disks).finish_non_exhaustive()
    }
}

/// Why a rig could not be made.
#[derive(Debug)]
pub enum RigError {
    /// Setting up the HBA, the disks or the trace failed.
    Setup(String),
    /// The machine stopped (bug check) or the driver did not load; the machine, for its
    /// violations.
    Machine(Error, Option<Box<Machine>>),
}

impl std::fmt::Display for RigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Setup(s) => f.write_str(s),
            Self::Machine(e, _) => write!(f, "{e}"),
        }
    }
}

impl Rig {
    /// Builds the machine, loads the miniport, and finds the disks.
    ///
    /// # Errors
    /// Setup failures, a failed load, a bug check.
    pub fn new(config: &RigConfig) -> Result<Self, RigError> {
        let mut builder = Machine::builder()
            .port(config.port.sim())
            .schedule(config.schedule)
            .reset_hold(config.reset_hold)
            .verifier(config.verifier())
            .adversarial(config.adversarial);
        let args = match (&config.argument_string, config.miniport, config.port) {
            (Some(s), _, _) => Some(s.clone()),
            (None, MiniportArg::Test, PortArg::Scsiport) => Some("tagged=1 qd=8".to_string()),
            (None, _, _) => None,
        };
        if let Some(s) = &args {
            builder = builder.argument_string(s);
        }
        let trace_error = Arc::new(Mutex::new(None));
        if let Some(path) = &config.trace {
            let f = File::create(path).map_err(|e| RigError::Setup(format!("--trace {}: {e}", path.display())))?;
            builder = builder.trace(TraceFile { out: BufWriter::with_capacity(1 << 16, f), error: Arc::clone(&trace_error) }).trace_dma(config.trace_dma);
        }
        let mut model = None;
        let mut model_disks = Vec::new();
        let mut uio = None;
        let machine = match &config.hba {
            HbaArg::Model | HbaArg::ModelVmware => {
                let dma = SimDma::default();
                let layout = if config.hba == HbaArg::Model { PvscsiLayout::Qemu } else { PvscsiLayout::Vmware };
                let mut cfg = PvscsiConfig { layout, seed: config.seed, ..PvscsiConfig::default() };
                if let Some((lo, hi)) = config.latency_us {
                    cfg.latency = Latency::range(lo.saturating_mul(1000), hi.saturating_mul(1000));
                }
                let device = PvscsiDevice::new(cfg, Arc::new(dma.clone()), builder.clock());
                for (i, (d, target)) in config.disks.iter().zip(disk_targets(config.disks.len())).enumerate() {
                    // As scsi-hd on a drive named like the QEMU harness's (d0, d1, ...): no
                    // serial number unless given, the drive name as device identification.
                    let dc = DiskConfig {
                        serial: d.serial.clone(),
                        drive_name: Some(d.name.clone().unwrap_or_else(|| format!("d{i}"))),
                        write_protect: config.read_only && d.file().is_some(),
                        ..DiskConfig::default()
                    };
                    let spec = &d.medium;
                    let disk = Disk::from_spec(spec, &dc).map_err(|e| RigError::Setup(format!("--disk {spec}: {e}")))?;
                    if disk.block_size() as usize != SECTOR {
                        return Err(RigError::Setup(format!("--disk {spec}: only 512-byte sectors are supported")));
                    }
                    device
                        .attach(target, disk.clone())
                        .map_err(|e| RigError::Setup(format!("attaching {spec} as target {target}: {e:?}")))?;
                    model_disks.push(ModelDisk { target, disk, image: d.file().map(PathBuf::from) });
                }
                model = Some(device.clone());
                builder.adapter(Arc::new(device), Arc::new(dma)).build()
            }
            HbaArg::Uio(bdf) => {
                let hba = Arc::new(
                    scsiport_sim::uio::UioHba::open(bdf).map_err(|e| RigError::Setup(format!("--hba uio:{bdf}: {e}")))?,
                );
                let dma =
                    scsiport_sim::uio::UioDma::new().map_err(|e| RigError::Setup(format!("DMA memory for uio:{bdf}: {e}")))?;
                uio = Some(Arc::clone(&hba));
                builder.adapter(hba, Arc::new(dma)).build()
            }
        };
        let started = std::time::Instant::now();
        let loaded = if let Some(path) = &config.driver {
            let bytes = std::fs::read(path).map_err(|e| RigError::Setup(format!("--driver {}: {e}", path.display())))?;
            let exports = match config.port {
                PortArg::Scsiport => scsiport_sim::scsiport_exports(),
                PortArg::Storport => scsiport_sim::storport_exports(),
            };
            let image = scsiport_sim::pe::load(&image_name(path), &bytes, &exports)
                .map_err(|e| RigError::Setup(format!("--driver {}: {e}", path.display())))?;
            machine.load_image(Arc::new(image))
        } else {
            let entry: DriverEntryFn = match (config.miniport, config.port) {
                (MiniportArg::Rspvscsi, PortArg::Scsiport) => rspvscsi::scsi_port::driver_entry,
                (MiniportArg::Rspvscsi, PortArg::Storport) => rspvscsi::stor_port::driver_entry,
                (MiniportArg::Test, PortArg::Scsiport) => scsiport_sim::test_miniport::driver_entry,
                (MiniportArg::Test, PortArg::Storport) => scsiport_sim::stor_test_miniport::driver_entry,
            };
            machine.load_driver(entry)
        };
        if let Err(e) = loaded {
            return Err(RigError::Machine(e, Some(Box::new(machine))));
        }
        let load_time = started.elapsed();
        let mut rig = Self {
            uio,
            machine,
            model,
            model_disks,
            disks: Vec::new(),
            ua_retries: 0,
            config: config.clone(),
            load_time,
            trace_error,
        };
        match rig.discover() {
            Ok(d) => rig.disks = d,
            Err(e) => return Err(RigError::Machine(e, Some(Box::new(rig.into_machine())))),
        }
        Ok(rig)
    }

    /// Flushes the trace; the first error writing it, if there was one.
    #[must_use]
    pub fn finish_trace(&self) -> Option<String> {
        self.machine.flush_trace();
        let path = self.config.trace.as_ref()?;
        let e = self.trace_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()?;
        Some(format!("--trace {}: writing the trace failed: {e}", path.display()))
    }

    /// Makes what a run wrote durable: SYNCHRONIZE CACHE(10) through the driver to every disk it
    /// found (the disk's write cache to its medium; on the model the image's `fdatasync`), then
    /// `fsync` of every image from here as well.
    ///
    /// # Errors
    /// The machine stopped.
    pub fn make_durable(&mut self) -> Result<Durability, Error> {
        let mut d = Durability::default();
        for t in self.disks.iter().map(|d| d.target).collect::<Vec<_>>() {
            let c = self.execute(&Request::synchronize_cache(t))?;
            d.synchronize_cache.push((t, c.is_success(), describe(&c)));
        }
        for md in &self.model_disks {
            if let Some(path) = &md.image {
                let r = File::open(path).and_then(|f| f.sync_all());
                d.fsync.push((path.clone(), r.is_ok(), r.err().map_or_else(String::new, |e| e.to_string())));
            }
        }
        Ok(d)
    }

    /// Gives up the rig, keeping the machine (for its violations).
    #[must_use]
    pub fn into_machine(self) -> Machine {
        self.machine
    }

    /// Runs a request; on UNIT ATTENTION (the device's report of a power-on or reset, which a
    /// class driver answers by retrying) runs it again, a few times at most.
    ///
    /// # Errors
    /// The machine stopped.
    pub fn execute(&mut self, req: &Request) -> Result<Completion, Error> {
        let mut c = self.machine.execute(req.clone())?;
        for _ in 0..UA_RETRIES {
            if !is_unit_attention(&c) {
                break;
            }
            self.ua_retries += 1;
            c = self.machine.execute(req.clone())?;
        }
        Ok(c)
    }

    /// INQUIRY and READ CAPACITY of every LU 0 the bus scan found; the direct-access ones.
    fn discover(&mut self) -> Result<Vec<DiskInfo>, Error> {
        let mut out = Vec::new();
        let mut lus = self.machine.logical_units(0);
        lus.sort_unstable();
        for (path, target, lun) in lus {
            if path != 0 || lun != 0 {
                continue;
            }
            let inq = self.execute(&Request::inquiry(target))?;
            let Some(&b0) = inq.data.first() else { continue };
            if !inq.is_success() || b0 != 0 {
                // Not connected, or not a direct-access device.
                continue;
            }
            let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(inq.data.get(r).unwrap_or(&[])).trim().to_string();
            let (vendor, product) = (text(8..16), text(16..32));
            let Some((blocks, block_size)) = self.read_capacity(target)? else { continue };
            out.push(DiskInfo { target, blocks, block_size, vendor, product });
        }
        Ok(out)
    }

    /// READ CAPACITY(10), and (16) when the disk is too large for (10).
    ///
    /// # Errors
    /// The machine stopped.
    pub fn read_capacity(&mut self, target: u8) -> Result<Option<(u64, u32)>, Error> {
        let c = self.execute(&Request::read_capacity10(target))?;
        if !c.is_success() || c.data.len() < 8 {
            return Ok(None);
        }
        let last = u32::from_be_bytes([c.data[0], c.data[1], c.data[2], c.data[3]]);
        let bs = u32::from_be_bytes([c.data[4], c.data[5], c.data[6], c.data[7]]);
        if last != u32::MAX {
            return Ok(Some((u64::from(last) + 1, bs)));
        }
        Ok(self.read_capacity16(target)?.map(|(b, s, _)| (b, s)))
    }

    /// READ CAPACITY(16): blocks, block size, and the completion.
    ///
    /// # Errors
    /// The machine stopped.
    pub fn read_capacity16(&mut self, target: u8) -> Result<Option<(u64, u32, Completion)>, Error> {
        let cdb = [0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];
        let c = self.execute(&Request::scsi(target, &cdb, scsiport_sim::Direction::In, vec![0; 32]))?;
        if !c.is_success() || c.data.len() < 12 {
            return Ok(None);
        }
        let mut last = [0u8; 8];
        last.copy_from_slice(&c.data[..8]);
        let bs = u32::from_be_bytes([c.data[8], c.data[9], c.data[10], c.data[11]]);
        Ok(Some((u64::from_be_bytes(last) + 1, bs, c)))
    }

    /// Checks that the driver found exactly the model's disks, with their sizes.
    ///
    /// # Errors
    /// What differs.
    pub fn check_discovery(&self) -> Result<(), String> {
        if self.model.is_none() {
            return if self.disks.is_empty() { Err("the driver found no disk on the bus".into()) } else { Ok(()) };
        }
        let want: Vec<(u8, u64)> = self.model_disks.iter().map(|d| (d.target, d.disk.blocks())).collect();
        let got: Vec<(u8, u64)> = self.disks.iter().map(|d| (d.target, d.blocks)).collect();
        if want == got { Ok(()) } else { Err(format!("the model has disks (target, blocks) {want:?} but the driver found {got:?}")) }
    }

    /// Problems the device model saw in how the driver programmed it (DMA outside the
    /// driver's buffers, forbidden contexts, ring overruns, bad register accesses).
    #[must_use]
    pub fn device_faults(&self) -> Vec<String> {
        let Some(dev) = &self.model else { return Vec::new() };
        let s = dev.stats();
        let mut out = Vec::new();
        let mut check = |n: u64, what: &str| {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        };
        check(s.dma_faults, "DMA accesses outside live buffers");
        check(s.direction_contradictions, "requests whose direction contradicts the CDB");
        check(s.bad_contexts, "request contexts VMware would refuse");
        check(s.completion_overflows, "completion ring overruns");
        check(s.narrow_accesses + s.misaligned_accesses + s.invalid_accesses, "bad register accesses");
        if let Some(f) = s.last_dma_fault {
            out.push(format!("last DMA fault: {f:?}"));
        }
        out
    }

    /// A one-line description of the HBA.
    #[must_use]
    pub fn hba_description(&self) -> String {
        self.config.hba_description()
    }
}

/// Whether a completion is the device's UNIT ATTENTION (CHECK CONDITION, sense key 6).
#[must_use]
pub fn is_unit_attention(c: &Completion) -> bool {
    c.status() == sys::SRB_STATUS_ERROR
        && c.scsi_status == sys::SCSISTAT_CHECK_CONDITION
        && c.sense.get(2).is_some_and(|k| k & 0x0F == sys::SCSI_SENSE_UNIT_ATTENTION)
}

/// Sense key / ASC / ASCQ of fixed-format sense.
#[must_use]
pub fn sense_triple(c: &Completion) -> Option<(u8, u8, u8)> {
    Some((c.sense.get(2)? & 0x0F, *c.sense.get(12)?, *c.sense.get(13)?))
}

/// A completion in one line: status, SCSI status, sense.
#[must_use]
pub fn describe(c: &Completion) -> String {
    use std::fmt::Write;
    let mut s = format!("SRB status {:#04x}", c.srb_status);
    if c.scsi_status != 0 {
        let _ = write!(s, ", SCSI status {:#04x}", c.scsi_status);
    }
    if let Some((k, asc, ascq)) = sense_triple(c) {
        let _ = write!(s, ", sense {k:02x}/{asc:02x}/{ascq:02x}");
    }
    s
}

/// A READ of `blocks` sectors at `lba` into `buf` (of `blocks` sectors), so that a caller can
/// reuse buffers instead of zeroing a new one per request: the port overwrites the bytes the
/// miniport reports transferred and leaves the rest of `buf` as it was, which a caller that
/// checks only complete transfers never looks at.
#[must_use]
pub fn read_request(target: u8, lba: u64, blocks: u32, buf: Vec<u8>) -> Request {
    let small = u32::try_from(lba).ok().zip(u16::try_from(blocks).ok()).filter(|(l, b)| l.checked_add(u32::from(*b)).is_some());
    let mut req = match small {
        Some((l, b)) => Request::read10(target, l, b, 0),
        None => Request::read16(target, lba, blocks, 0),
    };
    req.data = buf;
    req
}

/// READ or WRITE of `blocks` at `lba`, the smallest CDB that holds it.
#[must_use]
pub fn rw_request(target: u8, lba: u64, blocks: u32, write: Option<Vec<u8>>) -> Request {
    let small = u32::try_from(lba).ok().zip(u16::try_from(blocks).ok()).filter(|(l, b)| l.checked_add(u32::from(*b)).is_some());
    match (small, write) {
        (Some((l, b)), Some(data)) => Request::write10(target, l, b, data),
        (Some((l, b)), None) => Request::read10(target, l, b, blocks as usize * SECTOR),
        (None, Some(data)) => Request::write16(target, lba, blocks, data),
        (None, None) => Request::read16(target, lba, blocks, blocks as usize * SECTOR),
    }
}
