//! The `StorPort*` symbols a Storport miniport imports, defined with C linkage so that a miniport
//! crate linked with this one runs unchanged (`scsiport-sys` declares them `extern` on
//! non-Windows hosts), and `storport_exports()`, `STORPORT.SYS` as the PE loader resolves an
//! image's imports. The variadic `StorPortNotification` and `StorPortDebugPrint` are in the C
//! shim (`csrc/notify.c`).
//!
//! Every service finds its machine through the current call and cross-checks the device
//! extension, as `ffi.rs` does for SCSI Port; the register accessors take the device extension
//! too (`DDI-storport:nf-storport-storportreadregisterulong`).
#![allow(non_snake_case, clippy::missing_safety_doc, clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use scsiport_sys as sys;
use sys::storport as stor;
use sys::{BOOLEAN, FALSE, INTERFACE_TYPE, LARGE_INTEGER, LONG, PUCHAR, PULONG, PUSHORT, PVOID, SCSI_REQUEST_BLOCK, UCHAR, ULONG, ULONG_PTR, USHORT};

use crate::ffi::{DebugFn, NotifyFn, export_table, forward_debug_print, forward_notification, guarded, reg_read, reg_read_buf, reg_write, reg_write_buf, resolve};
use crate::port::{Port, current};
use crate::trace::J;
use crate::verifier::Rule;

unsafe extern "C" {
    fn scsiport_sim_set_stor_callbacks(notify: NotifyFn, debug: DebugFn);
}

extern "C" fn on_stor_notify(ty: i32, ext: PVOID, a0: usize, a1: usize, a2: usize, a3: usize, _n: i32) {
    forward_notification("StorPortNotification", Port::Storport, ty, ext, |m, ad, routine| {
        m.stor_notification(ad, routine, ty, [a0, a1, a2, a3]);
    });
}

extern "C" fn on_stor_debug(level: u32, text: *const std::ffi::c_char) {
    forward_debug_print("StorPortDebugPrint", level, text);
}

/// Connects the C shim's Storport entry points (idempotent).
pub(crate) fn link() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: stores two function pointers in the shim's globals.
        unsafe { scsiport_sim_set_stor_callbacks(on_stor_notify, on_stor_debug) };
    });
    std::hint::black_box(exports());
}

/// `StorPortInitialize` (`DDI-storport:nf-storport-storportinitialize`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortInitialize(Argument1: PVOID, Argument2: PVOID, HwInitializationData: stor::PHW_INITIALIZATION_DATA, HwContext: PVOID) -> ULONG {
    let _ = HwContext;
    guarded(0xC000_0001, "StorPortInitialize", || {
        let Some((m, _, _)) = current() else {
            eprintln!("scsiport-sim: StorPortInitialize outside DriverEntry run by the emulator");
            return 0xC000_0001;
        };
        m.trace(None, "port", &[("fn", J::Static("StorPortInitialize"))]);
        if m.port != Port::Storport {
            m.violation(None, Rule::InitializeArguments, [0, 0, 0], "StorPortInitialize on a SCSI Port machine".into());
            return 0xC000_000D;
        }
        m.stor_port_initialize(Argument1, Argument2, HwInitializationData)
    })
}

/// `StorPortGetDeviceBase` (`DDI-storport:nf-storport-storportgetdevicebase`). A memory range's
/// address may be dereferenced directly, as `storport.h`'s x64 accessor macros do; each access
/// is emulated against the HBA.
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortGetDeviceBase(HwDeviceExtension: PVOID, BusType: INTERFACE_TYPE, SystemIoBusNumber: ULONG, IoAddress: LARGE_INTEGER, NumberOfBytes: ULONG, InIoSpace: BOOLEAN) -> PVOID {
    let _ = (BusType, SystemIoBusNumber);
    guarded(std::ptr::null_mut(), "StorPortGetDeviceBase", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "StorPortGetDeviceBase") else { return std::ptr::null_mut() };
        m.get_device_base(&ad, routine, u64::try_from(IoAddress.QuadPart).unwrap_or(u64::MAX), NumberOfBytes, InIoSpace != FALSE)
    })
}

/// `StorPortFreeDeviceBase` (`DDI-storport:nf-storport-storportfreedevicebase`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortFreeDeviceBase(HwDeviceExtension: PVOID, MappedAddress: PVOID) {
    guarded((), "StorPortFreeDeviceBase", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "StorPortFreeDeviceBase") else { return };
        m.free_device_base(&ad, routine, MappedAddress as usize);
    });
}

/// `StorPortGetUncachedExtension` (`DDI-storport:nf-storport-storportgetuncachedextension`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortGetUncachedExtension(HwDeviceExtension: PVOID, ConfigInfo: stor::PPORT_CONFIGURATION_INFORMATION, NumberOfBytes: ULONG) -> PVOID {
    guarded(std::ptr::null_mut(), "StorPortGetUncachedExtension", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "StorPortGetUncachedExtension") else { return std::ptr::null_mut() };
        m.stor_get_uncached_extension(&ad, routine, ConfigInfo, NumberOfBytes)
    })
}

/// `StorPortGetPhysicalAddress` (`DDI-storport:nf-storport-storportgetphysicaladdress`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortGetPhysicalAddress(HwDeviceExtension: PVOID, Srb: *mut SCSI_REQUEST_BLOCK, VirtualAddress: PVOID, Length: PULONG) -> LARGE_INTEGER {
    guarded(LARGE_INTEGER::default(), "StorPortGetPhysicalAddress", || {
        let Some((m, ad, _)) = resolve(HwDeviceExtension, "StorPortGetPhysicalAddress") else { return LARGE_INTEGER::default() };
        LARGE_INTEGER { QuadPart: m.get_physical_address(&ad, Srb as usize, VirtualAddress as usize, Length) }
    })
}

/// `StorPortGetVirtualAddress` (`DDI-storport:nf-storport-storportgetvirtualaddress`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortGetVirtualAddress(HwDeviceExtension: PVOID, PhysicalAddress: LARGE_INTEGER) -> PVOID {
    guarded(std::ptr::null_mut(), "StorPortGetVirtualAddress", || {
        let Some((m, ad, _)) = resolve(HwDeviceExtension, "StorPortGetVirtualAddress") else { return std::ptr::null_mut() };
        m.get_virtual_address(&ad, u64::try_from(PhysicalAddress.QuadPart).unwrap_or(0))
    })
}

/// `StorPortGetScatterGatherList` (`DDI-storport:nf-storport-storportgetscattergatherlist`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortGetScatterGatherList(DeviceExtension: PVOID, Srb: *mut SCSI_REQUEST_BLOCK) -> stor::PSTOR_SCATTER_GATHER_LIST {
    guarded(std::ptr::null_mut(), "StorPortGetScatterGatherList", || {
        let Some((m, ad, _)) = resolve(DeviceExtension, "StorPortGetScatterGatherList") else { return std::ptr::null_mut() };
        m.stor_get_scatter_gather_list(&ad, Srb as usize).cast()
    })
}

/// `StorPortGetLogicalUnit` (`DDI-storport:nf-storport-storportgetlogicalunit`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortGetLogicalUnit(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR) -> PVOID {
    guarded(std::ptr::null_mut(), "StorPortGetLogicalUnit", || {
        let Some((m, ad, _)) = resolve(HwDeviceExtension, "StorPortGetLogicalUnit") else { return std::ptr::null_mut() };
        m.get_logical_unit(&ad, PathId, TargetId, Lun)
    })
}

/// `StorPortGetSrb` (`storport.sys` exports it; the signature is `ScsiPortGetSrb`'s).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortGetSrb(DeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, QueueTag: LONG) -> *mut SCSI_REQUEST_BLOCK {
    guarded(std::ptr::null_mut(), "StorPortGetSrb", || {
        let Some((m, ad, _)) = resolve(DeviceExtension, "StorPortGetSrb") else { return std::ptr::null_mut() };
        m.trace(Some(ad.index), "port", &[("fn", J::Static("StorPortGetSrb")), ("tag", J::from(QueueTag))]);
        m.get_srb(&ad, PathId, TargetId, Lun, QueueTag) as *mut SCSI_REQUEST_BLOCK
    })
}

/// `StorPortSynchronizeAccess` (`DDI-storport:nf-storport-storportsynchronizeaccess`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortSynchronizeAccess(HwDeviceExtension: PVOID, SynchronizedAccessRoutine: stor::PSTOR_SYNCHRONIZED_ACCESS, Context: PVOID) -> BOOLEAN {
    guarded(FALSE, "StorPortSynchronizeAccess", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "StorPortSynchronizeAccess") else { return FALSE };
        let f = SynchronizedAccessRoutine.map_or(0, |f| f as usize);
        m.stor_synchronize_access(&ad, routine, f, Context as usize)
    })
}

/// `StorPortStallExecution` (`DDI-storport:nf-storport-storportstallexecution`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortStallExecution(Delay: ULONG) {
    guarded((), "StorPortStallExecution", || {
        let Some((m, ad, _)) = current() else { return };
        m.stall(ad.as_deref(), Delay);
    });
}

/// `StorPortLogError` (`DDI-storport:nf-storport-storportlogerror`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortLogError(HwDeviceExtension: PVOID, Srb: *mut SCSI_REQUEST_BLOCK, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, ErrorCode: ULONG, UniqueId: ULONG) {
    let _ = (PathId, TargetId, Lun);
    guarded((), "StorPortLogError", || {
        let Some((m, ad, _)) = resolve(HwDeviceExtension, "StorPortLogError") else { return };
        m.log_error(&ad, Srb as usize, ErrorCode, UniqueId);
    });
}

/// `StorPortCompleteRequest` (`DDI-storport:nf-storport-storportcompleterequest`): completes
/// every outstanding request of the address; a warning, since Static Driver Verifier forbids it
/// (`DT:storport-storportcompleterequest`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortCompleteRequest(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, SrbStatus: UCHAR) {
    guarded((), "StorPortCompleteRequest", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "StorPortCompleteRequest") else { return };
        m.trace(
            Some(ad.index),
            "port",
            &[
                ("fn", J::Static("StorPortCompleteRequest")),
                ("path", J::from(PathId)),
                ("target", J::from(TargetId)),
                ("lun", J::from(Lun)),
                ("status", J::Hex8(SrbStatus)),
            ],
        );
        m.violation(Some(ad.index), Rule::StorCompleteRequestCalled, [0, 0, 0], "StorPortCompleteRequest instead of RequestComplete per request".into());
        m.complete_matching(&ad, routine, PathId, TargetId, Lun, SrbStatus);
    });
}

/// `StorPortGetBusData` (`DDI-storport:nf-storport-storportgetbusdata`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortGetBusData(DeviceExtension: PVOID, BusDataType: ULONG, SystemIoBusNumber: ULONG, SlotNumber: ULONG, Buffer: PVOID, Length: ULONG) -> ULONG {
    let _ = (SystemIoBusNumber, SlotNumber);
    guarded(0, "StorPortGetBusData", || {
        let Some((m, ad, routine)) = resolve(DeviceExtension, "StorPortGetBusData") else { return 0 };
        m.get_bus_data(&ad, routine, BusDataType, Buffer, Length)
    })
}

/// `StorPortSetBusDataByOffset` (`DDI-storport:nf-storport-storportsetbusdatabyoffset`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortSetBusDataByOffset(DeviceExtension: PVOID, BusDataType: ULONG, SystemIoBusNumber: ULONG, SlotNumber: ULONG, Buffer: PVOID, Offset: ULONG, Length: ULONG) -> ULONG {
    let _ = (SystemIoBusNumber, SlotNumber);
    guarded(0, "StorPortSetBusDataByOffset", || {
        let Some((m, ad, routine)) = resolve(DeviceExtension, "StorPortSetBusDataByOffset") else { return 0 };
        m.set_bus_data(&ad, routine, BusDataType, Buffer, Offset, Length)
    })
}

/// `StorPortValidateRange` (`DDI-storport:nf-storport-storportvalidaterange`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortValidateRange(HwDeviceExtension: PVOID, BusType: INTERFACE_TYPE, SystemIoBusNumber: ULONG, IoAddress: LARGE_INTEGER, NumberOfBytes: ULONG, InIoSpace: BOOLEAN) -> BOOLEAN {
    let _ = (BusType, SystemIoBusNumber);
    guarded(FALSE, "StorPortValidateRange", || {
        let Some((m, ad, routine)) = resolve(HwDeviceExtension, "StorPortValidateRange") else { return FALSE };
        m.validate_range(&ad, routine, u64::try_from(IoAddress.QuadPart).unwrap_or(u64::MAX), NumberOfBytes, InIoSpace != FALSE)
    })
}

/// `StorPortMoveMemory` (`DDI-storport:nf-storport-storportmovememory`): `memmove`.
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortMoveMemory(WriteBuffer: PVOID, ReadBuffer: PVOID, Length: ULONG) {
    if WriteBuffer.is_null() || ReadBuffer.is_null() {
        return;
    }
    // SAFETY: the miniport's buffers of `Length` bytes; `copy` allows overlap, as memmove does.
    unsafe { std::ptr::copy(ReadBuffer.cast::<u8>(), WriteBuffer.cast::<u8>(), Length as usize) };
}

/// `StorPortConvertUlongToPhysicalAddress` (`DDI-storport:nf-storport-storportconvertulongtophysicaladdress`).
#[unsafe(no_mangle)]
pub extern "win64" fn StorPortConvertUlongToPhysicalAddress(UlongAddress: ULONG_PTR) -> LARGE_INTEGER {
    LARGE_INTEGER { QuadPart: i64::try_from(UlongAddress).unwrap_or(i64::MAX) }
}

macro_rules! queue_control {
    ($($name:ident ($($arg:ident: $ty:ty),*) => |$m:ident, $ad:ident| $body:expr;)*) => {$(
        #[doc = concat!("`", stringify!($name), "` (`KG:storport-queue-management`).")]
        #[unsafe(no_mangle)]
        pub extern "win64" fn $name(HwDeviceExtension: PVOID, $($arg: $ty),*) -> BOOLEAN {
            guarded(FALSE, stringify!($name), || {
                let Some(($m, $ad, _)) = resolve(HwDeviceExtension, stringify!($name)) else { return FALSE };
                BOOLEAN::from($body)
            })
        }
    )*};
}

queue_control! {
    StorPortPause(TimeOut: ULONG) => |m, ad| m.stor_queue_control(&ad, "StorPortPause", None, TimeOut);
    StorPortResume() => |m, ad| m.stor_queue_control(&ad, "StorPortResume", None, 0);
    StorPortBusy(RequestsToComplete: ULONG) => |m, ad| m.stor_queue_control(&ad, "StorPortBusy", None, RequestsToComplete);
    StorPortReady() => |m, ad| m.stor_queue_control(&ad, "StorPortReady", None, 0);
    StorPortPauseDevice(PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, TimeOut: ULONG) =>
        |m, ad| m.stor_queue_control(&ad, "StorPortPauseDevice", Some((PathId, TargetId, Lun)), TimeOut);
    StorPortResumeDevice(PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR) =>
        |m, ad| m.stor_queue_control(&ad, "StorPortResumeDevice", Some((PathId, TargetId, Lun)), 0);
    StorPortDeviceBusy(PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, RequestsToComplete: ULONG) =>
        |m, ad| m.stor_queue_control(&ad, "StorPortDeviceBusy", Some((PathId, TargetId, Lun)), RequestsToComplete);
    StorPortDeviceReady(PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR) =>
        |m, ad| m.stor_queue_control(&ad, "StorPortDeviceReady", Some((PathId, TargetId, Lun)), 0);
}

reg_read!(StorPortReadRegisterUchar, PUCHAR, UCHAR, 1, false, HwDeviceExtension);
reg_read!(StorPortReadRegisterUshort, PUSHORT, USHORT, 2, false, HwDeviceExtension);
reg_read!(StorPortReadRegisterUlong, PULONG, ULONG, 4, false, HwDeviceExtension);
reg_read!(StorPortReadPortUchar, PUCHAR, UCHAR, 1, true, HwDeviceExtension);
reg_read!(StorPortReadPortUshort, PUSHORT, USHORT, 2, true, HwDeviceExtension);
reg_read!(StorPortReadPortUlong, PULONG, ULONG, 4, true, HwDeviceExtension);
reg_write!(StorPortWriteRegisterUchar, PUCHAR, UCHAR, 1, false, HwDeviceExtension);
reg_write!(StorPortWriteRegisterUshort, PUSHORT, USHORT, 2, false, HwDeviceExtension);
reg_write!(StorPortWriteRegisterUlong, PULONG, ULONG, 4, false, HwDeviceExtension);
reg_write!(StorPortWritePortUchar, PUCHAR, UCHAR, 1, true, HwDeviceExtension);
reg_write!(StorPortWritePortUshort, PUSHORT, USHORT, 2, true, HwDeviceExtension);
reg_write!(StorPortWritePortUlong, PULONG, ULONG, 4, true, HwDeviceExtension);
reg_read_buf!(StorPortReadRegisterBufferUchar, PUCHAR, UCHAR, 1, false, HwDeviceExtension);
reg_read_buf!(StorPortReadRegisterBufferUshort, PUSHORT, USHORT, 2, false, HwDeviceExtension);
reg_read_buf!(StorPortReadRegisterBufferUlong, PULONG, ULONG, 4, false, HwDeviceExtension);
reg_read_buf!(StorPortReadPortBufferUchar, PUCHAR, UCHAR, 1, true, HwDeviceExtension);
reg_read_buf!(StorPortReadPortBufferUshort, PUSHORT, USHORT, 2, true, HwDeviceExtension);
reg_read_buf!(StorPortReadPortBufferUlong, PULONG, ULONG, 4, true, HwDeviceExtension);
reg_write_buf!(StorPortWriteRegisterBufferUchar, PUCHAR, UCHAR, 1, false, HwDeviceExtension);
reg_write_buf!(StorPortWriteRegisterBufferUshort, PUSHORT, USHORT, 2, false, HwDeviceExtension);
reg_write_buf!(StorPortWriteRegisterBufferUlong, PULONG, ULONG, 4, false, HwDeviceExtension);
reg_write_buf!(StorPortWritePortBufferUchar, PUCHAR, UCHAR, 1, true, HwDeviceExtension);
reg_write_buf!(StorPortWritePortBufferUshort, PUSHORT, USHORT, 2, true, HwDeviceExtension);
reg_write_buf!(StorPortWritePortBufferUlong, PULONG, ULONG, 4, true, HwDeviceExtension);

unsafe extern "win64" {
    // The C shim's variadic entry points (csrc/notify.c), for their addresses.
    fn StorPortNotification(NotificationType: i32, HwDeviceExtension: PVOID, ...);
    fn StorPortDebugPrint(DebugPrintLevel: ULONG, DebugMessage: *const std::ffi::c_char, ...);
}

/// Every routine the emulated `storport.sys` exports, by name.
pub(crate) fn exports() -> &'static [(&'static str, usize)] {
    static TABLE: std::sync::OnceLock<Vec<(&'static str, usize)>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        export_table![
            StorPortNotification,
            StorPortDebugPrint,
            StorPortInitialize,
            StorPortGetDeviceBase,
            StorPortFreeDeviceBase,
            StorPortGetUncachedExtension,
            StorPortGetPhysicalAddress,
            StorPortGetVirtualAddress,
            StorPortGetScatterGatherList,
            StorPortGetLogicalUnit,
            StorPortGetSrb,
            StorPortSynchronizeAccess,
            StorPortStallExecution,
            StorPortLogError,
            StorPortCompleteRequest,
            StorPortGetBusData,
            StorPortSetBusDataByOffset,
            StorPortValidateRange,
            StorPortMoveMemory,
            StorPortConvertUlongToPhysicalAddress,
            StorPortPause,
            StorPortResume,
            StorPortBusy,
            StorPortReady,
            StorPortPauseDevice,
            StorPortResumeDevice,
            StorPortDeviceBusy,
            StorPortDeviceReady,
            StorPortReadRegisterUchar,
            StorPortReadRegisterUshort,
            StorPortReadRegisterUlong,
            StorPortReadPortUchar,
            StorPortReadPortUshort,
            StorPortReadPortUlong,
            StorPortWriteRegisterUchar,
            StorPortWriteRegisterUshort,
            StorPortWriteRegisterUlong,
            StorPortWritePortUchar,
            StorPortWritePortUshort,
            StorPortWritePortUlong,
            StorPortReadRegisterBufferUchar,
            StorPortReadRegisterBufferUshort,
            StorPortReadRegisterBufferUlong,
            StorPortReadPortBufferUchar,
            StorPortReadPortBufferUshort,
            StorPortReadPortBufferUlong,
            StorPortWriteRegisterBufferUchar,
            StorPortWriteRegisterBufferUshort,
            StorPortWriteRegisterBufferUlong,
            StorPortWritePortBufferUchar,
            StorPortWritePortBufferUshort,
            StorPortWritePortBufferUlong,
        ]
    })
}

/// `STORPORT.SYS` as the PE loader sees it: load a Storport miniport image with
/// `pe::load(name, bytes, &storport_exports())` and run it on a machine built with
/// `MachineBuilder::port(Port::Storport)`.
#[must_use]
pub fn storport_exports() -> crate::pe::PortExports {
    crate::pe::PortExports { module: "STORPORT.SYS", symbols: exports() }
}
