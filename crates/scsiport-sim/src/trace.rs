//! The event trace: JSON Lines, one object per event, in `seq` order. Format: `TRACE.md`.
//!
//! Nothing machine-specific that changes from run to run (virtual addresses, real time in the
//! deterministic schedule) goes into an event, so two deterministic runs with the same seed give
//! byte-identical traces.

use std::fmt::Write as _;
use std::io::Write;
use parking_lot::Mutex;

/// A JSON value, just enough for trace events.
#[derive(Clone, Debug)]
pub(crate) enum J {
    Str(String),
    Static(&'static str),
    U(u64),
    I(i64),
    B(bool),
    /// A byte as `"0x.."` (two hex digits), formatted only when the event is written.
    Hex8(u8),
    Null,
}

impl From<&'static str> for J {
    fn from(s: &'static str) -> Self {
        J::Static(s)
    }
}
impl From<String> for J {
    fn from(s: String) -> Self {
        J::Str(s)
    }
}
impl From<u64> for J {
    fn from(v: u64) -> Self {
        J::U(v)
    }
}
impl From<u32> for J {
    fn from(v: u32) -> Self {
        J::U(u64::from(v))
    }
}
impl From<u8> for J {
    fn from(v: u8) -> Self {
        J::U(u64::from(v))
    }
}
impl From<usize> for J {
    fn from(v: usize) -> Self {
        J::U(v as u64)
    }
}
impl From<i32> for J {
    fn from(v: i32) -> Self {
        J::I(i64::from(v))
    }
}
impl From<bool> for J {
    fn from(v: bool) -> Self {
        J::B(v)
    }
}
impl<T: Into<J>> From<Option<T>> for J {
    fn from(v: Option<T>) -> Self {
        v.map_or(J::Null, Into::into)
    }
}

pub(crate) fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn value_into(out: &mut String, v: &J) {
    match v {
        J::Str(s) => escape_into(out, s),
        J::Static(s) => escape_into(out, s),
        J::U(n) => {
            let _ = write!(out, "{n}");
        }
        J::I(n) => {
            let _ = write!(out, "{n}");
        }
        J::B(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Hex8(v) => {
            let _ = write!(out, "\"{v:#04x}\"");
        }
        J::Null => out.push_str("null"),
    }
}

/// The digest a `dma` event carries of the bytes moved: 64-bit FNV-1a, written as 16 hex
/// digits. Short, cheap, and the same for the same bytes on every host; not cryptographic (it
/// tells two runs apart, it does not defend against anyone).
#[must_use]
pub fn dma_digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

pub(crate) struct Tracer {
    on: std::sync::atomic::AtomicBool,
    inner: Mutex<TraceInner>,
}

struct TraceInner {
    out: Option<Box<dyn Write + Send>>,
    seq: u64,
}

impl Tracer {
    pub(crate) fn new(out: Option<Box<dyn Write + Send>>) -> Self {
        Self { on: std::sync::atomic::AtomicBool::new(out.is_some()), inner: Mutex::new(TraceInner { out, seq: 0 }) }
    }

    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.on.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes one event. `adapter` is the adapter index (or none for machine-level events).
    pub(crate) fn emit(&self, t_ns: u64, adapter: Option<usize>, ev: &'static str, fields: &[(&'static str, J)]) {
        if !self.enabled() {
            return;
        }
        let mut g = self.inner.lock();
        if g.out.is_none() {
            return;
        }
        g.seq += 1;
        let mut line = String::with_capacity(128);
        let _ = write!(line, "{{\"seq\":{},\"t_ns\":{},\"adapter\":", g.seq, t_ns);
        match adapter {
            Some(a) => {
                let _ = write!(line, "{a}");
            }
            None => line.push_str("null"),
        }
        line.push_str(",\"ev\":");
        escape_into(&mut line, ev);
        for (k, v) in fields {
            line.push(',');
            escape_into(&mut line, k);
            line.push(':');
            value_into(&mut line, v);
        }
        line.push_str("}\n");
        if let Some(out) = g.out.as_mut()
            && out.write_all(line.as_bytes()).is_err()
        {
            g.out = None;
            self.on.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A `dma` event (`TRACE.md`): what the device reached, which way, where, how much, and a
    /// digest of the bytes; a value too when it is one little-endian word (1, 2, 4 or 8 bytes:
    /// ring indexes).
    pub(crate) fn emit_dma(&self, t_ns: u64, adapter: usize, a: &crate::hba::DmaAccess<'_>) {
        let value = match *a.data {
            [b] => Some(u64::from(b)),
            [b0, b1] => Some(u64::from(u16::from_le_bytes([b0, b1]))),
            [b0, b1, b2, b3] => Some(u64::from(u32::from_le_bytes([b0, b1, b2, b3]))),
            [b0, b1, b2, b3, b4, b5, b6, b7] => Some(u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7])),
            _ => None,
        };
        let mut fields = vec![
            ("dir", J::Static(if a.write { "write" } else { "read" })),
            ("what", J::Static(a.what)),
            ("pa", J::Str(format!("{:#x}", a.pa))),
            ("length", J::from(a.data.len())),
            ("digest", J::Str(format!("{:016x}", dma_digest(a.data)))),
        ];
        if let Some(v) = value {
            fields.push(("value", J::Str(format!("{v:#x}"))));
        }
        self.emit(t_ns, Some(adapter), "dma", &fields);
    }

    pub(crate) fn flush(&self) {
        if let Some(out) = self.inner.lock().out.as_mut()
        {
            let _ = out.flush();
        }
    }
}
