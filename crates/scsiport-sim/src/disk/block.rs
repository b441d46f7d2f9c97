//! [`Disk`]: a direct-access block device (SBC) over RAM or a raw image file.
//!
//! Command behaviour follows QEMU 7.2's `scsi-hd` (with the generic SCSI layer in front of it),
//! as the probe of `rspvscsi-sim` observed it against the real device in the QEMU harness
//! (issue 5 §4; the recorded answers are `crates/rspvscsi-sim/probe/qemu-7.2.json`): identity
//! strings and VPD pages, mode pages and MODE SELECT, unit attention and REQUEST SENSE, the
//! commands scsi-hd accepts (and the ones it refuses with which sense), residuals.
//!
//! Deliberate deviations from scsi-hd (none of them visible to the probe):
//! * The CHS geometry in mode pages 0x04/0x05 is QEMU's size-based guess (16 heads, 63
//!   sectors); QEMU prefers a geometry read from an MBR partition table present when the VM
//!   starts.
//! * MODE SELECT cannot change the block size (scsi-hd takes a block descriptor's block length).
//! * UNMAP discards nothing, as scsi-hd with QEMU's default `discard=ignore`.
//! * A backing-store error is CHECK CONDITION with MEDIUM ERROR (QEMU's `werror`/`rerror`
//!   policies can also stop the VM or report other codes).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use parking_lot::{Mutex, MutexGuard, RwLock};
use std::sync::Arc;

use super::backing::Backing;
use super::cdb::{self, BlockOp, Parsed, op};
use super::lun::{foreign_lun, report_luns, truncated};
use super::{DataBuffer, ScsiResponse, ScsiTarget, Sense, Transfer, signed};

/// Bytes moved per backing-store access during a transfer; bounds the bounce buffer.
const CHUNK: u64 = 256 * 1024;

/// Why a disk could not be created or accessed.
#[derive(Debug)]
pub enum DiskError {
    /// The backing file failed.
    Io(io::Error),
    /// A parameter is unusable (size, block size, range, spec).
    Invalid(String),
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "disk I/O error: {e}"),
            Self::Invalid(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for DiskError {}

impl From<io::Error> for DiskError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Settings of a [`Disk`]. The identity fields are QEMU `scsi-hd` properties with their QEMU
/// defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // independent settings, as QEMU's properties
pub struct DiskConfig {
    /// Logical block size: a power of two from 512 to 65536 (512 and 4096 are the usual ones).
    pub block_size: u32,
    /// Refuse writes with DATA PROTECT / WRITE PROTECTED and report WP in MODE SENSE.
    pub write_protect: bool,
    /// The caching page's WCE bit (QEMU's default cache mode has it set); MODE SELECT changes it.
    pub write_cache: bool,
    /// INQUIRY vendor (8 characters, space padded).
    pub vendor: String,
    /// INQUIRY product (16 characters, space padded).
    pub product: String,
    /// INQUIRY revision (4 characters; QEMU 7.2 reports its hardware version "2.5+").
    pub revision: String,
    /// Unit serial number (scsi-hd `serial`). With one, VPD page 0x80 reports its first 36
    /// characters and the device identification defaults to its first 20; without one (QEMU's
    /// default) page 0x80 does not exist.
    pub serial: Option<String>,
    /// The device identification (scsi-hd `device_id`): a vendor-specific ASCII designator in
    /// VPD page 0x83. `None`: the serial's first 20 characters, else the drive name.
    pub device_id: Option<String>,
    /// The name of the drive behind the disk (QEMU's `-drive id=`), what scsi-hd reports as
    /// device identification when it has no serial. `None`: no designator at all.
    pub drive_name: Option<String>,
    /// World wide name (scsi-hd `wwn`): an NAA designator in VPD page 0x83 when set.
    pub wwn: Option<u64>,
    /// Medium rotation rate of VPD page 0xB1 (scsi-hd `rotation_rate`; 0 = not reported, 1 =
    /// non-rotating).
    pub rotation_rate: u16,
    /// DPOFUA in MODE SENSE's device-specific parameter (scsi-hd `dpofua`, off by default).
    pub dpofua: bool,
    /// Whether REQUEST SENSE with a unit attention pending returns it as parameter data (GOOD),
    /// as SPC describes for an initiator without autosense. Off by default: QEMU with an
    /// autosense HBA like PVSCSI answers that REQUEST SENSE with CHECK CONDITION carrying the
    /// unit attention (QEMU `scsi_req_new`: the REQUEST SENSE exemption needs a UA already
    /// reported but not fetched, which autosense never leaves behind).
    pub request_sense_reports_ua: bool,
}

impl Default for DiskConfig {
    fn default() -> Self {
        Self {
            block_size: 512,
            write_protect: false,
            write_cache: true,
            vendor: "QEMU".into(),
            product: "QEMU HARDDISK".into(),
            revision: "2.5+".into(),
            serial: None,
            device_id: None,
            drive_name: None,
            wwn: None,
            rotation_rate: 0,
            dpofua: false,
            request_sense_reports_ua: false,
        }
    }
}

/// What a disk has done (for tests and the CLI summary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Commands executed (all LUNs).
    pub commands: u64,
    /// READ commands that moved data.
    pub reads: u64,
    /// WRITE / WRITE AND VERIFY commands that moved data.
    pub writes: u64,
    /// Blocks read by READ commands.
    pub blocks_read: u64,
    /// Blocks written by WRITE commands.
    pub blocks_written: u64,
    /// SYNCHRONIZE CACHE commands.
    pub flushes: u64,
    /// Commands that ended in CHECK CONDITION.
    pub check_conditions: u64,
    /// Unit attentions reported (as CHECK CONDITION or REQUEST SENSE data).
    pub unit_attentions: u64,
    /// Resets received.
    pub resets: u64,
}

struct State {
    /// The pending unit attention (set by power-on and every reset).
    ua: Option<Sense>,
    /// The sense of the last command if it ended in CHECK CONDITION for a reason other than a
    /// unit attention; REQUEST SENSE returns it and any completion clears it (QEMU keeps the
    /// device's last sense until the next request completes: `scsi_req_complete`).
    last_sense: Option<Sense>,
    write_protect: bool,
    write_cache: bool,
    /// What the disk has done: counted under this lock, which every command's end takes anyway
    /// (`execute`), rather than each count with an atomic add of its own.
    stats: DiskStats,
}

/// `Inner::state` locked. Unlocking leaves `Inner::ua_pending` saying whether a unit attention
/// is pending, whichever path set or cleared it, so that a command can learn that none is
/// without the lock (`execute_inner`).
struct StateGuard<'a> {
    st: MutexGuard<'a, State>,
    ua_pending: &'a AtomicBool,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.st
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.st
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        // Still under the lock: the guard's fields drop after this.
        self.ua_pending.store(self.st.ua.is_some(), Ordering::Release);
    }
}

/// What a READ or WRITE command moved: kept as it runs, added to the disk's counts when it ends.
#[derive(Default)]
struct Moved {
    reads: u64,
    writes: u64,
    blocks_read: u64,
    blocks_written: u64,
}

struct Inner {
    backing: Backing,
    block_size: u32,
    blocks: u64,
    vendor: [u8; 8],
    product: [u8; 16],
    revision: [u8; 4],
    serial: Option<String>,
    device_id: Option<String>,
    wwn: Option<u64>,
    rotation_rate: u16,
    dpofua: bool,
    request_sense_reports_ua: bool,
    state: Mutex<State>,
    /// Whether `state` holds a pending unit attention, as of its last unlock ([`StateGuard`]).
    ua_pending: AtomicBool,
}

/// A virtual disk. Cloning gives another handle to the same disk, so a test can keep one and
/// inspect the medium after the run.
#[derive(Clone)]
pub struct Disk {
    inner: Arc<Inner>,
}

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disk")
            .field("backing", &self.inner.backing.describe())
            .field("block_size", &self.inner.block_size)
            .field("blocks", &self.inner.blocks)
            .finish_non_exhaustive()
    }
}

/// Parses a size such as `64M`, `1G`, `512K`, `4096` or `2GiB` (binary multiples).
///
/// # Errors
/// When the text is not a size.
pub fn parse_size(text: &str) -> Result<u64, DiskError> {
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(DiskError::Invalid(format!("bad size suffix in {text:?}"))),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits.trim().parse().map_err(|_| DiskError::Invalid(format!("bad size {text:?}")))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| DiskError::Invalid(format!("size {text:?} overflows")))
}

fn pad<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    for (d, b) in out.iter_mut().zip(s.bytes().filter(|b| (0x20..0x7F).contains(b))) {
        *d = b;
    }
    out
}

impl Disk {
    fn build(backing: Backing, bytes: u64, config: &DiskConfig) -> Result<Self, DiskError> {
        let bs = config.block_size;
        if !bs.is_power_of_two() || !(512..=65536).contains(&bs) {
            return Err(DiskError::Invalid(format!("block size {bs} is not a power of two in 512..=65536")));
        }
        let blocks = bytes / u64::from(bs);
        if blocks == 0 {
            return Err(DiskError::Invalid(format!("{bytes} bytes hold no {bs}-byte block")));
        }
        let serial = config.serial.clone().filter(|s| !s.is_empty());
        // QEMU `scsi_realize`: device_id defaults to the serial's first 20 characters, else to
        // the drive's name.
        let device_id = config
            .device_id
            .clone()
            .or_else(|| serial.as_ref().map(|s| s.chars().take(20).collect()))
            .or_else(|| config.drive_name.clone())
            .filter(|s| !s.is_empty());
        Ok(Self {
            inner: Arc::new(Inner {
                backing,
                block_size: bs,
                blocks,
                vendor: pad(&config.vendor),
                product: pad(&config.product),
                revision: pad(&config.revision),
                serial,
                device_id,
                wwn: config.wwn,
                rotation_rate: config.rotation_rate,
                dpofua: config.dpofua,
                request_sense_reports_ua: config.request_sense_reports_ua,
                state: Mutex::new(State {
                    // Power-on: every disk starts with a unit attention (pvscsi-facts.md §6.4).
                    ua: Some(Sense::POWER_ON_RESET),
                    last_sense: None,
                    write_protect: config.write_protect,
                    write_cache: config.write_cache,
                    stats: DiskStats::default(),
                }),
                // Power-on's unit attention, as `state` starts.
                ua_pending: AtomicBool::new(true),
            }),
        })
    }

    /// A zero-filled RAM disk of `bytes` (rounded down to whole 512-byte blocks).
    ///
    /// # Errors
    /// When the size holds no block or does not fit in memory.
    pub fn ram(bytes: u64) -> Result<Self, DiskError> {
        Self::ram_with(bytes, &DiskConfig::default())
    }

    /// A zero-filled RAM disk with explicit settings.
    ///
    /// # Errors
    /// When the size or block size is unusable or memory is short.
    pub fn ram_with(bytes: u64, config: &DiskConfig) -> Result<Self, DiskError> {
        let bs = u64::from(config.block_size.max(1));
        let len = usize::try_from(bytes / bs * bs)
            .map_err(|_| DiskError::Invalid(format!("RAM disk of {bytes} bytes does not fit the address space")))?;
        let mut v = Vec::new();
        v.try_reserve_exact(len).map_err(|_| DiskError::Invalid(format!("cannot allocate a {len}-byte RAM disk")))?;
        v.resize(len, 0);
        Self::build(Backing::Ram(RwLock::new(v)), len as u64, config)
    }

    /// Opens a raw image file (read-write; read-only with write protection if the file cannot be
    /// written). The capacity is the file length in whole 512-byte blocks.
    ///
    /// # Errors
    /// When the file cannot be opened or holds no block.
    pub fn open_raw(path: impl AsRef<Path>) -> Result<Self, DiskError> {
        Self::open_raw_with(path, &DiskConfig::default())
    }

    /// Opens a raw image file with explicit settings.
    ///
    /// # Errors
    /// When the file cannot be opened or holds no block.
    pub fn open_raw_with(path: impl AsRef<Path>, config: &DiskConfig) -> Result<Self, DiskError> {
        let path = path.as_ref();
        let mut config = config.clone();
        let file = if config.write_protect {
            File::open(path)?
        } else {
            match OpenOptions::new().read(true).write(true).open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    config.write_protect = true;
                    File::open(path)?
                }
                Err(e) => return Err(e.into()),
            }
        };
        let len = file.metadata()?.len();
        Self::build(Backing::File { file, path: PathBuf::from(path) }, len, &config)
    }

    /// Creates (or truncates) a sparse raw image of `bytes`, as `qemu-img create -f raw` does,
    /// and opens it.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create_raw(path: impl AsRef<Path>, bytes: u64, config: &DiskConfig) -> Result<Self, DiskError> {
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path.as_ref())?;
        f.set_len(bytes)?;
        drop(f);
        Self::open_raw_with(path, config)
    }

    /// A disk from a command-line spec: `ram:SIZE` (e.g. `ram:64M`) or `file:PATH`.
    ///
    /// # Errors
    /// When the spec is malformed or the disk cannot be created.
    pub fn from_spec(spec: &str, config: &DiskConfig) -> Result<Self, DiskError> {
        if let Some(size) = spec.strip_prefix("ram:") {
            Self::ram_with(parse_size(size)?, config)
        } else if let Some(path) = spec.strip_prefix("file:") {
            Self::open_raw_with(path, config)
        } else {
            Err(DiskError::Invalid(format!("disk spec {spec:?} is neither ram:SIZE nor file:PATH")))
        }
    }

    /// Logical block size in bytes.
    #[must_use]
    pub fn block_size(&self) -> u32 {
        self.inner.block_size
    }

    /// Capacity in blocks.
    #[must_use]
    pub fn blocks(&self) -> u64 {
        self.inner.blocks
    }

    /// Capacity in bytes.
    #[must_use]
    pub fn capacity_bytes(&self) -> u64 {
        self.inner.blocks * u64::from(self.inner.block_size)
    }

    /// The unit serial number, if it has one.
    #[must_use]
    pub fn serial(&self) -> Option<&str> {
        self.inner.serial.as_deref()
    }

    /// The device identification VPD page 0x83 reports, if any.
    #[must_use]
    pub fn device_id(&self) -> Option<&str> {
        self.inner.device_id.as_deref()
    }

    /// The world wide name VPD page 0x83 reports as an NAA designator, if any.
    #[must_use]
    pub fn wwn(&self) -> Option<u64> {
        self.inner.wwn
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> DiskStats {
        self.state().stats
    }

    fn state(&self) -> StateGuard<'_> {
        StateGuard { st: self.inner.state.lock(), ua_pending: &self.inner.ua_pending }
    }

    /// Whether writes are refused.
    #[must_use]
    pub fn write_protected(&self) -> bool {
        self.state().write_protect
    }

    /// Turns write protection on or off.
    pub fn set_write_protect(&self, on: bool) {
        self.state().write_protect = on;
    }

    /// The pending unit attention, if any.
    #[must_use]
    pub fn unit_attention(&self) -> Option<Sense> {
        self.state().ua
    }

    /// Sets or clears the pending unit attention (e.g. to start a test from a clean state).
    pub fn set_unit_attention(&self, ua: Option<Sense>) {
        self.state().ua = ua;
    }

    fn check_range(&self, lba: u64, blocks: u64) -> Result<(u64, usize), DiskError> {
        let end = lba.checked_add(blocks).filter(|&e| e <= self.inner.blocks);
        let bs = u64::from(self.inner.block_size);
        match (end, usize::try_from(blocks * bs)) {
            (Some(_), Ok(len)) => Ok((lba * bs, len)),
            _ => Err(DiskError::Invalid(format!(
                "blocks {lba}+{blocks} are outside a disk of {} blocks",
                self.inner.blocks
            ))),
        }
    }

    /// Reads `count` blocks from `lba` directly from the medium (no SCSI, no unit attention).
    ///
    /// # Errors
    /// When the range is outside the disk or the backing file fails.
    pub fn read_sectors(&self, lba: u64, count: u64) -> Result<Vec<u8>, DiskError> {
        let (off, len) = self.check_range(lba, count)?;
        let mut v = vec![0u8; len];
        self.inner.backing.read_at(off, &mut v)?;
        Ok(v)
    }

    /// Writes whole blocks at `lba` directly to the medium (to prepare a test image).
    ///
    /// # Errors
    /// When `data` is not whole blocks, the range is outside the disk or the backing file fails.
    pub fn write_sectors(&self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        let bs = u64::from(self.inner.block_size);
        if !(data.len() as u64).is_multiple_of(bs) {
            return Err(DiskError::Invalid(format!("{} bytes are not whole {bs}-byte blocks", data.len())));
        }
        let (off, _) = self.check_range(lba, data.len() as u64 / bs)?;
        self.inner.backing.write_at(off, data)?;
        Ok(())
    }

    /// Flushes the backing store.
    ///
    /// # Errors
    /// When the backing file fails to sync.
    pub fn flush(&self) -> Result<(), DiskError> {
        Ok(self.inner.backing.flush()?)
    }

    /// One command, as QEMU's `scsi_req_new` and scsi-hd would run it. Returns the response,
    /// whether it reported the unit attention (which autosense then consumes), and the opcode
    /// with which its completion clears a pending unit attention ([`Self::clear_unit_attention`],
    /// which the caller runs under the same lock as its store of the sense; `None` when the
    /// command reported the attention).
    fn execute_inner(&self, lun: u8, cdb: &[u8], data: &mut dyn DataBuffer, moved: &mut Moved) -> (ScsiResponse, bool, Option<u8>) {
        // An unusable CDB (empty, bad group, shorter than its group) is INVALID COMMAND
        // OPERATION CODE whatever else is pending: QEMU parses before it allocates the request.
        // Its completion still clears a pending unit attention (QEMU 7.2 `scsi_req_complete` →
        // `scsi_clear_unit_attention`, which sees an all-zero CDB for such a request).
        let Some(p) = cdb::parse(cdb, self.inner.block_size) else {
            return (ScsiResponse::check(Sense::INVALID_OPCODE, 0), false, Some(0));
        };
        let xfer = p.xfer.len;
        if xfer > i32::MAX as u64 {
            // QEMU `reqops_invalid_field`, decided before the unit attention; its completion
            // clears the attention too.
            return (ScsiResponse::check(Sense::INVALID_FIELD, xfer), false, Some(p.opcode));
        }
        // With no unit attention pending (as of the last unlock) a command other than REQUEST
        // SENSE needs nothing under the lock here; a reset racing it is as if it came after.
        let stored = if p.opcode != op::REQUEST_SENSE && !self.inner.ua_pending.load(Ordering::Acquire) {
            None
        } else {
            let mut st = self.state();
            if let Some(ua) = st.ua {
                // The exemptions of QEMU `scsi_req_new`; REQUEST SENSE only when configured.
                let exempt = matches!(
                    p.opcode,
                    op::INQUIRY | op::REPORT_LUNS | op::GET_CONFIGURATION | op::GET_EVENT_STATUS_NOTIFICATION
                );
                if p.opcode == op::REQUEST_SENSE && self.inner.request_sense_reports_ua {
                    st.ua = None;
                    st.stats.unit_attentions += 1;
                    drop(st);
                    return (Self::sense_data(ua, cdb, xfer, data), true, None);
                }
                if !exempt {
                    // The unit attention is checked before the LUN is looked at: QEMU decides on
                    // it first in `scsi_req_new`, so a foreign LUN reports LUN 0's attention too.
                    st.ua = None;
                    st.stats.unit_attentions += 1;
                    drop(st);
                    return (ScsiResponse::check(ua, xfer), true, None);
                }
            }
            st.last_sense
        };
        let resp = if lun != 0 {
            foreign_lun(&p, cdb, data)
        } else if p.opcode == op::REQUEST_SENSE
            && let Some(last) = stored
        {
            // QEMU's target emulation returns the device's stored sense, in the format asked.
            Self::sense_data(last, cdb, xfer, data)
        } else if p.opcode == op::REPORT_LUNS {
            report_luns(cdb, xfer, &[0], data)
        } else if matches!(p.opcode, op::READ_6 | op::READ_10 | op::READ_12 | op::READ_16)
            || matches!(p.opcode, op::WRITE_6 | op::WRITE_10 | op::WRITE_12 | op::WRITE_16)
            || matches!(p.opcode, op::WRITE_VERIFY_10 | op::WRITE_VERIFY_12 | op::WRITE_VERIFY_16)
        {
            self.block_command(&p, cdb, data, moved)
        } else {
            self.emulated(&p, cdb, data)
        };
        (resp, false, Some(p.opcode))
    }

    /// QEMU 7.2 `scsi_clear_unit_attention`, run at every completion: a pending unit attention
    /// goes away unless the command was INQUIRY, GET CONFIGURATION or GET EVENT STATUS
    /// NOTIFICATION, or REPORT LUNS while the attention is not REPORTED LUNS DATA HAS CHANGED.
    /// (Commands that report the attention have consumed it already; this matters for the
    /// exempt ones and for requests refused before the attention is looked at.)
    fn clear_unit_attention(st: &mut State, opcode: u8) {
        let Some(ua) = st.ua else { return };
        let keep = match opcode {
            op::INQUIRY | op::GET_CONFIGURATION | op::GET_EVENT_STATUS_NOTIFICATION => true,
            op::REPORT_LUNS => ua != Sense::REPORTED_LUNS_CHANGED,
            _ => false,
        };
        if !keep {
            st.ua = None;
        }
    }

    /// REQUEST SENSE parameter data for `sense`: fixed format (18 bytes), or descriptor format
    /// (8 bytes) when the DESC bit is set, truncated to the allocation length.
    fn sense_data(sense: Sense, cdb: &[u8], xfer: u64, data: &mut dyn DataBuffer) -> ScsiResponse {
        let desc = cdb.get(1).is_some_and(|b| b & 1 != 0);
        let answer = if desc { sense.descriptor().to_vec() } else { sense.fixed().to_vec() };
        truncated(answer, xfer, data)
    }

    /// The commands scsi-hd answers itself (QEMU `scsi_disk_emulate_command`, and the data-out
    /// commands' `scsi_disk_emulate_write_data`).
    #[allow(clippy::too_many_lines)] // one match, as QEMU's
    fn emulated(&self, p: &Parsed, cdb: &[u8], data: &mut dyn DataBuffer) -> ScsiResponse {
        let xfer = p.xfer.len;
        let b = |i: usize| cdb.get(i).copied().unwrap_or(0);
        // QEMU refuses an emulated command with an allocation length over 64 KiB (its buffer),
        // before it looks at the opcode.
        if xfer > 65536 {
            return ScsiResponse::check(Sense::INVALID_FIELD, xfer);
        }
        match p.opcode {
            // A non-removable disk accepts START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL and
            // stays ready (QEMU `scsi_disk_emulate_start_stop` only acts on removable media).
            op::SEEK_10 if p.lba > self.inner.blocks - 1 => ScsiResponse::check(Sense::LBA_OUT_OF_RANGE, xfer),
            // RESERVE/RELEASE: no reservations, but the 3rd-party bits are refused as in QEMU.
            // VERIFY without BYTCHK succeeds without looking at the medium or the range; with
            // BYTCHK scsi-hd refuses it (only scsi-block passes it on).
            op::TEST_UNIT_READY | op::ALLOW_MEDIUM_REMOVAL | op::START_STOP_UNIT | op::SEEK_10 | op::RESERVE_6
            | op::RELEASE_6 | op::RESERVE_10 | op::RELEASE_10 | op::VERIFY_10 | op::VERIFY_12 | op::VERIFY_16
                if b(1) & Self::refused_bits(p.opcode) == 0 =>
            {
                ScsiResponse::good(xfer)
            }
            op::REQUEST_SENSE => Self::sense_data(Sense::NO_SENSE, cdb, xfer, data),
            op::INQUIRY => match self.inquiry(b(1), b(2), xfer) {
                Ok(answer) => truncated(answer, xfer, data),
                Err(s) => ScsiResponse::check(s, xfer),
            },
            op::READ_CAPACITY_10 => {
                // PMI = 0 requires LBA = 0 (SBC-3 §5.16; QEMU checks it too).
                if b(8) & 1 == 0 && p.lba != 0 {
                    return ScsiResponse::check(Sense::INVALID_FIELD, xfer);
                }
                let last = u32::try_from(self.inner.blocks - 1).unwrap_or(u32::MAX);
                let mut a = Vec::with_capacity(8);
                a.extend_from_slice(&last.to_be_bytes());
                a.extend_from_slice(&self.qemu_block_length());
                truncated(a, xfer, data)
            }
            op::SERVICE_ACTION_IN_16 if b(1) & 0x1F == cdb::SAI_READ_CAPACITY_16 => {
                if b(14) & 1 == 0 && p.lba != 0 {
                    return ScsiResponse::check(Sense::INVALID_FIELD, xfer);
                }
                let mut a = vec![0u8; 32];
                a[0..8].copy_from_slice(&(self.inner.blocks - 1).to_be_bytes());
                a[8..12].copy_from_slice(&self.qemu_block_length());
                // LBPME: logical block provisioning (UNMAP, WRITE SAME) is available.
                a[14] = 0x80;
                truncated(a, xfer, data)
            }
            op::MODE_SENSE_6 | op::MODE_SENSE_10 => match self.mode_sense(p.opcode == op::MODE_SENSE_10, b(1), b(2)) {
                Ok(answer) => truncated(answer, xfer, data),
                Err(s) => ScsiResponse::check(s, xfer),
            },
            op::MODE_SELECT_6 | op::MODE_SELECT_10 => self.mode_select(p.opcode == op::MODE_SELECT_10, b(1), xfer, data),
            // The CD/DVD commands scsi-hd knows but refuses for a disk, SERVICE ACTION IN(16)
            // with another service action, and the refused bits above: INVALID FIELD.
            op::GET_CONFIGURATION | op::GET_EVENT_STATUS_NOTIFICATION | op::MECHANISM_STATUS | op::READ_DISC_INFORMATION
            | op::READ_DVD_STRUCTURE | op::SERVICE_ACTION_IN_16 | op::RESERVE_6 | op::RELEASE_6 | op::RESERVE_10
            | op::RELEASE_10 | op::VERIFY_10 | op::VERIFY_12 | op::VERIFY_16 => ScsiResponse::check(Sense::INVALID_FIELD, xfer),
            op::SYNCHRONIZE_CACHE_10 => {
                self.state().stats.flushes += 1;
                match self.inner.backing.flush() {
                    Ok(()) => ScsiResponse::good(xfer),
                    Err(_) => ScsiResponse::check(Sense::WRITE_ERROR, xfer),
                }
            }

            op::READ_TOC => match self.read_toc(b(1) & 2 != 0, b(2) & 0x0F, b(6)) {
                Some(answer) => truncated(answer, xfer, data),
                None => ScsiResponse::check(Sense::INVALID_FIELD, xfer),
            },
            op::UNMAP => self.unmap(b(1), xfer, data),
            op::WRITE_SAME_10 | op::WRITE_SAME_16 => self.write_same(p, cdb, data),
            op::FORMAT_UNIT => Self::data_out(xfer, data).map_or_else(|r| r, |_| ScsiResponse::good(xfer)),
            // Everything else, SYNCHRONIZE CACHE(16) included (scsi-hd has only the 10-byte one).
            _ => ScsiResponse::check(Sense::INVALID_OPCODE, xfer),
        }
    }

    /// Byte-1 bits that make these commands INVALID FIELD in QEMU: the 3rd-party bits of
    /// RESERVE/RELEASE, BYTCHK of VERIFY.
    fn refused_bits(opcode: u8) -> u8 {
        match opcode {
            op::RESERVE_6 | op::RELEASE_6 => 0x01,
            op::RESERVE_10 | op::RELEASE_10 => 0x03,
            op::VERIFY_10 | op::VERIFY_12 | op::VERIFY_16 => 0x06,
            _ => 0,
        }
    }

    /// The data-out phase of an emulated command: the whole buffer the CDB asks for. `Err` with
    /// the response when the buffer faults.
    fn data_out(xfer: u64, data: &mut dyn DataBuffer) -> Result<Vec<u8>, ScsiResponse> {
        let n = xfer.min(data.len());
        let mut v = vec![0u8; usize::try_from(n).unwrap_or(0)];
        match data.read_at(0, &mut v) {
            Ok(()) => Ok(v),
            Err(f) => Err(ScsiResponse { status: super::STATUS_GOOD, sense: Vec::new(), transferred: 0, residual: signed(xfer), fault: Some(f) }),
        }
    }

    /// The 3 bytes of block length in READ CAPACITY and block descriptors, as QEMU fills them
    /// (only bits 8..15 of the block size: `blocksize >> 8` in the middle byte).
    fn qemu_block_length(&self) -> [u8; 4] {
        [0, 0, u8::try_from((self.inner.block_size >> 8) & 0xFF).unwrap_or(0), 0]
    }

    /// Standard INQUIRY and the VPD pages (QEMU `scsi_disk_emulate_inquiry`,
    /// `scsi_disk_emulate_vpd_page`). `xfer` is the allocation length: standard data is that
    /// long (up to 256 bytes), its additional length following.
    fn inquiry(&self, b1: u8, page: u8, xfer: u64) -> Result<Vec<u8>, Sense> {
        let bs = u64::from(self.inner.block_size);
        // QEMU looks at EVPD only (CmdDt, obsolete, is ignored).
        if b1 & 0x01 == 0 {
            if page != 0 {
                return Err(Sense::INVALID_FIELD);
            }
            let len = usize::try_from(xfer.min(256)).unwrap_or(256).max(36);
            let mut a = vec![0u8; len];
            a[0] = 0x00; // peripheral qualifier 0, direct-access block device
            a[2] = 0x05; // SPC-3
            a[3] = 0x12; // HiSup, response data format 2
            a[4] = u8::try_from(if xfer > 36 { len - 5 } else { 31 }).unwrap_or(u8::MAX);
            a[7] = 0x12; // Sync, CmdQue (PVSCSI queues tagged commands)
            a[8..16].copy_from_slice(&self.inner.vendor);
            a[16..32].copy_from_slice(&self.inner.product);
            a[32..36].copy_from_slice(&self.inner.revision);
            return Ok(a);
        }
        let ascii = |s: &str, max: usize| -> Vec<u8> { s.bytes().take(max).collect() };
        let body: Vec<u8> = match page {
            0x00 => {
                let mut v = vec![0x00];
                if self.inner.serial.is_some() {
                    v.push(0x80);
                }
                v.extend_from_slice(&[0x83, 0xB0, 0xB1, 0xB2]);
                v
            }
            0x80 => match &self.inner.serial {
                Some(s) => ascii(s, 36),
                None => return Err(Sense::INVALID_FIELD),
            },
            0x83 => {
                let mut d = Vec::new();
                if let Some(id) = &self.inner.device_id {
                    // Vendor-specific designator: ASCII code set, LU association, type 0.
                    let id = ascii(id, 255 - 8);
                    d.extend_from_slice(&[0x02, 0x00, 0x00, u8::try_from(id.len()).unwrap_or(u8::MAX)]);
                    d.extend_from_slice(&id);
                }
                if let Some(wwn) = self.inner.wwn {
                    // NAA designator: binary code set, LU association, type 3.
                    d.extend_from_slice(&[0x01, 0x03, 0x00, 0x08]);
                    d.extend_from_slice(&wwn.to_be_bytes());
                }
                d
            }
            0xB0 => {
                // Block limits with scsi-hd's defaults: WSNZ; the largest transfer and WRITE
                // SAME is INT_MAX bytes; UNMAP up to 1 GiB in 255 descriptors at a 4 KiB
                // granularity.
                let max_io = u32::try_from(u64::from(i32::MAX.unsigned_abs()) / bs).unwrap_or(u32::MAX);
                let max_unmap = u32::try_from((1u64 << 30) / bs).unwrap_or(u32::MAX);
                let granularity = u32::try_from(bs.max(4096) / bs).unwrap_or(1);
                let mut d = vec![0u8; 0x3C];
                d[0] = 0x01;
                d[4..8].copy_from_slice(&max_io.to_be_bytes());
                d[16..20].copy_from_slice(&max_unmap.to_be_bytes());
                d[20..24].copy_from_slice(&255u32.to_be_bytes());
                d[24..28].copy_from_slice(&granularity.to_be_bytes());
                d[32..40].copy_from_slice(&u64::from(max_io).to_be_bytes());
                d
            }
            0xB1 => {
                let mut d = vec![0u8; 0x3C];
                d[0..2].copy_from_slice(&self.inner.rotation_rate.to_be_bytes());
                d
            }
            // Logical block provisioning: UNMAP, WRITE SAME(16) and (10) with UNMAP; thin.
            0xB2 => vec![0x00, 0xE0, 0x02, 0x00],
            _ => return Err(Sense::INVALID_FIELD),
        };
        let mut a = vec![0x00, page];
        a.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
        a.extend_from_slice(&body);
        Ok(a)
    }

    /// READ TOC, which scsi-hd answers for a disk as for a one-track CD of its size (QEMU
    /// `scsi_disk_emulate_read_toc` has no device-type check; `cdrom_read_toc`,
    /// `cdrom_read_toc_raw`): format 0 (TOC), 1 (sessions), 2 (raw TOC).
    fn read_toc(&self, msf: bool, format: u8, start_track: u8) -> Option<Vec<u8>> {
        let sectors = u32::try_from(self.inner.blocks).unwrap_or(u32::MAX);
        let address = |lba: u32| -> [u8; 4] {
            if msf {
                let l = lba.saturating_add(150);
                [0, u8::try_from(l / 75 / 60).unwrap_or(u8::MAX), u8::try_from(l / 75 % 60).unwrap_or(0), u8::try_from(l % 75).unwrap_or(0)]
            } else {
                lba.to_be_bytes()
            }
        };
        let mut a = vec![0u8, 0, 1, 1];
        match format {
            0 => {
                if start_track > 1 && start_track != 0xAA {
                    return None;
                }
                if start_track <= 1 {
                    a.extend_from_slice(&[0, 0x14, 1, 0]);
                    a.extend_from_slice(&address(0));
                }
                a.extend_from_slice(&[0, 0x16, 0xAA, 0]);
                a.extend_from_slice(&address(sectors));
            }
            1 => {
                a = vec![0u8; 12];
                a[1] = 0x0A;
                a[2] = 1;
                a[3] = 1;
                return Some(a);
            }
            2 => {
                for point in [0xA0u8, 0xA1] {
                    a.extend_from_slice(&[1, 0x14, 0, point, 0, 0, 0, 0, 1, 0, 0]);
                }
                a.extend_from_slice(&[1, 0x14, 0, 0xA2, 0, 0, 0]);
                a.extend_from_slice(&address(sectors));
                a.extend_from_slice(&[1, 0x14, 0, 1, 0, 0, 0]);
                a.extend_from_slice(&address(0));
            }
            _ => return None,
        }
        let len = u16::try_from(a.len() - 2).unwrap_or(u16::MAX).to_be_bytes();
        a[0..2].copy_from_slice(&len);
        Some(a)
    }

    /// QEMU's geometry guess for a disk without a partition table (`guess_chs_for_size`):
    /// 16 heads, 63 sectors, cylinders from the size in 512-byte sectors, clamped to 2..=16383.
    fn geometry(&self) -> (u32, u8, u8) {
        let sectors = self.capacity_bytes() / 512;
        let cyls = u32::try_from((sectors / (16 * 63)).clamp(2, 16383)).unwrap_or(16383);
        (cyls, 16, 63)
    }

    /// One mode page (QEMU `mode_sense_page`) for page control `pc` (1 = changeable values);
    /// `None` for a page scsi-hd does not have.
    fn mode_page(&self, page: u8, pc: u8) -> Option<Vec<u8>> {
        let changeable = pc == 1;
        let (cyls, heads, secs) = self.geometry();
        let c = cyls.to_be_bytes();
        let mut p = match page {
            // Read-write error recovery: AWRE; nothing changeable.
            0x01 => {
                let mut p = vec![0u8; 10];
                if !changeable {
                    p[0] = 0x80;
                }
                p
            }
            // Rigid disk geometry.
            0x04 => {
                let mut p = vec![0u8; 0x16];
                if !changeable {
                    p[0..3].copy_from_slice(&c[1..4]);
                    p[3] = heads;
                    p[4..7].copy_from_slice(&c[1..4]); // write precompensation: disabled
                    p[7..10].copy_from_slice(&c[1..4]); // reduced current: disabled
                    p[10..12].copy_from_slice(&200u16.to_be_bytes()); // step rate, ns
                    p[12..15].copy_from_slice(&[0xFF; 3]); // landing zone
                    p[18..20].copy_from_slice(&5400u16.to_be_bytes()); // rpm
                }
                p
            }
            // Flexible disk.
            0x05 => {
                let mut p = vec![0u8; 0x1E];
                if !changeable {
                    p[0..2].copy_from_slice(&5000u16.to_be_bytes()); // kbit/s
                    p[2] = heads;
                    p[3] = secs;
                    p[4] = u8::try_from((self.inner.block_size >> 8) & 0xFF).unwrap_or(0);
                    for at in [6, 8, 10] {
                        p[at..at + 2].copy_from_slice(&c[2..4]);
                    }
                    p[13] = 1; // step rate, 100 µs
                    p[14] = 1; // step pulse width, µs
                    p[16] = 1; // head settle delay, 100 µs
                    p[17] = 1; // motor on delay, 0.1 s
                    p[18] = 1; // motor off delay, 0.1 s
                    p[26..28].copy_from_slice(&5400u16.to_be_bytes());
                }
                p
            }
            // Caching: WCE, the only changeable bit.
            0x08 => {
                let mut p = vec![0u8; 0x12];
                if changeable || self.state().write_cache {
                    p[0] = 0x04;
                }
                p
            }
            _ => return None,
        };
        let mut out = vec![page, u8::try_from(p.len()).unwrap_or(u8::MAX)];
        out.append(&mut p);
        Some(out)
    }

    /// MODE SENSE(6)/(10) (QEMU `scsi_disk_emulate_mode_sense`): header, an 8-byte block
    /// descriptor unless DBD, then the page or every page in page order. The subpage byte and
    /// LLBAA are ignored, as QEMU does.
    fn mode_sense(&self, ten: bool, b1: u8, b2: u8) -> Result<Vec<u8>, Sense> {
        let dbd = b1 & 0x08 != 0;
        let pc = b2 >> 6;
        let page = b2 & 0x3F;
        if pc == 3 {
            return Err(Sense::SAVING_PARAMS_NOT_SUPPORTED);
        }
        let pages: Vec<u8> = if page == 0x3F {
            (0..0x3F).filter_map(|pg| self.mode_page(pg, pc)).flatten().collect()
        } else {
            self.mode_page(page, pc).ok_or(Sense::INVALID_FIELD)?
        };
        // Device-specific parameter: WP (0x80) and DPOFUA (0x10).
        let dev_specific = if self.state().write_protect { 0x80 } else { 0 } | if self.inner.dpofua { 0x10 } else { 0 };
        let mut bd = Vec::new();
        if !dbd {
            let n = u32::try_from(self.inner.blocks).ok().filter(|&n| n <= 0xFF_FFFF).unwrap_or(0);
            bd.push(0); // density code
            bd.extend_from_slice(&n.to_be_bytes()[1..4]);
            bd.extend_from_slice(&self.qemu_block_length());
        }
        let bd_len = u8::try_from(bd.len()).unwrap_or(0);
        let mut a = if ten {
            let total = 8 + bd.len() + pages.len();
            let len = u16::try_from(total - 2).unwrap_or(u16::MAX).to_be_bytes();
            vec![len[0], len[1], 0, dev_specific, 0, 0, 0, bd_len]
        } else {
            let total = 4 + bd.len() + pages.len();
            vec![u8::try_from(total - 1).unwrap_or(u8::MAX), 0, dev_specific, bd_len]
        };
        a.extend_from_slice(&bd);
        a.extend_from_slice(&pages);
        Ok(a)
    }

    /// MODE SELECT(6)/(10) (QEMU `scsi_disk_emulate_mode_select`): PF=1, SP=0 only; an optional
    /// 8-byte block descriptor (its block length is not applied here); pages checked against
    /// what MODE SENSE reports and the changeable mask, all of them before any is applied. The
    /// caching page's WCE is the one setting that changes.
    fn mode_select(&self, ten: bool, b1: u8, xfer: u64, data: &mut dyn DataBuffer) -> ScsiResponse {
        if xfer == 0 {
            return ScsiResponse::good(0);
        }
        let param = match Self::data_out(xfer, data) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let done = |sense: Option<Sense>| match sense {
            None => ScsiResponse { status: super::STATUS_GOOD, sense: Vec::new(), transferred: xfer, residual: 0, fault: None },
            Some(s) => ScsiResponse { transferred: xfer, residual: 0, ..ScsiResponse::check(s, xfer) },
        };
        if b1 & 0x11 != 0x10 {
            return done(Some(Sense::INVALID_FIELD));
        }
        let hdr = if ten { 8 } else { 4 };
        if param.len() < hdr {
            return done(Some(Sense::INVALID_PARAM_LEN));
        }
        let bd_len = if ten { usize::from(u16::from_be_bytes([param[6], param[7]])) } else { usize::from(param[3]) };
        let rest = &param[hdr..];
        if rest.len() < bd_len {
            return done(Some(Sense::INVALID_PARAM_LEN));
        }
        if bd_len != 0 && bd_len != 8 {
            return done(Some(Sense::INVALID_PARAM));
        }
        let pages = &rest[bd_len..];
        for apply in [false, true] {
            let mut at = 0usize;
            while at < pages.len() {
                let p = &pages[at..];
                let page = p[0] & 0x3F;
                let (subpage, page_len, head) = if p[0] & 0x40 != 0 {
                    if p.len() < 4 {
                        return done(Some(Sense::INVALID_PARAM_LEN));
                    }
                    (p[1], usize::from(u16::from_be_bytes([p[2], p[3]])), 4)
                } else {
                    if p.len() < 2 {
                        return done(Some(Sense::INVALID_PARAM_LEN));
                    }
                    (0, usize::from(p[1]), 2)
                };
                if subpage != 0 {
                    return done(Some(Sense::INVALID_PARAM));
                }
                let Some(body) = p.get(head..head + page_len) else {
                    return done(Some(Sense::INVALID_PARAM_LEN));
                };
                if apply {
                    if page == 0x08
                        && let Some(&flags) = body.first()
                    {
                        self.state().write_cache = flags & 0x04 != 0;
                    }
                } else {
                    let current = if page == 0x3F { None } else { self.mode_page(page, 0) };
                    let mask = self.mode_page(page, 1);
                    let ok = match (current, mask) {
                        (Some(cur), Some(mask)) if cur.len() == page_len + 2 => {
                            (2..cur.len()).all(|i| (cur[i] ^ body[i - 2]) & !mask[i] == 0)
                        }
                        _ => false,
                    };
                    if !ok {
                        return done(Some(Sense::INVALID_PARAM));
                    }
                }
                at += head + page_len;
            }
        }
        done(None)
    }

    /// UNMAP (QEMU `scsi_disk_emulate_unmap`): the parameter list is checked, each descriptor's
    /// range too; nothing is discarded (scsi-hd with `discard=ignore`, QEMU's default).
    fn unmap(&self, b1: u8, xfer: u64, data: &mut dyn DataBuffer) -> ScsiResponse {
        if xfer == 0 {
            return ScsiResponse::good(0);
        }
        let p = match Self::data_out(xfer, data) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let done = |sense: Option<Sense>| match sense {
            None => ScsiResponse { status: super::STATUS_GOOD, sense: Vec::new(), transferred: xfer, residual: 0, fault: None },
            Some(s) => ScsiResponse { transferred: xfer, residual: 0, ..ScsiResponse::check(s, xfer) },
        };
        let be16 = |at: usize| usize::from(u16::from_be_bytes([p.get(at).copied().unwrap_or(0), p.get(at + 1).copied().unwrap_or(0)]));
        if b1 & 1 != 0 {
            return done(Some(Sense::INVALID_FIELD));
        }
        let len = p.len();
        if len < 8 || len < be16(0) + 2 || len < be16(2) + 8 || be16(2) & 15 != 0 {
            return done(Some(Sense::INVALID_PARAM_LEN));
        }
        if self.write_protected() {
            return done(Some(Sense::WRITE_PROTECTED));
        }
        for d in p[8..8 + be16(2)].chunks_exact(16) {
            let mut lba = [0u8; 8];
            lba.copy_from_slice(&d[0..8]);
            let n = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
            if !self.lba_range_ok(u64::from_be_bytes(lba), u64::from(n)) {
                return done(Some(Sense::LBA_OUT_OF_RANGE));
            }
        }
        done(None)
    }

    /// WRITE SAME(10)/(16) (QEMU `scsi_disk_emulate_write_same`). NDOB (byte 1 bit 0) means no
    /// data-out buffer, and then QEMU completes the command without writing anything.
    fn write_same(&self, p: &Parsed, cdb: &[u8], data: &mut dyn DataBuffer) -> ScsiResponse {
        let xfer = p.xfer.len;
        if xfer == 0 {
            return ScsiResponse::good(0);
        }
        let block = match Self::data_out(xfer, data) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let done = |sense: Option<Sense>| match sense {
            None => ScsiResponse { status: super::STATUS_GOOD, sense: Vec::new(), transferred: xfer, residual: 0, fault: None },
            Some(s) => ScsiResponse { transferred: xfer, residual: 0, ..ScsiResponse::check(s, xfer) },
        };
        let b1 = cdb.get(1).copied().unwrap_or(0);
        let blocks = if p.opcode == op::WRITE_SAME_10 {
            u64::from(u16::from_be_bytes([cdb.get(7).copied().unwrap_or(0), cdb.get(8).copied().unwrap_or(0)]))
        } else {
            cdb.get(10..14).map_or(0, |b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        };
        // PBDATA, LBDATA and ANCHOR are refused, as a count of 0 (SBC's "to the end").
        if blocks == 0 || b1 & 0x16 != 0 {
            return done(Some(Sense::INVALID_FIELD));
        }
        if self.write_protected() {
            return done(Some(Sense::WRITE_PROTECTED));
        }
        if !self.lba_range_ok(p.lba, blocks) {
            return done(Some(Sense::LBA_OUT_OF_RANGE));
        }
        let bs = u64::from(self.inner.block_size);
        let mut pattern = block;
        pattern.resize(usize::try_from(bs).unwrap_or(0), 0);
        let per = (CHUNK / bs).max(1);
        let chunk: Vec<u8> = pattern.iter().copied().cycle().take(usize::try_from(per * bs).unwrap_or(0)).collect();
        let mut lba = p.lba;
        let end = p.lba + blocks;
        while lba < end {
            let n = (end - lba).min(per);
            let bytes = chunk.get(..usize::try_from(n * bs).unwrap_or(0)).unwrap_or(&[]);
            if self.inner.backing.write_at(lba * bs, bytes).is_err() {
                return done(Some(Sense::WRITE_ERROR));
            }
            lba += n;
        }
        {
            let mut st = self.state();
            st.stats.writes += 1;
            st.stats.blocks_written += blocks;
        }
        done(None)
    }

    /// QEMU `check_lba_range`: the range ends inside the medium and does not wrap; so a
    /// 0-block access at one past the last LBA is in range.
    fn lba_range_ok(&self, lba: u64, blocks: u64) -> bool {
        lba.checked_add(blocks).is_some_and(|end| end <= self.inner.blocks)
    }

    /// READ, WRITE and WRITE AND VERIFY (QEMU `scsi_disk_dma_command`).
    fn block_command(&self, p: &Parsed, cdb: &[u8], data: &mut dyn DataBuffer, moved: &mut Moved) -> ScsiResponse {
        let xfer = p.xfer.len;
        let Some((kind, range)) = cdb::block_range(cdb) else {
            return ScsiResponse::check(Sense::INVALID_OPCODE, xfer);
        };
        if matches!(kind, BlockOp::Write | BlockOp::WriteVerify) && self.write_protected() {
            return ScsiResponse::check(Sense::WRITE_PROTECTED, xfer);
        }
        // RDPROTECT/WRPROTECT need protection information these disks do not have.
        if p.len > 6 && cdb.get(1).copied().unwrap_or(0) & 0xE0 != 0 {
            return ScsiResponse::check(Sense::INVALID_FIELD, xfer);
        }
        if !self.lba_range_ok(range.lba, range.blocks) {
            return ScsiResponse::check(Sense::LBA_OUT_OF_RANGE, xfer);
        }
        if range.blocks == 0 {
            return ScsiResponse::good(xfer);
        }
        self.transfer_blocks(kind, range.lba, xfer, data, moved)
    }

    /// The data phase of READ/WRITE/VERIFY (BYTCHK 1), with QEMU's rules (pvscsi-facts.md §6.3):
    /// the whole buffer is transferred, in whole blocks, whatever the CDB says, and the residual
    /// is CDB length − buffer size. A buffer longer than the CDB thus reads or writes blocks
    /// beyond the CDB's range (stopping at the end of the medium here).
    fn transfer_blocks(&self, kind: BlockOp, lba: u64, xfer: u64, data: &mut dyn DataBuffer, moved: &mut Moved) -> ScsiResponse {
        let bs = u64::from(self.inner.block_size);
        let buf_len = data.len();
        let residual = signed(xfer).saturating_sub(signed(buf_len));
        let mut bytes = (buf_len / bs * bs).min((self.inner.blocks - lba) * bs);
        if kind == BlockOp::Verify {
            bytes = bytes.min(xfer);
        }
        let base = lba * bs;
        // The bounce buffers, made on first use: a read from RAM needs none.
        let chunk_len = usize::try_from(bytes.min(CHUNK)).unwrap_or(0);
        let mut chunk = Vec::new();
        let mut other = Vec::new();
        let mut done = 0u64;
        let mut resp = ScsiResponse { status: super::STATUS_GOOD, sense: Vec::new(), transferred: 0, residual, fault: None };
        while done < bytes {
            let n = usize::try_from((bytes - done).min(CHUNK)).unwrap_or(0);
            let off = base + done;
            // A read from RAM: medium → request buffer, one copy. A write keeps its bounce
            // buffer, so that a data-out fault part way leaves the medium untouched.
            if kind == BlockOp::Read
                && let Some(r) = self.inner.backing.with_ram(off, n, |src| data.write_at(done, src))
            {
                match r {
                    Err(_) => return ScsiResponse::check(Sense::READ_ERROR, xfer),
                    Ok(Err(f)) => {
                        resp.fault = Some(f);
                        break;
                    }
                    Ok(Ok(())) => {
                        done += n as u64;
                        continue;
                    }
                }
            }
            if chunk.is_empty() {
                chunk = vec![0u8; chunk_len];
                if kind == BlockOp::Verify {
                    other = vec![0u8; chunk_len];
                }
            }
            let Some(buf) = chunk.get_mut(..n) else { break };
            let step = match kind {
                BlockOp::Read => match self.inner.backing.read_at(off, buf) {
                    Err(_) => Err(Sense::READ_ERROR),
                    Ok(()) => data.write_at(done, buf).map_err(|f| resp.fault = Some(f)).or(Ok(())),
                },
                BlockOp::Write | BlockOp::WriteVerify => match data.read_at(done, buf) {
                    Err(f) => {
                        resp.fault = Some(f);
                        Ok(())
                    }
                    Ok(()) => self.inner.backing.write_at(off, buf).map_err(|_| Sense::WRITE_ERROR),
                },
                BlockOp::Verify => {
                    let medium = other.get_mut(..n).unwrap_or_default();
                    match (self.inner.backing.read_at(off, medium), data.read_at(done, buf)) {
                        (Err(_), _) => Err(Sense::READ_ERROR),
                        (_, Err(f)) => {
                            resp.fault = Some(f);
                            Ok(())
                        }
                        (Ok(()), Ok(())) if medium != buf => Err(Sense::MISCOMPARE),
                        _ => Ok(()),
                    }
                }
            };
            if let Err(sense) = step {
                return ScsiResponse::check(sense, xfer);
            }
            if resp.fault.is_some() {
                break;
            }
            done += n as u64;
        }
        resp.transferred = done;
        match kind {
            BlockOp::Read => {
                moved.reads += 1;
                moved.blocks_read += done / bs;
            }
            BlockOp::Write | BlockOp::WriteVerify => {
                moved.writes += 1;
                moved.blocks_written += done / bs;
            }
            BlockOp::Verify => {}
        }
        resp
    }
}

impl ScsiTarget for Disk {
    fn transfer(&self, _lun: u8, cdb: &[u8]) -> Transfer {
        cdb::parse(cdb, self.inner.block_size).map_or(Transfer::NONE, |p| p.xfer)
    }

    fn execute(&self, lun: u8, cdb: &[u8], data: &mut dyn DataBuffer) -> ScsiResponse {
        let mut moved = Moved::default();
        let (resp, was_ua, clears) = self.execute_inner(lun, cdb, data, &mut moved);
        let check = resp.status == super::STATUS_CHECK_CONDITION;
        let mut st = self.state();
        st.stats.commands += 1;
        st.stats.check_conditions += u64::from(check);
        st.stats.reads += moved.reads;
        st.stats.writes += moved.writes;
        st.stats.blocks_read += moved.blocks_read;
        st.stats.blocks_written += moved.blocks_written;
        if let Some(opcode) = clears {
            Self::clear_unit_attention(&mut st, opcode);
        }
        // Every completion replaces the device's stored sense; a unit attention fetched by
        // autosense is consumed, not stored (QEMU `scsi_req_complete`, `scsi_req_get_sense`).
        // (A foreign LUN's answers go through QEMU's target emulation, whose sense is stored
        // the same way.)
        st.last_sense = if check && !was_ua { resp.sense_code() } else { None };
        resp
    }

    fn reset(&self) {
        let mut st = self.state();
        st.stats.resets += 1;
        st.ua = Some(Sense::POWER_ON_RESET);
        st.last_sense = None;
    }

    fn describe(&self) -> String {
        format!(
            "disk {} ({} x {} bytes, serial {})",
            self.inner.backing.describe(),
            self.inner.blocks,
            self.inner.block_size,
            self.inner.serial.as_deref().unwrap_or("none")
        )
    }
}
