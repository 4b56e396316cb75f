// Merge pass: reduces each user's per-tile candidates to the final top-k set.
//
// Order: higher score first, then lower content row, the reference's order.
// Each candidate maps to a 64-bit key (orderable score bits, then the
// complement of its row), so larger keys are better and no two are equal. A
// radix select over 8-bit digits (8 passes, most significant first) finds the
// k-th largest key; the candidates at or above it are the top k. When a user
// has at most k candidates, all are taken. The set is written unordered; the
// host sorts each user's k entries.
//
// Buffers:
//   candidates  userRows x candidatesPerUser of vec2<u32>
//               (bitcast float32 score, content row); row 0xffffffff is empty.
//   selected    userRows x k of the same pairs, first counts[user] filled.
//   counts      u32 per user.
// Workgroup: 256 threads per user (one workgroup per user, grid x = users).
// Precision: exact; scores are compared as float32 bit patterns.

const SELECT_THREADS: u32 = 256u;
const NO_ROW: u32 = 0xffffffffu;

var<workgroup> histogram: array<atomic<u32>, 256>;
var<workgroup> validCount: atomic<u32>;
var<workgroup> selectedCount: atomic<u32>;
var<workgroup> prefixHigh: u32;
var<workgroup> prefixLow: u32;
var<workgroup> remaining: u32;

// Maps float32 bits to a u32 whose unsigned order is the float order.
fn orderable(bits: u32) -> u32 {
  if ((bits & 0x80000000u) != 0u) {
    return ~bits;
  }
  return bits | 0x80000000u;
}

// Bits above the digit of pass `digitIndex` (0 to 3) within one 32-bit word.
fn maskAbove(digitIndex: u32) -> u32 {
  if (digitIndex == 0u) {
    return 0u;
  }
  return 0xffffffffu << (32u - 8u * digitIndex);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let user = group.x;
  let base = user * params.candidatesPerUser;
  if (lane == 0u) {
    atomicStore(&validCount, 0u);
    atomicStore(&selectedCount, 0u);
    prefixHigh = 0u;
    prefixLow = 0u;
    remaining = params.k;
  }
  workgroupBarrier();
  var valid = 0u;
  for (var i = lane; i < params.candidatesPerUser; i = i + SELECT_THREADS) {
    valid = valid + select(0u, 1u, candidates[base + i].y != NO_ROW);
  }
  atomicAdd(&validCount, valid);

  for (var round = 0u; round < 8u; round = round + 1u) {
    atomicStore(&histogram[lane], 0u);
    workgroupBarrier();
    let onHigh = round < 4u;
    let digitIndex = round % 4u;
    let shift = 24u - 8u * digitIndex;
    let mask = maskAbove(digitIndex);
    let wantHigh = prefixHigh;
    let wantLow = prefixLow;
    for (var i = lane; i < params.candidatesPerUser; i = i + SELECT_THREADS) {
      let candidate = candidates[base + i];
      if (candidate.y == NO_ROW) {
        continue;
      }
      let high = orderable(candidate.x);
      let low = ~candidate.y;
      var digit = 0u;
      var matches = false;
      if (onHigh) {
        matches = (high & mask) == wantHigh;
        digit = (high >> shift) & 255u;
      } else {
        matches = high == wantHigh && (low & mask) == wantLow;
        digit = (low >> shift) & 255u;
      }
      if (matches) {
        atomicAdd(&histogram[digit], 1u);
      }
    }
    workgroupBarrier();
    if (lane == 0u) {
      // The digit of the k-th largest key: the highest bin where the count
      // of keys at or above it reaches the number still to place.
      var above = 0u;
      var chosen = 0u;
      for (var d = 255i; d >= 0i; d = d - 1i) {
        let count = atomicLoad(&histogram[u32(d)]);
        if (above + count >= remaining) {
          chosen = u32(d);
          break;
        }
        above = above + count;
      }
      remaining = remaining - above;
      if (onHigh) {
        prefixHigh = prefixHigh | (chosen << shift);
      } else {
        prefixLow = prefixLow | (chosen << shift);
      }
    }
    workgroupBarrier();
  }

  let takeAll = atomicLoad(&validCount) <= params.k;
  let thresholdHigh = prefixHigh;
  let thresholdLow = prefixLow;
  let selectedBase = user * params.k;
  for (var i = lane; i < params.candidatesPerUser; i = i + SELECT_THREADS) {
    let candidate = candidates[base + i];
    if (candidate.y == NO_ROW) {
      continue;
    }
    let high = orderable(candidate.x);
    let low = ~candidate.y;
    let atOrAbove = high > thresholdHigh || (high == thresholdHigh && low >= thresholdLow);
    if (takeAll || atOrAbove) {
      let slot = atomicAdd(&selectedCount, 1u);
      selected[selectedBase + slot] = candidate;
    }
  }
  workgroupBarrier();
  if (lane == 0u) {
    counts[user] = atomicLoad(&selectedCount);
  }
}
