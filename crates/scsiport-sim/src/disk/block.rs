//! [`Disk`]: a direct-access block device (SBC) over RAM or a raw image file.
//!
//! Command behaviour follows QEMU's `scsi-hd` where the PVSCSI facts depend on it (unit
//! attention, residuals, missing LUNs: pvscsi-facts.md §6.2–§6.4) and SPC-4/SBC-3 elsewhere.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

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

/// Settings of a [`Disk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// Logical block size: a power of two from 512 to 65536 (512 and 4096 are the usual ones).
    pub block_size: u32,
    /// Refuse writes with DATA PROTECT / WRITE PROTECTED and report WP in MODE SENSE.
    pub write_protect: bool,
    /// The caching page's WCE bit (QEMU's default cache mode has it set).
    pub write_cache: bool,
    /// INQUIRY vendor (8 characters, space padded).
    pub vendor: String,
    /// INQUIRY product (16 characters, space padded).
    pub product: String,
    /// INQUIRY revision (4 characters, space padded).
    pub revision: String,
    /// Unit serial number (VPD 0x80, and the base of the VPD 0x83 identifiers). `None` picks a
    /// process-unique one; set it when identical runs must produce identical INQUIRY data.
    pub serial: Option<String>,
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

#[derive(Default)]
struct Counters {
    commands: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    blocks_read: AtomicU64,
    blocks_written: AtomicU64,
    flushes: AtomicU64,
    check_conditions: AtomicU64,
    unit_attentions: AtomicU64,
    resets: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
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
}

struct Inner {
    backing: Backing,
    block_size: u32,
    blocks: u64,
    vendor: [u8; 8],
    product: [u8; 16],
    revision: [u8; 4],
    serial: String,
    naa: u64,
    request_sense_reports_ua: bool,
    state: Mutex<State>,
    counters: Counters,
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

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

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
        let serial = config
            .serial
            .clone()
            .unwrap_or_else(|| format!("RSPV{:08}", NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)));
        // NAA 3 ("locally assigned", SPC-4 §7.8.6.6.2): no registered OUI is needed.
        let naa = (3u64 << 60) | (fnv1a(serial.as_bytes()) & 0x0FFF_FFFF_FFFF_FFFF);
        Ok(Self {
            inner: Arc::new(Inner {
                backing,
                block_size: bs,
                blocks,
                vendor: pad(&config.vendor),
                product: pad(&config.product),
                revision: pad(&config.revision),
                serial,
                naa,
                request_sense_reports_ua: config.request_sense_reports_ua,
                state: Mutex::new(State {
                    // Power-on: every disk starts with a unit attention (pvscsi-facts.md §6.4).
                    ua: Some(Sense::POWER_ON_RESET),
                    last_sense: None,
                    write_protect: config.write_protect,
                    write_cache: config.write_cache,
                }),
                counters: Counters::default(),
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

    /// The unit serial number.
    #[must_use]
    pub fn serial(&self) -> &str {
        &self.inner.serial
    }

    /// The NAA identifier reported in VPD page 0x83.
    #[must_use]
    pub fn naa(&self) -> u64 {
        self.inner.naa
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> DiskStats {
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DiskStats {
            commands: g(&c.commands),
            reads: g(&c.reads),
            writes: g(&c.writes),
            blocks_read: g(&c.blocks_read),
            blocks_written: g(&c.blocks_written),
            flushes: g(&c.flushes),
            check_conditions: g(&c.check_conditions),
            unit_attentions: g(&c.unit_attentions),
            resets: g(&c.resets),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
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

    fn execute_inner(&self, lun: u8, cdb: &[u8], data: &mut dyn DataBuffer) -> (ScsiResponse, bool) {
        // An unusable CDB (empty, bad group, shorter than its group) is refused before anything
        // else, and the unit attention is not consumed (QEMU `scsi_req_new` parses first).
        let Some(p) = cdb::parse(cdb, self.inner.block_size) else {
            return (ScsiResponse::check(Sense::INVALID_OPCODE, 0), false);
        };
        let xfer = p.xfer.len;
        if xfer > i32::MAX as u64 {
            return (ScsiResponse::check(Sense::INVALID_FIELD, xfer), false);
        }
        {
            let mut st = self.state();
            if let Some(ua) = st.ua {
                // The exemptions of pvscsi-facts.md §6.4; REQUEST SENSE only when configured.
                let exempt = matches!(
                    p.opcode,
                    op::INQUIRY | op::REPORT_LUNS | op::GET_CONFIGURATION | op::GET_EVENT_STATUS_NOTIFICATION
                );
                if p.opcode == op::REQUEST_SENSE && self.inner.request_sense_reports_ua {
                    st.ua = None;
                    drop(st);
                    bump(&self.inner.counters.unit_attentions, 1);
                    return (truncated(ua.fixed().to_vec(), xfer, data), true);
                }
                if !exempt {
                    // The unit attention is checked before the LUN is looked at: QEMU decides on
                    // it first in `scsi_req_new`, so a foreign LUN reports LUN 0's attention too.
                    st.ua = None;
                    drop(st);
                    bump(&self.inner.counters.unit_attentions, 1);
                    return (ScsiResponse::check(ua, xfer), true);
                }
            }
            if p.opcode == op::REQUEST_SENSE
                && lun == 0
                && let Some(last) = st.last_sense
            {
                drop(st);
                return (truncated(last.fixed().to_vec(), xfer, data), false);
            }
        }
        if lun != 0 {
            return (foreign_lun(&p, cdb, data), false);
        }
        (self.lun0(&p, cdb, data), false)
    }

    fn lun0(&self, p: &Parsed, cdb: &[u8], data: &mut dyn DataBuffer) -> ScsiResponse {
        let xfer = p.xfer.len;
        let b = |i: usize| cdb.get(i).copied().unwrap_or(0);
        match p.opcode {
            op::TEST_UNIT_READY | op::START_STOP_UNIT => {
                // A non-removable disk accepts START STOP UNIT and stays ready (QEMU
                // `scsi_disk_emulate_start_stop` only acts on removable media).
                ScsiResponse::good(xfer)
            }
            op::REQUEST_SENSE => truncated(Sense::NO_SENSE.fixed().to_vec(), xfer, data),
            op::INQUIRY => match self.inquiry(b(1), b(2)) {
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
                a.extend_from_slice(&self.inner.block_size.to_be_bytes());
                truncated(a, xfer, data)
            }
            op::SERVICE_ACTION_IN_16 if b(1) & 0x1F == cdb::SAI_READ_CAPACITY_16 => {
                let mut a = vec![0u8; 32];
                a[0..8].copy_from_slice(&(self.inner.blocks - 1).to_be_bytes());
                a[8..12].copy_from_slice(&self.inner.block_size.to_be_bytes());
                truncated(a, xfer, data)
            }
            op::MODE_SENSE_6 | op::MODE_SENSE_10 => match self.mode_sense(p.opcode == op::MODE_SENSE_10, b(1), b(2)) {
                Ok(answer) => truncated(answer, xfer, data),
                Err(s) => ScsiResponse::check(s, xfer),
            },
            // QEMU routes REPORT LUNS to its target emulation for every LUN; the answer is the
            // same: this target has LUN 0 only.
            op::REPORT_LUNS => report_luns(cdb, xfer, &[0], data),
            op::SYNCHRONIZE_CACHE_10 | op::SYNCHRONIZE_CACHE_16 => {
                bump(&self.inner.counters.flushes, 1);
                match self.inner.backing.flush() {
                    Ok(()) => ScsiResponse::good(xfer),
                    Err(_) => ScsiResponse::check(Sense::WRITE_ERROR, xfer),
                }
            }
            op::READ_6 | op::READ_10 | op::READ_12 | op::READ_16 | op::WRITE_6 | op::WRITE_10 | op::WRITE_12
            | op::WRITE_16 | op::WRITE_VERIFY_10 | op::WRITE_VERIFY_12 | op::WRITE_VERIFY_16 | op::VERIFY_10
            | op::VERIFY_12 | op::VERIFY_16 => self.block_command(p, cdb, data),
            // Everything else, including SERVICE ACTION IN(16) with another service action
            // (QEMU answers that one with INVALID FIELD; the opcode itself is known).
            op::SERVICE_ACTION_IN_16 => ScsiResponse::check(Sense::INVALID_FIELD, xfer),
            _ => ScsiResponse::check(Sense::INVALID_OPCODE, xfer),
        }
    }

    fn inquiry(&self, b1: u8, page: u8) -> Result<Vec<u8>, Sense> {
        if b1 & 0x02 != 0 {
            return Err(Sense::INVALID_FIELD); // CmdDt is obsolete and not implemented.
        }
        if b1 & 0x01 == 0 {
            if page != 0 {
                return Err(Sense::INVALID_FIELD);
            }
            let mut a = vec![0u8; 36];
            a[0] = 0x00; // peripheral qualifier 0, direct-access block device
            a[2] = 0x05; // SPC-3
            a[3] = 0x12; // HiSup, response data format 2
            a[4] = 36 - 5;
            a[7] = 0x12; // Sync, CmdQue (PVSCSI queues tagged commands)
            a[8..16].copy_from_slice(&self.inner.vendor);
            a[16..32].copy_from_slice(&self.inner.product);
            a[32..36].copy_from_slice(&self.inner.revision);
            return Ok(a);
        }
        let body: Vec<u8> = match page {
            0x00 => vec![0x00, 0x80, 0x83, 0xB0, 0xB1],
            0x80 => self.inner.serial.bytes().filter(|b| (0x20..0x7F).contains(b)).take(252).collect(),
            0x83 => {
                let mut d = Vec::new();
                // NAA designator: binary code set, LU association, type 3.
                d.extend_from_slice(&[0x01, 0x03, 0x00, 0x08]);
                d.extend_from_slice(&self.inner.naa.to_be_bytes());
                // T10 vendor ID designator: ASCII code set, LU association, type 1.
                let mut t10 = self.inner.vendor.to_vec();
                t10.extend(self.inner.serial.bytes().filter(|b| (0x20..0x7F).contains(b)).take(64));
                d.extend_from_slice(&[0x02, 0x01, 0x00, u8::try_from(t10.len()).unwrap_or(u8::MAX)]);
                d.extend_from_slice(&t10);
                d
            }
            0xB0 => {
                // Block limits: optimal transfer length granularity 1 block, no other limits.
                let mut d = vec![0u8; 0x3C];
                d[3] = 1;
                d
            }
            0xB1 => {
                // Block device characteristics: medium rotation rate 1 = non-rotating.
                let mut d = vec![0u8; 0x3C];
                d[1] = 1;
                d
            }
            _ => return Err(Sense::INVALID_FIELD),
        };
        let mut a = vec![0x00, page];
        a.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
        a.extend_from_slice(&body);
        Ok(a)
    }

    fn mode_page(&self, page: u8, pc: u8, out: &mut Vec<u8>) {
        let changeable = pc == 1;
        match page {
            0x01 => {
                // Read-write error recovery: AWRE set (QEMU's value), nothing changeable.
                let mut p = vec![0x01, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                if !changeable {
                    p[2] = 0x80;
                }
                out.extend_from_slice(&p);
            }
            0x04 => {
                // Rigid disk geometry: a made-up 16-head, 63-sector geometry and 5400 rpm.
                let mut p = vec![0u8; 24];
                p[0] = 0x04;
                p[1] = 0x16;
                if !changeable {
                    let cyls = u32::try_from((self.inner.blocks / (16 * 63)).min(0xFF_FFFF)).unwrap_or(0);
                    p[2..5].copy_from_slice(&cyls.to_be_bytes()[1..4]);
                    p[5] = 16;
                    p[20..22].copy_from_slice(&5400u16.to_be_bytes());
                }
                out.extend_from_slice(&p);
            }
            _ => {
                // Caching: WCE is the only changeable bit.
                let mut p = vec![0u8; 20];
                p[0] = 0x08;
                p[1] = 0x12;
                if changeable || self.state().write_cache {
                    p[2] = 0x04;
                }
                out.extend_from_slice(&p);
            }
        }
    }

    fn mode_sense(&self, ten: bool, b1: u8, b2: u8) -> Result<Vec<u8>, Sense> {
        let dbd = b1 & 0x08 != 0;
        let pc = b2 >> 6;
        let page = b2 & 0x3F;
        if pc == 3 {
            return Err(Sense::SAVING_PARAMS_NOT_SUPPORTED);
        }
        let mut pages = Vec::new();
        match page {
            0x01 | 0x04 | 0x08 => self.mode_page(page, pc, &mut pages),
            0x3F => {
                for p in [0x01, 0x04, 0x08] {
                    self.mode_page(p, pc, &mut pages);
                }
            }
            _ => return Err(Sense::INVALID_FIELD),
        }
        // Device-specific parameter: WP (0x80) and DPOFUA (0x10).
        let dev_specific = if self.state().write_protect { 0x90 } else { 0x10 };
        let mut bd = Vec::new();
        if !dbd {
            let n = u32::try_from(self.inner.blocks).ok().filter(|&n| n <= 0xFF_FFFF).unwrap_or(0);
            bd.push(0); // density code
            bd.extend_from_slice(&n.to_be_bytes()[1..4]);
            bd.push(0);
            bd.extend_from_slice(&self.inner.block_size.to_be_bytes()[1..4]);
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

    fn block_command(&self, p: &Parsed, cdb: &[u8], data: &mut dyn DataBuffer) -> ScsiResponse {
        let xfer = p.xfer.len;
        let Some((kind, range)) = cdb::block_range(cdb) else {
            return ScsiResponse::check(Sense::INVALID_OPCODE, xfer);
        };
        // RDPROTECT/WRPROTECT/VRPROTECT need protection information these disks do not have.
        if p.len > 6 && cdb.get(1).copied().unwrap_or(0) & 0xE0 != 0 {
            return ScsiResponse::check(Sense::INVALID_FIELD, xfer);
        }
        let blocks = self.inner.blocks;
        if range.lba >= blocks || range.blocks > blocks - range.lba {
            return ScsiResponse::check(Sense::LBA_OUT_OF_RANGE, xfer);
        }
        let bytchk = (cdb.get(1).copied().unwrap_or(0) >> 1) & 3;
        match kind {
            BlockOp::Verify if bytchk == 0 => ScsiResponse::good(xfer),
            BlockOp::Verify if bytchk != 1 => ScsiResponse::check(Sense::INVALID_FIELD, xfer),
            BlockOp::Write | BlockOp::WriteVerify if self.write_protected() => {
                ScsiResponse::check(Sense::WRITE_PROTECTED, xfer)
            }
            _ if range.blocks == 0 => ScsiResponse::good(xfer),
            _ => self.transfer_blocks(kind, range.lba, xfer, data),
        }
    }

    /// The data phase of READ/WRITE/VERIFY (BYTCHK 1), with QEMU's rules (pvscsi-facts.md §6.3):
    /// the whole buffer is transferred, in whole blocks, whatever the CDB says, and the residual
    /// is CDB length − buffer size. A buffer longer than the CDB thus reads or writes blocks
    /// beyond the CDB's range (stopping at the end of the medium here).
    fn transfer_blocks(&self, kind: BlockOp, lba: u64, xfer: u64, data: &mut dyn DataBuffer) -> ScsiResponse {
        let bs = u64::from(self.inner.block_size);
        let buf_len = data.len();
        let residual = signed(xfer).saturating_sub(signed(buf_len));
        let mut bytes = (buf_len / bs * bs).min((self.inner.blocks - lba) * bs);
        if kind == BlockOp::Verify {
            bytes = bytes.min(xfer);
        }
        let base = lba * bs;
        let mut chunk = vec![0u8; usize::try_from(bytes.min(CHUNK)).unwrap_or(0)];
        let mut other = if kind == BlockOp::Verify { chunk.clone() } else { Vec::new() };
        let mut done = 0u64;
        let mut resp = ScsiResponse { status: super::STATUS_GOOD, sense: Vec::new(), transferred: 0, residual, fault: None };
        while done < bytes {
            let n = usize::try_from((bytes - done).min(CHUNK)).unwrap_or(0);
            let (Some(buf), off) = (chunk.get_mut(..n), base + done) else { break };
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
        let c = &self.inner.counters;
        match kind {
            BlockOp::Read => {
                bump(&c.reads, 1);
                bump(&c.blocks_read, done / bs);
            }
            BlockOp::Write | BlockOp::WriteVerify => {
                bump(&c.writes, 1);
                bump(&c.blocks_written, done / bs);
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
        bump(&self.inner.counters.commands, 1);
        let (resp, was_ua) = self.execute_inner(lun, cdb, data);
        let check = resp.status == super::STATUS_CHECK_CONDITION;
        if check {
            bump(&self.inner.counters.check_conditions, 1);
        }
        // Every completion replaces the device's stored sense; a unit attention fetched by
        // autosense is consumed, not stored (QEMU `scsi_req_complete`, `scsi_req_get_sense`).
        self.state().last_sense = if check && !was_ua { resp.sense_code() } else { None };
        resp
    }

    fn reset(&self) {
        bump(&self.inner.counters.resets, 1);
        let mut st = self.state();
        st.ua = Some(Sense::POWER_ON_RESET);
        st.last_sense = None;
    }

    fn describe(&self) -> String {
        format!(
            "disk {} ({} x {} bytes, serial {})",
            self.inner.backing.describe(),
            self.inner.blocks,
            self.inner.block_size,
            self.inner.serial
        )
    }
}
