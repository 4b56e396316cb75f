/**
 * Fused score kernel: cosine, CX and top-k for a block of users against all
 * prepared contents, without materialising the users x contents matrix.
 *
 * Layout (built by packRows in normalize.ts, zero-padded by the host):
 * - contents: ceil(C / 8) panels, each `dim` x 8 float32 unit vectors,
 *   K-major (32 contiguous bytes per dimension index);
 * - weights: one float32 per padded content, 0 for padding;
 * - users: ceil(U / 4) panels, each `dim` x 4 float32 unit vectors, K-major;
 * - cx: one float64 per padded user, accumulated in place;
 * - top-k state as described in topk.ts;
 * - matrix (optional, 0 for none): U x C float32, row-major, no padding;
 * - tileScores: 512 bytes of scratch: one spilled float32 tile, float32
 *   group sums and float64 panel sums.
 *
 * Micro-kernel: a 4 users x 8 contents register tile of 8 f32x4
 * accumulators. Per dimension it loads two content vectors, broadcasts each
 * user value with load32_splat and does 8 multiply-adds (fused in the relaxed
 * build). Padded lanes go through the same instructions as real ones, so
 * equal content vectors give bit-identical scores wherever they sit.
 *
 * Accumulators: products are summed in float32 registers over blocks of
 * K_BLOCK dimensions. K_GROUP blocks are summed in float32 in memory, the
 * groups are summed in float64, and the cosine is rounded once to float32.
 * Small float32 partial sums matter for cosines near 1. One running float32
 * sum was off by up to 4 ulp (2.4e-7) at D = 4096, which alpha = 80 turns
 * into 2e-5 relative CX error. The blocked sums stayed within 2 ulp in the
 * near-duplicate tests for D from 256 to 4096.
 * CX: w * exp(alpha * a) summed in float32 across the 8 contents of a tile,
 * then added to a float64 sum per user.
 *
 * Epilogue, while the tile is in registers: CX always, and the matrix stores
 * when asked. Top-k runs only when some score beats its user's threshold,
 * found with one compare per accumulator and one any_true, which after the
 * first few panels is rare.
 *
 * Measured with bench/kernel.mjs (Node 20.20, one thread of a 2-core Xeon
 * Sapphire Rapids, U = C = 4096, D = 256, k = 10): about 43 GFLOP/s relaxed
 * and 34 GFLOP/s plain. A 5 x 8 tile (10 accumulators) spilled and ran at
 * about 23 GFLOP/s; skipping the exp altogether gained only 4%.
 */
import { expProduct_f32x4, LOG2E } from './exp';
import { TILE_CONTENTS, TILE_USERS } from './layout';
import { madd, sumLanes4 } from './simd';
import { insertTile, sortLists } from './topk';

/** Bytes of one spilled 4 x 8 float32 tile. */
const TILE_SCORE_BYTES: usize = <usize>(TILE_USERS * TILE_CONTENTS * 4);

/**
 * Bytes of contents scored against every user panel of the block before
 * moving on, so that they come from L2 rather than L3 for each user panel.
 * Empirical: 64 KiB to 1 MiB ran within 1% of each other, 32 KiB lost 4%,
 * and no chunking (4 MiB of contents at D = 256) lost 12%.
 */
const CONTENT_CHUNK_BYTES: usize = 256 << 10;

/**
 * Dimensions summed in registers before the block sums go to memory.
 * Empirical: 32, 64 and 128 ran within 3% of each other, so the smallest
 * block sums won.
 */
const K_BLOCK: i32 = 32;
/**
 * Blocks summed in float32 before the group goes into the float64 panel
 * sums. Empirical: 8 made D = 256 a single group, and 4 cost 4% there.
 */
const K_GROUP: i32 = 8;
const K_BLOCK_USER_BYTES: usize = <usize>(K_BLOCK * TILE_USERS * 4);

/**
 * Scores users `0 .. userRows - 1` of the packed block against contents
 * `0 .. contentRows - 1`, adding to `cx` and the top-k lists (which the host
 * initialises). Rows are counted within the block.
 */
export function scoreBlock(
  contents: usize,
  weights: usize,
  contentRows: i32,
  dim: i32,
  users: usize,
  userRows: i32,
  alphaHigh: f32,
  alphaLow: f32,
  k: i32,
  thresholds: usize,
  topScores: usize,
  topRows: usize,
  counts: usize,
  cx: usize,
  excludeOffsets: usize,
  excludeRows: usize,
  matrix: usize,
  tileScores: usize,
): void {
  const groupSums = tileScores + TILE_SCORE_BYTES;
  const panelSums = groupSums + TILE_SCORE_BYTES;
  const contentPanels = (contentRows + TILE_CONTENTS - 1) / TILE_CONTENTS;
  const userPanels = (userRows + TILE_USERS - 1) / TILE_USERS;
  const contentPanelBytes = <usize>dim * <usize>(TILE_CONTENTS << 2);
  const userPanelBytes = <usize>dim * <usize>(TILE_USERS << 2);
  const chunkPanels = max<i32>(1, <i32>(CONTENT_CHUNK_BYTES / contentPanelBytes));
  const alphaHigh_f32x4 = f32x4.splat(alphaHigh);
  const alphaLow_f32x4 = f32x4.splat(alphaLow);
  const alphaLog2e_f32x4 = f32x4.splat(<f32>((<f64>alphaHigh + <f64>alphaLow) * LOG2E));

  for (let chunkStart = 0; chunkStart < contentPanels; chunkStart += chunkPanels) {
    const chunkEnd = min(chunkStart + chunkPanels, contentPanels);
    for (let userPanel = 0; userPanel < userPanels; userPanel++) {
      const userPanelPtr = users + <usize>userPanel * userPanelBytes;
      const userPanelEnd = userPanelPtr + userPanelBytes;
      const thresholdPtr = thresholds + (<usize>userPanel << 4);
      const cxPtr = cx + (<usize>userPanel << 5);
      let threshold_f32x4 = v128.load(thresholdPtr);
      let cxLow_f64x2 = v128.load(cxPtr);
      let cxHigh_f64x2 = v128.load(cxPtr, 16);

      for (let contentPanel = chunkStart; contentPanel < chunkEnd; contentPanel++) {
        let contentPtr = contents + <usize>contentPanel * contentPanelBytes;
        let userPtr = userPanelPtr;
        // acc<user><half>: user 0..3 of the panel, contents 0..3 or 4..7.
        let acc00_f32x4 = f32x4.splat(0);
        let acc01_f32x4 = f32x4.splat(0);
        let acc10_f32x4 = f32x4.splat(0);
        let acc11_f32x4 = f32x4.splat(0);
        let acc20_f32x4 = f32x4.splat(0);
        let acc21_f32x4 = f32x4.splat(0);
        let acc30_f32x4 = f32x4.splat(0);
        let acc31_f32x4 = f32x4.splat(0);
        let foldedBlocks = 0;
        while (true) {
          const blockEnd = min(userPtr + K_BLOCK_USER_BYTES, userPanelEnd);
          do {
            const contentLow_f32x4 = v128.load(contentPtr);
            const contentHigh_f32x4 = v128.load(contentPtr, 16);
            let user_f32x4 = v128.load32_splat(userPtr);
            acc00_f32x4 = madd(user_f32x4, contentLow_f32x4, acc00_f32x4);
            acc01_f32x4 = madd(user_f32x4, contentHigh_f32x4, acc01_f32x4);
            user_f32x4 = v128.load32_splat(userPtr, 4);
            acc10_f32x4 = madd(user_f32x4, contentLow_f32x4, acc10_f32x4);
            acc11_f32x4 = madd(user_f32x4, contentHigh_f32x4, acc11_f32x4);
            user_f32x4 = v128.load32_splat(userPtr, 8);
            acc20_f32x4 = madd(user_f32x4, contentLow_f32x4, acc20_f32x4);
            acc21_f32x4 = madd(user_f32x4, contentHigh_f32x4, acc21_f32x4);
            user_f32x4 = v128.load32_splat(userPtr, 12);
            acc30_f32x4 = madd(user_f32x4, contentLow_f32x4, acc30_f32x4);
            acc31_f32x4 = madd(user_f32x4, contentHigh_f32x4, acc31_f32x4);
            contentPtr += TILE_CONTENTS << 2;
            userPtr += TILE_USERS << 2;
          } while (userPtr < blockEnd);
          if (userPtr >= userPanelEnd) break;
          // Fold the block into the group sums, and every K_GROUP blocks the group
          // into the panel sums, then restart the accumulators from 0.
          const groupStart = foldedBlocks % K_GROUP == 0;
          storeTile(
            groupSums,
            groupStart,
            acc00_f32x4,
            acc01_f32x4,
            acc10_f32x4,
            acc11_f32x4,
            acc20_f32x4,
            acc21_f32x4,
            acc30_f32x4,
            acc31_f32x4,
          );
          foldedBlocks++;
          if (foldedBlocks % K_GROUP == 0) foldGroup(groupSums, panelSums, foldedBlocks == K_GROUP);
          acc00_f32x4 = f32x4.splat(0);
          acc01_f32x4 = f32x4.splat(0);
          acc10_f32x4 = f32x4.splat(0);
          acc11_f32x4 = f32x4.splat(0);
          acc20_f32x4 = f32x4.splat(0);
          acc21_f32x4 = f32x4.splat(0);
          acc30_f32x4 = f32x4.splat(0);
          acc31_f32x4 = f32x4.splat(0);
        }
        if (foldedBlocks % K_GROUP != 0) {
          acc00_f32x4 = f32x4.add(v128.load(groupSums, 0), acc00_f32x4);
          acc01_f32x4 = f32x4.add(v128.load(groupSums, 16), acc01_f32x4);
          acc10_f32x4 = f32x4.add(v128.load(groupSums, 32), acc10_f32x4);
          acc11_f32x4 = f32x4.add(v128.load(groupSums, 48), acc11_f32x4);
          acc20_f32x4 = f32x4.add(v128.load(groupSums, 64), acc20_f32x4);
          acc21_f32x4 = f32x4.add(v128.load(groupSums, 80), acc21_f32x4);
          acc30_f32x4 = f32x4.add(v128.load(groupSums, 96), acc30_f32x4);
          acc31_f32x4 = f32x4.add(v128.load(groupSums, 112), acc31_f32x4);
        }
        if (foldedBlocks >= K_GROUP) {
          acc00_f32x4 = addPanelSums(panelSums, 0, acc00_f32x4);
          acc01_f32x4 = addPanelSums(panelSums, 32, acc01_f32x4);
          acc10_f32x4 = addPanelSums(panelSums, 64, acc10_f32x4);
          acc11_f32x4 = addPanelSums(panelSums, 96, acc11_f32x4);
          acc20_f32x4 = addPanelSums(panelSums, 128, acc20_f32x4);
          acc21_f32x4 = addPanelSums(panelSums, 160, acc21_f32x4);
          acc30_f32x4 = addPanelSums(panelSums, 192, acc30_f32x4);
          acc31_f32x4 = addPanelSums(panelSums, 224, acc31_f32x4);
        }

        // CX: padded contents have weight 0 and a finite exp, so they add 0.
        const weightPtr = weights + (<usize>contentPanel << 5);
        const weightLow_f32x4 = v128.load(weightPtr);
        const weightHigh_f32x4 = v128.load(weightPtr, 16);
        const cxSums_f32x4 = sumLanes4(
          weightedExp(
            acc00_f32x4,
            acc01_f32x4,
            weightLow_f32x4,
            weightHigh_f32x4,
            alphaHigh_f32x4,
            alphaLow_f32x4,
            alphaLog2e_f32x4,
          ),
          weightedExp(
            acc10_f32x4,
            acc11_f32x4,
            weightLow_f32x4,
            weightHigh_f32x4,
            alphaHigh_f32x4,
            alphaLow_f32x4,
            alphaLog2e_f32x4,
          ),
          weightedExp(
            acc20_f32x4,
            acc21_f32x4,
            weightLow_f32x4,
            weightHigh_f32x4,
            alphaHigh_f32x4,
            alphaLow_f32x4,
            alphaLog2e_f32x4,
          ),
          weightedExp(
            acc30_f32x4,
            acc31_f32x4,
            weightLow_f32x4,
            weightHigh_f32x4,
            alphaHigh_f32x4,
            alphaLow_f32x4,
            alphaLog2e_f32x4,
          ),
        );
        cxLow_f64x2 = f64x2.add(cxLow_f64x2, f64x2.promote_low_f32x4(cxSums_f32x4));
        cxHigh_f64x2 = f64x2.add(
          cxHigh_f64x2,
          f64x2.promote_low_f32x4(v128.shuffle<f32>(cxSums_f32x4, cxSums_f32x4, 2, 3, 2, 3)),
        );

        // Top-k filter: one compare per accumulator against its user's threshold.
        const threshold0_f32x4 = v128.shuffle<f32>(threshold_f32x4, threshold_f32x4, 0, 0, 0, 0);
        const threshold1_f32x4 = v128.shuffle<f32>(threshold_f32x4, threshold_f32x4, 1, 1, 1, 1);
        const threshold2_f32x4 = v128.shuffle<f32>(threshold_f32x4, threshold_f32x4, 2, 2, 2, 2);
        const threshold3_f32x4 = v128.shuffle<f32>(threshold_f32x4, threshold_f32x4, 3, 3, 3, 3);
        const hits_i32x4 = v128.or(
          v128.or(
            beatsThreshold(acc00_f32x4, acc01_f32x4, threshold0_f32x4),
            beatsThreshold(acc10_f32x4, acc11_f32x4, threshold1_f32x4),
          ),
          v128.or(
            beatsThreshold(acc20_f32x4, acc21_f32x4, threshold2_f32x4),
            beatsThreshold(acc30_f32x4, acc31_f32x4, threshold3_f32x4),
          ),
        );
        const spill = v128.any_true(hits_i32x4) || matrix != 0;
        if (spill) {
          v128.store(tileScores, acc00_f32x4, 0);
          v128.store(tileScores, acc01_f32x4, 16);
          v128.store(tileScores, acc10_f32x4, 32);
          v128.store(tileScores, acc11_f32x4, 48);
          v128.store(tileScores, acc20_f32x4, 64);
          v128.store(tileScores, acc21_f32x4, 80);
          v128.store(tileScores, acc30_f32x4, 96);
          v128.store(tileScores, acc31_f32x4, 112);
          const firstUser = userPanel * TILE_USERS;
          const firstRow = contentPanel * TILE_CONTENTS;
          if (matrix != 0) {
            storeMatrixTile(tileScores, matrix, firstUser, userRows, firstRow, contentRows);
          }
          if (v128.any_true(hits_i32x4)) {
            insertTile(
              tileScores,
              firstUser,
              userRows,
              firstRow,
              contentRows,
              k,
              thresholds,
              topScores,
              topRows,
              counts,
              excludeOffsets,
              excludeRows,
            );
            threshold_f32x4 = v128.load(thresholdPtr);
          }
        }
      }
      v128.store(cxPtr, cxLow_f64x2);
      v128.store(cxPtr, cxHigh_f64x2, 16);
    }
  }
  sortLists(userRows, k, topScores, topRows, counts);
}

/** Stores a tile of 8 f32x4 at `sums`, or adds it to what is there when `overwrite` is false. */
// @ts-ignore: decorator
@inline function storeTile(
  sums: usize,
  overwrite: bool,
  t0_f32x4: v128,
  t1_f32x4: v128,
  t2_f32x4: v128,
  t3_f32x4: v128,
  t4_f32x4: v128,
  t5_f32x4: v128,
  t6_f32x4: v128,
  t7_f32x4: v128,
): void {
  if (!overwrite) {
    t0_f32x4 = f32x4.add(v128.load(sums, 0), t0_f32x4);
    t1_f32x4 = f32x4.add(v128.load(sums, 16), t1_f32x4);
    t2_f32x4 = f32x4.add(v128.load(sums, 32), t2_f32x4);
    t3_f32x4 = f32x4.add(v128.load(sums, 48), t3_f32x4);
    t4_f32x4 = f32x4.add(v128.load(sums, 64), t4_f32x4);
    t5_f32x4 = f32x4.add(v128.load(sums, 80), t5_f32x4);
    t6_f32x4 = f32x4.add(v128.load(sums, 96), t6_f32x4);
    t7_f32x4 = f32x4.add(v128.load(sums, 112), t7_f32x4);
  }
  v128.store(sums, t0_f32x4, 0);
  v128.store(sums, t1_f32x4, 16);
  v128.store(sums, t2_f32x4, 32);
  v128.store(sums, t3_f32x4, 48);
  v128.store(sums, t4_f32x4, 64);
  v128.store(sums, t5_f32x4, 80);
  v128.store(sums, t6_f32x4, 96);
  v128.store(sums, t7_f32x4, 112);
}

/**
 * Adds the group sums to the float64 panel sums (or stores them when
 * `overwrite`). Runs once per K_GROUP blocks, so it is not inlined.
 */
function foldGroup(groupSums: usize, panelSums: usize, overwrite: bool): void {
  for (let i: usize = 0; i < <usize>(TILE_USERS * TILE_CONTENTS / 4); i++) {
    const group_f32x4 = v128.load(groupSums + (i << 4));
    const at = panelSums + (i << 5);
    let low_f64x2 = f64x2.promote_low_f32x4(group_f32x4);
    const upper_f32x4 = v128.shuffle<f32>(group_f32x4, group_f32x4, 2, 3, 2, 3);
    let high_f64x2 = f64x2.promote_low_f32x4(upper_f32x4);
    if (!overwrite) {
      low_f64x2 = f64x2.add(v128.load(at), low_f64x2);
      high_f64x2 = f64x2.add(v128.load(at, 16), high_f64x2);
    }
    v128.store(at, low_f64x2);
    v128.store(at, high_f64x2, 16);
  }
}

/** Returns the float64 panel sums at `panelSums + offset` plus `rest`, rounded to float32. */
// @ts-ignore: decorator
@inline function addPanelSums(panelSums: usize, offset: usize, rest_f32x4: v128): v128 {
  const at = panelSums + offset;
  const low_f64x2 = f64x2.add(v128.load(at), f64x2.promote_low_f32x4(rest_f32x4));
  const high_f64x2 = f64x2.add(
    v128.load(at, 16),
    f64x2.promote_low_f32x4(v128.shuffle<f32>(rest_f32x4, rest_f32x4, 2, 3, 2, 3)),
  );
  return v128.shuffle<f32>(
    f32x4.demote_f64x2_zero(low_f64x2),
    f32x4.demote_f64x2_zero(high_f64x2),
    0,
    1,
    4,
    5,
  );
}

/** Returns w * exp(alpha * a) for the 8 contents of one user, summed pairwise into one f32x4. */
// @ts-ignore: decorator
@inline function weightedExp(
  scoreLow_f32x4: v128,
  scoreHigh_f32x4: v128,
  weightLow_f32x4: v128,
  weightHigh_f32x4: v128,
  alphaHigh_f32x4: v128,
  alphaLow_f32x4: v128,
  alphaLog2e_f32x4: v128,
): v128 {
  const expLow_f32x4 = expProduct_f32x4(
    scoreLow_f32x4,
    alphaHigh_f32x4,
    alphaLow_f32x4,
    alphaLog2e_f32x4,
  );
  const expHigh_f32x4 = expProduct_f32x4(
    scoreHigh_f32x4,
    alphaHigh_f32x4,
    alphaLow_f32x4,
    alphaLog2e_f32x4,
  );
  return f32x4.add(
    f32x4.mul(expLow_f32x4, weightLow_f32x4),
    f32x4.mul(expHigh_f32x4, weightHigh_f32x4),
  );
}

/** Returns a lane mask of the 8 scores of one user that are above `threshold`. */
// @ts-ignore: decorator
@inline function beatsThreshold(
  scoreLow_f32x4: v128,
  scoreHigh_f32x4: v128,
  threshold_f32x4: v128,
): v128 {
  return v128.or(
    f32x4.gt(scoreLow_f32x4, threshold_f32x4),
    f32x4.gt(scoreHigh_f32x4, threshold_f32x4),
  );
}

/** Copies the real users and contents of a spilled tile into the row-major U x C matrix. */
function storeMatrixTile(
  tileScores: usize,
  matrix: usize,
  firstUser: i32,
  userRows: i32,
  firstRow: i32,
  contentRows: i32,
): void {
  const userEnd = min(firstUser + TILE_USERS, userRows);
  const rowCount = min(TILE_CONTENTS, contentRows - firstRow);
  for (let user = firstUser; user < userEnd; user++) {
    const from = tileScores + (<usize>((user - firstUser) * TILE_CONTENTS) << 2);
    const to = matrix + ((<usize>user * <usize>contentRows + <usize>firstRow) << 2);
    memory.copy(to, from, <usize>rowCount << 2);
  }
}
