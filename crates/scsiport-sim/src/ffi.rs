//! The `ScsiPort*` symbols a miniport imports, defined with C linkage so that a miniport crate
//! linked with this one into a test binary runs unchanged (`scsiport-sys` declares them `extern`
//! on non-Windows hosts).
//!
//! Every service finds its machine through the thread-local current call (`port::current`) and
//! cross-checks the `HwDeviceExtension` argument against the adapter whose routine is running.
//! A service must never unwind into the miniport's frames: each body runs under `catch_unwind`,
//! and an internal failure halts the machine instead.
#![allow(non_snake_case, clippy::missing_safety_doc, clippy::not_unsafe_ptr_arg_deref)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use scsiport_sys as sys;
use sys::{
    BOOLEAN, FALSE, HW_INITIALIZATION_DATA, INTERFACE_TYPE, LONG, PLARGE_INTEGER, PORT_CONFIGURATION_INFORMATION, PUCHAR,
    PULONG, PUSHORT, PVOID, SCSI_PHYSICAL_ADDRESS, SCSI_REQUEST_BLOCK, UCHAR, ULONG, ULONG_PTR, USHORT,
};

use crate::port::{Adapter, CallArc, MachineCore, Routine, current};
use crate::trace::J;
use crate::verifier::Rule;

/// Runs a service body; a panic inside the emulator becomes a benign return value and a log line.
pub(crate) fn guarded<R>(default: R, name: &'static str, f: impl FnOnce() -> R) -> R {
    if let Ok(r) = catch_unwind(AssertUnwindSafe(f)) {
        r
    } else {
        eprintln!("scsiport-sim: internal error in {name}; returning a default value");
        default
    }
}

/// The machine and adapter of the running routine, with the device-extension cross-check.
pub(crate) fn resolve(ext: PVOID, name: &'static str) -> Option<(CallArc<MachineCore>, CallArc<Adapter>, Routine)> {
    let Some((m, ad, routine)) = current() else {
        eprintln!("scsiport-sim: {name} called outside any miniport routine run by the emulator; ignored");
        return None;
    };
    let Some(ad) = ad else {
        m.violation(None, Rule::WrongDeviceExtension, [ext as u64, 0, 0], format!("{name} called from {}", routine.name()));
        return None;
    };
    let mine = ad.devext.load(std::sync::atomic::Ordering::Acquire);
    if ext as usize != mine {
        m.violation(
            Some(ad.index),
            Rule::WrongDeviceExtension,
            [ext as u64, mine as u64, 0],
            format!("{name} called with HwDeviceExtension {:#x}, not the adapter's {mine:#x}", ext as usize),
        );
        return None;
    }
    if m.is_halted() {
        return None;
    }
    Some((m, ad, routine))
}

/// The adapter of the running routine, for the register accessors (which take no extension).
pub(crate) fn resolve_register(name: &'static str) -> Option<(CallArc<MachineCore>, CallArc<Adapter>)> {
    let Some((m, ad, routine)) = current() else {
        eprintln!("scsiport-sim: {name} called outside any miniport routine run by the emulator; ignored");
        return None;
    };
    let Some(ad) = ad else {
        m.violation(None, Rule::RegisterAccess, [0, 0, 0], format!("{name} from {}", routine.name()));
        return None;
    };
    if m.is_halted() {
        return None;
    }
    Some((m, ad))
}

pub(crate) type NotifyFn = extern "C" fn(i32, PVOID, usize, usize, usize, usize, i32);
pub(crate) type DebugFn = extern "C" fn(u32, *const std::ffi::c_char);

unsafe extern "C" {
    fn scsiport_sim_set_callbacks(notify: NotifyFn, debug: DebugFn);
}

extern "C" fn on_notify(ty: i32, ext: PVOID, a0: usize, a1: usize, a2: usize, a3: usize, _n: i32) {
    forward_notification("ScsiPortNotification", crate::Port::ScsiPort, ty, ext, |m, ad, routine| {
        m.notification(ad, routine, ty, [a0, a1, a2, a3]);
    });
}

extern "C" fn on_debug(level: u32, text: *const std::ffi::c_char) {
    forward_debug_print("ScsiDebugPrint", level, text);
}

/// A notification the C shim read off a port's variadic `*Notification`, for `dispatch` on the
/// machine of the running routine, if it is a machine of that `port`.
pub(crate) fn forward_notification(
    name: &'static str,
    port: crate::Port,
    ty: i32,
    ext: PVOID,
    dispatch: impl FnOnce(&Arc<MachineCore>, &Arc<Adapter>, Routine),
) {
    guarded((), name, || {
        let Some((m, ad, routine)) = resolve(ext, name) else { return };
        if m.port != port {
            let other = if port == crate::Port::ScsiPort { "Storport" } else { "SCSI Port" };
            m.violation(Some(ad.index), Rule::BadServiceArgument, [u64::from(ty.cast_unsigned()), 0, 0], format!("{name} on a {other} machine"));
            return;
        }
        dispatch(&m, &ad, routine);
    });
}

/// A debug print the C shim formatted (`ScsiDebugPrint`, `StorPortDebugPrint`), into the trace.
pub(crate) fn forward_debug_print(name: &'static str, level: u32, text: *const std::ffi::c_char) {
    guarded((), name, || {
        if text.is_null() {
            return;
        }
        // SAFETY: the shim passes its NUL-terminated formatting buffer.
        let s = unsafe { std::ffi::CStr::from_ptr(text) }.to_string_lossy().into_owned();
        if let Some((m, ad, _)) = current() {
            m.trace(ad.map(|a| a.index), "port", &[("fn", J::Static(name)), ("level", J::from(level)), ("text", J::Str(s))]);
        }
    });
}

/// Connects the C shim to the Rust side (idempotent).
pub(crate) fn link() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: stores two function pointers in the shim's globals.
        unsafe { scsiport_sim_set_callbacks(on_notify, on_debug) };
    });
    // Referencing every export from code the machine runs keeps their object files in the link
    // whatever the order of the rlibs on the linker command line.
    std::hint::black_box(exports());
}

/// `ScsiPortInitialize` (`DDI:nf-srb-scsiportinitialize`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortInitialize(Argument1: PVOID, Argument2: PVOID, HwInitializationData: *mut HW_INITIALIZATION_DATA, HwContext: PVOID) -> ULONG {
    let _ = HwContext;
    guarded(0xC000_0001, "ScsiPortInitialize", || {
        let Some((m, _, _)) = current() else {
            eprintln!("scsiport-sim: ScsiPortInitialize outside DriverEntry run by the emulator");
            return 0xC000_0001;
        };
        m.trace(None, "port", &[("fn", J::Static("ScsiPortInitialize"))]);
        if m.port != crate::Port::ScsiPort {
            m.violation(None, Rule::InitializeArguments, [0, 0, 0], "ScsiPortInitialize on a Storport machine".into());
            return 0xC000_000D;
        }
        m.scsi_port_initialize(Argument1, Argument2, HwInitializationData)
    })
}

/// `ScsiPortGetPhysicalAddress` (`DDI:nf-srb-scsiportgetphysicaladdress`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortGetPhysicalAddress(HwDeviceExtension: PVOID, Srb: *mut SCSI_REQUEST_BLOCK, VirtualAddress: PVOID, Length: PULONG) -> SCSI_PHYSICAL_ADDRESS {
    guarded(SCSI_PHYSICAL_ADDRESS::default(), "ScsiPortGetPhysicalAddress", || {
        let Some((m, ad, _)) = resolve(HwDeviceExtension, "ScsiPortGetPhysicalAddress") else {
            return SCSI_PHYSICAL_ADDRESS::default();
        };
        SCSI_PHYSICAL_ADDRESS { QuadPart: m.get_physical_address(&ad, Srb as usize, VirtualAddress as usize, Length) }
    })
}

/// `ScsiPortGetVirtualAddress` (`DDI:nf-srb-scsiportgetvirtualaddress`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortGetVirtualAddress(HwDeviceExtension: PVOID, PhysicalAddress: SCSI_PHYSICAL_ADDRESS) -> PVOID {
    guarded(std::ptr::null_mut(), "ScsiPortGetVirtualAddress", || {
        let Some((m, ad, _)) = resolve(HwDeviceExtension, "ScsiPortGetVirtualAddress") else { return std::ptr::null_mut() };
        m.get_virtual_address(&ad, u64::try_from(PhysicalAddress.QuadPart).unwrap_or(0))
    })
}

/// `ScsiPortGetUncachedExtension` (`DDI:nf-srb-scsiportgetuncachedextension`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortGetUncachedExtension(HwDeviceExtension: PVOID, ConfigInfo: *mut PORT_CONFIGURATION_INFORMATION, NumberOfBytes: ULONG) -> PVOID {
    guarded(std::ptr::null_mut(), "ScsiPortGetUncachedExtension", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "ScsiPortGetUncachedExtension") else {
            return std::ptr::null_mut();
        };
        m.get_uncached_extension(&ad, routine, ConfigInfo, NumberOfBytes)
    })
}

/// `ScsiPortGetDeviceBase` (`DDI:nf-srb-scsiportgetdevicebase`): returns an address that must be
/// used only with `ScsiPortRead/Write*` (a direct dereference faults and is reported).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortGetDeviceBase(HwDeviceExtension: PVOID, BusType: INTERFACE_TYPE, SystemIoBusNumber: ULONG, IoAddress: SCSI_PHYSICAL_ADDRESS, NumberOfBytes: ULONG, InIoSpace: BOOLEAN) -> PVOID {
    let _ = (BusType, SystemIoBusNumber);
    guarded(std::ptr::null_mut(), "ScsiPortGetDeviceBase", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "ScsiPortGetDeviceBase") else { return std::ptr::null_mut() };
        m.get_device_base(&ad, routine, u64::try_from(IoAddress.QuadPart).unwrap_or(u64::MAX), NumberOfBytes, InIoSpace != FALSE)
    })
}

/// `ScsiPortFreeDeviceBase` (`DDI:nf-srb-scsiportfreedevicebase`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortFreeDeviceBase(HwDeviceExtension: PVOID, MappedAddress: PVOID) {
    guarded((), "ScsiPortFreeDeviceBase", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "ScsiPortFreeDeviceBase") else { return };
        m.free_device_base(&ad, routine, MappedAddress as usize);
    });
}

/// `ScsiPortGetBusData` (`DDI:nf-srb-scsiportgetbusdata`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortGetBusData(DeviceExtension: PVOID, BusDataType: ULONG, SystemIoBusNumber: ULONG, SlotNumber: ULONG, Buffer: PVOID, Length: ULONG) -> ULONG {
    let _ = (SystemIoBusNumber, SlotNumber);
    guarded(0, "ScsiPortGetBusData", || {
        let Some((m, ad, routine)) = resolve(DeviceExtension, "ScsiPortGetBusData") else { return 0 };
        m.get_bus_data(&ad, routine, BusDataType, Buffer, Length)
    })
}

/// `ScsiPortSetBusDataByOffset` (`DDI:nf-srb-scsiportsetbusdatabyoffset`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortSetBusDataByOffset(DeviceExtension: PVOID, BusDataType: ULONG, SystemIoBusNumber: ULONG, SlotNumber: ULONG, Buffer: PVOID, Offset: ULONG, Length: ULONG) -> ULONG {
    let _ = (SystemIoBusNumber, SlotNumber);
    guarded(0, "ScsiPortSetBusDataByOffset", || {
        let Some((m, ad, routine)) = resolve(DeviceExtension, "ScsiPortSetBusDataByOffset") else { return 0 };
        m.set_bus_data(&ad, routine, BusDataType, Buffer, Offset, Length)
    })
}

/// `ScsiPortValidateRange` (`DDI:nf-srb-scsiportvalidaterange`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortValidateRange(HwDeviceExtension: PVOID, BusType: INTERFACE_TYPE, SystemIoBusNumber: ULONG, IoAddress: SCSI_PHYSICAL_ADDRESS, NumberOfBytes: ULONG, InIoSpace: BOOLEAN) -> BOOLEAN {
    let _ = (BusType, SystemIoBusNumber);
    guarded(FALSE, "ScsiPortValidateRange", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "ScsiPortValidateRange") else { return FALSE };
        m.validate_range(&ad, routine, u64::try_from(IoAddress.QuadPart).unwrap_or(u64::MAX), NumberOfBytes, InIoSpace != FALSE)
    })
}

/// `ScsiPortGetLogicalUnit` (`DDI:nf-srb-scsiportgetlogicalunit`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortGetLogicalUnit(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR) -> PVOID {
    guarded(std::ptr::null_mut(), "ScsiPortGetLogicalUnit", || {
        let Some((m, ad, _)) = resolve(HwDeviceExtension, "ScsiPortGetLogicalUnit") else { return std::ptr::null_mut() };
        m.get_logical_unit(&ad, PathId, TargetId, Lun)
    })
}

/// `ScsiPortGetSrb` (`DDI:nf-srb-scsiportgetsrb`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortGetSrb(DeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, QueueTag: LONG) -> *mut SCSI_REQUEST_BLOCK {
    guarded(std::ptr::null_mut(), "ScsiPortGetSrb", || {
        let Some((m, ad, _)) = resolve(DeviceExtension, "ScsiPortGetSrb") else { return std::ptr::null_mut() };
        m.trace(Some(ad.index), "port", &[("fn", J::Static("ScsiPortGetSrb")), ("tag", J::from(QueueTag))]);
        m.get_srb(&ad, PathId, TargetId, Lun, QueueTag) as *mut SCSI_REQUEST_BLOCK
    })
}

/// `ScsiPortCompleteRequest` (`DDI:nf-srb-scsiportcompleterequest`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortCompleteRequest(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, SrbStatus: UCHAR) {
    guarded((), "ScsiPortCompleteRequest", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "ScsiPortCompleteRequest") else { return };
        m.trace(
            Some(ad.index),
            "port",
            &[
                ("fn", J::Static("ScsiPortCompleteRequest")),
                ("path", J::from(PathId)),
                ("target", J::from(TargetId)),
                ("lun", J::from(Lun)),
                ("status", J::Hex8(SrbStatus)),
            ],
        );
        m.complete_matching(&ad, routine, PathId, TargetId, Lun, SrbStatus);
    });
}

/// `ScsiPortStallExecution` (`DDI:nf-srb-scsiportstallexecution`): virtual time in the
/// deterministic schedule (the device keeps running meanwhile), a real wait otherwise.
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortStallExecution(Delay: ULONG) {
    guarded((), "ScsiPortStallExecution", || {
        let Some((m, ad, _)) = current() else { return };
        m.stall(ad.as_deref(), Delay);
    });
}

/// `ScsiPortLogError` (`DDI:nf-srb-scsiportlogerror`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortLogError(HwDeviceExtension: PVOID, Srb: *mut SCSI_REQUEST_BLOCK, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, ErrorCode: ULONG, UniqueId: ULONG) {
    let _ = (PathId, TargetId, Lun);
    guarded((), "ScsiPortLogError", || {
        let Some((m, ad, _)) = resolve(HwDeviceExtension, "ScsiPortLogError") else { return };
        m.log_error(&ad, Srb as usize, ErrorCode, UniqueId);
    });
}

/// `ScsiPortQuerySystemTime` (`DDI:nf-srb-scsiportquerysystemtime`): 100 ns units since 1601,
/// from machine time (so deterministic runs see the same values).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortQuerySystemTime(CurrentTime: PLARGE_INTEGER) {
    // 2024-01-01T00:00:00Z in 100 ns units since 1601-01-01.
    const EPOCH: i64 = 133_485_408_000_000_000;
    guarded((), "ScsiPortQuerySystemTime", || {
        if CurrentTime.is_null() {
            return;
        }
        let now = current().map_or(0, |(m, _, _)| m.now());
        let v = EPOCH.saturating_add(i64::try_from(now / 100).unwrap_or(0));
        // SAFETY: the miniport's LARGE_INTEGER out-parameter.
        unsafe { CurrentTime.write_unaligned(sys::LARGE_INTEGER { QuadPart: v }) };
    });
}

/// `ScsiPortConvertUlongToPhysicalAddress` (`DDI:nf-srb-scsiportconvertulongtophysicaladdress`).
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortConvertUlongToPhysicalAddress(UlongAddress: ULONG_PTR) -> SCSI_PHYSICAL_ADDRESS {
    SCSI_PHYSICAL_ADDRESS { QuadPart: i64::try_from(UlongAddress).unwrap_or(i64::MAX) }
}

/// `ScsiPortIoMapTransfer` (`DDI:nf-srb-scsiportiomaptransfer`): subordinate (system) DMA, which
/// a PCI bus master never uses; traced only.
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortIoMapTransfer(HwDeviceExtension: PVOID, Srb: *mut SCSI_REQUEST_BLOCK, LogicalAddress: PVOID, Length: ULONG) {
    let _ = (Srb, LogicalAddress);
    guarded((), "ScsiPortIoMapTransfer", || {
        let Some((m, ad, _)) = resolve(HwDeviceExtension, "ScsiPortIoMapTransfer") else { return };
        m.trace(Some(ad.index), "port", &[("fn", J::Static("ScsiPortIoMapTransfer")), ("length", J::from(Length))]);
    });
}

/// `ScsiPortFlushDma` (`DDI:nf-srb-scsiportflushdma`): subordinate DMA only; traced.
#[unsafe(no_mangle)]
pub extern "win64" fn ScsiPortFlushDma(DeviceExtension: PVOID) {
    guarded((), "ScsiPortFlushDma", || {
        let Some((m, ad, _)) = resolve(DeviceExtension, "ScsiPortFlushDma") else { return };
        m.trace(Some(ad.index), "port", &[("fn", J::Static("ScsiPortFlushDma"))]);
    });
}

/// The machine and adapter a register accessor works on: SCSI Port's accessors take only the
/// register; Storport's take the device extension too, which is cross-checked
/// (`DDI-storport:nf-storport-storportreadregisterulong`).
macro_rules! register_target {
    ($name:expr) => {
        $crate::ffi::resolve_register($name)
    };
    ($name:expr, $ext:ident) => {
        $crate::ffi::resolve($ext, $name).map(|(m, ad, _)| (m, ad))
    };
}

/// `*ReadRegister*`, `*ReadPort*` (with `, DeviceExtension` for Storport's form).
macro_rules! reg_read {
    ($name:ident, $ptr:ty, $ty:ty, $size:literal, $port:literal $(, $ext:ident)?) => {
        #[doc = concat!("`", stringify!($name), "`: decoded, checked (kind, width, range) and forwarded to the HBA.")]
        // Never inlined into the miniport (the release CLI is built with LTO): the accessor is
        // the port's, a call the miniport makes, and its body must not count as the miniport's
        // code nor shape its prologue; on Windows x64 the miniport's access is the inline
        // volatile load or store alone.
        #[inline(never)]
        #[unsafe(no_mangle)]
        pub extern "win64" fn $name($($ext: PVOID,)? Register: $ptr) -> $ty {
            $crate::ffi::guarded(0, stringify!($name), || {
                let Some((m, ad)) = $crate::ffi::register_target!(stringify!($name) $(, $ext)?) else { return 0 };
                let v = m.register_read(&ad, stringify!($name), Register as usize, $size, if $port { $crate::port::Via::Port } else { $crate::port::Via::Register }).unwrap_or(0);
                #[allow(clippy::cast_possible_truncation)]
                { v as $ty }
            })
        }
    };
}

/// `*WriteRegister*`, `*WritePort*`.
macro_rules! reg_write {
    ($name:ident, $ptr:ty, $ty:ty, $size:literal, $port:literal $(, $ext:ident)?) => {
        #[doc = concat!("`", stringify!($name), "`: decoded, checked (kind, width, range) and forwarded to the HBA.")]
        // Never inlined into the miniport (the release CLI is built with LTO): the accessor is
        // the port's, a call the miniport makes, and its body must not count as the miniport's
        // code nor shape its prologue; on Windows x64 the miniport's access is the inline
        // volatile load or store alone.
        #[inline(never)]
        #[unsafe(no_mangle)]
        pub extern "win64" fn $name($($ext: PVOID,)? Register: $ptr, Value: $ty) {
            $crate::ffi::guarded((), stringify!($name), || {
                let Some((m, ad)) = $crate::ffi::register_target!(stringify!($name) $(, $ext)?) else { return };
                let _ = m.register_write(&ad, stringify!($name), Register as usize, $size, if $port { $crate::port::Via::Port } else { $crate::port::Via::Register }, u32::from(Value));
            });
        }
    };
}

/// `*ReadRegisterBuffer*`, `*ReadPortBuffer*`.
macro_rules! reg_read_buf {
    ($name:ident, $ptr:ty, $ty:ty, $size:literal, $port:literal $(, $ext:ident)?) => {
        #[doc = concat!("`", stringify!($name), "`: `Count` reads (the same port, or consecutive registers).")]
        #[unsafe(no_mangle)]
        pub extern "win64" fn $name($($ext: PVOID,)? Register: $ptr, Buffer: $ptr, Count: ULONG) {
            $crate::ffi::guarded((), stringify!($name), || {
                let Some((m, ad)) = $crate::ffi::register_target!(stringify!($name) $(, $ext)?) else { return };
                let Some((bar, off)) = m.decode_register(&ad, Register as usize, $size, if $port { $crate::port::Via::Port } else { $crate::port::Via::Register }, Count, stringify!($name)) else { return };
                for i in 0..Count as usize {
                    let o = if $port { off } else { off + (i * $size) as u64 };
                    let v = ad.hba.read(bar, o, $size);
                    m.trace_register(&ad, stringify!($name), bar, o, v);
                    #[allow(clippy::cast_possible_truncation)]
                    // SAFETY: the miniport's buffer of `Count` elements.
                    unsafe { Buffer.add(i).write_unaligned(v as $ty) };
                }
            });
        }
    };
}

/// `*WriteRegisterBuffer*`, `*WritePortBuffer*`.
macro_rules! reg_write_buf {
    ($name:ident, $ptr:ty, $ty:ty, $size:literal, $port:literal $(, $ext:ident)?) => {
        #[doc = concat!("`", stringify!($name), "`: `Count` writes (the same port, or consecutive registers).")]
        #[unsafe(no_mangle)]
        pub extern "win64" fn $name($($ext: PVOID,)? Register: $ptr, Buffer: $ptr, Count: ULONG) {
            $crate::ffi::guarded((), stringify!($name), || {
                let Some((m, ad)) = $crate::ffi::register_target!(stringify!($name) $(, $ext)?) else { return };
                let Some((bar, off)) = m.decode_register(&ad, Register as usize, $size, if $port { $crate::port::Via::Port } else { $crate::port::Via::Register }, Count, stringify!($name)) else { return };
                for i in 0..Count as usize {
                    let o = if $port { off } else { off + (i * $size) as u64 };
                    // SAFETY: the miniport's buffer of `Count` elements.
                    let v = unsafe { Buffer.add(i).read_unaligned() };
                    m.trace_register(&ad, stringify!($name), bar, o, u32::from(v));
                    ad.hba.write(bar, o, $size, u32::from(v));
                }
                m.note_line(&ad);
            });
        }
    };
}

/// The `(name, address)` table of a port's exports.
macro_rules! export_table {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), $name as *const () as usize)),*]
    };
}

pub(crate) use {export_table, reg_read, reg_read_buf, reg_write, reg_write_buf, register_target};

reg_read!(ScsiPortReadRegisterUchar, PUCHAR, UCHAR, 1, false);
reg_read!(ScsiPortReadRegisterUshort, PUSHORT, USHORT, 2, false);
reg_read!(ScsiPortReadRegisterUlong, PULONG, ULONG, 4, false);
reg_read!(ScsiPortReadPortUchar, PUCHAR, UCHAR, 1, true);
reg_read!(ScsiPortReadPortUshort, PUSHORT, USHORT, 2, true);
reg_read!(ScsiPortReadPortUlong, PULONG, ULONG, 4, true);
reg_write!(ScsiPortWriteRegisterUchar, PUCHAR, UCHAR, 1, false);
reg_write!(ScsiPortWriteRegisterUshort, PUSHORT, USHORT, 2, false);
reg_write!(ScsiPortWriteRegisterUlong, PULONG, ULONG, 4, false);
reg_write!(ScsiPortWritePortUchar, PUCHAR, UCHAR, 1, true);
reg_write!(ScsiPortWritePortUshort, PUSHORT, USHORT, 2, true);
reg_write!(ScsiPortWritePortUlong, PULONG, ULONG, 4, true);
reg_read_buf!(ScsiPortReadRegisterBufferUchar, PUCHAR, UCHAR, 1, false);
reg_read_buf!(ScsiPortReadRegisterBufferUshort, PUSHORT, USHORT, 2, false);
reg_read_buf!(ScsiPortReadRegisterBufferUlong, PULONG, ULONG, 4, false);
reg_read_buf!(ScsiPortReadPortBufferUchar, PUCHAR, UCHAR, 1, true);
reg_read_buf!(ScsiPortReadPortBufferUshort, PUSHORT, USHORT, 2, true);
reg_read_buf!(ScsiPortReadPortBufferUlong, PULONG, ULONG, 4, true);
reg_write_buf!(ScsiPortWriteRegisterBufferUchar, PUCHAR, UCHAR, 1, false);
reg_write_buf!(ScsiPortWriteRegisterBufferUshort, PUSHORT, USHORT, 2, false);
reg_write_buf!(ScsiPortWriteRegisterBufferUlong, PULONG, ULONG, 4, false);
reg_write_buf!(ScsiPortWritePortBufferUchar, PUCHAR, UCHAR, 1, true);
reg_write_buf!(ScsiPortWritePortBufferUshort, PUSHORT, USHORT, 2, true);
reg_write_buf!(ScsiPortWritePortBufferUlong, PULONG, ULONG, 4, true);

unsafe extern "win64" {
    // The C shim's variadic entry points (csrc/notify.c), for their addresses.
    fn ScsiPortNotification(NotificationType: i32, HwDeviceExtension: PVOID, ...);
    fn ScsiDebugPrint(DebugPrintLevel: ULONG, DebugMessage: *const std::ffi::c_char, ...);
}

/// Every routine the emulated `scsiport.sys` exports, by name: what the PE loader resolves a
/// miniport image's imports against, and what `link()` references so the linker keeps them.
pub(crate) fn exports() -> &'static [(&'static str, usize)] {
    static TABLE: std::sync::OnceLock<Vec<(&'static str, usize)>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        export_table![
            ScsiPortNotification,
            ScsiDebugPrint,
            ScsiPortInitialize,
            ScsiPortGetPhysicalAddress,
            ScsiPortGetVirtualAddress,
            ScsiPortGetUncachedExtension,
            ScsiPortGetDeviceBase,
            ScsiPortFreeDeviceBase,
            ScsiPortGetBusData,
            ScsiPortSetBusDataByOffset,
            ScsiPortValidateRange,
            ScsiPortGetLogicalUnit,
            ScsiPortGetSrb,
            ScsiPortCompleteRequest,
            ScsiPortStallExecution,
            ScsiPortLogError,
            ScsiPortQuerySystemTime,
            ScsiPortConvertUlongToPhysicalAddress,
            ScsiPortIoMapTransfer,
            ScsiPortFlushDma,
            ScsiPortReadRegisterUchar,
            ScsiPortReadRegisterUshort,
            ScsiPortReadRegisterUlong,
            ScsiPortReadPortUchar,
            ScsiPortReadPortUshort,
            ScsiPortReadPortUlong,
            ScsiPortWriteRegisterUchar,
            ScsiPortWriteRegisterUshort,
            ScsiPortWriteRegisterUlong,
            ScsiPortWritePortUchar,
            ScsiPortWritePortUshort,
            ScsiPortWritePortUlong,
            ScsiPortReadRegisterBufferUchar,
            ScsiPortReadRegisterBufferUshort,
            ScsiPortReadRegisterBufferUlong,
            ScsiPortReadPortBufferUchar,
            ScsiPortReadPortBufferUshort,
            ScsiPortReadPortBufferUlong,
            ScsiPortWriteRegisterBufferUchar,
            ScsiPortWriteRegisterBufferUshort,
            ScsiPortWriteRegisterBufferUlong,
            ScsiPortWritePortBufferUchar,
            ScsiPortWritePortBufferUshort,
            ScsiPortWritePortBufferUlong,
        ]
    })
}

/// `SCSIPORT.SYS` as the PE loader sees it.
#[must_use]
pub fn scsiport_exports() -> crate::pe::PortExports {
    crate::pe::PortExports { module: "SCSIPORT.SYS", symbols: exports() }
}
