//! Compiles `proto/` (at the workspace root) into Rust with prost, using protox so no system
//! `protoc` is needed. Besides the messages it emits, per service, a `<service>_paths` module of
//! method path constants ("/runner.v1.RunnerService/FetchTask"), so the RPC names the client
//! sends come from the same `.proto` files as the messages.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Emits one `pub const` per method with the method's wire path.
struct PathConstants;

impl prost_build::ServiceGenerator for PathConstants {
    fn generate(&mut self, service: prost_build::Service, buf: &mut String) {
        let module = format!("{}_paths", to_snake(&service.name));
        let _ = writeln!(
            buf,
            "/// Wire paths of `{}.{}`'s methods, relative to the server's RPC mount point.",
            service.package, service.proto_name
        );
        let _ = writeln!(buf, "pub mod {module} {{");
        for method in &service.methods {
            let _ = writeln!(
                buf,
                "    /// `{0}`\n    pub const {1}: &str = \"/{2}.{3}/{0}\";",
                method.proto_name,
                method.name.to_uppercase(),
                service.package,
                service.proto_name
            );
        }
        let _ = writeln!(buf, "}}");
    }
}

fn to_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let files = [
        "ping/v1/messages.proto",
        "ping/v1/services.proto",
        "runner/v1/messages.proto",
        "runner/v1/services.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }
    let descriptors = protox::compile(files, [&proto_root])?;
    prost_build::Config::new()
        .service_generator(Box::new(PathConstants))
        .compile_fds(descriptors)?;
    Ok(())
}
