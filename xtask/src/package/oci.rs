//! `tcpwhy-<version>-oci.tar`: an OCI image archive (an image layout in a tar, what `skopeo copy
//! oci-archive:` and `podman load` read) for deploy/kubernetes/daemonset.yaml. Built with umoci,
//! without a container daemon. Minimal: one layer holding the binary and the shared libraries it
//! loads, nothing else.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Result;

use super::{VERSION, cleared};
use crate::{
    rootfs::{install, shared_libraries},
    run::checked,
};

pub fn build(binary: &Path, out: &Path) -> Result<PathBuf> {
    // umoci creates the layout and the bundle directories itself.
    let layout = cleared(out, "oci-layout")?;
    let bundle = cleared(out, "oci-bundle")?;
    let image = format!("{}:{VERSION}", layout.display());
    let umoci = |what: &str, args: &[&str], path: &Path| {
        checked(
            what,
            Command::new("umoci")
                .args(args)
                .args(["--image", &image])
                .arg(path),
        )
    };
    checked(
        "creating the OCI layout",
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    )?;
    checked(
        "creating the image",
        Command::new("umoci").args(["new", "--image", &image]),
    )?;
    umoci("unpacking the empty image", &["unpack"], &bundle)?;
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("usr/bin"))?;
    fs::copy(binary, rootfs.join("usr/bin/tcpwhy"))?;
    for library in shared_libraries(binary)? {
        install(&rootfs, &library)?;
    }
    umoci("adding the binary layer", &["repack"], &bundle)?;
    checked(
        "configuring the image",
        Command::new("umoci").args([
            "config",
            "--image",
            &image,
            "--config.entrypoint=/usr/bin/tcpwhy",
            "--config.cmd=daemon",
            "--config.user=0:0",
            "--os=linux",
            "--architecture=amd64",
            &format!("--config.label=org.opencontainers.image.version={VERSION}"),
            "--config.label=org.opencontainers.image.title=tcpwhy",
        ]),
    )?;
    checked(
        "dropping the image's superseded blobs",
        Command::new("umoci").args(["gc", "--layout"]).arg(&layout),
    )?;
    let archive = out.join(format!("tcpwhy-{VERSION}-oci.tar"));
    checked(
        "archiving the OCI image",
        Command::new("tar")
            .arg("--create")
            .arg("--file")
            .arg(&archive)
            .arg("--directory")
            .arg(&layout)
            .arg("."),
    )?;
    Ok(archive)
}
