//! Issue 17: what attestations cost per sync round, at 5 and 30 members. Every figure comes
//! from the code the node runs: notes signed with `attest::sign`, checked with `attest::check`
//! (the node's check for a new note), read with `attest::open` + `Attestation::parse` (all a
//! node spends on a note it holds already), and wire sizes from the encoded `Attestations`
//! answer beside the `Heads` answer every pull reads anyway.
//!
//! Per round, in a full mesh of N members, a node pulls from N − 1 peers. Its request names the
//! attested time of every note it holds, and a peer answers with newer notes only. In a quiet
//! round nothing is newer: the answers are empty. In the busiest round every other member
//! re-attested since the last one: each pull's summary question is answered "changed" with no
//! notes, then pulls ask with the times they hold one at a time (`sync::NotesTurn`), so the
//! first carries the N − 1 new notes and the others find them held (before: every answer
//! could carry all N − 1, read and dropped as copies). The node signs one note of its own.

use std::time::Instant;

use accord::attest::{check, open, sign, Attestation};
use accord::consortium::Consortium;
use accord::proto;
use prost::Message;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::{country, line, section};

const CODES: [&str; 30] = [
    "AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "IRL", "ITA", "LVA",
    "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE", "NOR", "ISL", "CHE",
];
/// Repetitions of each timed operation.
const REPS: u32 = 2_000;

pub fn run(_fx: &mut super::Fixture) {
    section("attestations (issue 17): overhead per sync round, full mesh");
    for n in [5usize, 10, 30, 100, 193] {
        members(n);
    }
}

/// `n` member codes: the EU and EFTA ones first, then ISO 3166 in order (SPEC §17: up to 193).
fn codes(n: usize) -> Vec<String> {
    let mut out: Vec<String> = CODES.iter().map(|c| c.to_string()).collect();
    for c in accord::model::Country::all_iso() {
        if !out.iter().any(|o| o == c.as_str()) {
            out.push(c.to_string());
        }
    }
    out.truncate(n);
    out
}

fn members(n: usize) {
    let codes = codes(n);
    let rng = SystemRandom::new();
    let keys: Vec<Ed25519KeyPair> = (0..n)
        .map(|_| {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key")
        })
        .collect();
    let mut toml = String::from(
        "name = \"bench\"\ntest_only = true\n[definitions]\nmin_duration_months = 12\nunknown_duration = \"count\"\n\
         [disclosure]\nmethod = \"threshold\"\nthreshold = 5\n[reconcile]\nrule = \"receiving\"\nasymmetry_flag = 0.2\n",
    );
    for (code, key) in codes.iter().zip(&keys) {
        toml.push_str(&format!(
            "[[members]]\ncountry = \"{code}\"\n[[members.keys]]\npublic_key = \"{}\"\nvalid_from = \"2020-01-01\"\n",
            accord::hex::encode(key.public_key().as_ref())
        ));
    }
    let consortium = Consortium::parse(std::path::Path::new("bench.toml"), &toml).expect("consortium");
    let now = accord::date::unix_now();
    // Every member holds every member's feed: N heads per note.
    let heads: Vec<_> = {
        let mut h: Vec<_> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (country(c), 40 + i as u64, [i as u8; 32]))
            .collect();
        h.sort_by_key(|(c, _, _)| *c);
        h
    };
    let notes: Vec<String> = codes
        .iter()
        .zip(&keys)
        .map(|(code, key)| {
            let a = Attestation {
                member: country(code),
                consortium_version: 3,
                consortium_digest: [9; 32],
                heads: heads.clone(),
                forks: Vec::new(),
                view: [7; 32],
                time: now,
            };
            sign(&a.text(), &Attestation::key_name(a.member), key).expect("sign")
        })
        .collect();
    let note_bytes = notes[0].len();
    let answer = proto::AttestationsResponse {
        notes: notes.clone(),
        summary: vec![0; 32],
        unchanged: false,
    }
    .encoded_len();
    let heads_answer = proto::HeadsResponse {
        heads: heads
            .iter()
            .map(|(p, s, d)| proto::Head {
                publisher: p.to_string(),
                seq: *s,
                digest: d.to_vec(),
            })
            .collect(),
        summary: vec![0; 32],
        unchanged: false,
    }
    .encoded_len();

    let text = open(&notes[0]).expect("open").0.to_string();
    let name = Attestation::key_name(country(&codes[0]));
    let started = Instant::now();
    for _ in 0..REPS {
        std::hint::black_box(sign(&text, &name, &keys[0]).expect("sign"));
    }
    let sign_us = started.elapsed().as_secs_f64() * 1e6 / REPS as f64;
    let started = Instant::now();
    for i in 0..REPS as usize {
        std::hint::black_box(check(&notes[i % n], &consortium).expect("check"));
    }
    let check_us = started.elapsed().as_secs_f64() * 1e6 / REPS as f64;
    let started = Instant::now();
    for i in 0..REPS as usize {
        let (t, _) = open(&notes[i % n]).expect("open");
        std::hint::black_box(Attestation::parse(t).expect("parse"));
    }
    let read_us = started.elapsed().as_secs_f64() * 1e6 / REPS as f64;

    let request = proto::AttestationsRequest {
        held: codes
            .iter()
            .map(|c| proto::AttestedAt {
                member: c.to_string(),
                time: now,
            })
            .collect(),
        known: Vec::new(),
    }
    .encoded_len();
    let peers = n - 1;
    let heads_round = peers * heads_answer;
    // Quiet (SPEC §17): each pull sends the two summaries it saw last and reads two short
    // answers saying nothing changed; before the summaries, every pull sent the held times and
    // read every head.
    let quiet_heads = proto::HeadsRequest { known: vec![0; 32] }.encoded_len()
        + proto::HeadsResponse {
            heads: Vec::new(),
            summary: vec![0; 32],
            unchanged: true,
        }
        .encoded_len();
    let quiet_notes = proto::AttestationsRequest {
        held: Vec::new(),
        known: vec![0; 32],
    }
    .encoded_len()
        + proto::AttestationsResponse {
            notes: Vec::new(),
            summary: vec![0; 32],
            unchanged: true,
        }
        .encoded_len();
    let quiet_bytes = peers * (quiet_heads + quiet_notes);
    let quiet_before = peers * request + heads_round;
    // Busiest: every peer's notes changed. Each pull asks whether they did (its summary), is
    // told so with no notes, and asks again with the times it holds; one at a time, so only
    // the first of those answers carries the N − 1 new notes.
    let new_answer = proto::AttestationsResponse {
        notes: notes[1..].to_vec(),
        summary: vec![0; 32],
        unchanged: false,
    }
    .encoded_len();
    let empty_answer = proto::AttestationsResponse {
        notes: Vec::new(),
        summary: vec![0; 32],
        unchanged: false,
    }
    .encoded_len();
    let changed_answer = proto::AttestationsResponse::default().encoded_len();
    let probe = proto::AttestationsRequest {
        held: Vec::new(),
        known: vec![0; 32],
    }
    .encoded_len();
    let busy_bytes = peers * (probe + changed_answer + request) + new_answer + (peers - 1) * empty_answer;
    // Before the turn and the empty "changed" answer: every probe's answer and every answer
    // to the times held could carry the N − 1 new notes.
    let busy_before = peers * (probe + new_answer + request + new_answer);
    let new_notes = n - 1;
    let busy_cpu_ms = (sign_us + new_notes as f64 * check_us) / 1000.0;
    line(&format!("{n} members: one note"), format!("{note_bytes} bytes"));
    line(
        &format!("{n} members: sign / check / read one note"),
        format!("{sign_us:.1} µs / {check_us:.1} µs / {read_us:.1} µs"),
    );
    line(
        &format!("{n} members: first contact (every note)"),
        format!("{answer} bytes per answer (a Heads answer: {heads_answer} bytes)"),
    );
    line(
        &format!("{n} members: quiet round, {peers} pulls"),
        format!(
            "{:.1} KiB sent and received ({} bytes per peer, whatever N), CPU: none but the two requests; before the summaries {:.1} KiB (held times out, every head back)",
            quiet_bytes as f64 / 1024.0,
            quiet_heads + quiet_notes,
            quiet_before as f64 / 1024.0
        ),
    );
    line(
        &format!("{n} members: busiest round, {peers} pulls"),
        format!(
            "{:.1} KiB ({:.1}x the Heads answers; before, up to {:.1} KiB), CPU {busy_cpu_ms:.2} ms (1 signed, {new_notes} checked, none read twice)",
            busy_bytes as f64 / 1024.0,
            busy_bytes as f64 / heads_round as f64,
            busy_before as f64 / 1024.0,
        ),
    );
    println!(
        "RESULT {}",
        serde_json::json!({
            "members": n, "note_bytes": note_bytes, "first_answer_bytes": answer, "heads_answer_bytes": heads_answer,
            "sign_us": sign_us, "check_us": check_us, "read_us": read_us, "request_bytes": request,
            "quiet_round_bytes": quiet_bytes, "quiet_round_bytes_before": quiet_before, "busy_round_bytes": busy_bytes, "busy_round_cpu_ms": busy_cpu_ms
        })
    );
}
