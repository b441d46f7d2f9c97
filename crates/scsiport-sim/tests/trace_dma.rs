//! The trace's `dma` events (`PortConfig::trace_dma`, TRACE.md) and the sense of a completion:
//! off by default, and switching them on adds the device's memory accesses and nothing else; the
//! digest is of the bytes the device moved.

mod common;
use std::sync::Arc;

use common::*;
use scsiport_sim::mem::SimDma;
use scsiport_sim::{Machine, Request, dma_digest, test_miniport};
use serde_json::Value;

/// The test miniport on one disk, deterministic: a write, its read back, and a READ past the end
/// (CHECK CONDITION with sense). Returns the trace.
fn run(trace_dma: bool) -> (Vec<Value>, Vec<u8>) {
    let buf = SharedBuf::default();
    let b = Machine::builder().schedule(det()).trace(buf.clone()).trace_dma(trace_dma);
    let dma = SimDma::default();
    let dev = device(&b, &dma, 1, 1);
    let m = b.adapter(Arc::new(dev), Arc::new(dma)).build();
    m.load_driver(test_miniport::driver_entry).unwrap();
    let _power_on_unit_attention = m.execute(Request::test_unit_ready(0)).unwrap();
    let w = pattern(16, 8, 5);
    assert!(m.execute(Request::write10(0, 16, 8, w.clone())).unwrap().is_success());
    let r = m.execute(Request::read10(0, 16, 8, 4096)).unwrap();
    assert_eq!(r.data, w);
    let bad = m.execute(Request::read10(0, 0x00FF_FFFF, 1, 512)).unwrap();
    assert_eq!(bad.sense.get(2).map(|k| k & 0x0F), Some(0x05), "{bad:?}");
    m.run_until_idle().unwrap();
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
    m.flush_trace();
    (buf.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect(), w)
}

fn is_dma(e: &Value) -> bool {
    e["ev"] == "dma"
}

#[test]
fn dma_events_appear_only_when_asked_and_change_nothing_else() {
    let (off, _) = run(false);
    let (on, _) = run(true);
    assert!(!off.iter().any(is_dma), "no dma events by default");
    let dma: Vec<&Value> = on.iter().filter(|e| is_dma(e)).collect();
    assert!(dma.len() > 20, "{} dma events", dma.len());
    // Every place the device reaches into memory on this path shows up, each way it goes.
    for (what, dir) in [
        ("rings-state", "read"),
        ("rings-state", "write"),
        ("request", "read"),
        ("data", "read"),
        ("data", "write"),
        ("sense", "write"),
        ("completion", "write"),
    ] {
        assert!(dma.iter().any(|e| e["what"] == what && e["dir"] == dir), "no {dir} of {what}");
    }
    for e in &dma {
        assert!(e["pa"].as_str().is_some_and(|p| p.starts_with("0x")), "{e}");
        assert!(e["length"].as_u64().is_some_and(|n| n > 0), "{e}");
        assert_eq!(e["digest"].as_str().map(str::len), Some(16), "{e}");
        assert_eq!(e["adapter"], 0);
    }
    // A 4-byte access (a ring index) carries its value, little-endian.
    let index = dma.iter().find(|e| e["what"] == "rings-state" && e["length"] == 4).unwrap();
    let v = u32::from_str_radix(index["value"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(index["digest"].as_str().unwrap(), format!("{:016x}", dma_digest(&v.to_le_bytes())));
    // Without them the trace is the trace taken with the option off, line for line, `seq`
    // renumbered: tracing DMA does not move a single event.
    let strip = |t: &[Value]| -> Vec<Value> {
        t.iter()
            .filter(|e| !is_dma(e))
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("seq");
                e
            })
            .collect()
    };
    assert_eq!(strip(&on), strip(&off));
}

#[test]
fn the_digest_is_of_the_bytes_the_device_moved() {
    let (t, w) = run(true);
    // The WRITE(10): what the device read from the data buffer is the data written, piece by
    // piece in buffer order; the READ(10): what it wrote into the buffer is the same data.
    let request = |opcode: &str| -> Vec<&Value> {
        let srb = t.iter().find(|e| e["ev"] == "srb" && e["opcode"] == opcode && e["length"] == 4096).unwrap()["id"].clone();
        let start = t.iter().position(|e| e["ev"] == "call" && e["routine"] == "HwScsiStartIo" && e["srb"] == srb).unwrap();
        let end = t.iter().position(|e| e["type"] == "RequestComplete" && e["srb"] == srb).unwrap();
        t[start..end].iter().filter(|e| is_dma(e) && e["what"] == "data").collect()
    };
    for (opcode, dir) in [("0x2a", "read"), ("0x28", "write")] {
        let pieces = request(opcode);
        assert!(!pieces.is_empty());
        let mut at = 0usize;
        for p in pieces {
            assert_eq!(p["dir"], dir, "{p}");
            let n = usize::try_from(p["length"].as_u64().unwrap()).unwrap();
            assert_eq!(p["digest"].as_str().unwrap(), format!("{:016x}", dma_digest(&w[at..at + n])), "{opcode} at {at}");
            at += n;
        }
        assert_eq!(at, w.len(), "{opcode}: the whole buffer moved");
    }
    // A different byte gives a different digest.
    let mut changed = w.clone();
    changed[100] ^= 1;
    assert_ne!(dma_digest(&w), dma_digest(&changed));
}

#[test]
fn a_completion_with_autosense_carries_its_sense() {
    let (t, _) = run(false);
    let completions: Vec<&Value> = t.iter().filter(|e| e["type"] == "RequestComplete").collect();
    let with_sense: Vec<&Value> = completions.iter().copied().filter(|e| e.get("sense").is_some()).collect();
    // The power-on unit attention and the READ past the end; nothing else has sense.
    assert!(with_sense.iter().all(|e| e["status"].as_str().is_some_and(|s| u8::from_str_radix(&s[2..], 16).unwrap() & 0x80 != 0)), "{with_sense:?}");
    let bad = with_sense.last().unwrap();
    let sense = bad["sense"].as_str().unwrap();
    // Fixed format: key 05 (ILLEGAL REQUEST), ASC 21 (LBA out of range).
    assert_eq!(&sense[4..6], "05", "{bad}");
    assert_eq!(&sense[24..26], "21", "{bad}");
    assert!(completions.iter().any(|e| e.get("sense").is_none() && e["status"] == "0x01"));
}
