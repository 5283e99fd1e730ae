//! Signed notes against the reference vector of Go's `golang.org/x/mod/sumdb/note` and against
//! hostile inputs.

use ring::signature::{Ed25519KeyPair, KeyPair};

use super::*;

const TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";

/// The example key of the Go package's documentation: `PRIVATE+KEY+PeterNeumann+c74f20a3+...`.
fn peter() -> Ed25519KeyPair {
    let skey = BASE64.decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap();
    assert_eq!(skey[0], ED25519_ALG);
    Ed25519KeyPair::from_seed_unchecked(&skey[1..]).unwrap()
}

fn public(key: &Ed25519KeyPair) -> [u8; 32] {
    key.public_key().as_ref().try_into().unwrap()
}

#[test]
fn the_reference_vector_signs_and_verifies_byte_for_byte() {
    let key = peter();
    assert_eq!(
        verifier_key("PeterNeumann", &public(&key)),
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    );
    let note = sign(TEXT, "PeterNeumann", &key).unwrap();
    assert_eq!(
        note,
        format!("{TEXT}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
    );
    let (text, signatures) = open(&note).unwrap();
    assert_eq!(text, TEXT);
    assert_eq!(signatures.len(), 1);
    assert!(verify(text, &signatures[0], "PeterNeumann", &public(&key)));
}

#[test]
fn tampered_notes_and_wrong_keys_do_not_verify() {
    let key = peter();
    let other = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let note = sign(TEXT, "PeterNeumann", &key).unwrap();
    let (text, sigs) = open(&note).unwrap();
    assert!(!verify(text, &sigs[0], "PeterNeumann", &public(&other)), "another key");
    assert!(!verify(text, &sigs[0], "Peter", &public(&key)), "another name");
    let changed = note.replacen("cryptography", "Cryptography", 1);
    let (text, sigs) = open(&changed).unwrap();
    assert!(!verify(text, &sigs[0], "PeterNeumann", &public(&key)), "changed text");
    // Malformed notes are refused with the reason.
    assert_eq!(open(TEXT).unwrap_err(), NoteError::NoSignatures);
    for bad in [
        format!("{TEXT}\n- PeterNeumann abc=\n"),
        format!("{TEXT}\n\u{2014} PeterNeumann\n"),
        format!("{TEXT}\n\u{2014} PeterNeumann !!!\n"),
        format!("{TEXT}\n\u{2014} PeterNeumann AAAA\n"),
        format!("{TEXT}\n\u{2014} Peter+Neumann AAAAAAAA\n"),
        format!("{TEXT}\n\u{2014} PeterNeumann AAAAAAAA"),
        format!("{TEXT}\n\u{2014} PeterNeumann AAAAAAAA\r\n"),
    ] {
        assert!(matches!(open(&bad), Err(NoteError::BadSignatureLine { .. })), "{bad:?}");
    }
    let many = format!("{TEXT}\n{}", "\u{2014} a AAAAAAAA\n".repeat(MAX_SIGNATURES + 1));
    assert_eq!(open(&many).unwrap_err(), NoteError::TooManySignatures);
    assert_eq!(sign("no newline", "a", &key).unwrap_err(), NoteError::BadText);
    assert!(matches!(sign(TEXT, "two words", &key), Err(NoteError::BadName(_))));
}
