//! PVSCSI model: the request-call threshold (`SETUP_REQCALLTHRESHOLD`, pvscsi-facts.md §4.8) —
//! unknown to QEMU, on in the VMware layout: the device publishes `reqCallThreshold`, takes
//! requests posted without a kick when it runs its completions, and drops back to a threshold of
//! 1 (kick every request) when it has nothing in flight.

use scsiport_sim::disk::Disk;
use scsiport_sim::pvscsi::harness::Harness;
use scsiport_sim::pvscsi::regs::{self, CMD_STATUS_FAILED, cmd, rs};
use scsiport_sim::pvscsi::{BUSY_REQ_CALL_THRESHOLD, Latency, PvscsiConfig, PvscsiLayout};

const TUR: [u8; 6] = [0; 6];

fn rig(layout: PvscsiLayout) -> Harness {
    let mut h = Harness::new(PvscsiConfig { layout, latency: Latency::fixed(1_000), ..PvscsiConfig::default() });
    let d = Disk::ram(1 << 20).unwrap();
    d.set_unit_attention(None);
    h.dev.attach(0, d).unwrap();
    assert_eq!(h.setup_rings(1, 1), 0);
    h
}

#[test]
fn qemu_does_not_know_the_command() {
    let h = rig(PvscsiLayout::Qemu);
    h.write(regs::REG_COMMAND, cmd::SETUP_REQCALLTHRESHOLD);
    assert_eq!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_FAILED, "the probe says unsupported");
    assert_eq!(h.rs_read(rs::REQ_CALL_THRESHOLD), 0, "nothing published");
}

#[test]
fn vmware_publishes_a_threshold_and_polls_while_busy() {
    let mut h = rig(PvscsiLayout::Vmware);
    // The probe: the code alone leaves the command waiting for its word, not -1.
    h.write(regs::REG_COMMAND, cmd::SETUP_REQCALLTHRESHOLD);
    assert_ne!(h.read(regs::REG_COMMAND_STATUS), CMD_STATUS_FAILED);
    assert_eq!(h.command(cmd::SETUP_REQCALLTHRESHOLD, &[1]), 1, "enabled");
    assert_eq!(h.rs_read(rs::REQ_CALL_THRESHOLD), 1, "idle: every request is to be kicked");

    let first = h.request(1, 0, &TUR, None, 0, None);
    h.submit(&first);
    assert_eq!(h.rs_read(rs::REQ_CALL_THRESHOLD), BUSY_REQ_CALL_THRESHOLD, "busy");
    // Posted without a kick while the device is busy: taken when it runs its completions.
    for ctx in 2..=4 {
        let r = h.request(ctx, 0, &TUR, None, 0, None);
        h.post(&r);
    }
    assert_eq!(h.rs_read(rs::REQ_CONS_IDX), 1, "not seen yet");
    h.settle();
    let done: Vec<u64> = h.completions().iter().map(|c| c.context).collect();
    assert_eq!(done, [1, 2, 3, 4]);
    let s = h.dev.stats();
    assert_eq!((s.kicks, s.requests, s.requests_polled), (1, 4, 3));
    assert_eq!(h.rs_read(rs::REQ_CALL_THRESHOLD), 1, "idle again");

    // Idle, a request posted without a kick stays where it is: the driver owed a kick.
    let r = h.request(5, 0, &TUR, None, 0, None);
    h.post(&r);
    h.settle();
    assert!(h.completions().is_empty());
    assert_eq!(h.dev.stats().requests, 4);
    h.kick();
    h.settle();
    assert_eq!(h.completions().len(), 1);

    // An adapter reset turns it off; `enable = 0` too.
    assert_eq!(h.command(cmd::ADAPTER_RESET, &[]), 0);
    assert_eq!(h.setup_rings(1, 1), 0);
    h.rs_write(rs::REQ_CALL_THRESHOLD, 0);
    let r = h.request(6, 0, &TUR, None, 0, None);
    h.submit(&r);
    assert_eq!(h.rs_read(rs::REQ_CALL_THRESHOLD), 0, "off after the reset: nothing published");
    assert_eq!(h.command(cmd::SETUP_REQCALLTHRESHOLD, &[0]), 0, "disabled");
}
