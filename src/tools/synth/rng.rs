//! The generator's only source of randomness: SplitMix64 and a key-mixing hash. Every random
//! value in a synthetic data set is drawn from a stream keyed by *what* it describes (a corridor,
//! a month, a move number), never from a shared sequential stream, so each country's file can be
//! written alone and in any order and still agree with the others. Must never read the clock, the
//! environment or any other entropy.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and good enough for synthetic data; its
/// output function doubles as the hash in [`key`].
pub(super) struct SplitMix64(u64);

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    pub(super) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// Uniform in [0, 1), from the top 53 bits so every value is exactly representable.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (0 when n is 0), by the multiply-shift method (Lemire): no division and
    /// a bias far below anything synthetic data could show.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// The SplitMix64 output function: a bijection on u64 with full avalanche.
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stream key from several parts; order matters, so (a, b) and (b, a) differ.
pub(super) fn key(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(GOLDEN_GAMMA, |acc, &part| mix(acc.wrapping_add(GOLDEN_GAMMA) ^ part))
}

// Stream tags keep the key spaces of different kinds of draws apart.
pub(super) const TAG_MEMBER: u64 = 1;
pub(super) const TAG_PAIR: u64 = 2;
pub(super) const TAG_OUTSIDE: u64 = 3;
pub(super) const TAG_CORRIDOR: u64 = 4;
pub(super) const TAG_LOCAL: u64 = 5;
pub(super) const TAG_EXTRA: u64 = 6;
/// Move numbers never reach this, so a count's stream never equals a move's stream.
pub(super) const TAG_COUNT: u64 = u64::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_output() {
        // First outputs of the reference implementation seeded with 1234567.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn draws_stay_in_range_and_spread() {
        let mut rng = SplitMix64::new(7);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let unit = rng.unit();
            assert!((0.0..1.0).contains(&unit));
            counts[rng.below(10) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn keys_depend_on_order_and_every_part() {
        assert_ne!(key(&[1, 2]), key(&[2, 1]));
        assert_ne!(key(&[1, 2]), key(&[1, 3]));
        assert_ne!(key(&[0]), key(&[0, 0]));
        assert_eq!(key(&[5, 6, 7]), key(&[5, 6, 7]));
    }
}
