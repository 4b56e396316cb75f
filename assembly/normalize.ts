/**
 * Normalises rows to unit length and packs them into K-major panels.
 *
 * Input: `rowCount` float32 rows of `dim` values, row-major, contiguous.
 * Output: panels of `panelWidth` rows. For each dimension d in order, a panel
 * stores the d-th value of its `panelWidth` rows side by side, so the
 * micro-kernel reads one contiguous run of `panelWidth` floats per d. Row r
 * lands at panel r / panelWidth, lane r % panelWidth.
 *
 * Precision: each norm is summed in float64 (the square of a float32 fits),
 * each value is scaled in float64 and rounded once to float32. A row of zeros
 * stays zero, so its cosine with anything is 0. Lanes past the last real row
 * are not written here: the host zero-fills the last panel.
 */

/**
 * Normalises `rowCount` rows at `src` and writes them as rows
 * `firstRow` .. `firstRow + rowCount - 1` of the panel layout at `dst`.
 */
export function packRows(
  src: usize,
  rowCount: i32,
  dim: i32,
  dst: usize,
  panelWidth: i32,
  firstRow: i32,
): void {
  const rowBytes = <usize>dim << 2;
  const panelStride = <usize>panelWidth << 2;
  const panelBytes = rowBytes * <usize>panelWidth;
  for (let i = 0; i < rowCount; i++) {
    const rowPtr = src + <usize>i * rowBytes;
    let sumOfSquares: f64 = 0;
    for (let d = 0; d < dim; d++) {
      const value = <f64>load<f32>(rowPtr + (<usize>d << 2));
      sumOfSquares += value * value;
    }
    const norm = Math.sqrt(sumOfSquares);
    const inverseNorm: f64 = norm > 0 ? 1 / norm : 0;

    const row = firstRow + i;
    let outPtr =
      dst + <usize>(row / panelWidth) * panelBytes + (<usize>(row % panelWidth) << 2);
    for (let d = 0; d < dim; d++) {
      const value = <f64>load<f32>(rowPtr + (<usize>d << 2));
      store<f32>(outPtr, <f32>(value * inverseNorm));
      outPtr += panelStride;
    }
  }
}
