//! PVSCSI model: the kick, deferred completions, indexes, SG lists, the interrupt line and the
//! completion statuses (pvscsi-facts.md §3, §5, §6).

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::many_single_char_names)] // test values are small and known

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use scsiport_sim::disk::cdb::build;
use scsiport_sim::disk::{Disk, Sense};
use scsiport_sim::hba::Hba;
use scsiport_sim::mem::{Layout, PAGE_SIZE};
use scsiport_sim::pvscsi::harness::Harness;
use scsiport_sim::pvscsi::regs::{self, INTR_CMPL_0, INTR_CMPL_MASK, flags, host, rs};
use scsiport_sim::pvscsi::ring::{ReqDesc, SgElem};
use scsiport_sim::pvscsi::{Latency, PvscsiConfig, PvscsiLayout};

const TUR: [u8; 6] = [0; 6];

fn config() -> PvscsiConfig {
    PvscsiConfig { latency: Latency::fixed(1_000), ..PvscsiConfig::default() }
}

/// A device with one 1 MiB disk (unit attention cleared) at target 0 and 1-page rings.
fn rig(cfg: PvscsiConfig) -> (Harness, Disk) {
    let mut h = Harness::new(cfg);
    let d = Disk::ram(1 << 20).unwrap();
    d.set_unit_attention(None);
    h.dev.attach(0, d.clone()).unwrap();
    assert_eq!(h.setup_rings(1, 1), 0);
    (h, d)
}

fn sense_buf(h: &Harness) -> scsiport_sim::mem::DmaRegion {
    let s = h.alloc(96, Layout::Scattered);
    h.fill_region(&s, &[0xAA; 96]);
    s
}

#[test]
fn kick_before_setup_is_ignored() {
    let h = Harness::new(config());
    h.kick();
    h.write(regs::REG_KICK_NON_RW_IO, 0);
    let s = h.dev.stats();
    assert_eq!((s.kicks, s.kicks_ignored, s.requests), (2, 2, 0));
    assert_eq!(h.dev.next_event_ns(), None);
}

/// The kick consumes every posted slot and publishes reqConsIdx before it returns; completions
/// appear only when the device's own work runs, never during the kick — even at zero latency.
#[test]
fn kick_consumes_everything_and_completes_later() {
    let (mut h, _d) = rig(PvscsiConfig { latency: Latency::fixed(0), ..config() });
    h.write(regs::REG_INTR_MASK, INTR_CMPL_MASK);
    for ctx in 1..=5 {
        let r = h.request(ctx, 0, &TUR, None, 0, None);
        h.post(&r);
    }
    h.kick();
    assert_eq!(h.rs_read(rs::REQ_CONS_IDX), 5);
    assert_eq!(h.dev.in_flight(), 5);
    assert_eq!(h.rs_read(rs::CMP_PROD_IDX), 0, "nothing posted during the kick");
    assert_eq!(h.read(regs::REG_INTR_STATUS), 0);
    assert!(!h.dev.irq_asserted());
    assert_eq!(h.dev.next_event_ns(), Some(0));
    assert!(h.dev.run_due(0));
    assert_eq!(h.rs_read(rs::CMP_PROD_IDX), 5);
    assert_eq!(h.read(regs::REG_INTR_STATUS), INTR_CMPL_0);
    assert!(h.dev.irq_asserted());
    let c = h.completions();
    assert_eq!(c.iter().map(|c| c.context).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert!(c.iter().all(|c| c.host_status == host::SUCCESS && c.scsi_status == 0 && c.data_len == 0));
    let s = h.dev.stats();
    assert_eq!((s.batches, s.completions_posted, s.interrupts_raised), (1, 5, 1));
    // A kick with nothing posted is harmless.
    h.kick();
    assert_eq!(h.rs_read(rs::REQ_CONS_IDX), 5);
}

/// Completions come in finish order, one cmpProdIdx update and one `CMPL_0` per batch.
#[test]
fn completions_in_finish_order_batched() {
    let (mut h, _d) = rig(PvscsiConfig { latency: Latency::range(1_000, 50_000), seed: 9, ..config() });
    for ctx in 1..=20 {
        let r = h.request(ctx, 0, &TUR, None, 0, None);
        h.post(&r);
    }
    h.kick();
    let mut order = Vec::new();
    let mut last = 0;
    while let Some(t) = h.dev.next_event_ns() {
        assert!(t >= last);
        last = t;
        h.clock.set(t);
        h.dev.run_due(t);
        order.extend(h.completions().iter().map(|c| c.context));
    }
    assert_eq!(order.len(), 20);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=20).collect::<Vec<_>>());
    assert_ne!(order, sorted, "random latencies reorder completions");
    assert!(h.dev.stats().batches > 1);

    // Same seed, same order: the schedule is reproducible.
    let (mut h2, _d2) = rig(PvscsiConfig { latency: Latency::range(1_000, 50_000), seed: 9, ..config() });
    for ctx in 1..=20 {
        let r = h2.request(ctx, 0, &TUR, None, 0, None);
        h2.post(&r);
    }
    h2.kick();
    let mut order2 = Vec::new();
    while let Some(t) = h2.dev.next_event_ns() {
        h2.clock.set(t);
        h2.dev.run_due(t);
        order2.extend(h2.completions().iter().map(|c| c.context));
    }
    assert_eq!(order, order2);
}

#[test]
fn request_index_far_ahead_is_not_consumed() {
    let (h, _d) = rig(config());
    h.rs_write(rs::REQ_PROD_IDX, 1024);
    h.kick();
    assert_eq!(h.dev.stats().requests, 0);
    assert_eq!(h.dev.stats().req_prod_out_of_range, 1);
    assert_eq!(h.rs_read(rs::REQ_CONS_IDX), 0);
}

/// Free-running u32 indexes wrap correctly (the default) when the rings start near 2³².
#[test]
fn indexes_wrap_past_u32_max() {
    let (mut h, _d) = rig(PvscsiConfig { initial_index: 0xFFFF_FFFD, ..config() });
    assert_eq!(h.rs_read(rs::REQ_PROD_IDX), 0xFFFF_FFFD);
    assert_eq!(h.rs_read(rs::CMP_CONS_IDX), 0xFFFF_FFFD);
    for ctx in 1..=6 {
        let r = h.request(ctx, 0, &TUR, None, 0, None);
        h.submit(&r);
    }
    h.settle();
    assert_eq!(h.rs_read(rs::REQ_CONS_IDX), 3);
    assert_eq!(h.rs_read(rs::CMP_PROD_IDX), 3);
    assert_eq!(h.completions().len(), 6);
}

/// Q8 option: QEMU's 64-bit consumer stops for good once reqProdIdx wraps.
#[test]
fn q8_index_wrap_hang_when_enabled() {
    let (mut h, _d) = rig(PvscsiConfig { initial_index: 0xFFFF_FFFE, q8_index_wrap: true, ..config() });
    for ctx in 1..=4 {
        let r = h.request(ctx, 0, &TUR, None, 0, None);
        h.submit(&r);
    }
    h.settle();
    let s = h.dev.stats();
    // The first request moves reqProdIdx to 0xFFFFFFFF; the second wraps it to 0, which the
    // 64-bit consumer (0xFFFFFFFF) never equals again.
    assert_eq!(s.requests, 1);
    assert!(s.index_wrap_stalls >= 1);
    assert_eq!(h.completions().len(), 1);
    assert_eq!(h.dev.ring_info().consumed, 0xFFFF_FFFF);
    // The default mode goes straight through the same wrap (see indexes_wrap_past_u32_max).
}

/// The model never reads cmpConsIdx to throttle (QEMU), but counts overwrites of unconsumed
/// completions.
#[test]
fn completion_ring_overflow_is_counted() {
    let (mut h, _d) = rig(config());
    // 1 completion page = 128 entries; 32 requests per kick (request ring of 32).
    for round in 0..5u64 {
        for i in 0..32 {
            let r = h.request(round * 32 + i + 1, 0, &TUR, None, 0, None);
            h.post(&r);
        }
        h.kick();
        h.settle();
    }
    let s = h.dev.stats();
    assert_eq!(s.completions_posted, 160);
    assert_eq!(s.completion_overflows, 32);
    assert_eq!(h.rs_read(rs::CMP_PROD_IDX), 160);
}

/// `INTR_MASK` and `INTR_STATUS` drive the line exactly as §3 says.
#[test]
fn line_follows_status_and_mask() {
    let (mut h, _d) = rig(config());
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = wakes.clone();
    h.dev.set_waker(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    let r = h.request(1, 0, &TUR, None, 0, None);
    h.submit(&r);
    assert!(wakes.load(Ordering::SeqCst) >= 1, "new device work wakes the scheduler");
    h.settle();
    assert_eq!(h.read(regs::REG_INTR_STATUS), INTR_CMPL_0, "status set regardless of the mask");
    assert!(!h.dev.irq_asserted(), "mask 0: line low");
    assert_eq!(h.dev.interrupts_unmasked(), Some(false));
    let before = wakes.load(Ordering::SeqCst);
    h.write(regs::REG_INTR_MASK, INTR_CMPL_MASK);
    assert!(h.dev.irq_asserted(), "unmasking with pending status re-asserts at once");
    assert!(wakes.load(Ordering::SeqCst) > before, "a line change wakes the scheduler");
    assert_eq!(h.dev.interrupts_unmasked(), Some(true));
    h.write(regs::REG_INTR_MASK, 0);
    assert!(!h.dev.irq_asserted());
    assert_eq!(h.read(regs::REG_INTR_STATUS), INTR_CMPL_0, "masking keeps the status");
    h.write(regs::REG_INTR_MASK, regs::INTR_MSG_MASK);
    assert!(!h.dev.irq_asserted(), "a mask without the pending bit");
    h.write(regs::REG_INTR_MASK, regs::INTR_ALL_SUPPORTED);
    assert!(h.dev.irq_asserted());
    h.write(regs::REG_INTR_STATUS, regs::INTR_MSG_0);
    assert!(h.dev.irq_asserted(), "W1C of another bit keeps the line");
    h.write(regs::REG_INTR_STATUS, INTR_CMPL_0);
    assert!(!h.dev.irq_asserted(), "W1C of the pending bit drops the line");
    assert_eq!(h.read(regs::REG_INTR_STATUS), 0);
    // A completion arriving after the acknowledgement re-asserts it.
    let r = h.request(2, 0, &TUR, None, 0, None);
    h.submit(&r);
    assert!(!h.dev.irq_asserted());
    h.settle();
    assert!(h.dev.irq_asserted());
    assert_eq!(h.dev.stats().interrupts_raised, 3);
}

#[test]
fn missing_targets_get_selection_timeout() {
    let (mut h, _d) = rig(config());
    let s = sense_buf(&h);
    let mut cases = Vec::new();
    let r = h.request(1, 5, &TUR, None, 0, Some(&s));
    cases.push(r);
    let mut r = h.request(2, 0, &TUR, None, 0, Some(&s));
    r.bus = 1;
    cases.push(r);
    let mut r = h.request(3, 0, &TUR, None, 0, Some(&s));
    r.lun = [0, 0, 1, 0, 0, 0, 0, 0];
    cases.push(r);
    let r = h.request(4, 65, &TUR, None, 0, Some(&s));
    cases.push(r);
    for r in &cases {
        h.post(r);
    }
    h.kick();
    h.settle();
    let c = h.completions();
    assert_eq!(c.len(), 4);
    for c in &c {
        assert_eq!((c.host_status, c.scsi_status, c.sense_len), (host::SELTIMEO, 0, 0), "{c:?}");
    }
    assert_eq!(h.dev.stats().selection_timeouts, 4);
    assert!(h.region_bytes(&s).iter().all(|&b| b == 0xAA));
}

/// Power-on unit attention: INQUIRY is exempt, the first other command gets CHECK CONDITION
/// 06/29/00 with the sense written by DMA; then the disk is clean.
#[test]
fn unit_attention_after_power_on() {
    let mut h = Harness::new(config());
    h.dev.attach(0, Disk::ram(1 << 20).unwrap()).unwrap();
    assert_eq!(h.setup_rings(1, 1), 0);
    let s = sense_buf(&h);
    let buf = h.alloc(36, Layout::Scattered);
    let inq = build::inquiry(false, 0, 36);
    let r = h.request(1, 0, &inq, Some((&buf, 36)), flags::DIR_TOHOST, Some(&s));
    h.submit(&r);
    let r = h.request(2, 0, &TUR, None, flags::DIR_NONE, Some(&s));
    h.submit(&r);
    let r = h.request(3, 0, &TUR, None, flags::DIR_NONE, Some(&s));
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].host_status, c[0].scsi_status), (host::SUCCESS, 0), "INQUIRY exempt");
    assert_eq!((c[1].host_status, c[1].scsi_status, c[1].sense_len), (host::SUCCESS, 2, 18));
    assert_eq!(Sense::parse(&h.region_bytes(&s)), Some(Sense::POWER_ON_RESET));
    assert_eq!((c[2].scsi_status, c[2].sense_len), (0, 0));
}

/// LUN ≠ 0 on an existing target: INQUIRY qualifier 3, anything else CHECK 05/25/00.
#[test]
fn foreign_lun_answers() {
    let (mut h, _d) = rig(config());
    let s = sense_buf(&h);
    let buf = h.alloc(36, Layout::Scattered);
    let mut r = h.request(1, 0, &build::inquiry(false, 0, 36), Some((&buf, 36)), flags::DIR_TOHOST, Some(&s));
    r.lun[1] = 1;
    h.submit(&r);
    let mut r = h.request(2, 0, &TUR, None, 0, Some(&s));
    r.lun[1] = 1;
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].host_status, c[0].scsi_status), (host::SUCCESS, 0));
    let inq = h.region_bytes(&buf);
    assert_eq!(inq[0], 0x7F);
    assert!(inq[1..].iter().all(|&b| b == 0));
    assert_eq!((c[1].scsi_status, c[1].sense_len), (2, 18));
    assert_eq!(Sense::parse(&h.region_bytes(&s)), Some(Sense::LUN_NOT_SUPPORTED));
}

/// A short answer (allocation length > data) is DATARUN + GOOD under QEMU, dataLen 0. (The
/// supported-pages VPD page is short; standard INQUIRY data is as long as allocated.)
#[test]
fn short_inquiry_is_datarun_good() {
    let (mut h, _d) = rig(config());
    let buf = h.alloc(255, Layout::Scattered);
    let r = h.request(1, 0, &build::inquiry(true, 0, 255), Some((&buf, 255)), flags::DIR_TOHOST, None);
    h.submit(&r);
    let buf36 = h.alloc(36, Layout::Scattered);
    let r = h.request(2, 0, &build::inquiry(false, 0, 36), Some((&buf36, 36)), flags::DIR_TOHOST, None);
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].host_status, c[0].scsi_status, c[0].data_len), (host::DATARUN, 0, 0));
    assert_eq!((c[1].host_status, c[1].scsi_status), (host::SUCCESS, 0));
    assert_eq!(&h.region_bytes(&buf)[..4], &[0, 0, 0, 5]);
    assert_eq!(&h.region_bytes(&buf36)[8..12], b"QEMU");
}

/// Sense goes to memory only with CHECK CONDITION, min(senseLen, 18) bytes.
#[test]
fn sense_written_only_on_check_condition() {
    let (mut h, _d) = rig(config());
    let s = sense_buf(&h);
    let r = h.request(1, 0, &TUR, None, 0, Some(&s));
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!(c[0].sense_len, 0);
    assert!(h.region_bytes(&s).iter().all(|&b| b == 0xAA), "GOOD leaves the buffer alone");
    // Invalid opcode with an 8-byte sense buffer: 8 bytes written, senseLen 8.
    let mut r = h.request(2, 0, &[0x02, 0, 0, 0, 0, 0], None, 0, Some(&s));
    r.sense_len = 8;
    h.submit(&r);
    // And with no sense buffer: nothing written, senseLen 0.
    let mut r = h.request(3, 0, &[0x02, 0, 0, 0, 0, 0], None, 0, None);
    r.sense_len = 0;
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].scsi_status, c[0].sense_len), (2, 8));
    let b = h.region_bytes(&s);
    assert_eq!(&b[..8], &Sense::INVALID_OPCODE.fixed()[..8]);
    assert!(b[8..].iter().all(|&x| x == 0xAA));
    assert_eq!((c[1].scsi_status, c[1].sense_len), (2, 0));
}

#[test]
fn short_cdb_length_is_invalid_opcode() {
    let (mut h, _d) = rig(config());
    let s = sense_buf(&h);
    let mut r = h.request(1, 0, &build::rw10(false, 0, 1), None, 0, Some(&s));
    r.cdb_len = 6;
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].host_status, c[0].scsi_status), (host::SUCCESS, 2), "no transfer length: no DATARUN");
    assert_eq!(Sense::parse(&h.region_bytes(&s)), Some(Sense::INVALID_OPCODE));
}

/// Data through an SG list over scattered pages, with a zero-length element skipped.
#[test]
fn sg_list_across_scattered_pages() {
    let (mut h, d) = rig(config());
    let len = 5 * PAGE_SIZE;
    let buf = h.alloc(len, Layout::Scattered);
    let pattern: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    h.fill_region(&buf, &pattern);
    let mut elems = Vec::new();
    let mut off = 0;
    while off < len {
        let (pa, run) = buf.phys(off).unwrap();
        let n = run.min(len - off);
        elems.push(SgElem { addr: pa, length: n as u32, flags: 0 });
        elems.push(SgElem { addr: 0xDEAD_0000, length: 0, flags: 0 });
        off += n;
    }
    assert!(elems.len() > 2, "the region is scattered");
    let sg = h.sg_list(&elems);
    let mut r = ReqDesc { context: 1, data_addr: sg, data_len: len as u64, flags: flags::WITH_SG_LIST | flags::DIR_TODEVICE, ..Default::default() };
    r.set_cdb(&build::rw10(true, 10, (len / 512) as u16));
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].host_status, c[0].scsi_status), (host::SUCCESS, 0));
    assert_eq!(d.read_sectors(10, (len / 512) as u64).unwrap(), pattern);
    // Read back into a fresh scattered buffer through the harness's own SG list.
    let back = h.alloc(len, Layout::Scattered);
    let r = h.request(2, 0, &build::rw10(false, 10, (len / 512) as u16), Some((&back, len)), flags::DIR_TOHOST, None);
    assert_ne!(r.flags & flags::WITH_SG_LIST, 0);
    h.submit(&r);
    h.settle();
    assert_eq!(h.completions()[0].host_status, host::SUCCESS);
    assert_eq!(h.region_bytes(&back), pattern);
}

/// The SG walk stops after dataLen bytes; element flags are only counted (no chaining).
#[test]
fn sg_list_stops_at_data_len() {
    let (mut h, d) = rig(config());
    let buf = h.alloc(1024, Layout::Contiguous);
    h.fill_region(&buf, &[0x5A; 1024]);
    let pa = buf.pages()[0];
    let elems = [
        SgElem { addr: pa, length: 512, flags: 1 },
        SgElem { addr: pa + 512, length: 512, flags: 0 },
        SgElem { addr: 0xBAD0_0000, length: 512, flags: 0 },
    ];
    let sg = h.sg_list(&elems);
    let mut r = ReqDesc { context: 1, data_addr: sg, data_len: 1024, flags: flags::WITH_SG_LIST, ..Default::default() };
    r.set_cdb(&build::rw10(true, 0, 2));
    h.submit(&r);
    h.settle();
    assert_eq!(h.completions()[0].host_status, host::SUCCESS);
    assert_eq!(h.dev.stats().sg_flagged_elements, 1);
    assert_eq!(h.dev.stats().dma_faults, 0, "the third element was never read as data");
    assert_eq!(d.read_sectors(0, 2).unwrap(), vec![0x5A; 1024]);
}

/// Q4: a direction flag contradicting the CDB → the request never completes (counted).
#[test]
fn direction_contradiction_never_completes() {
    let (mut h, _d) = rig(config());
    let buf = h.alloc(512, Layout::Contiguous);
    let r = h.request(1, 0, &build::rw10(false, 0, 1), Some((&buf, 512)), flags::DIR_TODEVICE, None);
    h.submit(&r);
    let r = h.request(2, 0, &build::rw10(true, 0, 1), Some((&buf, 512)), flags::DIR_TOHOST, None);
    h.submit(&r);
    h.settle();
    assert!(h.completions().is_empty());
    assert_eq!(h.dev.stats().direction_contradictions, 2);
    assert_eq!(h.dev.stuck(), 2);
    assert_eq!(h.dev.in_flight(), 0);
    // ABORT_CMD finds the stuck request and cancels nothing.
    assert_eq!(h.command(regs::cmd::ABORT_CMD, &[1, 0, 0, 0]), 0);
    h.settle();
    assert!(h.completions().is_empty());
    assert_eq!(h.dev.stats().aborts_matched, 0);
    // RESET_BUS does not reach it either; ADAPTER_RESET is where QEMU would abort.
    assert_eq!(h.command(regs::cmd::RESET_BUS, &[]), 0);
    h.settle();
    assert!(h.completions().is_empty());
    assert_eq!(h.command(regs::cmd::ADAPTER_RESET, &[]), 0);
    assert_eq!(h.dev.stats().stuck_at_adapter_reset, 2);
    assert_eq!(h.dev.stuck(), 0);
}

/// `DIR_NONE` (or no flag) with a data CDB is not rejected: QEMU follows the CDB.
#[test]
fn dir_none_with_a_read_cdb_follows_the_cdb() {
    let (mut h, _d) = rig(config());
    let buf = h.alloc(512, Layout::Contiguous);
    let r = h.request(1, 0, &build::rw10(false, 0, 1), Some((&buf, 512)), flags::DIR_NONE, None);
    h.submit(&r);
    let r = h.request(2, 0, &build::rw10(false, 0, 2), Some((&buf, 512)), 0, None);
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].host_status, c[0].scsi_status), (host::SUCCESS, 0));
    assert_eq!((c[1].host_status, c[1].scsi_status), (host::DATARUN, 0), "a 2-block READ into 1 block: residual 512");
}

/// A READ or WRITE of blocks with no buffer at all (no SG list, `dataLen` 0) waits forever in
/// QEMU's DMA helper (one 0-byte segment that can never be mapped), as QEMU 7.2 showed; unlike a
/// direction contradiction a reset or an abort cancels it, so QEMU survives. An SG list of no
/// bytes (no segment at all) and a CDB of no blocks complete at once.
#[test]
fn a_block_transfer_without_any_buffer_waits_until_cancelled() {
    let (mut h, _d) = rig(config());
    for (context, write) in [(1, false), (2, true)] {
        let r = h.request(context, 0, &build::rw10(write, 0, 8), None, flags::DIR_NONE, None);
        h.submit(&r);
    }
    let mut sg = h.request(3, 0, &build::rw10(false, 0, 8), None, 0, None);
    sg.flags |= flags::WITH_SG_LIST;
    h.submit(&sg);
    let r = h.request(4, 0, &build::rw10(true, 0, 0), None, flags::DIR_NONE, None);
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!(c.iter().map(|c| (c.context, c.host_status)).collect::<Vec<_>>(), vec![(3, host::DATARUN), (4, host::SUCCESS)]);
    assert_eq!(h.dev.stats().dma_waits, 2);
    assert_eq!(h.dev.in_flight(), 2);
    // ABORT_CMD cancels one, ADAPTER_RESET the other; QEMU holds nothing stuck.
    assert_eq!(h.command(regs::cmd::ABORT_CMD, &[1, 0, 0, 0]), 0);
    h.settle();
    assert_eq!(h.completions().iter().map(|c| (c.context, c.host_status)).collect::<Vec<_>>(), vec![(1, host::ABORTQUEUE)]);
    assert_eq!(h.command(regs::cmd::ADAPTER_RESET, &[]), 0);
    assert_eq!(h.completions().iter().map(|c| (c.context, c.host_status)).collect::<Vec<_>>(), vec![(2, host::BUSRESET)]);
    assert_eq!(h.dev.stats().stuck_at_adapter_reset, 0);
}

/// READ/WRITE: the buffer is transferred whole; a buffer longer than the CDB writes beyond it and
/// reports DATARUN; a shorter one transfers what it holds (DATARUN).
#[test]
fn read_write_buffer_length_rules() {
    let (mut h, d) = rig(config());
    let buf = h.alloc(2048, Layout::Contiguous);
    h.fill_region(&buf, &[0x11; 2048]);
    let r = h.request(1, 0, &build::rw10(true, 100, 2), Some((&buf, 2048)), flags::DIR_TODEVICE, None);
    h.submit(&r);
    let r = h.request(2, 0, &build::rw10(true, 200, 4), Some((&buf, 1024)), flags::DIR_TODEVICE, None);
    h.submit(&r);
    let r = h.request(3, 0, &build::rw10(true, 300, 2), Some((&buf, 1024)), flags::DIR_TODEVICE, None);
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!(c.iter().map(|c| c.host_status).collect::<Vec<_>>(), vec![host::DATARUN, host::DATARUN, host::SUCCESS]);
    assert_eq!(d.read_sectors(100, 4).unwrap(), vec![0x11; 2048], "two blocks beyond the CDB were written");
    assert_eq!(d.read_sectors(200, 2).unwrap(), vec![0x11; 1024]);
    assert_eq!(d.read_sectors(202, 2).unwrap(), vec![0; 1024]);
}

/// VMware mode: dataLen = bytes moved, SUCCESS for a short answer, `DATA_UNDERRUN` for a short
/// block transfer.
#[test]
fn vmware_reports_data_length() {
    let (mut h, d) = rig(PvscsiConfig { layout: PvscsiLayout::Vmware, ..config() });
    d.write_sectors(0, &[0x77; 1024]).unwrap();
    let buf = h.alloc(255, Layout::Scattered);
    let r = h.request(1, 0, &build::inquiry(true, 0, 255), Some((&buf, 255)), flags::DIR_TOHOST, None);
    h.submit(&r);
    let rd = h.alloc(1024, Layout::Contiguous);
    let r = h.request(2, 0, &build::rw10(false, 0, 2), Some((&rd, 1024)), flags::DIR_TOHOST, None);
    h.submit(&r);
    let r = h.request(3, 0, &build::rw10(false, 0, 4), Some((&rd, 1024)), flags::DIR_TOHOST, None);
    h.submit(&r);
    let r = h.request(4, 0, &build::rw10(false, 0, 1), Some((&rd, 1024)), flags::DIR_TOHOST, None);
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].host_status, c[0].data_len), (host::SUCCESS, 9), "the supported-pages page: 4 + 5 bytes");
    assert_eq!((c[1].host_status, c[1].data_len), (host::SUCCESS, 1024));
    assert_eq!((c[2].host_status, c[2].data_len), (host::DATA_UNDERRUN, 1024));
    assert_eq!((c[3].host_status, c[3].data_len), (host::DATARUN, 1024), "buffer longer than the CDB");
}

#[test]
fn bad_flags_and_contexts_are_counted() {
    let (mut h, _d) = rig(config());
    let mut r = h.request(0, 0, &TUR, None, 0x40, None);
    r.flags |= flags::OUT_OF_BAND_CDB;
    h.submit(&r);
    let r = h.request(1 << 40, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.settle();
    assert_eq!(h.completions().len(), 2, "both still complete");
    let s = h.dev.stats();
    assert_eq!((s.bad_flags, s.bad_contexts), (1, 2));
}

#[test]
fn multi_page_rings_wrap_slots() {
    let mut h = Harness::new(config());
    let d = Disk::ram(1 << 20).unwrap();
    d.set_unit_attention(None);
    h.dev.attach(1, d).unwrap();
    assert_eq!(h.setup_rings(2, 1), 0);
    // 64 request slots over two pages; push 200 requests through in batches of 50.
    let mut total = 0;
    for batch in 0..4u64 {
        for i in 0..50 {
            let r = h.request(batch * 50 + i + 1, 1, &TUR, None, 0, None);
            h.post(&r);
            if i % 10 == 9 {
                h.kick();
            }
        }
        h.settle();
        total += h.completions().len();
    }
    assert_eq!(total, 200);
    assert_eq!(h.rs_read(rs::REQ_CONS_IDX), 200);
}
