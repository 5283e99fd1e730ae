//! Checking a member's attestation against a consortium document: the one place that decides
//! whether a note is what a member attested, used by the node on every note a peer sends and by
//! `accord verify` on a certified bundle offline.

use super::{open, verify, Attestation};
use crate::domain::consortium::Consortium;

/// Largest attestation note read: a consortium of a few hundred members fits with room.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// Why a note is not a member's attestation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("{0} bytes, over the limit of {MAX_NOTE_BYTES}")]
    TooLarge(usize),
    #[error(transparent)]
    Note(#[from] super::NoteError),
    #[error(transparent)]
    Body(#[from] super::BodyError),
    #[error("{0} is not a member of the consortium")]
    NotAMember(String),
    #[error("{0}: no signature under its keys valid at the attested time")]
    Unsigned(String),
}

/// Opens `note`, reads the attestation and checks it is signed under a key the consortium gives
/// the attesting member, valid at the attested time. Returns it with the note reduced to its
/// text and the one signature that verified: what a node keeps and relays, so no relay can pad
/// another member's note with lines nobody checked.
pub fn check(note: &str, consortium: &Consortium) -> Result<(Attestation, String), CheckError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(CheckError::TooLarge(note.len()));
    }
    let (text, signatures) = open(note)?;
    let a = Attestation::parse(text)?;
    let member = consortium
        .member(a.member)
        .ok_or_else(|| CheckError::NotAMember(a.member.to_string()))?;
    let name = Attestation::key_name(a.member);
    let signed = signatures.iter().find(|s| {
        member
            .keys
            .iter()
            .any(|k| k.valid_at(a.time) && verify(text, s, &name, &k.public_key))
    });
    let Some(signature) = signed else {
        return Err(CheckError::Unsigned(a.member.to_string()));
    };
    let kept = format!("{text}\n{}\n", signature.line());
    Ok((a, kept))
}
