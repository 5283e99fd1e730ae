//! Exported entries: one feed entry (the DSSE envelope and, if held, the dataset payload) as a
//! self-contained JSON file an auditor can check offline with `accord verify`. The envelope is
//! in the standard DSSE JSON form (base64 `payload`, `payloadType`, `signatures[].keyid/sig`),
//! so generic DSSE tooling can check the signature too.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::domain::consortium::Consortium;
use crate::domain::dataset::{verify_at, Limits, VerifiedEntry, VerifyError};
use crate::proto;

/// The `format` value of an exported entry file.
pub const FORMAT: &str = "accord-entry/1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportFile {
    format: String,
    envelope: DsseEnvelope,
    /// Base64 dataset payload; null when the exporting node is outside the audience.
    dataset: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DsseEnvelope {
    payload: String,
    payload_type: String,
    signatures: Vec<DsseSignature>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DsseSignature {
    keyid: String,
    sig: String,
}

/// Why an exported file cannot be checked.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file is not an exported Accord entry.
    #[error("not an Accord entry file: {0}")]
    Format(String),
    /// The entry does not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// Encodes an entry as an export file.
pub fn encode(entry: &proto::Entry) -> Vec<u8> {
    let env = entry.envelope.clone().unwrap_or_default();
    let file = ExportFile {
        format: FORMAT.to_string(),
        envelope: DsseEnvelope {
            payload: STANDARD.encode(&env.payload),
            payload_type: env.payload_type,
            signatures: env
                .signatures
                .iter()
                .map(|s| DsseSignature {
                    keyid: s.keyid.clone(),
                    sig: STANDARD.encode(&s.sig),
                })
                .collect(),
        },
        dataset: entry.has_payload.then(|| STANDARD.encode(&entry.payload)),
    };
    let mut out = serde_json::to_vec_pretty(&file).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Decodes an export file back into the entry it holds (no verification).
pub fn decode(bytes: &[u8]) -> Result<proto::Entry, ExportError> {
    let file: ExportFile = serde_json::from_slice(bytes).map_err(|e| ExportError::Format(e.to_string()))?;
    if file.format != FORMAT {
        return Err(ExportError::Format(format!(
            "format {:?}, expected {FORMAT:?}",
            file.format
        )));
    }
    let b64 = |what: &str, s: &str| {
        STANDARD
            .decode(s)
            .map_err(|e| ExportError::Format(format!("{what}: {e}")))
    };
    let signatures = file
        .envelope
        .signatures
        .iter()
        .map(|s| {
            Ok(proto::Signature {
                keyid: s.keyid.clone(),
                sig: b64("signature", &s.sig)?,
            })
        })
        .collect::<Result<Vec<_>, ExportError>>()?;
    let (payload, has_payload) = match &file.dataset {
        Some(d) => (b64("dataset", d)?, true),
        None => (Vec::new(), false),
    };
    Ok(proto::Entry {
        envelope: Some(proto::Envelope {
            payload: b64("envelope payload", &file.envelope.payload)?,
            payload_type: file.envelope.payload_type,
            signatures,
        }),
        payload,
        has_payload,
    })
}

/// Offline verification of an export file against a consortium, now.
pub fn verify_file(bytes: &[u8], consortium: &Consortium) -> Result<VerifiedEntry, ExportError> {
    Ok(verify_at(
        decode(bytes)?,
        consortium,
        &Limits::default(),
        crate::domain::date::unix_now(),
    )?)
}
