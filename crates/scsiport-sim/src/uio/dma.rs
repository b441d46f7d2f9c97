//! DMA memory with real (guest-)physical addresses, for a device reached through uio.
//!
//! There is no IOMMU in the test guest, so the physical address of a page is its DMA address
//! (qemu-pvscsi-feasibility.md, "No IOMMU"): the device reached the ring-state page at the PFN
//! that `/proc/self/pagemap` gave. The same doc's caveat applies: a wrong address does not
//! fault, it reads or corrupts other guest memory. [`UioDma::verify_addresses`] re-reads
//! pagemap so a run can prove at its end that no page moved underneath the device.
//!
//! Two kinds of memory:
//! * [`Layout::Scattered`] (and contiguous requests of one page): ordinary 4 KiB anonymous
//!   pages, one mapping per region, touched, `mlock`ed and marked `MADV_NOHUGEPAGE`. Pages are
//!   wherever the kernel put them, so the driver's scatter/gather path meets real, unplanned
//!   page placement. These regions can be guarded with `mprotect` (the verifier's poison).
//! * [`Layout::Contiguous`] over one page (the uncached extension, about 100 KiB): carved out
//!   of hugetlb pages (`MAP_HUGETLB`, 2 MiB on x86-64), which are physically contiguous by
//!   construction. Each huge page's contiguity is still checked entry by entry in pagemap, and
//!   an allocation fails loudly if it does not hold. The guest's `/init` must reserve huge
//!   pages (`echo N > /proc/sys/vm/nr_hugepages`); without them allocation fails with a message
//!   that says so. A contiguous region is limited to one huge page.
//!
//! Address stability: `mlock` prevents swap but not migration. Compaction may migrate mlocked
//! pages unless `vm.compact_unevictable_allowed` is 0, so [`UioDma::new`] insists on that
//! (the test guest's `/init` sets it), and `MADV_NOHUGEPAGE` keeps khugepaged from collapsing
//! 4 KiB pages into a transparent huge page. Hugetlb pages are never compacted or swapped.
//! NUMA balancing, KSM and memory hot-unplug, the other migration sources, are absent in a
//! one-node guest with no `MADV_MERGEABLE` memory.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::mem::{DmaError, DmaFault, DmaRegion, DmaSpace, DmaSpan, GuestMemory, Layout, PAGE_SIZE, RegionBacking, SpanBacking};

use super::parse;

const PAGE: u64 = PAGE_SIZE as u64;

/// The sysctl that lets compaction migrate mlocked pages (Documentation/admin-guide/sysctl/vm.rst).
pub const COMPACT_UNEVICTABLE: &str = "/proc/sys/vm/compact_unevictable_allowed";

fn err(msg: impl Into<String>) -> DmaError {
    DmaError(msg.into())
}

fn os_err(what: &str) -> DmaError {
    DmaError(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// Reads the physical address of `count` pages starting at the page-aligned `va`.
fn physical_pages(pagemap: &File, va: usize, count: usize) -> Result<Vec<u64>, DmaError> {
    let mut bytes = vec![0u8; count * 8];
    let offset = (va / PAGE_SIZE) as u64 * 8;
    pagemap
        .read_exact_at(&mut bytes, offset)
        .map_err(|e| err(format!("reading /proc/self/pagemap at {offset:#x}: {e}")))?;
    let pfns = parse::pfns_from_pagemap(&bytes).map_err(err)?;
    Ok(pfns.into_iter().map(|pfn| pfn * PAGE).collect())
}

/// One mapping made by this module: the bytes to unmap when the last user is gone.
struct Mapping {
    va: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of private anonymous memory with extra `flags`, writes to every page so
    /// that it is backed, and locks it.
    fn new_locked(len: usize, flags: libc::c_int, touch_stride: usize) -> Result<Self, DmaError> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err(&format!("mmap of {len} bytes")));
        }
        let va = NonNull::new(p.cast::<u8>()).ok_or_else(|| err("mmap returned NULL"))?;
        let map = Self { va, len };
        if flags & libc::MAP_HUGETLB == 0 {
            // SAFETY: advice on the mapping just created; it changes no contents.
            if unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) } != 0 {
                return Err(os_err("madvise(MADV_NOHUGEPAGE)"));
            }
        }
        // Write, not read: a read fault on private anonymous memory maps the shared zero page,
        // whose PFN is the same for every page and useless for DMA.
        for off in (0..len).step_by(touch_stride) {
            let byte = map.va.as_ptr().wrapping_add(off);
            // SAFETY: `off < len`, so `byte` is inside the writable mapping created above.
            unsafe { byte.write_volatile(0) };
        }
        // SAFETY: locks the mapping created above.
        if unsafe { libc::mlock(p, len) } != 0 {
            return Err(os_err("mlock (needs root or a large RLIMIT_MEMLOCK)"));
        }
        Ok(map)
    }

    fn addr(&self) -> usize {
        self.va.as_ptr() as usize
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `new_locked` with this length, and every region
        // carved from it is gone (regions hold an `Arc` on whatever owns the mapping).
        unsafe { libc::munmap(self.va.as_ptr().cast(), self.len) };
    }
}

// SAFETY: a mapping is an address range owned by this value; nothing in it is thread-bound.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out the address.
unsafe impl Sync for Mapping {}

/// A huge page and which of its 4 KiB pages are handed out.
struct HugePage {
    map: Mapping,
    pa: u64,
    used: Vec<bool>,
}

impl HugePage {
    /// First run of `count` free 4 KiB pages.
    fn find_free(&self, count: usize) -> Option<usize> {
        let mut run = 0;
        for (i, used) in self.used.iter().enumerate() {
            run = if *used { 0 } else { run + 1 };
            if run == count {
                return Some(i + 1 - count);
            }
        }
        None
    }
}

#[derive(Clone, Copy)]
struct PageEntry {
    host: usize,
    region: u64,
}

struct Inner {
    pagemap: File,
    hugepage_size: usize,
    huge: Mutex<Vec<HugePage>>,
    /// Physical page number → host address of the page and owning region.
    pages: RwLock<BTreeMap<u64, PageEntry>>,
    next_id: AtomicU64,
}

impl Inner {
    fn register(&self, pages: &[u64], va: usize, id: u64) -> Result<(), DmaError> {
        let mut table = self.pages.write().map_err(|_| err("DMA page table poisoned"))?;
        for (i, pa) in pages.iter().enumerate() {
            let entry = PageEntry { host: va + i * PAGE_SIZE, region: id };
            if let Some(old) = table.insert(pa / PAGE, entry) {
                // Two live virtual pages on one physical page: pagemap lied or a page moved.
                table.insert(pa / PAGE, old);
                return Err(err(format!("physical page {pa:#x} is already in region {}", old.region)));
            }
        }
        Ok(())
    }

    fn unregister(&self, pages: &[u64]) {
        let mut table = self.pages.write().unwrap_or_else(PoisonError::into_inner);
        for pa in pages {
            table.remove(&(pa / PAGE));
        }
    }

    fn check(&self, pa: u64, len: usize, write: bool) -> Result<Vec<(usize, usize, usize)>, DmaFault> {
        let fault = DmaFault { pa, len, write };
        let table = self.pages.read().map_err(|_| fault)?;
        let mut pieces = Vec::new();
        let mut done = 0usize;
        while done < len {
            let cur = pa.checked_add(done as u64).ok_or(fault)?;
            let within = (cur % PAGE) as usize;
            let entry = table.get(&(cur / PAGE)).ok_or(DmaFault { pa: cur, len, write })?;
            let n = (PAGE_SIZE - within).min(len - done);
            pieces.push((entry.host + within, done, n));
            done += n;
        }
        Ok(pieces)
    }
}

/// A region of 4 KiB pages: its own mapping, guardable with `mprotect`.
struct SmallBacking {
    dma: Arc<Inner>,
    map: Mapping,
}

impl RegionBacking for SmallBacking {
    fn set_cpu_access(&self, _region: &DmaRegion, accessible: bool) {
        let prot = if accessible { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_NONE };
        // SAFETY: the range is exactly this region's own mapping. Changing protection of
        // mlocked anonymous pages leaves them resident and in place, so DMA is unaffected.
        let rc = unsafe { libc::mprotect(self.map.va.as_ptr().cast(), self.map.len, prot) };
        debug_assert_eq!(rc, 0, "mprotect of a DMA region failed");
    }

    fn release(&self, region: &DmaRegion) {
        self.dma.unregister(region.pages());
        // The mapping itself goes when this backing is dropped with the region's last Arc.
    }
}

/// The regions of one [`DmaSpace::alloc_span`] call: one locked mapping of 4 KiB pages for all of
/// them, unmapped when the last region and the span are gone.
struct SpanSmallBacking {
    dma: Arc<Inner>,
    map: Mapping,
}

impl RegionBacking for SpanSmallBacking {
    fn set_cpu_access(&self, region: &DmaRegion, accessible: bool) {
        self.set_range_access(region.va() as usize, region.pages().len() * PAGE_SIZE, accessible);
    }

    fn retire(&self, region: &DmaRegion) {
        self.dma.unregister(region.pages());
    }

    fn release(&self, region: &DmaRegion) {
        self.dma.unregister(region.pages());
    }
}

impl SpanBacking for SpanSmallBacking {
    fn set_range_access(&self, va: usize, len: usize, accessible: bool) {
        let prot = if accessible { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_NONE };
        debug_assert!(va >= self.map.addr() && va + len <= self.map.addr() + self.map.len && va.is_multiple_of(PAGE_SIZE));
        // SAFETY: whole pages inside this backing's own mapping. Changing the protection of
        // mlocked anonymous pages leaves them resident and in place, so DMA is unaffected.
        let rc = unsafe { libc::mprotect(va as *mut libc::c_void, len, prot) };
        debug_assert_eq!(rc, 0, "mprotect of a DMA span failed");
    }
}

/// A region carved out of a huge page. `set_cpu_access` is a no-op: `mprotect` of part of a
/// hugetlb mapping fails with EINVAL (it must cover whole huge pages), and such regions are
/// common buffers that the verifier does not poison anyway.
struct HugeBacking {
    dma: Arc<Inner>,
    huge_index: usize,
    first: usize,
    count: usize,
}

impl RegionBacking for HugeBacking {
    fn set_cpu_access(&self, _region: &DmaRegion, _accessible: bool) {}

    fn release(&self, region: &DmaRegion) {
        self.dma.unregister(region.pages());
        self.release_pages();
    }
}

/// The hardware backend's DMA space: locked host memory with physical addresses from
/// `/proc/self/pagemap`. See the module documentation for how addresses stay valid.
#[derive(Clone)]
pub struct UioDma {
    inner: Arc<Inner>,
}

impl fmt::Debug for UioDma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UioDma")
            .field("hugepage_size", &self.inner.hugepage_size)
            .field("live_pages", &self.live_pages())
            .finish_non_exhaustive()
    }
}

impl UioDma {
    /// Opens `/proc/self/pagemap` and checks that this process can see physical addresses and
    /// that mlocked pages cannot be migrated by compaction.
    ///
    /// # Errors
    /// When pagemap hides PFNs (not root), or `vm.compact_unevictable_allowed` is not 0.
    pub fn new() -> Result<Self, DmaError> {
        let setting = std::fs::read_to_string(COMPACT_UNEVICTABLE)
            .map_err(|e| err(format!("reading {COMPACT_UNEVICTABLE}: {e}")))?;
        if setting.trim() != "0" {
            return Err(err(format!(
                "{COMPACT_UNEVICTABLE} is {}: compaction could move locked DMA pages under the device; \
                 write 0 to it first",
                setting.trim()
            )));
        }
        Self::without_stability_check()
    }

    /// As [`Self::new`] without the compaction check: for tests on a host whose sysctls we must
    /// not change, where no device ever sees the addresses.
    ///
    /// # Errors
    /// When pagemap cannot be opened or hides PFNs.
    pub fn without_stability_check() -> Result<Self, DmaError> {
        let pagemap = File::open("/proc/self/pagemap").map_err(|e| err(format!("opening /proc/self/pagemap: {e}")))?;
        let hugepage_size = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| parse::hugepage_size_from_meminfo(&m))
            .filter(|s| s.is_power_of_two() && *s >= PAGE_SIZE)
            .unwrap_or(2 << 20);
        let dma = Self {
            inner: Arc::new(Inner {
                pagemap,
                hugepage_size,
                huge: Mutex::new(Vec::new()),
                pages: RwLock::new(BTreeMap::new()),
                next_id: AtomicU64::new(1),
            }),
        };
        // Fail now, not at the first allocation inside HwScsiFindAdapter, if PFNs are hidden.
        drop(dma.alloc(PAGE_SIZE, Layout::Scattered)?);
        Ok(dma)
    }

    /// The huge page size used for contiguous regions.
    #[must_use]
    pub fn hugepage_size(&self) -> usize {
        self.inner.hugepage_size
    }

    /// Number of live 4 KiB pages handed out (for leak checks).
    #[must_use]
    pub fn live_pages(&self) -> usize {
        self.inner.pages.read().map_or(0, |t| t.len())
    }

    /// Re-reads pagemap for every live page and compares it with the address handed out.
    /// Returns the number of pages checked.
    ///
    /// # Errors
    /// The first page whose physical address changed (or can no longer be read).
    pub fn verify_addresses(&self) -> Result<usize, DmaError> {
        let table: Vec<(u64, PageEntry)> = {
            let t = self.inner.pages.read().map_err(|_| err("DMA page table poisoned"))?;
            t.iter().map(|(ppn, e)| (*ppn, *e)).collect()
        };
        for (ppn, entry) in &table {
            let now = physical_pages(&self.inner.pagemap, entry.host, 1)?;
            if now.first() != Some(&(ppn * PAGE)) {
                return Err(err(format!(
                    "DMA page of region {} at VA {:#x} moved from PA {:#x} to {:?}",
                    entry.region,
                    entry.host,
                    ppn * PAGE,
                    now.first()
                )));
            }
        }
        Ok(table.len())
    }

    fn alloc_small(&self, count: usize, len: usize, layout: Layout) -> Result<DmaRegion, DmaError> {
        let map = Mapping::new_locked(count * PAGE_SIZE, 0, PAGE_SIZE)?;
        let pages = physical_pages(&self.inner.pagemap, map.addr(), count)?;
        if layout == Layout::Contiguous && pages.windows(2).any(|w| w[1] != w[0] + PAGE) {
            return Err(err(format!("contiguous region of {count} pages is not contiguous: {pages:#x?}")));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.register(&pages, map.addr(), id)?;
        let va = map.va;
        let backing = Arc::new(SmallBacking { dma: Arc::clone(&self.inner), map });
        // SAFETY: `va` maps `count` locked pages, page aligned, unmapped only when `backing`
        // (held by the region) is dropped, after `release`.
        Ok(unsafe { DmaRegion::from_raw(va, len, pages.into_boxed_slice(), id, backing) })
    }

    /// Maps, locks and checks one more huge page.
    fn grow_huge(&self) -> Result<HugePage, DmaError> {
        let size = self.inner.hugepage_size;
        let map = Mapping::new_locked(size, libc::MAP_HUGETLB, size).map_err(|e| {
            err(format!(
                "{e}; contiguous DMA memory comes from huge pages: reserve some with \
                 `echo 8 > /proc/sys/vm/nr_hugepages` (qemu-pvscsi-feasibility.md)"
            ))
        })?;
        let pages = physical_pages(&self.inner.pagemap, map.addr(), size / PAGE_SIZE)?;
        let pa = *pages.first().ok_or_else(|| err("empty huge page"))?;
        if pa % size as u64 != 0 || pages.iter().enumerate().any(|(i, p)| *p != pa + i as u64 * PAGE) {
            return Err(err(format!("huge page at PA {pa:#x} is not physically contiguous per pagemap")));
        }
        Ok(HugePage { map, pa, used: vec![false; size / PAGE_SIZE] })
    }

    fn alloc_huge(&self, count: usize, len: usize) -> Result<DmaRegion, DmaError> {
        let per_huge = self.inner.hugepage_size / PAGE_SIZE;
        if count > per_huge {
            return Err(err(format!(
                "contiguous region of {len} bytes is larger than one {} byte huge page",
                self.inner.hugepage_size
            )));
        }
        let mut huge = self.inner.huge.lock().map_err(|_| err("huge page pool poisoned"))?;
        let found = huge.iter().enumerate().find_map(|(i, hp)| Some((i, hp.find_free(count)?)));
        let (index, first) = if let Some(f) = found {
            f
        } else {
            huge.push(self.grow_huge()?);
            (huge.len() - 1, 0)
        };
        let hp = huge.get_mut(index).ok_or_else(|| err("huge page pool index"))?;
        for used in hp.used.iter_mut().skip(first).take(count) {
            *used = true;
        }
        let va_addr = hp.map.addr() + first * PAGE_SIZE;
        let pages: Vec<u64> = (0..count).map(|i| hp.pa + ((first + i) * PAGE_SIZE) as u64).collect();
        // SAFETY: the pages `first..first + count` of the huge page were free and are now
        // marked used, so nothing else refers to them; they lie inside the mapping.
        unsafe { std::ptr::write_bytes(va_addr as *mut u8, 0, count * PAGE_SIZE) };
        drop(huge);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let backing = Arc::new(HugeBacking { dma: Arc::clone(&self.inner), huge_index: index, first, count });
        if let Err(e) = self.inner.register(&pages, va_addr, id) {
            backing.release_pages();
            return Err(e);
        }
        let va = NonNull::new(va_addr as *mut u8).ok_or_else(|| err("NULL huge page address"))?;
        // SAFETY: `count` pages at `va` inside a locked huge page that stays mapped as long as
        // `Inner` lives, which `backing` keeps alive; they are returned to the pool in `release`.
        Ok(unsafe { DmaRegion::from_raw(va, len, pages.into_boxed_slice(), id, backing) })
    }
}

impl HugeBacking {
    fn release_pages(&self) {
        let mut huge = self.dma.huge.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hp) = huge.get_mut(self.huge_index) {
            for used in hp.used.iter_mut().skip(self.first).take(self.count) {
                *used = false;
            }
        }
    }
}

impl DmaSpace for UioDma {
    fn alloc(&self, len: usize, layout: Layout) -> Result<DmaRegion, DmaError> {
        let count = len.div_ceil(PAGE_SIZE).max(1);
        if layout == Layout::Contiguous && count > 1 {
            self.alloc_huge(count, len)
        } else {
            self.alloc_small(count, len, layout)
        }
    }

    /// Scattered regions only: their pages are wherever the kernel put them, as `alloc`'s are.
    fn alloc_span(&self, lens: &[usize], layout: Layout) -> Result<(DmaSpan, Vec<DmaRegion>), DmaError> {
        let counts: Vec<usize> = lens.iter().map(|l| l.div_ceil(PAGE_SIZE).max(1)).collect();
        if layout == Layout::Contiguous && counts.iter().any(|c| *c > 1) {
            return Err(err("a span holds no contiguous region of more than one page"));
        }
        let total: usize = counts.iter().sum();
        let map = Mapping::new_locked(total * PAGE_SIZE, 0, PAGE_SIZE)?;
        let pages = physical_pages(&self.inner.pagemap, map.addr(), total)?;
        let (base, va) = (map.addr(), map.va);
        let backing = Arc::new(SpanSmallBacking { dma: Arc::clone(&self.inner), map });
        let mut regions = Vec::with_capacity(lens.len());
        let mut first = 0;
        for (len, count) in lens.iter().zip(&counts) {
            let own: Box<[u64]> = pages.get(first..first + count).ok_or_else(|| err("span page index"))?.into();
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            self.inner.register(&own, base + first * PAGE_SIZE, id)?;
            let at = NonNull::new((base + first * PAGE_SIZE) as *mut u8).ok_or_else(|| err("NULL span address"))?;
            // SAFETY: `count` locked pages at `at` inside the mapping `backing` owns and the
            // region keeps alive.
            regions.push(unsafe { DmaRegion::from_raw(at, *len, own, id, Arc::clone(&backing) as Arc<dyn RegionBacking>) });
            first += count;
        }
        // SAFETY: the whole mapping, page aligned, mapped while `backing` lives.
        let span = unsafe { DmaSpan::from_raw(va, total * PAGE_SIZE, backing) };
        Ok((span, regions))
    }
}

/// The CPU's view by physical address, for the port side and for tests: the device itself
/// does its own DMA and never calls this.
impl GuestMemory for UioDma {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let len = buf.len();
        for (host, off, n) in self.inner.check(pa, len, false)? {
            let dst = buf.get_mut(off..off + n).ok_or(DmaFault { pa, len, write: false })?;
            // SAFETY: `host..host + n` lies in a live region's mapping (checked under the
            // table lock; regions leave the table before their memory is unmapped).
            unsafe { std::ptr::copy_nonoverlapping(host as *const u8, dst.as_mut_ptr(), n) };
        }
        Ok(())
    }

    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaFault> {
        for (host, off, n) in self.inner.check(pa, data.len(), true)? {
            let src = data.get(off..off + n).ok_or(DmaFault { pa, len: data.len(), write: true })?;
            // SAFETY: as in `read`.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), host as *mut u8, n) };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These run on a Linux host without the device. With root, pagemap gives real PFNs and
    /// everything is checked; without it, `without_stability_check` must say why it fails.
    fn dma() -> Option<UioDma> {
        match UioDma::without_stability_check() {
            Ok(d) => Some(d),
            Err(e) => {
                assert!(e.0.contains("CAP_SYS_ADMIN") || e.0.contains("mlock"), "unexpected error: {e}");
                eprintln!("uio dma tests: not privileged, checked the error only: {e}");
                None
            }
        }
    }

    #[test]
    fn scattered_regions_have_locked_distinct_pages() {
        let Some(dma) = dma() else { return };
        let a = dma.alloc(3 * PAGE_SIZE + 5, Layout::Scattered).unwrap();
        let b = dma.alloc(100, Layout::Scattered).unwrap();
        assert_eq!(a.pages().len(), 4);
        assert_eq!(b.pages().len(), 1);
        let mut all: Vec<u64> = a.pages().iter().chain(b.pages()).copied().collect();
        assert!(all.iter().all(|p| p % PAGE == 0 && *p != 0));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 5, "distinct physical pages");
        // SAFETY: no device is writing; the region is accessible.
        assert!(unsafe { a.as_slice() }.iter().all(|b| *b == 0), "zeroed");
        assert_eq!(dma.live_pages(), 5);
        assert_eq!(dma.verify_addresses().unwrap(), 5);
        drop(a);
        drop(b);
        assert_eq!(dma.live_pages(), 0);
    }

    #[test]
    fn guest_memory_reaches_the_cpu_view() {
        let Some(dma) = dma() else { return };
        let r = dma.alloc(2 * PAGE_SIZE, Layout::Scattered).unwrap();
        let (pa, run) = r.phys(PAGE_SIZE - 2).unwrap();
        assert!(run >= 2);
        dma.write(pa, &[7, 8]).unwrap();
        let (pa1, _) = r.phys(PAGE_SIZE).unwrap();
        dma.write(pa1, &[9]).unwrap();
        // SAFETY: no device is writing; the region is accessible.
        assert_eq!(&unsafe { r.as_slice() }[PAGE_SIZE - 2..=PAGE_SIZE], &[7, 8, 9]);
        let mut back = [0u8; 1];
        dma.read(pa1, &mut back).unwrap();
        assert_eq!(back, [9]);
        let gone = r.pages()[0];
        drop(r);
        assert!(dma.read(gone, &mut back).is_err());
    }

    #[test]
    fn a_span_is_one_locked_mapping_of_registered_regions() {
        let Some(dma) = dma() else { return };
        let (span, regions) = dma.alloc_span(&[PAGE_SIZE, 10, PAGE_SIZE + 1], Layout::Scattered).unwrap();
        assert_eq!(span.len(), 4 * PAGE_SIZE);
        assert_eq!(regions[2].va() as usize - span.va() as usize, 2 * PAGE_SIZE);
        assert_eq!(dma.live_pages(), 4);
        span.set_cpu_access(0, span.len(), false);
        assert_eq!(dma.verify_addresses().unwrap(), 4, "PROT_NONE locked pages stay put");
        span.set_cpu_access(0, span.len(), true);
        dma.write(regions[1].pages()[0] + 3, &[5]).unwrap();
        // SAFETY: no device is writing; the span is accessible.
        assert_eq!(unsafe { regions[1].as_slice() }[3], 5);
        assert!(dma.alloc_span(&[2 * PAGE_SIZE], Layout::Contiguous).is_err());
        drop(span);
        drop(regions);
        assert_eq!(dma.live_pages(), 0);
    }

    #[test]
    fn guarded_region_keeps_its_pages() {
        let Some(dma) = dma() else { return };
        let r = dma.alloc(PAGE_SIZE, Layout::Scattered).unwrap();
        let before = r.pages()[0];
        r.set_cpu_access(false);
        assert_eq!(dma.verify_addresses().unwrap(), 1, "a PROT_NONE locked page stays put");
        r.set_cpu_access(true);
        assert_eq!(r.pages()[0], before);
    }

    #[test]
    fn contiguous_needs_huge_pages_or_says_so() {
        let Some(dma) = dma() else { return };
        // One page is trivially contiguous and needs no huge page.
        let one = dma.alloc(PAGE_SIZE, Layout::Contiguous).unwrap();
        assert_eq!(one.phys(0).unwrap().1, PAGE_SIZE);
        match dma.alloc(25 * PAGE_SIZE, Layout::Contiguous) {
            Ok(r) => {
                assert_eq!(r.phys(0).unwrap().1, 25 * PAGE_SIZE, "one physical run");
                let r2 = dma.alloc(3 * PAGE_SIZE, Layout::Contiguous).unwrap();
                assert_eq!(r2.pages()[0], r.pages()[0] + 25 * PAGE, "sub-allocated after the first");
                drop(r);
                let r3 = dma.alloc(2 * PAGE_SIZE, Layout::Contiguous).unwrap();
                assert_eq!(r3.pages()[0] % dma.hugepage_size() as u64, 0, "freed pages are reused");
                assert!(dma.alloc(dma.hugepage_size() + 1, Layout::Contiguous).is_err());
            }
            Err(e) => assert!(e.0.contains("nr_hugepages"), "error should say how to fix: {e}"),
        }
    }
}
