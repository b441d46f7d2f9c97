//! `storport.h`: the Storport miniport interface, enough to write a Storport miniport of the same
//! HBA.
//!
//! `storport.h` redefines names that `srb.h` also defines (`HW_INITIALIZATION_DATA`,
//! `PORT_CONFIGURATION_INFORMATION`, `SCSI_NOTIFICATION_TYPE`, the `PHW_*` types) with Storport's
//! contents, so they live here, apart from the crate root. What the two headers share unchanged
//! (`SCSI_REQUEST_BLOCK`, `ACCESS_RANGE`, the `SRB_*` constants, ...) is used from the crate root;
//! the types this module's declarations name are re-exported below. Do not glob-import this
//! module and the crate root together: the notification enumerators exist in both.
//!
//! On Windows the functions are `raw-dylib` imports of `storport.sys`, in the Windows x64 calling
//! convention like the rest of the crate.

use crate::types::{
    BOOLEAN, CCHAR, DMA_SPEED, DMA_WIDTH, INTERFACE_TYPE, KINTERRUPT_MODE, LONG, PBOOLEAN, PCCHAR, PCHAR, PHYSICAL_ADDRESS,
    PUCHAR, PULONG, PUSHORT, PVOID, UCHAR, ULONG, ULONG_PTR, ULONGLONG, USHORT,
};

pub use crate::srb::{
    ACCESS_RANGE, HW_INITIALIZATION_DATA_0, PACCESS_RANGE, PSCSI_REQUEST_BLOCK, SCSI_ADAPTER_CONTROL_STATUS,
    SCSI_ADAPTER_CONTROL_TYPE, SCSI_PHYSICAL_ADDRESS, SCSI_REQUEST_BLOCK,
};

// ---------------------------------------------------------------------------------------------
// Addresses and scatter/gather lists
// ---------------------------------------------------------------------------------------------

/// `STOR_PHYSICAL_ADDRESS`: a `PHYSICAL_ADDRESS` (`storport.h`).
pub type STOR_PHYSICAL_ADDRESS = PHYSICAL_ADDRESS;

/// `STOR_SCATTER_GATHER_ELEMENT`: one physically contiguous piece of a request's buffer
/// (`ns-storport-_stor_scatter_gather_element`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct STOR_SCATTER_GATHER_ELEMENT {
    /// Physical address of the piece.
    pub PhysicalAddress: STOR_PHYSICAL_ADDRESS,
    /// Length in bytes.
    pub Length: ULONG,
    /// Reserved.
    pub Reserved: ULONG_PTR,
}
/// `PSTOR_SCATTER_GATHER_ELEMENT` (`storport.h`).
pub type PSTOR_SCATTER_GATHER_ELEMENT = *mut STOR_SCATTER_GATHER_ELEMENT;

/// `STOR_SCATTER_GATHER_LIST`: what `StorPortGetScatterGatherList` returns for a request
/// (`ns-storport-_stor_scatter_gather_list`).
#[repr(C)]
#[derive(Debug)]
pub struct STOR_SCATTER_GATHER_LIST {
    /// Entries in `List`.
    pub NumberOfElements: ULONG,
    /// Reserved.
    pub Reserved: ULONG_PTR,
    /// `STOR_SCATTER_GATHER_ELEMENT List[]`: a flexible array member.
    pub List: [STOR_SCATTER_GATHER_ELEMENT; 0],
}
/// `PSTOR_SCATTER_GATHER_LIST` (`storport.h`).
pub type PSTOR_SCATTER_GATHER_LIST = *mut STOR_SCATTER_GATHER_LIST;

/// `MEMORY_REGION`: a block of memory with both addresses, for `DumpRegion` (`storport.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MEMORY_REGION {
    /// Virtual address.
    pub VirtualBase: PUCHAR,
    /// Physical address.
    pub PhysicalBase: PHYSICAL_ADDRESS,
    /// Length in bytes.
    pub Length: ULONG,
}
/// `PMEMORY_REGION` (`storport.h`).
pub type PMEMORY_REGION = *mut MEMORY_REGION;

/// `STOR_DPC`: a DPC object for `StorPortInitializeDpc` / `StorPortIssueDpc`; opaque to the
/// miniport, which only provides its storage, usually in the device extension
/// (`nf-storport-storportinitializedpc`). In `storport.h` it is `{ DPC_BUFFER Dpc; ULONG_PTR Lock; }`,
/// where `DPC_BUFFER` is `{ CSHORT Type; UCHAR Number; UCHAR Importance; struct { PVOID F; PVOID B; };
/// PVOID DeferredRoutine, DeferredContext, SystemArgument1, SystemArgument2, DpcData; }`: 64 + 8
/// bytes on x64 (WDK 10.0.16299.0 and 10.0.19041.0 `km/storport.h`).
#[repr(C)]
#[derive(Debug)]
pub struct STOR_DPC {
    /// The `DPC_BUFFER` (0x40 bytes on x64, pointer-aligned).
    Dpc: [ULONG_PTR; 8],
    /// `ULONG_PTR Lock`.
    Lock: ULONG_PTR,
}
/// `PSTOR_DPC` (`storport.h`).
pub type PSTOR_DPC = *mut STOR_DPC;

impl STOR_DPC {
    /// Zeroed storage, ready for `StorPortInitializeDpc`.
    #[must_use]
    pub const fn zeroed() -> Self {
        Self { Dpc: [0; 8], Lock: 0 }
    }
}

/// `STOR_SPINLOCK`: which of Storport's locks `StorPortAcquireSpinLock` takes
/// (`ne-storport-_stor_spinlock`).
pub type STOR_SPINLOCK = i32;
/// The lock of one `STOR_DPC`, passed as `LockContext` (`ne-storport-_stor_spinlock`).
pub const DpcLock: STOR_SPINLOCK = 1;
/// The lock Storport holds around `HwStorStartIo` (`ne-storport-_stor_spinlock`).
pub const StartIoLock: STOR_SPINLOCK = 2;
/// The interrupt spin lock, held around `HwStorInterrupt` (`ne-storport-_stor_spinlock`).
pub const InterruptLock: STOR_SPINLOCK = 3;

/// `STOR_LOCK_HANDLE`: the caller's storage for one acquisition of a Storport lock, filled by
/// `StorPortAcquireSpinLock` and handed back to `StorPortReleaseSpinLock`; opaque to the miniport
/// (`nf-storport-storportacquirespinlock`). In `storport.h` it is `{ STOR_SPINLOCK Lock; struct {
/// struct { PVOID Next; PVOID Lock; } LockQueue; KIRQL OldIrql; } Context; }`: 4 + 4 padding + 24
/// bytes on x64 (WDK 10.0.19041.0 `km/storport.h`).
#[repr(C)]
#[derive(Debug)]
pub struct STOR_LOCK_HANDLE {
    /// `STOR_SPINLOCK Lock`.
    Lock: STOR_SPINLOCK,
    /// The `Context` struct (`KLOCK_QUEUE_HANDLE`'s shape: two pointers and the old IRQL).
    Context: [ULONG_PTR; 3],
}
/// `PSTOR_LOCK_HANDLE` (`storport.h`).
pub type PSTOR_LOCK_HANDLE = *mut STOR_LOCK_HANDLE;

impl STOR_LOCK_HANDLE {
    /// Zeroed storage for one acquisition.
    #[must_use]
    pub const fn zeroed() -> Self {
        Self { Lock: 0, Context: [0; 3] }
    }
}

// ---------------------------------------------------------------------------------------------
// Enumerations and flags
// ---------------------------------------------------------------------------------------------

/// `STOR_SYNCHRONIZATION_MODEL`: whether `HwStorStartIo` runs under the interrupt lock
/// (`ns-storport-_port_configuration_information`, `SynchronizationModel`).
pub type STOR_SYNCHRONIZATION_MODEL = i32;
/// Start I/O and the ISR are serialized by Storport (`ns-storport-_port_configuration_information`).
pub const StorSynchronizeHalfDuplex: STOR_SYNCHRONIZATION_MODEL = 0;
/// Start I/O may run concurrently with the ISR (`ns-storport-_port_configuration_information`).
pub const StorSynchronizeFullDuplex: STOR_SYNCHRONIZATION_MODEL = 1;

/// `INTERRUPT_SYNCHRONIZATION_MODE`: how message-signaled interrupts are serialized
/// (`ns-storport-_port_configuration_information`, `InterruptSynchronizationMode`).
pub type INTERRUPT_SYNCHRONIZATION_MODE = i32;
/// No MSI support (`ns-storport-_port_configuration_information`).
pub const InterruptSupportNone: INTERRUPT_SYNCHRONIZATION_MODE = 0;
/// One lock for all messages (`ns-storport-_port_configuration_information`).
pub const InterruptSynchronizeAll: INTERRUPT_SYNCHRONIZATION_MODE = 1;
/// One lock per message (`ns-storport-_port_configuration_information`).
pub const InterruptSynchronizePerMessage: INTERRUPT_SYNCHRONIZATION_MODE = 2;

/// `HW_INITIALIZATION_DATA.MapBuffers`: map no data buffers (`ns-storport-_hw_initialization_data`).
pub const STOR_MAP_NO_BUFFERS: UCHAR = 0;
/// `MapBuffers`: map every data buffer (`ns-storport-_hw_initialization_data`).
pub const STOR_MAP_ALL_BUFFERS: UCHAR = 1;
/// `MapBuffers`: map the buffers of requests other than reads and writes (`ns-storport-_hw_initialization_data`).
pub const STOR_MAP_NON_READ_WRITE_BUFFERS: UCHAR = 2;
/// `MapBuffers`: map every buffer, reads and writes included (`ns-storport-_hw_initialization_data`).
pub const STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE: UCHAR = 3;

/// `PORT_CONFIGURATION_INFORMATION.FeatureSupport`: the miniport supports device telemetry
/// (`ns-storport-_port_configuration_information`).
pub const STOR_ADAPTER_FEATURE_DEVICE_TELEMETRY: ULONG = 0x0000_0001;
/// `FeatureSupport`: send STOP UNIT during system shutdown (`ns-storport-_port_configuration_information`).
pub const STOR_ADAPTER_FEATURE_STOP_UNIT_DURING_POWER_DOWN: ULONG = 0x0000_0002;
/// `FeatureSupport`: allocate the uncached extension on the adapter's NUMA node
/// (`ns-storport-_port_configuration_information`).
pub const STOR_ADAPTER_UNCACHED_EXTENSION_NUMA_NODE_PREFERRED: ULONG = 0x0000_0004;
/// `FeatureSupport`: use the DMA v3 kernel interface (`ns-storport-_port_configuration_information`).
pub const STOR_ADAPTER_DMA_V3_PREFERRED: ULONG = 0x0000_0008;
/// `FeatureSupport`: the miniport handles `SRB_FUNCTION_ABORT_COMMAND` (`ns-storport-_port_configuration_information`).
pub const STOR_ADAPTER_FEATURE_ABORT_COMMAND: ULONG = 0x0000_0010;
/// `FeatureSupport`: richer temperature thresholds than SPC-4 (`ns-storport-_port_configuration_information`).
pub const STOR_ADAPTER_FEATURE_RICH_TEMPERATURE_THRESHOLD: ULONG = 0x0000_0020;
/// `FeatureSupport`: `DmaAddressWidth` is valid; Windows 10 2004 and later
/// (`ns-storport-_port_configuration_information`).
pub const STOR_ADAPTER_DMA_ADDRESS_WIDTH_SPECIFIED: ULONG = 0x0000_0040;

/// `PORT_CONFIGURATION_INFORMATION.DumpMode`: crash dump (`storport.h`).
pub const DUMP_MODE_CRASH: UCHAR = 0x01;
/// `DumpMode`: hibernation (`storport.h`).
pub const DUMP_MODE_HIBER: UCHAR = 0x02;
/// `DumpMode`: marking the memory the dump needs (`storport.h`).
pub const DUMP_MODE_MARK_MEMORY: UCHAR = 0x03;
/// `DumpMode`: resume from hibernation (`storport.h`).
pub const DUMP_MODE_RESUME: UCHAR = 0x04;

/// `PORT_CONFIGURATION_INFORMATION.SrbType`: `SCSI_REQUEST_BLOCK`s (`storport.h`).
pub const SRB_TYPE_SCSI_REQUEST_BLOCK: UCHAR = 0;
/// `SrbType`: `STORAGE_REQUEST_BLOCK`s (`storport.h`).
pub const SRB_TYPE_STORAGE_REQUEST_BLOCK: UCHAR = 1;
/// `HW_INITIALIZATION_DATA.SrbTypeFlags`: the miniport takes `SCSI_REQUEST_BLOCK`s (`ns-storport-_hw_initialization_data`).
pub const SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK: ULONG = 0x1;
/// `SrbTypeFlags`: the miniport takes `STORAGE_REQUEST_BLOCK`s (`ns-storport-_hw_initialization_data`).
pub const SRB_TYPE_FLAG_STORAGE_REQUEST_BLOCK: ULONG = 0x2;
/// `PORT_CONFIGURATION_INFORMATION.AddressType`: bus/target/LUN, 8 bits each (`storport.h`).
pub const STORAGE_ADDRESS_TYPE_BTL8: UCHAR = 0;
/// `HW_INITIALIZATION_DATA.AddressTypeFlags`: bus/target/LUN addressing (`ns-storport-_hw_initialization_data`).
pub const ADDRESS_TYPE_FLAG_BTL8: ULONG = 0x1;

/// `SCSI_NOTIFICATION_TYPE` as `storport.h` defines it: the first argument of
/// `StorPortNotification` (`nf-storport-storportnotification`).
pub type SCSI_NOTIFICATION_TYPE = i32;
/// This crate's name for [`SCSI_NOTIFICATION_TYPE`] of `storport.h`, to tell it from the
/// SCSI Port one; the header itself calls the enum `SCSI_NOTIFICATION_TYPE`.
pub type STOR_NOTIFICATION_TYPE = SCSI_NOTIFICATION_TYPE;
/// The SRB that follows is finished (`nf-storport-storportnotification`).
pub const RequestComplete: SCSI_NOTIFICATION_TYPE = 0;
/// Ready for another request (`nf-storport-storportnotification`).
pub const NextRequest: SCSI_NOTIFICATION_TYPE = 1;
/// Ready for another request to a logical unit (`nf-storport-storportnotification`).
pub const NextLuRequest: SCSI_NOTIFICATION_TYPE = 2;
/// The HBA saw a bus reset (`nf-storport-storportnotification`).
pub const ResetDetected: SCSI_NOTIFICATION_TYPE = 3;
/// Was `CallDisableInterrupts`; Storport removed it (`storport.h`).
pub const _obsolete1: SCSI_NOTIFICATION_TYPE = 4;
/// Was `CallEnableInterrupts`; Storport removed it (`storport.h`).
pub const _obsolete2: SCSI_NOTIFICATION_TYPE = 5;
/// Call the `HwStorTimer` that follows after the given microseconds (`nf-storport-storportnotification`).
pub const RequestTimerCall: SCSI_NOTIFICATION_TYPE = 6;
/// Targets may have come or gone (`nf-storport-storportnotification`).
pub const BusChangeDetected: SCSI_NOTIFICATION_TYPE = 7;
/// Post a WMI event (`nf-storport-storportnotification`).
pub const WMIEvent: SCSI_NOTIFICATION_TYPE = 8;
/// WMI data blocks changed (`nf-storport-storportnotification`).
pub const WMIReregister: SCSI_NOTIFICATION_TYPE = 9;
/// The link came back; resumes the adapter after `LinkDown` (`nf-storport-storportnotification`).
pub const LinkUp: SCSI_NOTIFICATION_TYPE = 10;
/// The link went down; Storport pauses the adapter (`nf-storport-storportnotification`).
pub const LinkDown: SCSI_NOTIFICATION_TYPE = 11;
/// Returns the tick count (`nf-storport-storportnotification`).
pub const QueryTickCount: SCSI_NOTIFICATION_TYPE = 12;
/// A buffer overrun was detected (`nf-storport-storportnotification`).
pub const BufferOverrunDetected: SCSI_NOTIFICATION_TYPE = 13;
/// A trace notification (`nf-storport-storportnotification`).
pub const TraceNotification: SCSI_NOTIFICATION_TYPE = 14;
/// Returns the extended function table (`storport.h`).
pub const GetExtendedFunctionTable: SCSI_NOTIFICATION_TYPE = 15;
/// What `StorPortEnablePassiveInitialization` sends (`nf-storport-storportenablepassiveinitialization`).
pub const EnablePassiveInitialization: SCSI_NOTIFICATION_TYPE = 0x1000;
/// What `StorPortInitializeDpc` sends (`nf-storport-storportinitializedpc`).
pub const InitializeDpc: SCSI_NOTIFICATION_TYPE = 0x1001;
/// What `StorPortIssueDpc` sends (`nf-storport-storportissuedpc`).
pub const IssueDpc: SCSI_NOTIFICATION_TYPE = 0x1002;
/// What `StorPortAcquireSpinLock` sends (`nf-storport-storportacquirespinlock`).
pub const AcquireSpinLock: SCSI_NOTIFICATION_TYPE = 0x1003;
/// What `StorPortReleaseSpinLock` sends (`nf-storport-storportreleasespinlock`).
pub const ReleaseSpinLock: SCSI_NOTIFICATION_TYPE = 0x1004;
/// What `StorPortStateChangeDetected` sends; Windows 8 and later (`storport.h`).
pub const StateChangeDetectedCall: SCSI_NOTIFICATION_TYPE = 0x1005;
/// Reports a request's service time (`nf-storport-storportnotification`).
pub const IoTargetRequestServiceTime: SCSI_NOTIFICATION_TYPE = 0x1006;
/// What `StorPortAsyncNotificationDetected` sends (`storport.h`).
pub const AsyncNotificationDetected: SCSI_NOTIFICATION_TYPE = 0x1007;
/// `storport.h` enumerator (Windows 10 kits); no public documentation of its arguments.
pub const RequestDirectComplete: SCSI_NOTIFICATION_TYPE = 0x1008;
/// What `StorPortInitializeDpcWithContext` sends (`storport.h`, Windows 10).
pub const InitializeDpcWithContext: SCSI_NOTIFICATION_TYPE = 0x1009;
/// What `StorPortInitializeThreadedDpc` sends (`storport.h`, Windows 10).
pub const InitializeThreadedDpc: SCSI_NOTIFICATION_TYPE = 0x100A;
/// `storport.h` enumerator (Windows 10 kits); no public documentation of its arguments.
pub const SetTargetProcessorDpc: SCSI_NOTIFICATION_TYPE = 0x100B;
/// What `StorPortMarkDeviceFailed` sends (`storport.h`, Windows 10).
pub const MarkDeviceFailed: SCSI_NOTIFICATION_TYPE = 0x100C;
/// `storport.h` enumerator after `MarkDeviceFailed` (Windows 10 2004 kits); used by
/// `StorPortMarkDeviceFailedEx` (`nf-storport-storportmarkdevicefailedex`) by its name, not verified here.
pub const MarkDeviceFailedEx: SCSI_NOTIFICATION_TYPE = 0x100D;
/// `PSCSI_NOTIFICATION_TYPE` (`storport.h`).
pub type PSCSI_NOTIFICATION_TYPE = *mut SCSI_NOTIFICATION_TYPE;

/// `SCSI_UNIT_CONTROL_TYPE`: the operations of `HwStorUnitControl` (`ne-storport-scsi_unit_control_type`).
/// Windows versions append enumerators, so the header's `ScsiUnitControlMax` moves and is not
/// bound; `MakeUnitControlTypeSizeOfUlong` (0xffffffff) only makes the enum 32-bit.
pub type SCSI_UNIT_CONTROL_TYPE = i32;
/// Report which unit control types the miniport supports (`nc-storport-hw_unit_control`).
pub const ScsiQuerySupportedUnitControlTypes: SCSI_UNIT_CONTROL_TYPE = 0;
/// Usage notification (paging, hibernation, dump file) (`nc-storport-hw_unit_control`).
pub const ScsiUnitUsage: SCSI_UNIT_CONTROL_TYPE = 1;
/// Start the unit (`nc-storport-hw_unit_control`).
pub const ScsiUnitStart: SCSI_UNIT_CONTROL_TYPE = 2;
/// Unit power change (`nc-storport-hw_unit_control`).
pub const ScsiUnitPower: SCSI_UNIT_CONTROL_TYPE = 3;
/// Idle power management enabled or disabled for the unit (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitPoFxPowerInfo: SCSI_UNIT_CONTROL_TYPE = 4;
/// Whether the unit needs power (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitPoFxPowerRequired: SCSI_UNIT_CONTROL_TYPE = 5;
/// The unit component is active or idle (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitPoFxPowerActive: SCSI_UNIT_CONTROL_TYPE = 6;
/// Set the unit component's F-state (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitPoFxPowerSetFState: SCSI_UNIT_CONTROL_TYPE = 7;
/// A PEP's private power control request (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitPoFxPowerControl: SCSI_UNIT_CONTROL_TYPE = 8;
/// The unit was removed (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitRemove: SCSI_UNIT_CONTROL_TYPE = 9;
/// The unit was surprise-removed (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitSurpriseRemoval: SCSI_UNIT_CONTROL_TYPE = 10;
/// Longer vendor/model/firmware strings than SCSI allows (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitRichDescription: SCSI_UNIT_CONTROL_TYPE = 11;
/// The bus type to report for the unit; Windows 10 2004 kits (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitQueryBusType: SCSI_UNIT_CONTROL_TYPE = 12;
/// The unit's FRU ID; Windows 11 (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitQueryFruId: SCSI_UNIT_CONTROL_TYPE = 13;
/// Reserved for system use; Windows 11 22H2 (`ne-storport-scsi_unit_control_type`).
pub const ScsiUnitReportInternalData: SCSI_UNIT_CONTROL_TYPE = 14;

/// `SCSI_UNIT_CONTROL_STATUS`: what `HwStorUnitControl` returns (`nc-storport-hw_unit_control`).
pub type SCSI_UNIT_CONTROL_STATUS = i32;
/// Done (`nc-storport-hw_unit_control`).
pub const ScsiUnitControlSuccess: SCSI_UNIT_CONTROL_STATUS = 0;
/// Failed (`nc-storport-hw_unit_control`).
pub const ScsiUnitControlUnsuccessful: SCSI_UNIT_CONTROL_STATUS = 1;

// ---------------------------------------------------------------------------------------------
// Miniport routine types (nc-storport-*): `HW_X` is the routine, `PHW_X` a nullable pointer
// ---------------------------------------------------------------------------------------------

/// `HwStorInitialize` (`nc-storport-hw_initialize`).
pub type HW_INITIALIZE = unsafe extern "win64" fn(DeviceExtension: PVOID) -> BOOLEAN;
/// `PHW_INITIALIZE` (`storport.h`).
pub type PHW_INITIALIZE = Option<HW_INITIALIZE>;
/// `HwStorBuildIo`: prepares a request without locks, before `HwStorStartIo` (`nc-storport-hw_buildio`).
pub type HW_BUILDIO = unsafe extern "win64" fn(DeviceExtension: PVOID, Srb: PSCSI_REQUEST_BLOCK) -> BOOLEAN;
/// `PHW_BUILDIO` (`storport.h`).
pub type PHW_BUILDIO = Option<HW_BUILDIO>;
/// `HwStorStartIo` (`nc-storport-hw_startio`).
pub type HW_STARTIO = unsafe extern "win64" fn(DeviceExtension: PVOID, Srb: PSCSI_REQUEST_BLOCK) -> BOOLEAN;
/// `PHW_STARTIO` (`storport.h`).
pub type PHW_STARTIO = Option<HW_STARTIO>;
/// `HwStorInterrupt` (`nc-storport-hw_interrupt`).
pub type HW_INTERRUPT = unsafe extern "win64" fn(DeviceExtension: PVOID) -> BOOLEAN;
/// `PHW_INTERRUPT` (`storport.h`).
pub type PHW_INTERRUPT = Option<HW_INTERRUPT>;
/// `HwStorTimer` (`nc-storport-hw_timer`).
pub type HW_TIMER = unsafe extern "win64" fn(DeviceExtension: PVOID);
/// `PHW_TIMER` (`storport.h`).
pub type PHW_TIMER = Option<HW_TIMER>;
/// `HwStorDmaStarted`; unused by Storport (`storport.h`).
pub type HW_DMA_STARTED = unsafe extern "win64" fn(DeviceExtension: PVOID);
/// `PHW_DMA_STARTED` (`storport.h`).
pub type PHW_DMA_STARTED = Option<HW_DMA_STARTED>;
/// `HwStorFindAdapter` (`nc-storport-hw_find_adapter`).
pub type HW_FIND_ADAPTER = unsafe extern "win64" fn(
    DeviceExtension: PVOID,
    HwContext: PVOID,
    BusInformation: PVOID,
    ArgumentString: PCHAR,
    ConfigInfo: PPORT_CONFIGURATION_INFORMATION,
    Reserved3: PBOOLEAN,
) -> ULONG;
/// `PHW_FIND_ADAPTER` (`storport.h`).
pub type PHW_FIND_ADAPTER = Option<HW_FIND_ADAPTER>;
/// `HwStorResetBus` (`nc-storport-hw_reset_bus`).
pub type HW_RESET_BUS = unsafe extern "win64" fn(DeviceExtension: PVOID, PathId: ULONG) -> BOOLEAN;
/// `PHW_RESET_BUS` (`storport.h`).
pub type PHW_RESET_BUS = Option<HW_RESET_BUS>;
/// `HwStorAdapterState`; unused by Storport (`storport.h`).
pub type HW_ADAPTER_STATE = unsafe extern "win64" fn(DeviceExtension: PVOID, Context: PVOID, SaveState: BOOLEAN) -> BOOLEAN;
/// `PHW_ADAPTER_STATE` (`storport.h`).
pub type PHW_ADAPTER_STATE = Option<HW_ADAPTER_STATE>;
/// `HwStorAdapterControl` (`nc-storport-hw_adapter_control`).
pub type HW_ADAPTER_CONTROL = unsafe extern "win64" fn(
    DeviceExtension: PVOID,
    ControlType: SCSI_ADAPTER_CONTROL_TYPE,
    Parameters: PVOID,
) -> SCSI_ADAPTER_CONTROL_STATUS;
/// `PHW_ADAPTER_CONTROL` (`storport.h`).
pub type PHW_ADAPTER_CONTROL = Option<HW_ADAPTER_CONTROL>;
/// `HwStorDpcRoutine`, queued with `StorPortIssueDpc` (`nc-storport-hw_dpc_routine`).
pub type HW_DPC_ROUTINE = unsafe extern "win64" fn(
    Dpc: PSTOR_DPC,
    HwDeviceExtension: PVOID,
    SystemArgument1: PVOID,
    SystemArgument2: PVOID,
);
/// `PHW_DPC_ROUTINE` (`storport.h`).
pub type PHW_DPC_ROUTINE = Option<HW_DPC_ROUTINE>;
/// `HwStorPassiveInitializeRoutine` (`nc-storport-hw_passive_initialize_routine`).
pub type HW_PASSIVE_INITIALIZE_ROUTINE = unsafe extern "win64" fn(DeviceExtension: PVOID) -> BOOLEAN;
/// `PHW_PASSIVE_INITIALIZE_ROUTINE` (`storport.h`).
pub type PHW_PASSIVE_INITIALIZE_ROUTINE = Option<HW_PASSIVE_INITIALIZE_ROUTINE>;
/// `HwStorMessageSignaledInterruptRoutine` (`nc-storport-hw_message_signaled_interrupt_routine`).
pub type HW_MESSAGE_SIGNALED_INTERRUPT_ROUTINE =
    unsafe extern "win64" fn(HwDeviceExtension: PVOID, MessageId: ULONG) -> BOOLEAN;
/// `PHW_MESSAGE_SIGNALED_INTERRUPT_ROUTINE` (`storport.h`).
pub type PHW_MESSAGE_SIGNALED_INTERRUPT_ROUTINE = Option<HW_MESSAGE_SIGNALED_INTERRUPT_ROUTINE>;
/// `HwStorFreeAdapterResources`, virtual miniports (`nc-storport-hw_free_adapter_resources`).
pub type HW_FREE_ADAPTER_RESOURCES = unsafe extern "win64" fn(DeviceExtension: PVOID);
/// `PHW_FREE_ADAPTER_RESOURCES` (`storport.h`).
pub type PHW_FREE_ADAPTER_RESOURCES = Option<HW_FREE_ADAPTER_RESOURCES>;
/// `HwStorProcessServiceRequest`, virtual miniports (`nc-storport-hw_process_service_request`).
pub type HW_PROCESS_SERVICE_REQUEST = unsafe extern "win64" fn(DeviceExtension: PVOID, Irp: PVOID);
/// `PHW_PROCESS_SERVICE_REQUEST` (`storport.h`).
pub type PHW_PROCESS_SERVICE_REQUEST = Option<HW_PROCESS_SERVICE_REQUEST>;
/// `HwStorCompleteServiceIrp`, virtual miniports (`nc-storport-hw_complete_service_irp`).
pub type HW_COMPLETE_SERVICE_IRP = unsafe extern "win64" fn(DeviceExtension: PVOID);
/// `PHW_COMPLETE_SERVICE_IRP` (`storport.h`).
pub type PHW_COMPLETE_SERVICE_IRP = Option<HW_COMPLETE_SERVICE_IRP>;
/// `HwStorInitializeTracing` (`nc-storport-hw_initialize_tracing`).
pub type HW_INITIALIZE_TRACING = unsafe extern "win64" fn(Arg1: PVOID, Arg2: PVOID);
/// `PHW_INITIALIZE_TRACING` (`storport.h`).
pub type PHW_INITIALIZE_TRACING = Option<HW_INITIALIZE_TRACING>;
/// `HwStorCleanupTracing` (`nc-storport-hw_cleanup_tracing`).
pub type HW_CLEANUP_TRACING = unsafe extern "win64" fn(Arg1: PVOID);
/// `PHW_CLEANUP_TRACING` (`storport.h`).
pub type PHW_CLEANUP_TRACING = Option<HW_CLEANUP_TRACING>;
/// `HwStorTracingEnabled` (`nc-storport-hw_tracing_enabled`).
pub type HW_TRACING_ENABLED = unsafe extern "win64" fn(HwDeviceExtension: PVOID, Enabled: BOOLEAN);
/// `PHW_TRACING_ENABLED` (`storport.h`).
pub type PHW_TRACING_ENABLED = Option<HW_TRACING_ENABLED>;
/// `HwStorUnitControl` (`nc-storport-hw_unit_control`).
pub type HW_UNIT_CONTROL = unsafe extern "win64" fn(
    DeviceExtension: PVOID,
    ControlType: SCSI_UNIT_CONTROL_TYPE,
    Parameters: PVOID,
) -> SCSI_UNIT_CONTROL_STATUS;
/// `PHW_UNIT_CONTROL` (`storport.h`).
pub type PHW_UNIT_CONTROL = Option<HW_UNIT_CONTROL>;
/// The routine `StorPortSynchronizeAccess` runs under the interrupt lock
/// (`nc-storport-stor_synchronized_access`).
pub type STOR_SYNCHRONIZED_ACCESS = unsafe extern "win64" fn(HwDeviceExtension: PVOID, Context: PVOID) -> BOOLEAN;
/// `PSTOR_SYNCHRONIZED_ACCESS` (`storport.h`).
pub type PSTOR_SYNCHRONIZED_ACCESS = Option<STOR_SYNCHRONIZED_ACCESS>;

// ---------------------------------------------------------------------------------------------
// HW_INITIALIZATION_DATA and PORT_CONFIGURATION_INFORMATION, Storport versions
// ---------------------------------------------------------------------------------------------

/// `HW_INITIALIZATION_DATA` of `storport.h`: the `srb.h` fields plus Storport's entry points and
/// capability fields; zero it, then fill it (`ns-storport-_hw_initialization_data`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HW_INITIALIZATION_DATA {
    /// `sizeof(HW_INITIALIZATION_DATA)`.
    pub HwInitializationDataSize: ULONG,
    /// Bus type (`PCIBus`).
    pub AdapterInterfaceType: INTERFACE_TYPE,
    /// Required.
    pub HwInitialize: PHW_INITIALIZE,
    /// Required.
    pub HwStartIo: PHW_STARTIO,
    /// Required unless the miniport uses message-signaled interrupts only.
    pub HwInterrupt: PHW_INTERRUPT,
    /// Required. `PVOID` in `storport.h`: a `PHW_FIND_ADAPTER` for a physical miniport, a
    /// `PVIRTUAL_HW_FIND_ADAPTER` for a virtual one; the same size either way.
    pub HwFindAdapter: PHW_FIND_ADAPTER,
    /// Required.
    pub HwResetBus: PHW_RESET_BUS,
    /// Unused by Storport.
    pub HwDmaStarted: PHW_DMA_STARTED,
    /// Unused by Storport.
    pub HwAdapterState: PHW_ADAPTER_STATE,
    /// Bytes of per-adapter extension.
    pub DeviceExtensionSize: ULONG,
    /// Bytes of per-LU extension.
    pub SpecificLuExtensionSize: ULONG,
    /// Bytes of per-request extension.
    pub SrbExtensionSize: ULONG,
    /// Access ranges the HBA uses.
    pub NumberOfAccessRanges: ULONG,
    /// Reserved.
    pub Reserved: PVOID,
    /// `STOR_MAP_*`.
    pub MapBuffers: UCHAR,
    /// Must be TRUE for Storport.
    pub NeedPhysicalAddresses: BOOLEAN,
    /// Must be TRUE for Storport.
    pub TaggedQueuing: BOOLEAN,
    /// The HBA does request sense itself.
    pub AutoRequestSense: BOOLEAN,
    /// Must be TRUE for Storport.
    pub MultipleRequestPerLu: BOOLEAN,
    /// Unused by Storport.
    pub ReceiveEvent: BOOLEAN,
    /// Bytes at `VendorId`.
    pub VendorIdLength: USHORT,
    /// Unused under PnP.
    pub VendorId: PVOID,
    /// `ReservedUshort` / `PortVersionFlags`.
    pub u: HW_INITIALIZATION_DATA_0,
    /// Bytes at `DeviceId`.
    pub DeviceIdLength: USHORT,
    /// Unused under PnP.
    pub DeviceId: PVOID,
    /// Required for PnP.
    pub HwAdapterControl: PHW_ADAPTER_CONTROL,
    /// Optional; runs before `HwStartIo` without the start-I/O lock.
    pub HwBuildIo: PHW_BUILDIO,
    /// Virtual miniports only.
    pub HwFreeAdapterResources: PHW_FREE_ADAPTER_RESOURCES,
    /// Virtual miniports only.
    pub HwProcessServiceRequest: PHW_PROCESS_SERVICE_REQUEST,
    /// Virtual miniports only.
    pub HwCompleteServiceIrp: PHW_COMPLETE_SERVICE_IRP,
    /// Tracing setup.
    pub HwInitializeTracing: PHW_INITIALIZE_TRACING,
    /// Tracing teardown.
    pub HwCleanupTracing: PHW_CLEANUP_TRACING,
    /// Tracing on/off.
    pub HwTracingEnabled: PHW_TRACING_ENABLED,
    /// `STOR_FEATURE_*` flags.
    pub FeatureSupport: ULONG,
    /// `SRB_TYPE_FLAG_*`.
    pub SrbTypeFlags: ULONG,
    /// `ADDRESS_TYPE_FLAG_*`.
    pub AddressTypeFlags: ULONG,
    /// Reserved.
    pub Reserved1: ULONG,
    /// Per-unit control routine.
    pub HwUnitControl: PHW_UNIT_CONTROL,
}
/// `PHW_INITIALIZATION_DATA` (`storport.h`).
pub type PHW_INITIALIZATION_DATA = *mut HW_INITIALIZATION_DATA;

/// `PORT_CONFIGURATION_INFORMATION` of `storport.h` for `NTDDI_VERSION >= NTDDI_WIN10_VB`: the
/// `srb.h` fields (with `MiniportDumpData`, `SrbType` and `AddressType` in the slots that were
/// `Reserved` and `ReservedUchars[2]` before Windows 8) plus Storport's tail up to
/// `FeatureSupport`, 224 bytes on x64 (`ns-storport-_port_configuration_information`; WDK
/// 10.0.19041.0 `km/storport.h`). Windows 8 through 1909 have the same layout with
/// `DmaAddressWidth` as padding. Storport allocates it; check `Length` before touching the later
/// fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PORT_CONFIGURATION_INFORMATION {
    /// `sizeof` as Storport allocated it.
    pub Length: ULONG,
    /// System bus number.
    pub SystemIoBusNumber: ULONG,
    /// Bus type.
    pub AdapterInterfaceType: INTERFACE_TYPE,
    /// Interrupt level.
    pub BusInterruptLevel: ULONG,
    /// Interrupt vector.
    pub BusInterruptVector: ULONG,
    /// Interrupt mode.
    pub InterruptMode: KINTERRUPT_MODE,
    /// Largest transfer in bytes.
    pub MaximumTransferLength: ULONG,
    /// Scatter/gather elements minus one.
    pub NumberOfPhysicalBreaks: ULONG,
    /// Unused by Storport.
    pub DmaChannel: ULONG,
    /// Unused by Storport.
    pub DmaPort: ULONG,
    /// Unused by Storport.
    pub DmaWidth: DMA_WIDTH,
    /// Unused by Storport.
    pub DmaSpeed: DMA_SPEED,
    /// Buffer alignment mask.
    pub AlignmentMask: ULONG,
    /// Entries in `AccessRanges`.
    pub NumberOfAccessRanges: ULONG,
    /// `ACCESS_RANGE (*AccessRanges)[]`.
    pub AccessRanges: PACCESS_RANGE,
    /// Dump-mode data the miniport passes itself (was `Reserved`).
    pub MiniportDumpData: PVOID,
    /// SCSI buses.
    pub NumberOfBuses: UCHAR,
    /// The HBA's own ID on each bus.
    pub InitiatorBusId: [CCHAR; 8],
    /// Must be TRUE for Storport.
    pub ScatterGather: BOOLEAN,
    /// Must be TRUE for Storport.
    pub Master: BOOLEAN,
    /// The HBA caches data.
    pub CachesData: BOOLEAN,
    /// Scan from high to low IDs.
    pub AdapterScansDown: BOOLEAN,
    /// Obsolete.
    pub AtdiskPrimaryClaimed: BOOLEAN,
    /// Obsolete.
    pub AtdiskSecondaryClaimed: BOOLEAN,
    /// 32 address lines.
    pub Dma32BitAddresses: BOOLEAN,
    /// Unused by Storport.
    pub DemandMode: BOOLEAN,
    /// `STOR_MAP_*`.
    pub MapBuffers: UCHAR,
    /// Must be TRUE for Storport.
    pub NeedPhysicalAddresses: BOOLEAN,
    /// Must be TRUE for Storport.
    pub TaggedQueuing: BOOLEAN,
    /// The HBA does request sense itself.
    pub AutoRequestSense: BOOLEAN,
    /// Must be TRUE for Storport.
    pub MultipleRequestPerLu: BOOLEAN,
    /// Unused by Storport.
    pub ReceiveEvent: BOOLEAN,
    /// Obsolete.
    pub RealModeInitialized: BOOLEAN,
    /// Unused by Storport.
    pub BufferAccessScsiPortControlled: BOOLEAN,
    /// Targets per bus.
    pub MaximumNumberOfTargets: UCHAR,
    /// `SRB_TYPE_*` the miniport chose (was `ReservedUchars[0]`).
    pub SrbType: UCHAR,
    /// `STORAGE_ADDRESS_TYPE_*` (was `ReservedUchars[1]`).
    pub AddressType: UCHAR,
    /// Bus-relative slot.
    pub SlotNumber: ULONG,
    /// Second interrupt.
    pub BusInterruptLevel2: ULONG,
    /// Second interrupt vector.
    pub BusInterruptVector2: ULONG,
    /// Second interrupt mode.
    pub InterruptMode2: KINTERRUPT_MODE,
    /// Unused by Storport.
    pub DmaChannel2: ULONG,
    /// Unused by Storport.
    pub DmaPort2: ULONG,
    /// Unused by Storport.
    pub DmaWidth2: DMA_WIDTH,
    /// Unused by Storport.
    pub DmaSpeed2: DMA_SPEED,
    /// Device extension size.
    pub DeviceExtensionSize: ULONG,
    /// LU extension size.
    pub SpecificLuExtensionSize: ULONG,
    /// SRB extension size.
    pub SrbExtensionSize: ULONG,
    /// `SCSI_DMA64_*` flags.
    pub Dma64BitAddresses: UCHAR,
    /// Obsolete.
    pub ResetTargetSupported: BOOLEAN,
    /// LUs per target.
    pub MaximumNumberOfLogicalUnits: UCHAR,
    /// The miniport handles WMI requests.
    pub WmiDataProvider: BOOLEAN,
    /// Half or full duplex start I/O.
    pub SynchronizationModel: STOR_SYNCHRONIZATION_MODEL,
    /// MSI routine.
    pub HwMSInterruptRoutine: PHW_MESSAGE_SIGNALED_INTERRUPT_ROUTINE,
    /// MSI serialization.
    pub InterruptSynchronizationMode: INTERRUPT_SYNCHRONIZATION_MODE,
    /// Memory Storport reserves for dump mode.
    pub DumpRegion: MEMORY_REGION,
    /// Bytes of dump buffer the miniport wants.
    pub RequestedDumpBufferSize: ULONG,
    /// A virtual miniport.
    pub VirtualDevice: BOOLEAN,
    /// `DUMP_MODE_*`: why the miniport runs in dump mode.
    pub DumpMode: UCHAR,
    /// DMA address width in bits (1..=64), honoured only with `STOR_ADAPTER_DMA_ADDRESS_WIDTH_SPECIFIED`
    /// in `FeatureSupport`, Windows 10 2004 and later; a padding byte before that.
    pub DmaAddressWidth: UCHAR,
    /// `STOR_ADAPTER_*` flags.
    pub ExtendedFlags1: ULONG,
    /// Outstanding requests per adapter.
    pub MaxNumberOfIO: ULONG,
    /// Outstanding requests per LU.
    pub MaxIOsPerLun: ULONG,
    /// Initial LU queue depth.
    pub InitialLunQueueDepth: ULONG,
    /// Hold time after a bus reset, in microseconds.
    pub BusResetHoldTime: ULONG,
    /// `STOR_ADAPTER_FEATURE_*` flags.
    pub FeatureSupport: ULONG,
}
/// `PPORT_CONFIGURATION_INFORMATION` (`storport.h`).
pub type PPORT_CONFIGURATION_INFORMATION = *mut PORT_CONFIGURATION_INFORMATION;

// ---------------------------------------------------------------------------------------------
// StorPort* routines (nf-storport-*)
// ---------------------------------------------------------------------------------------------

#[cfg_attr(windows, link(name = "storport.sys", kind = "raw-dylib", modifiers = "+verbatim"))]
unsafe extern "win64" {
    /// Registers the miniport; only from `DriverEntry` (`nf-storport-storportinitialize`).
    pub fn StorPortInitialize(
        Argument1: PVOID,
        Argument2: PVOID,
        HwInitializationData: PHW_INITIALIZATION_DATA,
        HwContext: PVOID,
    ) -> ULONG;
    /// Maps an access range (`nf-storport-storportgetdevicebase`).
    pub fn StorPortGetDeviceBase(
        HwDeviceExtension: PVOID,
        BusType: INTERFACE_TYPE,
        SystemIoBusNumber: ULONG,
        IoAddress: STOR_PHYSICAL_ADDRESS,
        NumberOfBytes: ULONG,
        InIoSpace: BOOLEAN,
    ) -> PVOID;
    /// Unmaps a range from `StorPortGetDeviceBase` (`nf-storport-storportfreedevicebase`).
    pub fn StorPortFreeDeviceBase(HwDeviceExtension: PVOID, MappedAddress: PVOID);
    /// The common buffer; only from `HwStorFindAdapter` (`nf-storport-storportgetuncachedextension`).
    pub fn StorPortGetUncachedExtension(
        HwDeviceExtension: PVOID,
        ConfigInfo: PPORT_CONFIGURATION_INFORMATION,
        NumberOfBytes: ULONG,
    ) -> PVOID;
    /// Physical address and contiguous length of an address in the uncached extension, an SRB
    /// extension or a data buffer (`nf-storport-storportgetphysicaladdress`).
    pub fn StorPortGetPhysicalAddress(
        HwDeviceExtension: PVOID,
        Srb: PSCSI_REQUEST_BLOCK,
        VirtualAddress: PVOID,
        Length: PULONG,
    ) -> STOR_PHYSICAL_ADDRESS;
    /// Virtual address of a physical address in the uncached extension (`nf-storport-storportgetvirtualaddress`).
    pub fn StorPortGetVirtualAddress(HwDeviceExtension: PVOID, PhysicalAddress: STOR_PHYSICAL_ADDRESS) -> PVOID;
    /// The scatter/gather list of a request (`nf-storport-storportgetscattergatherlist`).
    pub fn StorPortGetScatterGatherList(DeviceExtension: PVOID, Srb: PSCSI_REQUEST_BLOCK) -> PSTOR_SCATTER_GATHER_LIST;
    /// The LU extension of a logical unit (`nf-storport-storportgetlogicalunit`).
    pub fn StorPortGetLogicalUnit(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR) -> PVOID;
    /// An active request by queue tag. storport.sys has it (its public symbols list
    /// `StorPortGetSrb`), but `storport.h` declares no prototype, only the `ScsiPortGetSrb`
    /// alias under `STOR_USE_SCSI_ALIASES`; the signature is `ScsiPortGetSrb`'s (`nf-srb-scsiportgetsrb`).
    pub fn StorPortGetSrb(DeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, QueueTag: LONG)
    -> PSCSI_REQUEST_BLOCK;
    /// Runs a routine synchronized with the ISR, for full-duplex miniports
    /// (`nf-storport-storportsynchronizeaccess`: returns the routine's result; `BOOLEAN` in WDK
    /// 10.0.16299.0 and 10.0.19041.0 `km/storport.h`, `VOID` in MinGW-w64's).
    pub fn StorPortSynchronizeAccess(
        HwDeviceExtension: PVOID,
        SynchronizedAccessRoutine: PSTOR_SYNCHRONIZED_ACCESS,
        Context: PVOID,
    ) -> BOOLEAN;
    /// Busy-waits `Delay` microseconds (`nf-storport-storportstallexecution`).
    pub fn StorPortStallExecution(Delay: ULONG);
    /// Writes an event-log entry (`nf-storport-storportlogerror`).
    pub fn StorPortLogError(
        HwDeviceExtension: PVOID,
        Srb: PSCSI_REQUEST_BLOCK,
        PathId: UCHAR,
        TargetId: UCHAR,
        Lun: UCHAR,
        ErrorCode: ULONG,
        UniqueId: ULONG,
    );
    /// Completes every matching outstanding request (`nf-storport-storportcompleterequest`).
    pub fn StorPortCompleteRequest(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, SrbStatus: UCHAR);
    /// Reads bus configuration data (`nf-storport-storportgetbusdata`).
    pub fn StorPortGetBusData(
        DeviceExtension: PVOID,
        BusDataType: ULONG,
        SystemIoBusNumber: ULONG,
        SlotNumber: ULONG,
        Buffer: PVOID,
        Length: ULONG,
    ) -> ULONG;
    /// Writes bus configuration data (`nf-storport-storportsetbusdatabyoffset`).
    pub fn StorPortSetBusDataByOffset(
        DeviceExtension: PVOID,
        BusDataType: ULONG,
        SystemIoBusNumber: ULONG,
        SlotNumber: ULONG,
        Buffer: PVOID,
        Offset: ULONG,
        Length: ULONG,
    ) -> ULONG;
    /// Whether a range may be mapped (`nf-storport-storportvalidaterange`).
    pub fn StorPortValidateRange(
        HwDeviceExtension: PVOID,
        BusType: INTERFACE_TYPE,
        SystemIoBusNumber: ULONG,
        IoAddress: STOR_PHYSICAL_ADDRESS,
        NumberOfBytes: ULONG,
        InIoSpace: BOOLEAN,
    ) -> BOOLEAN;
    /// `memmove` (`nf-storport-storportmovememory`).
    pub fn StorPortMoveMemory(WriteBuffer: PVOID, ReadBuffer: PVOID, Length: ULONG);
    /// An address as a physical address (`nf-storport-storportconvertulongtophysicaladdress`).
    pub fn StorPortConvertUlongToPhysicalAddress(UlongAddress: ULONG_PTR) -> STOR_PHYSICAL_ADDRESS;
    /// Pauses the adapter's queues for `TimeOut` seconds (`nf-storport-storportpause`).
    pub fn StorPortPause(HwDeviceExtension: PVOID, TimeOut: ULONG) -> BOOLEAN;
    /// Resumes the adapter's queues (`nf-storport-storportresume`).
    pub fn StorPortResume(HwDeviceExtension: PVOID) -> BOOLEAN;
    /// Pauses a logical unit (`nf-storport-storportpausedevice`).
    pub fn StorPortPauseDevice(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR, TimeOut: ULONG)
    -> BOOLEAN;
    /// Resumes a logical unit (`nf-storport-storportresumedevice`).
    pub fn StorPortResumeDevice(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR) -> BOOLEAN;
    /// The adapter is busy until `RequestsToComplete` finish (`nf-storport-storportbusy`).
    pub fn StorPortBusy(HwDeviceExtension: PVOID, RequestsToComplete: ULONG) -> BOOLEAN;
    /// The adapter is ready again (`nf-storport-storportready`).
    pub fn StorPortReady(HwDeviceExtension: PVOID) -> BOOLEAN;
    /// A logical unit is busy (`nf-storport-storportdevicebusy`).
    pub fn StorPortDeviceBusy(
        HwDeviceExtension: PVOID,
        PathId: UCHAR,
        TargetId: UCHAR,
        Lun: UCHAR,
        RequestsToComplete: ULONG,
    ) -> BOOLEAN;
    /// A logical unit is ready again (`nf-storport-storportdeviceready`).
    pub fn StorPortDeviceReady(HwDeviceExtension: PVOID, PathId: UCHAR, TargetId: UCHAR, Lun: UCHAR) -> BOOLEAN;
}

#[cfg_attr(windows, link(name = "storport.sys", kind = "raw-dylib", modifiers = "+verbatim"))]
unsafe extern "win64" {
    /// Tells Storport about a request or the adapter; `__cdecl` and variadic, the extra arguments
    /// depending on `NotificationType` (`nf-storport-storportnotification`).
    pub fn StorPortNotification(NotificationType: SCSI_NOTIFICATION_TYPE, HwDeviceExtension: PVOID, ...);
    /// Debug output; `__cdecl` and variadic (`nf-storport-storportdebugprint`).
    pub fn StorPortDebugPrint(DebugPrintLevel: ULONG, DebugMessage: PCCHAR, ...);
}

/// `StorPortConvertPhysicalAddressToUlong`: the low part; a macro in `storport.h`
/// (`((Address).LowPart)`), which also declares a function of that name that storport.sys does
/// not export.
#[must_use]
#[inline]
pub const fn StorPortConvertPhysicalAddressToUlong(Address: STOR_PHYSICAL_ADDRESS) -> ULONG {
    Address.LowPart()
}

/// `StorPortConvertPhysicalAddressToULong64`: the whole address; a macro in `storport.h`
/// (`((Address).QuadPart)`, a `LONGLONG`), returned here as the unsigned value it stands for.
#[must_use]
#[inline]
#[allow(clippy::cast_sign_loss)]
pub const fn StorPortConvertPhysicalAddressToULong64(Address: STOR_PHYSICAL_ADDRESS) -> ULONGLONG {
    Address.QuadPart as ULONGLONG
}

/// `StorPortInitializeDpc`: an inline function in `storport.h` that sends `InitializeDpc`
/// (`nf-storport-storportinitializedpc`).
///
/// # Safety
/// `DeviceExtension` must be this miniport's device extension and `Dpc` point to storage that
/// lives as long as the adapter (normally inside the device extension).
#[inline]
pub unsafe fn StorPortInitializeDpc(DeviceExtension: PVOID, Dpc: PSTOR_DPC, HwDpcRoutine: PHW_DPC_ROUTINE) {
    // SAFETY: the argument list is the one `storport.h` passes for `InitializeDpc`; the caller
    // vouches for the pointers.
    unsafe { StorPortNotification(InitializeDpc, DeviceExtension, Dpc, HwDpcRoutine) }
}

/// `StorPortIssueDpc`: an inline function in `storport.h` that sends `IssueDpc` with a pointer to
/// a `LONG` result and returns whether the DPC was queued (`nf-storport-storportissuedpc`; the
/// inline body is in WDK 10.0.16299.0 and 10.0.19041.0 `km/storport.h`).
///
/// # Safety
/// `Dpc` must have been set up by [`StorPortInitializeDpc`] for this `DeviceExtension`.
#[inline]
#[must_use]
pub unsafe fn StorPortIssueDpc(
    DeviceExtension: PVOID,
    Dpc: PSTOR_DPC,
    SystemArgument1: PVOID,
    SystemArgument2: PVOID,
) -> BOOLEAN {
    // `storport.h` passes `&Succ` with `LONG Succ = FALSE` and returns `(BOOLEAN)Succ`; Storport
    // writes a whole LONG there, so the result must not live in a one-byte BOOLEAN.
    let mut queued: LONG = 0;
    let queued_ptr: *mut LONG = &raw mut queued;
    // SAFETY: the argument list is the one `storport.h` passes for `IssueDpc`; Storport writes a
    // LONG result through `queued_ptr`, which outlives the call.
    unsafe { StorPortNotification(IssueDpc, DeviceExtension, Dpc, SystemArgument1, SystemArgument2, queued_ptr) };
    BOOLEAN::from(queued != 0)
}

/// `StorPortAcquireSpinLock`: an inline function in `storport.h` that sends `AcquireSpinLock`
/// with the lock, its context and the handle (`nf-storport-storportacquirespinlock`; the inline
/// body is in WDK 10.0.19041.0 `km/storport.h`).
///
/// # Safety
/// `DeviceExtension` must be this miniport's device extension; `SpinLock` one of [`DpcLock`],
/// [`StartIoLock`], [`InterruptLock`], with `LockContext` the `STOR_DPC` for `DpcLock` and NULL
/// otherwise; the caller must not hold that lock or one ordered after it (`DpcLock` and
/// `StartIoLock` come before `InterruptLock`), and must release it with
/// [`StorPortReleaseSpinLock`] and the same `LockHandle`.
#[inline]
pub unsafe fn StorPortAcquireSpinLock(
    DeviceExtension: PVOID,
    SpinLock: STOR_SPINLOCK,
    LockContext: PVOID,
    LockHandle: PSTOR_LOCK_HANDLE,
) {
    // SAFETY: the argument list is the one `storport.h` passes for `AcquireSpinLock`; the caller
    // vouches for the pointers and the lock order.
    unsafe { StorPortNotification(AcquireSpinLock, DeviceExtension, SpinLock, LockContext, LockHandle) }
}

/// `StorPortReleaseSpinLock`: an inline function in `storport.h` that sends `ReleaseSpinLock`
/// with the handle (`nf-storport-storportreleasespinlock`).
///
/// # Safety
/// `LockHandle` must be the handle of a lock this code acquired with [`StorPortAcquireSpinLock`]
/// and has not released.
#[inline]
pub unsafe fn StorPortReleaseSpinLock(DeviceExtension: PVOID, LockHandle: PSTOR_LOCK_HANDLE) {
    // SAFETY: the argument list is the one `storport.h` passes for `ReleaseSpinLock`; the caller
    // vouches for the handle.
    unsafe { StorPortNotification(ReleaseSpinLock, DeviceExtension, LockHandle) }
}

/// `StorPortEnablePassiveInitialization`: an inline function in `storport.h` that sends
/// `EnablePassiveInitialization`; only from `HwStorInitialize`
/// (`nf-storport-storportenablepassiveinitialization`).
///
/// # Safety
/// `DeviceExtension` must be this miniport's device extension.
#[inline]
#[must_use]
pub unsafe fn StorPortEnablePassiveInitialization(
    DeviceExtension: PVOID,
    HwPassiveInitializeRoutine: PHW_PASSIVE_INITIALIZE_ROUTINE,
) -> BOOLEAN {
    let mut enabled: LONG = 0;
    let enabled_ptr: *mut LONG = &raw mut enabled;
    // SAFETY: the argument list is the one `storport.h` passes; Storport writes a LONG result
    // through `enabled_ptr`, which outlives the call.
    unsafe { StorPortNotification(EnablePassiveInitialization, DeviceExtension, HwPassiveInitializeRoutine, enabled_ptr) };
    BOOLEAN::from(enabled != 0)
}

// ---------------------------------------------------------------------------------------------
// Register and port access (nf-storport-storportread*/storportwrite*)
// ---------------------------------------------------------------------------------------------

/// The `StorPortRead/Write{Register,Port}*` routines. They take the device extension first
/// (MinGW-w64's `storport.h` omits it; the WDK's prototypes have it). On x64 `storport.h` makes
/// them macros over `READ_REGISTER_*` / `READ_PORT_*`, so on Windows x64 they are the same inline
/// volatile accesses and `in`/`out` instructions as the `ScsiPort` ones; elsewhere they are imports.
#[cfg(all(target_arch = "x86_64", any(windows, feature = "x64-inline-accessors")))]
mod registers {
    use super::{PUCHAR, PULONG, PUSHORT, PVOID, UCHAR, ULONG, USHORT};

    macro_rules! forward {
        ($($name:ident => $target:ident ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {$(
            #[doc = concat!("`", stringify!($name), "`: `", stringify!($target), "` on x64 (`storport.h`).")]
            ///
            /// # Safety
            /// The address must lie in a range this miniport mapped with `StorPortGetDeviceBase`,
            /// and any buffer must be valid for `Count` elements.
            #[inline]
            pub unsafe fn $name(HwDeviceExtension: PVOID, $($arg: $ty),*) $(-> $ret)? {
                let _ = HwDeviceExtension;
                // SAFETY: forwarded from the caller.
                unsafe { crate::$target($($arg),*) }
            }
        )*};
    }

    forward! {
        StorPortReadRegisterUchar => ScsiPortReadRegisterUchar(Register: PUCHAR) -> UCHAR;
        StorPortReadRegisterUshort => ScsiPortReadRegisterUshort(Register: PUSHORT) -> USHORT;
        StorPortReadRegisterUlong => ScsiPortReadRegisterUlong(Register: PULONG) -> ULONG;
        StorPortWriteRegisterUchar => ScsiPortWriteRegisterUchar(Register: PUCHAR, Value: UCHAR);
        StorPortWriteRegisterUshort => ScsiPortWriteRegisterUshort(Register: PUSHORT, Value: USHORT);
        StorPortWriteRegisterUlong => ScsiPortWriteRegisterUlong(Register: PULONG, Value: ULONG);
        StorPortReadRegisterBufferUchar => ScsiPortReadRegisterBufferUchar(Register: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        StorPortReadRegisterBufferUshort => ScsiPortReadRegisterBufferUshort(Register: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        StorPortReadRegisterBufferUlong => ScsiPortReadRegisterBufferUlong(Register: PULONG, Buffer: PULONG, Count: ULONG);
        StorPortWriteRegisterBufferUchar => ScsiPortWriteRegisterBufferUchar(Register: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        StorPortWriteRegisterBufferUshort => ScsiPortWriteRegisterBufferUshort(Register: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        StorPortWriteRegisterBufferUlong => ScsiPortWriteRegisterBufferUlong(Register: PULONG, Buffer: PULONG, Count: ULONG);
        StorPortReadPortUchar => ScsiPortReadPortUchar(Port: PUCHAR) -> UCHAR;
        StorPortReadPortUshort => ScsiPortReadPortUshort(Port: PUSHORT) -> USHORT;
        StorPortReadPortUlong => ScsiPortReadPortUlong(Port: PULONG) -> ULONG;
        StorPortWritePortUchar => ScsiPortWritePortUchar(Port: PUCHAR, Value: UCHAR);
        StorPortWritePortUshort => ScsiPortWritePortUshort(Port: PUSHORT, Value: USHORT);
        StorPortWritePortUlong => ScsiPortWritePortUlong(Port: PULONG, Value: ULONG);
        StorPortReadPortBufferUchar => ScsiPortReadPortBufferUchar(Port: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        StorPortReadPortBufferUshort => ScsiPortReadPortBufferUshort(Port: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        StorPortReadPortBufferUlong => ScsiPortReadPortBufferUlong(Port: PULONG, Buffer: PULONG, Count: ULONG);
        StorPortWritePortBufferUchar => ScsiPortWritePortBufferUchar(Port: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        StorPortWritePortBufferUshort => ScsiPortWritePortBufferUshort(Port: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        StorPortWritePortBufferUlong => ScsiPortWritePortBufferUlong(Port: PULONG, Buffer: PULONG, Count: ULONG);
    }
}

#[cfg(not(all(target_arch = "x86_64", any(windows, feature = "x64-inline-accessors"))))]
mod registers {
    use super::{PUCHAR, PULONG, PUSHORT, PVOID, UCHAR, ULONG, USHORT};

    #[cfg_attr(windows, link(name = "storport.sys", kind = "raw-dylib", modifiers = "+verbatim"))]
    unsafe extern "win64" {
        /// Reads a byte register (`nf-storport-storportreadregisteruchar`).
        pub fn StorPortReadRegisterUchar(HwDeviceExtension: PVOID, Register: PUCHAR) -> UCHAR;
        /// Reads a USHORT register (`nf-storport-storportreadregisterushort`).
        pub fn StorPortReadRegisterUshort(HwDeviceExtension: PVOID, Register: PUSHORT) -> USHORT;
        /// Reads a ULONG register (`nf-storport-storportreadregisterulong`).
        pub fn StorPortReadRegisterUlong(HwDeviceExtension: PVOID, Register: PULONG) -> ULONG;
        /// Writes a byte register (`nf-storport-storportwriteregisteruchar`).
        pub fn StorPortWriteRegisterUchar(HwDeviceExtension: PVOID, Register: PUCHAR, Value: UCHAR);
        /// Writes a USHORT register (`nf-storport-storportwriteregisterushort`).
        pub fn StorPortWriteRegisterUshort(HwDeviceExtension: PVOID, Register: PUSHORT, Value: USHORT);
        /// Writes a ULONG register (`nf-storport-storportwriteregisterulong`).
        pub fn StorPortWriteRegisterUlong(HwDeviceExtension: PVOID, Register: PULONG, Value: ULONG);
        /// Reads consecutive byte registers (`nf-storport-storportreadregisterbufferuchar`).
        pub fn StorPortReadRegisterBufferUchar(HwDeviceExtension: PVOID, Register: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        /// Reads consecutive USHORT registers (`nf-storport-storportreadregisterbufferushort`).
        pub fn StorPortReadRegisterBufferUshort(HwDeviceExtension: PVOID, Register: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        /// Reads consecutive ULONG registers (`nf-storport-storportreadregisterbufferulong`).
        pub fn StorPortReadRegisterBufferUlong(HwDeviceExtension: PVOID, Register: PULONG, Buffer: PULONG, Count: ULONG);
        /// Writes consecutive byte registers (`nf-storport-storportwriteregisterbufferuchar`).
        pub fn StorPortWriteRegisterBufferUchar(HwDeviceExtension: PVOID, Register: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        /// Writes consecutive USHORT registers (`nf-storport-storportwriteregisterbufferushort`).
        pub fn StorPortWriteRegisterBufferUshort(HwDeviceExtension: PVOID, Register: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        /// Writes consecutive ULONG registers (`nf-storport-storportwriteregisterbufferulong`).
        pub fn StorPortWriteRegisterBufferUlong(HwDeviceExtension: PVOID, Register: PULONG, Buffer: PULONG, Count: ULONG);
        /// Reads a byte port (`nf-storport-storportreadportuchar`).
        pub fn StorPortReadPortUchar(HwDeviceExtension: PVOID, Port: PUCHAR) -> UCHAR;
        /// Reads a USHORT port (`nf-storport-storportreadportushort`).
        pub fn StorPortReadPortUshort(HwDeviceExtension: PVOID, Port: PUSHORT) -> USHORT;
        /// Reads a ULONG port (`nf-storport-storportreadportulong`).
        pub fn StorPortReadPortUlong(HwDeviceExtension: PVOID, Port: PULONG) -> ULONG;
        /// Writes a byte port (`nf-storport-storportwriteportuchar`).
        pub fn StorPortWritePortUchar(HwDeviceExtension: PVOID, Port: PUCHAR, Value: UCHAR);
        /// Writes a USHORT port (`nf-storport-storportwriteportushort`).
        pub fn StorPortWritePortUshort(HwDeviceExtension: PVOID, Port: PUSHORT, Value: USHORT);
        /// Writes a ULONG port (`nf-storport-storportwriteportulong`).
        pub fn StorPortWritePortUlong(HwDeviceExtension: PVOID, Port: PULONG, Value: ULONG);
        /// Reads a byte port `Count` times (`nf-storport-storportreadportbufferuchar`).
        pub fn StorPortReadPortBufferUchar(HwDeviceExtension: PVOID, Port: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        /// Reads a USHORT port `Count` times (`nf-storport-storportreadportbufferushort`).
        pub fn StorPortReadPortBufferUshort(HwDeviceExtension: PVOID, Port: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        /// Reads a ULONG port `Count` times (`nf-storport-storportreadportbufferulong`).
        pub fn StorPortReadPortBufferUlong(HwDeviceExtension: PVOID, Port: PULONG, Buffer: PULONG, Count: ULONG);
        /// Writes a byte port `Count` times (`nf-storport-storportwriteportbufferuchar`).
        pub fn StorPortWritePortBufferUchar(HwDeviceExtension: PVOID, Port: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        /// Writes a USHORT port `Count` times (`nf-storport-storportwriteportbufferushort`).
        pub fn StorPortWritePortBufferUshort(HwDeviceExtension: PVOID, Port: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        /// Writes a ULONG port `Count` times (`nf-storport-storportwriteportbufferulong`).
        pub fn StorPortWritePortBufferUlong(HwDeviceExtension: PVOID, Port: PULONG, Buffer: PULONG, Count: ULONG);
    }
}

pub use registers::*;

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    fn x64_layouts() {
        if !cfg!(target_pointer_width = "64") {
            return;
        }
        assert_eq!((size_of::<STOR_DPC>(), align_of::<STOR_DPC>()), (72, 8));
        assert_eq!((size_of::<STOR_LOCK_HANDLE>(), align_of::<STOR_LOCK_HANDLE>()), (32, 8));
        assert_eq!(offset_of!(STOR_LOCK_HANDLE, Context), 8);
        assert_eq!(size_of::<STOR_SCATTER_GATHER_ELEMENT>(), 24);
        assert_eq!(offset_of!(STOR_SCATTER_GATHER_LIST, List), 16);
        assert_eq!(size_of::<MEMORY_REGION>(), 24);
        assert_eq!(offset_of!(HW_INITIALIZATION_DATA, HwBuildIo), 128);
        assert_eq!(size_of::<HW_INITIALIZATION_DATA>(), 208);
        assert_eq!(offset_of!(PORT_CONFIGURATION_INFORMATION, SynchronizationModel), 148);
        assert_eq!(offset_of!(PORT_CONFIGURATION_INFORMATION, DmaAddressWidth), 198);
        assert_eq!(offset_of!(PORT_CONFIGURATION_INFORMATION, ExtendedFlags1), 200);
        assert_eq!(offset_of!(PORT_CONFIGURATION_INFORMATION, FeatureSupport), 220);
        assert_eq!(size_of::<PORT_CONFIGURATION_INFORMATION>(), 224);
    }

    #[test]
    fn physical_address_macros() {
        let address = STOR_PHYSICAL_ADDRESS { QuadPart: 0x0000_0001_8000_1000 };
        assert_eq!(StorPortConvertPhysicalAddressToUlong(address), 0x8000_1000);
        assert_eq!(StorPortConvertPhysicalAddressToULong64(address), 0x0000_0001_8000_1000);
    }

    #[test]
    fn notification_values() {
        assert_eq!(ADDRESS_TYPE_FLAG_BTL8, 1);
        assert_eq!((InitializeDpc, IssueDpc), (0x1001, 0x1002));
        assert_eq!(STOR_DPC::zeroed().Lock, 0);
        assert_eq!((DpcLock, StartIoLock, InterruptLock), (1, 2, 3));
    }
}
