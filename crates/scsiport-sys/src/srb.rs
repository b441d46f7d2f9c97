//! `srb.h`: the structures, constants and callback types shared by SCSI Port and its miniports.
//!
//! Values are those of the WDK's `srb.h`; the layout test (`tests/layout.rs`) checks every size,
//! offset and value here against MinGW-w64's independent `<ddk/srb.h>`.

use crate::types::{
    BOOLEAN, DMA_SPEED, DMA_WIDTH, INTERFACE_TYPE, KINTERRUPT_MODE, PBOOLEAN, PCHAR, PHYSICAL_ADDRESS,
    PVOID, UCHAR, ULONG, USHORT,
};

// ---------------------------------------------------------------------------------------------
// Limits (ns-srb-_port_configuration_information)
// ---------------------------------------------------------------------------------------------

/// Default `MaximumNumberOfLogicalUnits` the port pre-sets (`ns-srb-_port_configuration_information`).
pub const SCSI_MAXIMUM_LOGICAL_UNITS: ULONG = 8;
/// Upper bound for `MaximumNumberOfTargets` (`ns-srb-_port_configuration_information`).
pub const SCSI_MAXIMUM_TARGETS_PER_BUS: ULONG = 128;
/// Largest LUN number per target (`srb.h`).
pub const SCSI_MAXIMUM_LUNS_PER_TARGET: ULONG = 255;
/// Largest `NumberOfBuses` (`ns-srb-_port_configuration_information`).
pub const SCSI_MAXIMUM_BUSES: ULONG = 8;
/// Smallest `NumberOfPhysicalBreaks` the port accepts (`srb.h`).
pub const SCSI_MINIMUM_PHYSICAL_BREAKS: ULONG = 16;
/// Largest `NumberOfPhysicalBreaks` (`srb.h`).
pub const SCSI_MAXIMUM_PHYSICAL_BREAKS: ULONG = 255;
/// Default `MaximumNumberOfTargets` the port pre-sets (`ns-srb-_port_configuration_information`).
pub const SCSI_MAXIMUM_TARGETS: ULONG = 8;

/// `Dma64BitAddresses`: the miniport handles 64-bit addresses (`ns-srb-_port_configuration_information`).
pub const SCSI_DMA64_MINIPORT_SUPPORTED: UCHAR = 0x01;
/// `Dma64BitAddresses`: the miniport handles full 64-bit addresses (`ns-srb-_port_configuration_information`).
pub const SCSI_DMA64_MINIPORT_FULL64BIT_SUPPORTED: UCHAR = 0x02;
/// `Dma64BitAddresses`: the system supports 64-bit addresses; pre-set by the port (`ns-srb-_port_configuration_information`).
pub const SCSI_DMA64_SYSTEM_SUPPORTED: UCHAR = 0x80;

/// A ConfigInfo value the port left unset (`ns-srb-_port_configuration_information`).
pub const SP_UNINITIALIZED_VALUE: ULONG = !0;
/// Wildcard path/target/LUN and "untagged" queue tag (`nf-srb-scsiportcompleterequest`, `nf-srb-scsiportgetsrb`).
pub const SP_UNTAGGED: UCHAR = !0;

/// Largest CDB the old header names (`srb.h`); the SRB itself carries 16 bytes.
pub const MAXIMUM_CDB_SIZE: ULONG = 12;

// ---------------------------------------------------------------------------------------------
// SCSI_REQUEST_BLOCK.Function (ns-srb-_scsi_request_block)
// ---------------------------------------------------------------------------------------------

/// Execute a CDB: the main I/O path (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_EXECUTE_SCSI: UCHAR = 0x00;
/// Port-handled; never reaches a miniport (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_CLAIM_DEVICE: UCHAR = 0x01;
/// Private IOCTL with an `SRB_IO_CONTROL` header (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_IO_CONTROL: UCHAR = 0x02;
/// Reserved for future use (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_RECEIVE_EVENT: UCHAR = 0x03;
/// Port-handled (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_RELEASE_QUEUE: UCHAR = 0x04;
/// Port-handled (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_ATTACH_DEVICE: UCHAR = 0x05;
/// Port-handled (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_RELEASE_DEVICE: UCHAR = 0x06;
/// Flush everything for the LU before shutdown; sent only when `CachesData` (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_SHUTDOWN: UCHAR = 0x07;
/// Flush the adapter's cache for the LU; sent only when `CachesData` (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_FLUSH: UCHAR = 0x08;
/// Abort the request in `NextSrb` (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_ABORT_COMMAND: UCHAR = 0x10;
/// Reserved for future use (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_RELEASE_RECOVERY: UCHAR = 0x11;
/// Reset the bus in `PathId` (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_RESET_BUS: UCHAR = 0x12;
/// Storport only; SCSI Port no longer sends it (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_RESET_DEVICE: UCHAR = 0x13;
/// Reserved for future use (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_TERMINATE_IO: UCHAR = 0x14;
/// Port-handled (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_FLUSH_QUEUE: UCHAR = 0x15;
/// Port-handled (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_REMOVE_DEVICE: UCHAR = 0x16;
/// WMI request in a `SCSI_WMI_REQUEST_BLOCK` (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_WMI: UCHAR = 0x17;
/// Port-handled (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_LOCK_QUEUE: UCHAR = 0x18;
/// Port-handled (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_UNLOCK_QUEUE: UCHAR = 0x19;
/// Storport only (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_RESET_LOGICAL_UNIT: UCHAR = 0x20;
/// Link timeout management (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_SET_LINK_TIMEOUT: UCHAR = 0x21;
/// Link timeout management (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_LINK_TIMEOUT_OCCURRED: UCHAR = 0x22;
/// Link timeout management (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_LINK_TIMEOUT_COMPLETE: UCHAR = 0x23;
/// Storport only (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_POWER: UCHAR = 0x24;
/// PnP notification in a `SCSI_PNP_REQUEST_BLOCK` (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_PNP: UCHAR = 0x25;
/// Storport only (`ns-srb-_scsi_request_block`).
pub const SRB_FUNCTION_DUMP_POINTERS: UCHAR = 0x26;
/// Storport only: free what `SRB_FUNCTION_DUMP_POINTERS` allocated (`ns-srb-_scsi_request_block`; `srb.h`).
pub const SRB_FUNCTION_FREE_DUMP_POINTERS: UCHAR = 0x27;
/// Storport only: the request is an extended `STORAGE_REQUEST_BLOCK` (`srb.h`).
pub const SRB_FUNCTION_STORAGE_REQUEST_BLOCK: UCHAR = 0x28;

// ---------------------------------------------------------------------------------------------
// SCSI_REQUEST_BLOCK.SrbStatus (ns-srb-_scsi_request_block)
// ---------------------------------------------------------------------------------------------

/// The port's initial value; never a completion status (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_PENDING: UCHAR = 0x00;
/// Completed successfully (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_SUCCESS: UCHAR = 0x01;
/// Aborted as `ABORT_COMMAND` asked (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_ABORTED: UCHAR = 0x02;
/// The request to abort could not be found (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_ABORT_FAILED: UCHAR = 0x03;
/// Failed; `ScsiStatus` tells why (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_ERROR: UCHAR = 0x04;
/// Cannot accept now; the port retries it (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_BUSY: UCHAR = 0x05;
/// Function or flags not supported (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_INVALID_REQUEST: UCHAR = 0x06;
/// No such bus (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_INVALID_PATH_ID: UCHAR = 0x07;
/// The device did not respond (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_NO_DEVICE: UCHAR = 0x08;
/// The request timed out (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_TIMEOUT: UCHAR = 0x09;
/// Selection of the target timed out (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_SELECTION_TIMEOUT: UCHAR = 0x0A;
/// The target did not complete the command in time (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_COMMAND_TIMEOUT: UCHAR = 0x0B;
/// The target rejected a message (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_MESSAGE_REJECTED: UCHAR = 0x0D;
/// A bus reset ended the request (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_BUS_RESET: UCHAR = 0x0E;
/// Parity error on the bus (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_PARITY_ERROR: UCHAR = 0x0F;
/// Auto request sense failed; only with `AutoRequestSense` (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_REQUEST_SENSE_FAILED: UCHAR = 0x10;
/// The HBA does not respond (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_NO_HBA: UCHAR = 0x11;
/// Data overrun or underrun; on underrun `DataTransferLength` is the bytes moved (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_DATA_OVERRUN: UCHAR = 0x12;
/// Unexpected bus free (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_UNEXPECTED_BUS_FREE: UCHAR = 0x13;
/// Illegal bus phase sequence (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_PHASE_SEQUENCE_FAILURE: UCHAR = 0x14;
/// Bad SRB length (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_BAD_SRB_BLOCK_LENGTH: UCHAR = 0x15;
/// Flushed from the queue (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_REQUEST_FLUSHED: UCHAR = 0x16;
/// No such LUN (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_INVALID_LUN: UCHAR = 0x20;
/// No such target (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_INVALID_TARGET_ID: UCHAR = 0x21;
/// Bad function (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_BAD_FUNCTION: UCHAR = 0x22;
/// Error recovery in progress (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_ERROR_RECOVERY: UCHAR = 0x23;
/// Storport era: device not powered (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_NOT_POWERED: UCHAR = 0x24;
/// Storport era: link down (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_LINK_DOWN: UCHAR = 0x25;
/// Storport era: out of resources (`srb.h` of the Windows 10 2004 kits; not in earlier ones).
pub const SRB_STATUS_INSUFFICIENT_RESOURCES: UCHAR = 0x26;
/// Storport era: throttled (`srb.h` of the Windows 10 2004 kits; not in earlier ones).
pub const SRB_STATUS_THROTTLED_REQUEST: UCHAR = 0x27;
/// Port only: the request could not be delivered (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_INTERNAL_ERROR: UCHAR = 0x30;
/// Flag: the port froze the LU queue; a miniport must never set it (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_QUEUE_FROZEN: UCHAR = 0x40;
/// Flag: sense data was returned in `SenseInfoBuffer` (`ns-srb-_scsi_request_block`).
pub const SRB_STATUS_AUTOSENSE_VALID: UCHAR = 0x80;

/// `SRB_STATUS(Status)`: the status without its two flag bits (`srb.h`).
#[must_use]
pub const fn SRB_STATUS(Status: UCHAR) -> UCHAR {
    Status & !(SRB_STATUS_AUTOSENSE_VALID | SRB_STATUS_QUEUE_FROZEN)
}

// ---------------------------------------------------------------------------------------------
// SCSI_REQUEST_BLOCK.SrbFlags (ns-srb-_scsi_request_block)
// ---------------------------------------------------------------------------------------------

/// `QueueAction` is valid (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_QUEUE_ACTION_ENABLE: ULONG = 0x0000_0002;
/// Do not allow disconnects (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_DISABLE_DISCONNECT: ULONG = 0x0000_0004;
/// Do not negotiate synchronous transfers (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_DISABLE_SYNCH_TRANSFER: ULONG = 0x0000_0008;
/// Irrelevant to miniports (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_BYPASS_FROZEN_QUEUE: ULONG = 0x0000_0010;
/// Return no sense data (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_DISABLE_AUTOSENSE: ULONG = 0x0000_0020;
/// Data moves from the device to memory (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_DATA_IN: ULONG = 0x0000_0040;
/// Data moves from memory to the device (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_DATA_OUT: ULONG = 0x0000_0080;
/// No data transfer (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_NO_DATA_TRANSFER: ULONG = 0x0000_0000;
/// Direction decided by the bus phase (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_UNSPECIFIED_DIRECTION: ULONG = SRB_FLAGS_DATA_IN | SRB_FLAGS_DATA_OUT;
/// Irrelevant to miniports (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_NO_QUEUE_FREEZE: ULONG = 0x0000_0100;
/// The adapter may cache the data (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_ADAPTER_CACHE_ENABLE: ULONG = 0x0000_0200;
/// Port-internal (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_FREE_SENSE_BUFFER: ULONG = 0x0000_0400;
/// Irrelevant to miniports (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_IS_ACTIVE: ULONG = 0x0001_0000;
/// Irrelevant to miniports (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_ALLOCATED_FROM_ZONE: ULONG = 0x0002_0000;
/// Irrelevant to miniports (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_SGLIST_FROM_POOL: ULONG = 0x0004_0000;
/// Irrelevant to miniports (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_BYPASS_LOCKED_QUEUE: ULONG = 0x0008_0000;
/// Irrelevant to miniports (`ns-srb-_scsi_request_block`).
pub const SRB_FLAGS_NO_KEEP_AWAKE: ULONG = 0x0010_0000;
/// Port-internal (`srb.h`).
pub const SRB_FLAGS_PORT_DRIVER_ALLOCSENSE: ULONG = 0x0020_0000;
/// Port-internal (`srb.h`).
pub const SRB_FLAGS_PORT_DRIVER_SENSEHASPORT: ULONG = 0x0040_0000;
/// Port-internal (`srb.h`).
pub const SRB_FLAGS_DONT_START_NEXT_PACKET: ULONG = 0x0080_0000;
/// Reserved for the port (`srb.h`).
pub const SRB_FLAGS_PORT_DRIVER_RESERVED: ULONG = 0x0F00_0000;
/// Reserved for class drivers (`srb.h`).
pub const SRB_FLAGS_CLASS_DRIVER_RESERVED: ULONG = 0xF000_0000;

/// `QueueAction`: simple tag (`ns-srb-_scsi_request_block`).
pub const SRB_SIMPLE_TAG_REQUEST: UCHAR = 0x20;
/// `QueueAction`: head-of-queue tag (`ns-srb-_scsi_request_block`).
pub const SRB_HEAD_OF_QUEUE_TAG_REQUEST: UCHAR = 0x21;
/// `QueueAction`: ordered tag (`ns-srb-_scsi_request_block`).
pub const SRB_ORDERED_QUEUE_TAG_REQUEST: UCHAR = 0x22;

// ---------------------------------------------------------------------------------------------
// ScsiPortLogError codes (nf-srb-scsiportlogerror)
// ---------------------------------------------------------------------------------------------

/// SCSI bus parity error (`nf-srb-scsiportlogerror`).
pub const SP_BUS_PARITY_ERROR: ULONG = 0x0001;
/// Unexpected disconnect (`nf-srb-scsiportlogerror`).
pub const SP_UNEXPECTED_DISCONNECT: ULONG = 0x0002;
/// Invalid reselection (`nf-srb-scsiportlogerror`).
pub const SP_INVALID_RESELECTION: ULONG = 0x0003;
/// Bus timed out (`nf-srb-scsiportlogerror`).
pub const SP_BUS_TIME_OUT: ULONG = 0x0004;
/// Protocol error (`nf-srb-scsiportlogerror`).
pub const SP_PROTOCOL_ERROR: ULONG = 0x0005;
/// Internal adapter error (`nf-srb-scsiportlogerror`).
pub const SP_INTERNAL_ADAPTER_ERROR: ULONG = 0x0006;
/// Request timed out (`nf-srb-scsiportlogerror`).
pub const SP_REQUEST_TIMEOUT: ULONG = 0x0007;
/// The IRQ does not respond (`nf-srb-scsiportlogerror`).
pub const SP_IRQ_NOT_RESPONDING: ULONG = 0x0008;
/// Firmware warning (`nf-srb-scsiportlogerror`).
pub const SP_BAD_FW_WARNING: ULONG = 0x0009;
/// Firmware error (`nf-srb-scsiportlogerror`).
pub const SP_BAD_FW_ERROR: ULONG = 0x000a;
/// A WMI request was lost (`srb.h`).
pub const SP_LOST_WMI_MINIPORT_REQUEST: ULONG = 0x000b;

/// `PortVersionFlags`: the miniport supports tracing (`srb.h`).
pub const SP_VER_TRACE_SUPPORT: USHORT = 0x0010;

// ---------------------------------------------------------------------------------------------
// HwScsiFindAdapter return values (nc-srb-phw_find_adapter)
// ---------------------------------------------------------------------------------------------

/// No supported HBA for this configuration (`nc-srb-phw_find_adapter`).
pub const SP_RETURN_NOT_FOUND: ULONG = 0;
/// HBA found and ConfigInfo filled in (`nc-srb-phw_find_adapter`).
pub const SP_RETURN_FOUND: ULONG = 1;
/// HBA found but its configuration could not be obtained (`nc-srb-phw_find_adapter`).
pub const SP_RETURN_ERROR: ULONG = 2;
/// The supplied configuration is invalid for the adapter (`nc-srb-phw_find_adapter`).
pub const SP_RETURN_BAD_CONFIG: ULONG = 3;

// ---------------------------------------------------------------------------------------------
// Structures
// ---------------------------------------------------------------------------------------------

/// `SCSI_PHYSICAL_ADDRESS`: a `PHYSICAL_ADDRESS` (`srb.h`).
pub type SCSI_PHYSICAL_ADDRESS = PHYSICAL_ADDRESS;
/// `PSCSI_PHYSICAL_ADDRESS` (`srb.h`).
pub type PSCSI_PHYSICAL_ADDRESS = *mut SCSI_PHYSICAL_ADDRESS;

/// `ACCESS_RANGE`: one bus-relative I/O or memory range of the HBA (`ns-srb-_access_range`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ACCESS_RANGE {
    /// Bus-relative start; never a mapped address (`ns-srb-_access_range`).
    pub RangeStart: SCSI_PHYSICAL_ADDRESS,
    /// Exactly the decoded size in bytes.
    pub RangeLength: ULONG,
    /// TRUE for memory space, FALSE for I/O space.
    pub RangeInMemory: BOOLEAN,
}
/// `PACCESS_RANGE` (`srb.h`).
pub type PACCESS_RANGE = *mut ACCESS_RANGE;

/// `PORT_CONFIGURATION_INFORMATION`: what the port knows about an HBA, completed by
/// `HwScsiFindAdapter` (`ns-srb-_port_configuration_information`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PORT_CONFIGURATION_INFORMATION {
    /// `sizeof` this structure; check it before touching later fields.
    pub Length: ULONG,
    /// System bus number of the HBA.
    pub SystemIoBusNumber: ULONG,
    /// Bus type, from `HW_INITIALIZATION_DATA`.
    pub AdapterInterfaceType: INTERFACE_TYPE,
    /// Interrupt level (IRQL source) the port assigned.
    pub BusInterruptLevel: ULONG,
    /// Interrupt vector the port assigned.
    pub BusInterruptVector: ULONG,
    /// `LevelSensitive` for PCI, `Latched` otherwise.
    pub InterruptMode: KINTERRUPT_MODE,
    /// Largest transfer the HBA handles; `SP_UNINITIALIZED_VALUE` = unlimited.
    pub MaximumTransferLength: ULONG,
    /// Scatter/gather elements minus one; may be lowered, never raised.
    pub NumberOfPhysicalBreaks: ULONG,
    /// Subordinate DMA channel.
    pub DmaChannel: ULONG,
    /// Subordinate DMA port.
    pub DmaPort: ULONG,
    /// Subordinate DMA width.
    pub DmaWidth: DMA_WIDTH,
    /// Subordinate DMA speed.
    pub DmaSpeed: DMA_SPEED,
    /// Buffer alignment the HBA needs (0, 1, 3 or 7).
    pub AlignmentMask: ULONG,
    /// Entries in `AccessRanges`.
    pub NumberOfAccessRanges: ULONG,
    /// `ACCESS_RANGE (*AccessRanges)[]`: the HBA's ranges.
    pub AccessRanges: PACCESS_RANGE,
    /// Reserved.
    pub Reserved: PVOID,
    /// Number of SCSI buses on the HBA.
    pub NumberOfBuses: UCHAR,
    /// The HBA's own SCSI ID on each bus.
    pub InitiatorBusId: [UCHAR; 8],
    /// TRUE if the HBA does scatter/gather.
    pub ScatterGather: BOOLEAN,
    /// TRUE for a bus-master HBA.
    pub Master: BOOLEAN,
    /// TRUE if the HBA caches data (the port then sends FLUSH and SHUTDOWN).
    pub CachesData: BOOLEAN,
    /// TRUE if the HBA scans from high to low IDs.
    pub AdapterScansDown: BOOLEAN,
    /// The primary AT disk range is claimed.
    pub AtdiskPrimaryClaimed: BOOLEAN,
    /// The secondary AT disk range is claimed.
    pub AtdiskSecondaryClaimed: BOOLEAN,
    /// TRUE if the HBA has 32 address lines.
    pub Dma32BitAddresses: BOOLEAN,
    /// Subordinate DMA demand mode.
    pub DemandMode: BOOLEAN,
    /// Data buffers are mapped to system virtual addresses.
    pub MapBuffers: BOOLEAN,
    /// The miniport translates addresses to physical ones.
    pub NeedPhysicalAddresses: BOOLEAN,
    /// The HBA supports tagged queuing.
    pub TaggedQueuing: BOOLEAN,
    /// The HBA does request sense itself.
    pub AutoRequestSense: BOOLEAN,
    /// Several requests per LU may be outstanding.
    pub MultipleRequestPerLu: BOOLEAN,
    /// The HBA supports receive-event SRBs.
    pub ReceiveEvent: BOOLEAN,
    /// A real-mode driver already initialised the HBA.
    pub RealModeInitialized: BOOLEAN,
    /// The miniport touches buffers only through `ScsiPortXxx` routines.
    pub BufferAccessScsiPortControlled: BOOLEAN,
    /// Targets per bus.
    pub MaximumNumberOfTargets: UCHAR,
    /// Reserved.
    pub ReservedUchars: [UCHAR; 2],
    /// Bus-relative slot of the HBA.
    pub SlotNumber: ULONG,
    /// Second interrupt; system use.
    pub BusInterruptLevel2: ULONG,
    /// Second interrupt vector; system use.
    pub BusInterruptVector2: ULONG,
    /// Second interrupt mode; system use.
    pub InterruptMode2: KINTERRUPT_MODE,
    /// Second DMA channel; system use.
    pub DmaChannel2: ULONG,
    /// Second DMA port; system use.
    pub DmaPort2: ULONG,
    /// Second DMA width; system use.
    pub DmaWidth2: DMA_WIDTH,
    /// Second DMA speed; system use.
    pub DmaSpeed2: DMA_SPEED,
    /// Device extension size; may be enlarged before `ScsiPortGetUncachedExtension`.
    pub DeviceExtensionSize: ULONG,
    /// LU extension size; may be enlarged before `ScsiPortGetUncachedExtension`.
    pub SpecificLuExtensionSize: ULONG,
    /// SRB extension size; may be enlarged before `ScsiPortGetUncachedExtension`.
    pub SrbExtensionSize: ULONG,
    /// `SCSI_DMA64_*` flags; final before `ScsiPortGetUncachedExtension`.
    pub Dma64BitAddresses: UCHAR,
    /// Obsolete.
    pub ResetTargetSupported: BOOLEAN,
    /// LUs per target.
    pub MaximumNumberOfLogicalUnits: UCHAR,
    /// The miniport handles `SRB_FUNCTION_WMI`.
    pub WmiDataProvider: BOOLEAN,
}
/// `PPORT_CONFIGURATION_INFORMATION` (`srb.h`).
pub type PPORT_CONFIGURATION_INFORMATION = *mut PORT_CONFIGURATION_INFORMATION;

/// `CONFIG_INFO_VERSION_2`: the size of the current `PORT_CONFIGURATION_INFORMATION` (`srb.h`).
#[allow(clippy::cast_possible_truncation)]
pub const CONFIG_INFO_VERSION_2: ULONG = core::mem::size_of::<PORT_CONFIGURATION_INFORMATION>() as ULONG;

/// `SCSI_ADAPTER_CONTROL_TYPE`: the operations of `HwScsiAdapterControl` (`nc-srb-phw_adapter_control`).
pub type SCSI_ADAPTER_CONTROL_TYPE = i32;
/// Report which control types the miniport supports (`nc-srb-phw_adapter_control`).
pub const ScsiQuerySupportedControlTypes: SCSI_ADAPTER_CONTROL_TYPE = 0;
/// Stop the HBA: no requests are outstanding (`nc-srb-phw_adapter_control`).
pub const ScsiStopAdapter: SCSI_ADAPTER_CONTROL_TYPE = 1;
/// Restart the HBA after a power-management stop (`nc-srb-phw_adapter_control`).
pub const ScsiRestartAdapter: SCSI_ADAPTER_CONTROL_TYPE = 2;
/// Restore the settings the BIOS needs (`nc-srb-phw_adapter_control`).
pub const ScsiSetBootConfig: SCSI_ADAPTER_CONTROL_TYPE = 3;
/// Restore the running settings, before a restart (`nc-srb-phw_adapter_control`).
pub const ScsiSetRunningConfig: SCSI_ADAPTER_CONTROL_TYPE = 4;
/// One past the last control type (`nc-srb-phw_adapter_control`).
pub const ScsiAdapterControlMax: SCSI_ADAPTER_CONTROL_TYPE = 5;
/// Forces the enum to 32 bits (`srb.h`).
pub const MakeAdapterControlTypeSizeOfUlong: SCSI_ADAPTER_CONTROL_TYPE = -1;
/// `PSCSI_ADAPTER_CONTROL_TYPE` (`srb.h`).
pub type PSCSI_ADAPTER_CONTROL_TYPE = *mut SCSI_ADAPTER_CONTROL_TYPE;

/// `SCSI_ADAPTER_CONTROL_STATUS` (`nc-srb-phw_adapter_control`).
pub type SCSI_ADAPTER_CONTROL_STATUS = i32;
/// What `HwScsiAdapterControl` must return for every type (`nc-srb-phw_adapter_control`).
pub const ScsiAdapterControlSuccess: SCSI_ADAPTER_CONTROL_STATUS = 0;
/// Reserved (`nc-srb-phw_adapter_control`).
pub const ScsiAdapterControlUnsuccessful: SCSI_ADAPTER_CONTROL_STATUS = 1;
/// `PSCSI_ADAPTER_CONTROL_STATUS` (`srb.h`).
pub type PSCSI_ADAPTER_CONTROL_STATUS = *mut SCSI_ADAPTER_CONTROL_STATUS;

/// `SCSI_SUPPORTED_CONTROL_TYPE_LIST`: the port-allocated answer buffer of
/// `ScsiQuerySupportedControlTypes`; never write past `SupportedTypeList[MaxControlType - 1]`
/// (`ns-srb-_scsi_supported_control_type_list`).
#[repr(C)]
#[derive(Debug)]
pub struct SCSI_SUPPORTED_CONTROL_TYPE_LIST {
    /// Number of entries the port allocated in `SupportedTypeList`.
    pub MaxControlType: ULONG,
    /// `BOOLEAN SupportedTypeList[0]`: a flexible array member.
    pub SupportedTypeList: [BOOLEAN; 0],
}
/// `PSCSI_SUPPORTED_CONTROL_TYPE_LIST` (`srb.h`).
pub type PSCSI_SUPPORTED_CONTROL_TYPE_LIST = *mut SCSI_SUPPORTED_CONTROL_TYPE_LIST;

/// The anonymous `InternalStatus` / `QueueSortKey` / `LinkTimeoutValue` union of the SRB
/// (`ns-srb-_scsi_request_block`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union SCSI_REQUEST_BLOCK_0 {
    /// Port ↔ class driver only.
    pub InternalStatus: ULONG,
    /// Sort key for the port's queue.
    pub QueueSortKey: ULONG,
    /// Link timeout, for `SRB_FUNCTION_SET_LINK_TIMEOUT`.
    pub LinkTimeoutValue: ULONG,
}

impl core::fmt::Debug for SCSI_REQUEST_BLOCK_0 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: every member is a ULONG over the same four bytes, so any bit pattern is valid.
        let value = unsafe { self.InternalStatus };
        f.debug_struct("SCSI_REQUEST_BLOCK_0").field("InternalStatus", &value).finish()
    }
}

/// `SCSI_REQUEST_BLOCK`: one request from the port to the miniport (`ns-srb-_scsi_request_block`).
///
/// A miniport may write only `SrbStatus`, `ScsiStatus`, `DataTransferLength` (underrun),
/// `SenseInfoBufferLength` (autosense) and, in narrow cases, direction flags and `Lun`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SCSI_REQUEST_BLOCK {
    /// `sizeof(SCSI_REQUEST_BLOCK)`.
    pub Length: USHORT,
    /// `SRB_FUNCTION_*`.
    pub Function: UCHAR,
    /// `SRB_STATUS_*`, set by the miniport before completion.
    pub SrbStatus: UCHAR,
    /// SCSI status byte from the target.
    pub ScsiStatus: UCHAR,
    /// Bus (0-based).
    pub PathId: UCHAR,
    /// Target ID on the bus.
    pub TargetId: UCHAR,
    /// Logical unit.
    pub Lun: UCHAR,
    /// Tag assigned by the port for tagged queuing.
    pub QueueTag: UCHAR,
    /// Tag message; valid with `SRB_FLAGS_QUEUE_ACTION_ENABLE`.
    pub QueueAction: UCHAR,
    /// Bytes of `Cdb` in use.
    pub CdbLength: UCHAR,
    /// Size of `SenseInfoBuffer`; on autosense, the bytes returned.
    pub SenseInfoBufferLength: UCHAR,
    /// `SRB_FLAGS_*`.
    pub SrbFlags: ULONG,
    /// Bytes to transfer; on underrun, the bytes transferred.
    pub DataTransferLength: ULONG,
    /// Seconds before the port times the request out.
    pub TimeOutValue: ULONG,
    /// Data buffer; dereference only with `MapBuffers`.
    pub DataBuffer: PVOID,
    /// Request-sense buffer.
    pub SenseInfoBuffer: PVOID,
    /// The SRB an `ABORT_COMMAND` targets.
    pub NextSrb: PSCSI_REQUEST_BLOCK,
    /// The IRP; not for miniports.
    pub OriginalRequest: PVOID,
    /// Per-request miniport memory, not initialised by the port.
    pub SrbExtension: PVOID,
    /// `InternalStatus` / `QueueSortKey` / `LinkTimeoutValue`.
    pub u: SCSI_REQUEST_BLOCK_0,
    /// Padding present on 64-bit Windows (`#if defined(_WIN64)`).
    #[cfg(target_pointer_width = "64")]
    pub Reserved: ULONG,
    /// The command descriptor block.
    pub Cdb: [UCHAR; 16],
}
/// `PSCSI_REQUEST_BLOCK` (`srb.h`).
pub type PSCSI_REQUEST_BLOCK = *mut SCSI_REQUEST_BLOCK;

/// `SCSI_REQUEST_BLOCK_SIZE` (`srb.h`).
#[allow(clippy::cast_possible_truncation)]
pub const SCSI_REQUEST_BLOCK_SIZE: USHORT = core::mem::size_of::<SCSI_REQUEST_BLOCK>() as USHORT;

// ---------------------------------------------------------------------------------------------
// Miniport routine types (nc-srb-*)
// ---------------------------------------------------------------------------------------------

/// `HwScsiInitialize` (`nc-srb-phw_initialize`).
pub type PHW_INITIALIZE = Option<unsafe extern "win64" fn(DeviceExtension: PVOID) -> BOOLEAN>;
/// `HwScsiStartIo` (`nc-srb-phw_startio`).
pub type PHW_STARTIO =
    Option<unsafe extern "win64" fn(DeviceExtension: PVOID, Srb: PSCSI_REQUEST_BLOCK) -> BOOLEAN>;
/// `HwScsiInterrupt`, and the two `HwScsi..InterruptsCallback` routines (`nc-srb-phw_interrupt`).
pub type PHW_INTERRUPT = Option<unsafe extern "win64" fn(DeviceExtension: PVOID) -> BOOLEAN>;
/// `HwScsiTimer` (`nc-srb-phw_timer`).
pub type PHW_TIMER = Option<unsafe extern "win64" fn(DeviceExtension: PVOID)>;
/// `HwScsiDmaStarted` (`nc-srb-phw_dma_started`).
pub type PHW_DMA_STARTED = Option<unsafe extern "win64" fn(DeviceExtension: PVOID)>;
/// `HwScsiFindAdapter` (`nc-srb-phw_find_adapter`).
pub type PHW_FIND_ADAPTER = Option<
    unsafe extern "win64" fn(
        DeviceExtension: PVOID,
        HwContext: PVOID,
        BusInformation: PVOID,
        ArgumentString: PCHAR,
        ConfigInfo: PPORT_CONFIGURATION_INFORMATION,
        Again: PBOOLEAN,
    ) -> ULONG,
>;
/// `HwScsiResetBus` (`nc-srb-phw_reset_bus`).
pub type PHW_RESET_BUS = Option<unsafe extern "win64" fn(DeviceExtension: PVOID, PathId: ULONG) -> BOOLEAN>;
/// `HwScsiAdapterState` (`nc-srb-phw_adapter_state`).
pub type PHW_ADAPTER_STATE =
    Option<unsafe extern "win64" fn(DeviceExtension: PVOID, Context: PVOID, SaveState: BOOLEAN) -> BOOLEAN>;
/// `HwScsiAdapterControl` (`nc-srb-phw_adapter_control`).
pub type PHW_ADAPTER_CONTROL = Option<
    unsafe extern "win64" fn(
        DeviceExtension: PVOID,
        ControlType: SCSI_ADAPTER_CONTROL_TYPE,
        Parameters: PVOID,
    ) -> SCSI_ADAPTER_CONTROL_STATUS,
>;

// ---------------------------------------------------------------------------------------------
// ScsiPortNotification (nf-srb-scsiportnotification)
// ---------------------------------------------------------------------------------------------

/// `SCSI_NOTIFICATION_TYPE`: the first argument of `ScsiPortNotification` (`nf-srb-scsiportnotification`).
pub type SCSI_NOTIFICATION_TYPE = i32;
/// The SRB that follows is finished (`nf-srb-scsiportnotification`).
pub const RequestComplete: SCSI_NOTIFICATION_TYPE = 0;
/// Ready for another request to a target that is not busy (`nf-srb-scsiportnotification`).
pub const NextRequest: SCSI_NOTIFICATION_TYPE = 1;
/// Ready for another request to the LU that follows (`nf-srb-scsiportnotification`).
pub const NextLuRequest: SCSI_NOTIFICATION_TYPE = 2;
/// The HBA saw a SCSI bus reset (`nf-srb-scsiportnotification`).
pub const ResetDetected: SCSI_NOTIFICATION_TYPE = 3;
/// From `HwScsiEnableInterruptsCallback`: run the disable callback that follows (`nf-srb-scsiportnotification`).
pub const CallDisableInterrupts: SCSI_NOTIFICATION_TYPE = 4;
/// From `HwScsiInterrupt`, HBA interrupts masked: run the enable callback that follows (`nf-srb-scsiportnotification`).
pub const CallEnableInterrupts: SCSI_NOTIFICATION_TYPE = 5;
/// Call the `HwScsiTimer` that follows after the given microseconds (`nf-srb-scsiportnotification`).
pub const RequestTimerCall: SCSI_NOTIFICATION_TYPE = 6;
/// A target may have come or gone on the bus that follows (`nf-srb-scsiportnotification`).
pub const BusChangeDetected: SCSI_NOTIFICATION_TYPE = 7;
/// Post a WMI event (`nf-srb-scsiportnotification`).
pub const WMIEvent: SCSI_NOTIFICATION_TYPE = 8;
/// WMI data blocks changed (`nf-srb-scsiportnotification`).
pub const WMIReregister: SCSI_NOTIFICATION_TYPE = 9;
/// Storport only (`nf-storport-storportnotification`).
pub const LinkUp: SCSI_NOTIFICATION_TYPE = 10;
/// Storport only (`nf-storport-storportnotification`).
pub const LinkDown: SCSI_NOTIFICATION_TYPE = 11;
/// Storport only (`nf-storport-storportnotification`).
pub const QueryTickCount: SCSI_NOTIFICATION_TYPE = 12;
/// Storport only (`nf-storport-storportnotification`).
pub const BufferOverrunDetected: SCSI_NOTIFICATION_TYPE = 13;
/// Storport only (`nf-storport-storportnotification`).
pub const TraceNotification: SCSI_NOTIFICATION_TYPE = 14;
/// `PSCSI_NOTIFICATION_TYPE` (`srb.h`).
pub type PSCSI_NOTIFICATION_TYPE = *mut SCSI_NOTIFICATION_TYPE;

// ---------------------------------------------------------------------------------------------
// HW_INITIALIZATION_DATA (ns-srb-_hw_initialization_data)
// ---------------------------------------------------------------------------------------------

/// The anonymous `ReservedUshort` / `PortVersionFlags` union of `HW_INITIALIZATION_DATA`
/// (`ns-srb-_hw_initialization_data`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union HW_INITIALIZATION_DATA_0 {
    /// Reserved.
    pub ReservedUshort: USHORT,
    /// `SP_VER_*` flags.
    pub PortVersionFlags: USHORT,
}

impl core::fmt::Debug for HW_INITIALIZATION_DATA_0 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: both members are a USHORT over the same two bytes, so any bit pattern is valid.
        let value = unsafe { self.PortVersionFlags };
        f.debug_struct("HW_INITIALIZATION_DATA_0").field("PortVersionFlags", &value).finish()
    }
}

/// `HW_INITIALIZATION_DATA`: what `DriverEntry` hands `ScsiPortInitialize`; zero it entirely first
/// (`ns-srb-_hw_initialization_data`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HW_INITIALIZATION_DATA {
    /// `sizeof(HW_INITIALIZATION_DATA)`; acts as the version.
    pub HwInitializationDataSize: ULONG,
    /// Bus type of the HBAs this call covers.
    pub AdapterInterfaceType: INTERFACE_TYPE,
    /// Required.
    pub HwInitialize: PHW_INITIALIZE,
    /// Required.
    pub HwStartIo: PHW_STARTIO,
    /// NULL only for polling drivers.
    pub HwInterrupt: PHW_INTERRUPT,
    /// Required.
    pub HwFindAdapter: PHW_FIND_ADAPTER,
    /// Required.
    pub HwResetBus: PHW_RESET_BUS,
    /// Subordinate DMA only.
    pub HwDmaStarted: PHW_DMA_STARTED,
    /// x86 real-mode BIOS HBAs only.
    pub HwAdapterState: PHW_ADAPTER_STATE,
    /// Bytes of per-HBA extension; zeroed by the port.
    pub DeviceExtensionSize: ULONG,
    /// Bytes of per-LU extension; zeroed by the port.
    pub SpecificLuExtensionSize: ULONG,
    /// Bytes of per-request extension; not initialised by the port.
    pub SrbExtensionSize: ULONG,
    /// Access ranges the HBA uses.
    pub NumberOfAccessRanges: ULONG,
    /// Reserved.
    pub Reserved: PVOID,
    /// Map data buffers to system virtual addresses.
    pub MapBuffers: BOOLEAN,
    /// The miniport needs physical addresses.
    pub NeedPhysicalAddresses: BOOLEAN,
    /// The HBA supports tagged queuing.
    pub TaggedQueuing: BOOLEAN,
    /// The HBA does request sense itself.
    pub AutoRequestSense: BOOLEAN,
    /// Several requests per LU.
    pub MultipleRequestPerLu: BOOLEAN,
    /// Receive-event SRBs.
    pub ReceiveEvent: BOOLEAN,
    /// Bytes at `VendorId`.
    pub VendorIdLength: USHORT,
    /// ASCII vendor ID ("15AD" for PCI); irrelevant under PnP.
    pub VendorId: PVOID,
    /// `ReservedUshort` / `PortVersionFlags`.
    pub u: HW_INITIALIZATION_DATA_0,
    /// Bytes at `DeviceId`.
    pub DeviceIdLength: USHORT,
    /// ASCII device ID ("07C0"); irrelevant under PnP.
    pub DeviceId: PVOID,
    /// Required for PnP miniports.
    pub HwAdapterControl: PHW_ADAPTER_CONTROL,
}
/// `PHW_INITIALIZATION_DATA` (`srb.h`).
pub type PHW_INITIALIZATION_DATA = *mut HW_INITIALIZATION_DATA;

// ---------------------------------------------------------------------------------------------
// Asynchronous events, bus/target packing, WMI/power/PnP request blocks (srb.h)
// ---------------------------------------------------------------------------------------------

/// Receive-event mask: a SCSI bus reset (`srb.h`).
pub const SRBEV_BUS_RESET: ULONG = 0x0001;
/// Receive-event mask: a SCSI asynchronous event notification (`srb.h`).
pub const SRBEV_SCSI_ASYNC_NOTIFICATION: ULONG = 0x0002;

/// `SCSI_PORT_SIGNATURE`: "PORT" in little-endian ASCII; `srb.h` defines it only under `#if DBG==1`.
pub const SCSI_PORT_SIGNATURE: ULONG = 0x5452_4f50;

/// `WMIFlags`: the WMI request is for the adapter, not a logical unit (`ns-srb-_scsi_wmi_request_block`).
pub const SRB_WMI_FLAGS_ADAPTER_REQUEST: UCHAR = 0x01;
/// `SrbPowerFlags`: the power request is for the adapter (`ns-srb-_scsi_power_request_block`).
pub const SRB_POWER_FLAGS_ADAPTER_REQUEST: UCHAR = 0x01;
/// `SrbPnPFlags`: the PnP request is for the adapter (`ns-srb-_scsi_pnp_request_block`).
pub const SRB_PNP_FLAGS_ADAPTER_REQUEST: ULONG = 0x0000_0001;

/// `SCSI_COMBINE_BUS_TARGET(Bus, Target)`: packs a bus number and a target ID above 31 into one
/// value; target bits 0..5 stay low, the bus goes to bits 5..13, target bits 5..8 to bits 13..16
/// (a macro in `srb.h`).
#[must_use]
#[inline]
pub const fn SCSI_COMBINE_BUS_TARGET(Bus: UCHAR, Target: UCHAR) -> ULONG {
    let target = Target as ULONG;
    let bus = Bus as ULONG;
    ((target & !(0x20 - 1)) << 8) | (bus << 5) | (target & (0x20 - 1))
}

/// `SCSI_DECODE_BUS_TARGET(Value, Bus, Target)`: the inverse of [`SCSI_COMBINE_BUS_TARGET`] for
/// bus numbers below 8; returns `(Bus, Target)` (a macro in `srb.h`).
#[must_use]
#[inline]
#[allow(clippy::cast_possible_truncation)]
pub const fn SCSI_DECODE_BUS_TARGET(Value: ULONG) -> (UCHAR, UCHAR) {
    let bus = (Value >> 5) as UCHAR;
    let target = (((Value >> 8) & !(0x20 - 1)) | (Value & (0x20 - 1))) as UCHAR;
    (bus, target)
}

/// `SCSI_WMI_REQUEST_BLOCK`: the SRB of `SRB_FUNCTION_WMI` (`ns-srb-_scsi_wmi_request_block`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SCSI_WMI_REQUEST_BLOCK {
    /// `sizeof(SCSI_REQUEST_BLOCK)`.
    pub Length: USHORT,
    /// `SRB_FUNCTION_WMI`.
    pub Function: UCHAR,
    /// `SRB_STATUS_*`, set by the miniport.
    pub SrbStatus: UCHAR,
    /// The WMI operation (`IRP_MN_*` WMI minor code).
    pub WMISubFunction: UCHAR,
    /// Bus, unless `SRB_WMI_FLAGS_ADAPTER_REQUEST`.
    pub PathId: UCHAR,
    /// Target, unless `SRB_WMI_FLAGS_ADAPTER_REQUEST`.
    pub TargetId: UCHAR,
    /// Logical unit, unless `SRB_WMI_FLAGS_ADAPTER_REQUEST`.
    pub Lun: UCHAR,
    /// Reserved.
    pub Reserved1: UCHAR,
    /// `SRB_WMI_FLAGS_*`.
    pub WMIFlags: UCHAR,
    /// Reserved.
    pub Reserved2: [UCHAR; 2],
    /// `SRB_FLAGS_*`.
    pub SrbFlags: ULONG,
    /// Size of `DataBuffer`.
    pub DataTransferLength: ULONG,
    /// Seconds before the port times the request out.
    pub TimeOutValue: ULONG,
    /// The WMI parameter buffer.
    pub DataBuffer: PVOID,
    /// The WMI data path (a GUID).
    pub DataPath: PVOID,
    /// Reserved.
    pub Reserved3: PVOID,
    /// The IRP; not for miniports.
    pub OriginalRequest: PVOID,
    /// Per-request miniport memory.
    pub SrbExtension: PVOID,
    /// Reserved.
    pub Reserved4: ULONG,
    /// Padding present on 64-bit Windows (`#if (NTDDI_VERSION >= NTDDI_WS03SP1) && defined(_WIN64)`).
    #[cfg(target_pointer_width = "64")]
    pub Reserved6: ULONG,
    /// Reserved; overlays the SRB's `Cdb`.
    pub Reserved5: [UCHAR; 16],
}
/// `PSCSI_WMI_REQUEST_BLOCK` (`srb.h`).
pub type PSCSI_WMI_REQUEST_BLOCK = *mut SCSI_WMI_REQUEST_BLOCK;

/// `STOR_DEVICE_POWER_STATE`: device power state of a power SRB (`ns-srb-_scsi_power_request_block`).
pub type STOR_DEVICE_POWER_STATE = i32;
/// Unspecified (`ns-srb-_scsi_power_request_block`).
pub const StorPowerDeviceUnspecified: STOR_DEVICE_POWER_STATE = 0;
/// D0, fully on (`ns-srb-_scsi_power_request_block`).
pub const StorPowerDeviceD0: STOR_DEVICE_POWER_STATE = 1;
/// D1 (`ns-srb-_scsi_power_request_block`).
pub const StorPowerDeviceD1: STOR_DEVICE_POWER_STATE = 2;
/// D2 (`ns-srb-_scsi_power_request_block`).
pub const StorPowerDeviceD2: STOR_DEVICE_POWER_STATE = 3;
/// D3, off (`ns-srb-_scsi_power_request_block`).
pub const StorPowerDeviceD3: STOR_DEVICE_POWER_STATE = 4;
/// One past the last state (`srb.h`).
pub const StorPowerDeviceMaximum: STOR_DEVICE_POWER_STATE = 5;
/// `PSTOR_DEVICE_POWER_STATE` (`srb.h`).
pub type PSTOR_DEVICE_POWER_STATE = *mut STOR_DEVICE_POWER_STATE;

/// `STOR_POWER_ACTION`: the system power action behind a power SRB (`ns-srb-_scsi_power_request_block`).
pub type STOR_POWER_ACTION = i32;
/// No system action (`ns-srb-_scsi_power_request_block`).
pub const StorPowerActionNone: STOR_POWER_ACTION = 0;
/// Reserved (`ns-srb-_scsi_power_request_block`).
pub const StorPowerActionReserved: STOR_POWER_ACTION = 1;
/// Sleep (`ns-srb-_scsi_power_request_block`).
pub const StorPowerActionSleep: STOR_POWER_ACTION = 2;
/// Hibernate (`ns-srb-_scsi_power_request_block`).
pub const StorPowerActionHibernate: STOR_POWER_ACTION = 3;
/// Shutdown (`ns-srb-_scsi_power_request_block`).
pub const StorPowerActionShutdown: STOR_POWER_ACTION = 4;
/// Shutdown and reset (`ns-srb-_scsi_power_request_block`).
pub const StorPowerActionShutdownReset: STOR_POWER_ACTION = 5;
/// Shutdown and power off (`ns-srb-_scsi_power_request_block`).
pub const StorPowerActionShutdownOff: STOR_POWER_ACTION = 6;
/// Warm eject (`ns-srb-_scsi_power_request_block`).
pub const StorPowerActionWarmEject: STOR_POWER_ACTION = 7;
/// `PSTOR_POWER_ACTION` (`srb.h`).
pub type PSTOR_POWER_ACTION = *mut STOR_POWER_ACTION;

/// `SCSI_POWER_REQUEST_BLOCK`: the SRB of `SRB_FUNCTION_POWER` (`ns-srb-_scsi_power_request_block`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SCSI_POWER_REQUEST_BLOCK {
    /// `sizeof(SCSI_REQUEST_BLOCK)`.
    pub Length: USHORT,
    /// `SRB_FUNCTION_POWER`.
    pub Function: UCHAR,
    /// `SRB_STATUS_*`, set by the miniport.
    pub SrbStatus: UCHAR,
    /// `SRB_POWER_FLAGS_*`.
    pub SrbPowerFlags: UCHAR,
    /// Bus.
    pub PathId: UCHAR,
    /// Target.
    pub TargetId: UCHAR,
    /// Logical unit.
    pub Lun: UCHAR,
    /// Requested device power state.
    pub DevicePowerState: STOR_DEVICE_POWER_STATE,
    /// `SRB_FLAGS_*`.
    pub SrbFlags: ULONG,
    /// Unused.
    pub DataTransferLength: ULONG,
    /// Seconds before the port times the request out.
    pub TimeOutValue: ULONG,
    /// Unused.
    pub DataBuffer: PVOID,
    /// Unused.
    pub SenseInfoBuffer: PVOID,
    /// Unused.
    pub NextSrb: PSCSI_REQUEST_BLOCK,
    /// The IRP; not for miniports.
    pub OriginalRequest: PVOID,
    /// Per-request miniport memory.
    pub SrbExtension: PVOID,
    /// The system power action behind the request.
    pub PowerAction: STOR_POWER_ACTION,
    /// Padding present on 64-bit Windows (`#if defined(_WIN64)`).
    #[cfg(target_pointer_width = "64")]
    pub Reserved: ULONG,
    /// Reserved; overlays the SRB's `Cdb`.
    pub Reserved5: [UCHAR; 16],
}
/// `PSCSI_POWER_REQUEST_BLOCK` (`srb.h`).
pub type PSCSI_POWER_REQUEST_BLOCK = *mut SCSI_POWER_REQUEST_BLOCK;

/// `STOR_PNP_ACTION`: the PnP minor code behind a PnP SRB (`ns-srb-_scsi_pnp_request_block`).
pub type STOR_PNP_ACTION = i32;
/// `IRP_MN_START_DEVICE` (`ns-srb-_scsi_pnp_request_block`).
pub const StorStartDevice: STOR_PNP_ACTION = 0x0;
/// `IRP_MN_REMOVE_DEVICE` (`ns-srb-_scsi_pnp_request_block`).
pub const StorRemoveDevice: STOR_PNP_ACTION = 0x2;
/// `IRP_MN_STOP_DEVICE` (`ns-srb-_scsi_pnp_request_block`).
pub const StorStopDevice: STOR_PNP_ACTION = 0x4;
/// `IRP_MN_QUERY_CAPABILITIES` (`ns-srb-_scsi_pnp_request_block`).
pub const StorQueryCapabilities: STOR_PNP_ACTION = 0x9;
/// `IRP_MN_QUERY_RESOURCE_REQUIREMENTS` (`ns-srb-_scsi_pnp_request_block`).
pub const StorQueryResourceRequirements: STOR_PNP_ACTION = 0xB;
/// `IRP_MN_FILTER_RESOURCE_REQUIREMENTS` (`ns-srb-_scsi_pnp_request_block`).
pub const StorFilterResourceRequirements: STOR_PNP_ACTION = 0xD;
/// `IRP_MN_SURPRISE_REMOVAL` (`ns-srb-_scsi_pnp_request_block`).
pub const StorSurpriseRemoval: STOR_PNP_ACTION = 0x17;
/// `PSTOR_PNP_ACTION` (`srb.h`).
pub type PSTOR_PNP_ACTION = *mut STOR_PNP_ACTION;

/// `STOR_DEVICE_CAPABILITIES`: what a miniport reports for `StorQueryCapabilities`
/// (`ns-srb-_stor_device_capabilities`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct STOR_DEVICE_CAPABILITIES {
    /// Structure version.
    pub Version: USHORT,
    /// `DeviceD1` .. `NoDisplayInUI`, one bit each; see the accessor methods.
    pub bitfield_1: ULONG,
}
/// `PSTOR_DEVICE_CAPABILITIES` (`srb.h`).
pub type PSTOR_DEVICE_CAPABILITIES = *mut STOR_DEVICE_CAPABILITIES;

crate::bitfield::bitfields! {
    impl STOR_DEVICE_CAPABILITIES.bitfield_1: ULONG {
        DeviceD1, set_DeviceD1: 0, 1;
        DeviceD2, set_DeviceD2: 1, 1;
        LockSupported, set_LockSupported: 2, 1;
        EjectSupported, set_EjectSupported: 3, 1;
        Removable, set_Removable: 4, 1;
        DockDevice, set_DockDevice: 5, 1;
        UniqueID, set_UniqueID: 6, 1;
        SilentInstall, set_SilentInstall: 7, 1;
        SurpriseRemovalOK, set_SurpriseRemovalOK: 8, 1;
        NoDisplayInUI, set_NoDisplayInUI: 9, 1;
    }
}

/// `SCSI_PNP_REQUEST_BLOCK`: the SRB of `SRB_FUNCTION_PNP` (`ns-srb-_scsi_pnp_request_block`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SCSI_PNP_REQUEST_BLOCK {
    /// `sizeof(SCSI_REQUEST_BLOCK)`.
    pub Length: USHORT,
    /// `SRB_FUNCTION_PNP`.
    pub Function: UCHAR,
    /// `SRB_STATUS_*`, set by the miniport.
    pub SrbStatus: UCHAR,
    /// The PnP minor function.
    pub PnPSubFunction: UCHAR,
    /// Bus.
    pub PathId: UCHAR,
    /// Target.
    pub TargetId: UCHAR,
    /// Logical unit.
    pub Lun: UCHAR,
    /// `Stor*` PnP action.
    pub PnPAction: STOR_PNP_ACTION,
    /// `SRB_FLAGS_*`.
    pub SrbFlags: ULONG,
    /// Size of `DataBuffer`.
    pub DataTransferLength: ULONG,
    /// Seconds before the port times the request out.
    pub TimeOutValue: ULONG,
    /// Action-specific buffer (e.g. `STOR_DEVICE_CAPABILITIES`).
    pub DataBuffer: PVOID,
    /// Unused.
    pub SenseInfoBuffer: PVOID,
    /// Unused.
    pub NextSrb: PSCSI_REQUEST_BLOCK,
    /// The IRP; not for miniports.
    pub OriginalRequest: PVOID,
    /// Per-request miniport memory.
    pub SrbExtension: PVOID,
    /// `SRB_PNP_FLAGS_*`.
    pub SrbPnPFlags: ULONG,
    /// Padding present on 64-bit Windows (`#if defined(_WIN64)`).
    #[cfg(target_pointer_width = "64")]
    pub Reserved: ULONG,
    /// Reserved; overlays the SRB's `Cdb`.
    pub Reserved4: [UCHAR; 16],
}
/// `PSCSI_PNP_REQUEST_BLOCK` (`srb.h`).
pub type PSCSI_PNP_REQUEST_BLOCK = *mut SCSI_PNP_REQUEST_BLOCK;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srb_status_strips_the_two_flag_bits() {
        assert_eq!(SRB_STATUS(SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID), SRB_STATUS_ERROR);
        assert_eq!(SRB_STATUS(SRB_STATUS_BUSY | SRB_STATUS_QUEUE_FROZEN), SRB_STATUS_BUSY);
        assert_eq!(SRB_STATUS(SRB_STATUS_SUCCESS), SRB_STATUS_SUCCESS);
        assert_eq!(SRB_STATUS(0xFF), 0x3F);
    }

    #[test]
    fn bus_and_target_round_trip() {
        for bus in 0..8u8 {
            for target in 0..=255u8 {
                let packed = SCSI_COMBINE_BUS_TARGET(bus, target);
                assert_eq!(SCSI_DECODE_BUS_TARGET(packed), (bus, target), "bus {bus} target {target}");
            }
        }
        assert_eq!(SCSI_COMBINE_BUS_TARGET(1, 2), 0x22);
        assert_eq!(SCSI_COMBINE_BUS_TARGET(0, 0x40), 0x4000);
    }

    #[test]
    fn device_capability_bits() {
        let mut caps = STOR_DEVICE_CAPABILITIES::default();
        caps.set_SurpriseRemovalOK(1);
        caps.set_Removable(7);
        assert_eq!(caps.bitfield_1, 0x110);
        assert_eq!(caps.SurpriseRemovalOK(), 1);
        assert_eq!(caps.Removable(), 1);
        assert_eq!(caps.DeviceD1(), 0);
        caps.set_Removable(0);
        assert_eq!(caps.bitfield_1, 0x100);
    }

    #[test]
    fn request_block_sizes_match_the_srb_on_64_bit() {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(core::mem::size_of::<SCSI_REQUEST_BLOCK>(), 88);
            assert_eq!(core::mem::size_of::<SCSI_WMI_REQUEST_BLOCK>(), 88);
            assert_eq!(core::mem::size_of::<SCSI_POWER_REQUEST_BLOCK>(), 88);
            assert_eq!(core::mem::size_of::<SCSI_PNP_REQUEST_BLOCK>(), 88);
        }
    }
}
