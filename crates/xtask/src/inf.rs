//! Stamping an `.inx` into the `.inf` of a package, as the WDK's `stampinf` does in the Windows
//! flow (`stampinf -f X.inf -d * -a amd64 -c X.cat -v *`, wdk-build's `rust-driver-makefile.toml`):
//! the architecture decoration `$ARCH$`, `DriverVer` (date and four-part version) and
//! `CatalogFile` in `[Version]` (the WDK pages "stampinf", "INF `DriverVer` directive", "INF Version
//! Section").

use anyhow::{Result, bail};

/// What goes into the `.inf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// `$ARCH$`: `amd64` for `x86_64-pc-windows-msvc`.
    pub arch: &'static str,
    /// `DriverVer` date, (year, month, day).
    pub date: (u32, u32, u32),
    /// `DriverVer` version, four parts.
    pub version: [u16; 4],
    /// `CatalogFile`.
    pub catalog: String,
}

impl Stamp {
    /// `DriverVer`'s value: `mm/dd/yyyy,w.x.y.z`.
    #[must_use]
    pub fn driver_ver(&self) -> String {
        let (year, month, day) = self.date;
        let [major, minor, build, revision] = self.version;
        format!("{month:02}/{day:02}/{year:04},{major}.{minor}.{build}.{revision}")
    }
}

/// The package version (`0.1.0`) as `DriverVer`'s four parts (`0.1.0.0`).
///
/// # Errors
/// When a part is not a number that fits in 16 bits.
pub fn four_part_version(semver: &str) -> Result<[u16; 4]> {
    let core = semver.split(['-', '+']).next().unwrap_or(semver);
    let mut parts = [0u16; 4];
    for (i, part) in core.split('.').enumerate() {
        let Some(slot) = parts.get_mut(i) else { bail!("version {semver} has more than four parts") };
        *slot = part.parse()?;
    }
    Ok(parts)
}

/// The civil date (UTC) of `secs` seconds after the Unix epoch.
#[must_use]
pub fn civil_date(secs: u64) -> (u32, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm, in unsigned arithmetic for dates after 1970.
    let days = secs / 86_400 + 719_468;
    let era = days / 146_097;
    let doe = days % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (u32::try_from(year).unwrap_or(u32::MAX), u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// Today's date (UTC), or the date of `SOURCE_DATE_EPOCH` for a reproducible package.
#[must_use]
pub fn today() -> (u32, u32, u32) {
    let secs = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    });
    civil_date(secs)
}

fn is_section_header(line: &str) -> Option<&str> {
    let t = line.trim();
    t.strip_prefix('[').and_then(|r| r.split_once(']')).map(|(name, _)| name.trim())
}

fn directive(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with(';') {
        return None;
    }
    t.split_once('=').map(|(key, _)| key.trim())
}

/// The `.inf` text for `inx` with `stamp` applied. `DriverVer` and `CatalogFile` are replaced
/// in `[Version]`, or added at its end when missing.
///
/// # Errors
/// When the `.inx` has no `[Version]` section.
pub fn stamp(inx: &str, stamp: &Stamp) -> Result<String> {
    let inx = inx.replace("$ARCH$", stamp.arch);
    let mut out: Vec<String> = Vec::new();
    let mut in_version = false;
    let mut saw_version = false;
    let mut wrote_driver_ver = false;
    let mut wrote_catalog = false;
    let driver_ver = format!("DriverVer   = {}", stamp.driver_ver());
    let catalog = format!("CatalogFile = {}", stamp.catalog);
    for line in inx.lines() {
        if let Some(name) = is_section_header(line) {
            if in_version {
                close_version(&mut out, &mut wrote_driver_ver, &driver_ver, &mut wrote_catalog, &catalog);
            }
            in_version = name.eq_ignore_ascii_case("Version");
            saw_version |= in_version;
            out.push(line.to_string());
            continue;
        }
        match directive(line) {
            Some(key) if in_version && key.eq_ignore_ascii_case("DriverVer") => {
                out.push(driver_ver.clone());
                wrote_driver_ver = true;
            }
            Some(key) if in_version && key.eq_ignore_ascii_case("CatalogFile") => {
                out.push(catalog.clone());
                wrote_catalog = true;
            }
            _ => out.push(line.to_string()),
        }
    }
    if in_version {
        close_version(&mut out, &mut wrote_driver_ver, &driver_ver, &mut wrote_catalog, &catalog);
    }
    if !saw_version {
        bail!("the .inx has no [Version] section");
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

fn close_version(out: &mut Vec<String>, wrote_driver_ver: &mut bool, driver_ver: &str, wrote_catalog: &mut bool, catalog: &str) {
    // Insert before the blank lines that end the section.
    let at = out.iter().rposition(|l| !l.trim().is_empty()).map_or(out.len(), |i| i + 1);
    if !*wrote_catalog {
        out.insert(at, catalog.to_string());
        *wrote_catalog = true;
    }
    if !*wrote_driver_ver {
        out.insert(at, driver_ver.to_string());
        *wrote_driver_ver = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_stamp() -> Stamp {
        Stamp { arch: "amd64", date: (2026, 12, 3), version: [0, 1, 0, 0], catalog: "rspvscsi.cat".into() }
    }

    #[test]
    fn stamps_arch_driver_ver_and_catalog() {
        let inx = "[Version]\nSignature = \"$WINDOWS NT$\"\nCatalogFile = old.cat\nDriverVer =\n\n[Manufacturer]\n%M% = Models, NT$ARCH$.10.0...16299\n[Models.NT$ARCH$.10.0...16299]\n";
        let inf = stamp(inx, &sample_stamp()).unwrap();
        assert!(inf.contains("DriverVer   = 12/03/2026,0.1.0.0\n"), "{inf}");
        assert!(inf.contains("CatalogFile = rspvscsi.cat\n"), "{inf}");
        assert!(!inf.contains("old.cat"));
        assert!(inf.contains("Models, NTamd64.10.0...16299") && inf.contains("[Models.NTamd64.10.0...16299]"));
        assert!(!inf.contains("$ARCH$"));
        assert!(inf.contains("$WINDOWS NT$"), "only $ARCH$ is a stampinf variable");
    }

    #[test]
    fn adds_missing_directives_to_version_only() {
        let inx = "[Version]\nSignature = \"$WINDOWS NT$\"\n\n[Strings]\nDriverVer = not this one\n";
        let inf = stamp(inx, &sample_stamp()).unwrap();
        let version = inf.split("[Strings]").next().unwrap();
        assert!(version.contains("DriverVer   = 12/03/2026,0.1.0.0"), "{inf}");
        assert!(version.contains("CatalogFile = rspvscsi.cat"), "{inf}");
        assert!(inf.contains("DriverVer = not this one"), "other sections untouched");
        assert!(stamp("[Strings]\n", &sample_stamp()).is_err());
    }

    #[test]
    fn dates_and_versions() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_796_256_000), (2026, 12, 3));
        assert_eq!(four_part_version("0.1.0").unwrap(), [0, 1, 0, 0]);
        assert_eq!(four_part_version("1.2.3-beta").unwrap(), [1, 2, 3, 0]);
        assert!(four_part_version("1.2.3.4.5").is_err());
        assert!(four_part_version("1.70000").is_err());
    }
}
