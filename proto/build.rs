//! Compiles `switchboard/v1/*.proto` with protox, a pure-Rust protobuf compiler, so building needs no protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["switchboard/v1/switchboard.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["."])?;
    // Rules live in a KV bucket as JSON, so operators can read and edit them with the `nats` CLI too.
    tonic_prost_build::configure()
        .type_attribute(
            "switchboard.v1.Rule",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
