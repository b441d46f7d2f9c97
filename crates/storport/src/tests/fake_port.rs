//! A recording stand-in for `storport.sys`, for the unit tests only: it defines the `StorPort*`
//! symbols the wrapper imports, logs every call on the calling thread (tests run in parallel, one
//! log each), and does the least a port must for the call to mean anything: fill in the out
//! parameters, run a `StorPortSynchronizeAccess` routine, hand out canned addresses.
//!
//! `StorPortNotification` is `__cdecl` variadic. Stable Rust cannot define a variadic function,
//! but in the Windows x64 convention variadic integer arguments travel exactly like fixed ones
//! (RCX, RDX, R8, R9, then the stack), so a fixed-arity `extern "win64"` definition reading the
//! first six is compatible; an argument narrower than 64 bits has undefined upper bits and is
//! masked. The emulator, which must handle every notification, does this in C instead.
//!
//! The Storport emulator (`scsiport-sim`, a Linux dev-dependency) defines the same symbols, so
//! the two must never be linked into one binary, and they are not: this module exists only in
//! the library's unit-test binary, which does not use `scsiport_sim` (a dev-dependency is linked
//! only into the test binaries that refer to it), while `tests/on_emulator.rs` links the
//! emulator with the library built without `cfg(test)`, that is without these stubs. Never
//! refer to `scsiport_sim` from the unit tests: the link would fail with duplicate `StorPort*`
//! symbols. What needs a real port — the routines in the order and under the locks Storport
//! uses, with its verifier checking each call — is tested on the emulator; what stays here are
//! the exact calls each trampoline makes and the answers no conforming port gives (a
//! `ConfigInfo` older than Windows 8, an uncached extension that is not contiguous or not the
//! first one, a `PathId` past 255, an interrupt while a restart re-initialises the DPC).

use core::ffi::c_void;
use std::cell::RefCell;
use std::vec::Vec;

use scsiport_sys as sys;
use sys::storport as stor;
use sys::{BOOLEAN, LARGE_INTEGER, TRUE};

/// One call into the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `StorPortNotification(type, extension, args...)`, the first four variadic arguments.
    Notification(i32, [usize; 4]),
    /// `StorPortSynchronizeAccess` entered (the routine runs between this and `SyncExit`).
    SyncEnter,
    /// `StorPortSynchronizeAccess` returned.
    SyncExit,
    /// `StorPortGetUncachedExtension(len)`.
    GetUncachedExtension(u32),
    /// `StorPortGetDeviceBase(address, len, in_io_space)`.
    GetDeviceBase(i64, u32, BOOLEAN),
    /// `StorPortLogError(error_code, unique_id)`.
    LogError(u32, u32),
    /// `StorPortStallExecution(us)`.
    Stall(u32),
    /// `StorPortPause(seconds)`, `StorPortResume`, `StorPortBusy(n)`, `StorPortReady`.
    Queue(&'static str, u32),
    /// A register or port access: which routine, the offset from the mapping, the value.
    Register(&'static str, usize, u32),
}

/// What the port answers, set per test.
pub struct Answers {
    /// Base of the memory `StorPortGetUncachedExtension` returns, and its bus address.
    pub uncached: (usize, i64),
    /// What `StorPortGetDeviceBase` returns.
    pub device_base: usize,
    /// What `StorPortGetScatterGatherList` returns.
    pub scatter_gather: usize,
    /// Contiguous length `StorPortGetPhysicalAddress` reports.
    pub contiguous: u32,
}

std::thread_local! {
    static LOG: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
    static ANSWERS: RefCell<Answers> =
        const { RefCell::new(Answers { uncached: (0, 0), device_base: 0, scatter_gather: 0, contiguous: 0 }) };
}

fn log(call: Call) {
    LOG.with(|log| log.borrow_mut().push(call));
}

/// Takes this thread's log.
pub fn take() -> Vec<Call> {
    LOG.with(|log| core::mem::take(&mut *log.borrow_mut()))
}

/// Sets this thread's answers.
pub fn answer(answers: Answers) {
    ANSWERS.with(|a| *a.borrow_mut() = answers);
}

fn answers<R>(f: impl FnOnce(&Answers) -> R) -> R {
    ANSWERS.with(|a| f(&a.borrow()))
}

/// The notifications in `calls`, type and arguments.
pub fn notifications(calls: &[Call]) -> Vec<(i32, [usize; 4])> {
    calls
        .iter()
        .filter_map(|call| match call {
            Call::Notification(kind, args) => Some((*kind, *args)),
            _ => None,
        })
        .collect()
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortNotification(
    kind: i32,
    _extension: *mut c_void,
    a0: usize,
    a1: usize,
    a2: usize,
    a3: usize,
) {
    // Only the arguments the type announces are defined (the rest are whatever the registers
    // and stack held), and of a UCHAR or enum argument only the low 32 bits.
    let args = match kind {
        stor::ResetDetected => [0; 4],
        stor::RequestComplete | stor::ReleaseSpinLock => [a0, 0, 0, 0],
        stor::BusChangeDetected => [a0 & 0xFFFF_FFFF, 0, 0, 0],
        stor::RequestTimerCall => [a0, a1 & 0xFFFF_FFFF, 0, 0],
        stor::InitializeDpc | stor::EnablePassiveInitialization => [a0, a1, 0, 0],
        stor::AcquireSpinLock => [a0 & 0xFFFF_FFFF, a1, a2, 0],
        _ => [a0, a1, a2, a3],
    };
    log(Call::Notification(kind, args));
    // The LONG results of the inline functions (storport.h): "succeeded".
    let result = match kind {
        stor::IssueDpc => a3,
        stor::EnablePassiveInitialization => a1,
        _ => 0,
    };
    if result != 0 {
        // SAFETY: for these notifications the argument is the caller's `LONG` result.
        unsafe { (result as *mut i32).write(1) };
    }
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortSynchronizeAccess(
    extension: *mut c_void,
    routine: stor::PSTOR_SYNCHRONIZED_ACCESS,
    context: *mut c_void,
) -> BOOLEAN {
    log(Call::SyncEnter);
    // SAFETY: the routine and its context are the caller's, as StorPortSynchronizeAccess takes them.
    let result = routine.map_or(0, |routine| unsafe { routine(extension, context) });
    log(Call::SyncExit);
    result
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortGetUncachedExtension(
    _extension: *mut c_void,
    _config: stor::PPORT_CONFIGURATION_INFORMATION,
    len: u32,
) -> *mut c_void {
    log(Call::GetUncachedExtension(len));
    answers(|a| a.uncached.0) as *mut c_void
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortGetPhysicalAddress(
    _extension: *mut c_void,
    _srb: sys::PSCSI_REQUEST_BLOCK,
    va: *mut c_void,
    length: *mut u32,
) -> LARGE_INTEGER {
    let (base, pa, contiguous) = answers(|a| (a.uncached.0, a.uncached.1, a.contiguous));
    // SAFETY: the caller's out parameter.
    unsafe { length.write(contiguous) };
    // Addresses in the fake uncached extension translate linearly; others to 0x8000_0000 + va's
    // low bits, which is all the tests look at.
    let offset = (va as usize).wrapping_sub(base);
    if base != 0 && offset < 0x10_0000 {
        LARGE_INTEGER { QuadPart: pa.wrapping_add(i64::try_from(offset).unwrap_or(0)) }
    } else {
        LARGE_INTEGER { QuadPart: 0x8000_0000 | (va as i64 & 0xFFFF) }
    }
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortGetScatterGatherList(
    _extension: *mut c_void,
    _srb: sys::PSCSI_REQUEST_BLOCK,
) -> stor::PSTOR_SCATTER_GATHER_LIST {
    answers(|a| a.scatter_gather) as stor::PSTOR_SCATTER_GATHER_LIST
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortGetDeviceBase(
    _extension: *mut c_void,
    _bus: sys::INTERFACE_TYPE,
    _bus_number: u32,
    address: LARGE_INTEGER,
    len: u32,
    in_io_space: BOOLEAN,
) -> *mut c_void {
    log(Call::GetDeviceBase(address.QuadPart, len, in_io_space));
    answers(|a| a.device_base) as *mut c_void
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortLogError(
    _extension: *mut c_void,
    _srb: sys::PSCSI_REQUEST_BLOCK,
    _path: u8,
    _target: u8,
    _lun: u8,
    error_code: u32,
    unique_id: u32,
) {
    log(Call::LogError(error_code, unique_id));
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortStallExecution(microseconds: u32) {
    log(Call::Stall(microseconds));
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortPause(_extension: *mut c_void, seconds: u32) -> BOOLEAN {
    log(Call::Queue("pause", seconds));
    TRUE
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortResume(_extension: *mut c_void) -> BOOLEAN {
    log(Call::Queue("resume", 0));
    TRUE
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortBusy(_extension: *mut c_void, requests: u32) -> BOOLEAN {
    log(Call::Queue("busy", requests));
    TRUE
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortReady(_extension: *mut c_void) -> BOOLEAN {
    log(Call::Queue("ready", 0));
    TRUE
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortInitialize(
    _argument1: *mut c_void,
    _argument2: *mut c_void,
    _data: stor::PHW_INITIALIZATION_DATA,
    _context: *mut c_void,
) -> u32 {
    0
}

#[unsafe(no_mangle)]
unsafe extern "win64" fn StorPortDebugPrint(_level: u32, _format: *mut i8, _a0: usize, _a1: usize) {}

/// The register and port accessors: plain memory accesses at the mapped address, logged with
/// their offset from the device base.
macro_rules! accessors {
    ($($read:ident, $write:ident, $ty:ty;)*) => {$(
        #[unsafe(no_mangle)]
        unsafe extern "win64" fn $read(_extension: *mut c_void, register: *mut $ty) -> $ty {
            // SAFETY: the wrapper passes an address inside the test's fake mapping.
            let value = unsafe { register.read_volatile() };
            log(Call::Register(stringify!($read), (register as usize).wrapping_sub(answers(|a| a.device_base)), u32::from(value)));
            value
        }

        #[unsafe(no_mangle)]
        unsafe extern "win64" fn $write(_extension: *mut c_void, register: *mut $ty, value: $ty) {
            log(Call::Register(stringify!($write), (register as usize).wrapping_sub(answers(|a| a.device_base)), u32::from(value)));
            // SAFETY: as above.
            unsafe { register.write_volatile(value) };
        }
    )*};
}

accessors! {
    StorPortReadRegisterUchar, StorPortWriteRegisterUchar, u8;
    StorPortReadRegisterUshort, StorPortWriteRegisterUshort, u16;
    StorPortReadRegisterUlong, StorPortWriteRegisterUlong, u32;
    StorPortReadPortUchar, StorPortWritePortUchar, u8;
    StorPortReadPortUshort, StorPortWritePortUshort, u16;
    StorPortReadPortUlong, StorPortWritePortUlong, u32;
}
