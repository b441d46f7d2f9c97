//! Positive runs of the test miniport on the PVSCSI model.
#![allow(clippy::cast_possible_truncation, clippy::many_single_char_names)]

mod common;
use common::*;
use scsiport_sim::{Request, Schedule, VerifierConfig, test_miniport};

#[test]
fn load_scan_read_write_deterministic() {
    let (m, _d) = loaded("");
    assert_eq!(m.logical_units(0), vec![(0, 0, 0)]);
    let c = m.execute(Request::inquiry(0)).unwrap();
    assert!(c.is_success(), "{c:?}");
    assert_eq!(c.data[0] & 0x1F, 0);
    let w = pattern(10, 8, 3);
    let c = m.execute(Request::write10(0, 10, 8, w.clone())).unwrap();
    assert!(c.is_success() || c.status() == 0x04, "{c:?}");
    let c = m.execute(Request::write10(0, 10, 8, w.clone())).unwrap();
    assert!(c.is_success(), "{c:?}");
    let c = m.execute(Request::read10(0, 10, 8, 4096)).unwrap();
    assert!(c.is_success(), "{c:?}");
    assert_eq!(c.data, w);
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
}

#[test]
fn trace_shows_the_deferral_protocol() {
    let buf = SharedBuf::default();
    let b = scsiport_sim::Machine::builder().schedule(det()).trace(buf.clone());
    let dma = scsiport_sim::mem::SimDma::default();
    let dev = device(&b, &dma, 1, 1);
    let m = b.adapter(std::sync::Arc::new(dev), std::sync::Arc::new(dma)).build();
    m.load_driver(test_miniport::driver_entry).unwrap();
    m.execute(Request::read10(0, 0, 1, 512)).unwrap();
    let s = m.stats();
    assert!(s.enable_callbacks > 0 && s.enable_callbacks == s.disable_callbacks, "{s:?}");
    m.flush_trace();
    let t = buf.text();
    for needle in ["\"routine\":\"DriverEntry\"", "HwScsiFindAdapter", "HwScsiEnableInterruptsCallback", "\"type\":\"CallDisableInterrupts\"", "\"ev\":\"irq\"", "\"ev\":\"srb\""] {
        assert!(t.contains(needle), "missing {needle}");
    }
    let _ = (Schedule::Concurrent, VerifierConfig::default());
}

fn workload(m: &scsiport_sim::Machine, n: u32) {
    let mut tickets = Vec::new();
    for i in 0..n {
        let lba = (i * 8) % 4000;
        let w = pattern(lba, 8, i as u8);
        tickets.push((lba, w.clone(), m.submit(Request::write10(0, lba, 8, w)).unwrap()));
    }
    let mut last = std::collections::BTreeMap::new();
    for (lba, w, t) in tickets {
        let c = m.wait(t).unwrap();
        assert!(c.is_success() || c.status() == 0x04, "status {:#x}", c.srb_status);
        if c.is_success() {
            last.insert(lba, w);
        }
    }
    m.run_until_idle().unwrap();
    assert!(last.len() > 32);
    for (lba, w) in last {
        let c = m.execute(Request::read10(0, lba, 8, 4096)).unwrap();
        if c.status() == 0x04 {
            continue;
        }
        assert!(c.is_success(), "status {:#x}", c.srb_status);
        assert!(c.data == w, "data mismatch at lba {lba}");
    }
}

#[test]
fn clean_run_deterministic_queue_depth() {
    for args in ["qd=4", "qd=8 defer=0", "qd=8 tagged=1", "qd=2 map=1 timer=1"] {
        let (m, _d) = loaded(args);
        workload(&m, 64);
        assert!(m.violations().is_empty(), "{args}: {:#?}", m.violations());
        let s = m.stats();
        assert!(s.interrupts > 0 && s.completions > 64, "{args}: {s:?}");
    }
}

#[test]
fn clean_run_concurrent() {
    for args in ["qd=4", "qd=8 tagged=1", "qd=8 defer=0"] {
        let (m, _d) = machine_with(Schedule::Concurrent, args, VerifierConfig { time_scale: 20.0, ..VerifierConfig::default() }, 1);
        m.load_driver(test_miniport::driver_entry).unwrap();
        workload(&m, 200);
        assert!(m.violations().is_empty(), "{args}: {:#?}", m.violations());
    }
}
