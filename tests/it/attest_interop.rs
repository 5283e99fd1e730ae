//! A signed note Accord writes is checked by tools nobody here wrote (SPEC §12): openssl
//! verifies its Ed25519 signature over the note text (`pkeyutl -verify -rawin`), and openssl's
//! SHA-256 recomputes its C2SP key hash.

use std::process::Command;

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};

fn openssl(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl")
}

#[test]
fn openssl_verifies_a_note_accord_signed_and_recomputes_its_key_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("key");
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
    let public: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
    let name = "accord.member/DEU";
    let text = "accord-attestation/1\nview 5171b3f493a8ef3fc251b65b791cea588dfbd2fec8130440d753bb4cc0906397\n";
    let note = accord::attest::sign(text, name, &key).expect("sign");

    let (body, signatures) = accord::attest::open(&note).expect("open");
    assert_eq!(body, text);
    let signature = &signatures[0];
    std::fs::write(dir.path().join("text"), body).unwrap();
    std::fs::write(dir.path().join("sig"), &signature.signature).unwrap();
    let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    spki.extend_from_slice(&public);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&spki)
    );
    std::fs::write(dir.path().join("pub.pem"), pem).unwrap();
    let verify = |file: &str| {
        openssl(
            dir.path(),
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", file, "-sigfile", "sig",
            ],
        )
    };
    let ok = verify("text");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Signature Verified Successfully"));
    std::fs::write(dir.path().join("changed"), body.replace("view 5", "view 6")).unwrap();
    assert!(!verify("changed").status.success(), "openssl refuses a changed text");

    // Key hash: SHA-256(name || "\n" || 0x01 || public key), first four bytes.
    let mut input = name.as_bytes().to_vec();
    input.extend_from_slice(b"\n\x01");
    input.extend_from_slice(&public);
    std::fs::write(dir.path().join("keyid-input"), &input).unwrap();
    let dgst = openssl(dir.path(), &["dgst", "-sha256", "-binary", "keyid-input"]);
    assert!(dgst.status.success());
    assert_eq!(&dgst.stdout[..4], &signature.key_hash[..]);
    assert_eq!(
        accord::attest::verifier_key(name, &public).split('+').nth(1).unwrap(),
        accord::hex::encode(&dgst.stdout[..4])
    );
}
