//! Throughput smoke test (also a soak of the quarantine and the guard table).
#![allow(clippy::cast_possible_truncation)]

mod common;
use common::*;
use scsiport_sim::{Request, Schedule, VerifierConfig, test_miniport};

fn run(schedule: Schedule, n: u32) -> std::time::Duration {
    let (m, _d) = machine_with(schedule, "qd=8 tagged=1", VerifierConfig { time_scale: 20.0, ..VerifierConfig::default() }, 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    let start = std::time::Instant::now();
    let mut inflight = std::collections::VecDeque::new();
    for i in 0..n {
        inflight.push_back(m.submit(Request::read10(0, i % 1000, 8, 4096)).unwrap());
        if inflight.len() >= 16 {
            m.wait(inflight.pop_front().unwrap()).unwrap();
        }
    }
    while let Some(t) = inflight.pop_front() {
        m.wait(t).unwrap();
    }
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
    assert_eq!(m.stats().ios, u64::from(n));
    start.elapsed()
}

#[test]
fn thousands_of_requests() {
    let d = run(det(), 3000);
    let c = run(Schedule::Concurrent, 3000);
    eprintln!("3000 reads: deterministic {d:?}, concurrent {c:?}");
}
