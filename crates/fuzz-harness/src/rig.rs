//! The machine the SRB and hostile-device targets drive: the rspvscsi driver linked into the
//! test (the `rspvscsi` crate, as `tests/` run it) in the SCSI Port emulator, deterministic
//! schedule, over the PVSCSI model with small RAM disks, and the bookkeeping both targets share:
//! every request followed to its one completion, its status judged, its data checked against
//! [`Shadow`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use scsiport_sim::disk::Disk;
use scsiport_sim::mem::SimDma;
use scsiport_sim::pvscsi::{Latency, PvscsiConfig, PvscsiDevice, PvscsiLayout};
use scsiport_sim::{Completion, Machine, Port, Request, Schedule, Ticket};
use scsiport_sys as sys;

use crate::Failure;
use crate::shadow::{CapacityToken, ReadToken, SECTOR, Shadow, WriteEnd, patterns};

/// Sectors of each RAM disk: small, so that a whole-disk check costs little and random LBAs
/// often fall inside.
pub const DISK_BLOCKS: u64 = 512;
/// The driver's `MaximumTransferLength` (driver/layout.rs): what it may accept in one request.
pub const MAX_TRANSFER: usize = 128 * 1024;
/// `MaximumNumberOfTargets` the driver reports when the device cannot say (QEMU).
pub const TARGETS: u8 = 16;

/// How the machine is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // four independent switches of one input byte
pub struct Setup {
    /// QEMU's or VMware's PVSCSI (VMware reports data lengths, so underruns happen).
    pub vmware: bool,
    /// Contract §4.3's adversarial mode: `HwScsiStartIo` during the enable callback.
    pub adversarial: bool,
    /// Disks on targets 0 and 1 (else only 0).
    pub two_disks: bool,
    /// `SenseInfoBufferLength` of every request (18..=255).
    pub sense_len: u8,
    /// Seed of the schedule and the device's latencies.
    pub seed: u16,
    /// Device latency, µs: from `latency_min` to `latency_min + latency_spread`.
    pub latency_min: u8,
    /// See `latency_min`.
    pub latency_spread: u8,
    /// The Storport flavour on the emulator's Storport (else the SCSI Port flavour on SCSI
    /// Port): the same device code behind the other port's glue, locks and DPC.
    pub storport: bool,
}

impl Setup {
    /// Decodes the setup (7 bytes).
    pub fn read(r: &mut crate::bytes::Reader<'_>) -> Self {
        let flags = r.u8();
        Self {
            vmware: flags & 1 != 0,
            adversarial: flags & 2 != 0,
            two_disks: flags & 4 == 0,
            sense_len: r.u8().max(18),
            seed: r.u16(),
            latency_min: r.u8(),
            latency_spread: r.u8(),
            storport: flags & 8 != 0,
        }
    }

    /// Encodes it.
    pub fn write(&self, w: &mut crate::bytes::Writer) {
        w.u8(u8::from(self.vmware) | (u8::from(self.adversarial) << 1) | (u8::from(!self.two_disks) << 2) | (u8::from(self.storport) << 3));
        w.u8(self.sense_len).u16(self.seed).u8(self.latency_min).u8(self.latency_spread);
    }
}

/// Storport copies of some of a target's seeds: for each `(name, storport_name)` of `names`, the
/// seed `name` with [`Setup::storport`] set, named `storport_name`.
#[must_use]
pub fn on_storport<O: Clone, const MAX: usize>(
    seeds: &[(&'static str, crate::bytes::Input<Setup, O, MAX>)],
    names: &[(&str, &'static str)],
) -> Vec<(&'static str, crate::bytes::Input<Setup, O, MAX>)> {
    names
        .iter()
        .filter_map(|(name, storport_name)| {
            let (_, input) = seeds.iter().find(|(n, _)| n == name)?;
            Some((*storport_name, crate::bytes::Input { setup: Setup { storport: true, ..input.setup }, ops: input.ops.clone() }))
        })
        .collect()
}

impl crate::bytes::Field for Setup {
    fn read_from(r: &mut crate::bytes::Reader<'_>) -> Self {
        Self::read(r)
    }

    fn write_to(&self, w: &mut crate::bytes::Writer) {
        self.write(w);
    }
}

impl Default for Setup {
    fn default() -> Self {
        Self { vmware: false, adversarial: false, two_disks: true, sense_len: 18, seed: 1, latency_min: 20, latency_spread: 80, storport: false }
    }
}

/// What the judge knows about a request when it completes.
#[derive(Clone, Debug)]
pub enum Kind {
    /// A READ or WRITE the oracle follows (built by the target, not raw bytes).
    Block {
        /// WRITE (else READ).
        write: bool,
        /// Addressed to a disk's LUN 0 on bus 0.
        addressed: bool,
        /// First LBA and blocks, as the CDB says.
        lba: u64,
        /// See `lba`.
        blocks: u64,
        /// The blocks are all on the disk.
        in_range: bool,
        /// The SRB's direction agrees with the CDB (or is unspecified).
        direction_ok: bool,
        /// For a READ: the sectors' candidates at submission.
        token: Option<ReadToken>,
    },
    /// Any other `EXECUTE_SCSI` (a raw CDB).
    Scsi,
    /// A raw READ CAPACITY(10)/(16) to a disk's LUN 0 on bus 0, which may teach the driver the
    /// disk's block size: its answer holds the block length at byte `at`
    /// ([`capacity_block_length_at`]).
    Capacity {
        /// See above.
        at: usize,
        /// For [`Shadow::capacity_completed`].
        token: CapacityToken,
    },
    /// A raw MODE SELECT(6)/(10), which may make the driver forget the target's block size.
    ModeSelect,
    /// `SRB_FUNCTION_POWER`: Storport's power request to a miniport
    /// (`DDI-storport:ns-storport-_scsi_power_request_block`), which one with nothing to power
    /// down completes `SUCCESS`; SCSI Port defines no such request, and a miniport refuses it.
    Power,
    /// `SRB_FUNCTION_ABORT_COMMAND`.
    Abort,
    /// `SRB_FUNCTION_RESET_BUS`.
    ResetBus,
    /// `SRB_FUNCTION_RESET_DEVICE` / `RESET_LOGICAL_UNIT`.
    ResetDevice,
    /// `FLUSH` / `SHUTDOWN` (the port answers them itself: the driver does not cache).
    Flush,
    /// A function a SCSI Port miniport does not handle.
    Other,
}

/// A request on its way.
#[derive(Clone, Debug)]
pub struct Pending {
    /// What it is.
    pub kind: Kind,
    /// Its `DataTransferLength`.
    pub length: usize,
    /// Its target.
    pub target: u8,
    /// The fault count when it was submitted.
    pub faults_at_submit: u64,
    /// `SRB_FLAGS_DISABLE_AUTOSENSE` is clear (a CHECK CONDITION then comes with its sense).
    pub autosense: bool,
    /// Short text for failure messages.
    pub what: String,
}

/// The machine with the driver loaded, and the judge.
pub struct Rig {
    /// The machine.
    pub machine: Machine,
    /// The PVSCSI model.
    pub device: PvscsiDevice,
    /// The disks, by target.
    pub disks: BTreeMap<u8, Disk>,
    /// The data oracle.
    pub shadow: Shadow,
    /// Every ticket submitted, in order (aborts name one of them).
    pub tickets: Vec<Ticket>,
    /// Requests not yet seen complete.
    pub pending: BTreeMap<u64, Pending>,
    /// Faults made so far (resets, aborts, injections, hostile writes): a request submitted
    /// with none made until its completion, none of the port's own (timeouts, resets) and no
    /// injection waiting for a victim must simply succeed.
    pub faults: u64,
    /// Requests injections were installed for (each `count`); the device counts those it hit.
    pub injections: u64,
    /// Whether the device may lie (hostile target): status and length rules are then looser.
    pub hostile: bool,
    /// Completions seen, by `SRB_STATUS`.
    pub statuses: BTreeMap<u8, u64>,
    /// Requests an `ABORT_COMMAND` named: any of them may end `SRB_STATUS_ABORTED`.
    pub aborted: std::collections::BTreeSet<u64>,
    sense_len: u8,
    /// The Storport flavour on the emulator's Storport ([`Setup::storport`]).
    storport: bool,
    dma: SimDma,
}

impl Rig {
    /// Builds the machine and loads the driver.
    pub fn new(setup: &Setup) -> Result<Self, Failure> {
        memory_monitor_works()?;
        let mut builder = Machine::builder()
            .port(if setup.storport { Port::Storport } else { Port::ScsiPort })
            .schedule(Schedule::Deterministic { seed: u64::from(setup.seed) })
            .sense_buffer_len(setup.sense_len)
            .adversarial(setup.adversarial)
            .reset_hold(Duration::from_millis(50))
            .wait_timeout(Duration::from_secs(20));
        if let Some(path) = std::env::var_os("RSPVSCSI_FUZZ_TRACE") {
            let file = std::fs::File::create(&path).map_err(|e| Failure::setup(format!("{}: {e}", path.to_string_lossy())))?;
            builder = builder.trace(std::io::BufWriter::new(file));
        }
        let dma = SimDma::default();
        let min = u64::from(setup.latency_min) * 1000;
        let config = PvscsiConfig {
            layout: if setup.vmware { PvscsiLayout::Vmware } else { PvscsiLayout::Qemu },
            latency: Latency::range(min, min + u64::from(setup.latency_spread) * 1000),
            seed: u64::from(setup.seed),
            ..PvscsiConfig::default()
        };
        let device = PvscsiDevice::new(config, Arc::new(dma.clone()), builder.clock());
        let mut shadow = Shadow::default();
        let mut disks = BTreeMap::new();
        for target in if setup.two_disks { &[0u8, 1][..] } else { &[0u8][..] } {
            let disk = Disk::ram(DISK_BLOCKS * SECTOR as u64).map_err(|e| Failure::setup(format!("RAM disk: {e}")))?;
            let initial: Vec<u8> = (0..DISK_BLOCKS).flat_map(|l| crate::shadow::pattern(*target, l, 0)).collect();
            disk.write_sectors(0, &initial).map_err(|e| Failure::setup(format!("RAM disk: {e}")))?;
            device.attach(*target, disk.clone()).map_err(|e| Failure::setup(format!("attach: {e}")))?;
            shadow.add_disk(*target, DISK_BLOCKS);
            disks.insert(*target, disk);
        }
        let machine = builder.adapter(Arc::new(device.clone()), Arc::new(dma.clone())).build();
        let entry = if setup.storport { rspvscsi::stor_port::driver_entry } else { rspvscsi::scsi_port::driver_entry };
        machine.load_driver(entry).map_err(|e| Failure::new(format!("the driver did not load: {e}")))?;
        // The driver's adapter reset at bring-up left every disk with a unit attention, which a
        // class driver clears before its first I/O: a request of the input that meets one has
        // met a fault the input did not make. The input's resets raise one again.
        for disk in disks.values() {
            disk.set_unit_attention(None);
        }
        let rig = Self {
            machine,
            device,
            disks,
            shadow,
            tickets: Vec::new(),
            pending: BTreeMap::new(),
            faults: 0,
            injections: 0,
            hostile: false,
            statuses: BTreeMap::new(),
            aborted: std::collections::BTreeSet::new(),
            sense_len: setup.sense_len,
            storport: setup.storport,
            dma,
        };
        rig.check_clean("bring-up")?;
        Ok(rig)
    }

    /// Submits a request the judge will follow; returns its ticket number.
    pub fn submit(&mut self, req: Request, kind: Kind, what: String) -> Result<u64, Failure> {
        let length = req.data.len();
        let target = req.target;
        let autosense = req.extra_flags & sys::SRB_FLAGS_DISABLE_AUTOSENSE == 0;
        let t = self.machine.submit(req).map_err(|e| Failure::new(format!("{what}: submit refused: {e}")))?;
        self.tickets.push(t);
        let faults_at_submit = if self.device.stats().injected < self.injections { u64::MAX } else { self.fault_count() };
        self.pending.insert(t.0, Pending { kind, length, target, faults_at_submit, autosense, what });
        Ok(t.0)
    }

    /// A WRITE the oracle follows: `len` bytes of a fresh generation's patterns from `lba`.
    #[must_use]
    pub fn write_data(&mut self, target: u8, lba: u64, len: usize) -> (Vec<u8>, u32) {
        let g = self.shadow.generation();
        (patterns(target, lba, len, g), g)
    }

    /// For failure reports: the completions the device filled, and the completion producer and
    /// consumer indexes in the rings-state page.
    #[must_use]
    pub fn ring_indexes(&self) -> String {
        use scsiport_sim::mem::GuestMemory as _;
        let info = self.device.ring_info();
        let word = |off: u64| {
            let mut b = [0u8; 4];
            self.dma.read(info.rings_state_pa + off, &mut b).map_or(u32::MAX, |()| u32::from_le_bytes(b))
        };
        format!(
            "device filled {} completions; cmpProdIdx {:#x}, cmpConsIdx {:#x}",
            info.completions_filled,
            word(scsiport_sim::pvscsi::regs::rs::CMP_PROD_IDX),
            word(scsiport_sim::pvscsi::regs::rs::CMP_CONS_IDX)
        )
    }

    /// Faults so far: the input's, and the port's own timeouts and bus resets.
    fn fault_count(&self) -> u64 {
        let s = self.machine.stats();
        self.faults + s.timeouts + s.bus_resets + s.resets_detected
    }

    /// Takes every completion that has arrived and judges it.
    pub fn collect(&mut self) -> Result<(), Failure> {
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        for id in ids {
            if let Some(c) = self.machine.try_take(Ticket(id)) {
                self.judge(&c)?;
            }
        }
        Ok(())
    }

    /// Runs until request `id` completes, then judges everything that did.
    pub fn wait(&mut self, id: u64) -> Result<(), Failure> {
        if !self.pending.contains_key(&id) {
            return Ok(());
        }
        let what = self.pending.get(&id).map(|p| p.what.clone()).unwrap_or_default();
        match self.machine.wait(Ticket(id)) {
            Ok(c) => self.judge(&c)?,
            Err(e) => return Err(self.failure(format!("{what} never completed: {e}"))),
        }
        self.collect()
    }

    /// Runs until every request has completed and the machine is idle; then checks the media.
    pub fn settle(&mut self) -> Result<(), Failure> {
        while let Some(&id) = self.pending.keys().next() {
            self.wait(id)?;
        }
        self.machine.run_until_idle().map_err(|e| self.failure(format!("the machine does not settle: {e}")))?;
        self.collect()?;
        for (target, disk) in &self.disks {
            let medium = disk.read_sectors(0, DISK_BLOCKS).map_err(|e| Failure::setup(format!("reading the medium: {e}")))?;
            self.shadow.resync(*target, &medium).map_err(Failure::new)?;
        }
        self.check_clean("settled")
    }

    fn failure(&self, message: String) -> Failure {
        let v = self.machine.violations();
        if v.is_empty() { Failure::new(message) } else { Failure::new(format!("{message}; verifier: {v:?}")) }
    }

    /// No verifier violation; the device saw nothing a correct driver never does.
    pub fn check_clean(&self, when: &str) -> Result<(), Failure> {
        let v = self.machine.violations();
        if !v.is_empty() {
            return Err(Failure::new(format!("{when}: verifier violations: {v:?}")));
        }
        let d = self.device.stats();
        let mut bad = Vec::new();
        if d.dma_faults != 0 {
            bad.push(format!("{} device DMA faults (last {:?})", d.dma_faults, d.last_dma_fault));
        }
        if d.bad_contexts != 0 {
            bad.push(format!("{} contexts VMware refuses", d.bad_contexts));
        }
        if d.direction_contradictions != 0 {
            bad.push(format!("{} requests whose direction contradicts their CDB (QEMU never completes them)", d.direction_contradictions));
        }
        if d.dma_waits != 0 {
            bad.push(format!("{} READs or WRITEs given no buffer (QEMU's DMA never completes them)", d.dma_waits));
        }
        if d.stuck_at_adapter_reset != 0 {
            bad.push(format!("{} requests held at an adapter reset (QEMU aborts)", d.stuck_at_adapter_reset));
        }
        if d.narrow_accesses + d.misaligned_accesses + d.invalid_accesses != 0 {
            bad.push("register accesses of the wrong width or place".into());
        }
        if d.bad_flags != 0 {
            bad.push(format!("{} requests with reserved flags", d.bad_flags));
        }
        if !self.hostile && d.completion_overflows != 0 {
            bad.push(format!("{} completion ring overruns", d.completion_overflows));
        }
        if bad.is_empty() { Ok(()) } else { Err(Failure::new(format!("{when}: the device saw {}", bad.join(", ")))) }
    }

    /// Judges one completion: exactly once, a documented status for what it was, and data
    /// reported as good is good.
    pub fn judge(&mut self, c: &Completion) -> Result<(), Failure> {
        let Some(p) = self.pending.remove(&c.ticket.0) else {
            return Err(Failure::new(format!("request {} completed twice (or was never submitted)", c.ticket.0)));
        };
        let status = c.status();
        *self.statuses.entry(status).or_default() += 1;
        let disturbed = self.fault_count() != p.faults_at_submit || c.timed_out;
        let fail = |why: String| Failure::new(format!("{}: {why} (completion: {c})", p.what, c = Brief(c)));
        let aborted = status == sys::SRB_STATUS_ABORTED && self.aborted.contains(&c.ticket.0);
        // Storport refuses, before the miniport sees it, any request longer than the
        // MaximumTransferLength the miniport declared, whatever its function (a class driver
        // splits its transfers to it; the emulator's Storport, port/stor/io.rs `refuses`).
        // Within it the driver's NumberOfPhysicalBreaks covers any alignment (driver/layout.rs).
        let over_the_limit = self.storport && status == sys::SRB_STATUS_INVALID_REQUEST && p.length > MAX_TRANSFER;
        if !documented(&p.kind, status) && !aborted && !over_the_limit {
            return Err(fail(format!("status {status:#04x} is not one this request can end with")));
        }
        if usize::try_from(c.data_transfer_length).unwrap_or(usize::MAX) > p.length {
            return Err(fail("DataTransferLength grew".into()));
        }
        if status == sys::SRB_STATUS_SUCCESS && c.scsi_status != sys::SCSISTAT_GOOD {
            return Err(fail("SUCCESS with a SCSI status other than GOOD".into()));
        }
        if c.srb_status & sys::SRB_STATUS_AUTOSENSE_VALID != 0 && c.sense.len() > usize::from(self.sense_len()) {
            return Err(fail("more sense than the sense buffer holds".into()));
        }
        if let Kind::Block { write, addressed, blocks, in_range, direction_ok, token, .. } = &p.kind {
            let expected = usize::try_from(*blocks).unwrap_or(usize::MAX).saturating_mul(SECTOR);
            let transferred = usize::try_from(c.data_transfer_length).unwrap_or(usize::MAX);
            let may_succeed = *addressed
                && *in_range
                && p.length == expected
                && (p.length <= MAX_TRANSFER)
                && (*direction_ok || p.length == 0);
            if status == sys::SRB_STATUS_SUCCESS && !may_succeed {
                return Err(fail(if !*addressed {
                    "SUCCESS from no disk".into()
                } else if !*in_range {
                    "SUCCESS for blocks past the end of the disk".into()
                } else if p.length != expected {
                    format!("SUCCESS with {} bytes for a CDB of {expected} bytes ({blocks} blocks): a short or long transfer not reported", p.length)
                } else if p.length > MAX_TRANSFER {
                    format!("SUCCESS for {} bytes, over MaximumTransferLength ({MAX_TRANSFER})", p.length)
                } else {
                    "SUCCESS with a data direction that contradicts the CDB".into()
                }));
            }
            if status == sys::SRB_STATUS_SUCCESS && transferred != expected {
                return Err(fail(format!("SUCCESS reporting {transferred} bytes of {expected}")));
            }
            // A reset leaves a unit attention for the next command to each disk, however long
            // after; without autosense it is a CHECK CONDITION with no sense to tell it by.
            let attention = unit_attention(c)
                || (!p.autosense && self.fault_count() > 0 && c.scsi_status == sys::SCSISTAT_CHECK_CONDITION);
            if may_succeed && !disturbed && !self.hostile && status != sys::SRB_STATUS_SUCCESS && !attention {
                return Err(fail("a well-formed request to a disk failed with no fault made".into()));
            }
            let good = status == sys::SRB_STATUS_SUCCESS || status == sys::SRB_STATUS_DATA_OVERRUN;
            if *write {
                let end = match status {
                    sys::SRB_STATUS_SUCCESS => WriteEnd::Success,
                    // The driver's refusals (driver/device.rs `check`), before the device.
                    sys::SRB_STATUS_INVALID_REQUEST | sys::SRB_STATUS_INVALID_PATH_ID | sys::SRB_STATUS_INVALID_TARGET_ID => WriteEnd::Refused,
                    _ => WriteEnd::Failed,
                };
                self.shadow.write_completed(c.ticket.0, end);
            } else if good
                && let Some(token) = token
            {
                let n = transferred.min(expected).min(c.data.len());
                if let Some(data) = c.data.get(..n) {
                    self.shadow.check_read(token, data).map_err(|e| fail(format!("{status:#04x} with wrong data: {e}")))?;
                }
            }
        }
        match &p.kind {
            Kind::Capacity { at, token } => {
                // As driver/device.rs `learn_from` does: a READ CAPACITY that completes SUCCESS or
                // DATA_OVERRUN, with the block length in its buffer, a plausible size.
                let learned = matches!(status, sys::SRB_STATUS_SUCCESS | sys::SRB_STATUS_DATA_OVERRUN)
                    && c.reached_miniport
                    && c.bytes().get(*at..at.saturating_add(4)).is_some_and(|b| {
                        let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        (512..=0x1_0000).contains(&size) && size % 512 == 0
                    });
                self.shadow.capacity_completed(*token, learned);
            }
            Kind::ModeSelect => self.shadow.mode_select_completed(p.target),
            _ => {}
        }
        Ok(())
    }

    fn sense_len(&self) -> u8 {
        self.sense_len
    }
}

/// Whether the emulator's memory monitor works in this process: the test miniport touching an
/// SRB after completing it, and dereferencing a register address, must each be caught by the
/// emulator's SIGSEGV handler and reported as the verifier's 0xD1. The fuzz targets run under
/// `AddressSanitizer` and libFuzzer, which install SIGSEGV handlers of their own; the emulator's,
/// installed later, handles faults in its guarded ranges and passes every other one on to
/// theirs (crates/scsiport-sim/src/guard.rs). Checked once per process, before the first input.
pub fn memory_monitor_works() -> Result<(), Failure> {
    static RESULT: std::sync::OnceLock<Result<(), Failure>> = std::sync::OnceLock::new();
    RESULT
        .get_or_init(|| {
            for (knob, rule) in [("touch_srb_after", scsiport_sim::Rule::TouchedAfterCompletion), ("direct_mmio", scsiport_sim::Rule::DirectRegisterAccess)] {
                let builder = Machine::builder().schedule(Schedule::Deterministic { seed: 1 }).argument_string(&format!("break={knob}"));
                let dma = SimDma::default();
                let device = PvscsiDevice::new(PvscsiConfig::default(), Arc::new(dma.clone()), builder.clock());
                let disk = Disk::ram(1 << 20).map_err(|e| Failure::setup(format!("RAM disk: {e}")))?;
                device.attach(0, disk).map_err(|e| Failure::setup(format!("attach: {e}")))?;
                let machine = builder.adapter(Arc::new(device), Arc::new(dma)).build();
                if machine.load_driver(scsiport_sim::test_miniport::driver_entry).is_ok() {
                    let _ = machine.execute(Request::read10(0, 0, 8, 4096));
                    let _ = machine.run_until_idle();
                }
                let got = machine.bugcheck().map(|b| b.rule);
                if got != Some(rule) {
                    return Err(Failure::setup(format!(
                        "the memory monitor does not work in this process (break={knob} gave {got:?}, not {rule:?}): the emulator's SIGSEGV handler is not reached (ASAN_OPTIONS allow_user_segv_handler=0?)"
                    )));
                }
            }
            Ok(())
        })
        .clone()
}

/// Where the answer of a READ CAPACITY(10) (byte 4) or READ CAPACITY(16) (SERVICE ACTION IN(16)
/// with service action 0x10; byte 8) holds the logical block length; `None` for any other CDB.
#[must_use]
pub fn capacity_block_length_at(cdb: &[u8]) -> Option<usize> {
    match cdb.first()? {
        0x25 => Some(4),
        0x9E if cdb.get(1).is_some_and(|b| b & 0x1F == 0x10) => Some(8),
        _ => None,
    }
}

/// A completion, short enough for a failure message.
struct Brief<'a>(&'a Completion);

impl std::fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.0;
        write!(
            f,
            "SrbStatus {:#04x}, ScsiStatus {:#04x}, DataTransferLength {}, sense {:02x?}, timed out {}",
            c.srb_status,
            c.scsi_status,
            c.data_transfer_length,
            &c.sense[..c.sense.len().min(14)],
            c.timed_out
        )
    }
}

/// CHECK CONDITION with sense key UNIT ATTENTION (the disks report one after every reset).
#[must_use]
pub fn unit_attention(c: &Completion) -> bool {
    c.status() == sys::SRB_STATUS_ERROR
        && c.scsi_status == sys::SCSISTAT_CHECK_CONDITION
        && c.sense.get(2).is_some_and(|k| k & 0x0F == sys::SCSI_SENSE_UNIT_ATTENTION)
}

/// The statuses the SRB documentation gives for a request of this kind
/// (`DDI:ns-srb-_scsi_request_block`, contract §5.3): an `EXECUTE_SCSI` may end in any
/// outcome of a command; an abort succeeds or fails; a reset succeeds or fails; a function the
/// miniport does not handle is `INVALID_REQUEST`. A bus reset may end any of them, and an
/// abort any it names (the port drops a request it still holds as `ABORTED`).
#[must_use]
pub fn documented(kind: &Kind, status: u8) -> bool {
    const EXECUTE: &[u8] = &[
        sys::SRB_STATUS_SUCCESS,
        sys::SRB_STATUS_ERROR,
        sys::SRB_STATUS_BUSY,
        sys::SRB_STATUS_ABORTED,
        sys::SRB_STATUS_INVALID_REQUEST,
        sys::SRB_STATUS_INVALID_PATH_ID,
        sys::SRB_STATUS_INVALID_TARGET_ID,
        sys::SRB_STATUS_INVALID_LUN,
        sys::SRB_STATUS_NO_DEVICE,
        sys::SRB_STATUS_NO_HBA,
        sys::SRB_STATUS_SELECTION_TIMEOUT,
        sys::SRB_STATUS_TIMEOUT,
        sys::SRB_STATUS_COMMAND_TIMEOUT,
        sys::SRB_STATUS_DATA_OVERRUN,
        sys::SRB_STATUS_REQUEST_SENSE_FAILED,
        sys::SRB_STATUS_PARITY_ERROR,
        sys::SRB_STATUS_UNEXPECTED_BUS_FREE,
        sys::SRB_STATUS_PHASE_SEQUENCE_FAILURE,
        sys::SRB_STATUS_MESSAGE_REJECTED,
    ];
    if status == sys::SRB_STATUS_BUS_RESET {
        return true;
    }
    match kind {
        Kind::Block { .. } | Kind::Scsi | Kind::Capacity { .. } | Kind::ModeSelect => EXECUTE.contains(&status),
        Kind::Abort => matches!(status, sys::SRB_STATUS_SUCCESS | sys::SRB_STATUS_ABORT_FAILED),
        Kind::ResetBus => matches!(status, sys::SRB_STATUS_SUCCESS | sys::SRB_STATUS_ERROR),
        Kind::ResetDevice => matches!(
            status,
            sys::SRB_STATUS_SUCCESS
                | sys::SRB_STATUS_ERROR
                | sys::SRB_STATUS_INVALID_REQUEST
                | sys::SRB_STATUS_INVALID_PATH_ID
                | sys::SRB_STATUS_INVALID_TARGET_ID
                | sys::SRB_STATUS_INVALID_LUN
                | sys::SRB_STATUS_NO_DEVICE
                | sys::SRB_STATUS_SELECTION_TIMEOUT
        ),
        Kind::Flush => status == sys::SRB_STATUS_SUCCESS,
        Kind::Power => matches!(status, sys::SRB_STATUS_SUCCESS | sys::SRB_STATUS_INVALID_REQUEST),
        Kind::Other => status == sys::SRB_STATUS_INVALID_REQUEST,
    }
}
