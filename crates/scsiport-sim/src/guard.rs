//! The memory monitor's fault side: a process-wide table of guarded address ranges and a SIGSEGV
//! handler that recognises faults in them (Driver Verifier's `VerifyLevel` bit 0 analogue,
//! contract §8).
//!
//! Guarded ranges are the pages of completed SRBs, SRB extensions and sense buffers (runs of
//! them, `port/arena.rs`, registered once per run), Storport's scatter/gather lists, the stand-in `DataBuffer`
//! addresses handed out when `MapBuffers` is FALSE, and the addresses `ScsiPortGetDeviceBase`
//! returns (which must only be used through `ScsiPortRead/Write*`). A fault inside one is recorded
//! against the owning machine, the range is made accessible so the faulting instruction can
//! complete, and the port turns the record into a violation when the miniport routine returns.
//!
//! A loaded image (`pe.rs`) gets another kind of range for its registers: on x64 a miniport's
//! `.sys` accesses registers directly, so every access to such a range faults on purpose, and the
//! handler emulates the instruction (`mmio.rs`) and resumes after it. Those ranges live in a small
//! table of their own ([`register_direct`]), searched first, since every register access of the
//! real binary comes through here. The handler then does real work (decoding, the device model,
//! the trace), more than the small signal stack Rust's runtime gives a thread holds, so threads
//! that run a loaded image get a larger one ([`ensure_altstack`]).
//!
//! Any other SIGSEGV is passed on to the handler that was there before. When it happened in a
//! loaded image's code, the driver faulted on its own: a line on stderr first says where, image-
//! relative, and what `int 0x29` (`__fastfail`, bug check 0x139) or `in`/`out` mean.
//!
//! These tables are the only process-wide state of the emulator: a signal handler cannot find the
//! machine any other way. It is lock-free for the handler (atomics only; the handler calls nothing
//! but `mprotect`); registration is serialised by a mutex the handler never takes. Faults outside
//! every range are passed to the handler that was installed before ours (Rust's stack-overflow
//! handler uses SIGSEGV too).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use crate::mem::PAGE_SIZE;

/// Room for two machines in the full quarantine at once (`verifier::QUARANTINE_ALL_CAP` SRBs of
/// up to four guarded ranges each, Storport) besides everything else.
const SLOTS: usize = 65536;

/// What a guarded range is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum GuardKind {
    /// A completed SRB.
    Srb = 1,
    /// A completed SRB's extension.
    SrbExtension = 2,
    /// The stand-in for `Srb->DataBuffer` when `MapBuffers` is FALSE.
    DataBuffer = 3,
    /// An address returned by `ScsiPortGetDeviceBase`.
    Mmio = 4,
    /// An address returned by `ScsiPortGetDeviceBase` to a loaded image, whose direct accesses
    /// are emulated; recorded here only when one could not be.
    MmioDirect = 5,
    /// A completed SRB's sense buffer.
    SenseBuffer = 6,
    /// A run of SRB blocks (`port/arena.rs`): registered once for the run's life, faulting only
    /// where the run's pages are guarded; the port names the SRB and the part from the address.
    /// A fault makes only its own page accessible again, not the whole run.
    SrbRun = 7,
    /// A device extension the port has released (a PnP stop/start gave the miniport a new one),
    /// kept guarded by the full quarantine.
    ReleasedExtension = 8,
}

impl GuardKind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Srb),
            2 => Some(Self::SrbExtension),
            3 => Some(Self::DataBuffer),
            4 => Some(Self::Mmio),
            5 => Some(Self::MmioDirect),
            6 => Some(Self::SenseBuffer),
            7 => Some(Self::SrbRun),
            8 => Some(Self::ReleasedExtension),
            _ => None,
        }
    }
}

struct Slot {
    owner: AtomicU64,
    start: AtomicUsize,
    len: AtomicUsize,
    kind: AtomicU8,
    tag: AtomicU64,
    faulted: AtomicBool,
    fault_addr: AtomicUsize,
    fault_write: AtomicBool,
    /// The thread that faulted, so that the routine it was running can be named.
    fault_tid: AtomicI32,
}

impl Slot {
    const fn new() -> Self {
        Self {
            owner: AtomicU64::new(0),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            kind: AtomicU8::new(0),
            tag: AtomicU64::new(0),
            faulted: AtomicBool::new(false),
            fault_addr: AtomicUsize::new(0),
            fault_write: AtomicBool::new(false),
            fault_tid: AtomicI32::new(0),
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
static REGISTRY: Mutex<usize> = Mutex::new(0);
static FAULTS: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();
static OLD_ACTION: OnceLock<libc::sigaction> = OnceLock::new();
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A fresh owner identity for one machine.
pub(crate) fn new_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

/// A recorded fault in a guarded range.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fault {
    pub(crate) kind: GuardKind,
    pub(crate) tag: u64,
    pub(crate) addr: usize,
    pub(crate) write: bool,
    /// The faulting thread (`gettid`); 0 when not known.
    pub(crate) tid: i32,
}

/// The calling thread's id, as [`Fault::tid`] records it.
pub(crate) fn thread_id() -> i32 {
    // SAFETY: gettid has no preconditions; it is async-signal-safe.
    unsafe { libc::gettid() }
}

/// A registered range; unregisters on drop. The caller makes the memory accessible (or unmaps it)
/// before dropping, so that no fault can hit an unregistered protected page.
#[derive(Debug)]
pub(crate) struct GuardHandle {
    slot: usize,
}

impl Drop for GuardHandle {
    fn drop(&mut self) {
        if let Some(s) = TABLE.get(self.slot) {
            s.owner.store(0, Ordering::Release);
        }
    }
}

/// Registers `[start, start+len)` for `owner`. Returns `None` when the table is full (the range is
/// then simply not monitored).
pub(crate) fn register(owner: u64, start: usize, len: usize, kind: GuardKind, tag: u64) -> Option<GuardHandle> {
    install();
    let mut hint = REGISTRY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for i in 0..SLOTS {
        let idx = (*hint + i) % SLOTS;
        let Some(s) = TABLE.get(idx) else { continue };
        if s.owner.load(Ordering::Acquire) == 0 {
            s.start.store(start, Ordering::Relaxed);
            s.len.store(len, Ordering::Relaxed);
            s.kind.store(kind as u8, Ordering::Relaxed);
            s.tag.store(tag, Ordering::Relaxed);
            s.faulted.store(false, Ordering::Relaxed);
            s.owner.store(owner, Ordering::Release);
            *hint = idx + 1;
            return Some(GuardHandle { slot: idx });
        }
    }
    None
}

const DIRECT_SLOTS: usize = 256;

/// A register range of a loaded image, whose accesses are emulated.
struct Direct {
    owner: AtomicU64,
    start: AtomicUsize,
    len: AtomicUsize,
    faulted: AtomicBool,
    fault_addr: AtomicUsize,
}

impl Direct {
    const fn new() -> Self {
        Self {
            owner: AtomicU64::new(0),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            faulted: AtomicBool::new(false),
            fault_addr: AtomicUsize::new(0),
        }
    }
}

static DIRECT: [Direct; DIRECT_SLOTS] = [const { Direct::new() }; DIRECT_SLOTS];

/// A registered direct range; unregisters on drop.
#[derive(Debug)]
pub(crate) struct DirectHandle {
    slot: usize,
}

impl Drop for DirectHandle {
    fn drop(&mut self) {
        if let Some(d) = DIRECT.get(self.slot) {
            d.owner.store(0, Ordering::Release);
        }
    }
}

/// Registers `[start, start+len)`, a reservation made by [`reserve`], as the register range of a
/// loaded image of machine `owner`: its accesses are emulated. `None` when the table is full.
pub(crate) fn register_direct(owner: u64, start: usize, len: usize) -> Option<DirectHandle> {
    install();
    let _serialise = REGISTRY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let slot = DIRECT.iter().position(|d| d.owner.load(Ordering::Acquire) == 0)?;
    let d = DIRECT.get(slot)?;
    d.start.store(start, Ordering::Relaxed);
    d.len.store(len, Ordering::Relaxed);
    d.faulted.store(false, Ordering::Relaxed);
    d.owner.store(owner, Ordering::Release);
    Some(DirectHandle { slot })
}

/// The emulator's hook for a direct access: performs it on the machine of the running routine.
/// Set once by the port; a plain function pointer, read without locking.
static DIRECT_HOOK: OnceLock<fn(*mut libc::c_void, usize) -> bool> = OnceLock::new();

/// Installs the function that emulates a direct register access.
pub(crate) fn set_direct_hook(hook: fn(*mut libc::c_void, usize) -> bool) {
    let _ = DIRECT_HOOK.set(hook);
}

fn emulate_direct(ctx: *mut libc::c_void, addr: usize) -> bool {
    DIRECT_HOOK.get().is_some_and(|hook| hook(ctx, addr))
}

/// Bytes of the signal stack of a thread that runs a loaded image: the handler emulates register
/// accesses on it, which runs the device model and the trace.
const ALTSTACK: usize = 1 << 20;

struct AltStack {
    base: usize,
    len: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: reads the thread's current signal stack.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: queries only.
        unsafe { libc::sigaltstack(std::ptr::null(), &raw mut current) };
        if current.ss_sp as usize == self.base + PAGE_SIZE {
            let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
            // SAFETY: disables this thread's signal stack (ours) before it is unmapped.
            unsafe { libc::sigaltstack(&raw const off, std::ptr::null_mut()) };
        }
        // SAFETY: the mapping `ensure_altstack` made for this thread; no longer installed.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

thread_local! {
    static ALT: std::cell::RefCell<Option<AltStack>> = const { std::cell::RefCell::new(None) };
    /// Whether `ALT` holds this thread's stack: the port asks before every routine it runs.
    static HAS_ALT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Gives the calling thread a signal stack of [`ALTSTACK`] bytes (once per thread), with a guard
/// page below it.
#[inline]
pub(crate) fn ensure_altstack() {
    if !HAS_ALT.get() {
        install_altstack();
    }
}

#[cold]
fn install_altstack() {
    ALT.with(|alt| {
        let Ok(mut alt) = alt.try_borrow_mut() else { return };
        if alt.is_some() {
            return;
        }
        let len = ALTSTACK + PAGE_SIZE;
        // SAFETY: a fresh private anonymous mapping.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0)
        };
        if p == libc::MAP_FAILED {
            return;
        }
        // SAFETY: the lowest page of our own mapping becomes the guard page.
        unsafe { libc::mprotect(p, PAGE_SIZE, libc::PROT_NONE) };
        let stack = libc::stack_t { ss_sp: (p as usize + PAGE_SIZE) as *mut libc::c_void, ss_flags: 0, ss_size: ALTSTACK };
        // SAFETY: installs a signal stack that stays mapped until this thread's `AltStack` drops.
        if unsafe { libc::sigaltstack(&raw const stack, std::ptr::null_mut()) } == 0 {
            *alt = Some(AltStack { base: p as usize, len });
            HAS_ALT.set(true);
        } else {
            // SAFETY: not installed; our own mapping.
            unsafe { libc::munmap(p, len) };
        }
    });
}

/// Number of faults recorded so far in the whole process; cheap to poll.
pub(crate) fn fault_count() -> u64 {
    FAULTS.load(Ordering::Acquire)
}

/// Takes the faults recorded for `owner`.
pub(crate) fn take_faults(owner: u64) -> Vec<Fault> {
    let mut out = Vec::new();
    for d in &DIRECT {
        if d.owner.load(Ordering::Acquire) == owner && d.faulted.swap(false, Ordering::AcqRel) {
            out.push(Fault { kind: GuardKind::MmioDirect, tag: 0, addr: d.fault_addr.load(Ordering::Relaxed), write: false, tid: 0 });
        }
    }
    for s in &TABLE {
        if s.owner.load(Ordering::Acquire) == owner
            && s.faulted.swap(false, Ordering::AcqRel)
            && let Some(kind) = GuardKind::from_u8(s.kind.load(Ordering::Relaxed))
        {
            out.push(Fault {
                kind,
                tag: s.tag.load(Ordering::Relaxed),
                addr: s.fault_addr.load(Ordering::Relaxed),
                write: s.fault_write.load(Ordering::Relaxed),
                tid: s.fault_tid.load(Ordering::Relaxed),
            });
        }
    }
    out
}

/// Released reservations kept for reuse, oldest first (`unreserve`). Storport hands the miniport
/// such a stand-in as `DataBuffer` for every READ and WRITE it does not map, and an `mmap` and a
/// `munmap` per request were most of what such an I/O cost (2 of 2.3 system calls per I/O after
/// the scatter/gather list moved into the SRB block).
static SPARE: Mutex<VecDeque<(usize, usize)>> = Mutex::new(VecDeque::new());
/// How many released reservations are kept; more are unmapped, oldest first.
const SPARE_MAX: usize = 256;
/// A released reservation is handed out again only after this many others were released after
/// it: a late access through a stale stand-in still faults, and for a while it is not taken for
/// a newer request's.
const SPARE_AGE: usize = 64;

/// Reserves `len` bytes (rounded up to pages) of address space with no access: the stand-in for a
/// buffer or register window that must not be dereferenced. Returns the base or `None`.
pub(crate) fn reserve(len: usize) -> Option<usize> {
    let len = len.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE;
    if let Ok(mut spare) = SPARE.lock() {
        let old_enough = spare.len().saturating_sub(SPARE_AGE);
        if let Some(i) = spare.iter().take(old_enough).position(|&(_, l)| l == len) {
            return spare.remove(i).map(|(base, _)| base);
        }
    }
    // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED { None } else { Some(p as usize) }
}

/// Releases a reservation made by [`reserve`]: kept for reuse (still with no access), or unmapped.
pub(crate) fn unreserve(base: usize, len: usize) {
    let len = len.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE;
    let mut unmap = vec![];
    match SPARE.lock() {
        Ok(mut spare) => {
            spare.push_back((base, len));
            while spare.len() > SPARE_MAX {
                unmap.extend(spare.pop_front());
            }
        }
        Err(_) => unmap.push((base, len)),
    }
    for (base, len) in unmap {
        // SAFETY: `base..base+len` is a mapping `reserve` created, released by its owner and
        // taken out of the spare list, so nothing else uses it.
        unsafe { libc::munmap(base as *mut libc::c_void, len) };
    }
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: `sigaction` is plain data; all-zero is a valid (empty) value.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = handler as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: initialises the mask of our own structure.
        unsafe { libc::sigemptyset(&raw mut new.sa_mask) };
        // SAFETY: installs `handler`, an `extern "C"` function with the SA_SIGINFO signature.
        if unsafe { libc::sigaction(libc::SIGSEGV, &raw const new, &raw mut old) } == 0 {
            let _ = OLD_ACTION.set(old);
        }
    });
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn is_write(ctx: *mut libc::c_void) -> bool {
    if ctx.is_null() {
        return false;
    }
    let uc: *const libc::ucontext_t = ctx.cast();
    // SAFETY: for SA_SIGINFO handlers the third argument is the interrupted `ucontext_t`.
    let uc = unsafe { &*uc };
    let err = uc.uc_mcontext.gregs.get(libc::REG_ERR as usize).copied().unwrap_or(0);
    err & 2 != 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn is_write(_ctx: *mut libc::c_void) -> bool {
    false
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let addr = if info.is_null() {
        0
    } else {
        // SAFETY: the kernel passes a valid siginfo for SIGSEGV.
        let info = unsafe { &*info };
        // SAFETY: `si_addr` is the faulting address field of a SIGSEGV siginfo.
        unsafe { info.si_addr() as usize }
    };
    // A loaded image's register access, the fault every I/O of a `.sys` takes: kept short, the
    // rest of the handler is out of line.
    if let Some(d) = DIRECT.iter().find(|d| {
        let start = d.start.load(Ordering::Acquire);
        d.owner.load(Ordering::Acquire) != 0 && addr >= start && addr - start < d.len.load(Ordering::Relaxed)
    }) {
        if !emulate_direct(ctx, addr) {
            not_emulated(d, addr);
        }
        return;
    }
    other_fault(sig, info, ctx, addr);
}

/// A direct register access that could not be emulated: recorded like any guarded fault, and
/// the instruction left to complete on ordinary memory; the port turns the record into the
/// direct-access violation.
#[cold]
#[inline(never)]
fn not_emulated(d: &Direct, addr: usize) {
    d.fault_addr.store(addr, Ordering::Relaxed);
    d.faulted.store(true, Ordering::Release);
    FAULTS.fetch_add(1, Ordering::AcqRel);
    let start = d.start.load(Ordering::Relaxed);
    let len = d.len.load(Ordering::Relaxed);
    // SAFETY: the range is a reservation owned by a live machine (see `reserve`).
    unsafe { libc::mprotect(start as *mut libc::c_void, len.div_ceil(PAGE_SIZE) * PAGE_SIZE, libc::PROT_READ | libc::PROT_WRITE) };
}

/// A fault outside every register range of a loaded image: in a guarded range, or not ours.
#[inline(never)]
fn other_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void, addr: usize) {
    for s in &TABLE {
        if s.owner.load(Ordering::Acquire) == 0 {
            continue;
        }
        let start = s.start.load(Ordering::Relaxed);
        let len = s.len.load(Ordering::Relaxed);
        if addr >= start && addr - start < len.max(1) {
            s.fault_addr.store(addr, Ordering::Relaxed);
            s.fault_write.store(is_write(ctx), Ordering::Relaxed);
            s.fault_tid.store(thread_id(), Ordering::Relaxed);
            s.faulted.store(true, Ordering::Release);
            FAULTS.fetch_add(1, Ordering::AcqRel);
            let (base, end) = if s.kind.load(Ordering::Relaxed) == GuardKind::SrbRun as u8 {
                let page = addr & !(PAGE_SIZE - 1);
                (page, page + PAGE_SIZE)
            } else {
                (start & !(PAGE_SIZE - 1), (start + len.max(1)).div_ceil(PAGE_SIZE) * PAGE_SIZE)
            };
            // SAFETY: the range is a guarded mapping owned by a live machine; making it
            // accessible lets the faulting instruction complete. mprotect is async-signal-safe.
            unsafe { libc::mprotect(base as *mut libc::c_void, end - base, libc::PROT_READ | libc::PROT_WRITE) };
            return;
        }
    }
    report_image_fault(addr, ctx);
    chain(sig, info, ctx);
}

/// A line built on the stack, for the signal handler (no allocation, no locks).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
struct Line {
    buf: [u8; 256],
    len: usize,
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
impl Line {
    fn new() -> Self {
        Self { buf: [0; 256], len: 0 }
    }

    fn push(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        self
    }

    fn hex(&mut self, v: u64) -> &mut Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 16];
        let mut n = 0;
        let mut v = v;
        loop {
            if let Some(d) = digits.get_mut(n) {
                *d = DIGITS.get((v & 0xF) as usize).copied().unwrap_or(b'?');
            }
            n += 1;
            v >>= 4;
            if v == 0 || n == digits.len() {
                break;
            }
        }
        self.push(b"0x");
        for i in (0..n).rev() {
            let d = digits.get(i).copied().unwrap_or(b'?');
            self.push(&[d]);
        }
        self
    }

    fn write(&self) {
        let bytes = self.buf.get(..self.len).unwrap_or(&[]);
        // SAFETY: write(2) to stderr from our own stack buffer; async-signal-safe.
        let _ = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    }
}

/// A SIGSEGV the emulator does not handle, with RIP inside a loaded image, is the driver's own
/// fault: before it is passed on (and, as a rule, ends the process), say where in the image it
/// happened, image-relative as a debugger's `rspvscsi.sys+0x1234`, and what the instruction means
/// on Windows when that is known: `int 0x29` is `__fastfail`, bug check 0x139 with ECX as
/// parameter 1; `in`/`out` touch I/O space, which is not emulated. Async-signal-safe.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn report_image_fault(addr: usize, ctx: *mut libc::c_void) {
    if ctx.is_null() {
        return;
    }
    let uc: *const libc::ucontext_t = ctx.cast();
    // SAFETY: for SA_SIGINFO handlers the third argument is the interrupted `ucontext_t`; read only.
    let gregs = unsafe { &(*uc).uc_mcontext.gregs };
    let reg = |r: libc::c_int| usize::try_from(r).ok().and_then(|i| gregs.get(i)).copied().unwrap_or(0).cast_unsigned();
    let Ok(rip) = usize::try_from(reg(libc::REG_RIP)) else { return };
    let mut name = [0u8; crate::pe::NAME_BYTES];
    let Some((start, n)) = crate::pe::image_at(rip, &mut name) else { return };
    let mut line = Line::new();
    line.push(b"scsiport-sim: SIGSEGV in a loaded image at ")
        .push(name.get(..n).unwrap_or(&[]))
        .push(b"+")
        .hex((rip - start) as u64)
        .push(b" (fault address ")
        .hex(addr as u64)
        .push(b")\n");
    line.write();
    // When the fault is the fetch of the instruction itself, there are no bytes to look at.
    if addr == rip {
        return;
    }
    let mut code = [0u8; 15];
    let got = crate::mmio::code_bytes(rip, &mut code);
    let mut line = Line::new();
    match crate::mmio::classify(code.get(..got).unwrap_or(&[]), rip as u64) {
        crate::mmio::Trap::FastFail => {
            line.push(b"scsiport-sim:   the instruction is int 0x29 (__fastfail, the driver's panic): on Windows, bug check 0x139 KERNEL_SECURITY_CHECK_FAILURE, parameter 1 = ")
                .hex(reg(libc::REG_RCX) & 0xFFFF_FFFF)
                .push(b" (ECX)\n");
        }
        crate::mmio::Trap::PortIo => {
            line.push(b"scsiport-sim:   the instruction is an I/O-port access (in/out): I/O-space registers are not emulated, only memory-space ones\n");
        }
        crate::mmio::Trap::Other => return,
    }
    line.write();
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn report_image_fault(_addr: usize, _ctx: *mut libc::c_void) {}

fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(old) = OLD_ACTION.get() else {
        reset_default(sig);
        return;
    };
    let h = old.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        reset_default(sig);
        return;
    }
    if old.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so this is its signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler installed without SA_SIGINFO.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

fn reset_default(sig: libc::c_int) {
    // SAFETY: `sigaction` is plain data; all-zero is a valid value.
    let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
    dfl.sa_sigaction = libc::SIG_DFL;
    // SAFETY: restores the default action; returning re-executes the faulting instruction, which
    // then terminates the process as it would have without us.
    unsafe { libc::sigaction(sig, &raw const dfl, std::ptr::null_mut()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protection `/proc/self/maps` gives the mapping holding `addr`.
    fn protection(addr: usize) -> Option<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        maps.lines().find_map(|l| {
            let (range, rest) = l.split_once(' ')?;
            let (lo, hi) = range.split_once('-')?;
            let (lo, hi) = (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
            (lo <= addr && addr < hi).then(|| rest.split(' ').next().unwrap_or("").to_string())
        })
    }

    #[test]
    fn a_released_reservation_comes_back_after_younger_ones_and_stays_inaccessible() {
        // Lengths no other test reserves.
        let (len, other) = (37 * PAGE_SIZE, 39 * PAGE_SIZE);
        let first = reserve(len).unwrap();
        unreserve(first, len);
        assert_eq!(protection(first).as_deref(), Some("---p"), "kept with no access");
        let younger: Vec<usize> = (0..SPARE_AGE).map(|_| reserve(other).unwrap()).collect();
        for base in younger {
            unreserve(base, other);
        }
        assert_eq!(reserve(len), Some(first));
        assert_eq!(protection(first).as_deref(), Some("---p"));
        unreserve(first, len);
    }
}
