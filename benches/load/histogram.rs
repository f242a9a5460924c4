//! A log-linear histogram of nanosecond values (HdrHistogram's bucket layout with 128 sub-buckets
//! per power of two): fixed memory, no allocation per sample, quantiles within 0.8 %.

const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Group 0 holds 0..128 exactly; group g >= 1 holds [128 << (g-1), 128 << g) in 128 steps.
const GROUPS: usize = 64 - SUB_BITS as usize + 1;

/// Counts of values by bucket, plus the exact maximum.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("p50", &self.quantile(0.5))
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; GROUPS * SUB],
            total: 0,
            max: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, value: u64) {
        self.counts[index(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the top of the bucket holding that rank, never above
    /// the maximum seen. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[inline]
fn index(value: u64) -> usize {
    if value < SUB as u64 {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros();
    let shift = msb - SUB_BITS;
    ((shift as usize + 1) << SUB_BITS) | ((value >> shift) as usize - SUB)
}

fn lower(i: usize) -> u64 {
    let (group, sub) = (i >> SUB_BITS, i & (SUB - 1));
    if group == 0 {
        sub as u64
    } else {
        ((SUB + sub) as u64) << (group - 1)
    }
}

fn upper(i: usize) -> u64 {
    let group = i >> SUB_BITS;
    if group == 0 {
        lower(i)
    } else {
        lower(i) + ((1u64 << (group - 1)) - 1)
    }
}
