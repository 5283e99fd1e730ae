//! Sharing agreements across real nodes (SPEC §11): a bilateral agreement keeps a cube's
//! payload between its parties, through relays, until it ends.

use accord::model::{Cube, Period};
use accord::node::PublishRequest;

use crate::support::cluster::{cluster_options, ingest_synthetic, publish_and_announce, start_cluster_with};
use crate::support::{eventually, last_year};

/// When the DEU-FRA agreement of the sharing test ends: set once, before the cluster starts.
static AGREEMENT_UNTIL: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// Genesis with `[sharing] default = "agreements"` and one bilateral agreement: DEU and FRA share
/// `flows` from a day ago until `AGREEMENT_UNTIL`.
fn with_agreement(text: &str) -> String {
    let until = *AGREEMENT_UNTIL.get().expect("set before the cluster starts");
    let from = accord::date::format_timestamp(until - 86_400);
    let until = accord::date::format_timestamp(until);
    let first_member = text.find("\n[[members]]").expect("members");
    format!(
        "{}\n[sharing]\ndefault = \"agreements\"\n\n[[agreements]]\nname = \"DEU-FRA flows\"\nparties = [\"DEU\", \"FRA\"]\ncubes = [\"flows\"]\nfrom = \"{from}\"\nuntil = \"{until}\"\n{}",
        &text[..first_member],
        &text[first_member..]
    )
}

/// A bilateral agreement (SPEC §11) in a line DEU - FRA - ITA, where everything ITA gets from
/// DEU passes through FRA: DEU's flows reach FRA with their payload and ITA as signed headers
/// only, even through the relay and even when DEU signs an entry for everyone by hand; a cube or
/// an audience outside the agreement is refused at publish; once the agreement has ended, DEU's
/// new entries stop reaching FRA, and FRA keeps what it received before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bilateral_agreement_keeps_the_payload_between_its_parties_until_it_ends() {
    // Long enough for the cluster to start and DEU to publish on a loaded machine.
    let until = *AGREEMENT_UNTIL.get_or_init(|| accord::date::unix_now() + 25);
    let cluster = start_cluster_with(accord::cluster::ClusterOptions {
        consortium_edit: Some(std::sync::Arc::new(with_agreement)),
        ..cluster_options(&["DEU", "FRA", "ITA"], accord::cluster::line, 1)
    })
    .await;
    let (deu_code, fra_code, ita_code) = (
        accord::model::Country::parse("DEU").unwrap(),
        accord::model::Country::parse("FRA").unwrap(),
        accord::model::Country::parse("ITA").unwrap(),
    );
    let period = Period::Year(last_year());
    let deu = cluster.running(0);
    ingest_synthetic(deu, last_year(), 300, 4);

    // Refused at publish: a cube no agreement covers, an audience wider than the agreement.
    let asylum = deu
        .publish(PublishRequest::new(Cube::Asylum, period))
        .unwrap_err()
        .to_string();
    assert!(
        asylum.contains("no sharing agreement in force lets DEU share asylum"),
        "{asylum}"
    );
    let wider = deu
        .publish(PublishRequest::new(Cube::Flows, period).to(vec![ita_code]))
        .unwrap_err()
        .to_string();
    assert!(
        wider.contains("audience ITA is wider than the sharing agreements"),
        "{wider}"
    );

    let published = publish_and_announce(deu, Cube::Flows, period, &[]).await;
    let held = |i: usize, seq: u64| {
        cluster
            .running(i)
            .entry(deu_code, seq)
            .expect("read")
            .map(|e| e.has_payload)
    };
    eventually("DEU's flows at FRA whole and at ITA as a header", || {
        match (held(1, published.seq), held(2, published.seq)) {
            (Some(true), Some(false)) => Ok(()),
            other => Err(format!("FRA, ITA: {other:?}")),
        }
    })
    .await;
    let header = accord::dataset::EntryHeader::decode(
        &cluster
            .running(1)
            .entry(deu_code, 1)
            .unwrap()
            .unwrap()
            .envelope
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(
        header.audience,
        vec![fra_code],
        "the agreement's parties became the audience"
    );

    // DEU signs an entry for every member by hand, past the rules: FRA takes the payload (it is
    // a party), ITA is never given it, and would not keep it if offered directly.
    let head = deu
        .heads()
        .unwrap()
        .into_iter()
        .find(|(p, _)| *p == deu_code)
        .unwrap()
        .1;
    let key = std::fs::read(cluster.pki.join("deu.sign.pk8")).expect("key");
    let key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key).expect("key");
    let dataset = deu.current_datasets().unwrap()[0].dataset.clone();
    let for_everyone = accord::dataset::publish::sign_entry(
        &dataset,
        accord::dataset::publish::EntryParams {
            head: Some(head),
            created_at: accord::date::unix_now(),
            audience: Vec::new(),
            key: &key,
        },
    );
    let offered = cluster
        .running(2)
        .accept(for_everyone.clone())
        .expect("a valid entry is taken");
    assert_eq!(offered.1, accord::dataset::Placement::Append);
    assert_eq!(held(2, head.seq + 1), Some(false), "ITA keeps the header only");
    cluster.running(1).accept(for_everyone).expect("FRA takes it");
    assert_eq!(held(1, head.seq + 1), Some(true));

    // After the agreement ends, DEU's new entries reach nobody: publishing is refused.
    while accord::date::unix_now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let ended = deu
        .publish(PublishRequest::new(Cube::Flows, period))
        .unwrap_err()
        .to_string();
    assert!(
        ended.contains("no sharing agreement in force lets DEU share flows"),
        "{ended}"
    );
    let forced = deu
        .publish(PublishRequest::new(Cube::Flows, period).to(vec![fra_code]))
        .unwrap_err()
        .to_string();
    assert!(forced.contains("no sharing agreement in force"), "{forced}");
    assert_eq!(
        held(1, published.seq),
        Some(true),
        "FRA keeps what it received under the agreement"
    );
    cluster.shutdown().await;
}
