//! The linker's map file (`/MAP`), in the format link.exe writes and lld-link imitates: which
//! symbol sits at which address, and which library and object file it came from.

/// One public or static symbol of the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// The (possibly mangled) name.
    pub name: String,
    /// Its RVA in the image.
    pub rva: u64,
    /// `Lib:Object` as the map gives it: `lib.rlib:obj.o`, `obj.o`, or `lib:dll` for an import.
    pub object: String,
}

/// A parsed map.
#[derive(Clone, Debug, Default)]
pub struct Map {
    /// The preferred load address.
    pub base: u64,
    /// Publics and static symbols, in file order.
    pub symbols: Vec<Symbol>,
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok()
}

impl Map {
    /// Reads a map. Lines that are not symbol lines are skipped.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut map = Self::default();
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(rest) = trimmed.strip_prefix("Preferred load address is") {
                map.base = hex(rest.trim()).unwrap_or(0);
                continue;
            }
            let tokens: Vec<&str> = trimmed.split_whitespace().collect();
            // "0001:00001380  DriverEntry  0000000180002380  [f] [i]  lib:object"
            let [section_offset, name, rva_base, .., object] = tokens.as_slice() else { continue };
            let Some((section, offset)) = section_offset.split_once(':') else { continue };
            if hex(section).is_none() || hex(offset).is_none() || rva_base.len() < 8 {
                continue;
            }
            let Some(address) = hex(rva_base) else { continue };
            let rva = address.wrapping_sub(map.base);
            map.symbols.push(Symbol { name: (*name).to_string(), rva, object: (*object).to_string() });
        }
        map
    }

    /// The first symbol whose name contains every one of `parts`.
    #[must_use]
    pub fn find(&self, parts: &[&str]) -> Option<&Symbol> {
        self.symbols.iter().find(|s| parts.iter().all(|p| s.name.contains(p)))
    }

    /// Symbols defined by code or data linked in (not import thunks or `__imp_` slots).
    pub fn linked_in(&self) -> impl Iterator<Item = &Symbol> {
        self.symbols.iter().filter(|s| !s.name.starts_with("__imp_") && !is_import_object(&s.object))
    }
}

/// An import library member (`libscsiport_sys-…:scsiport.sys`): the object half names a DLL.
#[must_use]
pub fn is_import_object(object: &str) -> bool {
    let member = object.rsplit(':').next().unwrap_or(object).to_ascii_lowercase();
    [".sys", ".dll", ".exe"].iter().any(|ext| member.ends_with(ext))
}

/// The crate an object file of a map came from: `core` for `libcore-<hash>.rlib(...)` or
/// `libcore-<hash>:core-<hash>.o`, `rspvscsi` for `rspvscsi.rspvscsi.<hash>-cgu.0.rcgu.o`.
#[must_use]
pub fn crate_of(object: &str) -> String {
    let file = object.split([':', '(']).next().unwrap_or(object);
    let file = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem = file.strip_prefix("lib").unwrap_or(file);
    let name = stem.split(['-', '.']).next().unwrap_or(stem);
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = " rspvscsi

 Preferred load address is 0000000180000000

  Address         Publics by Value              Rva+Base               Lib:Object

 0001:00001380       DriverEntry                0000000180002380     rspvscsi.rspvscsi.a11b2c8a2121c5d9-cgu.0.rcgu.o
 0002:00000570       __imp_ScsiPortFreeDeviceBase 0000000180005570     libscsiport_sys-f2a9d8c41d00b352:scsiport.sys

 entry point at         0001:00001380

 Static symbols

 0001:00002220       _RINvNtCs5_8scsiport8miniport12hw_interruptNtB_7AdapterEBS_ 0000000180003220     rspvscsi.rspvscsi.a11b2c8a2121c5d9-cgu.0.rcgu.o
 0001:00003000       memcpy 0000000180004000 f   libcompiler_builtins-267e3e340a7336df.rlib:compiler_builtins-267e.o
";

    #[test]
    fn parses_lld_maps() {
        let map = Map::parse(SAMPLE);
        assert_eq!(map.base, 0x1_8000_0000);
        assert_eq!(map.symbols.len(), 4);
        assert_eq!(map.find(&["DriverEntry"]).map(|s| s.rva), Some(0x2380));
        assert_eq!(map.find(&["hw_interrupt"]).map(|s| s.rva), Some(0x3220));
        let memcpy = map.find(&["memcpy"]).unwrap();
        assert_eq!(memcpy.rva, 0x4000);
        assert_eq!(crate_of(&memcpy.object), "compiler_builtins");
        assert_eq!(map.linked_in().count(), 3);
        assert!(is_import_object("libscsiport_sys-f2a9d8c41d00b352:scsiport.sys"));
        assert_eq!(crate_of("rspvscsi.rspvscsi.a11b2c8a2121c5d9-cgu.0.rcgu.o"), "rspvscsi");
        assert_eq!(crate_of("libcore-c551f8a273d5a4a1.rlib(core-c55.o)"), "core");
    }
}
