//! PVSCSI model: abort, bus/device/adapter/machine resets, unit attention after resets, the
//! message ring and hot-plug (pvscsi-facts.md §3 quirk, §5.6, §6.4, §7).

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::many_single_char_names)] // test values are small and known

use scsiport_sim::disk::cdb::build;
use scsiport_sim::disk::{Disk, Sense};
use scsiport_sim::hba::Hba;
use scsiport_sim::mem::Layout;
use scsiport_sim::pvscsi::harness::Harness;
use scsiport_sim::pvscsi::regs::{self, INTR_CMPL_0, INTR_CMPL_MASK, INTR_MSG_0, cmd, flags, host, msg, rs};
use scsiport_sim::pvscsi::{Latency, PvscsiConfig};

const TUR: [u8; 6] = [0; 6];

fn rig(targets: &[u8]) -> (Harness, Vec<Disk>) {
    let mut h = Harness::new(PvscsiConfig { latency: Latency::fixed(10_000), ..PvscsiConfig::default() });
    let disks: Vec<Disk> = targets
        .iter()
        .map(|&t| {
            let d = Disk::ram(1 << 20).unwrap();
            d.set_unit_attention(None);
            h.dev.attach(t, d.clone()).unwrap();
            d
        })
        .collect();
    assert_eq!(h.setup_rings(1, 1), 0);
    (h, disks)
}

/// `ABORT_CMD`: the in-flight request completes once, with ABORTQUEUE, and never runs.
#[test]
fn abort_gives_abortqueue_exactly_once() {
    let (mut h, d) = rig(&[0]);
    let buf = h.alloc(512, Layout::Contiguous);
    h.fill_region(&buf, &[0xEE; 512]);
    let r = h.request(0x42, 0, &build::rw10(true, 7, 1), Some((&buf, 512)), flags::DIR_TODEVICE, None);
    h.submit(&r);
    let r = h.request(0x43, 0, &TUR, None, 0, None);
    h.submit(&r);
    assert_eq!(h.dev.in_flight(), 2);
    assert_eq!(h.command(cmd::ABORT_CMD, &[0x42, 0, 0, 0]), 0);
    assert_eq!(h.dev.in_flight(), 1);
    assert_eq!(h.rs_read(rs::CMP_PROD_IDX), 0, "the abort completion is posted later too");
    h.settle();
    let c = h.completions();
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].context, c[0].host_status, c[0].scsi_status), (0x42, host::ABORTQUEUE, 0));
    assert_eq!((c[1].context, c[1].host_status), (0x43, host::SUCCESS));
    assert_eq!(d[0].read_sectors(7, 1).unwrap(), vec![0; 512], "the aborted write never ran");
    // Aborting it again (already completed) does nothing.
    assert_eq!(h.command(cmd::ABORT_CMD, &[0x42, 0, 0, 0]), 0);
    h.settle();
    assert!(h.completions().is_empty());
    assert_eq!(h.dev.stats().aborts_matched, 1);
}

/// `RESET_BUS`: every in-flight request → BUSRESET, posted after the command returns; every disk
/// gets a unit attention; INQUIRY stays exempt.
#[test]
fn reset_bus_gives_busreset_and_unit_attention() {
    let (mut h, disks) = rig(&[0, 1]);
    for (ctx, t) in [(1, 0), (2, 1), (3, 0)] {
        let r = h.request(ctx, t, &TUR, None, 0, None);
        h.submit(&r);
    }
    assert_eq!(h.command(cmd::RESET_BUS, &[]), 0);
    assert_eq!(h.rs_read(rs::CMP_PROD_IDX), 0, "asynchronous");
    assert_eq!(h.dev.queued_completions(), 3);
    h.settle();
    let c = h.completions();
    assert_eq!(c.iter().map(|c| (c.context, c.host_status)).collect::<Vec<_>>(),
        vec![(1, host::BUSRESET), (2, host::BUSRESET), (3, host::BUSRESET)]);
    for d in &disks {
        assert_eq!(d.unit_attention(), Some(Sense::POWER_ON_RESET));
    }
    let s = h.alloc(96, Layout::Contiguous);
    let inq = h.alloc(36, Layout::Contiguous);
    let r = h.request(4, 0, &build::inquiry(false, 0, 36), Some((&inq, 36)), flags::DIR_TOHOST, Some(&s));
    h.submit(&r);
    let r = h.request(5, 0, &TUR, None, 0, Some(&s));
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!(c[0].scsi_status, 0, "INQUIRY exempt from the unit attention");
    assert_eq!((c[1].scsi_status, c[1].sense_len), (2, 18));
    assert_eq!(Sense::parse(&h.region_bytes(&s)), Some(Sense::POWER_ON_RESET));
}

#[test]
fn reset_device_only_touches_that_target() {
    let (mut h, disks) = rig(&[0, 1]);
    for (ctx, t) in [(1, 0), (2, 1)] {
        let r = h.request(ctx, t, &TUR, None, 0, None);
        h.submit(&r);
    }
    assert_eq!(h.command(cmd::RESET_DEVICE, &[1, 0, 0]), 0);
    h.settle();
    let c = h.completions();
    assert_eq!(c.iter().map(|c| (c.context, c.host_status)).collect::<Vec<_>>(),
        vec![(2, host::BUSRESET), (1, host::SUCCESS)]);
    assert_eq!(disks[0].unit_attention(), None);
    assert_eq!(disks[1].unit_attention(), Some(Sense::POWER_ON_RESET));
}

/// `ADAPTER_RESET`: queued completions are flushed synchronously into the old ring, then the
/// rings are forgotten, `INTR_STATUS` is zeroed without a line update (the line stays up), and
/// `INTR_MASK` survives.
#[test]
fn adapter_reset_flushes_and_keeps_the_line_quirk() {
    let (mut h, disks) = rig(&[0]);
    h.write(regs::REG_INTR_MASK, INTR_CMPL_MASK);
    let r = h.request(1, 0, &TUR, None, 0, None);
    h.submit(&r);
    let r = h.request(2, 0, &TUR, None, 0, None);
    h.submit(&r);
    assert!(!h.dev.irq_asserted());
    assert_eq!(h.command(cmd::ADAPTER_RESET, &[]), 0);
    // Synchronous flush: both cancelled requests are in the old ring already.
    assert_eq!(h.rs_read(rs::CMP_PROD_IDX), 2);
    let c = h.completions();
    assert_eq!(c.iter().map(|c| c.host_status).collect::<Vec<_>>(), vec![host::BUSRESET, host::BUSRESET]);
    let regs_now = h.dev.registers();
    assert_eq!(regs_now.intr_status, 0);
    assert!(regs_now.line && h.dev.irq_asserted(), "line still asserted with INTR_STATUS 0");
    assert_eq!(regs_now.intr_mask, INTR_CMPL_MASK, "mask survives");
    assert!(!regs_now.rings_valid);
    assert_eq!(disks[0].unit_attention(), Some(Sense::POWER_ON_RESET));
    // The next INTR_STATUS write re-evaluates the line.
    h.write(regs::REG_INTR_STATUS, 0xF);
    assert!(!h.dev.irq_asserted());
    // Kicks are ignored until SETUP_RINGS.
    h.rs_write(rs::REQ_PROD_IDX, 5);
    h.kick();
    assert_eq!(h.dev.stats().kicks_ignored, 1);
    assert_eq!(h.dev.next_event_ns(), None);
    assert_eq!(h.setup_rings(1, 1), 0);
    let r = h.request(3, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].context, c[0].scsi_status), (3, 2), "unit attention after the reset");
}

/// Mask write after `ADAPTER_RESET` also re-evaluates (the other half of the driver rule).
#[test]
fn mask_write_after_adapter_reset_reevaluates() {
    let (mut h, _d) = rig(&[0]);
    h.write(regs::REG_INTR_MASK, INTR_CMPL_MASK);
    let r = h.request(1, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.command(cmd::ADAPTER_RESET, &[]);
    assert!(h.dev.irq_asserted());
    h.write(regs::REG_INTR_MASK, INTR_CMPL_MASK);
    assert!(!h.dev.irq_asserted());
}

/// An adapter reset the device makes on its own ends with the line low: QEMU's only path to its
/// adapter reset besides the driver's command is the device reset, after which the PCI core
/// deasserts INTx. The stale line is the command's alone (above).
#[test]
fn device_side_adapter_reset_leaves_the_line_low() {
    let (mut h, _d) = rig(&[0]);
    h.write(regs::REG_INTR_MASK, INTR_CMPL_MASK);
    let r = h.request(1, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.dev.adapter_reset();
    assert_eq!(h.completions()[0].host_status, host::BUSRESET, "flushed into the old ring");
    let regs_now = h.dev.registers();
    assert_eq!((regs_now.intr_status, regs_now.line), (0, false));
    assert!(!h.dev.irq_asserted());
    assert_eq!(regs_now.intr_mask, INTR_CMPL_MASK, "mask survives");
    assert!(!regs_now.rings_valid);
}

#[test]
fn machine_reset_deasserts_and_restores_config() {
    let (mut h, _d) = rig(&[0]);
    h.write(regs::REG_INTR_MASK, INTR_CMPL_MASK);
    let r = h.request(1, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.settle();
    assert!(h.dev.irq_asserted());
    h.dev.config_write(0x3C, &[5]);
    h.dev.machine_reset();
    assert!(!h.dev.irq_asserted());
    let mut b = [0u8; 1];
    h.dev.config_read(0x3C, &mut b);
    assert_eq!(b[0], 11, "config space back to power-on");
    assert_eq!(h.dev.registers().intr_mask, INTR_CMPL_MASK, "INTR_MASK survives reboots (Q11)");
    assert_eq!(h.dev.stats().adapter_resets, 1);
}

/// Hot-plug messages: `DEV_ADDED` / `DEV_REMOVED` on the message ring with `MSG_0`; unplug cancels the
/// target's requests with ABORTQUEUE.
#[test]
fn hot_plug_messages() {
    let (mut h, _d) = rig(&[0]);
    // No message ring yet: dropped.
    h.dev.attach(9, Disk::ram(1 << 20).unwrap()).unwrap();
    assert_eq!(h.dev.stats().messages_dropped, 1);
    assert_eq!(h.setup_msg_ring(1), 34);
    h.write(regs::REG_INTR_MASK, regs::INTR_ALL_SUPPORTED);
    h.dev.attach(5, Disk::ram(1 << 20).unwrap()).unwrap();
    assert_eq!(h.read(regs::REG_INTR_STATUS), INTR_MSG_0);
    assert!(h.dev.irq_asserted());
    let m = h.messages();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].kind, m[0].bus, m[0].target), (msg::DEV_ADDED, 0, 5));
    h.write(regs::REG_INTR_STATUS, INTR_MSG_0);
    let r = h.request(7, 5, &TUR, None, 0, None);
    h.submit(&r);
    assert!(h.dev.detach(5).is_some());
    let m = h.messages();
    assert_eq!((m[0].kind, m[0].target), (msg::DEV_REMOVED, 5));
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].context, c[0].host_status), (7, host::ABORTQUEUE));
    assert_eq!(h.read(regs::REG_INTR_STATUS), INTR_MSG_0 | INTR_CMPL_0);
    let r = h.request(8, 5, &TUR, None, 0, None);
    h.submit(&r);
    h.settle();
    assert_eq!(h.completions()[0].host_status, host::SELTIMEO, "gone");
}

/// The message ring drops messages when full (msgProdIdx − msgConsIdx = entries).
#[test]
fn full_message_ring_drops() {
    let (mut h, _d) = rig(&[0]);
    assert_eq!(h.setup_msg_ring(1), 34);
    for t in 1..=33u8 {
        h.dev.attach(t, Disk::ram(1 << 20).unwrap()).unwrap();
    }
    let s = h.dev.stats();
    assert_eq!((s.messages_posted, s.messages_dropped), (32, 1));
    assert_eq!(h.rs_read(rs::MSG_PROD_IDX), 32);
}

/// Unit attention after each kind of reset, from the device side too.
#[test]
fn device_side_resets() {
    let (mut h, disks) = rig(&[0, 1]);
    let r = h.request(1, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.dev.bus_reset();
    h.settle();
    assert_eq!(h.completions()[0].host_status, host::BUSRESET);
    assert!(disks.iter().all(|d| d.unit_attention().is_some()));
    for d in &disks {
        d.set_unit_attention(None);
    }
    let r = h.request(2, 1, &TUR, None, 0, None);
    h.submit(&r);
    h.dev.device_reset(1);
    h.settle();
    assert_eq!(h.completions()[0].host_status, host::BUSRESET);
    assert_eq!((disks[0].unit_attention(), disks[1].unit_attention()), (None, Some(Sense::POWER_ON_RESET)));
    let r = h.request(3, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.dev.adapter_reset();
    assert_eq!(h.completions()[0].host_status, host::BUSRESET, "flushed synchronously");
    assert!(!h.dev.registers().rings_valid);
    let s = h.dev.stats();
    assert_eq!((s.bus_resets, s.device_resets, s.adapter_resets), (1, 1, 1));
}
