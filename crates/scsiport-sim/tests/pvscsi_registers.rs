//! PVSCSI model: PCI identity and config space, register semantics, commands
//! (pvscsi-facts.md §1, §2, §4).

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::many_single_char_names)] // test values are small and known

use scsiport_sim::disk::Disk;
use scsiport_sim::hba::{BarKind, Hba};
use scsiport_sim::pvscsi::harness::Harness;
use scsiport_sim::pvscsi::regs::{
    self, CMD_STATUS_FAILED, CMD_STATUS_NOT_ENOUGH_DATA, CMD_STATUS_OK, INTR_CMPL_0, cmd, rs,
};
use scsiport_sim::pvscsi::{PvscsiConfig, PvscsiLayout};
use scsiport_sim::mem::{Layout, PAGE_SIZE};

fn qemu() -> Harness {
    Harness::new(PvscsiConfig::default())
}

fn vmware() -> Harness {
    Harness::new(PvscsiConfig { layout: PvscsiLayout::Vmware, ..PvscsiConfig::default() })
}

fn cfg32(h: &Harness, off: u32) -> u32 {
    let mut b = [0u8; 4];
    assert_eq!(h.dev.config_read(off, &mut b), 4);
    u32::from_le_bytes(b)
}

#[test]
fn qemu_identity_and_bar() {
    let h = qemu();
    let id = h.dev.identity();
    assert_eq!((id.vendor_id, id.device_id), (0x15AD, 0x07C0));
    assert_eq!((id.subsystem_vendor_id, id.subsystem_id), (0x15AD, 0x07C0));
    assert_eq!(id.revision, 2);
    assert_eq!(id.class_code, 0x01_0000);
    let bars = h.dev.bars();
    assert_eq!(bars.len(), 1);
    assert_eq!((bars[0].index, bars[0].kind, bars[0].len), (0, BarKind::Memory, 0x8000));
    assert_eq!(bars[0].base, 0xFEB8_0000);
    assert_eq!(cfg32(&h, 0x10), 0xFEB8_0000, "32-bit non-prefetchable memory BAR");
    assert_eq!(cfg32(&h, 0x00), 0x07C0_15AD);
    assert_eq!(cfg32(&h, 0x3C) >> 8 & 0xFF, 1, "INTA#");
    assert_eq!(h.dev.mmio_bar(), 0);
}

#[test]
fn vmware_identity_and_bars() {
    let h = vmware();
    assert_eq!(h.dev.identity().class_code, 0x01_0700);
    let bars = h.dev.bars();
    assert_eq!(bars.len(), 2);
    assert_eq!((bars[0].index, bars[0].kind, bars[0].len), (0, BarKind::Io, 8));
    assert_eq!((bars[1].index, bars[1].kind, bars[1].len), (1, BarKind::Memory, 0x8000));
    assert_eq!(cfg32(&h, 0x10) & 1, 1, "I/O BAR");
    assert_eq!(cfg32(&h, 0x14) & 0x6, 0x4, "64-bit memory BAR");
    // Registers answer on BAR1 only; the I/O BAR reads 0.
    h.dev.write(1, regs::REG_INTR_MASK, 4, 3);
    assert_eq!(h.dev.read(1, regs::REG_INTR_MASK, 4), 3);
    assert_eq!(h.dev.read(0, 0, 4), 0);
    assert_eq!(h.dev.mmio_bar(), 1);
}

#[test]
fn bar_sizing_and_reassignment() {
    let h = qemu();
    assert_eq!(h.dev.config_write(0x10, &u32::MAX.to_le_bytes()), 4);
    assert_eq!(cfg32(&h, 0x10), 0xFFFF_8000, "size probe of a 32 KiB BAR");
    h.dev.config_write(0x10, &0xE000_0000u32.to_le_bytes());
    assert_eq!(h.dev.bars()[0].base, 0xE000_0000);
    let v = vmware();
    v.dev.config_write(0x10, &u32::MAX.to_le_bytes());
    assert_eq!(cfg32(&v, 0x10), 0xFFF9, "8-byte I/O BAR probe (16-bit decode)");
    v.dev.config_write(0x18, &1u32.to_le_bytes());
    assert_eq!(v.dev.bars()[1].base >> 32, 1, "the upper half of the 64-bit BAR");
}

#[test]
fn read_only_config_fields_ignore_writes() {
    let h = qemu();
    h.dev.config_write(0x00, &[0xFF; 4]);
    h.dev.config_write(0x08, &[0xFF; 4]);
    h.dev.config_write(0x2C, &[0xFF; 4]);
    assert_eq!(h.dev.identity().vendor_id, 0x15AD);
    assert_eq!(h.dev.identity().class_code, 0x01_0000);
    assert_eq!(h.dev.identity().subsystem_id, 0x07C0);
    let mut b = [0u8; 8];
    assert_eq!(h.dev.config_read(252, &mut b), 4, "reads stop at 256 bytes");
}

#[test]
fn msi_capability_at_0x7c() {
    let h = qemu();
    assert_ne!(cfg32(&h, 0x04) >> 16 & 0x10, 0, "capability list bit");
    // PCI Express first (as on q35), then MSI.
    assert_eq!(cfg32(&h, 0x34) & 0xFF, 0x40);
    assert_eq!(cfg32(&h, 0x40) & 0xFFFF, 0x7C10);
    let cap = cfg32(&h, 0x7C);
    assert_eq!(cap & 0xFF, 0x05, "MSI");
    assert_eq!(cap >> 8 & 0xFF, 0, "last capability");
    assert_eq!(cap >> 16, 0x0080, "64-bit, one vector, MSI disabled");
    let none = Harness::new(PvscsiConfig { msi_capability: false, express_capability: false, ..PvscsiConfig::default() });
    assert_eq!(cfg32(&none, 0x34) & 0xFF, 0);
    let pci = Harness::new(PvscsiConfig { express_capability: false, ..PvscsiConfig::default() });
    assert_eq!(cfg32(&pci, 0x34) & 0xFF, 0x7C, "QEMU on a conventional PCI bus: MSI only");
}

/// The PCI Express capability QEMU gives the device on q35 (a root-complex integrated endpoint),
/// byte for byte as the probe read it in the QEMU harness (pci.express); VMware's device is an
/// ordinary endpoint.
#[test]
fn express_capability_as_qemu_on_q35() {
    let h = qemu();
    let mut cap = [0u8; 0x3C];
    assert_eq!(h.dev.config_read(0x40, &mut cap), 0x3C);
    let want = "107c92000080000000000000110400000000110000000000000000000000000000000000000030000000000000000000000000000000000000000000";
    let want: Vec<u8> = (0..want.len()).step_by(2).map(|i| u8::from_str_radix(&want[i..i + 2], 16).unwrap()).collect();
    assert_eq!(&cap[..], &want[..]);
    assert_eq!(cfg32(&vmware(), 0x40) >> 16, 0x0002, "VMware: version 2, endpoint");
    // Device control is the guest's to set; the capability itself is read-only.
    h.dev.config_write(0x48, &[0x10, 0x20]);
    h.dev.config_write(0x40, &[0, 0, 0, 0]);
    assert_eq!(cfg32(&h, 0x48) & 0xFFFF, 0x2010);
    assert_eq!(cfg32(&h, 0x40), 0x0092_7C10);
}

/// PCI status bit 3 mirrors the INTx level; Interrupt Disable hides the line from the port but
/// not from the status bit; enabling MSI moves the interrupt off INTx.
#[test]
fn pci_interrupt_status_bit_and_masks() {
    let mut h = qemu();
    let disk = Disk::ram(1 << 20).unwrap();
    h.dev.attach(0, disk).unwrap();
    assert_eq!(h.setup_rings(1, 1), CMD_STATUS_OK);
    h.write(regs::REG_INTR_MASK, regs::INTR_CMPL_MASK);
    let r = h.request(1, 0, &[0, 0, 0, 0, 0, 0], None, 0, None);
    h.submit(&r);
    h.settle();
    assert!(h.dev.irq_asserted());
    assert_ne!(cfg32(&h, 0x04) >> 16 & 0x08, 0, "interrupt status set");
    h.dev.config_write(0x04, &0x0406u16.to_le_bytes());
    assert!(!h.dev.irq_asserted(), "INTx disabled");
    assert_ne!(cfg32(&h, 0x04) >> 16 & 0x08, 0, "status still reports it");
    h.dev.config_write(0x04, &0x0006u16.to_le_bytes());
    assert!(h.dev.irq_asserted());
    h.write(regs::REG_INTR_STATUS, INTR_CMPL_0);
    assert_eq!(cfg32(&h, 0x04) >> 16 & 0x08, 0);
    // MSI enabled: no INTx, one message per update that wants an interrupt.
    h.dev.config_write(0x7E, &1u16.to_le_bytes());
    let r = h.request(2, 0, &[0, 0, 0, 0, 0, 0], None, 0, None);
    h.submit(&r);
    h.settle();
    assert!(!h.dev.irq_asserted());
    assert_eq!(h.dev.stats().msi_messages, 1);
}

#[test]
fn register_reads_and_unimplemented_offsets() {
    let h = qemu();
    h.write(regs::REG_INTR_MASK, 0xDEAD_BEEF);
    assert_eq!(h.read(regs::REG_INTR_MASK), 0xDEAD_BEEF, "all 32 bits stored");
    assert_eq!(h.dev.registers().intr_mask, 0xDEAD_BEEF);
    for off in [regs::REG_COMMAND, regs::REG_COMMAND_DATA, regs::REG_LAST_STS_0, 0x104, regs::REG_KICK_RW_IO,
        regs::REG_KICK_NON_RW_IO, regs::REG_DEBUG, regs::REG_MSIX_TABLE, regs::REG_MSIX_PBA, 0x7FFC]
    {
        assert_eq!(h.read(off), 0, "offset {off:#x} reads 0");
    }
    h.write(regs::REG_DEBUG, 0x1234);
    h.write(0x500, 0x1234);
    assert_eq!(h.read(regs::REG_COMMAND_STATUS), 0, "power-on COMMAND_STATUS");
    assert_eq!(h.read(regs::REG_INTR_STATUS), 0);
}

/// 1- and 2-byte accesses become one 4-byte handler call at the same offset (QEMU's memory
/// core with impl.min = 4); misaligned ones are rejected. Both are counted.
#[test]
fn narrow_and_misaligned_accesses() {
    let h = qemu();
    let bar = h.dev.mmio_bar();
    h.dev.write(bar, regs::REG_INTR_MASK, 1, 0x1FF);
    assert_eq!(h.read(regs::REG_INTR_MASK), 0xFF, "byte write zero-extends");
    h.dev.write(bar, regs::REG_INTR_MASK + 1, 1, 0x3);
    assert_eq!(h.read(regs::REG_INTR_MASK), 0xFF, "a byte at +1 hits no register");
    h.write(regs::REG_INTR_MASK, 0x1234_5678);
    assert_eq!(h.dev.read(bar, regs::REG_INTR_MASK, 2), 0x5678);
    assert_eq!(h.dev.read(bar, regs::REG_INTR_MASK + 2, 2), 0, "the upper half is no register");
    assert_eq!(h.dev.stats().narrow_accesses, 4);
    h.dev.write(bar, regs::REG_INTR_MASK + 1, 2, 0);
    h.dev.write(bar, regs::REG_INTR_MASK + 2, 4, 0);
    assert_eq!(h.dev.read(bar, regs::REG_INTR_MASK + 1, 4), 0);
    assert_eq!(h.read(regs::REG_INTR_MASK), 0x1234_5678, "misaligned writes are dropped");
    assert_eq!(h.dev.stats().misaligned_accesses, 3);
    h.dev.write(bar, 0x8000, 4, 0);
    h.dev.write(bar, 0, 8, 0);
    assert_eq!(h.dev.stats().invalid_accesses, 2);
}

#[test]
fn setup_rings_writes_the_rings_state_page() {
    let mut h = qemu();
    // Dirty the page first: SETUP_RINGS must zero the indexes.
    assert_eq!(h.setup_rings(2, 4), CMD_STATUS_OK);
    for off in [rs::REQ_PROD_IDX, rs::REQ_CONS_IDX, rs::CMP_PROD_IDX, rs::CMP_CONS_IDX] {
        h.rs_write(off, 77);
    }
    h.rs_write(rs::MSG_PROD_IDX, 55);
    let rings = h.rings.as_ref().unwrap();
    let words = Harness::setup_rings_words(rings.state.pages()[0], &rings.req.pages()[..2], &rings.cmp.pages()[..4]);
    assert_eq!(h.command(cmd::SETUP_RINGS, &words), CMD_STATUS_OK);
    assert_eq!(h.rs_read(rs::REQ_NUM_ENTRIES_LOG2), 6, "2 pages × 32");
    assert_eq!(h.rs_read(rs::CMP_NUM_ENTRIES_LOG2), 9, "4 pages × 128");
    for off in [rs::REQ_PROD_IDX, rs::REQ_CONS_IDX, rs::CMP_PROD_IDX, rs::CMP_CONS_IDX] {
        assert_eq!(h.rs_read(off), 0);
    }
    assert_eq!(h.rs_read(rs::MSG_PROD_IDX), 55, "message fields untouched");
    assert!(h.dev.registers().rings_valid);
    let info = h.dev.ring_info();
    assert_eq!((info.req_entries_log2, info.cmp_entries_log2), (6, 9));
    assert_eq!(info.rings_state_pa, rings.state.pages()[0]);
}

#[test]
fn setup_rings_rejects_bad_page_counts() {
    for (req, cmp) in [(0, 1), (1, 0), (33, 1), (1, 33)] {
        let h = qemu();
        let state = h.alloc(PAGE_SIZE, Layout::Contiguous);
        let pages = h.alloc(PAGE_SIZE, Layout::Contiguous);
        let mut words = Harness::setup_rings_words(state.pages()[0], &[pages.pages()[0]], &[pages.pages()[0]]);
        words[0] = req;
        words[1] = cmp;
        assert_eq!(h.command(cmd::SETUP_RINGS, &words), CMD_STATUS_FAILED, "{req}/{cmp}");
        assert!(!h.dev.registers().rings_valid);
    }
}

/// Q2: a non-power-of-two count is accepted and rounded up; Q3: a slot whose page address is 0
/// stops the kick with its index consumed.
#[test]
fn non_power_of_two_ring_and_null_page() {
    let mut h = qemu();
    assert_eq!(h.setup_rings(3, 3), CMD_STATUS_OK);
    assert_eq!(h.rs_read(rs::REQ_NUM_ENTRIES_LOG2), 7, "96 entries rounded up to 128");
    assert_eq!(h.rs_read(rs::CMP_NUM_ENTRIES_LOG2), 9, "384 entries rounded up to 512");
    assert_eq!(h.dev.stats().non_power_of_two_rings, 1);
    // Slot 96 lives in the never-given page 3, whose address is 0.
    h.dev.set_request_counter(96);
    h.rs_write(rs::REQ_PROD_IDX, 98);
    h.kick();
    let s = h.dev.stats();
    assert_eq!(s.null_descriptors, 1);
    assert_eq!(s.requests, 0);
    assert_eq!(h.rs_read(rs::REQ_CONS_IDX), 97, "the slot is consumed");
}

/// 131 of 132 words leave the command pending (−2); the 132nd runs it.
#[test]
fn partial_command_stays_pending() {
    let h = qemu();
    let state = h.alloc(PAGE_SIZE, Layout::Contiguous);
    let pages = h.alloc(2 * PAGE_SIZE, Layout::Contiguous);
    let words = Harness::setup_rings_words(state.pages()[0], &[pages.pages()[0]], &[pages.pages()[1]]);
    h.write(regs::REG_COMMAND, cmd::SETUP_RINGS);
    assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_NOT_ENOUGH_DATA);
    for &w in &words[..131] {
        h.write(regs::REG_COMMAND_DATA, w);
    }
    assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_NOT_ENOUGH_DATA);
    let r = h.dev.registers();
    assert_eq!((r.pending_command, r.pending_words, r.rings_valid), (cmd::SETUP_RINGS, 131, false));
    h.write(regs::REG_COMMAND_DATA, words[131]);
    assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_OK);
    assert!(h.dev.registers().rings_valid);
    assert_eq!(h.dev.registers().pending_command, 0);
}

/// A data word after the command completed is a data word with no command: status −1,
/// overwriting the real result.
#[test]
fn extra_data_word_overwrites_the_status() {
    let mut h = qemu();
    assert_eq!(h.setup_rings(1, 1), CMD_STATUS_OK);
    h.write(regs::REG_COMMAND_DATA, 0);
    assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_FAILED);
    assert_eq!(h.dev.stats().stray_command_words, 1);
    assert!(h.dev.registers().rings_valid, "the rings stay set up");
}

#[test]
fn unknown_and_unimplemented_commands_fail_at_once() {
    let h = qemu();
    for code in [cmd::FIRST, cmd::ISSUE_SCSI, cmd::DEVICE_UNPLUG, cmd::SETUP_REQCALLTHRESHOLD, cmd::GET_MAX_TARGETS, 12, 0xFFFF_FFFF] {
        h.write(regs::REG_COMMAND, code);
        assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_FAILED, "command {code}");
        assert_eq!(h.dev.registers().pending_command, 0);
    }
    assert_eq!(h.dev.stats().unknown_commands, 7);
}

/// QEMU: CONFIG is not implemented but still consumes its 6 words and writes nothing.
#[test]
fn config_under_qemu_consumes_six_words() {
    let h = qemu();
    let page = h.alloc(PAGE_SIZE, Layout::Contiguous);
    h.fill_region(&page, &[0xAA; 512]);
    let pa = page.pages()[0];
    let words = [pa as u32, (pa >> 32) as u32, 0, regs::CONFIG_CONTROLLER_ADDRESS, regs::CONFIG_PAGE_CONTROLLER, 0];
    h.write(regs::REG_COMMAND, cmd::CONFIG);
    for &w in &words[..5] {
        h.write(regs::REG_COMMAND_DATA, w);
        assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_NOT_ENOUGH_DATA);
    }
    h.write(regs::REG_COMMAND_DATA, words[5]);
    assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_FAILED);
    assert!(h.region_bytes(&page)[..512].iter().all(|&b| b == 0xAA), "nothing written");
}

/// VMware: CONFIG answers the controller page with numPhys.
#[test]
fn config_under_vmware_reports_num_phys() {
    let h = Harness::new(PvscsiConfig { layout: PvscsiLayout::Vmware, max_targets: 32, ..PvscsiConfig::default() });
    let page = h.alloc(PAGE_SIZE, Layout::Contiguous);
    let pa = page.pages()[0];
    // Linux pre-fills hostStatus INVPARAM / scsiStatus CHECK.
    h.fill_region(&page, &[0, 0, 0, 0, 0, 0, 0x1A, 0, 2, 0]);
    let st = h.command(cmd::CONFIG, &[pa as u32, (pa >> 32) as u32, 0, regs::CONFIG_CONTROLLER_ADDRESS, regs::CONFIG_PAGE_CONTROLLER, 0]);
    assert_eq!(st, CMD_STATUS_OK);
    let b = h.region_bytes(&page);
    assert_eq!(u32::from_le_bytes(b[0..4].try_into().unwrap()), regs::CONFIG_PAGE_CONTROLLER);
    assert_eq!(u16::from_le_bytes([b[6], b[7]]), 0, "hostStatus SUCCESS");
    assert_eq!(u16::from_le_bytes([b[8], b[9]]), 0, "scsiStatus GOOD");
    assert_eq!(u32::from_le_bytes(b[472..476].try_into().unwrap()), 32, "numPhys");
    // Another page number is refused.
    let st = h.command(cmd::CONFIG, &[pa as u32, (pa >> 32) as u32, 0, 0, 0x1959, 0]);
    assert_eq!(st, CMD_STATUS_FAILED);
}

#[test]
fn setup_msg_ring_statuses() {
    // Probe: the code alone leaves −2 ("supported"), even with use_msg off (Q9).
    let off = Harness::new(PvscsiConfig { use_msg: false, ..PvscsiConfig::default() });
    off.write(regs::REG_COMMAND, cmd::SETUP_MSG_RING);
    assert_eq!(off.read(regs::REG_COMMAND_STATUS), CMD_STATUS_NOT_ENOUGH_DATA);
    let mut off = off;
    assert_eq!(off.setup_rings(1, 1), CMD_STATUS_OK);
    assert_eq!(off.setup_msg_ring(1), CMD_STATUS_FAILED, "use_msg = 0");

    // Before SETUP_RINGS: 34 but nothing set up.
    let mut h = qemu();
    assert_eq!(h.setup_msg_ring(1), 34);
    assert!(!h.dev.registers().msg_ring_valid);
    assert_eq!(h.setup_rings(1, 1), CMD_STATUS_OK);
    h.rs_write(rs::MSG_PROD_IDX, 9);
    assert_eq!(h.setup_msg_ring(2), 34);
    assert!(h.dev.registers().msg_ring_valid);
    assert_eq!(h.rs_read(rs::MSG_NUM_ENTRIES_LOG2), 6);
    assert_eq!(h.rs_read(rs::MSG_PROD_IDX), 0);
    assert_eq!(h.setup_msg_ring(17), CMD_STATUS_FAILED);
    assert_eq!(h.setup_msg_ring(0), CMD_STATUS_FAILED);
}

#[test]
fn reset_device_and_abort_statuses() {
    let mut h = qemu();
    h.dev.attach(3, Disk::ram(1 << 20).unwrap()).unwrap();
    assert_eq!(h.setup_rings(1, 1), CMD_STATUS_OK);
    assert_eq!(h.command(cmd::RESET_DEVICE, &[3, 0, 0]), CMD_STATUS_OK);
    assert_eq!(h.command(cmd::RESET_DEVICE, &[3, 0x0100, 0]), CMD_STATUS_OK, "LUN 1 falls back to the device");
    assert_eq!(h.command(cmd::RESET_DEVICE, &[4, 0, 0]), CMD_STATUS_FAILED, "no device");
    assert_eq!(h.command(cmd::RESET_DEVICE, &[3, 1, 0]), CMD_STATUS_FAILED, "lun[0] non-zero");
    assert_eq!(h.command(cmd::RESET_DEVICE, &[300, 0, 0]), CMD_STATUS_FAILED);
    h.write(regs::REG_COMMAND, cmd::RESET_DEVICE);
    h.write(regs::REG_COMMAND_DATA, 3);
    assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_NOT_ENOUGH_DATA, "3 words needed");
    h.write(regs::REG_COMMAND_DATA, 0);
    h.write(regs::REG_COMMAND_DATA, 0);
    assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_OK);
    assert_eq!(h.command(cmd::ABORT_CMD, &[0x1234, 0, 3, 0]), CMD_STATUS_OK, "abort of nothing is fine");
    assert_eq!(h.dev.stats().aborts, 1);
    assert_eq!(h.dev.stats().aborts_matched, 0);
    assert_eq!(h.dev.stats().device_resets, 3);
}

#[test]
fn attach_rules() {
    let h = qemu();
    h.dev.attach(64, Disk::ram(1 << 20).unwrap()).unwrap();
    assert!(h.dev.attach(65, Disk::ram(1 << 20).unwrap()).is_err());
    assert!(h.dev.attach(64, Disk::ram(1 << 20).unwrap()).is_err());
    assert_eq!(h.dev.targets(), vec![64]);
    assert!(h.dev.detach(64).is_some());
    assert!(h.dev.detach(64).is_none());
    let v = vmware();
    assert!(v.dev.attach(15, Disk::ram(1 << 20).unwrap()).is_ok());
    assert!(v.dev.attach(16, Disk::ram(1 << 20).unwrap()).is_err(), "VMware: max_targets 16");
}

/// `Hba::hold`: while one thread holds the model, its own accesses go on (nested) and another
/// thread's wait for the hold to end; the model answers the same either way.
#[test]
fn a_hold_keeps_the_model_to_one_thread_until_it_ends() {
    let h = std::sync::Arc::new(qemu());
    h.dev.hold();
    h.dev.write(0, regs::REG_INTR_MASK, 4, 3);
    assert_eq!(h.dev.read(0, regs::REG_INTR_MASK, 4), 3, "the holder's own accesses");
    // A release by a thread that holds nothing releases nothing.
    let h2 = std::sync::Arc::clone(&h);
    std::thread::spawn(move || h2.dev.release()).join().unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = {
        let (h, done) = (std::sync::Arc::clone(&h), std::sync::Arc::clone(&done));
        std::thread::spawn(move || {
            let v = h.dev.read(0, regs::REG_INTR_MASK, 4);
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            v
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!done.load(std::sync::atomic::Ordering::SeqCst), "another thread's access waits for the hold");
    h.dev.release();
    assert_eq!(other.join().unwrap(), 3);
}
