//! The on-disk pattern of `write-pattern` / `verify-pattern` / `check-image`, in one place.
//!
//! Every 512-byte sector of a patterned disk is a pure function of its LBA and the run's seed:
//!
//! | bytes | content |
//! | --- | --- |
//! | 0..8 | the LBA, little-endian `u64` |
//! | 8..16 | the seed, little-endian `u64` |
//! | 16..512 | 62 words of a splitmix64 stream, each little-endian `u64` |
//!
//! The stream's state starts at `lba ^ seed.rotate_left(32)`; each word adds the golden-ratio
//! increment `0x9E37_79B9_7F4A_7C15` to the state and mixes it (splitmix64's finaliser:
//! `z ^= z >> 30; z *= 0xBF58_476D_1CE4_E5B9; z ^= z >> 27; z *= 0x94D0_49BB_1331_11EB; z ^= z >> 31`).
//! So a sector written to the wrong LBA, a sector from another run (seed), a torn or shifted
//! transfer and a zero (never written) sector are all told apart.
//!
//! The mixed workload reuses the function with a per-write seed (`generation_seed`), so its
//! sectors carry the same self-describing header.

/// Bytes per sector of the pattern (and of every disk the CLI drives).
pub const SECTOR: usize = 512;

/// The splitmix64 increment (2⁶⁴ / φ).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// One step of splitmix64.
#[must_use]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `out` (one sector, [`SECTOR`] bytes) with the pattern of `lba` under `seed`.
///
/// # Panics
/// If `out` is not exactly one sector.
pub fn fill_sector(lba: u64, seed: u64, out: &mut [u8]) {
    assert_eq!(out.len(), SECTOR, "one sector at a time");
    let mut state = lba ^ seed.rotate_left(32);
    for (i, word) in out.chunks_exact_mut(8).enumerate() {
        let v = match i {
            0 => lba,
            1 => seed,
            _ => splitmix64(&mut state),
        };
        word.copy_from_slice(&v.to_le_bytes());
    }
}

/// The pattern of `count` sectors from `lba` under `seed`.
#[must_use]
pub fn sectors(lba: u64, count: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; count * SECTOR];
    for (i, s) in out.chunks_exact_mut(SECTOR).enumerate() {
        fill_sector(lba + i as u64, seed, s);
    }
    out
}

/// What a sector that does not carry the expected pattern holds instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The LBA checked.
    pub lba: u64,
    /// The LBA found in bytes 0..8.
    pub found_lba: u64,
    /// The seed found in bytes 8..16.
    pub found_seed: u64,
    /// The first byte that differs.
    pub offset: usize,
    /// Whether the whole sector is zero (never written).
    pub zero: bool,
}

impl Mismatch {
    /// The kind, one word: `zero` (never written), `misplaced` (another LBA's sector),
    /// `other-seed` (this LBA, another run), `corrupt` (the header right, the body not).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        if self.zero {
            "zero"
        } else if self.found_lba != self.lba {
            "misplaced"
        } else if self.offset < 16 {
            "other-seed"
        } else {
            "corrupt"
        }
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LBA {}: ", self.lba)?;
        if self.zero {
            write!(f, "all zero (never written)")
        } else if self.found_lba != self.lba {
            write!(f, "holds the sector of LBA {} (seed {}): misplaced", self.found_lba, self.found_seed)
        } else if self.offset < 16 {
            write!(f, "written with seed {}, not this seed", self.found_seed)
        } else {
            write!(f, "header right, body differs from byte {}", self.offset)
        }
    }
}

/// Checks one sector against the pattern of `lba` under `seed`.
///
/// # Errors
/// What the sector holds instead, when it differs.
pub fn check_sector(lba: u64, seed: u64, data: &[u8]) -> Result<(), Mismatch> {
    let mut want = [0u8; SECTOR];
    fill_sector(lba, seed, &mut want);
    if data == want.as_slice() {
        return Ok(());
    }
    match data.iter().zip(&want).position(|(a, b)| a != b) {
        None if data.len() == SECTOR => Ok(()),
        pos => {
            let word = |i: usize| data.get(i..i + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
            Err(Mismatch {
                lba,
                found_lba: word(0),
                found_seed: word(8),
                offset: pos.unwrap_or(data.len()),
                zero: data.iter().all(|&b| b == 0),
            })
        }
    }
}

/// The seed the mixed workload writes a range with: the run's seed, the disk, and a per-write
/// generation, so a stale or misdirected write shows as a wrong seed in the sector header.
#[must_use]
pub fn generation_seed(seed: u64, target: u8, generation: u64) -> u64 {
    let mut s = seed ^ (u64::from(target) << 56) ^ generation.wrapping_mul(GOLDEN);
    splitmix64(&mut s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_carries_lba_and_seed() {
        let mut s = [0u8; SECTOR];
        fill_sector(0x0102_0304_0506_0708, 11, &mut s);
        assert_eq!(s[..8], 0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(s[8..16], 11u64.to_le_bytes());
        assert!(check_sector(0x0102_0304_0506_0708, 11, &s).is_ok());
    }

    #[test]
    fn body_is_the_documented_stream() {
        let (lba, seed) = (5u64, 0xABCD_u64);
        let mut s = [0u8; SECTOR];
        fill_sector(lba, seed, &mut s);
        let mut state = lba ^ seed.rotate_left(32);
        let w2 = splitmix64(&mut state);
        assert_eq!(s[16..24], w2.to_le_bytes());
        // splitmix64 from state 0: the reference first output.
        let mut zero = 0u64;
        assert_eq!(splitmix64(&mut zero), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn mismatches_are_classified() {
        let good = sectors(9, 1, 3);
        assert!(check_sector(9, 3, &good).is_ok());
        let e = check_sector(10, 3, &good).unwrap_err();
        assert_eq!((e.found_lba, e.offset, e.zero), (9, 0, false));
        assert!(e.to_string().contains("misplaced"));
        let e = check_sector(9, 4, &good).unwrap_err();
        assert_eq!(e.offset, 8);
        assert!(e.to_string().contains("seed 3"));
        let mut torn = good.clone();
        torn[300] ^= 1;
        assert_eq!(check_sector(9, 3, &torn).unwrap_err().offset, 300);
        assert!(check_sector(9, 3, &[0u8; SECTOR]).unwrap_err().zero);
        assert!(check_sector(9, 3, &good[..100]).is_err());
    }

    #[test]
    fn sectors_differ_by_lba_and_seed() {
        assert_ne!(sectors(1, 1, 1)[16..], sectors(2, 1, 1)[16..]);
        assert_ne!(sectors(1, 1, 1)[16..], sectors(1, 1, 2)[16..]);
        assert_ne!(generation_seed(1, 0, 1), generation_seed(1, 0, 2));
        assert_ne!(generation_seed(1, 0, 1), generation_seed(1, 1, 1));
    }
}
