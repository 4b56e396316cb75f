// Tiled cosine with a fused epilogue: CX partial sums and per-tile top-k.
//
// Computes a(u, c) = dot(users[u], contents[c]) for one 64 x 64 output tile
// per workgroup (TILE_ROWS users x TILE_ROWS contents), from rows that
// normalize.wgsl has already scaled to unit length. It then writes:
//   cxPartial   per user and content tile, the sum of w_c * exp(alpha * a)
//               over the tile's 64 contents; the host adds the tiles in
//               float64.
//   candidates  per user and content tile, the tile's best kTile contents
//               with a > threshold and not excluded, at slot = their rank
//               (score descending, then lower content row); unused slots
//               hold index 0xffffffff.
//   matrix      every cosine, only when params.matrixColumns > 0.
//
// Buffers (float32 unless noted, row-major):
//   users       paddedUsers x paddedDim as vec4, paddedUsers a multiple of 64;
//               padded rows and dims are zero.
//   contents    one chunk of the contents, paddedRows x paddedDim as vec4,
//               padded the same way.
//   weights     one per content row of the chunk, zero for padded rows and
//               divided by a power of two so that |w| <= 1.
//   cxPartial   userRows x tileCount.
//   candidates  userRows x tileCount x kTile of vec2<u32>:
//               (bitcast score, global content row).
//   exclusions  i32: userRows + 1 offsets of the block's users, then their
//               sorted excluded content rows from index excludeRowsAt.
//   matrix      userRows x matrixColumns.
// Workgroup: 16 x 16 threads, each owning a 4 x 4 block of outputs. Dims are
// read TILE_DEPTH at a time into workgroup memory with vec4 loads; the 64 x 64
// layout with 4 x 4 per thread is the one tfjs and ONNX Runtime Web use.
// Workgroup memory: one 16 KiB array, reused by each phase (the WebGPU
// default limit for maxComputeWorkgroupStorageSize is 16384 bytes).
// Precision: dot products accumulate in float32 with fma in dim order, so
// equal content rows get bit-identical cosines and ties stay ties. exp is the
// float32 Cody-Waite scheme of assembly/exp.ts (max relative error about
// 2e-7 over |alpha * a| <= 80); each tile's 64 terms are summed as a tree
// (error below 6 ulp for terms of one sign).

const TILE_ROWS: u32 = 64u;
const TILE_DEPTH: u32 = 16u;
const CONTENT_TILE_AT: u32 = 1024u; // TILE_DEPTH * TILE_ROWS floats of user tile come first
const INVALID_SCORE: f32 = -8.0;
const VALID_ABOVE: f32 = -4.0;
const NO_ROW: u32 = 0xffffffffu;

// Head of ln2 with 9 significant bits, so n * LN2_HI is exact for |n| < 2^15.
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.1219444005469057e-4;
// exp(r) on [-ln2/2, ln2/2], minimax with P0 = P1 = 1 (from assembly/exp.ts).
const P2: f32 = 0.49999043345451355;
const P3: f32 = 0.16666939854621887;
const P4: f32 = 0.04190804436802864;
const P5: f32 = 0.008325664326548576;

var<workgroup> tile: array<f32, 4096>;

// Returns exp(alpha * s) per lane with alpha = alphaHigh + alphaLow, where
// alphaHigh has at most 12 significant bits: s is split into its top 12
// significand bits and the rest, so the large part of alpha * s is exact.
fn expProduct(s: vec4<f32>) -> vec4<f32> {
  let n = round(s * params.alphaLog2e);
  let sHigh = bitcast<vec4<f32>>(bitcast<vec4<u32>>(s) & vec4<u32>(0xfffff000u));
  let sLow = s - sHigh;
  var r = fma(n, vec4<f32>(-LN2_HI), sHigh * params.alphaHigh);
  r = fma(sLow, vec4<f32>(params.alphaHigh), r);
  r = fma(s, vec4<f32>(params.alphaLow), r);
  r = fma(n, vec4<f32>(-LN2_LO), r);
  var p = fma(vec4<f32>(P5), r, vec4<f32>(P4));
  p = fma(p, r, vec4<f32>(P3));
  p = fma(p, r, vec4<f32>(P2));
  p = fma(p, r, vec4<f32>(1.0));
  p = fma(p, r, vec4<f32>(1.0));
  // |n| <= 126 inside the domain, so n + 127 is a normal float32 exponent.
  let scale = bitcast<vec4<f32>>(vec4<u32>(vec4<i32>(n) + vec4<i32>(127)) << vec4<u32>(23u));
  return p * scale;
}

@compute @workgroup_size(16, 16)
fn main(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let contentTile = group.x;
  let userTile = group.y;
  let tx = local.x;
  let ty = local.y;

  // Loading: thread `lane` copies one vec4 of dims of one user row and one
  // content row, transposed so that the inner loop reads rows side by side.
  let loadRow = lane / 4u;
  let loadQuad = lane % 4u;
  let userLoad = (userTile * TILE_ROWS + loadRow) * params.dimVec4 + loadQuad;
  let contentLoad = (contentTile * TILE_ROWS + loadRow) * params.dimVec4 + loadQuad;

  var acc_f32x4x4: array<vec4<f32>, 4>;
  for (var depth = 0u; depth < params.dimVec4; depth = depth + TILE_DEPTH / 4u) {
    let user_f32x4 = users[userLoad + depth];
    let content_f32x4 = contents[contentLoad + depth];
    for (var i = 0u; i < 4u; i = i + 1u) {
      tile[(loadQuad * 4u + i) * TILE_ROWS + loadRow] = user_f32x4[i];
      tile[CONTENT_TILE_AT + (loadQuad * 4u + i) * TILE_ROWS + loadRow] = content_f32x4[i];
    }
    workgroupBarrier();
    for (var d = 0u; d < TILE_DEPTH; d = d + 1u) {
      let userAt = d * TILE_ROWS + ty * 4u;
      let contentAt = CONTENT_TILE_AT + d * TILE_ROWS + tx * 4u;
      let b_f32x4 = vec4<f32>(tile[contentAt], tile[contentAt + 1u], tile[contentAt + 2u], tile[contentAt + 3u]);
      for (var i = 0u; i < 4u; i = i + 1u) {
        acc_f32x4x4[i] = fma(vec4<f32>(tile[userAt + i]), b_f32x4, acc_f32x4x4[i]);
      }
    }
    workgroupBarrier();
  }

  let chunkColumn = contentTile * TILE_ROWS + tx * 4u;
  let tileStart = params.contentBase + contentTile * TILE_ROWS;
  let tileIndex = params.tileBase + contentTile;

  // CX: each thread sums its 4 contents per user, then 64 threads add the 16
  // partials of one user as a tree.
  let weight_f32x4 = vec4<f32>(
    weights[chunkColumn], weights[chunkColumn + 1u], weights[chunkColumn + 2u], weights[chunkColumn + 3u]);
  for (var i = 0u; i < 4u; i = i + 1u) {
    let terms_f32x4 = weight_f32x4 * expProduct(acc_f32x4x4[i]);
    tile[(ty * 4u + i) * 16u + tx] = (terms_f32x4.x + terms_f32x4.y) + (terms_f32x4.z + terms_f32x4.w);
  }
  workgroupBarrier();
  if (lane < TILE_ROWS) {
    var sums: array<f32, 16>;
    for (var i = 0u; i < 16u; i = i + 1u) {
      sums[i] = tile[lane * 16u + i];
    }
    for (var stride = 8u; stride > 0u; stride = stride / 2u) {
      for (var i = 0u; i < stride; i = i + 1u) {
        sums[i] = sums[i] + sums[i + stride];
      }
    }
    let user = userTile * TILE_ROWS + lane;
    if (user < params.userRows) {
      cxPartial[user * params.tileCount + tileIndex] = sums[0];
    }
  }
  workgroupBarrier();

  // Matrix mode and the scores that may enter the top-k lists.
  for (var i = 0u; i < 4u; i = i + 1u) {
    let user = userTile * TILE_ROWS + ty * 4u + i;
    for (var j = 0u; j < 4u; j = j + 1u) {
      let column = tileStart + tx * 4u + j;
      let score = acc_f32x4x4[i][j];
      if (params.matrixColumns > 0u && user < params.userRows && column < params.contentRows) {
        matrix[user * params.matrixColumns + column] = score;
      }
      let kept = column < params.contentRows && score > params.threshold;
      tile[(ty * 4u + i) * TILE_ROWS + tx * 4u + j] = select(INVALID_SCORE, score, kept);
    }
  }
  workgroupBarrier();

  // Exclusions: one thread per user walks that user's sorted rows inside the tile.
  if (params.excludeRowsAt > 0u && lane < TILE_ROWS) {
    let user = userTile * TILE_ROWS + lane;
    if (user < params.userRows) {
      let blockUser = params.userBase + user;
      var low = u32(exclusions[blockUser]);
      var high = u32(exclusions[blockUser + 1u]);
      let end = high;
      while (low < high) {
        let middle = (low + high) / 2u;
        if (u32(exclusions[params.excludeRowsAt + middle]) < tileStart) {
          low = middle + 1u;
        } else {
          high = middle;
        }
      }
      for (var at = low; at < end; at = at + 1u) {
        let row = u32(exclusions[params.excludeRowsAt + at]);
        if (row >= tileStart + TILE_ROWS) {
          break;
        }
        tile[lane * TILE_ROWS + row - tileStart] = INVALID_SCORE;
      }
    }
  }
  workgroupBarrier();

  // Per-tile top-k: 4 threads per user, 16 contents each. A content's rank is
  // the number of kept contents that beat it (higher score, or equal score
  // and lower row); ranks below kTile are written at slot = rank.
  let rankUser = lane / 4u;
  let segment = lane % 4u;
  let user = userTile * TILE_ROWS + rankUser;
  if (user < params.userRows) {
    let rowAt = rankUser * TILE_ROWS;
    var validCount = 0u;
    for (var i = 0u; i < TILE_ROWS; i = i + 1u) {
      validCount = validCount + select(0u, 1u, tile[rowAt + i] > VALID_ABOVE);
    }
    let candidateBase = (user * params.tileCount + tileIndex) * params.kTile;
    for (var jj = 0u; jj < 16u; jj = jj + 1u) {
      let j = segment * 16u + jj;
      let score = tile[rowAt + j];
      if (score <= VALID_ABOVE) {
        continue;
      }
      var rank = 0u;
      for (var i = 0u; i < TILE_ROWS; i = i + 1u) {
        let other = tile[rowAt + i];
        rank = rank + select(0u, 1u, other > score || (other == score && i < j));
        // Past kTile the exact rank no longer matters: the content is left out.
        if (rank >= params.kTile) {
          break;
        }
      }
      if (rank < params.kTile) {
        candidates[candidateBase + rank] = vec2<u32>(bitcast<u32>(score), tileStart + j);
      }
    }
    for (var slot = validCount + segment; slot < params.kTile; slot = slot + 4u) {
      candidates[candidateBase + slot] = vec2<u32>(0u, NO_ROW);
    }
  }
}
