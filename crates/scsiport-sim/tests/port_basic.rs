//! Positive runs of the test miniport on the PVSCSI model.

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
