//! The Windows packaging flow, which nothing here can run (it needs the WDK on a Windows host):
//! `Makefile.toml`'s `package-storport` must take the steps wdk-build's `package-driver` takes for
//! `rspvscsi.sys` (rust-driver-makefile.toml: stampinf, infverif, inf2cat, signtool on the image
//! and on the catalog), with the arguments of a WDM driver, and the Windows workflow must run it
//! and hold its image to Storport's import rules. Without this, the Storport package came out
//! unsigned and without a catalog, which `pnputil /add-driver` refuses on x64.

use std::path::Path;

fn read(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The `script = '''…'''` of `[tasks.NAME]`.
fn task_script(makefile: &str, name: &str) -> String {
    let header = format!("[tasks.{name}]");
    let start = makefile.find(&header).unwrap_or_else(|| panic!("no {header}"));
    let rest = &makefile[start + header.len()..];
    let section = rest.find("\n[").map_or(rest, |end| &rest[..end]);
    let open = section.find("script = '''").unwrap_or_else(|| panic!("{header} has no script")) + "script = '''".len();
    let close = section[open..].find("'''").unwrap_or_else(|| panic!("{header}'s script is not closed"));
    section[open..open + close].to_string()
}

/// The `run("tool", &[...])` calls of a script, in order, as (tool, argument text).
fn tool_runs(script: &str) -> Vec<(String, String)> {
    script
        .match_indices("run(\"")
        .map(|(at, _)| {
            let after = &script[at + "run(\"".len()..];
            let tool = after[..after.find('"').expect("tool name")].to_string();
            let line = &after[..after.find('\n').unwrap_or(after.len())];
            (tool, line.to_string())
        })
        .collect()
}

#[test]
fn the_storport_package_is_stamped_verified_catalogued_and_signed_like_the_base_flow() {
    let makefile = read("Makefile.toml");
    let script = task_script(&makefile, "package-storport");
    let runs = tool_runs(&script);
    let tools: Vec<&str> = runs.iter().map(|(t, _)| t.as_str()).collect();
    // `sign` is a closure over `run("signtool", ...)`: one definition, called for the image before
    // inf2cat (the catalog hashes the signed image) and for the catalog after it.
    assert_eq!(tools, ["stampinf", "infverif", "signtool", "inf2cat"], "the WDK tools package-storport runs");
    let stampinf = &runs[0].1;
    assert!(stampinf.contains("\"-c\", \"rspvscsi_storport.cat\""), "stampinf names the catalog: {stampinf}");
    assert!(
        !stampinf.contains("\"-u\"") && !stampinf.contains("\"-k\""),
        "a WDM driver's INF depends on no UMDF or KMDF version: {stampinf}"
    );
    assert!(runs[1].1.contains("\"/w\""), "infverif checks the INF as a Windows driver (/w), as the base flow does");
    assert!(runs[3].1.contains("/os:10_X64"), "inf2cat for x64 Windows 10: {}", runs[3].1);
    let sign_sys = script.find("sign(&sys)").expect("the image is signed");
    let inf2cat = script.find("run(\"inf2cat\"").expect("inf2cat runs");
    let sign_cat = script.find("rspvscsi_storport.cat\"))").expect("the catalog is signed");
    assert!(sign_sys < inf2cat && inf2cat < sign_cat, "sign the image, then make the catalog, then sign it");
    assert!(script.contains("WDRLocalTestCert.cer"), "the certificate goes into the package");
    let deps = &makefile[makefile.find("[tasks.package-storport]").unwrap()..];
    let deps = &deps[..deps.find("script").unwrap()];
    assert!(deps.contains("\"build-storport\""), "package-storport builds the Storport image first");
}

#[test]
fn the_windows_workflow_packages_and_checks_the_storport_image() {
    let workflow = read(".github/workflows/windows.yml");
    assert!(workflow.contains("cargo make package-storport --locked --profile release"), "the workflow runs package-storport");
    let check = workflow.find("rspvscsi_storport_package/rspvscsi_storport.sys").expect("the workflow checks the Storport image");
    let step = &workflow[check..];
    let step = &step[..step.find("\n\n").unwrap_or(step.len())];
    assert!(step.contains("--port storport"), "the Storport image is held to Storport's import rules:\n{step}");
    assert!(workflow.contains("path: target/${{ env.TARGET }}/release/rspvscsi_storport_package"), "its package is uploaded");
}
