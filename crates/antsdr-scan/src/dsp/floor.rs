//! The step noise floor (antsdr-scan §5 step 7): an O(M) median of linear power, corrected
//! from the median to the mean of a K-frame average of exponential bins.

/// c(K) = 10·log10(K / median of Γ(K,1)): the averaged power of a noise bin is Γ(K,1)/K
/// distributed, whose median sits below its mean by this many dB.
pub fn median_bias_db(k: usize) -> f64 {
    let k = k.max(1);
    let (mut lo, mut hi) = (0.0_f64, k as f64 * 4.0 + 10.0);
    // 80 halvings take the bracket far below f64 resolution of the answer.
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if gamma_cdf(k, mid) < 0.5 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    10.0 * (k as f64 / (0.5 * (lo + hi))).log10()
}

/// Regularised lower incomplete gamma P(k, x) for integer k (Erlang CDF).
fn gamma_cdf(k: usize, x: f64) -> f64 {
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    for i in 1..k {
        term *= x / i as f64;
        sum += term;
    }
    1.0 - (-x).exp() * sum
}

/// Median of `values` by selection (reorders `values`); `None` when empty.
pub fn median_in_place(values: &mut [f32]) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    let mid = values.len() / 2;
    let (_, m, _) = values.select_nth_unstable_by(mid, f32::total_cmp);
    Some(*m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_table() {
        for (k, want) in [(1, 1.59), (2, 0.76), (4, 0.37), (8, 0.18), (16, 0.09)] {
            let got = median_bias_db(k);
            assert!((got - want).abs() < 0.006, "K={k}: {got}");
        }
    }

    #[test]
    fn median_selects_the_middle() {
        let mut v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median_in_place(&mut v), Some(3.0));
        assert_eq!(median_in_place(&mut []), None);
    }
}
