//! Event-driven products with binary spike matrices on the CPU: each spike adds one row of a
//! weight (or gradient) table instead of multiplying a mostly-zero matrix densely.
//!
//! The table is stored in strips of 16 columns, each strip's rows contiguous (16 KB for 256
//! rows), and the sums run strip by strip, so every row they add comes from L1. Row-major, the
//! rows of a 256-wide table lie 1 KB apart — on 4 of L1's 64 sets — and each came from L2 at
//! about a third of the add rate.

use super::simd;

const LANES: usize = 16;

/// For each of a list of sets, the indices it holds (row `r`'s spiking inputs, or input `j`'s
/// spiking rows).
pub struct IndexSets {
    indices: Vec<u32>,
    ends: Vec<usize>,
}

impl IndexSets {
    /// The nonzeros of each row of `m` (`[rows, cols]`).
    pub fn of_rows(m: &[f32], cols: usize) -> Self {
        let rows = m.len() / cols;
        let mut sets = Self { indices: Vec::with_capacity(m.len() / 2), ends: Vec::with_capacity(rows) };
        simd::dispatch(#[inline(always)] || {
            for row in m.chunks_exact(cols) {
                push_nonzeros(row, &mut sets.indices);
                sets.ends.push(sets.indices.len());
            }
        });
        sets
    }

    /// The nonzeros of each column of `m` (`[rows, cols]`), in row order.
    pub fn of_columns(m: &[f32], cols: usize) -> Self {
        let by_row = Self::of_rows(m, cols);
        let mut starts = vec![0usize; cols + 1];
        for &j in &by_row.indices {
            starts[j as usize + 1] += 1;
        }
        for j in 0..cols {
            starts[j + 1] += starts[j];
        }
        let mut fill = starts[..cols].to_vec();
        let mut indices = vec![0u32; by_row.indices.len()];
        for (r, set) in by_row.iter().enumerate() {
            for &j in set {
                indices[fill[j as usize]] = r as u32;
                fill[j as usize] += 1;
            }
        }
        Self { indices, ends: starts[1..].to_vec() }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    fn iter(&self) -> impl Iterator<Item = &[u32]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.indices[s..e])
    }
}

/// Appends the indices of the nonzeros of `row` to `out`: a 16-bit mask per block of 16
/// (one vector compare), then one store per set bit.
#[inline(always)]
fn push_nonzeros(row: &[f32], out: &mut Vec<u32>) {
    let start = out.len();
    out.resize(start + row.len(), 0);
    let slots = &mut out[start..];
    let mut n = 0;
    let mut blocks = row.chunks_exact(LANES);
    let mut base = 0u32;
    for block in &mut blocks {
        let block: &[f32; LANES] = block.try_into().expect("whole block");
        let mut mask = 0u32;
        for (k, &x) in block.iter().enumerate() {
            mask |= ((x != 0.0) as u32) << k;
        }
        while mask != 0 {
            slots[n] = base + mask.trailing_zeros();
            n += 1;
            mask &= mask - 1;
        }
        base += LANES as u32;
    }
    for (k, &x) in blocks.remainder().iter().enumerate() {
        if x != 0.0 {
            slots[n] = base + k as u32;
            n += 1;
        }
    }
    out.truncate(start + n);
}

/// A `[rows, cols]` matrix in strips of 16 columns (zero-padded), strip-major.
pub struct StripTable {
    values: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl StripTable {
    /// `m` (`[rows, cols]`, row-major).
    pub fn from_rows(m: &[f32], rows: usize, cols: usize) -> Self {
        let mut t = Self::zeros(rows, cols);
        for (r, row) in m.chunks_exact(cols).enumerate() {
            for (s, chunk) in row.chunks(LANES).enumerate() {
                t.values[(s * rows + r) * LANES..][..chunk.len()].copy_from_slice(chunk);
            }
        }
        t
    }

    /// `mᵀ` for `m` (`[cols, rows]`, row-major): the table's row `j` is column `j` of `m`.
    pub fn from_columns(m: &[f32], rows: usize, cols: usize) -> Self {
        let mut t = Self::zeros(rows, cols);
        for (i, m_row) in m.chunks_exact(rows).enumerate() {
            let (s, lane) = (i / LANES, i % LANES);
            let strip = &mut t.values[s * rows * LANES..(s + 1) * rows * LANES];
            for (j, &x) in m_row.iter().enumerate() {
                strip[j * LANES + lane] = x;
            }
        }
        t
    }

    fn zeros(rows: usize, cols: usize) -> Self {
        Self { values: vec![0.0; cols.div_ceil(LANES) * rows * LANES], rows, cols }
    }

    /// Row `k` of `out` (`[sets.len(), cols]`) = the sum of the table rows in set `k`.
    pub fn sum_sets(&self, sets: &IndexSets, out: &mut [f32]) {
        assert_eq!(out.len(), sets.len() * self.cols, "output shape");
        assert!(sets.indices.iter().all(|&i| (i as usize) < self.rows), "set index out of the table");
        simd::dispatch(#[inline(always)] || {
            for (s, strip) in self.values.chunks_exact(self.rows * LANES).enumerate() {
                let width = (self.cols - s * LANES).min(LANES);
                for (set, out_row) in sets.iter().zip(out.chunks_exact_mut(self.cols)) {
                    let sum = sum_strip_rows(strip, set);
                    out_row[s * LANES..s * LANES + width].copy_from_slice(&sum[..width]);
                }
            }
        });
    }
}

/// The sum of rows `set` of one strip, in four interleaved partial sums (four independent
/// add chains hide the add latency).
#[inline(always)]
fn sum_strip_rows(strip: &[f32], set: &[u32]) -> [f32; LANES] {
    let mut acc = [[0.0f32; LANES]; 4];
    let mut quads = set.chunks_exact(4);
    for quad in &mut quads {
        for a in 0..4 {
            add_row(&mut acc[a], strip, quad[a]);
        }
    }
    for (a, &i) in quads.remainder().iter().enumerate() {
        add_row(&mut acc[a], strip, i);
    }
    let mut sum = [0.0f32; LANES];
    for k in 0..LANES {
        sum[k] = (acc[0][k] + acc[1][k]) + (acc[2][k] + acc[3][k]);
    }
    sum
}

#[inline(always)]
fn add_row(acc: &mut [f32; LANES], strip: &[f32], i: u32) {
    let start = i as usize * LANES;
    let row = &strip[start..start + LANES];
    for k in 0..LANES {
        acc[k] += row[k];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + x.abs()))
    }

    /// Binary `[rows, cols]` with an empty first row and a full second one.
    fn spikes(rng: &mut spikerl_snn::rng::SplitMix, rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols).map(|x| if x / cols == 1 || (x / cols != 0 && rng.below(3) == 0) { 1.0 } else { 0.0 }).collect()
    }

    #[test]
    fn event_products_equal_dense_products() {
        let mut rng = spikerl_snn::rng::SplitMix::new(7);
        // Widths that are and are not whole strips.
        for (r, n_in, n_out) in [(9usize, 37usize, 40usize), (50, 64, 256), (4, 5, 16)] {
            let s = spikes(&mut rng, r, n_in);
            let w: Vec<f32> = (0..n_out * n_in).map(|_| rng.normal()).collect();
            let g: Vec<f32> = (0..r * n_out).map(|_| rng.normal()).collect();

            // S·Wᵀ: row k sums the columns of W at which row k of S spiked.
            let mut swt = vec![f32::NAN; r * n_out];
            StripTable::from_columns(&w, n_in, n_out).sum_sets(&IndexSets::of_rows(&s, n_in), &mut swt);
            let want: Vec<f32> = (0..r * n_out).map(|x| (0..n_in).map(|j| s[x / n_out * n_in + j] * w[x % n_out * n_in + j]).sum()).collect();
            assert!(close(&want, &swt), "S·Wᵀ at {r}×{n_in}→{n_out}");
            assert!(swt[..n_out].iter().all(|&x| x == 0.0), "no spikes, no input");

            // (Gᵀ·S)ᵀ: row j sums the rows of G at which input j spiked.
            let by_input = IndexSets::of_columns(&s, n_in);
            assert_eq!((by_input.len(), by_input.indices.len()), (n_in, s.iter().filter(|&&x| x != 0.0).count()));
            let mut gts = vec![f32::NAN; n_in * n_out];
            StripTable::from_rows(&g, r, n_out).sum_sets(&by_input, &mut gts);
            let want: Vec<f32> = (0..n_in * n_out).map(|x| (0..r).map(|k| s[k * n_in + x / n_out] * g[k * n_out + x % n_out]).sum()).collect();
            assert!(close(&want, &gts), "Gᵀ·S at {r}×{n_in}→{n_out}");

        }
    }
}
