//! A small counter-based random number generator.
//!
//! Every entity of the sample dataset draws from its own stream, keyed by
//! `(seed, stream, a, b)` (e.g. `(seed, DEAL, deal_index, 0)`), so any entity
//! can be generated alone, in any order, with no state carried between them.
//! The generator is SplitMix64, written here rather than taken from `rand`
//! so that the dataset of a given seed stays the same across dependency
//! upgrades (rand's `gen_range` algorithms have changed between versions).

/// Stream tags: one per kind of draw, so that streams never overlap.
pub(crate) mod stream {
    pub const USER: u64 = 1;
    pub const ACCOUNT: u64 = 2;
    pub const ACCOUNT_NAMES: u64 = 3;
    pub const CONTACT: u64 = 4;
    pub const DEAL: u64 = 5;
    pub const TOUCH_COIN: u64 = 6;
    pub const TOUCH: u64 = 7;
    pub const CALL: u64 = 8;
    pub const USER_NAMES: u64 = 9;
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finalizer: a bijective, well-mixing hash of a `u64`.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of `(seed, stream, a, b)`.
pub(crate) fn hash(seed: u64, stream: u64, a: u64, b: u64) -> u64 {
    let h = mix(seed.wrapping_add(GOLDEN));
    let h = mix(h ^ stream.wrapping_mul(GOLDEN));
    let h = mix(h ^ a.wrapping_add(0x632B_E59B_D9B4_E019));
    mix(h ^ b.wrapping_add(0x8CB9_2BA7_2F3D_8DD7))
}

/// A uniform draw in `[0, 1)` from one hash (53 bits of precision).
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A SplitMix64 sequence.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// The stream keyed by `(seed, stream, a, b)`.
    pub(crate) fn new(seed: u64, stream: u64, a: u64, b: u64) -> Self {
        Rng {
            state: hash(seed, stream, a, b),
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn f64(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Uniform in `[0, n)`; `n` must be positive.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[lo, hi]`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// `true` with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An exponential draw with the given mean.
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// A standard normal draw (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = {
            let mut r = Rng::new(42, stream::DEAL, 7, 0);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(42, stream::DEAL, 7, 0);
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut c = Rng::new(42, stream::DEAL, 8, 0);
        assert_ne!(a[0], c.next_u64());
        let mut d = Rng::new(43, stream::DEAL, 7, 0);
        assert_ne!(a[0], d.next_u64());
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = Rng::new(1, 2, 3, 4);
        for _ in 0..10_000 {
            let x = r.f64();
            assert!((0.0..1.0).contains(&x));
            assert!(r.below(7) < 7);
            assert!((-3..=3).contains(&r.range(-3, 3)));
        }
        let mean = (0..20_000).map(|_| r.exp(10.0)).sum::<f64>() / 20_000.0;
        assert!((9.0..11.0).contains(&mean), "{mean}");
    }
}
