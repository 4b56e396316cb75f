/**
 * The typed layer between WGSL files and the device: each kernel is one
 * {@link ProgramSpec} that names its file, its uniforms and its storage
 * bindings in order. From it the loader generates the WGSL declarations of
 * the uniforms struct and of every binding, so the shader text and the
 * bind group layout cannot disagree, and packs uniform values with the same
 * schema that produced the struct.
 */
import { readFileSync } from 'node:fs';
import { AttnScoreError } from '../../scoring/errors.js';

/** Scalar types a uniforms field may have; each takes 4 bytes. */
export type UniformType = 'u32' | 'i32' | 'f32';

/** Field names of a uniforms struct, in declaration order, with their types. */
export type UniformSchema = Readonly<Record<string, UniformType>>;

/** Values for every field of a schema. */
export type UniformValues<S extends UniformSchema> = { readonly [K in keyof S]: number };

/** A storage binding: its name, access mode and element type. */
export interface StorageBinding {
  readonly name: string;
  readonly access: 'read' | 'read_write';
  /** WGSL element type of the runtime-sized array, such as `f32` or `vec4<f32>`. */
  readonly element: string;
}

/** One kernel: its WGSL file under kernels/, uniforms and storage bindings. */
export interface ProgramSpec<S extends UniformSchema> {
  readonly file: string;
  readonly uniforms: S;
  /** Storage bindings in binding order; binding 0 is always the uniforms. */
  readonly storage: readonly StorageBinding[];
}

/** A compiled kernel, ready to dispatch. */
export interface Program<S extends UniformSchema> {
  readonly spec: ProgramSpec<S>;
  readonly pipeline: GPUComputePipeline;
  /** Bytes of the packed uniforms: 4 per field, rounded up to 16. */
  readonly uniformBytes: number;
  /** Packs `values` in schema order. */
  packUniforms(values: UniformValues<S>): ArrayBuffer;
}

const kernelFolder = new URL('../../../kernels/', import.meta.url);

/** Returns the WGSL declarations that `spec` fixes: the `Params` struct and every binding. */
export function declarations<S extends UniformSchema>(spec: ProgramSpec<S>): string {
  const fields = Object.entries(spec.uniforms).map(([name, type]) => `  ${name}: ${type},`);
  const lines = [
    'struct Params {',
    ...fields,
    '}',
    '@group(0) @binding(0) var<uniform> params: Params;',
    ...spec.storage.map(
      (binding, index) =>
        `@group(0) @binding(${index + 1}) var<storage, ${binding.access}> ${binding.name}: ` +
        `array<${binding.element}>;`,
    ),
  ];
  return lines.join('\n') + '\n';
}

/** Packs `values` into the byte layout of the struct that {@link declarations} generates. */
export function packUniforms<S extends UniformSchema>(schema: S, values: UniformValues<S>): ArrayBuffer {
  const entries = Object.entries(schema);
  const buffer = new ArrayBuffer(uniformBytesOf(schema));
  const view = new DataView(buffer);
  entries.forEach(([name, type], index) => {
    const value = values[name]!;
    const at = index * 4;
    if (type === 'f32') {
      view.setFloat32(at, value, true);
    } else if (type === 'u32') {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        throw new AttnScoreError('INTERNAL', `uniform ${name} must be a u32 (got ${value})`);
      }
      view.setUint32(at, value, true);
    } else {
      if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
        throw new AttnScoreError('INTERNAL', `uniform ${name} must be an i32 (got ${value})`);
      }
      view.setInt32(at, value, true);
    }
  });
  return buffer;
}

function uniformBytesOf(schema: UniformSchema): number {
  return Math.max(16, Math.ceil((Object.keys(schema).length * 4) / 16) * 16);
}

/** Reads the kernel's WGSL file, prepends its declarations and compiles it on `device`. */
export function compileProgram<S extends UniformSchema>(device: GPUDevice, spec: ProgramSpec<S>): Program<S> {
  const body = readFileSync(new URL(spec.file, kernelFolder), 'utf8');
  const module = device.createShaderModule({ label: spec.file, code: declarations(spec) + body });
  const entries: GPUBindGroupLayoutEntry[] = [
    { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
    ...spec.storage.map(
      (binding, index): GPUBindGroupLayoutEntry => ({
        binding: index + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: binding.access === 'read' ? 'read-only-storage' : 'storage' },
      }),
    ),
  ];
  const layout = device.createBindGroupLayout({ label: spec.file, entries });
  const pipeline = device.createComputePipeline({
    label: spec.file,
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: 'main' },
  });
  return {
    spec,
    pipeline,
    uniformBytes: uniformBytesOf(spec.uniforms),
    packUniforms: (values) => packUniforms(spec.uniforms, values),
  };
}

/** Row normalisation (kernels/normalize.wgsl). */
export const normalizeSpec = {
  file: 'normalize.wgsl',
  uniforms: { rows: 'u32', dim: 'u32', paddedDim: 'u32', gridWidth: 'u32' },
  storage: [
    { name: 'source', access: 'read', element: 'f32' },
    { name: 'destination', access: 'read_write', element: 'f32' },
  ],
} as const satisfies ProgramSpec<UniformSchema>;

/** Tiled cosine with the CX and per-tile top-k epilogue (kernels/cosine-topk.wgsl). */
export const cosineSpec = {
  file: 'cosine-topk.wgsl',
  uniforms: {
    dimVec4: 'u32',
    userRows: 'u32',
    userBase: 'u32',
    contentRows: 'u32',
    contentBase: 'u32',
    tileBase: 'u32',
    tileCount: 'u32',
    kTile: 'u32',
    alphaHigh: 'f32',
    alphaLow: 'f32',
    alphaLog2e: 'f32',
    threshold: 'f32',
    excludeRowsAt: 'u32',
    matrixColumns: 'u32',
  },
  storage: [
    { name: 'users', access: 'read', element: 'vec4<f32>' },
    { name: 'contents', access: 'read', element: 'vec4<f32>' },
    { name: 'weights', access: 'read', element: 'f32' },
    { name: 'exclusions', access: 'read', element: 'i32' },
    { name: 'cxPartial', access: 'read_write', element: 'f32' },
    { name: 'candidates', access: 'read_write', element: 'vec2<u32>' },
    { name: 'matrix', access: 'read_write', element: 'f32' },
  ],
} as const satisfies ProgramSpec<UniformSchema>;

/** Final top-k selection per user (kernels/merge-topk.wgsl). */
export const mergeSpec = {
  file: 'merge-topk.wgsl',
  uniforms: { candidatesPerUser: 'u32', k: 'u32' },
  storage: [
    { name: 'candidates', access: 'read', element: 'vec2<u32>' },
    { name: 'selected', access: 'read_write', element: 'vec2<u32>' },
    { name: 'counts', access: 'read_write', element: 'u32' },
  ],
} as const satisfies ProgramSpec<UniformSchema>;
