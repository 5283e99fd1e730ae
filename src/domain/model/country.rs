//! ISO 3166-1 alpha-3 country codes, plus the two codes SPEC §1 adds: `XXX` (unknown) and
//! `XXA` (stateless). A [`Country`] can only be built from a code on this list.

use std::fmt;

/// The officially assigned ISO 3166-1 alpha-3 codes, sorted (binary-searched).
const ISO_ALPHA3: [&str; 249] = [
    "ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF", "ATG", "AUS", "AUT",
    "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS", "BIH", "BLM", "BLR", "BLZ", "BMU", "BOL",
    "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF", "CAN", "CCK", "CHE", "CHL", "CHN", "CIV", "CMR", "COD", "COG",
    "COK", "COL", "COM", "CPV", "CRI", "CUB", "CUW", "CXR", "CYM", "CYP", "CZE", "DEU", "DJI", "DMA", "DNK", "DOM",
    "DZA", "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH", "FIN", "FJI", "FLK", "FRA", "FRO", "FSM", "GAB", "GBR",
    "GEO", "GGY", "GHA", "GIB", "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC", "GRD", "GRL", "GTM", "GUF", "GUM", "GUY",
    "HKG", "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN", "IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA",
    "JAM", "JEY", "JOR", "JPN", "KAZ", "KEN", "KGZ", "KHM", "KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR", "LBY",
    "LCA", "LIE", "LKA", "LSO", "LTU", "LUX", "LVA", "MAC", "MAF", "MAR", "MCO", "MDA", "MDG", "MDV", "MEX", "MHL",
    "MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ", "MRT", "MSR", "MTQ", "MUS", "MWI", "MYS", "MYT", "NAM",
    "NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR", "NPL", "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER",
    "PHL", "PLW", "PNG", "POL", "PRI", "PRK", "PRT", "PRY", "PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU",
    "SDN", "SEN", "SGP", "SGS", "SHN", "SJM", "SLB", "SLE", "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR",
    "SVK", "SVN", "SWE", "SWZ", "SXM", "SYC", "SYR", "TCA", "TCD", "TGO", "THA", "TJK", "TKL", "TKM", "TLS", "TON",
    "TTO", "TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR", "UMI", "URY", "USA", "UZB", "VAT", "VCT", "VEN", "VGB",
    "VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF", "ZMB", "ZWE",
];

/// A validated country code: an ISO 3166-1 alpha-3 code, `XXX` or `XXA`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country([u8; 3]);

impl Country {
    /// Unknown citizenship or country.
    pub const UNKNOWN: Country = Country(*b"XXX");
    /// Stateless.
    pub const STATELESS: Country = Country(*b"XXA");

    /// Accepts exactly an upper-case code from the list, `XXX` or `XXA`.
    pub fn parse(text: &str) -> Option<Country> {
        let bytes: [u8; 3] = text.as_bytes().try_into().ok()?;
        Country::from_bytes(bytes)
    }

    /// The same check as [`Country::parse`], from the three bytes the store keeps.
    pub fn from_bytes(bytes: [u8; 3]) -> Option<Country> {
        let text = std::str::from_utf8(&bytes).ok()?;
        let known = bytes == *b"XXX" || bytes == *b"XXA" || ISO_ALPHA3.binary_search(&text).is_ok();
        known.then_some(Country(bytes))
    }

    /// Whether this is a real country (not `XXX` or `XXA`), as member codes must be.
    pub fn is_iso(self) -> bool {
        self != Country::UNKNOWN && self != Country::STATELESS
    }

    pub fn bytes(self) -> [u8; 3] {
        self.0
    }

    pub fn as_str(&self) -> &str {
        // The constructor admits only ASCII codes from the list above.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// The lower-case code, as in file names (`deu.pem`).
    pub fn lower(self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    /// All ISO codes (without `XXX`/`XXA`), for generators and tests.
    pub fn all_iso() -> impl Iterator<Item = Country> {
        ISO_ALPHA3.iter().filter_map(|c| Country::parse(c))
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_unique() {
        assert!(ISO_ALPHA3.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn accepts_codes_on_the_list_only() {
        for ok in ["DEU", "FRA", "ITA", "XXX", "XXA", "ZWE", "AFG"] {
            assert_eq!(Country::parse(ok).map(|c| c.to_string()), Some(ok.to_string()));
        }
        for bad in ["FRX", "deu", "DE", "DEUT", "", "XXB", "123", "ÄBC"] {
            assert_eq!(Country::parse(bad), None, "{bad}");
        }
        assert!(!Country::UNKNOWN.is_iso());
        assert!(Country::parse("DEU").unwrap().is_iso());
    }
}
