//! Compiles `proto/apache/rocketmq/v2/*.proto` (apache/rocketmq-apis) with a pure-Rust
//! protobuf compiler (protox), so no `protoc` is needed on any machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files =
        ["proto/apache/rocketmq/v2/service.proto", "proto/apache/rocketmq/v2/definition.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    // Message bodies as `bytes::Bytes`: a send hands the decoded body to the shard and a
    // receive hands the stored record's body to the encoder without copying either.
    tonic_prost_build::configure()
        .bytes(".apache.rocketmq.v2.Message.body")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
