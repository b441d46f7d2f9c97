//! [`UioHba`]: a real PCI function, bound to `uio_pci_generic`, behind the [`Hba`] trait.
//!
//! Every step follows the recipe proven in qemu-pvscsi-feasibility.md ("What the probe does"):
//! identity and configuration space from sysfs `config`, BARs from sysfs `resource`, memory
//! BARs mapped from sysfs `resourceN`, `/dev/uioN` opened before bus mastering is switched on,
//! interrupts read from `/dev/uioN`, and INTx re-armed by clearing the command register's
//! INTx-disable bit through sysfs `config`.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::hba::{Bar, BarKind, Hba, PciIdentity, Waker};
use crate::mem::PAGE_SIZE;

use super::parse::{self, cfg};

/// Size of PVSCSI's register window, and the minimum length of the BAR that holds it
/// (`PVSCSI_MEM_SPACE_SIZE`, pvscsi-facts.md §1).
pub const PVSCSI_MEM_SPACE_SIZE: u64 = 0x8000;

/// VMware's PCI vendor ID.
const PVSCSI_VENDOR_ID: u16 = 0x15ad;
/// PVSCSI's PCI device ID.
const PVSCSI_DEVICE_ID: u16 = 0x07c0;
/// PVSCSI's interrupt mask register (pvscsi-facts.md §2).
const PVSCSI_REG_INTR_MASK: u64 = 0x2010;
/// The completion bits of the interrupt mask (`PVSCSI_INTR_CMPL_MASK`).
const PVSCSI_INTR_CMPL_MASK: u32 = 0x3;

/// The sysfs directory of PCI functions.
const PCI_DEVICES: &str = "/sys/bus/pci/devices";
/// The sysfs directory of the `uio_pci_generic` driver (exists once the module is loaded).
const UIO_PCI_GENERIC: &str = "/sys/bus/pci/drivers/uio_pci_generic";
/// How long to wait for sysfs and devtmpfs to show the results of binding.
const BIND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the device could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UioError(pub String);

impl std::fmt::Display for UioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UioError {}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> UioError {
    move |e| UioError(format!("{what}: {e}"))
}

/// A memory BAR mapped from sysfs `resourceN`.
struct BarMapping {
    va: NonNull<u8>,
    /// The BAR's length; accesses beyond it are rejected.
    len: u64,
    /// The mapped length (the BAR length rounded up to whole pages).
    map_len: usize,
}

// SAFETY: a mapping of device registers owned by this value; any thread may access registers.
unsafe impl Send for BarMapping {}
// SAFETY: as above; accesses are single volatile loads and stores.
unsafe impl Sync for BarMapping {}

impl BarMapping {
    fn map(path: &Path, len: u64) -> Result<Self, UioError> {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(io_err(path.display()))?;
        let map_len = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_next_multiple_of(PAGE_SIZE))
            .ok_or_else(|| UioError(format!("{}: BAR of {len:#x} bytes is too large to map", path.display())))?;
        // SAFETY: a new shared mapping of the BAR through its sysfs resource file; sysfs checks
        // that it fits the resource. No existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(UioError(format!("mmap of {}: {}", path.display(), std::io::Error::last_os_error())));
        }
        let va = NonNull::new(p.cast::<u8>()).ok_or_else(|| UioError("mmap returned NULL".into()))?;
        Ok(Self { va, len, map_len })
    }

    /// The address of an access, if it is 1, 2 or 4 bytes, naturally aligned and inside the BAR.
    fn at(&self, offset: u64, size: u8) -> Option<*mut u8> {
        let ok = matches!(size, 1 | 2 | 4)
            && offset.is_multiple_of(u64::from(size))
            && offset.checked_add(u64::from(size)).is_some_and(|end| end <= self.len);
        // The offset is below `len`, which fits in `usize` (it was mapped).
        ok.then(|| self.va.as_ptr().wrapping_add(usize::try_from(offset).unwrap_or(usize::MAX)))
    }
}

impl Drop for BarMapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no access can be in flight, since
        // the owner (`UioHba`) is being dropped.
        unsafe { libc::munmap(self.va.as_ptr().cast(), self.map_len) };
    }
}

/// One volatile load of a `T` at `p`.
///
/// # Safety
/// `p` must lie in a live mapping with `size_of::<T>()` bytes readable there, aligned for `T`.
unsafe fn volatile_read<T: Copy>(p: *mut u8) -> T {
    #[allow(clippy::cast_ptr_alignment)] // the caller guarantees alignment
    let p = p.cast::<T>();
    // SAFETY: the caller's guarantee.
    unsafe { p.read_volatile() }
}

/// One volatile store of a `T` at `p`.
///
/// # Safety
/// As [`volatile_read`], writable.
unsafe fn volatile_write<T: Copy>(p: *mut u8, value: T) {
    #[allow(clippy::cast_ptr_alignment)] // the caller guarantees alignment
    let p = p.cast::<T>();
    // SAFETY: the caller's guarantee.
    unsafe { p.write_volatile(value) }
}

/// State shared with the interrupt thread.
#[derive(Default)]
struct IrqShared {
    waker: Mutex<Option<Waker>>,
    /// An interrupt arrived while no waker was registered.
    pending: AtomicBool,
    /// Successful reads of `/dev/uioN`: each is at least one INTx the kernel took for the
    /// device (`uio_pci_generic` masks INTx in its handler, so there is at most one per re-arm).
    wakeups: AtomicU64,
    /// Why the thread stopped early, if it did.
    error: Mutex<Option<String>>,
}

impl IrqShared {
    fn wake(&self) {
        let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match waker {
            Some(w) => w(),
            None => self.pending.store(true, Ordering::SeqCst),
        }
    }

    fn fail(&self, msg: String) {
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(msg);
    }
}

/// The thread that blocks on `/dev/uioN` and an eventfd that stops it.
struct IrqThread {
    stop: OwnedFd,
    handle: Option<JoinHandle<()>>,
}

impl IrqThread {
    fn start(uio: Arc<File>, shared: Arc<IrqShared>) -> Result<Self, UioError> {
        // SAFETY: creates a new descriptor; no arguments point anywhere.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(UioError(format!("eventfd: {}", std::io::Error::last_os_error())));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let stop = unsafe { OwnedFd::from_raw_fd(fd) };
        let stop_raw = stop.as_raw_fd();
        let handle = std::thread::Builder::new()
            .name("uio-intx".into())
            .spawn(move || irq_loop(&uio, stop_raw, &shared))
            .map_err(io_err("spawning the interrupt thread"))?;
        Ok(Self { stop, handle: Some(handle) })
    }
}

impl Drop for IrqThread {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        let _ = unsafe { libc::write(self.stop.as_raw_fd(), (&raw const one).cast(), 8) };
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Waits for interrupts: `poll` on `/dev/uioN` (readable after each interrupt) and the stop
/// eventfd, then `read` the 4-byte event count to consume the event, then call the waker.
fn irq_loop(uio: &File, stop: libc::c_int, shared: &IrqShared) {
    let mut fds = [
        libc::pollfd { fd: uio.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: stop, events: libc::POLLIN, revents: 0 },
    ];
    loop {
        // SAFETY: `fds` is a live array of two pollfd structures.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            shared.fail(format!("poll on the uio device: {e}"));
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        let revents = fds[0].revents;
        if revents & libc::POLLIN != 0 {
            let mut count = [0u8; 4];
            match uio.read_at(&mut count, 0) {
                Ok(4) => {
                    shared.wakeups.fetch_add(1, Ordering::Relaxed);
                    shared.wake();
                }
                Ok(n) => {
                    shared.fail(format!("read of the uio device returned {n} bytes"));
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    shared.fail(format!("read of the uio device: {e}"));
                    return;
                }
            }
        } else if revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            shared.fail(format!("uio device poll events {revents:#x}"));
            return;
        }
    }
}

/// A PCI function driven from user space through `uio_pci_generic`.
///
/// * Register BARs: every memory BAR is mapped from `resourceN`; I/O BARs are reported by
///   [`Hba::bars`] but not accessible (reads return all ones, writes are dropped, both are
///   counted in [`UioHba::rejected_accesses`]); QEMU's PVSCSI has none (pvscsi-facts.md §1).
/// * Access widths: each access is one volatile load or store of exactly the requested width,
///   as a CPU instruction would put it on the bus. QEMU's PVSCSI implements only 4-byte
///   accesses; its memory core turns a 1- or 2-byte access into one 4-byte register access at
///   the same (unaligned) offset with the value masked (pvscsi-facts.md §2), so a narrow access
///   to a register's first byte reaches the register and any other lands on no register. We
///   pass narrow accesses through rather than widen them, because widening would turn a byte
///   store into a read-modify-write of the whole register, repeating side effects
///   (write-1-to-clear, `COMMAND_DATA`) that the driver did not ask for. Misaligned accesses
///   and accesses past the BAR are rejected (counted), like the port's own range checks.
/// * Ordering: a full fence precedes each register write and follows each register read, so a
///   driver's descriptor stores are visible before the kick that tells the device about them
///   (what Linux's `writel` guarantees).
/// * Interrupts: a thread waits on `/dev/uioN` and calls the registered waker.
///   [`Hba::irq_asserted`] reads the interrupt-status bit of the PCI status register, which
///   shows the device's INTx level even while `uio_pci_generic` keeps INTx disabled;
///   [`Hba::end_of_interrupt`] clears INTx-disable (writes to `/dev/uioN` give ENOSYS: the
///   driver has no `irqcontrol`; feasibility doc, obstacle 1). The wakeup is only a hint to
///   look at the line: INTx can be shared.
/// * Configuration writes from the port pass through to sysfs `config` unchanged.
/// * Dropping it closes `/dev/uioN`, whose `release` turns bus mastering off, so the device
///   can no longer reach memory: drop the HBA before the DMA space it was given.
pub struct UioHba {
    bdf: String,
    uio_name: String,
    identity: PciIdentity,
    bars: Vec<Bar>,
    maps: Vec<Option<BarMapping>>,
    register_bar: Option<u8>,
    config: File,
    shared: Arc<IrqShared>,
    rejected: AtomicU64,
    // Declared last so they drop last: the thread stops, then `/dev/uioN` closes.
    _irq: IrqThread,
    _uio: Arc<File>,
}

impl std::fmt::Debug for UioHba {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UioHba")
            .field("bdf", &self.bdf)
            .field("uio", &self.uio_name)
            .field("identity", &self.identity)
            .field("bars", &self.bars)
            .field("register_bar", &self.register_bar)
            .finish_non_exhaustive()
    }
}

fn driver_of(dev: &Path) -> Option<String> {
    let link = std::fs::read_link(dev.join("driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> Result<T, UioError> {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if start.elapsed() > BIND_TIMEOUT {
            return Err(UioError(format!("timed out after {BIND_TIMEOUT:?} waiting for {what}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Binds the function to `uio_pci_generic` unless it already is, and returns its uio name.
fn bind(dev: &Path, bdf: &str, id: &PciIdentity) -> Result<String, UioError> {
    match driver_of(dev).as_deref() {
        Some("uio_pci_generic") => {}
        Some(other) => {
            return Err(UioError(format!(
                "{bdf} is bound to {other}; unbind it first: echo {bdf} > {}/driver/unbind",
                dev.display()
            )));
        }
        None => {
            let drv = Path::new(UIO_PCI_GENERIC);
            if !drv.is_dir() {
                return Err(UioError(format!(
                    "{UIO_PCI_GENERIC} is missing: load the uio and uio_pci_generic modules first"
                )));
            }
            // new_id makes the driver probe every unbound function with these IDs at once.
            let ids = format!("{:04x} {:04x}", id.vendor_id, id.device_id);
            if let Err(e) = std::fs::write(drv.join("new_id"), &ids) {
                // EEXIST: the ID was added before (the function was bound elsewhere then).
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(UioError(format!("{UIO_PCI_GENERIC}/new_id <- {ids}: {e}")));
                }
            }
            if driver_of(dev).is_none() {
                let _ = std::fs::write(drv.join("bind"), bdf);
            }
            wait_for(&format!("{bdf} to bind to uio_pci_generic"), || {
                (driver_of(dev).as_deref() == Some("uio_pci_generic")).then_some(())
            })?;
        }
    }
    wait_for(&format!("{}/uio/uio*", dev.display()), || {
        std::fs::read_dir(dev.join("uio"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("uio"))
    })
}

impl UioHba {
    /// Opens the PCI function at `bdf` (`dddd:bb:dd.f` or `bb:dd.f`): binds it to
    /// `uio_pci_generic` if it is unbound, opens `/dev/uioN`, maps its memory BARs, starts the
    /// interrupt thread, and enables memory decoding, bus mastering and INTx.
    ///
    /// # Errors
    /// A malformed address, a missing function, a function bound to another driver, a missing
    /// `uio_pci_generic`, or any sysfs or mapping failure.
    pub fn open(bdf: &str) -> Result<Self, UioError> {
        let bdf = parse::normalize_bdf(bdf).map_err(UioError)?;
        let dev = PathBuf::from(PCI_DEVICES).join(&bdf);
        if !dev.is_dir() {
            return Err(UioError(format!("no PCI function {bdf} ({} does not exist)", dev.display())));
        }
        let config_path = dev.join("config");
        let config =
            OpenOptions::new().read(true).write(true).open(&config_path).map_err(io_err(config_path.display()))?;
        let mut header = [0u8; 64];
        config.read_exact_at(&mut header, 0).map_err(io_err(config_path.display()))?;
        let identity = parse::identity_from_config(&header).map_err(|e| UioError(format!("{bdf}: {e}")))?;

        let uio_name = bind(&dev, &bdf, &identity)?;
        let uio_path = PathBuf::from("/dev").join(&uio_name);
        wait_for(&format!("{} (is devtmpfs mounted on /dev?)", uio_path.display()), || {
            uio_path.exists().then_some(())
        })?;
        // Open before enabling bus mastering: `uio_pci_generic`'s release() clears it.
        let uio =
            Arc::new(OpenOptions::new().read(true).write(true).open(&uio_path).map_err(io_err(uio_path.display()))?);

        let resource_path = dev.join("resource");
        let text = std::fs::read_to_string(&resource_path).map_err(io_err(resource_path.display()))?;
        let lines = parse::parse_resource(&text).map_err(|e| UioError(format!("{}: {e}", resource_path.display())))?;
        let bars = parse::bars_from_resources(&lines);
        let mut maps: Vec<Option<BarMapping>> = (0..parse::BAR_COUNT).map(|_| None).collect();
        for bar in bars.iter().filter(|b| b.kind == BarKind::Memory) {
            let mapping = BarMapping::map(&dev.join(format!("resource{}", bar.index)), bar.len)?;
            if let Some(slot) = maps.get_mut(usize::from(bar.index)) {
                *slot = Some(mapping);
            }
        }
        let register_bar = parse::register_bar(&bars, PVSCSI_MEM_SPACE_SIZE);

        let shared = Arc::new(IrqShared::default());
        let irq = IrqThread::start(Arc::clone(&uio), Arc::clone(&shared))?;
        let hba = Self {
            bdf,
            uio_name,
            identity,
            bars,
            maps,
            register_bar,
            config,
            shared,
            rejected: AtomicU64::new(0),
            _irq: irq,
            _uio: uio,
        };
        // INTx-disable may be left set by an earlier user of the device that exited between an
        // interrupt and its re-arm; no interrupt would ever reach us then.
        let command = hba.command().map_err(io_err("reading the command register"))?;
        let wanted = (command | cfg::COMMAND_MEMORY | cfg::COMMAND_MASTER) & !cfg::COMMAND_INTX_DISABLE;
        if wanted != command {
            hba.set_command(wanted).map_err(io_err("enabling memory decoding, bus mastering and INTx"))?;
        }
        Ok(hba)
    }

    /// The function's PCI address, `dddd:bb:dd.f`.
    #[must_use]
    pub fn bdf(&self) -> &str {
        &self.bdf
    }

    /// The uio device name (`uio0`).
    #[must_use]
    pub fn uio_name(&self) -> &str {
        &self.uio_name
    }

    /// The BAR holding PVSCSI's registers: the first memory BAR of at least 32 KiB, chosen by
    /// type and size as the driver does (pvscsi-facts.md §1). `None` if there is none.
    #[must_use]
    pub fn register_bar(&self) -> Option<u8> {
        self.register_bar
    }

    /// Interrupts received through `/dev/uioN` since opening.
    #[must_use]
    pub fn interrupt_wakeups(&self) -> u64 {
        self.shared.wakeups.load(Ordering::Relaxed)
    }

    /// Register accesses refused: I/O BARs, unmapped BARs, bad widths, misaligned or out of range.
    #[must_use]
    pub fn rejected_accesses(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Why the interrupt thread stopped, if it stopped before the HBA was dropped.
    #[must_use]
    pub fn irq_thread_error(&self) -> Option<String> {
        self.shared.error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn config_u16(&self, offset: usize) -> std::io::Result<u16> {
        let mut b = [0u8; 2];
        self.config.read_exact_at(&mut b, offset as u64)?;
        Ok(u16::from_le_bytes(b))
    }

    fn command(&self) -> std::io::Result<u16> {
        self.config_u16(cfg::COMMAND)
    }

    /// Writes only the two command bytes, never the status register beside them (whose
    /// error bits are write-1-to-clear).
    fn set_command(&self, value: u16) -> std::io::Result<()> {
        self.config.write_all_at(&value.to_le_bytes(), cfg::COMMAND as u64)
    }

    fn mmio(&self, bar: u8, offset: u64, size: u8) -> Option<*mut u8> {
        let at = self.maps.get(usize::from(bar)).and_then(Option::as_ref).and_then(|m| m.at(offset, size));
        if at.is_none() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        at
    }
}

impl Hba for UioHba {
    fn identity(&self) -> PciIdentity {
        self.identity
    }

    fn bars(&self) -> Vec<Bar> {
        self.bars.clone()
    }

    fn config_read(&self, offset: u32, buf: &mut [u8]) -> usize {
        let room = 256usize.saturating_sub(offset as usize);
        let n = buf.len().min(room);
        match buf.get_mut(..n) {
            Some(dst) if n > 0 => self.config.read_at(dst, u64::from(offset)).unwrap_or(0),
            _ => 0,
        }
    }

    fn config_write(&self, offset: u32, data: &[u8]) -> usize {
        let room = 256usize.saturating_sub(offset as usize);
        let n = data.len().min(room);
        match data.get(..n) {
            Some(src) if n > 0 => self.config.write_at(src, u64::from(offset)).unwrap_or(0),
            _ => 0,
        }
    }

    fn read(&self, bar: u8, offset: u64, size: u8) -> u32 {
        let Some(p) = self.mmio(bar, offset, size) else {
            return u32::MAX;
        };
        // SAFETY (each arm): `p` is inside a live register mapping and aligned for `size`
        // (checked by `BarMapping::at`); one volatile access of exactly that width reaches
        // the device.
        let value = match size {
            // SAFETY: see above.
            1 => u32::from(unsafe { volatile_read::<u8>(p) }),
            // SAFETY: see above.
            2 => u32::from(unsafe { volatile_read::<u16>(p) }),
            // SAFETY: see above.
            _ => unsafe { volatile_read::<u32>(p) },
        };
        fence(Ordering::SeqCst);
        value
    }

    // Truncation to the access width is the point of a narrow store.
    #[allow(clippy::cast_possible_truncation)]
    fn write(&self, bar: u8, offset: u64, size: u8, value: u32) {
        let Some(p) = self.mmio(bar, offset, size) else {
            return;
        };
        fence(Ordering::SeqCst);
        match size {
            // SAFETY: as in `read`.
            1 => unsafe { volatile_write(p, value as u8) },
            // SAFETY: as in `read`.
            2 => unsafe { volatile_write(p, value as u16) },
            // SAFETY: as in `read`.
            _ => unsafe { volatile_write(p, value) },
        }
    }

    fn irq_asserted(&self) -> bool {
        self.config_u16(cfg::STATUS).is_ok_and(|s| s & cfg::STATUS_INTERRUPT != 0)
    }

    fn end_of_interrupt(&self) {
        // A race with the kernel's handler setting the bit between our read and write is
        // harmless: the handler only masks while the device asserts the line, the event is
        // already counted on /dev/uioN, and unmasking a still-asserted level line re-raises it.
        if let Ok(command) = self.command()
            && command & cfg::COMMAND_INTX_DISABLE != 0
        {
            let _ = self.set_command(command & !cfg::COMMAND_INTX_DISABLE);
        }
    }

    fn next_event_ns(&self) -> Option<u64> {
        None
    }

    fn run_due(&self, _now_ns: u64) -> bool {
        false
    }

    /// For PVSCSI, from the device itself: whether `INTR_MASK` (0x2010) enables a completion
    /// source (`CMPL_0 | CMPL_1`, pvscsi-facts.md §2–§3). Reading it has no side effect. Other
    /// devices: unknown.
    fn interrupts_unmasked(&self) -> Option<bool> {
        let pvscsi = self.identity.vendor_id == PVSCSI_VENDOR_ID && self.identity.device_id == PVSCSI_DEVICE_ID;
        let bar = self.register_bar.filter(|_| pvscsi)?;
        Some(self.read(bar, PVSCSI_REG_INTR_MASK, 4) & PVSCSI_INTR_CMPL_MASK != 0)
    }

    fn set_waker(&self, waker: Waker) {
        *self.shared.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(waker);
        if self.shared.pending.swap(false, Ordering::SeqCst) {
            self.shared.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Only addresses that cannot name a real function: a test must never bind a host device.

    #[test]
    fn malformed_address_is_refused_before_sysfs() {
        let e = UioHba::open("../../../../dev/mem").unwrap_err();
        assert!(e.0.contains("not a PCI address"), "{e}");
    }

    #[test]
    fn absent_function_is_an_error() {
        let e = UioHba::open("ffff:ff:1f.7").unwrap_err();
        assert!(e.0.contains("no PCI function ffff:ff:1f.7"), "{e}");
    }
}
