//! The byte format every target decodes: fixed-width little-endian fields read in order, with
//! zeros once the input runs out, so that every input means something and a mutation of one
//! byte changes one field. [`Writer`] produces the same format, for the seeds.

/// Reads fields from a fuzzer input.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `data`.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether the input is used up.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next `N` bytes, zero-padded past the end.
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        out[..n].copy_from_slice(head);
        self.data = rest;
        out
    }

    /// One byte.
    pub fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }

    /// A byte as a flag (its low bit).
    pub fn flag(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    /// A length-prefixed byte string of at most `max` bytes (one length byte).
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = usize::from(self.u8()).min(max).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }

    /// Everything left, as text (lossy UTF-8).
    #[must_use]
    pub fn rest_text(self) -> String {
        String::from_utf8_lossy(self.data).into_owned()
    }
}

/// Writes fields in the format [`Reader`] reads.
#[derive(Clone, Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A flag.
    pub fn flag(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// A length-prefixed byte string (at most 255 bytes).
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let v = &v[..v.len().min(255)];
        self.u8(u8::try_from(v.len()).unwrap_or(u8::MAX));
        self.0.extend_from_slice(v);
        self
    }
}

/// A part of an input that reads itself from a [`Reader`] and writes itself back with a
/// [`Writer`], in the same format.
pub trait Field: Sized {
    /// Reads it.
    fn read_from(r: &mut Reader<'_>) -> Self;
    /// Writes it.
    fn write_to(&self, w: &mut Writer);
}

/// A target's decoded input: its machine set-up `S`, then up to `MAX` operations `O`, as many as
/// the bytes hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input<S, O, const MAX: usize> {
    /// The machine.
    pub setup: S,
    /// What happens on it.
    pub ops: Vec<O>,
}

impl<S: Default, O, const MAX: usize> Default for Input<S, O, MAX> {
    fn default() -> Self {
        Self { setup: S::default(), ops: Vec::new() }
    }
}

impl<S: Field, O: Field, const MAX: usize> Input<S, O, MAX> {
    /// Decodes any bytes.
    #[must_use]
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let setup = S::read_from(&mut r);
        let mut ops = Vec::new();
        while !r.is_empty() && ops.len() < MAX {
            ops.push(O::read_from(&mut r));
        }
        Self { setup, ops }
    }

    /// Encodes it again.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.setup.write_to(&mut w);
        for op in &self.ops {
            op.write_to(&mut w);
        }
        w.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_and_short_input_reads_zeros() {
        let mut w = Writer::default();
        w.u8(7).u16(0x1234).u32(0xDEAD_BEEF).u64(u64::MAX).flag(true).bytes(b"abc");
        let mut r = Reader::new(&w.0);
        assert_eq!((r.u8(), r.u16(), r.u32(), r.u64(), r.flag()), (7, 0x1234, 0xDEAD_BEEF, u64::MAX, true));
        assert_eq!(r.bytes(16), b"abc");
        assert!(r.is_empty());
        assert_eq!((r.u8(), r.u32()), (0, 0));
        let mut r = Reader::new(&[1, 2]);
        assert_eq!(r.u32(), 0x0201);
        let mut r = Reader::new(&[200, 1, 2]);
        assert_eq!(r.bytes(255), vec![1, 2], "a length past the end takes what is there");
    }
}
