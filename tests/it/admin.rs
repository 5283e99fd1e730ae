//! The admin socket of a running node (in-process daemon, real Unix socket): a file's records
//! are stored only once the CLI marks the file complete, so a CLI that dies mid-file leaves the
//! store as it was; a view arrives whole, in chunks; and the typed operations through the
//! socket (`admin::Remote`) give what the node gives in process.

use accord::admin;
use accord::cluster::full_mesh;
use accord::model::{Country, Cube, Period};
use accord::node::Operations;
use accord::proto;
use accord::reconcile::{Format, ViewFilter};
use accord::report;

use crate::support::cluster::{countries, start_cluster, synthetic_records};
use crate::support::last_year;

fn batches(records: &[accord::record::Record], end_after_last: bool) -> Vec<proto::IngestBatch> {
    let mut out: Vec<proto::IngestBatch> = records
        .chunks(500)
        .map(|chunk| proto::IngestBatch {
            records: chunk.iter().map(admin::to_message).collect(),
            end: false,
        })
        .collect();
    if end_after_last {
        out.push(proto::IngestBatch {
            records: Vec::new(),
            end: true,
        });
    }
    out
}

fn stored(node: &accord::node::Node) -> u64 {
    node.record_counts().expect("record counts").values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cut_off_mid_stream_stores_nothing_and_a_complete_one_stores_all() {
    let cluster = start_cluster(&["DEU", "FRA"], full_mesh, 3600).await;
    let node = cluster.running(0).clone();
    let socket = node.config().admin_socket();
    let mut client = None;
    for _ in 0..100 {
        client = admin::connect(&socket).await;
        if client.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut client = client.expect("admin socket of the running node");
    let deu = Country::parse("DEU").expect("DEU");
    let records = synthetic_records(deu, &countries(&["FRA"]), last_year(), 3000, 9);

    // Six batches of the file, then the sender goes away without marking the end.
    let cut = client
        .ingest(tokio_stream::iter(batches(&records, false)))
        .await
        .expect_err("a stream without its end is refused");
    assert!(cut.message().contains("nothing was stored"), "{cut:?}");
    assert_eq!(stored(&node), 0, "a file cut off mid-stream leaves the store as it was");

    let reply = client
        .ingest(tokio_stream::iter(batches(&records, true)))
        .await
        .expect("a complete file is stored")
        .into_inner();
    assert_eq!(reply.stored, 3000);
    assert_eq!(stored(&node), 3000);

    // The view through the socket equals the node's own rendering, however many chunks it took.
    node.publish(Cube::Flows, Period::Year(last_year()), Vec::new())
        .expect("publish");
    let mut chunks = client
        .view(proto::ViewRequest {
            format: "csv".into(),
            ..Default::default()
        })
        .await
        .expect("view")
        .into_inner();
    let mut text = Vec::new();
    let mut count = 0;
    while let Some(chunk) = chunks.message().await.expect("chunk") {
        assert!(chunk.text.len() <= admin::VIEW_CHUNK_BYTES);
        assert!(chunk.left_out.is_empty());
        text.extend_from_slice(&chunk.text);
        count += 1;
    }
    let expected = accord::reconcile::render(&node.view().expect("view"), &ViewFilter::default(), Format::Csv);
    assert!(count >= 1);
    assert_eq!(String::from_utf8(text).expect("UTF-8"), expected);

    // The typed operations through the socket give what the node gives in process.
    let (remote_status, remote_view) = tokio::task::spawn_blocking(move || {
        let remote = admin::Remote::connect(&socket)
            .expect("runtime")
            .expect("a node runs there");
        assert!(remote.through_daemon());
        let status = remote.status().expect("status through the socket");
        let mut csv = Vec::new();
        let left_out = remote
            .view(ViewFilter::default(), Format::Csv, &mut |bytes| {
                csv.extend_from_slice(bytes)
            })
            .expect("view through the socket");
        assert!(left_out.is_empty());
        (status, csv)
    })
    .await
    .expect("remote operations");
    let local_status = node.status().expect("status");
    assert_eq!(report::status_json(&remote_status), report::status_json(&local_status));
    assert_eq!(String::from_utf8(remote_view).expect("UTF-8"), expected);
    drop(node);
    cluster.shutdown().await;
}
