//! Layout proof: every struct, union, field, constant, enum value and bit field this crate binds,
//! compared with what `x86_64-w64-mingw32-gcc` computes from MinGW-w64's DDK headers.
//!
//! How it works:
//! - `build.rs` lists every binding in `src/**/*.rs` and generates `rust_items()`, which reports
//!   each one as the compiled crate sees it (`size_of`, `align_of`, `offset_of!`, the constant's
//!   value, the bytes a bit-field setter writes).
//! - This test writes one C probe per value (`const unsigned long long P_n = offsetof(...);`, and
//!   for bit fields `const T B_n = { .Member = -1 };`), compiles it with `-S` against
//!   `<ddk/srb.h>` + `<ddk/scsi.h>` (crate root) or `<ddk/storport.h>` (`storport` module), and
//!   reads the values back from the `.quad`/`.byte`/`.space` lines of the assembly.
//! - A probe that MinGW cannot compile (the item is missing there) is dropped and the test
//!   compiles again; such an item passes only with an `Absent` entry in [`EXCEPTIONS`].
//! - A value that differs passes only with a `Differs` entry giving both MinGW's value and the
//!   WDK's. Every exception carries the WDK value and the page or header that shows it; an
//!   exception that no longer matches anything fails the test, so the table cannot go stale.
//!
//! Without the cross compiler the test prints `SKIPPED: ...` and passes, unless `RSPVSCSI_CI=1`,
//! where it fails instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const COMPILER: &str = "x86_64-w64-mingw32-gcc";

// ---------------------------------------------------------------------------------------------
// What build.rs generates, and the helpers it calls
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct RustField {
    name: &'static str,
    ty: &'static str,
    public: bool,
    offset: usize,
    size: usize,
}

#[derive(Debug)]
struct RustStruct {
    module: &'static str,
    name: &'static str,
    is_union: bool,
    size: usize,
    align: usize,
    fields: Vec<RustField>,
}

#[derive(Debug)]
struct RustConst {
    module: &'static str,
    name: &'static str,
    /// Bytes of the constant's type.
    size: u32,
    /// The value's bits, zero-extended from `size` bytes.
    bits: u64,
}

#[derive(Debug)]
struct RustAlias {
    module: &'static str,
    name: &'static str,
    function_type: bool,
    size: usize,
    align: usize,
}

#[derive(Debug)]
struct RustBitfield {
    module: &'static str,
    ty: &'static str,
    #[allow(dead_code)]
    storage: &'static str,
    name: &'static str,
    first: u32,
    width: u32,
    /// The structure's bytes after `set_<name>(!0)` on an all-zero value.
    bytes: Vec<u8>,
    /// The getter returns all ones of the field's width after that setter call.
    read_back_ok: bool,
}

#[derive(Debug, Default)]
struct RustItems {
    structs: Vec<RustStruct>,
    consts: Vec<RustConst>,
    aliases: Vec<RustAlias>,
    bitfields: Vec<RustBitfield>,
    parse_errors: Vec<String>,
}

/// An integer constant's width and bits.
trait IntValue: Copy {
    fn size_and_bits(self) -> (u32, u64);
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl IntValue for $t {
            #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation, clippy::cast_lossless)]
            fn size_and_bits(self) -> (u32, u64) {
                let size = core::mem::size_of::<$t>() as u32;
                let bits = (self as i128 as u128 as u64) & mask(size);
                (size, bits)
            }
        }
    )*};
}
int_value!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

fn mask(size: u32) -> u64 {
    if size >= 8 { u64::MAX } else { (1u64 << (size * 8)) - 1 }
}

fn sign_extend(size: u32, bits: u64) -> u64 {
    if size >= 8 {
        return bits;
    }
    let sign = 1u64 << (size * 8 - 1);
    if bits & sign == 0 { bits } else { bits | !mask(size) }
}

impl RustConst {
    fn new<T: IntValue>(module: &'static str, name: &'static str, value: T) -> Self {
        let (size, bits) = value.size_and_bits();
        Self { module, name, size, bits }
    }

    /// Whether a C value (converted to `unsigned long long`) is this constant: equal after
    /// zero- or sign-extending the Rust bits, so `-1` in an `int` enum matches `-1i32` and
    /// `0xffffffff` in an unsigned enum matches it too, but `0x101` never matches `1u8`.
    fn matches(&self, c: u64) -> bool {
        c == self.bits || c == sign_extend(self.size, self.bits)
    }
}

const fn size_of_pointee<T>(_: *const T) -> usize {
    core::mem::size_of::<T>()
}

macro_rules! field_size {
    ($t:ty, $f:ident) => {{
        let value = core::mem::MaybeUninit::<$t>::uninit();
        let p = value.as_ptr();
        // SAFETY: only the field's address is computed, inside a live allocation; nothing is read.
        let field = unsafe { core::ptr::addr_of!((*p).$f) };
        size_of_pointee(field)
    }};
}

/// The bytes of an all-zero `T` after `set` ran on it.
fn all_ones_bytes<T>(set: impl FnOnce(&mut T)) -> Vec<u8> {
    let mut value = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: every type with bit fields here is plain integers and byte arrays, for which all
    // zero bytes is a valid value; the padding stays zero because only fields are written.
    set(unsafe { &mut *value.as_mut_ptr() });
    // SAFETY: the whole allocation was zeroed and then partly written, so every byte is initialised.
    unsafe { core::slice::from_raw_parts(value.as_ptr().cast::<u8>(), core::mem::size_of::<T>()) }.to_vec()
}

/// What `get` returns after `set` on an all-zero `T`.
fn read_back<T>(set: impl FnOnce(&mut T), get: impl FnOnce(&T) -> u64) -> u64 {
    let mut value = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: as in `all_ones_bytes`.
    let value = unsafe { &mut *value.as_mut_ptr() };
    set(value);
    get(value)
}

mod generated {
    #![allow(clippy::all, clippy::pedantic)]
    use super::{
        RustAlias, RustBitfield, RustConst, RustField, RustItems, RustStruct, all_ones_bytes, read_back,
        size_of_pointee,
    };
    include!(concat!(env!("OUT_DIR"), "/layout_items.rs"));
}

// ---------------------------------------------------------------------------------------------
// How Rust names map to C
// ---------------------------------------------------------------------------------------------

/// Rust types whose C spelling is not their own name.
const C_TYPE_NAMES: &[(&str, &str, &str)] = &[
    // Members of `union _CDB`: the header declares them as `struct _NAME { ... } NAME;` inside
    // the union, and C puts those tags at file scope.
    ("root", "CDB6GENERIC", "struct _CDB6GENERIC"),
    ("root", "CDB6READWRITE", "struct _CDB6READWRITE"),
    ("root", "CDB6INQUIRY", "struct _CDB6INQUIRY"),
    ("root", "CDB6INQUIRY3", "struct _CDB6INQUIRY3"),
    ("root", "CDB10", "struct _CDB10"),
    ("root", "CDB12", "struct _CDB12"),
    ("root", "CDB16", "struct _CDB16"),
    ("root", "MODE_SENSE", "struct _MODE_SENSE"),
    ("root", "MODE_SENSE10", "struct _MODE_SENSE10"),
    ("root", "START_STOP", "struct _START_STOP"),
    ("root", "SYNCHRONIZE_CACHE10", "struct _SYNCHRONIZE_CACHE10"),
    ("root", "SYNCHRONIZE_CACHE16", "struct _SYNCHRONIZE_CACHE16"),
    ("root", "READ_CAPACITY16", "struct _READ_CAPACITY16"),
    ("root", "REPORT_LUNS", "struct _REPORT_LUNS"),
    // Nested aggregates of wdm.h. The WDK tags the header types `struct _PCI_HEADER_TYPE_0..2`;
    // MinGW leaves them anonymous (the tags are commented out), so GCC's `__typeof__` of a member
    // names them.
    ("root", "PCI_SLOT_NUMBER_0", "__typeof__(((PCI_SLOT_NUMBER *)0)->u)"),
    ("root", "PCI_SLOT_NUMBER_0_0", "__typeof__(((PCI_SLOT_NUMBER *)0)->u.bits)"),
    ("root", "PCI_COMMON_HEADER_0", "__typeof__(((PCI_COMMON_HEADER *)0)->u)"),
    ("root", "PCI_HEADER_TYPE_0", "__typeof__(((PCI_COMMON_HEADER *)0)->u.type0)"),
    ("root", "PCI_HEADER_TYPE_1", "__typeof__(((PCI_COMMON_HEADER *)0)->u.type1)"),
    ("root", "PCI_HEADER_TYPE_2", "__typeof__(((PCI_COMMON_HEADER *)0)->u.type2)"),
    ("root", "PCI_HEADER_TYPE_2_0", "__typeof__(((PCI_COMMON_HEADER *)0)->u.type2.Range[0])"),
];

/// Rust types standing for an anonymous C union or struct member (`DUMMYUNIONNAME`): C has no
/// name for the type or the member, so the test checks each of its members through the parent
/// (`offsetof(PARENT, Member)` against the Rust field's offset plus the member's offset).
const ANONYMOUS: &[(&str, &str)] = &[("root", "SCSI_REQUEST_BLOCK_0"), ("root", "HW_INITIALIZATION_DATA_0")];

fn c_type(module: &str, name: &str) -> String {
    C_TYPE_NAMES
        .iter()
        .find(|(m, r, _)| *m == module && *r == name)
        .map_or_else(|| name.to_string(), |(_, _, c)| (*c).to_string())
}

fn is_anonymous(name: &str) -> bool {
    ANONYMOUS.iter().any(|(_, n)| *n == name)
}

// ---------------------------------------------------------------------------------------------
// Exceptions: where MinGW-w64 lags the WDK
// ---------------------------------------------------------------------------------------------

/// A value as the WDK defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wdk {
    /// A constant or enumerator.
    Value(u64),
    /// `sizeof` and `alignof` of a structure.
    Layout { size: usize, align: usize },
    /// `offsetof` and `sizeof` of a field.
    Field { offset: usize, size: usize },
    /// First bit and width of a bit field.
    Bits { first: u32, width: u32 },
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// MinGW-w64 does not declare the item at all.
    Absent(Wdk),
    /// MinGW-w64 declares it with another value.
    Differs { mingw: Wdk, wdk: Wdk },
}

#[derive(Clone, Copy, Debug)]
struct Exception {
    module: &'static str,
    /// `CONST`, `STRUCT` (its layout), `STRUCT.field`, or `STRUCT:bitfield`.
    item: &'static str,
    kind: Kind,
    /// Why, and where the WDK value comes from.
    why: &'static str,
}

const fn absent(module: &'static str, item: &'static str, wdk: Wdk, why: &'static str) -> Exception {
    Exception { module, item, kind: Kind::Absent(wdk), why }
}

const fn differs(module: &'static str, item: &'static str, mingw: Wdk, wdk: Wdk, why: &'static str) -> Exception {
    Exception { module, item, kind: Kind::Differs { mingw, wdk }, why }
}

// Where the WDK values come from. MinGW-w64 is checked by compiling against it; the WDK side of
// every exception below was read from one of these (paths are inside the named GitHub
// repositories; the `tpn/winsdk-10` and `hughbe/windows-sdk-headers` files are verbatim copies of
// the Windows Kits include directories):
//   [WDK16299]  tpn/winsdk-10: Include/10.0.16299.0/{shared/srb.h, shared/scsi.h, km/storport.h}
//   [WDK19041]  hughbe/windows-sdk-headers: Include/10.0.19041.0/km/storport.h
//   [SDK19041]  ojdkbuild/tools_toolchain_sdk10_19041: Include/10.0.19041.0/shared/srb.h
//   [DOCS]      MicrosoftDocs/windows-driver-docs-ddi: wdk-ddi-src/content/<header>/<page>.md
//   [PDB]       can1357/selene: resources/sdk/stor/port/*.hpp, offsets and enum values dumped
//               from storport.sys public symbols (Windows 10 1607 .. Windows 11)

const SRB_FN: &str = "[WDK16299] shared/srb.h and km/storport.h `#define`; \
     [DOCS] srb/ns-srb-_scsi_request_block.md lists FREE_DUMP_POINTERS (0x27); MinGW-w64's srb.h stops at 0x26";
const SRB_ST: &str = "[SDK19041] shared/srb.h and [WDK19041] km/storport.h `#define` (not yet in [WDK16299]); \
     MinGW-w64's srb.h stops at SRB_STATUS_LINK_DOWN";
const SCSI_INQ: &str = "[WDK16299] shared/scsi.h `#pragma pack(1)` INQUIRYDATA: UCHAR Reserved3[2]; \
     VERSION_DESCRIPTOR (USHORT) VersionDescriptors[8]; UCHAR Reserved4[30]; [DOCS] scsi/ns-scsi-_inquirydata.md \
     (Reserved3[2], VersionDescriptors[8], Reserved4[30]); [PDB] inquirydata_t.hpp (size 0x68, descriptors at 0x3a)";
const SCSI_INQ_BITS: &str = "[WDK16299] shared/scsi.h INQUIRYDATA byte 5 `union { UCHAR Reserved; struct { PROTECT:1; \
     Reserved_1:2; ThirdPartyCoppy:1; TPGS:2; ACC:1; SCCS:1; } }`; [PDB] inquirydata_t.hpp bit offsets";
const SCSI_SENSE: &str = "[WDK16299] shared/scsi.h `#define` (also microsoft/mu_msvm \
     MsvmPkg/StorvscDxe/StorportDxe.h, \"Necessary definitions from Storport.h\"); MinGW-w64 lacks them";

/// Every difference between this crate (which follows the WDK) and MinGW-w64, with the reason.
const EXCEPTIONS: &[Exception] = &[
    // --- srb.h -------------------------------------------------------------------------------
    absent("root", "SRB_FUNCTION_FREE_DUMP_POINTERS", Wdk::Value(0x27), SRB_FN),
    absent("root", "SRB_FUNCTION_STORAGE_REQUEST_BLOCK", Wdk::Value(0x28), SRB_FN),
    absent("root", "SRB_STATUS_INSUFFICIENT_RESOURCES", Wdk::Value(0x26), SRB_ST),
    absent("root", "SRB_STATUS_THROTTLED_REQUEST", Wdk::Value(0x27), SRB_ST),
    absent(
        "root",
        "SCSI_PORT_SIGNATURE",
        Wdk::Value(0x5452_4f50),
        "[WDK16299] shared/srb.h defines it only under `#if DBG==1`; the probe compiles a free build",
    ),
    // --- scsi.h ------------------------------------------------------------------------------
    // MinGW-w64 keeps the pre-SPC-3 tail of INQUIRYDATA (`UCHAR Reserved3[40]`, 96 bytes in all).
    // The WDK splits bytes 56.. into Reserved3[2], VersionDescriptors[8] (USHORT, bytes 58..74)
    // and Reserved4[30], so its INQUIRYDATA is 104 bytes; MinGW's own scsi.h still defines
    // OFFSET_VER_DESCRIPTOR_ONE/EIGHT as FIELD_OFFSET(INQUIRYDATA, VersionDescriptors[0] / [8]),
    // which only compiles against the WDK layout.
    differs("root", "INQUIRYDATA", Wdk::Layout { size: 96, align: 1 }, Wdk::Layout { size: 104, align: 1 }, SCSI_INQ),
    differs(
        "root",
        "INQUIRYDATA.Reserved3",
        Wdk::Field { offset: 56, size: 40 },
        Wdk::Field { offset: 56, size: 2 },
        SCSI_INQ,
    ),
    absent("root", "INQUIRYDATA.VersionDescriptors", Wdk::Field { offset: 58, size: 16 }, SCSI_INQ),
    absent("root", "INQUIRYDATA.Reserved4", Wdk::Field { offset: 74, size: 30 }, SCSI_INQ),
    absent(
        "root",
        "OFFSET_VER_DESCRIPTOR_ONE",
        Wdk::Value(58),
        "[WDK16299] shared/scsi.h FIELD_OFFSET(INQUIRYDATA, VersionDescriptors[0]); MinGW defines the macro but it \
         does not compile there (no VersionDescriptors member)",
    ),
    absent(
        "root",
        "OFFSET_VER_DESCRIPTOR_EIGHT",
        Wdk::Value(74),
        "[WDK16299] shared/scsi.h FIELD_OFFSET(INQUIRYDATA, VersionDescriptors[8]); MinGW defines the macro but it \
         does not compile there (no VersionDescriptors member)",
    ),
    // Byte 5 of INQUIRYDATA: the WDK overlays `UCHAR Reserved` with the SPC-3 bits in an
    // anonymous union; MinGW has only the plain byte.
    absent("root", "INQUIRYDATA:PROTECT", Wdk::Bits { first: 0, width: 1 }, SCSI_INQ_BITS),
    absent("root", "INQUIRYDATA:Reserved_1", Wdk::Bits { first: 1, width: 2 }, SCSI_INQ_BITS),
    absent("root", "INQUIRYDATA:ThirdPartyCoppy", Wdk::Bits { first: 3, width: 1 }, SCSI_INQ_BITS),
    absent("root", "INQUIRYDATA:TPGS", Wdk::Bits { first: 4, width: 2 }, SCSI_INQ_BITS),
    absent("root", "INQUIRYDATA:ACC", Wdk::Bits { first: 6, width: 1 }, SCSI_INQ_BITS),
    absent("root", "INQUIRYDATA:SCCS", Wdk::Bits { first: 7, width: 1 }, SCSI_INQ_BITS),
    // Sense data response codes (SPC's 70h..73h).
    absent("root", "SCSI_SENSE_ERRORCODE_FIXED_CURRENT", Wdk::Value(0x70), SCSI_SENSE),
    absent("root", "SCSI_SENSE_ERRORCODE_FIXED_DEFERRED", Wdk::Value(0x71), SCSI_SENSE),
    absent("root", "SCSI_SENSE_ERRORCODE_DESCRIPTOR_CURRENT", Wdk::Value(0x72), SCSI_SENSE),
    absent("root", "SCSI_SENSE_ERRORCODE_DESCRIPTOR_DEFERRED", Wdk::Value(0x73), SCSI_SENSE),
    // --- storport.h ---------------------------------------------------------------------------
    // MinGW-w64's storport.h is a Windows Server 2003-era subset: no Storport
    // HW_INITIALIZATION_DATA or PORT_CONFIGURATION_INFORMATION of its own (it reuses srb.h's), no
    // STOR_DPC, MEMORY_REGION, synchronization enums, Storport-only notification types or unit
    // control. The common prefixes of the two structures are checked against srb.h's; the
    // Storport-only parts are given here with their x64 offsets, computed from the WDK member
    // lists and matching the offsets of [PDB] hw_initialization_data_t.hpp and
    // port_configuration_information_t.hpp.
    differs(
        "storport",
        "HW_INITIALIZATION_DATA",
        Wdk::Layout { size: 128, align: 8 },
        Wdk::Layout { size: 208, align: 8 },
        STOR_HWID,
    ),
    absent("storport", "HW_INITIALIZATION_DATA.HwBuildIo", Wdk::Field { offset: 128, size: 8 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.HwFreeAdapterResources", Wdk::Field { offset: 136, size: 8 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.HwProcessServiceRequest", Wdk::Field { offset: 144, size: 8 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.HwCompleteServiceIrp", Wdk::Field { offset: 152, size: 8 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.HwInitializeTracing", Wdk::Field { offset: 160, size: 8 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.HwCleanupTracing", Wdk::Field { offset: 168, size: 8 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.HwTracingEnabled", Wdk::Field { offset: 176, size: 8 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.FeatureSupport", Wdk::Field { offset: 184, size: 4 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.SrbTypeFlags", Wdk::Field { offset: 188, size: 4 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.AddressTypeFlags", Wdk::Field { offset: 192, size: 4 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.Reserved1", Wdk::Field { offset: 196, size: 4 }, STOR_HWID),
    absent("storport", "HW_INITIALIZATION_DATA.HwUnitControl", Wdk::Field { offset: 200, size: 8 }, STOR_HWID),
    differs(
        "storport",
        "PORT_CONFIGURATION_INFORMATION",
        Wdk::Layout { size: 152, align: 8 },
        Wdk::Layout { size: 224, align: 8 },
        STOR_PCI,
    ),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.MiniportDumpData", Wdk::Field { offset: 64, size: 8 }, STOR_PCI_W8),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.SrbType", Wdk::Field { offset: 98, size: 1 }, STOR_PCI_W8),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.AddressType", Wdk::Field { offset: 99, size: 1 }, STOR_PCI_W8),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.SynchronizationModel", Wdk::Field { offset: 148, size: 4 }, STOR_PCI),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.HwMSInterruptRoutine", Wdk::Field { offset: 152, size: 8 }, STOR_PCI),
    absent(
        "storport",
        "PORT_CONFIGURATION_INFORMATION.InterruptSynchronizationMode",
        Wdk::Field { offset: 160, size: 4 },
        STOR_PCI,
    ),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.DumpRegion", Wdk::Field { offset: 168, size: 24 }, STOR_PCI),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.RequestedDumpBufferSize", Wdk::Field { offset: 192, size: 4 }, STOR_PCI),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.VirtualDevice", Wdk::Field { offset: 196, size: 1 }, STOR_PCI),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.DumpMode", Wdk::Field { offset: 197, size: 1 }, STOR_PCI),
    absent(
        "storport",
        "PORT_CONFIGURATION_INFORMATION.DmaAddressWidth",
        Wdk::Field { offset: 198, size: 1 },
        "[WDK19041] km/storport.h `#if (NTDDI_VERSION >= NTDDI_WIN10_VB) UCHAR DmaAddressWidth; #endif // 1 pad byte \
         unused` after DumpMode; [DOCS] storport/ns-storport-_port_configuration_information.md lists it between \
         DumpMode and ExtendedFlags1; [PDB] port_configuration_information_t.hpp: uint8_t at 0xc6 from Windows 10 2004",
    ),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.ExtendedFlags1", Wdk::Field { offset: 200, size: 4 }, STOR_PCI),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.MaxNumberOfIO", Wdk::Field { offset: 204, size: 4 }, STOR_PCI),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.MaxIOsPerLun", Wdk::Field { offset: 208, size: 4 }, STOR_PCI),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.InitialLunQueueDepth", Wdk::Field { offset: 212, size: 4 }, STOR_PCI),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.BusResetHoldTime", Wdk::Field { offset: 216, size: 4 }, STOR_PCI),
    absent("storport", "PORT_CONFIGURATION_INFORMATION.FeatureSupport", Wdk::Field { offset: 220, size: 4 }, STOR_PCI),
    absent("storport", "MEMORY_REGION", Wdk::Layout { size: 24, align: 8 }, STOR_MEMREG),
    absent("storport", "MEMORY_REGION.VirtualBase", Wdk::Field { offset: 0, size: 8 }, STOR_MEMREG),
    absent("storport", "MEMORY_REGION.PhysicalBase", Wdk::Field { offset: 8, size: 8 }, STOR_MEMREG),
    absent("storport", "MEMORY_REGION.Length", Wdk::Field { offset: 16, size: 4 }, STOR_MEMREG),
    absent(
        "storport",
        "STOR_DPC",
        Wdk::Layout { size: 72, align: 8 },
        "[WDK16299]/[WDK19041] km/storport.h `STOR_DPC { DPC_BUFFER Dpc; ULONG_PTR Lock; }` with `DPC_BUFFER { CSHORT \
         Type; UCHAR Number; UCHAR Importance; struct { PVOID F; PVOID B; }; PVOID DeferredRoutine, DeferredContext, \
         SystemArgument1, SystemArgument2, DpcData; }`: 4 + 4 padding + 16 + 40 = 64, plus 8; [DOCS] \
         storport/ns-storport-_stor_dpc.md (members Dpc, Lock)",
    ),
    absent(
        "storport",
        "STOR_LOCK_HANDLE",
        Wdk::Layout { size: 32, align: 8 },
        "[WDK19041] km/storport.h `STOR_LOCK_HANDLE { STOR_SPINLOCK Lock; struct { struct { PVOID Next; \
         PVOID Lock; } LockQueue; KIRQL OldIrql; } Context; }`: 4 + 4 padding + (16 + 1 + 7 padding) = 32; [DOCS] \
         storport/nf-storport-storportacquirespinlock.md (PSTOR_LOCK_HANDLE LockHandle)",
    ),
    absent("storport", "DpcLock", Wdk::Value(1), STOR_SPINLOCK),
    absent("storport", "StartIoLock", Wdk::Value(2), STOR_SPINLOCK),
    absent("storport", "InterruptLock", Wdk::Value(3), STOR_SPINLOCK),
    absent("storport", "StorSynchronizeHalfDuplex", Wdk::Value(0), STOR_SYNC),
    absent("storport", "StorSynchronizeFullDuplex", Wdk::Value(1), STOR_SYNC),
    absent("storport", "InterruptSupportNone", Wdk::Value(0), STOR_MSI),
    absent("storport", "InterruptSynchronizeAll", Wdk::Value(1), STOR_MSI),
    absent("storport", "InterruptSynchronizePerMessage", Wdk::Value(2), STOR_MSI),
    absent("storport", "STOR_MAP_NO_BUFFERS", Wdk::Value(0), STOR_MAP),
    absent("storport", "STOR_MAP_ALL_BUFFERS", Wdk::Value(1), STOR_MAP),
    absent("storport", "STOR_MAP_NON_READ_WRITE_BUFFERS", Wdk::Value(2), STOR_MAP),
    absent("storport", "STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE", Wdk::Value(3), STOR_MAP),
    absent("storport", "STOR_ADAPTER_FEATURE_DEVICE_TELEMETRY", Wdk::Value(0x01), STOR_ADAPTER),
    absent("storport", "STOR_ADAPTER_FEATURE_STOP_UNIT_DURING_POWER_DOWN", Wdk::Value(0x02), STOR_ADAPTER),
    absent("storport", "STOR_ADAPTER_UNCACHED_EXTENSION_NUMA_NODE_PREFERRED", Wdk::Value(0x04), STOR_ADAPTER),
    absent("storport", "STOR_ADAPTER_DMA_V3_PREFERRED", Wdk::Value(0x08), STOR_ADAPTER),
    absent("storport", "STOR_ADAPTER_FEATURE_ABORT_COMMAND", Wdk::Value(0x10), STOR_ADAPTER),
    absent("storport", "STOR_ADAPTER_FEATURE_RICH_TEMPERATURE_THRESHOLD", Wdk::Value(0x20), STOR_ADAPTER),
    absent("storport", "STOR_ADAPTER_DMA_ADDRESS_WIDTH_SPECIFIED", Wdk::Value(0x40), STOR_ADAPTER),
    absent("storport", "DUMP_MODE_CRASH", Wdk::Value(1), STOR_DUMP),
    absent("storport", "DUMP_MODE_HIBER", Wdk::Value(2), STOR_DUMP),
    absent("storport", "DUMP_MODE_MARK_MEMORY", Wdk::Value(3), STOR_DUMP),
    absent("storport", "DUMP_MODE_RESUME", Wdk::Value(4), STOR_DUMP),
    absent("storport", "SRB_TYPE_SCSI_REQUEST_BLOCK", Wdk::Value(0), STOR_SRBTYPE),
    absent("storport", "SRB_TYPE_STORAGE_REQUEST_BLOCK", Wdk::Value(1), STOR_SRBTYPE),
    absent("storport", "SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK", Wdk::Value(1), STOR_SRBTYPE),
    absent("storport", "SRB_TYPE_FLAG_STORAGE_REQUEST_BLOCK", Wdk::Value(2), STOR_SRBTYPE),
    absent("storport", "STORAGE_ADDRESS_TYPE_BTL8", Wdk::Value(0), STOR_SRBTYPE),
    absent("storport", "ADDRESS_TYPE_FLAG_BTL8", Wdk::Value(1), STOR_SRBTYPE),
    absent("storport", "_obsolete1", Wdk::Value(4), STOR_NOTIFY),
    absent("storport", "_obsolete2", Wdk::Value(5), STOR_NOTIFY),
    absent("storport", "GetExtendedFunctionTable", Wdk::Value(15), STOR_NOTIFY),
    absent("storport", "EnablePassiveInitialization", Wdk::Value(0x1000), STOR_NOTIFY),
    absent("storport", "InitializeDpc", Wdk::Value(0x1001), STOR_NOTIFY),
    absent("storport", "IssueDpc", Wdk::Value(0x1002), STOR_NOTIFY),
    absent("storport", "AcquireSpinLock", Wdk::Value(0x1003), STOR_NOTIFY),
    absent("storport", "ReleaseSpinLock", Wdk::Value(0x1004), STOR_NOTIFY),
    absent("storport", "StateChangeDetectedCall", Wdk::Value(0x1005), STOR_NOTIFY),
    absent("storport", "IoTargetRequestServiceTime", Wdk::Value(0x1006), STOR_NOTIFY),
    absent("storport", "AsyncNotificationDetected", Wdk::Value(0x1007), STOR_NOTIFY),
    absent("storport", "RequestDirectComplete", Wdk::Value(0x1008), STOR_NOTIFY_19041),
    absent("storport", "InitializeDpcWithContext", Wdk::Value(0x1009), STOR_NOTIFY_19041),
    absent("storport", "InitializeThreadedDpc", Wdk::Value(0x100A), STOR_NOTIFY_19041),
    absent("storport", "SetTargetProcessorDpc", Wdk::Value(0x100B), STOR_NOTIFY_19041),
    absent("storport", "MarkDeviceFailed", Wdk::Value(0x100C), STOR_NOTIFY_19041),
    absent("storport", "MarkDeviceFailedEx", Wdk::Value(0x100D), STOR_NOTIFY_19041),
    absent("storport", "ScsiQuerySupportedUnitControlTypes", Wdk::Value(0), STOR_UNIT),
    absent("storport", "ScsiUnitUsage", Wdk::Value(1), STOR_UNIT),
    absent("storport", "ScsiUnitStart", Wdk::Value(2), STOR_UNIT),
    absent("storport", "ScsiUnitPower", Wdk::Value(3), STOR_UNIT),
    absent("storport", "ScsiUnitPoFxPowerInfo", Wdk::Value(4), STOR_UNIT),
    absent("storport", "ScsiUnitPoFxPowerRequired", Wdk::Value(5), STOR_UNIT),
    absent("storport", "ScsiUnitPoFxPowerActive", Wdk::Value(6), STOR_UNIT),
    absent("storport", "ScsiUnitPoFxPowerSetFState", Wdk::Value(7), STOR_UNIT),
    absent("storport", "ScsiUnitPoFxPowerControl", Wdk::Value(8), STOR_UNIT),
    absent("storport", "ScsiUnitRemove", Wdk::Value(9), STOR_UNIT),
    absent("storport", "ScsiUnitSurpriseRemoval", Wdk::Value(10), STOR_UNIT),
    absent("storport", "ScsiUnitRichDescription", Wdk::Value(11), STOR_UNIT),
    absent(
        "storport",
        "ScsiUnitQueryBusType",
        Wdk::Value(12),
        "[WDK19041] km/storport.h SCSI_UNIT_CONTROL_TYPE, after ScsiUnitRichDescription (not in [WDK16299]); \
         [PDB] scsi_unit_control_type_t.hpp 0xc",
    ),
    absent("storport", "ScsiUnitQueryFruId", Wdk::Value(13), STOR_UNIT_W11),
    absent("storport", "ScsiUnitReportInternalData", Wdk::Value(14), STOR_UNIT_W11),
    absent("storport", "ScsiUnitControlSuccess", Wdk::Value(0), STOR_UNIT),
    absent("storport", "ScsiUnitControlUnsuccessful", Wdk::Value(1), STOR_UNIT),
];

const STOR_HWID: &str = "[WDK16299]/[WDK19041] km/storport.h `#if (NTDDI_VERSION >= NTDDI_WIN8)` HW_INITIALIZATION_DATA: \
     srb.h's members (HwFindAdapter as PVOID) then PHW_BUILDIO HwBuildIo .. PHW_TRACING_ENABLED HwTracingEnabled, ULONG \
     FeatureSupport, SrbTypeFlags, AddressTypeFlags, Reserved1, PHW_UNIT_CONTROL HwUnitControl; [DOCS] \
     storport/ns-storport-_hw_initialization_data~r1.md (same order); not in MinGW's storport.h";
const STOR_PCI: &str = "[WDK16299]/[WDK19041] km/storport.h PORT_CONFIGURATION_INFORMATION: srb.h's members then \
     STOR_SYNCHRONIZATION_MODEL SynchronizationModel; PHW_MESSAGE_SIGNALED_INTERRUPT_ROUTINE HwMSInterruptRoutine; \
     INTERRUPT_SYNCHRONIZATION_MODE InterruptSynchronizationMode; MEMORY_REGION DumpRegion; ULONG \
     RequestedDumpBufferSize; BOOLEAN VirtualDevice; UCHAR DumpMode; [UCHAR DmaAddressWidth;] ULONG ExtendedFlags1, \
     MaxNumberOfIO, MaxIOsPerLun, InitialLunQueueDepth, BusResetHoldTime, FeatureSupport; [DOCS] \
     storport/ns-storport-_port_configuration_information.md (same order); not in MinGW";
const STOR_PCI_W8: &str = "[WDK16299] km/storport.h `#if (NTDDI_VERSION >= NTDDI_WIN8)`: PVOID MiniportDumpData in place of \
     srb.h's PVOID Reserved, UCHAR SrbType, AddressType in place of ReservedUchars[2]; [DOCS] \
     storport/ns-storport-_port_configuration_information.md";
const STOR_MEMREG: &str = "[WDK16299] km/storport.h `MEMORY_REGION { PUCHAR VirtualBase; PHYSICAL_ADDRESS PhysicalBase; \
     ULONG Length; }`; [DOCS] storport/ns-storport-_memory_region.md; [PDB] memory_region_t.hpp (size 0x18)";
const STOR_SPINLOCK: &str = "[WDK19041] km/storport.h `enum _STOR_SPINLOCK { DpcLock = 1, StartIoLock, InterruptLock, \
     ThreadedDpcLock, DpcLevelLock }`; [DOCS] storport/ne-storport-_stor_spinlock.md (DpcLock:1, then StartIoLock, \
     InterruptLock)";
const STOR_SYNC: &str = "[WDK16299] km/storport.h `enum _STOR_SYNCHRONIZATION_MODEL { StorSynchronizeHalfDuplex, \
     StorSynchronizeFullDuplex }`";
const STOR_MSI: &str = "[WDK16299] km/storport.h `enum _INTERRUPT_SYNCHRONIZATION_MODE { InterruptSupportNone, \
     InterruptSynchronizeAll, InterruptSynchronizePerMessage }`; [DOCS] \
     storport/ne-storport-_interrupt_synchronization_mode.md";
const STOR_MAP: &str = "[WDK16299]/[WDK19041] km/storport.h `#define STOR_MAP_* (0)..(3)`; names in [DOCS] \
     storport/ns-storport-_hw_initialization_data~r1.md (MapBuffers)";
const STOR_ADAPTER: &str = "[WDK19041] km/storport.h `#define` (PORT_CONFIGURATION_INFORMATION.FeatureSupport); the same \
     values in [DOCS] storport/ns-storport-_port_configuration_information.md";
const STOR_DUMP: &str =
    "[WDK16299]/[WDK19041] km/storport.h `#define DUMP_MODE_*` (PORT_CONFIGURATION_INFORMATION.DumpMode)";
const STOR_SRBTYPE: &str = "[WDK16299] km/storport.h `#define SRB_TYPE_SCSI_REQUEST_BLOCK 0`, \
     `SRB_TYPE_STORAGE_REQUEST_BLOCK 1`, `STORAGE_ADDRESS_TYPE_BTL8 0`, `SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK 0x1`, \
     `SRB_TYPE_FLAG_STORAGE_REQUEST_BLOCK 0x2`, `ADDRESS_TYPE_FLAG_BTL8 0x1`";
const STOR_NOTIFY: &str = "[WDK16299] km/storport.h `enum _SCSI_NOTIFICATION_TYPE` (Storport-only enumerators; implicit \
     values after `EnablePassiveInitialization = 0x1000`)";
const STOR_NOTIFY_19041: &str = "[WDK19041] km/storport.h `enum _SCSI_NOTIFICATION_TYPE`, after AsyncNotificationDetected \
     (not in [WDK16299])";
const STOR_UNIT: &str = "[WDK16299] km/storport.h `enum _SCSI_UNIT_CONTROL_TYPE` / `_SCSI_UNIT_CONTROL_STATUS`; [DOCS] \
     storport/ne-storport-scsi_unit_control_type.md (same order)";
const STOR_UNIT_W11: &str = "[DOCS] storport/ne-storport-scsi_unit_control_type.md lists ScsiUnitQueryBusType, \
     ScsiUnitQueryFruId, ScsiUnitReportInternalData in that order; [PDB] scsi_unit_control_type_t.hpp gives 0xd and 0xe \
     (Windows 11); no kit header here has them";

// ---------------------------------------------------------------------------------------------
// The C side
// ---------------------------------------------------------------------------------------------

/// Preamble of each translation unit, by Rust module.
fn preamble(module: &str) -> &'static str {
    match module {
        // ntddk.h brings wdm.h (PCI_COMMON_CONFIG, DMA_WIDTH) and BUS_DATA_TYPE; it includes
        // <wdm.h> by bare name, so the ddk directory is on the include path (see `ddk_dir`).
        // MinGW's miniport.h is not used: it predates wdm.h's DMA_WIDTH and conflicts with it.
        "root" => concat!(
            "#define NTDDI_VERSION 0x0A000000\n",
            "#define _WIN32_WINNT 0x0A00\n",
            "#include <stddef.h>\n",
            "#include <ntddk.h>\n",
            "#include <srb.h>\n",
            "#include <scsi.h>\n",
        ),
        _ => concat!(
            "#define NTDDI_VERSION 0x0A000000\n",
            "#define _WIN32_WINNT 0x0A00\n",
            "#include <stddef.h>\n",
            "#include <ntddk.h>\n",
            // MinGW's storport.h declares its own SCSI_WMI_REQUEST_BLOCK after including srb.h,
            // which declares one too, so the pair does not compile as shipped. Include srb.h
            // first with its copy renamed; storport.h's include of srb.h is then a no-op.
            "#define _SCSI_WMI_REQUEST_BLOCK _SRB_H_SCSI_WMI_REQUEST_BLOCK\n",
            "#define SCSI_WMI_REQUEST_BLOCK SRB_H_SCSI_WMI_REQUEST_BLOCK\n",
            "#define PSCSI_WMI_REQUEST_BLOCK SRB_H_PSCSI_WMI_REQUEST_BLOCK\n",
            "#include <srb.h>\n",
            "#undef _SCSI_WMI_REQUEST_BLOCK\n",
            "#undef SCSI_WMI_REQUEST_BLOCK\n",
            "#undef PSCSI_WMI_REQUEST_BLOCK\n",
            "#include <storport.h>\n",
        ),
    }
}

/// What a probe measures, and the Rust side of it.
#[derive(Clone, Debug)]
enum Check {
    StructSize { item: String, rust: usize },
    StructAlign { item: String, rust: usize },
    FieldOffset { item: String, rust: usize },
    FieldSize { item: String, rust: usize },
    Const { item: String, size: u32, bits: u64 },
    AliasSize { item: String, rust: usize },
    Bitfield { item: String, first: u32, width: u32, rust: Vec<u8> },
}

impl Check {
    fn item(&self) -> &str {
        match self {
            Check::StructSize { item, .. }
            | Check::StructAlign { item, .. }
            | Check::FieldOffset { item, .. }
            | Check::FieldSize { item, .. }
            | Check::Const { item, .. }
            | Check::AliasSize { item, .. }
            | Check::Bitfield { item, .. } => item,
        }
    }
}

struct Probe {
    module: &'static str,
    /// A C integer constant expression, or for bit fields `TYPE|MEMBER`.
    expr: String,
    check: Check,
}

fn build_probes(items: &RustItems) -> Vec<Probe> {
    let mut probes = Vec::new();
    let by_name: BTreeMap<(&str, &str), &RustStruct> = items.structs.iter().map(|s| ((s.module, s.name), s)).collect();
    for s in &items.structs {
        if is_anonymous(s.name) {
            continue; // checked through its parent
        }
        let ct = c_type(s.module, s.name);
        probes.push(Probe {
            module: s.module,
            expr: format!("sizeof({ct})"),
            check: Check::StructSize { item: s.name.into(), rust: s.size },
        });
        probes.push(Probe {
            module: s.module,
            expr: format!("_Alignof({ct})"),
            check: Check::StructAlign { item: s.name.into(), rust: s.align },
        });
        for f in s.fields.iter().filter(|f| f.public) {
            let anon = by_name
                .get(&(s.module, f.ty))
                .or_else(|| by_name.get(&("root", f.ty)))
                .filter(|a| is_anonymous(a.name));
            let members: Vec<(&str, usize, usize)> = match anon {
                Some(a) => a.fields.iter().filter(|m| m.public).map(|m| (m.name, f.offset + m.offset, m.size)).collect(),
                None if f.name.starts_with("bitfield_") => Vec::new(), // checked bit by bit
                None => vec![(f.name, f.offset, f.size)],
            };
            for (name, offset, size) in members {
                let item = format!("{}.{}", s.name, name);
                probes.push(Probe {
                    module: s.module,
                    expr: format!("offsetof({ct}, {name})"),
                    check: Check::FieldOffset { item: item.clone(), rust: offset },
                });
                probes.push(Probe {
                    module: s.module,
                    expr: format!("sizeof((({ct} *)0)->{name})"),
                    check: Check::FieldSize { item, rust: size },
                });
            }
        }
    }
    for c in &items.consts {
        probes.push(Probe {
            module: c.module,
            expr: format!("(unsigned long long)({})", c.name),
            check: Check::Const { item: c.name.into(), size: c.size, bits: c.bits },
        });
    }
    for a in items.aliases.iter().filter(|a| !a.function_type) {
        probes.push(Probe {
            module: a.module,
            expr: format!("sizeof({})", a.name),
            check: Check::AliasSize { item: a.name.into(), rust: a.size },
        });
        // Alignment of aliases is implied by the structs that use them; size is enough here.
        let _ = a.align;
    }
    for b in &items.bitfields {
        probes.push(Probe {
            module: b.module,
            expr: format!("{}|{}", c_type(b.module, b.ty), b.name),
            check: Check::Bitfield {
                item: format!("{}:{}", b.ty, b.name),
                first: b.first,
                width: b.width,
                rust: b.bytes.clone(),
            },
        });
    }
    probes
}

/// The C file for the probes of one module; returns it and the probe index of each line.
fn c_source(module: &str, probes: &[Probe], live: &BTreeSet<usize>) -> (String, BTreeMap<usize, usize>) {
    let mut text = String::from("/* Generated by crates/scsiport-sys/tests/layout.rs */\n");
    text.push_str(preamble(module));
    let mut line_of = BTreeMap::new();
    let mut line_number = text.lines().count();
    for (index, probe) in probes.iter().enumerate() {
        if probe.module != module || !live.contains(&index) {
            continue;
        }
        line_number += 1;
        line_of.insert(line_number, index);
        if let Check::Bitfield { .. } = probe.check {
            let (ty, member) = probe.expr.split_once('|').unwrap_or_default();
            let _ = writeln!(text, "const {ty} B_{index} = {{ .{member} = -1 }};");
        } else {
            let _ = writeln!(text, "const unsigned long long P_{index} = {};", probe.expr);
        }
    }
    (text, line_of)
}

/// Parses the data of every `P_n` / `B_n` object in GCC's assembly into bytes.
fn parse_assembly(asm: &str) -> BTreeMap<usize, Vec<u8>> {
    let mut out: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let mut current: Option<usize> = None;
    for raw in asm.lines() {
        let line = raw.trim();
        if let Some(label) = line.strip_suffix(':') {
            current = label
                .strip_prefix("P_")
                .or_else(|| label.strip_prefix("B_"))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(index) = current {
                out.insert(index, Vec::new());
            }
            continue;
        }
        let Some(index) = current else { continue };
        let Some((directive, args)) = line.split_once(char::is_whitespace) else {
            current = None;
            continue;
        };
        let width = match directive {
            ".byte" => 1,
            ".word" | ".value" | ".short" | ".2byte" => 2,
            ".long" | ".int" | ".4byte" => 4,
            ".quad" | ".8byte" => 8,
            ".space" | ".zero" | ".skip" => 0,
            _ => {
                current = None;
                continue;
            }
        };
        let bytes = out.entry(index).or_default();
        for arg in args.split(',') {
            let Some(value) = parse_int(arg.trim()) else { continue };
            if width == 0 {
                bytes.extend(std::iter::repeat_n(0u8, usize::try_from(value).unwrap_or(0)));
            } else {
                #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
                let v = value as u64;
                bytes.extend_from_slice(&v.to_le_bytes()[..width]);
            }
        }
    }
    out
}

fn parse_int(s: &str) -> Option<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let v = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i128::from_str_radix(hex, 16).ok()?
    } else {
        digits.parse::<i128>().ok()?
    };
    Some(if neg { -v } else { v })
}

fn as_u64(bytes: &[u8]) -> Option<u64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_le_bytes(array))
}

/// Each compiled probe's bytes, and the probes MinGW could not compile.
type Compiled = (BTreeMap<usize, Vec<u8>>, BTreeSet<usize>);

/// Compiles the probes of one module, dropping the ones MinGW cannot compile. Returns each
/// compiled probe's bytes and the set of dropped probes, or an error for a failure that is not a
/// probe line's.
fn compile_module(module: &str, probes: &[Probe], work: &Path, ddk: &Path) -> Result<Compiled, String> {
    let mut live: BTreeSet<usize> =
        probes.iter().enumerate().filter(|(_, p)| p.module == module).map(|(i, _)| i).collect();
    let mut dropped = BTreeSet::new();
    for _round in 0..16 {
        let (text, line_of) = c_source(module, probes, &live);
        let c_path = work.join(format!("probe_{module}.c"));
        let s_path = work.join(format!("probe_{module}.s"));
        std::fs::write(&c_path, &text).map_err(|e| e.to_string())?;
        let output = Command::new(COMPILER)
            .args(["-S", "-w", "-O0", "-fno-zero-initialized-in-bss", "-isystem"])
            .arg(ddk)
            .arg("-o")
            .arg(&s_path)
            .arg(&c_path)
            .output()
            .map_err(|e| format!("running {COMPILER}: {e}"))?;
        if output.status.success() {
            let asm = std::fs::read_to_string(&s_path).map_err(|e| e.to_string())?;
            return Ok((parse_assembly(&asm), dropped));
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let file_name = c_path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let mut bad = BTreeSet::new();
        for l in stderr.lines().filter(|l| l.contains("error")) {
            let Some(rest) = l.split_once(&format!("{file_name}:")).map(|(_, r)| r) else {
                continue;
            };
            if let Some(index) = rest.split(':').next().and_then(|n| n.parse::<usize>().ok()).and_then(|n| line_of.get(&n)) {
                bad.insert(*index);
            }
        }
        if bad.is_empty() {
            return Err(format!("{COMPILER} failed outside the probe lines for module `{module}`:\n{stderr}"));
        }
        for index in bad {
            live.remove(&index);
            dropped.insert(index);
        }
    }
    Err(format!("module `{module}`: too many rounds of dropping probes"))
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

/// Writes a line to the process's stderr directly, past libtest's output capture, so the skip
/// notice and the counts show in a normal `cargo test` run.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

fn compiler_available() -> bool {
    Command::new(COMPILER).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// The `ddk` directory of the compiler's MinGW-w64 headers, found from its include search list.
fn ddk_dir() -> Option<PathBuf> {
    let output = Command::new(COMPILER).args(["-xc", "-E", "-v", "-"]).stdin(std::process::Stdio::null()).output().ok()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("#include <...>"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .map(|l| PathBuf::from(l.trim()).join("ddk"))
        .find(|d| d.join("srb.h").is_file() && d.join("wdm.h").is_file())
}

#[derive(Default)]
struct Counts {
    structs: BTreeSet<String>,
    fields: BTreeSet<String>,
    consts: usize,
    aliases: usize,
    aliases_not_in_mingw: Vec<String>,
    bitfields: usize,
    /// Exceptions some probe needed.
    exceptions_used: BTreeSet<usize>,
    /// Exceptions whose item exists but whose probes all agreed.
    exceptions_matched: BTreeSet<usize>,
}

fn find_exception(module: &str, item: &str) -> Option<(usize, &'static Exception)> {
    EXCEPTIONS.iter().enumerate().find(|(_, e)| e.module == module && e.item == item)
}

/// The Rust side as a `Wdk` value, for comparing with an exception.
fn rust_wdk(check: &Check, rust_items: &RustItems, module: &str) -> Wdk {
    match check {
        Check::StructSize { item, .. } | Check::StructAlign { item, .. } => {
            let s = rust_items.structs.iter().find(|s| s.module == module && s.name == item);
            s.map_or(Wdk::Layout { size: 0, align: 0 }, |s| Wdk::Layout { size: s.size, align: s.align })
        }
        Check::FieldOffset { item, .. } | Check::FieldSize { item, .. } => {
            let (offset, size) = field_of(rust_items, module, item);
            Wdk::Field { offset, size }
        }
        Check::Const { bits, .. } => Wdk::Value(*bits),
        Check::AliasSize { rust, .. } => Wdk::Layout { size: *rust, align: 0 },
        Check::Bitfield { first, width, .. } => Wdk::Bits { first: *first, width: *width },
    }
}

fn field_of(items: &RustItems, module: &str, item: &str) -> (usize, usize) {
    let Some((parent, member)) = item.split_once('.') else { return (usize::MAX, usize::MAX) };
    let Some(s) = items.structs.iter().find(|s| s.module == module && s.name == parent) else {
        return (usize::MAX, usize::MAX);
    };
    if let Some(f) = s.fields.iter().find(|f| f.name == member) {
        return (f.offset, f.size);
    }
    for f in &s.fields {
        if let Some(anon) = items.structs.iter().find(|a| a.name == f.ty && is_anonymous(a.name))
            && let Some(m) = anon.fields.iter().find(|m| m.name == member)
        {
            return (f.offset + m.offset, m.size);
        }
    }
    (usize::MAX, usize::MAX)
}

fn wdk_matches(check: &Check, expected: Wdk, rust: Wdk) -> bool {
    match (check, expected, rust) {
        (Check::Const { size, bits, .. }, Wdk::Value(v), _) => *bits == v || sign_extend(*size, *bits) == v,
        (Check::StructSize { .. }, Wdk::Layout { size: a, .. }, Wdk::Layout { size: b, .. })
        | (Check::StructAlign { .. }, Wdk::Layout { align: a, .. }, Wdk::Layout { align: b, .. })
        | (Check::FieldOffset { .. }, Wdk::Field { offset: a, .. }, Wdk::Field { offset: b, .. })
        | (Check::FieldSize { .. }, Wdk::Field { size: a, .. }, Wdk::Field { size: b, .. }) => a == b,
        (Check::Bitfield { .. }, a, b) => a == b,
        _ => false,
    }
}

/// What MinGW's compiled value says, as a `Wdk` value of the same kind.
fn c_matches(check: &Check, expected: Wdk, c_bytes: &[u8]) -> bool {
    let Some(c) = as_u64(c_bytes) else { return false };
    let c = usize::try_from(c).unwrap_or(usize::MAX);
    match (check, expected) {
        (Check::StructSize { .. }, Wdk::Layout { size: v, .. })
        | (Check::StructAlign { .. }, Wdk::Layout { align: v, .. })
        | (Check::FieldOffset { .. }, Wdk::Field { offset: v, .. })
        | (Check::FieldSize { .. }, Wdk::Field { size: v, .. }) => v == c,
        (Check::Const { .. }, Wdk::Value(v)) => u64::try_from(c).is_ok_and(|c| c == v),
        _ => false,
    }
}

#[allow(clippy::too_many_lines)]
#[test]
fn layout_matches_mingw_ddk_headers() {
    let ci = std::env::var("RSPVSCSI_CI").is_ok_and(|v| v == "1");
    if !compiler_available() {
        let message = format!("SKIPPED: {COMPILER} not found (apt-get install gcc-mingw-w64-x86-64)");
        assert!(!ci, "{message}; RSPVSCSI_CI=1 forbids skipping");
        say!("{message}");
        return;
    }
    if !cfg!(target_pointer_width = "64") {
        say!("SKIPPED: the probe is x64; this host's Rust layouts are not 64-bit");
        assert!(!ci, "RSPVSCSI_CI=1 needs a 64-bit host for the layout test");
        return;
    }

    let Some(ddk) = ddk_dir() else {
        panic!("{COMPILER} runs but its include path has no ddk/srb.h (is mingw-w64-common complete?)");
    };
    let items = generated::rust_items();
    assert!(items.parse_errors.is_empty(), "build.rs could not read: {:#?}", items.parse_errors);

    let probes = build_probes(&items);
    let work = std::env::var_os("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from).join("layout-probe");
    std::fs::create_dir_all(&work).expect("work dir");

    let mut results: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let mut dropped: BTreeSet<usize> = BTreeSet::new();
    for module in ["root", "storport"] {
        if !probes.iter().any(|p| p.module == module) {
            continue;
        }
        let (r, d) = compile_module(module, &probes, &work, &ddk).unwrap_or_else(|e| panic!("{e}"));
        results.extend(r);
        dropped.extend(d);
    }

    let mut counts = Counts::default();
    let mut mismatches: Vec<String> = Vec::new();
    for (index, probe) in probes.iter().enumerate() {
        let check = &probe.check;
        let item = check.item();
        let exception = find_exception(probe.module, item);
        if let Check::AliasSize { rust, .. } = check {
            // Aliases are checked where MinGW has them; those it lacks are only listed.
            if dropped.contains(&index) {
                counts.aliases_not_in_mingw.push(format!("{}::{item}", probe.module));
            } else if let Some(c) = results.get(&index).and_then(|b| as_u64(b)) {
                counts.aliases += 1;
                if usize::try_from(c).ok() != Some(*rust) {
                    mismatches.push(format!("{}::{item}: sizeof is {c} in MinGW, {rust} in Rust", probe.module));
                }
            }
            continue;
        }
        match check {
            Check::StructSize { item, .. } | Check::StructAlign { item, .. } => {
                counts.structs.insert(format!("{}::{item}", probe.module));
            }
            Check::FieldOffset { item, .. } | Check::FieldSize { item, .. } => {
                counts.fields.insert(format!("{}::{item}", probe.module));
            }
            Check::Const { .. } => counts.consts += 1,
            Check::Bitfield { .. } => counts.bitfields += 1,
            Check::AliasSize { .. } => {}
        }
        let rust = rust_wdk(check, &items, probe.module);
        if dropped.contains(&index) {
            match exception {
                Some((i, e)) => {
                    counts.exceptions_used.insert(i);
                    match e.kind {
                        Kind::Absent(wdk) if wdk_matches(check, wdk, rust) => {}
                        Kind::Absent(wdk) => mismatches.push(format!(
                            "{}::{item}: not in MinGW; the exception says the WDK has {wdk:?}, Rust has {rust:?}",
                            probe.module
                        )),
                        Kind::Differs { .. } => mismatches.push(format!(
                            "{}::{item}: MinGW cannot compile `{}`, but the exception says MinGW has it",
                            probe.module, probe.expr
                        )),
                    }
                }
                None => mismatches.push(format!(
                    "{}::{item}: MinGW-w64 cannot compile `{}` and EXCEPTIONS does not explain it",
                    probe.module, probe.expr
                )),
            }
            continue;
        }
        let Some(c_bytes) = results.get(&index) else {
            mismatches.push(format!("{}::{item}: no value for probe {index} in the assembly", probe.module));
            continue;
        };
        let agrees = match check {
            Check::StructSize { rust, .. }
            | Check::StructAlign { rust, .. }
            | Check::FieldOffset { rust, .. }
            | Check::FieldSize { rust, .. } => as_u64(c_bytes).and_then(|c| usize::try_from(c).ok()) == Some(*rust),
            Check::Const { size, bits, .. } => as_u64(c_bytes).is_some_and(|c| {
                RustConst { module: "", name: "", size: *size, bits: *bits }.matches(c)
            }),
            Check::Bitfield { rust, .. } => bitfield_bytes_agree(c_bytes, rust),
            Check::AliasSize { .. } => true,
        };
        match (agrees, exception) {
            (true, None) => {}
            (true, Some((i, _))) => {
                // One exception covers several probes of an item (offset and size, size and
                // alignment); it is stale only if none of them needs it (checked below).
                counts.exceptions_matched.insert(i);
            }
            (false, Some((i, e))) => {
                counts.exceptions_used.insert(i);
                let ok = match e.kind {
                    Kind::Differs { mingw, wdk } => c_matches(check, mingw, c_bytes) && wdk_matches(check, wdk, rust),
                    Kind::Absent(_) => false,
                };
                if !ok {
                    mismatches.push(format!(
                        "{}::{item}: MinGW {:?} vs Rust {rust:?} does not fit the exception {:?}",
                        probe.module,
                        describe_c(check, c_bytes),
                        e.kind
                    ));
                }
            }
            (false, None) => mismatches.push(format!(
                "{}::{item}: MinGW {:?}, Rust {:?} (probe `{}`)",
                probe.module,
                describe_c(check, c_bytes),
                describe_rust(check),
                probe.expr
            )),
        }
    }
    for b in items.bitfields.iter().filter(|b| !b.read_back_ok) {
        mismatches.push(format!("{}::{}:{}: the getter does not read back what the setter wrote", b.module, b.ty, b.name));
    }
    // Exceptions for items that no longer exist in Rust (partial hits are fine: one exception
    // can serve both the size and the alignment probe).
    for (i, e) in EXCEPTIONS.iter().enumerate() {
        if counts.exceptions_used.contains(&i) {
            continue;
        }
        if counts.exceptions_matched.contains(&i) {
            mismatches.push(format!("exception {}::{}: MinGW and Rust agree now; remove it", e.module, e.item));
        } else {
            mismatches.push(format!("exception {}::{} matches no binding; remove it", e.module, e.item));
        }
    }

    say!("layout check against MinGW-w64 DDK headers ({COMPILER}):");
    let unions = items.structs.iter().filter(|s| s.is_union && counts.structs.contains(&format!("{}::{}", s.module, s.name))).count();
    say!("  structs/unions checked:   {} ({unions} unions; size and alignment each)", counts.structs.len());
    say!("  fields checked:           {} (offset and size each)", counts.fields.len());
    say!("  constants/enums checked:  {}", counts.consts);
    say!("  bit fields checked:       {}", counts.bitfields);
    say!("  type aliases checked:     {} (+{} MinGW lacks, not required)", counts.aliases, counts.aliases_not_in_mingw.len());
    say!("  exceptions (WDK != MinGW): {}", counts.exceptions_used.len());
    for (i, e) in EXCEPTIONS.iter().enumerate().filter(|(i, _)| counts.exceptions_used.contains(i)) {
        let _ = i;
        say!("    {}::{}: {:?}: {}", e.module, e.item, e.kind, e.why);
    }
    say!("  mismatches:               {}", mismatches.len());
    for m in &mismatches {
        say!("    {m}");
    }
    if !counts.aliases_not_in_mingw.is_empty() {
        say!("  aliases MinGW lacks: {}", counts.aliases_not_in_mingw.join(", "));
    }
    assert!(mismatches.is_empty(), "{} unexplained layout mismatches (see above)", mismatches.len());
}

/// Whether a bit-field probe's bytes agree: equal over the bytes both structures have, and zero
/// past that. The sizes themselves are checked by the struct's own size probe (a structure the
/// WDK made longer than MinGW, such as INQUIRYDATA, carries an exception there), so a bit field
/// is still checked bit for bit where the two layouts overlap.
fn bitfield_bytes_agree(c: &[u8], rust: &[u8]) -> bool {
    let common = c.len().min(rust.len());
    c[..common] == rust[..common] && c[common..].iter().chain(&rust[common..]).all(|b| *b == 0)
}

fn describe_c(check: &Check, bytes: &[u8]) -> String {
    match check {
        Check::Bitfield { .. } => format!("{bytes:02x?}"),
        _ => as_u64(bytes).map_or_else(|| format!("{bytes:02x?}"), |v| format!("{v:#x}")),
    }
}

fn describe_rust(check: &Check) -> String {
    match check {
        Check::StructSize { rust, .. }
        | Check::StructAlign { rust, .. }
        | Check::FieldOffset { rust, .. }
        | Check::FieldSize { rust, .. }
        | Check::AliasSize { rust, .. } => format!("{rust:#x}"),
        Check::Const { bits, .. } => format!("{bits:#x}"),
        Check::Bitfield { rust, .. } => format!("{rust:02x?}"),
    }
}
