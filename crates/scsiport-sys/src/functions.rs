//! The `ScsiPort*` routines a miniport may call (`srb.h`), imported from `scsiport.sys`.
//!
//! On Windows they are `raw-dylib` imports of `scsiport.sys` (the `+verbatim` name is the module
//! the loader resolves them in), so the build needs no import library. Everywhere else the SCSI
//! Port emulator (`scsiport-sim`) defines the same symbols, so a miniport built for Linux runs
//! unchanged on it. The register and port accessors are in `registers.rs`, because on x64 they
//! are not imports.
//!
//! Every routine uses the Windows x64 calling convention (`extern "win64"`), which is what
//! `NTAPI`, `__cdecl` and variadic `__cdecl` all are on x64, so the emulator calls and is called
//! by a Linux build of the driver exactly as Windows does.

use crate::srb::{
    PHW_INITIALIZATION_DATA, PPORT_CONFIGURATION_INFORMATION, PSCSI_REQUEST_BLOCK, SCSI_NOTIFICATION_TYPE,
    SCSI_PHYSICAL_ADDRESS,
};
use crate::types::{BOOLEAN, INTERFACE_TYPE, LONG, PCCHAR, PLARGE_INTEGER, PVOID, UCHAR, ULONG, ULONG_PTR};
#[cfg(windows)]
use crate::types::PULONG;

#[cfg_attr(windows, link(name = "scsiport.sys", kind = "raw-dylib", modifiers = "+verbatim"))]
unsafe extern "win64" {
    /// Registers the miniport with the port; callable only from `DriverEntry` (`nf-srb-scsiportinitialize`).
    pub fn ScsiPortInitialize(
        Argument1: PVOID,
        Argument2: PVOID,
        HwInitializationData: PHW_INITIALIZATION_DATA,
        HwContext: PVOID,
    ) -> ULONG;

    /// Completes every active request matching the address with `SrbStatus` (`nf-srb-scsiportcompleterequest`).
    pub fn ScsiPortCompleteRequest(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, SrbStatus: UCHAR);

    /// Bus-relative address to `SCSI_PHYSICAL_ADDRESS` (`nf-srb-scsiportconvertulongtophysicaladdress`).
    pub fn ScsiPortConvertUlongToPhysicalAddress(UlongAddress: ULONG_PTR) -> SCSI_PHYSICAL_ADDRESS;

    /// Ends a subordinate-DMA transfer (`nf-srb-scsiportflushdma`).
    pub fn ScsiPortFlushDma(DeviceExtension: PVOID);

    /// Unmaps a range from `ScsiPortGetDeviceBase`; only from `HwScsiFindAdapter` (`nf-srb-scsiportfreedevicebase`).
    pub fn ScsiPortFreeDeviceBase(HwDeviceExtension: PVOID, MappedAddress: PVOID);

    /// Reads bus configuration data, e.g. PCI config space (`nf-srb-scsiportgetbusdata`).
    pub fn ScsiPortGetBusData(
        DeviceExtension: PVOID,
        BusDataType: ULONG,
        SystemIoBusNumber: ULONG,
        SlotNumber: ULONG,
        Buffer: PVOID,
        Length: ULONG,
    ) -> ULONG;

    /// Maps an access range; only from `HwScsiFindAdapter` or `ScsiSetRunningConfig` (`nf-srb-scsiportgetdevicebase`).
    pub fn ScsiPortGetDeviceBase(
        HwDeviceExtension: PVOID,
        BusType: INTERFACE_TYPE,
        SystemIoBusNumber: ULONG,
        IoAddress: SCSI_PHYSICAL_ADDRESS,
        NumberOfBytes: ULONG,
        InIoSpace: BOOLEAN,
    ) -> PVOID;

    /// The LU extension of a logical unit, or NULL (`nf-srb-scsiportgetlogicalunit`).
    pub fn ScsiPortGetLogicalUnit(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR) -> PVOID;

    /// An active request of a logical unit, by queue tag (`nf-srb-scsiportgetsrb`).
    pub fn ScsiPortGetSrb(DeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, QueueTag: LONG)
    -> PSCSI_REQUEST_BLOCK;

    /// The common buffer of a bus-master HBA; once, only from `HwScsiFindAdapter`
    /// (`nf-srb-scsiportgetuncachedextension`).
    pub fn ScsiPortGetUncachedExtension(
        HwDeviceExtension: PVOID,
        ConfigInfo: PPORT_CONFIGURATION_INFORMATION,
        NumberOfBytes: ULONG,
    ) -> PVOID;

    /// Virtual address of a physical address inside the uncached or an SRB extension
    /// (`nf-srb-scsiportgetvirtualaddress`).
    pub fn ScsiPortGetVirtualAddress(HwDeviceExtension: PVOID, PhysicalAddress: SCSI_PHYSICAL_ADDRESS) -> PVOID;

    /// Starts a subordinate-DMA transfer (`nf-srb-scsiportiomaptransfer`).
    pub fn ScsiPortIoMapTransfer(HwDeviceExtension: PVOID, Srb: PSCSI_REQUEST_BLOCK, LogicalAddress: PVOID, Length: ULONG);

    /// Current system time in 100 ns units since 1601 (`nf-srb-scsiportquerysystemtime`).
    pub fn ScsiPortQuerySystemTime(CurrentTime: PLARGE_INTEGER);

    /// Writes bus configuration data, e.g. PCI config space (`nf-srb-scsiportsetbusdatabyoffset`).
    pub fn ScsiPortSetBusDataByOffset(
        DeviceExtension: PVOID,
        BusDataType: ULONG,
        SystemIoBusNumber: ULONG,
        SlotNumber: ULONG,
        Buffer: PVOID,
        Offset: ULONG,
        Length: ULONG,
    ) -> ULONG;

    /// Busy-waits `Delay` microseconds; keep each call and each routine's total under 1 ms
    /// (`nf-srb-scsiportstallexecution`).
    pub fn ScsiPortStallExecution(Delay: ULONG);

    /// Whether a range may be mapped; only from `HwScsiFindAdapter` (`nf-srb-scsiportvalidaterange`).
    pub fn ScsiPortValidateRange(
        HwDeviceExtension: PVOID,
        BusType: INTERFACE_TYPE,
        SystemIoBusNumber: ULONG,
        IoAddress: SCSI_PHYSICAL_ADDRESS,
        NumberOfBytes: ULONG,
        InIoSpace: BOOLEAN,
    ) -> BOOLEAN;
}

// The two routines of the I/O path that the SCSI Port emulator writes in Rust. On Windows they
// are imports like the others.
#[cfg(windows)]
#[link(name = "scsiport.sys", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "win64" {
    /// Physical address and contiguous length of a data buffer, sense buffer or extension
    /// address (`nf-srb-scsiportgetphysicaladdress`).
    pub fn ScsiPortGetPhysicalAddress(
        HwDeviceExtension: PVOID,
        Srb: PSCSI_REQUEST_BLOCK,
        VirtualAddress: PVOID,
        Length: PULONG,
    ) -> SCSI_PHYSICAL_ADDRESS;

    /// Writes an entry to the system event log (`nf-srb-scsiportlogerror`).
    pub fn ScsiPortLogError(
        HwDeviceExtension: PVOID,
        Srb: PSCSI_REQUEST_BLOCK,
        PathId: UCHAR,
        TargetId: UCHAR,
        Lun: UCHAR,
        ErrorCode: ULONG,
        UniqueId: ULONG,
    );
}

/// Everywhere but Windows the emulator defines `ScsiPortGetPhysicalAddress` and
/// `ScsiPortLogError` in Rust in the same program, and link-time optimisation would inline their
/// bodies into the driver's routines. Those are `extern "win64"`, and the emulator's internals
/// they would then call are System V functions, which may clobber xmm6–xmm15 (callee-saved in the
/// Windows x64 convention only): each routine's prologue would save and restore all ten, some 20
/// instructions per call that no Windows build has, since an import cannot be inlined. So here
/// they are called through a pointer read with a volatile load, as a call through the import
/// address table reads its pointer on Windows: the optimiser cannot see through it, and the
/// call stays a call to an `extern "win64"` routine.
#[cfg(not(windows))]
mod through_pointer {
    use crate::srb::{PSCSI_REQUEST_BLOCK, SCSI_PHYSICAL_ADDRESS};
    use crate::types::{PULONG, PVOID, UCHAR, ULONG};

    unsafe extern "win64" {
        #[link_name = "ScsiPortGetPhysicalAddress"]
        fn get_physical_address(
            HwDeviceExtension: PVOID,
            Srb: PSCSI_REQUEST_BLOCK,
            VirtualAddress: PVOID,
            Length: PULONG,
        ) -> SCSI_PHYSICAL_ADDRESS;

        #[link_name = "ScsiPortLogError"]
        fn log_error(
            HwDeviceExtension: PVOID,
            Srb: PSCSI_REQUEST_BLOCK,
            PathId: UCHAR,
            TargetId: UCHAR,
            Lun: UCHAR,
            ErrorCode: ULONG,
            UniqueId: ULONG,
        );
    }

    type GetPhysicalAddress = unsafe extern "win64" fn(PVOID, PSCSI_REQUEST_BLOCK, PVOID, PULONG) -> SCSI_PHYSICAL_ADDRESS;
    type LogError = unsafe extern "win64" fn(PVOID, PSCSI_REQUEST_BLOCK, UCHAR, UCHAR, UCHAR, ULONG, ULONG);

    static GET_PHYSICAL_ADDRESS: GetPhysicalAddress = get_physical_address;
    static LOG_ERROR: LogError = log_error;

    /// Physical address and contiguous length of a data buffer, sense buffer or extension
    /// address (`nf-srb-scsiportgetphysicaladdress`).
    ///
    /// # Safety
    /// As for the import: the arguments the routine's documentation requires.
    #[inline]
    pub unsafe fn ScsiPortGetPhysicalAddress(
        HwDeviceExtension: PVOID,
        Srb: PSCSI_REQUEST_BLOCK,
        VirtualAddress: PVOID,
        Length: PULONG,
    ) -> SCSI_PHYSICAL_ADDRESS {
        // SAFETY: an aligned static, initialised at compile time and never written.
        let routine = unsafe { core::ptr::read_volatile(&raw const GET_PHYSICAL_ADDRESS) };
        // SAFETY: the caller's arguments, per this function's contract, which is the routine's.
        unsafe { routine(HwDeviceExtension, Srb, VirtualAddress, Length) }
    }

    /// Writes an entry to the system event log (`nf-srb-scsiportlogerror`).
    ///
    /// # Safety
    /// As for the import: the arguments the routine's documentation requires.
    #[inline]
    pub unsafe fn ScsiPortLogError(
        HwDeviceExtension: PVOID,
        Srb: PSCSI_REQUEST_BLOCK,
        PathId: UCHAR,
        TargetId: UCHAR,
        Lun: UCHAR,
        ErrorCode: ULONG,
        UniqueId: ULONG,
    ) {
        // SAFETY: an aligned static, initialised at compile time and never written.
        let routine = unsafe { core::ptr::read_volatile(&raw const LOG_ERROR) };
        // SAFETY: the caller's arguments, per this function's contract, which is the routine's.
        unsafe { routine(HwDeviceExtension, Srb, PathId, TargetId, Lun, ErrorCode, UniqueId) };
    }
}
#[cfg(not(windows))]
pub use through_pointer::{ScsiPortGetPhysicalAddress, ScsiPortLogError};

#[cfg_attr(windows, link(name = "scsiport.sys", kind = "raw-dylib", modifiers = "+verbatim"))]
unsafe extern "win64" {
    /// Tells the port about a request's or the HBA's state; `__cdecl` and variadic, the extra
    /// arguments depending on `NotificationType` (`nf-srb-scsiportnotification`). On x64 a
    /// variadic call passes the first four arguments in RCX, RDX, R8 and R9 and the rest on the
    /// stack, each in an 8-byte slot.
    pub fn ScsiPortNotification(NotificationType: SCSI_NOTIFICATION_TYPE, HwDeviceExtension: PVOID, ...);

    /// Debug output, checked builds only; `__cdecl` and variadic (`nf-srb-scsidebugprint`).
    pub fn ScsiDebugPrint(DebugPrintLevel: ULONG, DebugMessage: PCCHAR, ...);
}

/// `ScsiPortConvertPhysicalAddressToUlong`: the low part; a macro in `srb.h`
/// (`nf-srb-scsiportconvertphysicaladdresstoulong`).
#[must_use]
#[inline]
pub const fn ScsiPortConvertPhysicalAddressToUlong(Address: SCSI_PHYSICAL_ADDRESS) -> ULONG {
    Address.LowPart()
}

/// `ScsiPortConvertPhysicalAddressToULongPtr`: the whole address as a `ULONG_PTR`; a macro in `srb.h`.
#[must_use]
#[inline]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub const fn ScsiPortConvertPhysicalAddressToULongPtr(Address: SCSI_PHYSICAL_ADDRESS) -> ULONG_PTR {
    Address.QuadPart as ULONG_PTR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn physical_address_conversions() {
        let address = SCSI_PHYSICAL_ADDRESS { QuadPart: 0x0000_0001_8000_1000 };
        assert_eq!(ScsiPortConvertPhysicalAddressToUlong(address), 0x8000_1000);
        assert_eq!(ScsiPortConvertPhysicalAddressToULongPtr(address), 0x0000_0001_8000_1000);
    }
}
