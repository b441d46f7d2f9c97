//! PCI configuration space as `wdm.h` (and `miniport.h`) define it, for `ScsiPortGetBusData`
//! with `PCIConfiguration`.

use crate::types::{UCHAR, ULONG, USHORT};

/// Base address registers in a type 0 (device) header (`wdm.h`).
pub const PCI_TYPE0_ADDRESSES: usize = 6;
/// Base address registers in a type 1 (PCI-to-PCI bridge) header (`wdm.h`).
pub const PCI_TYPE1_ADDRESSES: usize = 2;
/// Base address registers in a type 2 (CardBus bridge) header (`wdm.h`).
pub const PCI_TYPE2_ADDRESSES: usize = 5;

/// `PCI_COMMON_HDR_LENGTH`: bytes before `DeviceSpecific` in `PCI_COMMON_CONFIG` (`wdm.h`).
#[allow(clippy::cast_possible_truncation)]
pub const PCI_COMMON_HDR_LENGTH: ULONG = core::mem::offset_of!(PCI_COMMON_CONFIG, DeviceSpecific) as ULONG;
/// Size of PCI Express extended configuration space (`wdm.h`).
pub const PCI_EXTENDED_CONFIG_LENGTH: ULONG = 0x1000;
/// Devices per PCI bus (`wdm.h`).
pub const PCI_MAX_DEVICES: ULONG = 32;
/// Functions per PCI device (`wdm.h`).
pub const PCI_MAX_FUNCTION: ULONG = 8;
/// Largest bridge (bus) number (`wdm.h`).
pub const PCI_MAX_BRIDGE_NUMBER: ULONG = 0xFF;
/// `VendorID` read from an empty slot (`wdm.h`, `nf-srb-scsiportgetbusdata`).
pub const PCI_INVALID_VENDORID: USHORT = 0xFFFF;

/// `HeaderType` flag: the device has several functions (`wdm.h`).
pub const PCI_MULTIFUNCTION: UCHAR = 0x80;
/// `HeaderType` layout 0: a device (`wdm.h`).
pub const PCI_DEVICE_TYPE: UCHAR = 0x00;
/// `HeaderType` layout 1: a PCI-to-PCI bridge (`wdm.h`).
pub const PCI_BRIDGE_TYPE: UCHAR = 0x01;
/// `HeaderType` layout 2: a CardBus bridge (`wdm.h`).
pub const PCI_CARDBUS_BRIDGE_TYPE: UCHAR = 0x02;

/// `Command`: respond to I/O space accesses (`wdm.h`).
pub const PCI_ENABLE_IO_SPACE: USHORT = 0x0001;
/// `Command`: respond to memory space accesses (`wdm.h`).
pub const PCI_ENABLE_MEMORY_SPACE: USHORT = 0x0002;
/// `Command`: the device may master the bus (DMA) (`wdm.h`).
pub const PCI_ENABLE_BUS_MASTER: USHORT = 0x0004;
/// `Command`: special cycles (`wdm.h`).
pub const PCI_ENABLE_SPECIAL_CYCLES: USHORT = 0x0008;
/// `Command`: memory write and invalidate (`wdm.h`).
pub const PCI_ENABLE_WRITE_AND_INVALIDATE: USHORT = 0x0010;
/// `Command`: VGA palette snooping (`wdm.h`).
pub const PCI_ENABLE_VGA_COMPATIBLE_PALETTE: USHORT = 0x0020;
/// `Command`: parity error response (`wdm.h`).
pub const PCI_ENABLE_PARITY: USHORT = 0x0040;
/// `Command`: wait cycle control (`wdm.h`).
pub const PCI_ENABLE_WAIT_CYCLE: USHORT = 0x0080;
/// `Command`: SERR# driver (`wdm.h`).
pub const PCI_ENABLE_SERR: USHORT = 0x0100;
/// `Command`: fast back-to-back transactions (`wdm.h`).
pub const PCI_ENABLE_FAST_BACK_TO_BACK: USHORT = 0x0200;
/// `Command`: INTx disable (`wdm.h`).
pub const PCI_DISABLE_LEVEL_INTERRUPT: USHORT = 0x0400;

/// `Status`: INTx is asserted (`wdm.h`).
pub const PCI_STATUS_INTERRUPT_PENDING: USHORT = 0x0008;
/// `Status`: `CapabilitiesPtr` is valid (`wdm.h`).
pub const PCI_STATUS_CAPABILITIES_LIST: USHORT = 0x0010;

/// `PCI_SLOT_NUMBER`: device and function number as `ScsiPortGetBusData` takes a slot (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PCI_SLOT_NUMBER {
    /// `bits` / `AsULONG`.
    pub u: PCI_SLOT_NUMBER_0,
}
/// `PPCI_SLOT_NUMBER` (`wdm.h`).
pub type PPCI_SLOT_NUMBER = *mut PCI_SLOT_NUMBER;

/// The `u` union of `PCI_SLOT_NUMBER` (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union PCI_SLOT_NUMBER_0 {
    /// Device and function number as bit fields.
    pub bits: PCI_SLOT_NUMBER_0_0,
    /// The whole slot number.
    pub AsULONG: ULONG,
}

impl Default for PCI_SLOT_NUMBER_0 {
    fn default() -> Self {
        Self { AsULONG: 0 }
    }
}

impl PartialEq for PCI_SLOT_NUMBER_0 {
    fn eq(&self, other: &Self) -> bool {
        // SAFETY: both members cover the same four bytes and any bit pattern is a valid ULONG.
        let (a, b) = unsafe { (self.AsULONG, other.AsULONG) };
        a == b
    }
}

impl Eq for PCI_SLOT_NUMBER_0 {}

impl core::fmt::Debug for PCI_SLOT_NUMBER_0 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: both members cover the same four bytes and any bit pattern is a valid ULONG.
        let value = unsafe { self.AsULONG };
        f.debug_struct("PCI_SLOT_NUMBER_0").field("AsULONG", &value).finish()
    }
}

/// The `bits` structure of `PCI_SLOT_NUMBER` (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PCI_SLOT_NUMBER_0_0 {
    /// `DeviceNumber`, `FunctionNumber`, `Reserved`; see the accessor methods.
    pub bitfield_1: ULONG,
}

crate::bitfield::bitfields! {
    impl PCI_SLOT_NUMBER_0_0.bitfield_1: ULONG {
        DeviceNumber, set_DeviceNumber: 0, 5;
        FunctionNumber, set_FunctionNumber: 5, 3;
        Reserved, set_Reserved: 8, 24;
    }
}

impl PCI_SLOT_NUMBER {
    /// The slot number of a device and function, as `ScsiPortGetBusData` takes it (`wdm.h`).
    #[must_use]
    pub const fn new(DeviceNumber: ULONG, FunctionNumber: ULONG) -> Self {
        let mut bits = PCI_SLOT_NUMBER_0_0 { bitfield_1: 0 };
        bits.set_DeviceNumber(DeviceNumber);
        bits.set_FunctionNumber(FunctionNumber);
        Self { u: PCI_SLOT_NUMBER_0 { bits } }
    }

    /// `u.AsULONG`.
    #[must_use]
    pub const fn AsULONG(&self) -> ULONG {
        // SAFETY: both members cover the same four bytes and any bit pattern is a valid ULONG.
        unsafe { self.u.AsULONG }
    }
}

/// `struct _PCI_HEADER_TYPE_0`: the device-specific part of a type 0 header (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PCI_HEADER_TYPE_0 {
    /// BAR0..BAR5.
    pub BaseAddresses: [ULONG; PCI_TYPE0_ADDRESSES],
    /// CardBus CIS pointer.
    pub CIS: ULONG,
    /// Subsystem vendor ID.
    pub SubVendorID: USHORT,
    /// Subsystem ID.
    pub SubSystemID: USHORT,
    /// Expansion ROM base address.
    pub ROMBaseAddress: ULONG,
    /// Offset of the first capability.
    pub CapabilitiesPtr: UCHAR,
    /// Reserved.
    pub Reserved1: [UCHAR; 3],
    /// Reserved.
    pub Reserved2: ULONG,
    /// Interrupt line.
    pub InterruptLine: UCHAR,
    /// Interrupt pin (1 = INTA#).
    pub InterruptPin: UCHAR,
    /// `Min_Gnt`.
    pub MinimumGrant: UCHAR,
    /// `Max_Lat`.
    pub MaximumLatency: UCHAR,
}

/// `struct _PCI_HEADER_TYPE_1`: the bridge-specific part of a type 1 header (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PCI_HEADER_TYPE_1 {
    /// BAR0..BAR1.
    pub BaseAddresses: [ULONG; PCI_TYPE1_ADDRESSES],
    /// Primary bus number.
    pub PrimaryBus: UCHAR,
    /// Secondary bus number.
    pub SecondaryBus: UCHAR,
    /// Subordinate bus number.
    pub SubordinateBus: UCHAR,
    /// Secondary latency timer.
    pub SecondaryLatency: UCHAR,
    /// I/O base.
    pub IOBase: UCHAR,
    /// I/O limit.
    pub IOLimit: UCHAR,
    /// Secondary status.
    pub SecondaryStatus: USHORT,
    /// Memory base.
    pub MemoryBase: USHORT,
    /// Memory limit.
    pub MemoryLimit: USHORT,
    /// Prefetchable memory base.
    pub PrefetchBase: USHORT,
    /// Prefetchable memory limit.
    pub PrefetchLimit: USHORT,
    /// Prefetchable base, upper 32 bits.
    pub PrefetchBaseUpper32: ULONG,
    /// Prefetchable limit, upper 32 bits.
    pub PrefetchLimitUpper32: ULONG,
    /// I/O base, upper 16 bits.
    pub IOBaseUpper16: USHORT,
    /// I/O limit, upper 16 bits.
    pub IOLimitUpper16: USHORT,
    /// Offset of the first capability.
    pub CapabilitiesPtr: UCHAR,
    /// Reserved.
    pub Reserved1: [UCHAR; 3],
    /// Expansion ROM base address.
    pub ROMBaseAddress: ULONG,
    /// Interrupt line.
    pub InterruptLine: UCHAR,
    /// Interrupt pin.
    pub InterruptPin: UCHAR,
    /// Bridge control.
    pub BridgeControl: USHORT,
}

/// One memory or I/O window of a CardBus bridge header (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PCI_HEADER_TYPE_2_0 {
    /// Window base.
    pub Base: ULONG,
    /// Window limit.
    pub Limit: ULONG,
}

/// `struct _PCI_HEADER_TYPE_2`: the CardBus-bridge part of a type 2 header (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PCI_HEADER_TYPE_2 {
    /// Socket/ExCA base address.
    pub SocketRegistersBaseAddress: ULONG,
    /// Offset of the first capability.
    pub CapabilitiesPtr: UCHAR,
    /// Reserved.
    pub Reserved: UCHAR,
    /// Secondary status.
    pub SecondaryStatus: USHORT,
    /// PCI bus number.
    pub PrimaryBus: UCHAR,
    /// CardBus bus number.
    pub SecondaryBus: UCHAR,
    /// Subordinate bus number.
    pub SubordinateBus: UCHAR,
    /// CardBus latency timer.
    pub SecondaryLatency: UCHAR,
    /// Memory and I/O windows.
    pub Range: [PCI_HEADER_TYPE_2_0; PCI_TYPE2_ADDRESSES - 1],
    /// Interrupt line.
    pub InterruptLine: UCHAR,
    /// Interrupt pin.
    pub InterruptPin: UCHAR,
    /// Bridge control.
    pub BridgeControl: USHORT,
}

/// The `u` union of the common header: the layout depends on `HeaderType` (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union PCI_COMMON_HEADER_0 {
    /// `HeaderType` 0: a device; what a miniport's HBA has.
    pub type0: PCI_HEADER_TYPE_0,
    /// `HeaderType` 1: a PCI-to-PCI bridge.
    pub type1: PCI_HEADER_TYPE_1,
    /// `HeaderType` 2: a CardBus bridge.
    pub type2: PCI_HEADER_TYPE_2,
}

impl Default for PCI_COMMON_HEADER_0 {
    fn default() -> Self {
        // The largest member covers the whole union, so this zeroes all 48 bytes.
        Self { type1: PCI_HEADER_TYPE_1::default() }
    }
}

impl core::fmt::Debug for PCI_COMMON_HEADER_0 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: every member is plain integers, so any bit pattern is a valid `type0`.
        let type0 = unsafe { self.type0 };
        f.debug_struct("PCI_COMMON_HEADER_0").field("type0", &type0).finish_non_exhaustive()
    }
}

/// `PCI_COMMON_HEADER`: the first 64 bytes of PCI configuration space (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PCI_COMMON_HEADER {
    /// Vendor ID (`0x15AD` for `VMware`); `PCI_INVALID_VENDORID` for an empty slot.
    pub VendorID: USHORT,
    /// Device ID.
    pub DeviceID: USHORT,
    /// `PCI_ENABLE_*` bits.
    pub Command: USHORT,
    /// `PCI_STATUS_*` bits.
    pub Status: USHORT,
    /// Revision ID.
    pub RevisionID: UCHAR,
    /// Programming interface.
    pub ProgIf: UCHAR,
    /// Sub-class code.
    pub SubClass: UCHAR,
    /// Base class code.
    pub BaseClass: UCHAR,
    /// Cache line size.
    pub CacheLineSize: UCHAR,
    /// Latency timer.
    pub LatencyTimer: UCHAR,
    /// Layout (`PCI_*_TYPE`) plus `PCI_MULTIFUNCTION`.
    pub HeaderType: UCHAR,
    /// Built-in self test.
    pub BIST: UCHAR,
    /// The layout-specific part.
    pub u: PCI_COMMON_HEADER_0,
}
/// `PPCI_COMMON_HEADER` (`wdm.h`).
pub type PPCI_COMMON_HEADER = *mut PCI_COMMON_HEADER;

/// `PCI_COMMON_CONFIG`: the 256 bytes of PCI configuration space (`wdm.h`).
///
/// In C++ the WDK derives it from `PCI_COMMON_HEADER`; in C it repeats the header fields, as here.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PCI_COMMON_CONFIG {
    /// Vendor ID (`0x15AD` for `VMware`); `PCI_INVALID_VENDORID` for an empty slot.
    pub VendorID: USHORT,
    /// Device ID.
    pub DeviceID: USHORT,
    /// `PCI_ENABLE_*` bits.
    pub Command: USHORT,
    /// `PCI_STATUS_*` bits.
    pub Status: USHORT,
    /// Revision ID.
    pub RevisionID: UCHAR,
    /// Programming interface.
    pub ProgIf: UCHAR,
    /// Sub-class code.
    pub SubClass: UCHAR,
    /// Base class code.
    pub BaseClass: UCHAR,
    /// Cache line size.
    pub CacheLineSize: UCHAR,
    /// Latency timer.
    pub LatencyTimer: UCHAR,
    /// Layout (`PCI_*_TYPE`) plus `PCI_MULTIFUNCTION`.
    pub HeaderType: UCHAR,
    /// Built-in self test.
    pub BIST: UCHAR,
    /// The layout-specific part.
    pub u: PCI_COMMON_HEADER_0,
    /// Device-specific registers (capabilities live here).
    pub DeviceSpecific: [UCHAR; 192],
}
/// `PPCI_COMMON_CONFIG` (`wdm.h`).
pub type PPCI_COMMON_CONFIG = *mut PCI_COMMON_CONFIG;

impl Default for PCI_COMMON_CONFIG {
    fn default() -> Self {
        Self {
            VendorID: 0,
            DeviceID: 0,
            Command: 0,
            Status: 0,
            RevisionID: 0,
            ProgIf: 0,
            SubClass: 0,
            BaseClass: 0,
            CacheLineSize: 0,
            LatencyTimer: 0,
            HeaderType: 0,
            BIST: 0,
            u: PCI_COMMON_HEADER_0::default(),
            DeviceSpecific: [0; 192],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn config_space_layout() {
        assert_eq!(PCI_COMMON_HDR_LENGTH, 0x40);
        assert_eq!(size_of::<PCI_COMMON_HEADER>(), 0x40);
        assert_eq!(size_of::<PCI_COMMON_CONFIG>(), 0x100);
        assert_eq!(offset_of!(PCI_COMMON_CONFIG, u) + offset_of!(PCI_HEADER_TYPE_0, InterruptLine), 0x3C);
        assert_eq!(offset_of!(PCI_COMMON_CONFIG, u) + offset_of!(PCI_HEADER_TYPE_0, SubVendorID), 0x2C);
    }

    #[test]
    fn slot_number_bits() {
        let slot = PCI_SLOT_NUMBER::new(0x15, 3);
        assert_eq!(slot.AsULONG(), 0x15 | (3 << 5));
        // SAFETY: `bits` covers the same four bytes as `AsULONG`; any pattern is valid.
        let bits = unsafe { slot.u.bits };
        assert_eq!((bits.DeviceNumber(), bits.FunctionNumber(), bits.Reserved()), (0x15, 3, 0));
        assert_eq!(PCI_SLOT_NUMBER::new(32, 8).AsULONG(), 0, "out-of-range numbers are masked");
    }
}
