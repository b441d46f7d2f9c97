//! Shared setup for the port tests: machines with the PVSCSI model, RAM disks and the test
//! miniport.
#![allow(clippy::cast_possible_truncation, clippy::many_single_char_names)]
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use scsiport_sim::disk::Disk;
use scsiport_sim::mem::SimDma;
use scsiport_sim::pvscsi::{PvscsiConfig, PvscsiDevice};
use scsiport_sim::{DriverEntryFn, Machine, MachineBuilder, Port, Request, Rule, Schedule, VerifierConfig, test_miniport};

pub const DISK_BYTES: u64 = 4 * 1024 * 1024;

/// A trace sink tests can read back.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

pub struct Setup {
    pub builder: MachineBuilder,
    pub devices: Vec<PvscsiDevice>,
}

/// A device with `disks` RAM disks on targets 0.. (one adapter).
pub fn device(b: &MachineBuilder, dma: &SimDma, disks: u8, seed: u64) -> PvscsiDevice {
    let cfg = PvscsiConfig { seed, ..PvscsiConfig::default() };
    let dev = PvscsiDevice::new(cfg, Arc::new(dma.clone()), b.clock());
    for t in 0..disks {
        dev.attach(t, Disk::ram(DISK_BYTES).unwrap()).unwrap();
    }
    dev
}

/// One adapter, `disks` disks, `ArgumentString` `args`.
pub fn machine_with(schedule: Schedule, args: &str, verifier: VerifierConfig, disks: u8) -> (Machine, PvscsiDevice) {
    machine_on(Port::ScsiPort, schedule, args, verifier, disks)
}

/// [`machine_with`] on either port.
pub fn machine_on(port: Port, schedule: Schedule, args: &str, verifier: VerifierConfig, disks: u8) -> (Machine, PvscsiDevice) {
    let b = Machine::builder().port(port).schedule(schedule).verifier(verifier).argument_string(args);
    let dma = SimDma::default();
    let dev = device(&b, &dma, disks, 1);
    let m = b.adapter(Arc::new(dev.clone()), Arc::new(dma)).build();
    (m, dev)
}

/// Two HBAs on one interrupt line, the first loaded with `break=claim_foreign` (its ISR claims
/// every interrupt): I/O on the second must end in the bug check `rule` naming the first, in one
/// of 19 seeds.
pub fn foreign_claim_is_caught(port: Port, entry: DriverEntryFn, rule: Rule) {
    let mut claimed = false;
    for seed in 1..20 {
        let b = Machine::builder().port(port).schedule(Schedule::Deterministic { seed });
        let dma = SimDma::default();
        let d0 = device(&b, &dma, 1, 1);
        let d1 = device(&b, &dma, 1, 2);
        let dma = Arc::new(dma);
        let m = b
            .adapter_on_line(Arc::new(d0), dma.clone(), 5)
            .adapter_args("break=claim_foreign")
            .adapter_on_line(Arc::new(d1), dma, 5)
            .build();
        m.load_driver(entry).unwrap();
        let _ = m.execute_on(0, Request::read10(0, 0, 1, 512));
        for i in 0..8 {
            if m.execute_on(1, Request::read10(0, i, 1, 512)).is_err() {
                break;
            }
        }
        if let Some(b) = m.bugcheck() {
            assert_eq!(b.rule, rule, "{b}");
            assert_eq!(b.adapter, Some(0));
            claimed = true;
            break;
        }
    }
    assert!(claimed, "the foreign claim was never caught");
}

pub fn det() -> Schedule {
    Schedule::Deterministic { seed: 42 }
}

/// Loads the test miniport with `args` (deterministic, default verifier, one disk).
pub fn loaded(args: &str) -> (Machine, PvscsiDevice) {
    let (m, d) = machine_with(det(), args, VerifierConfig::default(), 1);
    m.load_driver(test_miniport::driver_entry).expect("load");
    (m, d)
}

/// Loads with `break=NAME` (and extra args), runs a READ, and returns the machine.
pub fn broken(name: &str, extra: &str) -> Machine {
    let args = format!("break={name} {extra}");
    let (m, _d) = machine_with(det(), &args, VerifierConfig::default(), 1);
    if m.load_driver(test_miniport::driver_entry).is_ok() {
        let _ = m.execute(Request::read10(0, 0, 8, 4096));
        let _ = m.run_until_idle();
    }
    m
}

/// Asserts the machine halted with exactly this rule (the first fatal violation).
pub fn assert_bugcheck(m: &Machine, rule: Rule) {
    let b = m.bugcheck().unwrap_or_else(|| panic!("expected {rule:?}, no bug check; violations: {:#?}", m.violations()));
    assert_eq!(b.rule, rule, "wrong bug check: {b}");
    assert_eq!(b.code, rule.code());
    // Every later call fails with it.
    let e = m.execute(Request::test_unit_ready(0)).unwrap_err();
    assert_eq!(e.bugcheck().map(|b| b.rule), Some(rule));
}

/// Pattern data for a block range.
pub fn pattern(lba: u32, blocks: u16, seed: u8) -> Vec<u8> {
    let mut v = vec![0u8; usize::from(blocks) * 512];
    for (i, b) in v.iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(31).wrapping_add(lba * 7).wrapping_add(u32::from(seed)) as u8;
    }
    v
}
