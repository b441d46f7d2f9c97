//! DMA memory: host memory with guest-physical (bus) addresses.
//!
//! Everything the emulated HBA reaches by DMA (the uncached extension, SRB extensions, data and
//! sense buffers) is a [`DmaRegion`] from a [`DmaSpace`]. The port side asks for regions and
//! translates their virtual addresses for `ScsiPortGetPhysicalAddress`; the device side reads and
//! writes by physical address through [`GuestMemory`].
//!
//! Two backends exist: [`SimDma`] (this module), whose physical addresses are invented, deliberately
//! non-contiguous between pages of ordinary buffers and above 4 GiB by default, so that a driver
//! that mixes up virtual and physical addresses, or assumes contiguity, fails loudly; and the
//! hardware backend for a real PCI device, whose addresses come from `/proc/self/pagemap`.

use std::cell::Cell;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;

/// The page size of every physical address in this crate (PVSCSI's `VMW_PAGE_SIZE` too).
pub const PAGE_SIZE: usize = 4096;
const PAGE_SHIFT: u32 = 12;

/// A DMA access to a physical range that no live region backs (or that is protected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaFault {
    /// First faulting physical address.
    pub pa: u64,
    /// Length of the access that faulted.
    pub len: usize,
    /// Whether the access was a write (device → memory).
    pub write: bool,
}

impl fmt::Display for DmaFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DMA {} of {} bytes at PA {:#x} hits no live buffer",
            if self.write { "write" } else { "read" },
            self.len,
            self.pa
        )
    }
}

impl std::error::Error for DmaFault {}

/// Why an allocation failed.
#[derive(Debug)]
pub struct DmaError(pub String);

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DmaError {}

/// How a region's physical pages are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One physically contiguous run (a common buffer: the uncached extension).
    Contiguous,
    /// Pages may be anywhere (pool memory: data buffers, SRB extensions, sense buffers).
    Scattered,
}

/// What a backend does behind a [`DmaRegion`]: release it and, where it can, guard it.
pub trait RegionBacking: Send + Sync {
    /// Makes the region inaccessible to the CPU (`false`) or accessible again (`true`).
    /// Used by the verifier to catch a miniport touching an SRB extension after completion.
    /// Backends that cannot guard memory ignore it.
    fn set_cpu_access(&self, region: &DmaRegion, accessible: bool);
    /// Takes the region out of the device's reach for good: its physical pages leave the map (a
    /// later DMA to them is a [`DmaFault`]) and whatever the device side kept of it goes, while
    /// the CPU view stays mapped, never to be handed out again, until `release`. Used by the
    /// memory monitor's full quarantine, which keeps every completed SRB's pages for the machine's
    /// life: it halves what such a page holds (one mapping instead of two). Backends that cannot
    /// do it ignore it.
    fn retire(&self, _region: &DmaRegion) {}
    /// Releases the memory; called once, from `DmaRegion`'s `Drop`.
    fn release(&self, region: &DmaRegion);
}

/// A block of host memory the device can reach, with the physical address of each page.
pub struct DmaRegion {
    va: NonNull<u8>,
    len: usize,
    pages: Box<[u64]>,
    id: u64,
    backing: Arc<dyn RegionBacking>,
}

// SAFETY: the region is plain memory owned by this value; the raw pointer is only an address.
// Access to the bytes is unsynchronised by design (it is shared with a device), which callers
// handle with volatile accesses, exactly as kernel code does with DMA memory.
unsafe impl Send for DmaRegion {}
// SAFETY: as above; `&DmaRegion` only hands out the address.
unsafe impl Sync for DmaRegion {}

impl fmt::Debug for DmaRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaRegion")
            .field("id", &self.id)
            .field("va", &self.va)
            .field("len", &self.len)
            .field("first_pa", &self.pages.first())
            .finish_non_exhaustive()
    }
}

impl DmaRegion {
    /// Assembles a region; for backends.
    ///
    /// # Safety
    /// `va` must point to `pages.len() * PAGE_SIZE` bytes, page aligned, that stay valid until
    /// `backing.release` runs, and `len <= pages.len() * PAGE_SIZE`.
    #[must_use]
    pub unsafe fn from_raw(
        va: NonNull<u8>,
        len: usize,
        pages: Box<[u64]>,
        id: u64,
        backing: Arc<dyn RegionBacking>,
    ) -> Self {
        Self { va, len, pages, id, backing }
    }

    /// The virtual address of byte 0: page aligned, but for a [`Self::view`], which starts
    /// where its bytes are in the parent's page.
    #[must_use]
    pub fn va(&self) -> *mut u8 {
        self.va.as_ptr()
    }

    /// Length in bytes as requested.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A backend-unique identity.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The physical address of each 4 KiB page.
    #[must_use]
    pub fn pages(&self) -> &[u64] {
        &self.pages
    }

    /// Whether `va` lies inside the region.
    #[must_use]
    pub fn contains(&self, va: usize) -> bool {
        let start = self.va.as_ptr() as usize;
        va >= start && va - start < self.len
    }

    /// Physical address of byte `offset` and how many bytes from there are physically
    /// contiguous within the region (what `ScsiPortGetPhysicalAddress` reports in `*Length`).
    #[must_use]
    pub fn phys(&self, offset: usize) -> Option<(u64, usize)> {
        if offset >= self.len {
            return None;
        }
        // A view starts inside its first page; any other region at its start.
        let at = offset + (self.va.as_ptr() as usize & (PAGE_SIZE - 1));
        let page = at >> PAGE_SHIFT;
        let within = at & (PAGE_SIZE - 1);
        let pa = self.pages.get(page)? + within as u64;
        let mut run = PAGE_SIZE - within;
        let mut next = page + 1;
        while let (Some(prev), Some(cur)) = (self.pages.get(next - 1), self.pages.get(next)) {
            if *cur != prev + PAGE_SIZE as u64 {
                break;
            }
            run += PAGE_SIZE;
            next += 1;
        }
        Some((pa, run.min(self.len - offset)))
    }

    /// The CPU view as a byte slice.
    ///
    /// # Safety
    /// No device may be writing the region while the slice lives, and it must be accessible.
    #[must_use]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the caller guarantees exclusive CPU-side use; the memory is valid for len.
        unsafe { std::slice::from_raw_parts(self.va.as_ptr(), self.len) }
    }

    /// The CPU view as a mutable byte slice.
    ///
    /// # Safety
    /// As [`Self::as_slice`], and no other reference to the bytes may exist.
    #[allow(clippy::mut_from_ref)]
    #[must_use]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: the caller guarantees exclusivity; the memory is valid for len.
        unsafe { std::slice::from_raw_parts_mut(self.va.as_ptr(), self.len) }
    }

    /// `len` bytes at `offset` of this region as a region of their own, so that two buffers can
    /// share a page (the SRB arena puts the sense buffer in the SRB's page, which the memory
    /// monitor then guards with one page table entry instead of two). The view has the parent's
    /// physical pages and identity, and releases, retires and guards nothing: its bytes are the
    /// parent's, in the device's reach and guarded as the parent's are. It keeps the parent's
    /// backing alive, but its bytes are valid only while the parent is. `None` when the bytes are
    /// not all inside the region.
    #[must_use]
    pub fn view(&self, offset: usize, len: usize) -> Option<DmaRegion> {
        if offset.checked_add(len)? > self.len {
            return None;
        }
        let first = (self.va.as_ptr() as usize & (PAGE_SIZE - 1)) + offset;
        let last = first + len.max(1) - 1;
        let pages: Box<[u64]> = self.pages.get(first >> PAGE_SHIFT..=last >> PAGE_SHIFT)?.into();
        let va = NonNull::new(self.va.as_ptr().wrapping_add(offset))?;
        Some(DmaRegion { va, len, pages, id: self.id, backing: Arc::new(ViewBacking { _parent: Arc::clone(&self.backing) }) })
    }

    /// Guards the region against CPU access (see [`RegionBacking::set_cpu_access`]).
    pub fn set_cpu_access(&self, accessible: bool) {
        self.backing.set_cpu_access(self, accessible);
    }

    /// Takes the region out of the device's reach for good (see [`RegionBacking::retire`]).
    pub fn retire(&self) {
        self.backing.retire(self);
    }
}

impl Drop for DmaRegion {
    fn drop(&mut self) {
        self.backing.release(self);
    }
}

/// What backs a [`DmaRegion::view`]: the parent's backing, kept alive (its mapping with it),
/// and nothing done to it. The bytes are the parent's, guarded and released with it.
struct ViewBacking {
    _parent: Arc<dyn RegionBacking>,
}

impl RegionBacking for ViewBacking {
    fn set_cpu_access(&self, _region: &DmaRegion, _accessible: bool) {}

    fn release(&self, _region: &DmaRegion) {}
}

/// Where regions come from.
pub trait DmaSpace: Send + Sync {
    /// Allocates `len` zeroed bytes, page aligned, that the device can reach.
    ///
    /// # Errors
    /// When the backend has no memory left.
    fn alloc(&self, len: usize, layout: Layout) -> Result<DmaRegion, DmaError>;

    /// Allocates one zeroed region per entry of `lens`, each starting on a page and rounded up to
    /// whole pages, laid out in order in a single CPU mapping, and the [`DmaSpan`] that covers
    /// them all. Each region's pages get their own physical addresses as `alloc` would give them
    /// for `layout`; each region is released on its own, and the mapping goes with the last of
    /// them and the span. What the span is for: the memory monitor changes the protection of a
    /// run of many regions with one `mprotect` ([`DmaSpan::set_cpu_access`]).
    ///
    /// # Errors
    /// When the backend has no memory left, or cannot give `layout` in a span.
    fn alloc_span(&self, lens: &[usize], layout: Layout) -> Result<(DmaSpan, Vec<DmaRegion>), DmaError>;

    /// Runs `f` with the space's physical map held still, so that the device's DMA inside `f`
    /// looks its pages up without locking the map for each access. The port wraps one turn of
    /// the device model in it (`Hba::run_due`: a ring's requests, their data and their
    /// completions, some eight accesses per request). `f` must not allocate or release regions
    /// of this space. The default (a backend with no lock to hold) just runs `f`.
    fn hold(&self, f: &mut dyn FnMut()) {
        f();
    }
}

/// What a backend does behind a [`DmaSpan`].
pub trait SpanBacking: Send + Sync {
    /// Makes `[va, va + len)`, whole pages inside the span, inaccessible to the CPU (`false`) or
    /// accessible again (`true`), with one system call.
    fn set_range_access(&self, va: usize, len: usize, accessible: bool);
}

/// The CPU mapping that the regions of one [`DmaSpace::alloc_span`] call share.
pub struct DmaSpan {
    va: NonNull<u8>,
    len: usize,
    backing: Arc<dyn SpanBacking>,
}

// SAFETY: as for `DmaRegion`: the pointer is only an address; the backing is Send + Sync.
unsafe impl Send for DmaSpan {}
// SAFETY: as above.
unsafe impl Sync for DmaSpan {}

impl fmt::Debug for DmaSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaSpan").field("va", &self.va).field("len", &self.len).finish_non_exhaustive()
    }
}

impl DmaSpan {
    /// Assembles a span; for backends.
    ///
    /// # Safety
    /// `va` must be page aligned and map `len` bytes (whole pages) for as long as `backing` lives.
    #[must_use]
    pub unsafe fn from_raw(va: NonNull<u8>, len: usize, backing: Arc<dyn SpanBacking>) -> Self {
        Self { va, len, backing }
    }

    /// The virtual address of byte 0 (page aligned).
    #[must_use]
    pub fn va(&self) -> *mut u8 {
        self.va.as_ptr()
    }

    /// Length in bytes (whole pages).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the span is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `va` lies inside the span.
    #[must_use]
    pub fn contains(&self, va: usize) -> bool {
        let start = self.va.as_ptr() as usize;
        va >= start && va - start < self.len
    }

    /// Guards (`false`) or unguards (`true`) the pages of `offset..offset + len`, rounded out to
    /// whole pages and clipped to the span, with one `mprotect`.
    pub fn set_cpu_access(&self, offset: usize, len: usize, accessible: bool) {
        let first = offset & !(PAGE_SIZE - 1);
        let end = offset.saturating_add(len).min(self.len).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        if end > first {
            self.backing.set_range_access(self.va.as_ptr() as usize + first, end - first, accessible);
        }
    }
}

/// The device's view of memory: by physical address.
pub trait GuestMemory: Send + Sync {
    /// Copies `buf.len()` bytes from physical address `pa`.
    ///
    /// # Errors
    /// When any byte is not backed by a live, unguarded region.
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaFault>;
    /// Copies `data` to physical address `pa`.
    ///
    /// # Errors
    /// When any byte is not backed by a live, unguarded region.
    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaFault>;
}

/// Settings of [`SimDma`].
#[derive(Clone, Copy, Debug)]
pub struct SimDmaConfig {
    /// First physical address handed out. Default 4 GiB, so that 64-bit addressing is exercised.
    pub pa_base: u64,
    /// Whether pages of [`Layout::Scattered`] regions get non-contiguous physical addresses.
    pub scatter: bool,
    /// Seed of the page placement.
    pub seed: u64,
}

impl Default for SimDmaConfig {
    fn default() -> Self {
        Self { pa_base: 0x1_0000_0000, scatter: true, seed: 1 }
    }
}

#[derive(Clone, Copy)]
struct PageEntry {
    host: usize,
    region: u64,
}

#[derive(Default)]
struct SimDmaState {
    /// Physical page number → the device's host view of the page and the owning region. A hash
    /// map whose hash is a multiply: every DMA access looks its pages up here, and nothing needs
    /// the pages in order (a B-tree of some thousand pages cost about 100 instructions a look-up).
    pages: rustc_hash::FxHashMap<u64, PageEntry>,
}

struct SimDmaInner {
    config: SimDmaConfig,
    state: RwLock<SimDmaState>,
    next_pa: Mutex<(u64, u64)>,
    next_id: AtomicU64,
}

thread_local! {
    /// The space whose map this thread holds read-locked in [`DmaSpace::hold`], if any.
    static HELD: Cell<*const SimDmaInner> = const { Cell::new(std::ptr::null()) };
}

impl SimDmaInner {
    /// Whether this thread is inside [`DmaSpace::hold`] of this space.
    fn held_here(&self) -> bool {
        HELD.with(Cell::get) == std::ptr::from_ref(self)
    }

    /// The map, to change. Inside this space's `hold` that would wait for this thread's own read
    /// lock for ever: a region allocated or released there is a bug of the emulator, reported
    /// as one.
    fn state_mut(&self) -> parking_lot::RwLockWriteGuard<'_, SimDmaState> {
        assert!(!self.held_here(), "a DMA region allocated or released inside DmaSpace::hold of its space");
        self.state.write()
    }
}

/// The emulator's DMA space: anonymous host memory with invented physical addresses.
#[derive(Clone)]
pub struct SimDma {
    inner: Arc<SimDmaInner>,
}

impl fmt::Debug for SimDma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDma").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Default for SimDma {
    fn default() -> Self {
        Self::new(SimDmaConfig::default())
    }
}

impl SimDma {
    /// A new, empty space.
    #[must_use]
    pub fn new(config: SimDmaConfig) -> Self {
        let base = (config.pa_base.max(PAGE_SIZE as u64) + PAGE_SIZE as u64 - 1) & !(PAGE_SIZE as u64 - 1);
        Self {
            inner: Arc::new(SimDmaInner {
                config,
                state: RwLock::new(SimDmaState::default()),
                next_pa: Mutex::new((base, config.seed | 1)),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Number of live pages (for leak checks in tests).
    #[must_use]
    pub fn live_pages(&self) -> usize {
        self.inner.state.read().pages.len()
    }

    /// The region (by [`DmaRegion::id`]) that backs physical address `pa`, if any.
    #[must_use]
    pub fn region_at(&self, pa: u64) -> Option<u64> {
        self.inner.state.read().pages.get(&(pa >> PAGE_SHIFT)).map(|e| e.region)
    }

    fn assign_pages(&self, count: usize, layout: Layout) -> Box<[u64]> {
        let mut guard = self.inner.next_pa.lock();
        let (next, rng) = &mut *guard;
        let mut pages = Vec::with_capacity(count);
        // One unmapped guard page before every region, so a DMA overrun faults.
        *next += PAGE_SIZE as u64;
        for i in 0..count {
            if i > 0 && layout == Layout::Scattered && self.inner.config.scatter {
                // xorshift: deterministic per seed; about half the page boundaries are broken.
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                if *rng & 1 == 1 {
                    *next += PAGE_SIZE as u64 * (1 + (*rng >> 1) % 3);
                }
            }
            pages.push(*next);
            *next += PAGE_SIZE as u64;
        }
        pages.into_boxed_slice()
    }

    /// Visits the (host address, offset into the caller's buffer, length) pieces of
    /// `pa..pa + len` once every page is known to be backed: a faulting access moves no byte.
    /// Pages whose host addresses follow each other (the pages of one region a physically
    /// contiguous range spans, in its device view) make one piece, so that a data transfer is
    /// one copy per run rather than one per page. An access within one page needs one look-up;
    /// a longer one looks each page up once when it spans at most [`PIECE_PAGES`] pages (a
    /// 128 KiB transfer), and again while visiting past them.
    fn each_piece(&self, pa: u64, len: usize, write: bool, mut visit: impl FnMut(usize, usize, usize)) -> Result<(), DmaFault> {
        let fault = DmaFault { pa, len, write };
        let guard;
        let state: &SimDmaState = if self.inner.held_here() {
            // SAFETY: this thread holds the map's read lock for as long as it is inside `hold`
            // (the mark is taken down before the guard goes), so no writer can change it.
            unsafe { &*self.inner.state.data_ptr() }
        } else {
            // Recursive, i.e. not queued behind a waiting writer: that writer waits for another
            // thread's `hold`, which may itself wait for a lock this thread holds (the device's,
            // on a path that reaches the device outside a turn or a register write), and
            // queueing would stall all three.
            guard = self.inner.state.read_recursive();
            &guard
        };
        #[allow(clippy::cast_possible_truncation)] // masked to below PAGE_SIZE
        let first_within = (pa & (PAGE_SIZE as u64 - 1)) as usize;
        if len <= PAGE_SIZE - first_within {
            // Within one page (nearly every access: descriptors, indexes, a page of data): one
            // look-up, as the walk below would make.
            if len > 0 {
                let entry = state.pages.get(&(pa >> PAGE_SHIFT)).ok_or(fault)?;
                visit(entry.host + first_within, 0, len);
            }
            return Ok(());
        }
        let first = pa >> PAGE_SHIFT;
        let count = first_within.checked_add(len).ok_or(fault)?.div_ceil(PAGE_SIZE);
        let host_of = |i: usize| -> Result<usize, DmaFault> {
            let page = u64::try_from(i).ok().and_then(|i| first.checked_add(i)).ok_or(fault)?;
            let at = if i == 0 { pa } else { page << PAGE_SHIFT };
            state.pages.get(&page).map(|e| e.host).ok_or(DmaFault { pa: at, len, write })
        };
        let mut hosts = [0usize; PIECE_PAGES];
        for i in 0..count {
            let host = host_of(i)?;
            if let Some(slot) = hosts.get_mut(i) {
                *slot = host;
            }
        }
        // Every page is backed, and stays so while the table's lock is held.
        let (mut run_host, mut run_off, mut run_len) = (0usize, 0usize, 0usize);
        let mut done = 0usize;
        for i in 0..count {
            let within = if i == 0 { first_within } else { 0 };
            let n = (PAGE_SIZE - within).min(len - done);
            let host = match hosts.get(i) {
                Some(h) => *h,
                None => host_of(i)?,
            } + within;
            if run_len > 0 && run_host.checked_add(run_len) == Some(host) {
                run_len += n;
            } else {
                if run_len > 0 {
                    visit(run_host, run_off, run_len);
                }
                (run_host, run_off, run_len) = (host, done, n);
            }
            done += n;
        }
        if run_len > 0 {
            visit(run_host, run_off, run_len);
        }
        Ok(())
    }
}

/// The pages [`SimDma::each_piece`] remembers between its check and its visit: a 128 KiB
/// transfer (the driver's largest) that does not start on a page boundary.
const PIECE_PAGES: usize = 33;

/// Each region is one memfd mapped twice: the CPU view handed to the port and miniport (which the
/// verifier may revoke with `mprotect`) and the device view used for DMA, which stays writable,
/// since a device may legitimately fill a buffer the CPU must not touch.
struct SimBacking {
    dma: Arc<SimDmaInner>,
    mapped_len: usize,
    device_view: usize,
    /// Set once [`RegionBacking::retire`] has unmapped the device view.
    retired: AtomicBool,
}

impl SimBacking {
    /// Removes the region's pages from the physical map and unmaps the device view, once.
    fn unmap_device_view(&self, region: &DmaRegion) {
        let mut state = self.dma.state_mut();
        for pa in region.pages() {
            state.pages.remove(&(pa >> PAGE_SHIFT));
        }
        if !self.retired.swap(true, Ordering::AcqRel) {
            // SAFETY: the device view `SimDma::alloc` created with this length; no DMA can reach
            // it any more (its pages were just removed from the table, and DMA copies run under
            // the table's lock).
            unsafe { libc::munmap(self.device_view as *mut libc::c_void, self.mapped_len) };
        }
    }
}

impl RegionBacking for SimBacking {
    fn set_cpu_access(&self, region: &DmaRegion, accessible: bool) {
        let prot = if accessible { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_NONE };
        // SAFETY: the range is exactly the mapping this backing created for the region.
        let rc = unsafe { libc::mprotect(region.va().cast(), self.mapped_len, prot) };
        debug_assert_eq!(rc, 0, "mprotect of a DMA region failed");
    }

    fn retire(&self, region: &DmaRegion) {
        self.unmap_device_view(region);
    }

    fn release(&self, region: &DmaRegion) {
        self.unmap_device_view(region);
        // SAFETY: the CPU view was created by `SimDma::alloc` with this length; the region is
        // being dropped, so nothing hands out its address any more.
        unsafe { libc::munmap(region.va().cast(), self.mapped_len) };
    }
}

/// A memfd of `mapped_len` bytes mapped twice, read-write: the CPU view and the device view.
fn map_memfd(mapped_len: usize) -> Result<(NonNull<u8>, NonNull<u8>), DmaError> {
    let size = libc::off_t::try_from(mapped_len).map_err(|_| DmaError(format!("{mapped_len} bytes is too large")))?;
    // SAFETY: the name is a NUL-terminated literal; the call creates a new file descriptor.
    let fd = unsafe { libc::memfd_create(c"scsiport-sim-dma".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(DmaError(format!("memfd_create failed: {}", std::io::Error::last_os_error())));
    }
    let map = |what: &str| -> Result<NonNull<u8>, DmaError> {
        // SAFETY: a fresh shared mapping of our own memfd; no existing memory is affected.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), mapped_len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(DmaError(format!("mmap of the {what} view ({mapped_len} bytes) failed")));
        }
        NonNull::new(p.cast::<u8>()).ok_or_else(|| DmaError("mmap returned NULL".into()))
    };
    // SAFETY: `fd` is the memfd created above.
    let sized = unsafe { libc::ftruncate(fd, size) } == 0;
    let views = if sized {
        map("CPU").and_then(|cpu| match map("device") {
            Ok(device) => Ok((cpu, device)),
            Err(e) => {
                // SAFETY: the CPU view just mapped; nothing else knows it.
                unsafe { libc::munmap(cpu.as_ptr().cast(), mapped_len) };
                Err(e)
            }
        })
    } else {
        Err(DmaError(format!("ftruncate to {mapped_len} bytes failed")))
    };
    // SAFETY: the mappings (if any) keep the memory alive; the descriptor is no longer needed.
    unsafe { libc::close(fd) };
    // A single page (Storport's scatter/gather list of each request, a small extension) is
    // written at once by whoever asked for it: populating it would cost two system calls where
    // the first touches cost a fault each.
    if let Ok((cpu, device)) = &views
        && mapped_len > PAGE_SIZE
    {
        populate(*cpu, mapped_len);
        populate(*device, mapped_len);
    }
    views
}

/// Backs a fresh view with memory now, in one system call, rather than with a page fault on the
/// first touch of each page: DMA memory is allocated at bring-up and when a pool grows, and its
/// first touches would otherwise fall in the I/O that follows: a fault on a shared page costs
/// microseconds, and the SRB blocks' first two runs alone are some 3000 pages (the CLI's first
/// 2000 reads of 64 KiB took 24.7 ms with those faults, 12.5 ms without). Best effort: a kernel
/// without `MADV_POPULATE_WRITE` (before Linux 5.14) faults the pages in as before.
fn populate(view: NonNull<u8>, len: usize) {
    // SAFETY: `len` bytes at `view` are a mapping `map_memfd` just made, read-write; populating
    // changes no contents (they are the memfd's zeros either way).
    let _ = unsafe { libc::madvise(view.as_ptr().cast(), len, libc::MADV_POPULATE_WRITE) };
}

impl SimDma {
    /// How many regions were allocated so far (span regions included), for the tests that hold
    /// the allocations per request down.
    #[cfg(test)]
    pub(crate) fn regions_made(&self) -> u64 {
        self.inner.next_id.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Enters a region's pages into the physical map, its bytes at `device` in the device view.
    fn map_pages(&self, pages: &[u64], device: usize, id: u64) {
        let mut state = self.inner.state_mut();
        for (i, pa) in pages.iter().enumerate() {
            state.pages.insert(pa >> PAGE_SHIFT, PageEntry { host: device + i * PAGE_SIZE, region: id });
        }
    }
}

/// The regions of one [`DmaSpace::alloc_span`] call: one memfd, one CPU view and one device view
/// for all of them. A region leaves the physical map when it is retired or released; both views
/// go when the last region and the span have.
struct SimSpanBacking {
    dma: Arc<SimDmaInner>,
    cpu_view: usize,
    device_view: usize,
    mapped_len: usize,
}

impl SimSpanBacking {
    fn unmap_pages(&self, region: &DmaRegion) {
        let mut state = self.dma.state_mut();
        for pa in region.pages() {
            state.pages.remove(&(pa >> PAGE_SHIFT));
        }
    }
}

impl RegionBacking for SimSpanBacking {
    fn set_cpu_access(&self, region: &DmaRegion, accessible: bool) {
        self.set_range_access(region.va() as usize, region.pages().len() * PAGE_SIZE, accessible);
    }

    fn retire(&self, region: &DmaRegion) {
        // The device view stays mapped with the span; without its pages in the map no DMA
        // reaches it.
        self.unmap_pages(region);
    }

    fn release(&self, region: &DmaRegion) {
        self.unmap_pages(region);
    }
}

impl SpanBacking for SimSpanBacking {
    fn set_range_access(&self, va: usize, len: usize, accessible: bool) {
        let prot = if accessible { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_NONE };
        debug_assert!(va >= self.cpu_view && va + len <= self.cpu_view + self.mapped_len && va.is_multiple_of(PAGE_SIZE));
        // SAFETY: whole pages inside the CPU view this backing created (checked by the callers,
        // `DmaSpan::set_cpu_access` and the regions' own ranges).
        let rc = unsafe { libc::mprotect(va as *mut libc::c_void, len, prot) };
        debug_assert_eq!(rc, 0, "mprotect of a DMA span failed");
    }
}

impl Drop for SimSpanBacking {
    fn drop(&mut self) {
        // SAFETY: both views were created by `alloc_span` with this length; every region of the
        // span is gone (each holds this backing), and so is the span.
        unsafe { libc::munmap(self.cpu_view as *mut libc::c_void, self.mapped_len) };
        // SAFETY: as above.
        unsafe { libc::munmap(self.device_view as *mut libc::c_void, self.mapped_len) };
    }
}

impl DmaSpace for SimDma {
    fn hold(&self, f: &mut dyn FnMut()) {
        /// Takes the mark down, before the read guard (declared before it) is dropped, also when
        /// `f` unwinds.
        struct Unmark(*const SimDmaInner);
        impl Drop for Unmark {
            fn drop(&mut self) {
                HELD.with(|h| h.set(self.0));
            }
        }
        if self.inner.held_here() {
            return f();
        }
        let _guard = self.inner.state.read_recursive();
        let _unmark = Unmark(HELD.with(|h| h.replace(Arc::as_ptr(&self.inner))));
        f();
    }

    fn alloc(&self, len: usize, layout: Layout) -> Result<DmaRegion, DmaError> {
        let count = len.div_ceil(PAGE_SIZE).max(1);
        let mapped_len = count * PAGE_SIZE;
        let (va, device) = map_memfd(mapped_len)?;
        let pages = self.assign_pages(count, layout);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.map_pages(&pages, device.as_ptr() as usize, id);
        let backing = Arc::new(SimBacking {
            dma: Arc::clone(&self.inner),
            mapped_len,
            device_view: device.as_ptr() as usize,
            retired: AtomicBool::new(false),
        });
        // SAFETY: `va` maps `count` pages, page aligned, released only through `backing`.
        Ok(unsafe { DmaRegion::from_raw(va, len, pages, id, backing) })
    }

    fn alloc_span(&self, lens: &[usize], layout: Layout) -> Result<(DmaSpan, Vec<DmaRegion>), DmaError> {
        let counts: Vec<usize> = lens.iter().map(|l| l.div_ceil(PAGE_SIZE).max(1)).collect();
        let mapped_len = counts.iter().sum::<usize>() * PAGE_SIZE;
        let (cpu, device) = map_memfd(mapped_len)?;
        let backing = Arc::new(SimSpanBacking {
            dma: Arc::clone(&self.inner),
            cpu_view: cpu.as_ptr() as usize,
            device_view: device.as_ptr() as usize,
            mapped_len,
        });
        let mut regions = Vec::with_capacity(lens.len());
        let mut offset = 0;
        for (len, count) in lens.iter().zip(&counts) {
            let pages = self.assign_pages(*count, layout);
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            self.map_pages(&pages, backing.device_view + offset, id);
            let va = NonNull::new(cpu.as_ptr().wrapping_add(offset)).ok_or_else(|| DmaError("NULL span address".into()))?;
            // SAFETY: `count` pages at `va` inside the CPU view, which stays mapped while
            // `backing`, held by the region, lives.
            regions.push(unsafe { DmaRegion::from_raw(va, *len, pages, id, Arc::clone(&backing) as Arc<dyn RegionBacking>) });
            offset += count * PAGE_SIZE;
        }
        // SAFETY: the CPU view, `mapped_len` bytes, page aligned, mapped while `backing` lives.
        let span = unsafe { DmaSpan::from_raw(cpu, mapped_len, backing) };
        Ok((span, regions))
    }
}

impl GuestMemory for SimDma {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        self.each_piece(pa, buf.len(), false, |host, off, n| {
            if let Some(dst) = buf.get_mut(off..off + n) {
                // SAFETY: `host..host+n` lies in a live mapping (checked under the table lock,
                // and regions are released only after removal from the table). Device reads of
                // memory the CPU side is also using are DMA by nature; volatile-free copies are
                // what a bus master does.
                unsafe { std::ptr::copy_nonoverlapping(host as *const u8, dst.as_mut_ptr(), n) };
            }
        })
    }

    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaFault> {
        self.each_piece(pa, data.len(), true, |host, off, n| {
            if let Some(src) = data.get(off..off + n) {
                // SAFETY: as in `read`.
                unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), host as *mut u8, n) };
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of the `len` bytes' pages at `va` are in memory.
    fn resident_pages(va: *mut u8, len: usize) -> usize {
        let mut vec = vec![0u8; len.div_ceil(PAGE_SIZE)];
        // SAFETY: `va..va + len` is a live mapping of ours; `vec` has one byte per page.
        assert_eq!(unsafe { libc::mincore(va.cast(), len, vec.as_mut_ptr()) }, 0);
        vec.iter().filter(|b| **b & 1 != 0).count()
    }

    #[test]
    fn dma_memory_is_in_memory_before_its_first_touch() {
        // The first touch of a page of a shared mapping is a page fault, which would fall in the
        // I/O that first uses the memory instead of in the allocation.
        let dma = SimDma::default();
        let r = dma.alloc(8 * PAGE_SIZE, Layout::Scattered).unwrap();
        assert_eq!(resident_pages(r.va(), r.len()), 8);
        let (span, _regions) = dma.alloc_span(&[PAGE_SIZE, 3 * PAGE_SIZE, 100], Layout::Scattered).unwrap();
        assert_eq!(resident_pages(span.va(), span.len()), 5);
    }

    #[test]
    fn contiguous_region_reports_one_run() {
        let dma = SimDma::default();
        let r = dma.alloc(5 * PAGE_SIZE, Layout::Contiguous).unwrap();
        assert_eq!(r.phys(0).unwrap().1, 5 * PAGE_SIZE);
        assert_eq!(r.phys(100).unwrap(), (r.pages()[0] + 100, 5 * PAGE_SIZE - 100));
        assert!(r.pages()[0] >= 0x1_0000_0000);
    }

    #[test]
    fn scattered_region_breaks_runs_and_round_trips() {
        let dma = SimDma::default();
        let r = dma.alloc(16 * PAGE_SIZE, Layout::Scattered).unwrap();
        let breaks = r.pages().windows(2).filter(|w| w[1] != w[0] + PAGE_SIZE as u64).count();
        assert!(breaks > 0, "scattered pages should not all be contiguous");
        // Write through the device view, read through the CPU view.
        let data: Vec<u8> = (0..3 * PAGE_SIZE).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let mut off = 100;
        let mut src = &data[..];
        while !src.is_empty() {
            let (pa, run) = r.phys(off).unwrap();
            let n = run.min(src.len());
            dma.write(pa, &src[..n]).unwrap();
            off += n;
            src = &src[n..];
        }
        // SAFETY: no DMA is in progress and the region is accessible.
        let cpu = unsafe { r.as_slice() };
        assert_eq!(&cpu[100..100 + data.len()], &data[..]);
    }

    #[test]
    fn a_transfer_is_one_piece_per_run_of_host_contiguous_pages_and_a_fault_moves_nothing() {
        let dma = SimDma::default();
        // 40 pages: past the pages each_piece remembers between its check and its visit.
        let r = dma.alloc(40 * PAGE_SIZE, Layout::Contiguous).unwrap();
        let pa = r.pages()[0];
        let mut pieces = Vec::new();
        dma.each_piece(pa + 100, 16 * PAGE_SIZE, true, |host, off, n| pieces.push((host, off, n))).unwrap();
        assert_eq!(pieces.len(), 1, "one region's contiguous pages are one copy: {pieces:?}");
        assert_eq!((pieces[0].1, pieces[0].2), (0, 16 * PAGE_SIZE));
        pieces.clear();
        dma.each_piece(pa + 100, 39 * PAGE_SIZE, true, |host, off, n| pieces.push((host, off, n))).unwrap();
        assert_eq!(pieces.len(), 1, "{pieces:?}");
        // Every byte lands where it should, through the device view, past the remembered pages.
        let data: Vec<u8> = (0..39 * PAGE_SIZE).map(|i| u8::try_from(i % 251).unwrap()).collect();
        dma.write(pa + 100, &data).unwrap();
        let mut back = vec![0u8; data.len()];
        dma.read(pa + 100, &mut back).unwrap();
        assert_eq!(back, data);
        // SAFETY: no DMA is in progress and the region is accessible.
        assert_eq!(&unsafe { r.as_slice() }[100..100 + data.len()], &data[..]);
        // Running off the region's end into its neighbour's guard page: a fault, and no byte of
        // the pages before it written.
        // SAFETY: as above.
        let before: Vec<u8> = unsafe { r.as_slice() }.to_vec();
        let end = pa + 40 * PAGE_SIZE as u64;
        let err = dma.write(end - 2 * PAGE_SIZE as u64, &vec![0xAA; 3 * PAGE_SIZE]).unwrap_err();
        assert_eq!(err.pa, end);
        // SAFETY: as above.
        assert_eq!(unsafe { r.as_slice() }, &before[..]);
    }

    #[test]
    fn guarded_region_still_takes_dma() {
        let dma = SimDma::default();
        let r = dma.alloc(PAGE_SIZE, Layout::Scattered).unwrap();
        r.set_cpu_access(false);
        dma.write(r.pages()[0] + 8, &[1, 2, 3]).unwrap();
        r.set_cpu_access(true);
        // SAFETY: no DMA is in progress and access was restored.
        let cpu = unsafe { r.as_slice() };
        assert_eq!(&cpu[8..11], &[1, 2, 3]);
    }

    #[test]
    fn inside_hold_dma_works_and_the_map_stays_still_until_it_ends() {
        let dma = SimDma::default();
        let r = dma.alloc(PAGE_SIZE, Layout::Scattered).unwrap();
        let pa = r.pages()[0];
        let mut other = Some(dma.alloc(PAGE_SIZE, Layout::Scattered).unwrap());
        let freed = Arc::new(AtomicBool::new(false));
        let mut thread = None;
        dma.hold(&mut || {
            dma.write(pa + 8, &[1, 2, 3]).unwrap();
            // Nested, as a kick inside a device turn would be.
            dma.hold(&mut || dma.write(pa + 11, &[4]).unwrap());
            let (region, done) = (other.take(), Arc::clone(&freed));
            let (tx, rx) = std::sync::mpsc::channel();
            thread = Some(std::thread::spawn(move || {
                tx.send(()).unwrap();
                drop(region);
                done.store(true, Ordering::SeqCst);
            }));
            rx.recv().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!freed.load(Ordering::SeqCst), "a region left the map during a hold");
            let mut b = [0u8; 4];
            dma.read(pa + 8, &mut b).unwrap();
            assert_eq!(b, [1, 2, 3, 4]);
        });
        thread.unwrap().join().unwrap();
        assert!(freed.load(Ordering::SeqCst));
        assert_eq!(dma.live_pages(), 1);
    }

    #[test]
    fn a_region_allocated_inside_hold_of_its_space_is_a_reported_bug_not_a_deadlock() {
        let dma = SimDma::default();
        let other = SimDma::default();
        let mut from_other = None;
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            dma.hold(&mut || {
                // Another space's map is free to change.
                from_other = Some(other.alloc(PAGE_SIZE, Layout::Scattered).unwrap());
                let _ = dma.alloc(PAGE_SIZE, Layout::Scattered);
            });
        }));
        let payload = caught.unwrap_err();
        let text = payload.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| payload.downcast_ref::<String>().cloned());
        assert!(text.is_some_and(|t| t.contains("inside DmaSpace::hold")));
        assert!(from_other.is_some());
        // The mark went with the unwinding: the space takes changes and DMA again.
        let r = dma.alloc(PAGE_SIZE, Layout::Scattered).unwrap();
        dma.write(r.pages()[0], &[9]).unwrap();
    }

    #[test]
    fn a_view_shares_its_parent_s_page_and_frees_nothing() {
        let dma = SimDma::default();
        let (span, regions) = dma.alloc_span(&[PAGE_SIZE, PAGE_SIZE], Layout::Scattered).unwrap();
        let parent = &regions[0];
        let view = parent.view(2048, 18).unwrap();
        assert_eq!(view.va() as usize, parent.va() as usize + 2048);
        assert_eq!((view.len(), view.id(), view.pages()), (18, parent.id(), &parent.pages()[..1]));
        // Its physical addresses are its bytes' in the parent's page, and end with it.
        assert_eq!(view.phys(0), Some((parent.pages()[0] + 2048, 18)));
        assert_eq!(view.phys(17), Some((parent.pages()[0] + 2065, 1)));
        assert_eq!(view.phys(18), None);
        assert!(view.contains(parent.va() as usize + 2050) && !view.contains(parent.va() as usize + 2066));
        // What the device writes through the view's address, the CPU reads through it.
        dma.write(view.phys(4).unwrap().0, &[7, 8]).unwrap();
        // SAFETY: no DMA in progress; the parent's page is accessible.
        assert_eq!(unsafe { &view.as_slice()[4..6] }, &[7, 8]);
        // Past the parent, or straddling its end: no view.
        assert!(parent.view(PAGE_SIZE - 4, 8).is_none());
        assert!(parent.view(PAGE_SIZE, 1).is_none());
        // Guarding or dropping the view leaves the parent's page mapped and in the device's reach.
        view.set_cpu_access(false);
        drop(view);
        dma.write(parent.pages()[0] + 2048, &[1]).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { parent.as_slice()[2048] }, 1);
        assert_eq!(dma.live_pages(), 2);
        drop(regions);
        drop(span);
        assert_eq!(dma.live_pages(), 0);
    }

    #[test]
    fn dma_outside_regions_faults_and_freed_regions_fault() {
        let dma = SimDma::default();
        let r = dma.alloc(PAGE_SIZE, Layout::Contiguous).unwrap();
        let pa = r.pages()[0];
        let mut b = [0u8; 8];
        assert!(dma.read(pa + PAGE_SIZE as u64 - 4, &mut b).is_err(), "overrun into the guard page");
        assert!(dma.read(pa - 8, &mut b).is_err());
        dma.read(pa, &mut b).unwrap();
        drop(r);
        assert!(dma.read(pa, &mut b).is_err());
        assert_eq!(dma.live_pages(), 0);
    }

    #[test]
    fn a_span_lays_its_regions_out_in_one_mapping_and_guards_them_with_one_call() {
        let dma = SimDma::default();
        let (span, regions) = dma.alloc_span(&[PAGE_SIZE, 100, 2 * PAGE_SIZE + 1], Layout::Scattered).unwrap();
        assert_eq!(span.len(), 5 * PAGE_SIZE);
        let offsets: Vec<usize> = regions.iter().map(|r| r.va() as usize - span.va() as usize).collect();
        assert_eq!(offsets, [0, PAGE_SIZE, 2 * PAGE_SIZE]);
        assert_eq!(regions.iter().map(DmaRegion::len).collect::<Vec<_>>(), [PAGE_SIZE, 100, 2 * PAGE_SIZE + 1]);
        assert_eq!(dma.live_pages(), 5);
        // Guarded as a whole, each region still takes DMA through the device view.
        span.set_cpu_access(0, span.len(), false);
        let last = &regions[2];
        dma.write(last.pages()[2], &[9]).unwrap();
        assert_eq!(dma.region_at(last.pages()[2]), Some(last.id()));
        span.set_cpu_access(0, span.len(), true);
        // SAFETY: no DMA is in progress and the span is accessible again.
        assert_eq!(unsafe { last.as_slice() }[2 * PAGE_SIZE], 9);
        // A region goes on its own; the others stay reachable.
        let pa = regions[1].pages()[0];
        let mut regions = regions;
        drop(regions.remove(1));
        assert!(dma.write(pa, &[1]).is_err());
        assert_eq!(dma.live_pages(), 4);
        drop(span);
        dma.write(regions[0].pages()[0], &[1]).unwrap();
        drop(regions);
        assert_eq!(dma.live_pages(), 0);
    }

    #[test]
    fn the_page_map_forgets_exactly_the_pages_of_freed_and_retired_regions() {
        // Many regions in the map at once, as at queue depth 32 and more, then every third one
        // freed and every third one retired: each page of those faults, naming the first page
        // not backed, and every other page still takes DMA to its own bytes.
        let dma = SimDma::default();
        let mut regions: Vec<Option<DmaRegion>> =
            (0..300).map(|i| Some(dma.alloc((1 + i % 3) * PAGE_SIZE, Layout::Scattered).unwrap())).collect();
        let pages_of = |r: &DmaRegion| r.pages().to_vec();
        let all: Vec<Vec<u64>> = regions.iter().map(|r| pages_of(r.as_ref().unwrap())).collect();
        for (i, r) in regions.iter_mut().enumerate() {
            match i % 3 {
                0 => drop(r.take()),
                1 => r.as_ref().unwrap().retire(),
                _ => {}
            }
        }
        for (i, pages) in all.iter().enumerate() {
            for (k, &pa) in pages.iter().enumerate() {
                let byte = [u8::try_from((i + k) % 251).unwrap()];
                if i % 3 == 2 {
                    dma.write(pa + 7, &byte).unwrap();
                    let mut back = [0u8];
                    dma.read(pa + 7, &mut back).unwrap();
                    assert_eq!(back, byte);
                    assert_eq!(dma.region_at(pa), regions[i].as_ref().map(DmaRegion::id));
                } else {
                    assert_eq!(dma.write(pa + 7, &byte), Err(DmaFault { pa: pa + 7, len: 1, write: true }));
                    assert_eq!(dma.region_at(pa), None);
                }
            }
        }
        // An access that starts in a live page and runs into the guard page after it faults
        // at the guard page's first byte and moves nothing.
        let live = regions[2].as_ref().unwrap();
        let last = *live.pages().last().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            dma.read(last + PAGE_SIZE as u64 - 8, &mut buf),
            Err(DmaFault { pa: last + PAGE_SIZE as u64, len: 16, write: false })
        );
        assert_eq!(dma.write(last + PAGE_SIZE as u64 - 8, &[0xAA; 16]).map_err(|f| f.pa), Err(last + PAGE_SIZE as u64));
        // SAFETY: no DMA is in progress and the region is accessible.
        let cpu = unsafe { live.as_slice() };
        assert!(cpu[live.len() - 8..].iter().all(|&b| b == 0), "a faulting write moved no byte");
        drop(regions);
        assert_eq!(dma.live_pages(), 0);
    }

    #[test]
    fn a_retired_region_keeps_its_cpu_view_and_takes_no_dma() {
        let dma = SimDma::default();
        let r = dma.alloc(2 * PAGE_SIZE, Layout::Scattered).unwrap();
        let pa = r.pages()[1];
        dma.write(pa, &[7; 4]).unwrap();
        r.retire();
        assert_eq!(dma.live_pages(), 0, "its pages left the physical map");
        assert_eq!(dma.write(pa, &[1]), Err(DmaFault { pa, len: 1, write: true }));
        assert_eq!(dma.region_at(pa), None);
        // SAFETY: no DMA can reach the region; the CPU view is still mapped and accessible.
        let cpu = unsafe { r.as_slice() };
        assert_eq!(&cpu[PAGE_SIZE..PAGE_SIZE + 4], &[7; 4]);
        r.retire();
        drop(r);
        // A later region gets other physical pages; nothing of the retired one is reused.
        let again = dma.alloc(PAGE_SIZE, Layout::Scattered).unwrap();
        assert!(again.pages()[0] > pa);
    }
}
