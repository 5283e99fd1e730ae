//! Lower-case hexadecimal, for digests, key ids and keys in config files: the maintained
//! `data-encoding` codec, with Accord's policy on case (written lower, read in either case).

use data_encoding::{HEXLOWER, HEXLOWER_PERMISSIVE};

pub fn encode(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

/// Decodes hex (either case); `None` on odd length or a non-hex character.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    HEXLOWER_PERMISSIVE.decode(text.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(super::encode(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(super::decode("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(super::decode("0"), None);
        assert_eq!(super::decode("zz"), None);
        assert_eq!(super::decode(" 00"), None);
        assert_eq!(super::decode("0g"), None);
        assert_eq!(super::decode(""), Some(vec![]));
    }
}
