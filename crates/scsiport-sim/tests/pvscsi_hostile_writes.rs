//! PVSCSI model: hostile writes with their values given (`PvscsiDevice::hostile_write`, what the
//! `hostile` fuzz target drives): each lands where it says, and a context the device makes up is
//! never one a driver could hold, whatever value it is given.

use scsiport_sim::disk::Disk;
use scsiport_sim::pvscsi::harness::Harness;
use scsiport_sim::pvscsi::regs::{self, INTR_CMPL_0, INTR_MSG_0, rs};
use scsiport_sim::pvscsi::{HostileAction, HostileWrite, Latency, PvscsiConfig};

const TUR: [u8; 6] = [0; 6];

fn rig() -> (Harness, Disk) {
    let mut h = Harness::new(PvscsiConfig { latency: Latency::fixed(1_000), ..PvscsiConfig::default() });
    let d = Disk::ram(1 << 20).unwrap();
    d.set_unit_attention(None);
    h.dev.attach(0, d.clone()).unwrap();
    assert_eq!(h.setup_rings(1, 1), 0);
    (h, d)
}

/// One TEST UNIT READY with context `ctx`, carrying `w`; the completions of its batch.
fn with(h: &mut Harness, ctx: u64, w: HostileWrite) -> Vec<scsiport_sim::pvscsi::ring::CmpDesc> {
    let r = h.request(ctx, 0, &TUR, None, 0, None);
    h.submit(&r);
    h.dev.hostile_write(w);
    h.settle();
    h.completions()
}

#[test]
fn actions_take_the_value_given() {
    let (mut h, _d) = rig();
    let c = with(&mut h, 1, HostileWrite::Action(HostileAction::GarbageStatus, 0x0004_1234));
    assert_eq!((c[0].context, c[0].host_status, c[0].scsi_status), (1, 0x9234, 0x04));
    let c = with(&mut h, 2, HostileWrite::Action(HostileAction::BogusSenseLen, 0x42));
    assert_eq!(c[0].sense_len, 0xFFFF_0042);
    let filled = h.dev.ring_info().completions_filled;
    // (g >> 40) % 3 == 0 picks the low 32 bits of g as cmpProdIdx.
    let _ = with(&mut h, 3, HostileWrite::Action(HostileAction::GarbageCmpProdIdx, 0x0000_0000_0000_0777));
    assert_eq!(h.rs_read(rs::CMP_PROD_IDX), 0x777);
    assert_eq!(h.dev.ring_info().completions_filled, filled + 1);
    assert_eq!(h.dev.stats().hostile_actions, 3);
}

#[test]
fn made_up_contexts_have_the_top_bit_set_whatever_the_value() {
    let (mut h, _d) = rig();
    // UnknownContext with the value of a context a driver could hold.
    let c = with(&mut h, 5, HostileWrite::Action(HostileAction::UnknownContext, 0x101));
    assert_eq!(c.len(), 2);
    assert_eq!(c[1].context, 0x101 | 1 << 63);
    // With no completion in the batch and nothing in the history, the corrupted completion is
    // made up: its context too, whatever value it is given.
    let (h, _d) = rig();
    h.dev.hostile_write(HostileWrite::Action(HostileAction::BogusDataLen, 0x201));
    h.dev.hostile_write(HostileWrite::Action(HostileAction::DuplicateContext, 0x301));
    h.dev.hostile_write(HostileWrite::Action(HostileAction::StaleContext, 0x401));
    h.settle();
    let c = h.completions();
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(c.iter().all(|c| c.context >> 32 != 0), "{c:?}");
}

#[test]
fn data_len_changes_only_a_real_completion() {
    let (mut h, _d) = rig();
    let c = with(&mut h, 7, HostileWrite::DataLen(12));
    assert_eq!((c.len(), c[0].context, c[0].data_len), (1, 7, 12));
    h.dev.hostile_write(HostileWrite::DataLen(99));
    h.settle();
    assert!(h.completions().is_empty(), "nothing made up to carry it");
}

#[test]
fn messages_index_and_interrupt_status() {
    let (mut h, _d) = rig();
    assert_ne!(h.setup_msg_ring(1), u32::MAX, "SETUP_MSG_RING refused");
    h.write(regs::REG_INTR_MASK, INTR_CMPL_0 | INTR_MSG_0);
    h.dev.hostile_write(HostileWrite::Message { kind: 0xDEAD, target: 0x1_0000 });
    h.settle();
    let m = h.messages();
    assert_eq!((m.len(), m[0].kind, m[0].target), (1, 0xDEAD, 0x1_0000));
    assert_eq!(h.read(regs::REG_INTR_STATUS) & INTR_MSG_0, INTR_MSG_0);
    assert!(h.dev.registers().line);
    h.write(regs::REG_INTR_STATUS, u32::MAX);
    h.dev.hostile_write(HostileWrite::MsgProdIdx(0x8000_0000));
    h.settle();
    assert_eq!(h.rs_read(rs::MSG_PROD_IDX), 0x8000_0000);
    assert_eq!(h.read(regs::REG_INTR_STATUS), INTR_MSG_0);
    h.write(regs::REG_INTR_STATUS, u32::MAX);
    h.dev.hostile_write(HostileWrite::IntrStatus(0x100));
    h.settle();
    assert_eq!(h.read(regs::REG_INTR_STATUS), 0x100);
    assert!(!h.dev.registers().line, "a bit the mask does not let through raises nothing");
    h.dev.hostile_write(HostileWrite::IntrStatus(INTR_CMPL_0));
    h.settle();
    assert!(h.dev.registers().line);
    assert_eq!(h.dev.stats().hostile_actions, 4);
}
