//! Where a disk's blocks live: host RAM, or a raw image file addressed with positioned I/O.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use parking_lot::RwLock;

/// The bytes behind a disk.
pub(crate) enum Backing {
    /// Zero-filled host memory (allocated zeroed, so untouched pages cost nothing).
    Ram(RwLock<Vec<u8>>),
    /// A raw image (what `qemu-img create -f raw` makes): byte `LBA × block size` of the medium
    /// is byte `LBA × block size` of the file. Accessed with `pread`/`pwrite` only, never buffered
    /// as a whole, so an image may be far larger than RAM.
    File { file: File, path: PathBuf },
}

fn out_of_range() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "access beyond the backing store")
}

impl Backing {
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Self::Ram(mem) => {
                let mem = mem.read();
                let start = usize::try_from(offset).map_err(|_| out_of_range())?;
                let src = start
                    .checked_add(buf.len())
                    .and_then(|end| mem.get(start..end))
                    .ok_or_else(out_of_range)?;
                buf.copy_from_slice(src);
                Ok(())
            }
            Self::File { file, .. } => file.read_exact_at(buf, offset),
        }
    }

    /// For a RAM backing, runs `f` on the bytes `offset..offset + len` in place, so that a read
    /// goes from the medium straight into the request's buffer without a bounce copy. `None` for
    /// a file, which has no bytes in memory to lend.
    pub(crate) fn with_ram<R>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Option<io::Result<R>> {
        let Self::Ram(mem) = self else { return None };
        let mem = mem.read();
        let src = usize::try_from(offset).ok().and_then(|start| mem.get(start..start.checked_add(len)?));
        Some(src.map(f).ok_or_else(out_of_range))
    }

    pub(crate) fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Ram(mem) => {
                let mut mem = mem.write();
                let start = usize::try_from(offset).map_err(|_| out_of_range())?;
                let dst = start
                    .checked_add(data.len())
                    .and_then(|end| mem.get_mut(start..end))
                    .ok_or_else(out_of_range)?;
                dst.copy_from_slice(data);
                Ok(())
            }
            Self::File { file, .. } => file.write_all_at(data, offset),
        }
    }

    /// SYNCHRONIZE CACHE: data reaches the file's storage (a RAM disk has nothing to flush).
    pub(crate) fn flush(&self) -> io::Result<()> {
        match self {
            Self::Ram(_) => Ok(()),
            Self::File { file, .. } => file.sync_data(),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Ram(_) => "ram".to_string(),
            Self::File { path, .. } => format!("file:{}", path.display()),
        }
    }
}
