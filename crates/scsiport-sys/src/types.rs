//! Basic Windows types as `ntdef.h`, `wdm.h` and `miniport.h` define them, with exact widths.

use core::ffi::c_void;

/// `UCHAR`: unsigned 8-bit (`ntdef.h`).
pub type UCHAR = u8;
/// `CHAR`: signed 8-bit (`ntdef.h`).
pub type CHAR = i8;
/// `CCHAR`: signed 8-bit count (`ntdef.h`).
pub type CCHAR = i8;
/// `USHORT`: unsigned 16-bit (`ntdef.h`).
pub type USHORT = u16;
/// `ULONG`: unsigned 32-bit on every Windows ABI (`ntdef.h`); never `c_ulong`, which is 64-bit on Linux.
pub type ULONG = u32;
/// `LONG`: signed 32-bit (`ntdef.h`).
pub type LONG = i32;
/// `LONGLONG`: signed 64-bit (`ntdef.h`).
pub type LONGLONG = i64;
/// `ULONGLONG`: unsigned 64-bit (`ntdef.h`).
pub type ULONGLONG = u64;
/// `ULONG_PTR`: pointer-sized unsigned integer (`basetsd.h`).
pub type ULONG_PTR = usize;
/// `BOOLEAN`: one byte, `TRUE` = 1, `FALSE` = 0 (`ntdef.h`).
pub type BOOLEAN = u8;
/// `PVOID` (`ntdef.h`).
pub type PVOID = *mut c_void;
/// `PCHAR` (`ntdef.h`).
pub type PCHAR = *mut CHAR;
/// `PCCHAR`: pointer to `CCHAR` (`ntdef.h`), used for `ScsiDebugPrint`'s format string.
pub type PCCHAR = *mut CCHAR;
/// `PBOOLEAN` (`ntdef.h`).
pub type PBOOLEAN = *mut BOOLEAN;
/// `PUCHAR` (`ntdef.h`).
pub type PUCHAR = *mut UCHAR;
/// `PUSHORT` (`ntdef.h`).
pub type PUSHORT = *mut USHORT;
/// `PULONG` (`ntdef.h`).
pub type PULONG = *mut ULONG;

/// `TRUE` as a `BOOLEAN` (`ntdef.h`).
pub const TRUE: BOOLEAN = 1;
/// `FALSE` as a `BOOLEAN` (`ntdef.h`).
pub const FALSE: BOOLEAN = 0;

/// `LARGE_INTEGER` (`ntdef.h`).
///
/// The header declares a union of `QuadPart` with `{ LowPart, HighPart }`. Both views cover
/// the same 8 bytes with 8-byte alignment, so a struct holding `QuadPart` has the identical size,
/// alignment and by-value calling convention; the 32-bit halves are methods.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LARGE_INTEGER {
    /// The whole 64-bit value.
    pub QuadPart: LONGLONG,
}

impl LARGE_INTEGER {
    /// `LowPart`: the low 32 bits.
    #[must_use]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub const fn LowPart(self) -> ULONG {
        self.QuadPart as ULONG
    }

    /// `HighPart`: the high 32 bits, signed.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)]
    pub const fn HighPart(self) -> LONG {
        (self.QuadPart >> 32) as LONG
    }
}

/// `PLARGE_INTEGER` (`ntdef.h`).
pub type PLARGE_INTEGER = *mut LARGE_INTEGER;

/// `PHYSICAL_ADDRESS`: a `LARGE_INTEGER` (`wdm.h`).
pub type PHYSICAL_ADDRESS = LARGE_INTEGER;

/// `INTERFACE_TYPE` (`miniport.h`, `wdm.h`): the bus an adapter sits on.
/// See `ne-miniport-_interface_type` in the WDK DDI reference.
pub type INTERFACE_TYPE = i32;
/// `InterfaceTypeUndefined` (`INTERFACE_TYPE`).
pub const InterfaceTypeUndefined: INTERFACE_TYPE = -1;
/// `Internal` (`INTERFACE_TYPE`).
pub const Internal: INTERFACE_TYPE = 0;
/// `Isa` (`INTERFACE_TYPE`).
pub const Isa: INTERFACE_TYPE = 1;
/// `Eisa` (`INTERFACE_TYPE`).
pub const Eisa: INTERFACE_TYPE = 2;
/// `MicroChannel` (`INTERFACE_TYPE`).
pub const MicroChannel: INTERFACE_TYPE = 3;
/// `TurboChannel` (`INTERFACE_TYPE`).
pub const TurboChannel: INTERFACE_TYPE = 4;
/// `PCIBus` (`INTERFACE_TYPE`); also the value name under `Parameters\PnpInterface` ("5").
pub const PCIBus: INTERFACE_TYPE = 5;
/// `VMEBus` (`INTERFACE_TYPE`).
pub const VMEBus: INTERFACE_TYPE = 6;
/// `NuBus` (`INTERFACE_TYPE`).
pub const NuBus: INTERFACE_TYPE = 7;
/// `PCMCIABus` (`INTERFACE_TYPE`).
pub const PCMCIABus: INTERFACE_TYPE = 8;
/// `CBus` (`INTERFACE_TYPE`).
pub const CBus: INTERFACE_TYPE = 9;
/// `MPIBus` (`INTERFACE_TYPE`).
pub const MPIBus: INTERFACE_TYPE = 10;
/// `MPSABus` (`INTERFACE_TYPE`).
pub const MPSABus: INTERFACE_TYPE = 11;
/// `ProcessorInternal` (`INTERFACE_TYPE`).
pub const ProcessorInternal: INTERFACE_TYPE = 12;
/// `InternalPowerBus` (`INTERFACE_TYPE`).
pub const InternalPowerBus: INTERFACE_TYPE = 13;
/// `PNPISABus` (`INTERFACE_TYPE`).
pub const PNPISABus: INTERFACE_TYPE = 14;
/// `PNPBus` (`INTERFACE_TYPE`).
pub const PNPBus: INTERFACE_TYPE = 15;
/// `Vmcs` (`INTERFACE_TYPE`).
pub const Vmcs: INTERFACE_TYPE = 16;
/// `ACPIBus` (`INTERFACE_TYPE`).
pub const ACPIBus: INTERFACE_TYPE = 17;
/// `MaximumInterfaceType` (`INTERFACE_TYPE`).
pub const MaximumInterfaceType: INTERFACE_TYPE = 18;

/// `KINTERRUPT_MODE` (`wdm.h`, `miniport.h`).
pub type KINTERRUPT_MODE = i32;
/// `LevelSensitive` (`KINTERRUPT_MODE`): what the port pre-sets for PCI.
pub const LevelSensitive: KINTERRUPT_MODE = 0;
/// `Latched` (`KINTERRUPT_MODE`).
pub const Latched: KINTERRUPT_MODE = 1;

/// `DMA_WIDTH` (`wdm.h`, `miniport.h`): subordinate-DMA transfer width.
pub type DMA_WIDTH = i32;
/// `Width8Bits` (`DMA_WIDTH`).
pub const Width8Bits: DMA_WIDTH = 0;
/// `Width16Bits` (`DMA_WIDTH`).
pub const Width16Bits: DMA_WIDTH = 1;
/// `Width32Bits` (`DMA_WIDTH`).
pub const Width32Bits: DMA_WIDTH = 2;
/// `Width64Bits` (`DMA_WIDTH`, `wdm.h`).
pub const Width64Bits: DMA_WIDTH = 3;
/// `WidthNoWrap` (`DMA_WIDTH`, `wdm.h`).
pub const WidthNoWrap: DMA_WIDTH = 4;
/// `MaximumDmaWidth` (`DMA_WIDTH`): one past the last width; 5 since `wdm.h` added
/// `Width64Bits` and `WidthNoWrap`.
pub const MaximumDmaWidth: DMA_WIDTH = 5;

/// `DMA_SPEED` (`miniport.h`): subordinate-DMA timing.
pub type DMA_SPEED = i32;
/// `Compatible` (`DMA_SPEED`).
pub const Compatible: DMA_SPEED = 0;
/// `TypeA` (`DMA_SPEED`).
pub const TypeA: DMA_SPEED = 1;
/// `TypeB` (`DMA_SPEED`).
pub const TypeB: DMA_SPEED = 2;
/// `TypeC` (`DMA_SPEED`).
pub const TypeC: DMA_SPEED = 3;
/// `TypeF` (`DMA_SPEED`).
pub const TypeF: DMA_SPEED = 4;
/// `MaximumDmaSpeed` (`DMA_SPEED`).
pub const MaximumDmaSpeed: DMA_SPEED = 5;

/// `BUS_DATA_TYPE` (`miniport.h`): what `ScsiPortGetBusData` reads.
pub type BUS_DATA_TYPE = i32;
/// `ConfigurationSpaceUndefined` (`BUS_DATA_TYPE`).
pub const ConfigurationSpaceUndefined: BUS_DATA_TYPE = -1;
/// `Cmos` (`BUS_DATA_TYPE`).
pub const Cmos: BUS_DATA_TYPE = 0;
/// `EisaConfiguration` (`BUS_DATA_TYPE`).
pub const EisaConfiguration: BUS_DATA_TYPE = 1;
/// `Pos` (`BUS_DATA_TYPE`).
pub const Pos: BUS_DATA_TYPE = 2;
/// `CbusConfiguration` (`BUS_DATA_TYPE`).
pub const CbusConfiguration: BUS_DATA_TYPE = 3;
/// `PCIConfiguration` (`BUS_DATA_TYPE`).
pub const PCIConfiguration: BUS_DATA_TYPE = 4;
/// `VMEConfiguration` (`BUS_DATA_TYPE`).
pub const VMEConfiguration: BUS_DATA_TYPE = 5;
/// `NuBusConfiguration` (`BUS_DATA_TYPE`).
pub const NuBusConfiguration: BUS_DATA_TYPE = 6;
/// `PCMCIAConfiguration` (`BUS_DATA_TYPE`).
pub const PCMCIAConfiguration: BUS_DATA_TYPE = 7;
/// `MPIConfiguration` (`BUS_DATA_TYPE`).
pub const MPIConfiguration: BUS_DATA_TYPE = 8;
/// `MPSAConfiguration` (`BUS_DATA_TYPE`).
pub const MPSAConfiguration: BUS_DATA_TYPE = 9;
/// `PNPISAConfiguration` (`BUS_DATA_TYPE`).
pub const PNPISAConfiguration: BUS_DATA_TYPE = 10;
/// `SgiInternalConfiguration` (`BUS_DATA_TYPE`).
pub const SgiInternalConfiguration: BUS_DATA_TYPE = 11;
/// `MaximumBusDataType` (`BUS_DATA_TYPE`).
pub const MaximumBusDataType: BUS_DATA_TYPE = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_integer_halves() {
        let value = LARGE_INTEGER { QuadPart: 0x1234_5678_9ABC_DEF0 };
        assert_eq!(value.LowPart(), 0x9ABC_DEF0);
        assert_eq!(value.HighPart(), 0x1234_5678);
        let negative = LARGE_INTEGER { QuadPart: -2 };
        assert_eq!((negative.LowPart(), negative.HighPart()), (0xFFFF_FFFE, -1));
        assert_eq!((core::mem::size_of::<LARGE_INTEGER>(), core::mem::align_of::<LARGE_INTEGER>()), (8, 8));
    }
}
