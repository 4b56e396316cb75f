// Row normalisation: writes each input row divided by its Euclidean norm.
//
// Buffers (row-major, float32):
//   source       rows x dim, contiguous, as read from input.
//   destination  rows x paddedDim; lanes dim .. paddedDim - 1 of each row are
//                written as 0, so padded dims add nothing to a dot product.
// Workgroup: 64 threads per row (NORM_THREADS), rows spread over a 2D grid of
// params.gridWidth columns because one dimension holds at most 65535
// workgroups.
// Precision: float32. Each row is first scaled by 2^-e, where e is the
// exponent of its largest |value| (ldexp is exact), so the sum of squares
// neither overflows nor underflows for any finite row. The sum is a tree
// reduction (error about log2(dim) ulp). A zero row stays zero.
// NOTE: GPUs may flush subnormal inputs to zero; the host rescales rows
// that contain subnormals by a power of two before upload.

const NORM_THREADS: u32 = 64u;

var<workgroup> partial: array<f32, 64>;

fn reduceMax(lane: u32) {
  for (var stride = NORM_THREADS / 2u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) {
      partial[lane] = max(partial[lane], partial[lane + stride]);
    }
    workgroupBarrier();
  }
}

fn reduceSum(lane: u32) {
  for (var stride = NORM_THREADS / 2u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) {
      partial[lane] = partial[lane] + partial[lane + stride];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let row = group.y * params.gridWidth + group.x;
  if (row >= params.rows) {
    return;
  }
  let sourceBase = row * params.dim;
  let destinationBase = row * params.paddedDim;

  var largest = 0.0;
  for (var d = lane; d < params.dim; d = d + NORM_THREADS) {
    largest = max(largest, abs(source[sourceBase + d]));
  }
  partial[lane] = largest;
  workgroupBarrier();
  reduceMax(lane);
  let rowMax = partial[0];
  workgroupBarrier();

  // frexp(0) has exponent 0, so a zero row sums to 0 and is written as zeros.
  let shift = -frexp(rowMax).exp;
  var squares = 0.0;
  for (var d = lane; d < params.dim; d = d + NORM_THREADS) {
    let scaled = ldexp(source[sourceBase + d], shift);
    squares = fma(scaled, scaled, squares);
  }
  partial[lane] = squares;
  workgroupBarrier();
  reduceSum(lane);
  let norm = sqrt(partial[0]);

  for (var d = lane; d < params.paddedDim; d = d + NORM_THREADS) {
    var value = 0.0;
    if (d < params.dim && norm > 0.0) {
      value = ldexp(source[sourceBase + d], shift) / norm;
    }
    destination[destinationBase + d] = value;
  }
}
