//! PVSCSI model: DMA faults, fault hooks (injections, slow requests, scheduled resets), hostile
//! mode, and concurrent use.

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::many_single_char_names)] // test values are small and known

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread;

use scsiport_sim::disk::cdb::build;
use scsiport_sim::disk::{Disk, Sense};
use scsiport_sim::hba::{Clock, Hba};
use scsiport_sim::mem::{GuestMemory, Layout};
use scsiport_sim::pvscsi::harness::Harness;
use scsiport_sim::pvscsi::regs::{self, INTR_CMPL_0, flags, host, rs};
use scsiport_sim::pvscsi::ring::SgElem;
use scsiport_sim::pvscsi::{
    DeviceEvent, DmaSite, Effect, FaultAction, HostileAction, HostileConfig, Injection, Latency, PvscsiConfig, Trigger,
};

const TUR: [u8; 6] = [0; 6];

fn rig() -> (Harness, Disk) {
    let mut h = Harness::new(PvscsiConfig { latency: Latency::fixed(1_000), ..PvscsiConfig::default() });
    let d = Disk::ram(1 << 20).unwrap();
    d.set_unit_attention(None);
    h.dev.attach(0, d.clone()).unwrap();
    assert_eq!(h.setup_rings(1, 1), 0);
    (h, d)
}

const BAD_PA: u64 = 0x7_0000_0000;

#[test]
fn data_buffer_fault_is_recorded_and_completes_invparam() {
    let (mut h, _d) = rig();
    let mut r = h.request(9, 0, &build::rw10(false, 0, 1), None, flags::DIR_TOHOST, None);
    r.data_addr = BAD_PA;
    r.data_len = 512;
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].context, c[0].host_status, c[0].scsi_status), (9, host::INVPARAM, 0));
    let s = h.dev.stats();
    assert_eq!(s.dma_faults, 1);
    let f = s.last_dma_fault.unwrap();
    assert_eq!((f.site, f.context, f.fault.pa, f.fault.write), (DmaSite::Data, Some(9), BAD_PA, true));
}

#[test]
fn sg_list_fault_is_recorded() {
    let (mut h, _d) = rig();
    let mut r = h.request(3, 0, &build::rw10(false, 0, 1), None, flags::DIR_TOHOST, None);
    r.data_addr = BAD_PA;
    r.data_len = 512;
    r.flags |= flags::WITH_SG_LIST;
    h.submit(&r);
    h.settle();
    assert_eq!(h.completions()[0].host_status, host::INVPARAM);
    assert_eq!(h.dev.stats().last_dma_fault.unwrap().site, DmaSite::SgList);
    // An SG element pointing nowhere faults in the data phase instead.
    let sg = h.sg_list(&[SgElem { addr: BAD_PA, length: 512, flags: 0 }]);
    let mut r = h.request(4, 0, &build::rw10(true, 0, 1), None, flags::DIR_TODEVICE, None);
    r.data_addr = sg;
    r.data_len = 512;
    r.flags |= flags::WITH_SG_LIST;
    h.submit(&r);
    h.settle();
    assert_eq!(h.completions()[0].host_status, host::INVPARAM);
    let f = h.dev.stats().last_dma_fault.unwrap();
    assert_eq!((f.site, f.fault.write), (DmaSite::Data, false));
}

#[test]
fn sense_fault_gives_sensfailed() {
    let (mut h, _d) = rig();
    let mut r = h.request(5, 0, &[0x02, 0, 0, 0, 0, 0], None, 0, None);
    r.sense_addr = BAD_PA;
    r.sense_len = 96;
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].host_status, c[0].scsi_status, c[0].sense_len), (host::SENSFAILED, 2, 0));
    assert_eq!(h.dev.stats().last_dma_fault.unwrap().site, DmaSite::Sense);
}

/// Ring pages and the rings-state page pointing nowhere: faults are recorded, nothing crashes.
#[test]
fn bad_ring_addresses_do_not_crash() {
    let h = Harness::new(PvscsiConfig::default());
    h.dev.attach(0, Disk::ram(1 << 20).unwrap()).unwrap();
    let words = Harness::setup_rings_words(BAD_PA, &[BAD_PA + 0x1000], &[BAD_PA + 0x2000]);
    assert_eq!(h.command(regs::cmd::SETUP_RINGS, &words), 0, "QEMU cannot tell");
    h.kick();
    h.settle();
    let s = h.dev.stats();
    assert!(s.dma_faults >= 6);
    assert_eq!(s.last_dma_fault.unwrap().site, DmaSite::RingsState);

    // Good rings-state page, bad request page: the slot is consumed, nothing completes.
    let st = h.alloc(4096, Layout::Contiguous);
    let cmp = h.alloc(4096, Layout::Contiguous);
    let words = Harness::setup_rings_words(st.pages()[0], &[BAD_PA], &[cmp.pages()[0]]);
    assert_eq!(h.command(regs::cmd::SETUP_RINGS, &words), 0);
    h.dma.write(st.pages()[0], &1u32.to_le_bytes()).unwrap();
    h.kick();
    h.settle();
    let s = h.dev.stats();
    assert_eq!(s.last_dma_fault.unwrap().site, DmaSite::RequestDescriptor);
    assert_eq!(s.requests, 0);
    let mut b = [0u8; 4];
    h.dma.read(st.pages()[0] + rs::REQ_CONS_IDX, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 1);
}

#[test]
fn injected_errors() {
    let (mut h, _d) = rig();
    let s = h.alloc(96, Layout::Contiguous);
    h.dev.inject(Injection::next(2, Effect::Host(host::HATIMEOUT)));
    let busy = h.dev.inject(Injection::next(1, Effect::Status(0x08)).on_target(0).on_opcode(0));
    for ctx in 1..=4 {
        let r = h.request(ctx, 0, &TUR, None, 0, Some(&s));
        h.submit(&r);
    }
    h.settle();
    let c = h.completions();
    assert_eq!(
        c.iter().map(|c| (c.host_status, c.scsi_status)).collect::<Vec<_>>(),
        vec![(host::HATIMEOUT, 0), (host::HATIMEOUT, 0), (host::SUCCESS, 8), (host::SUCCESS, 0)]
    );
    assert!(!h.dev.remove_injection(busy), "used up");
    assert_eq!(h.dev.stats().injected, 3);

    // CHECK CONDITION on an LBA range only, with the sense written like a real one; a READ with
    // a transfer length also reports DATARUN as QEMU would.
    let medium = Sense::new(3, 0x11, 0x00);
    let id = h.dev.inject(Injection::lbas(100..110, Effect::Check(medium)));
    let buf = h.alloc(1024, Layout::Contiguous);
    let r = h.request(10, 0, &build::rw10(false, 98, 2), Some((&buf, 1024)), flags::DIR_TOHOST, Some(&s));
    h.submit(&r);
    let r = h.request(11, 0, &build::rw10(false, 109, 2), Some((&buf, 1024)), flags::DIR_TOHOST, Some(&s));
    h.submit(&r);
    h.settle();
    let c = h.completions();
    assert_eq!((c[0].host_status, c[0].scsi_status), (host::SUCCESS, 0));
    assert_eq!((c[1].host_status, c[1].scsi_status, c[1].sense_len), (host::DATARUN, 2, 18));
    assert_eq!(Sense::parse(&h.region_bytes(&s)), Some(medium));
    assert!(h.dev.remove_injection(id));
}

#[test]
fn slow_and_lost_requests() {
    let (mut h, _d) = rig();
    h.dev.inject(Injection::next(1, Effect::Latency(5_000_000)));
    h.dev.inject(Injection::next(1, Effect::Lose));
    for ctx in 1..=3 {
        let r = h.request(ctx, 0, &TUR, None, 0, None);
        h.submit(&r);
    }
    h.clock.set(1_000);
    h.dev.run_due(1_000);
    assert_eq!(h.completions().iter().map(|c| c.context).collect::<Vec<_>>(), vec![3]);
    assert_eq!(h.dev.next_event_ns(), Some(5_000_000));
    h.settle();
    assert_eq!(h.completions().iter().map(|c| c.context).collect::<Vec<_>>(), vec![1]);
    assert_eq!(h.dev.in_flight(), 1, "the lost one");
    assert_eq!(h.dev.next_event_ns(), None);
    assert_eq!(h.command(regs::cmd::ABORT_CMD, &[2, 0, 0, 0]), 0);
    h.settle();
    assert_eq!(h.completions()[0].host_status, host::ABORTQUEUE);
    // A new default latency applies to later requests.
    h.dev.set_latency(Latency::fixed(70_000));
    let now = h.clock.now_ns();
    let r = h.request(4, 0, &TUR, None, 0, None);
    h.submit(&r);
    assert_eq!(h.dev.next_event_ns(), Some(now + 70_000));
}

#[test]
fn scheduled_faults() {
    let (mut h, disks) = rig();
    h.dev.schedule(Trigger::AfterRequests(3), FaultAction::BusReset);
    for ctx in 1..=2 {
        let r = h.request(ctx, 0, &TUR, None, 0, None);
        h.submit(&r);
    }
    h.settle();
    assert_eq!(h.dev.stats().bus_resets, 0);
    assert_eq!(h.completions().len(), 2);
    let r = h.request(3, 0, &TUR, None, 0, None);
    h.submit(&r);
    assert_eq!(h.dev.stats().bus_resets, 0, "never inside a register access");
    h.settle();
    assert_eq!(h.dev.stats().bus_resets, 1);
    assert_eq!(h.completions()[0].host_status, host::BUSRESET);
    assert!(disks.unit_attention().is_some());
    disks.set_unit_attention(None);
    let at = h.clock.now_ns() + 1_000_000;
    h.dev.schedule(Trigger::AtNs(at), FaultAction::Inject(Injection::next(1, Effect::Host(host::NORESPONSE))));
    assert_eq!(h.dev.next_event_ns(), Some(at));
    h.settle();
    assert_eq!(h.clock.now_ns(), at);
    let r = h.request(4, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.settle();
    assert_eq!(h.completions()[0].host_status, host::NORESPONSE);
    h.dev.apply(FaultAction::DeviceReset(0));
    assert_eq!(h.dev.stats().device_resets, 1);
}

/// Every hostile action visibly writes garbage.
#[test]
fn hostile_actions_write_garbage() {
    let (mut h, _d) = rig();
    // Some history first.
    for ctx in 1..=3 {
        let r = h.request(ctx, 0, &TUR, None, 0, None);
        h.submit(&r);
    }
    h.settle();
    let _ = h.completions();
    let issued: HashSet<u64> = (1..=3).collect();

    let one = |h: &mut Harness, a: HostileAction| {
        let r = h.request(100, 0, &TUR, None, 0, None);
        h.submit(&r);
        h.dev.hostile_once(a);
        h.settle();
        assert_eq!(h.dev.stats().last_hostile, Some(a));
    };

    one(&mut h, HostileAction::GarbageCmpProdIdx);
    let filled = h.dev.ring_info().completions_filled;
    assert_ne!(h.rs_read(rs::CMP_PROD_IDX), filled, "cmpProdIdx is not what the device filled");
    h.rs_write(rs::CMP_CONS_IDX, filled);

    one(&mut h, HostileAction::UnknownContext);
    let c = h.completions();
    assert_eq!(c.len(), 2);
    assert!(!issued.contains(&c[1].context) && c[1].context != 100);

    one(&mut h, HostileAction::DuplicateContext);
    let c = h.completions();
    assert_eq!((c[0].context, c[1].context), (100, 100));

    one(&mut h, HostileAction::StaleContext);
    let c = h.completions();
    assert_eq!(c.len(), 2);
    assert!(issued.contains(&c[1].context), "a context completed long ago");

    one(&mut h, HostileAction::BogusSenseLen);
    let c = h.completions();
    assert!(c[0].sense_len >= 0xFFFF_0000);

    one(&mut h, HostileAction::BogusDataLen);
    assert!(h.completions()[0].data_len > u64::MAX / 2);

    one(&mut h, HostileAction::GarbageStatus);
    assert!(h.completions()[0].host_status >= 0x8000);

    one(&mut h, HostileAction::GarbageLog2);
    let _ = h.completions();
    assert!(h.rs_read(rs::REQ_NUM_ENTRIES_LOG2) != 5 || h.rs_read(rs::CMP_NUM_ENTRIES_LOG2) != 7);
    assert_eq!(h.dev.ring_info().req_entries_log2, 5, "the device keeps its own");

    one(&mut h, HostileAction::GarbageReqConsIdx);
    let _ = h.completions();
    assert_ne!(h.rs_read(rs::REQ_CONS_IDX), h.rs_read(rs::REQ_PROD_IDX));

    h.write(regs::REG_INTR_STATUS, 0xF);
    let posted = h.dev.stats().completions_posted;
    h.dev.hostile_once(HostileAction::SpuriousInterrupt);
    h.settle();
    assert_eq!(h.read(regs::REG_INTR_STATUS), INTR_CMPL_0);
    assert_eq!(h.dev.stats().completions_posted, posted, "an interrupt with nothing posted");
    assert_eq!(h.dev.stats().hostile_actions, 10);
}

/// Random hostile mode over a workload: the device survives and garbage flows.
#[test]
fn hostile_mode_random() {
    let (mut h, _d) = rig();
    h.dev.set_hostile(Some(HostileConfig { seed: 77, permille: 500, interval_ns: Some(3_000), actions: Vec::new() }));
    for ctx in 1..=200u64 {
        let r = h.request(ctx, 0, &TUR, None, 0, None);
        h.submit(&r);
        h.clock.advance(500);
        h.dev.run_due(h.clock.now_ns());
        // A driver that believes cmpProdIdx blindly would be lost here; the harness just
        // resynchronises its consumer index.
        let filled = h.dev.ring_info().completions_filled;
        h.rs_write(rs::CMP_CONS_IDX, filled);
    }
    let s = h.dev.stats();
    assert!(s.hostile_actions > 50, "{s:?}");
    assert!(s.completions_posted >= 200);
    h.dev.set_hostile(None);
    h.settle();
}

#[test]
fn event_sink_sees_the_life_of_a_request() {
    let (mut h, _d) = rig();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    h.dev.set_event_sink(Some(Arc::new(move |e: &DeviceEvent| l.lock().unwrap().push(e.clone()))));
    h.write(regs::REG_INTR_MASK, 1);
    let r = h.request(5, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.settle();
    let log = log.lock().unwrap();
    assert!(log.contains(&DeviceEvent::Request { context: 5, target: 0, lun: 0, opcode: 0 }));
    assert!(log.contains(&DeviceEvent::Kick { taken: 1 }));
    assert!(log.contains(&DeviceEvent::Completion { context: 5, host_status: 0, scsi_status: 0 }));
    assert!(log.contains(&DeviceEvent::Batch { count: 1, cmp_prod_idx: 1 }));
    assert!(log.contains(&DeviceEvent::Irq { asserted: true }));
}

/// The concurrent schedule: a device thread runs `run_due` on real time while the "CPU" posts
/// and kicks.
#[test]
fn concurrent_device_thread() {
    let (mut h, d) = rig();
    let dev = h.dev.clone();
    let clock = h.clock.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let worker = thread::spawn(move || {
        while !st.load(std::sync::atomic::Ordering::SeqCst) {
            clock.advance(500);
            dev.run_due(clock.now_ns());
            thread::yield_now();
        }
    });
    let buf = h.alloc(512, Layout::Contiguous);
    let mut done = 0;
    for ctx in 1..=300u64 {
        h.fill_region(&buf, &ctx.to_le_bytes().repeat(64));
        let r = h.request(ctx, 0, &build::rw10(true, ctx as u32, 1), Some((&buf, 512)), flags::DIR_TODEVICE, None);
        h.submit(&r);
        // One outstanding at a time (the buffer is reused), so wait for it.
        loop {
            let c = h.completions();
            if !c.is_empty() {
                assert_eq!(c[0].host_status, host::SUCCESS);
                done += c.len();
                break;
            }
            thread::yield_now();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    worker.join().unwrap();
    assert_eq!(done, 300);
    for lba in [1u64, 150, 300] {
        assert_eq!(d.read_sectors(lba, 1).unwrap(), lba.to_le_bytes().repeat(64));
    }
}
