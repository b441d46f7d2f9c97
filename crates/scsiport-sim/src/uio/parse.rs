//! Parsers for the kernel files the hardware backend reads: a PCI function's sysfs `resource`
//! and `config`, `/proc/self/pagemap` entries and `/proc/meminfo`.
//!
//! They are pure functions over the files' contents, so they are tested on any Linux host
//! without the device. Malformed contents are errors, never panics: the backend runs inside a
//! guest whose kernel we did not build.

use crate::hba::{Bar, BarKind, PciIdentity};

/// `IORESOURCE_IO` in the `flags` column of sysfs `resource` (include/linux/ioport.h).
pub const IORESOURCE_IO: u64 = 0x0000_0100;
/// `IORESOURCE_MEM`.
pub const IORESOURCE_MEM: u64 = 0x0000_0200;
/// `IORESOURCE_PREFETCH`.
pub const IORESOURCE_PREFETCH: u64 = 0x0000_2000;
/// `IORESOURCE_MEM_64`: a 64-bit memory BAR (its upper half shows as the next, empty, line).
pub const IORESOURCE_MEM_64: u64 = 0x0010_0000;
/// `IORESOURCE_DISABLED`.
pub const IORESOURCE_DISABLED: u64 = 0x1000_0000;
/// `IORESOURCE_UNSET`: no address assigned.
pub const IORESOURCE_UNSET: u64 = 0x2000_0000;

/// Number of BARs of a type-0 (endpoint) header; sysfs `resource` lists them first, then the
/// expansion ROM and, for bridges, the windows.
pub const BAR_COUNT: usize = 6;

/// One line of sysfs `resource`: `0x<start> 0x<end> 0x<flags>`, as `resource_show` in
/// drivers/pci/pci-sysfs.c prints it for each resource in index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceLine {
    /// Resource index (0..=5 are BARs, 6 the expansion ROM).
    pub index: usize,
    /// First address (CPU physical; equal to the bus address on x86).
    pub start: u64,
    /// Last address (inclusive).
    pub end: u64,
    /// `IORESOURCE_*` flags.
    pub flags: u64,
}

impl ResourceLine {
    /// Whether the line describes an implemented, assigned resource.
    #[must_use]
    pub fn is_assigned(&self) -> bool {
        self.flags & (IORESOURCE_IO | IORESOURCE_MEM) != 0
            && self.flags & (IORESOURCE_DISABLED | IORESOURCE_UNSET) == 0
            && self.end > self.start
    }

    /// Length in bytes (0 when unassigned).
    #[must_use]
    pub fn len(&self) -> u64 {
        if self.is_assigned() { self.end - self.start + 1 } else { 0 }
    }

    /// Whether the resource is empty (unimplemented or unassigned).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn parse_hex(word: &str) -> Option<u64> {
    let digits = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X"))?;
    u64::from_str_radix(digits, 16).ok()
}

/// Parses sysfs `resource`.
///
/// # Errors
/// A line that does not have exactly three `0x` hex numbers, or with `end < start` on an
/// assigned resource.
pub fn parse_resource(text: &str) -> Result<Vec<ResourceLine>, String> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [s, e, f] = words.as_slice() else {
            return Err(format!("resource line {index}: expected 3 fields, got {line:?}"));
        };
        let (Some(start), Some(end), Some(flags)) = (parse_hex(s), parse_hex(e), parse_hex(f)) else {
            return Err(format!("resource line {index}: not hex numbers: {line:?}"));
        };
        if flags & (IORESOURCE_IO | IORESOURCE_MEM) != 0 && (start != 0 || end != 0) && end < start {
            return Err(format!("resource line {index}: end {end:#x} below start {start:#x}"));
        }
        out.push(ResourceLine { index, start, end, flags });
    }
    Ok(out)
}

/// The implemented BARs among parsed resource lines, in index order, as the [`crate::hba`]
/// trait reports them. The expansion ROM and bridge windows are not BARs.
#[must_use]
pub fn bars_from_resources(lines: &[ResourceLine]) -> Vec<Bar> {
    lines
        .iter()
        .take(BAR_COUNT)
        .filter(|l| l.is_assigned())
        .filter_map(|l| {
            let kind = if l.flags & IORESOURCE_IO != 0 { BarKind::Io } else { BarKind::Memory };
            Some(Bar { index: u8::try_from(l.index).ok()?, kind, base: l.start, len: l.len() })
        })
        .collect()
}

/// The BAR holding PVSCSI's registers: the first memory BAR of at least `min_len` bytes.
///
/// This is how the driver picks it (pvscsi-facts.md §1: QEMU has it at BAR0, VMware at BAR1
/// behind an I/O BAR, so the index must not be assumed), and how Linux's `vmw_pvscsi` does.
#[must_use]
pub fn register_bar(bars: &[Bar], min_len: u64) -> Option<u8> {
    bars.iter().find(|b| b.kind == BarKind::Memory && b.len >= min_len).map(|b| b.index)
}

/// Offsets in the type-0 configuration header (PCI Local Bus 3.0 §6.1).
pub mod cfg {
    /// Vendor ID (u16).
    pub const VENDOR_ID: usize = 0x00;
    /// Device ID (u16).
    pub const DEVICE_ID: usize = 0x02;
    /// Command register (u16).
    pub const COMMAND: usize = 0x04;
    /// Status register (u16).
    pub const STATUS: usize = 0x06;
    /// Revision ID (u8).
    pub const REVISION: usize = 0x08;
    /// Programming interface, sub-class, base class (three bytes, that order).
    pub const CLASS: usize = 0x09;
    /// Header type (u8; bit 7 = multi-function).
    pub const HEADER_TYPE: usize = 0x0e;
    /// Subsystem vendor ID (u16).
    pub const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
    /// Subsystem ID (u16).
    pub const SUBSYSTEM_ID: usize = 0x2e;

    /// Command: memory space enable.
    pub const COMMAND_MEMORY: u16 = 1 << 1;
    /// Command: bus master enable.
    pub const COMMAND_MASTER: u16 = 1 << 2;
    /// Command: INTx disable. `uio_pci_generic`'s interrupt handler sets it
    /// (`pci_check_and_mask_intx`); user space clears it to re-arm.
    pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
    /// Status: interrupt status, the function's INTx level, which the bit shows even while
    /// INTx disable keeps it off the pin (PCI Local Bus 3.0 §6.2.3).
    pub const STATUS_INTERRUPT: u16 = 1 << 3;
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The PCI identity from the first 64 bytes of configuration space.
///
/// # Errors
/// Fewer than 64 bytes, an absent function (vendor 0xFFFF or 0), or a header that is not type 0.
pub fn identity_from_config(config: &[u8]) -> Result<PciIdentity, String> {
    if config.len() < 64 {
        return Err(format!("config space: {} bytes, need the 64-byte header", config.len()));
    }
    let short = || "config space: truncated header".to_string();
    let vendor_id = le16(config, cfg::VENDOR_ID).ok_or_else(short)?;
    if vendor_id == 0xffff || vendor_id == 0 {
        return Err(format!("config space: vendor {vendor_id:#06x}, no function here"));
    }
    let header = config.get(cfg::HEADER_TYPE).ok_or_else(short)? & 0x7f;
    if header != 0 {
        return Err(format!("config space: header type {header}, not an endpoint (type 0)"));
    }
    let class = config.get(cfg::CLASS..cfg::CLASS + 3).ok_or_else(short)?;
    Ok(PciIdentity {
        vendor_id,
        device_id: le16(config, cfg::DEVICE_ID).ok_or_else(short)?,
        subsystem_vendor_id: le16(config, cfg::SUBSYSTEM_VENDOR_ID).ok_or_else(short)?,
        subsystem_id: le16(config, cfg::SUBSYSTEM_ID).ok_or_else(short)?,
        revision: *config.get(cfg::REVISION).ok_or_else(short)?,
        class_code: u32::from_le_bytes([class[0], class[1], class[2], 0]),
    })
}

/// A PCI address as sysfs names it, `dddd:bb:dd.f`, lower case. Accepts `bb:dd.f` (domain 0)
/// and rejects anything else, so the string can be joined to a sysfs path safely.
///
/// # Errors
/// When the text is not a PCI address.
pub fn normalize_bdf(text: &str) -> Result<String, String> {
    let lower = text.trim().to_ascii_lowercase();
    let full = if lower.len() == 7 { format!("0000:{lower}") } else { lower };
    let b = full.as_bytes();
    let hex = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_hexdigit));
    let ok = b.len() == 12
        && hex(0..4)
        && b.get(4) == Some(&b':')
        && hex(5..7)
        && b.get(7) == Some(&b':')
        && hex(8..10)
        && b.get(10) == Some(&b'.')
        && b.get(11).is_some_and(|f| (b'0'..=b'7').contains(f));
    let device_ok = u8::from_str_radix(full.get(8..10).unwrap_or("ff"), 16).is_ok_and(|d| d < 32);
    if ok && device_ok { Ok(full) } else { Err(format!("{text:?} is not a PCI address (dddd:bb:dd.f)")) }
}

/// Bit 63 of a pagemap entry: the page is present in RAM
/// (Documentation/admin-guide/mm/pagemap.rst).
pub const PAGEMAP_PRESENT: u64 = 1 << 63;
/// Bit 62: the page is swapped out (bits 0–54 then hold the swap entry, not a PFN).
pub const PAGEMAP_SWAPPED: u64 = 1 << 62;
/// Bits 0–54: the page frame number, when present. Zero when the reader lacks `CAP_SYS_ADMIN`.
pub const PAGEMAP_PFN_MASK: u64 = (1 << 55) - 1;

/// The page frame number in one `/proc/self/pagemap` entry.
///
/// # Errors
/// When the page is not present, is swapped, or the PFN reads 0 (the kernel hides PFNs from
/// readers without `CAP_SYS_ADMIN` since Linux 4.2).
pub fn pfn_from_pagemap(entry: u64) -> Result<u64, String> {
    if entry & PAGEMAP_SWAPPED != 0 {
        return Err(format!("pagemap entry {entry:#018x}: page is swapped out"));
    }
    if entry & PAGEMAP_PRESENT == 0 {
        return Err(format!("pagemap entry {entry:#018x}: page not present"));
    }
    match entry & PAGEMAP_PFN_MASK {
        0 => Err("pagemap hides the page frame number (needs root / CAP_SYS_ADMIN)".into()),
        pfn => Ok(pfn),
    }
}

/// Decodes a pagemap read (8 bytes per page, little-endian on every architecture Linux
/// supports with this format) into PFNs.
///
/// # Errors
/// A length that is not a multiple of 8, or any entry [`pfn_from_pagemap`] rejects.
pub fn pfns_from_pagemap(bytes: &[u8]) -> Result<Vec<u64>, String> {
    if !bytes.len().is_multiple_of(8) {
        return Err(format!("pagemap read of {} bytes is not whole entries", bytes.len()));
    }
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut e = [0u8; 8];
            e.copy_from_slice(c);
            pfn_from_pagemap(u64::from_le_bytes(e))
        })
        .collect()
}

/// The default huge page size in bytes from `/proc/meminfo` (`Hugepagesize:  2048 kB`).
#[must_use]
pub fn hugepage_size_from_meminfo(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find(|l| l.starts_with("Hugepagesize:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: usize = words.next()?.parse().ok()?;
    match words.next()? {
        "kB" => value.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 7.2 `-device pvscsi` on q35, as the feasibility run saw it (BAR0 only), plus the
    /// ROM line and the empty BARs.
    const QEMU_RESOURCE: &str = "0x00000000febf0000 0x00000000febf7fff 0x0000000000040200
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
";

    /// The VMware layout of pvscsi-facts.md §1: I/O BAR0 (8 bytes), 64-bit memory BAR1
    /// (32 KiB, whose upper half is line 2), a 64 KiB ROM.
    const VMWARE_RESOURCE: &str = "0x0000000000004000 0x0000000000004007 0x0000000000040101
0x00000000fd400000 0x00000000fd407fff 0x0000000000140204
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x00000000fd3f0000 0x00000000fd3fffff 0x0000000000046200
";

    #[test]
    fn qemu_resource_gives_bar0() {
        let lines = parse_resource(QEMU_RESOURCE).unwrap();
        assert_eq!(lines.len(), 7);
        let bars = bars_from_resources(&lines);
        assert_eq!(bars, vec![Bar { index: 0, kind: BarKind::Memory, base: 0xfebf_0000, len: 0x8000 }]);
        assert_eq!(register_bar(&bars, 0x8000), Some(0));
    }

    #[test]
    fn vmware_resource_gives_io_bar_and_register_bar1() {
        let bars = bars_from_resources(&parse_resource(VMWARE_RESOURCE).unwrap());
        assert_eq!(bars.len(), 2, "the ROM is not a BAR: {bars:?}");
        assert_eq!(bars[0], Bar { index: 0, kind: BarKind::Io, base: 0x4000, len: 8 });
        assert_eq!(bars[1], Bar { index: 1, kind: BarKind::Memory, base: 0xfd40_0000, len: 0x8000 });
        assert_eq!(register_bar(&bars, 0x8000), Some(1));
        assert_eq!(register_bar(&bars, 0x10000), None);
    }

    #[test]
    fn unassigned_and_small_bars() {
        let text = "0x0000000000000000 0x0000000000000fff 0x0000000020000200\n\
                    0x00000000e0000000 0x00000000e0000fff 0x0000000000042208\n";
        let bars = bars_from_resources(&parse_resource(text).unwrap());
        assert_eq!(bars, vec![Bar { index: 1, kind: BarKind::Memory, base: 0xe000_0000, len: 0x1000 }]);
        assert_eq!(register_bar(&bars, 0x8000), None);
    }

    #[test]
    fn bad_resource_lines_are_errors() {
        assert!(parse_resource("0x1 0x2\n").is_err());
        assert!(parse_resource("0x1 0x2 0x200 0x4\n").is_err());
        assert!(parse_resource("1 2 3\n").is_err());
        assert!(parse_resource("0xzz 0x2 0x200\n").is_err());
        assert!(parse_resource("0x2000 0x1000 0x200\n").is_err());
        assert_eq!(parse_resource("").unwrap(), vec![]);
    }

    fn pvscsi_config() -> [u8; 256] {
        let mut c = [0u8; 256];
        c[0..2].copy_from_slice(&0x15adu16.to_le_bytes());
        c[2..4].copy_from_slice(&0x07c0u16.to_le_bytes());
        c[4..6].copy_from_slice(&0x0107u16.to_le_bytes());
        c[8] = 2;
        c[9..12].copy_from_slice(&[0x00, 0x00, 0x01]);
        c[0x2c..0x2e].copy_from_slice(&0x15adu16.to_le_bytes());
        c[0x2e..0x30].copy_from_slice(&0x07c0u16.to_le_bytes());
        c
    }

    #[test]
    fn identity_of_qemu_pvscsi() {
        let id = identity_from_config(&pvscsi_config()).unwrap();
        assert_eq!(
            id,
            PciIdentity {
                vendor_id: 0x15ad,
                device_id: 0x07c0,
                subsystem_vendor_id: 0x15ad,
                subsystem_id: 0x07c0,
                revision: 2,
                class_code: 0x01_0000,
            }
        );
    }

    #[test]
    fn identity_errors() {
        let c = pvscsi_config();
        assert!(identity_from_config(&c[..63]).is_err());
        let mut absent = c;
        absent[0..2].copy_from_slice(&[0xff, 0xff]);
        assert!(identity_from_config(&absent).is_err());
        let mut bridge = c;
        bridge[cfg::HEADER_TYPE] = 0x81;
        assert!(identity_from_config(&bridge).is_err());
        let mut multi = c;
        multi[cfg::HEADER_TYPE] = 0x80;
        assert!(identity_from_config(&multi).is_ok());
    }

    #[test]
    fn bdf_forms() {
        assert_eq!(normalize_bdf("0000:00:01.0").unwrap(), "0000:00:01.0");
        assert_eq!(normalize_bdf("00:1F.7").unwrap(), "0000:00:1f.7");
        assert_eq!(normalize_bdf(" 0001:ab:1f.3\n").unwrap(), "0001:ab:1f.3");
        for bad in ["", "0000:00:01.8", "0000:00:20.0", "../../../etc", "0000:00:01", "0000-00:01.0", "00000:00:01.0"] {
            assert!(normalize_bdf(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pagemap_entries() {
        // A present, exclusively mapped page (bits 63 and 56), as read on a host.
        assert_eq!(pfn_from_pagemap(0xa100_0000_0011_4950).unwrap(), 0x11_4950);
        assert_eq!(pfn_from_pagemap(PAGEMAP_PRESENT | 0xc7ee).unwrap(), 0xc7ee);
        let hidden = pfn_from_pagemap(PAGEMAP_PRESENT).unwrap_err();
        assert!(hidden.contains("CAP_SYS_ADMIN"), "{hidden}");
        assert!(pfn_from_pagemap(0).unwrap_err().contains("not present"));
        assert!(pfn_from_pagemap(PAGEMAP_PRESENT | PAGEMAP_SWAPPED | 5).unwrap_err().contains("swapped"));
        // Soft-dirty and other high bits do not leak into the PFN.
        assert_eq!(pfn_from_pagemap(PAGEMAP_PRESENT | (1 << 55) | (1 << 61) | 7).unwrap(), 7);
    }

    #[test]
    fn pagemap_bytes() {
        let mut b = Vec::new();
        b.extend_from_slice(&(PAGEMAP_PRESENT | 0x100).to_le_bytes());
        b.extend_from_slice(&(PAGEMAP_PRESENT | 0x101).to_le_bytes());
        assert_eq!(pfns_from_pagemap(&b).unwrap(), vec![0x100, 0x101]);
        assert!(pfns_from_pagemap(&b[..12]).is_err());
        b.extend_from_slice(&0u64.to_le_bytes());
        assert!(pfns_from_pagemap(&b).is_err());
    }

    #[test]
    fn meminfo_hugepage_size() {
        let text = "MemTotal:         250000 kB\nHugePages_Total:       4\nHugepagesize:       2048 kB\nHugetlb: 8192 kB\n";
        assert_eq!(hugepage_size_from_meminfo(text), Some(2 << 20));
        assert_eq!(hugepage_size_from_meminfo("Hugepagesize: 1048576 kB"), Some(1 << 30));
        assert_eq!(hugepage_size_from_meminfo("MemTotal: 1 kB"), None);
        assert_eq!(hugepage_size_from_meminfo("Hugepagesize: x kB"), None);
        assert_eq!(hugepage_size_from_meminfo("Hugepagesize: 2048 MB"), None);
    }
}
