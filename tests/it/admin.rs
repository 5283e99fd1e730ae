//! The admin socket of a running node (in-process daemon, real Unix socket): a file's records
//! are stored only once the CLI marks the file complete, so a CLI that dies mid-file leaves the
//! store as it was; a view arrives whole, in chunks; and the typed operations through the
//! socket (`admin::Remote`) give what the node gives in process.

use accord::admin;
use accord::cluster::full_mesh;
use accord::model::{Country, Cube, Period};
use accord::node::{Operations, PublishRequest};
use accord::proto;
use accord::reconcile::{Format, ViewFilter};
use accord::report;

use crate::support::cluster::{countries, start_cluster, synthetic_records};
use crate::support::{eventually, last_year};

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
    node.publish(PublishRequest::new(Cube::Flows, Period::Year(last_year())))
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
            .view(ViewFilter::default(), Format::Csv, None, &mut |bytes| {
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

/// Every operation of `Operations`, in process (`Local` over the running node) and through the
/// node's admin socket (`admin::Remote`), on the same node in the same state: the typed results
/// agree. Ingest and publish change the state, so each runs in process first and then through
/// the socket, and the second result is what the first predicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_gives_the_same_typed_result_in_process_and_through_the_socket() {
    let cluster = start_cluster(&["DEU", "FRA"], full_mesh, 3600).await;
    let node = cluster.running(0).clone();
    let socket = node.config().admin_socket();
    let dir = tempfile::tempdir().expect("temporary directory");
    let deu = Country::parse("DEU").expect("DEU");
    let file = dir.path().join("deu.csv");
    let mut writer = accord::reader::CsvRecordWriter::create(&file).expect("records file");
    for r in synthetic_records(deu, &countries(&["FRA"]), last_year(), 2_000, 17) {
        writer.write(&r).expect("write a record");
    }
    writer.finish().expect("records file");
    let out = dir.path().to_path_buf();

    tokio::task::spawn_blocking(move || {
        let mut remote = None;
        for _ in 0..100 {
            remote = admin::Remote::connect(&socket).expect("runtime");
            if remote.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let remote = remote.expect("the node's admin socket");
        let local = accord::node::Local::over(node.clone()).expect("runtime");
        assert!(remote.through_daemon() && !local.through_daemon());
        let ops: [(&str, &dyn Operations); 2] = [("in process", &local), ("through the socket", &remote)];
        let ctx = || accord::record::validate::ValidationContext::for_today(deu);

        // Ingest: the first run stores the file, every later one replaces each record.
        let first = local.ingest(&file, ctx(), false, &mut |_| {}).expect("ingest");
        assert_eq!(
            (first.outcome.stored, first.outcome.replaced, first.rejected),
            (2_000, 0, 0)
        );
        let again: Vec<_> = ops
            .iter()
            .map(|(how, op)| {
                op.ingest(&file, ctx(), false, &mut |_| {})
                    .unwrap_or_else(|e| panic!("ingest {how}: {e}"))
            })
            .collect();
        assert_eq!(again[0], again[1]);
        assert_eq!((again[1].outcome.stored, again[1].outcome.replaced), (2_000, 2_000));

        // Publish: the same cube and period twice; the second is the next entry of the feed,
        // with the same figures.
        let year = Period::Year(last_year());
        let published: Vec<_> = ops
            .iter()
            .map(|(how, op)| {
                op.publish(PublishRequest::new(Cube::Flows, year))
                    .unwrap_or_else(|e| panic!("publish {how}: {e}"))
            })
            .collect();
        assert_eq!(published[1].seq, published[0].seq + 1);
        let figures =
            |p: &accord::node::Published| (p.publisher, p.cube, p.period, p.cells, p.confidential, p.suppressed);
        assert_eq!(figures(&published[0]), figures(&published[1]));

        // The rest leave the state as it is: the same results both ways.
        let sync: Vec<_> = ops
            .iter()
            .map(|(how, op)| op.sync().unwrap_or_else(|e| panic!("sync {how}: {e}")))
            .collect();
        assert_eq!(sync[0], sync[1]);
        let views: Vec<_> = ops
            .iter()
            .map(|(how, op)| {
                let mut csv = Vec::new();
                let left_out = op
                    .view(ViewFilter::default(), Format::Csv, None, &mut |b| {
                        csv.extend_from_slice(b)
                    })
                    .unwrap_or_else(|e| panic!("view {how}: {e}"));
                (csv, left_out)
            })
            .collect();
        assert_eq!(views[0], views[1]);
        assert!(!views[0].0.is_empty());
        let status: Vec<_> = ops
            .iter()
            .map(|(how, op)| {
                let mut status = op.status().unwrap_or_else(|e| panic!("status {how}: {e}"));
                // The store's size on disk moves as sled flushes in the background, between
                // the two calls; everything else must be the same.
                assert!(status.store_bytes > 0, "{how}");
                status.store_bytes = 0;
                report::status_json(&status)
            })
            .collect();
        assert_eq!(status[0], status[1]);
        let exports: Vec<_> = ops
            .iter()
            .map(|(how, op)| {
                op.export(deu, published[1].seq)
                    .unwrap_or_else(|e| panic!("export {how}: {e}"))
            })
            .collect();
        assert_eq!(exports[0], exports[1]);
        let checks: Vec<_> = ops
            .iter()
            .map(|(how, op)| op.check(&mut |_| {}).unwrap_or_else(|e| panic!("check {how}: {e}")))
            .collect();
        assert_eq!(checks[0], checks[1]);
        assert!(checks[0].differences.is_empty() && checks[0].records == 2_000);
        let consortium: Vec<_> = ops
            .iter()
            .map(|(how, op)| op.consortium(None).unwrap_or_else(|e| panic!("consortium {how}: {e}")))
            .collect();
        assert_eq!(consortium[0], consortium[1]);
        let backups: Vec<_> = ops
            .iter()
            .enumerate()
            .map(|(i, (how, op))| {
                op.backup(&out.join(format!("backup-{i}")))
                    .unwrap_or_else(|e| panic!("backup {how}: {e}"))
            })
            .collect();
        assert_eq!(backups[0].keys, backups[1].keys);
        let certified: Vec<_> = ops
            .iter()
            .enumerate()
            .map(|(i, (how, op))| {
                let c = op
                    .certify(&out.join(format!("bundle-{i}")))
                    .unwrap_or_else(|e| panic!("certify {how}: {e}"));
                (c.view_digest, c.attested_by)
            })
            .collect();
        assert_eq!(certified[0], certified[1]);

        // Governance: a proposal in process, the same document again through the socket is
        // refused the same way as in process; an approval of an unknown version likewise.
        let current = consortium[0].document.clone();
        let refusals: Vec<_> = ops
            .iter()
            .map(|(_, op)| {
                let proposal = op.propose(&current).expect_err("the document in force again");
                let approval = op.approve(99, [0; 32]).expect_err("no version 99");
                (proposal.to_string(), approval.to_string())
            })
            .collect();
        assert_eq!(refusals[0], refusals[1]);
        drop(local);
    })
    .await
    .expect("operations");
    cluster.shutdown().await;
}

/// A client that goes away mid-file (its call dropped, the connection gone) leaves nothing
/// behind: the rows staged so far are dropped from `data_dir/staging/` and nothing is stored,
/// however often it does so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_file_leaves_no_staged_rows() {
    let cluster = start_cluster(&["DEU", "FRA"], full_mesh, 3600).await;
    let node = cluster.running(0).clone();
    let socket = node.config().admin_socket();
    let staging = node.config().data_dir.join("staging");
    let files = move || std::fs::read_dir(&staging).map_or(0, |d| d.count());
    let deu = Country::parse("DEU").expect("DEU");
    let records = synthetic_records(deu, &countries(&["FRA"]), last_year(), 3000, 11);
    for _ in 0..3 {
        let mut client = None;
        for _ in 0..100 {
            client = admin::connect(&socket).await;
            if client.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let mut client = client.expect("admin socket of the running node");
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let call = tokio::spawn(async move { client.ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
        for batch in batches(&records, false).into_iter().take(4) {
            tx.send(batch).await.expect("the node reads the stream");
        }
        let staged = files.clone();
        eventually("the node stages the batches sent", || {
            (staged() == 1)
                .then_some(())
                .ok_or_else(|| format!("{} staging files", staged()))
        })
        .await;
        // The client goes away without closing its stream: the call and its connection dropped.
        call.abort();
        let _ = call.await;
        drop(tx);
        let staged = files.clone();
        eventually("the staged rows are dropped", || {
            (staged() == 0)
                .then_some(())
                .ok_or_else(|| format!("{} staging files", staged()))
        })
        .await;
        assert_eq!(stored(&node), 0, "nothing of the cut file is stored");
    }
    drop(node);
    cluster.shutdown().await;
}
