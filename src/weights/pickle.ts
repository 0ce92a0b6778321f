/**
 * Safe unpickling: pickleparser with an allow-list. Every GLOBAL a pickle names must be one of ours — each a
 * plain data constructor written here — or loading stops with an error naming it. No Python code runs, and
 * no object of the file's choosing is built.
 */
import { BufferReader, NameRegistry, Parser } from 'pickleparser';
import { InputError } from './tensor.js';

type Fn = (...args: never[]) => unknown;

/** A NameRegistry that refuses every name it was not given. */
class AllowList extends NameRegistry {
  constructor(private readonly what: string) {
    super();
  }
  override onMissingName(module: string, name: string): never {
    throw new InputError(`${this.what} refers to ${module}.${name}, which tsimm does not load (only tensors and plain containers are allowed); convert the file to .safetensors with the tool that made it`);
  }
}

export interface StorageRef {
  kind: 'storage';
  dtype: string;
  key: string;
  numel?: number;
}

export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

export interface NumpyArray {
  kind: 'ndarray';
  dtype: string;
  shape: number[];
  fortran: boolean;
  data: Uint8Array;
}

/** torch storage classes → element type. */
export const TORCH_STORAGE: Record<string, string> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

/** Python 2-style byte strings: one char per byte (Buffer's latin1 decoding is native and fast). */
const latin1 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

/** argparse.Namespace, built by NEWOBJ (a constructor) and given its attributes by BUILD: data only. */
class Namespace {
  readonly kind = 'namespace';
}

function torchNames(what: string): AllowList {
  const reg = new AllowList(what);
  const ordered = () => new Map();
  reg.register('collections', 'OrderedDict', ordered as Fn);
  reg.register('torch._utils', '_rebuild_tensor_v2', ((storage: StorageRef, offset: number, shape: number[], stride: number[]) =>
    ({ kind: 'tensor', storage, offset, shape: [...shape], stride: [...stride] }) satisfies TensorRef) as Fn);
  reg.register('torch._utils', '_rebuild_tensor', ((storage: StorageRef, offset: number, shape: number[], stride: number[]) =>
    ({ kind: 'tensor', storage, offset, shape: [...shape], stride: [...stride] }) satisfies TensorRef) as Fn);
  reg.register('torch._utils', '_rebuild_parameter', ((t: TensorRef) => t) as Fn);
  // timm's train.py checkpoints carry its command line (args) beside the state dict: plain attributes, kept as data.
  reg.register('argparse', 'Namespace', Namespace as unknown as Fn);
  for (const [cls, dtype] of Object.entries(TORCH_STORAGE)) {
    // A storage class is only a dtype tag inside a persistent id.
    reg.register('torch', cls, Object.assign(() => undefined, { dtype }) as Fn);
  }
  return reg;
}

function numpyNames(what: string): AllowList {
  const reg = new AllowList(what);
  const reconstruct = () => {
    const arr: NumpyArray & { __setstate__(s: unknown[]): void } = {
      kind: 'ndarray',
      dtype: '',
      shape: [],
      fortran: false,
      data: new Uint8Array(0),
      __setstate__(s: unknown[]) {
        // (version, shape, dtype, is_fortran, raw bytes)
        const [, shape, dtype, fortran, raw] = s as [number, number[], { descr: string }, boolean, Uint8Array | string];
        this.shape = [...shape];
        this.dtype = dtype.descr;
        this.fortran = fortran;
        this.data = typeof raw === 'string' ? latin1(raw) : raw;
      },
    };
    return arr;
  };
  const dtype = (spec: string) => ({
    descr: spec,
    __setstate__(s: unknown[]) {
      const order = s[1] as string;
      this.descr = `${order === '|' || order === '=' ? '<' : order}${spec}`;
    },
  });
  for (const mod of ['numpy.core.multiarray', 'numpy._core.multiarray']) reg.register(mod, '_reconstruct', reconstruct as Fn);
  reg.register('numpy', 'ndarray', (() => undefined) as Fn);
  reg.register('numpy', 'dtype', dtype as Fn);
  reg.register('collections', 'OrderedDict', (() => new Map()) as Fn);
  // Protocol-2 pickles spell bytes as _codecs.encode(text, 'latin1'): pure data, nothing else is accepted.
  reg.register('_codecs', 'encode', ((text: string, encoding: string) => {
    if (encoding !== 'latin1' && encoding !== 'latin-1') throw new InputError(`${what}: unsupported byte encoding ${encoding}`);
    return latin1(text);
  }) as Fn);
  return reg;
}

function parser(names: AllowList, persistent?: (pid: unknown[]) => unknown): Parser {
  return new Parser({
    nameResolver: names,
    unpicklingTypeOfDictionary: 'Map',
    persistentResolver: { resolve: (pid: unknown) => (persistent ? persistent(pid as unknown[]) : failPersistent()) },
  });
}

const failPersistent = () => {
  throw new InputError('unexpected persistent reference in a numpy pickle');
};

/** A torch pickle: storages come back as StorageRefs (the caller reads their bytes). */
export function unpickleTorch(bytes: Uint8Array, what: string): unknown {
  const p = parser(torchNames(what), (pid) => storageFromPid(pid, what));
  return guard(() => p.parse(bytes), what);
}

export function storageFromPid(pid: unknown[], what: string): StorageRef {
  const [tag, cls, key, , numel] = pid as [string, { dtype?: string }, string, string, number];
  if (tag !== 'storage' || !cls?.dtype) throw new InputError(`${what}: unexpected persistent id ${JSON.stringify(pid.map(String))}`);
  return { kind: 'storage', dtype: cls.dtype, key: String(key), numel: typeof numel === 'number' ? numel : undefined };
}

/** Read consecutive pickles from one buffer (the legacy torch format is several in a row). */
export class PickleStream {
  private readonly reader: BufferReader;
  constructor(
    bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.reader = new BufferReader(bytes);
  }
  get position(): number {
    return this.reader.position;
  }
  skip(n: number): void {
    this.reader.skip(n);
  }
  next(persistent?: (pid: unknown[]) => unknown): unknown {
    const p = parser(torchNames(this.what), persistent);
    return guard(() => p.read(this.reader), this.what);
  }
}

/** A pickle of numpy arrays (PaddleClas .pdparams). */
export function unpickleNumpy(bytes: Uint8Array, what: string): unknown {
  return guard(() => parser(numpyNames(what)).parse(bytes), what);
}

function guard<T>(f: () => T, what: string): T {
  // pickleparser console.warns on integers past 2^53, which a hostile file can print by the thousand.
  const warn = console.warn;
  console.warn = () => {};
  try {
    return f();
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${what} is not a readable pickle (${JSON.stringify((e as Error).message.slice(0, 80)).slice(1, -1)}); the file may be truncated or not a checkpoint`);
  } finally {
    console.warn = warn;
  }
}
