//! Compiles `proto/` with protox (pure Rust), so building Accord needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = [
        "proto/accord/v1/dataset.proto",
        "proto/accord/v1/exchange.proto",
        "proto/accord/v1/admin.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
