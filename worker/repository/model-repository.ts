/**
 * The model repository: models/<name>/[config.json] + models/<name>/<version>/model.onnx, as in
 * Triton. Scanned at start and every `pollIntervalMs`: a new version is loaded and served when ready;
 * a removed one stops taking requests, finishes those it has, then is released; a changed file is
 * loaded beside the old one, which serves until the new one is ready, or keeps serving (with the
 * reason in the index) when the new one fails to load.
 * (Triton docs/user_guide/model_repository.md and model_management.md, "poll" mode.)
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../shared/logger.ts';
import { InfergateError } from '../../shared/errors.ts';
import { canonicalVersion } from '../../shared/protocol/version.ts';
import { readModelConfig, type ModelConfig } from './model-config.ts';
import { selectVersions } from './version-policy.ts';
import type { LoadedSession, Runner } from './session-runner.ts';
import { RING_SLOTS } from './session-ring.ts';
import type { SessionOptions, TensorSpec } from './session-protocol.ts';
import { Scheduler, type SchedulerObserver } from '../scheduler/scheduler.ts';

/** Runs faster than this get the deep pipeline (RING_SLOTS runs per session thread, not 2). */
const FAST_RUN_MS = 1;

export type VersionState = 'LOADING' | 'READY' | 'UNLOADING' | 'UNAVAILABLE';

/** A loaded, servable model version. */
export interface ServedVersion {
  name: string;
  version: string;
  config: ModelConfig;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  scheduler: Scheduler;
}

export interface IndexEntry {
  name: string;
  version: string;
  state: VersionState;
  reason: string;
}

interface VersionSlot {
  state: VersionState;
  reason: string;
  fingerprint: string;
  served?: ServedVersion | undefined;
  runners?: Runner[] | undefined;
}

interface ModelSlot {
  versions: Map<string, VersionSlot>;
  /** Set by an explicit unload: polling leaves the model alone until an explicit load. */
  unloaded: boolean;
  reason: string;
}

export interface RepositoryDeps {
  logger: Logger;
  now: () => number;
  loadSession: (modelPath: string, options: SessionOptions) => Promise<LoadedSession>;
  observerFor?: (name: string, version: string) => SchedulerObserver;
}

export class ModelRepository {
  readonly root: string;
  readonly #deps: RepositoryDeps;
  readonly #models = new Map<string, ModelSlot>();
  #scanning: Promise<void> = Promise.resolve();
  #pollTimer: NodeJS.Timeout | undefined;

  constructor(root: string, deps: RepositoryDeps) {
    this.root = root;
    this.#deps = deps;
  }

  /** First scan (every model loaded or failed), then polling. */
  async start(pollIntervalMs: number): Promise<void> {
    await this.scan();
    if (pollIntervalMs > 0) {
      this.#pollTimer = setInterval(() => void this.scan().catch((err: Error) => this.#deps.logger.error({ err }, 'repository scan failed')), pollIntervalMs);
      this.#pollTimer.unref();
    }
  }

  /** Rescans the whole repository; concurrent calls are serialised. */
  scan(only?: string): Promise<void> {
    const next = this.#scanning.then(() => this.#scanNow(only));
    this.#scanning = next.catch(() => undefined);
    return next;
  }

  /** The version to serve: the one asked for, else the highest ready one. */
  resolve(name: string, requestedVersion?: string): ServedVersion {
    const model = this.#models.get(name);
    const version = requestedVersion === undefined ? undefined : canonicalVersion(requestedVersion);
    if (model === undefined || (model.versions.size === 0 && model.unloaded)) {
      throw new InfergateError('WK_ERR_MODEL_NOT_FOUND', `model '${name}' is not served here`);
    }
    if (version !== undefined) {
      const slot = model.versions.get(version);
      if (slot === undefined) throw new InfergateError('WK_ERR_VERSION_NOT_FOUND', `model '${name}' has no version '${version}'`);
      if (slot.served === undefined || slot.state !== 'READY') {
        throw new InfergateError('WK_ERR_MODEL_NOT_READY', `model '${name}' version ${version} is ${slot.state.toLowerCase()}${slot.reason ? `: ${slot.reason}` : ''}`, { 'Retry-After': '1' });
      }
      return slot.served;
    }
    let best: ServedVersion | undefined;
    for (const [v, slot] of model.versions) {
      if (slot.state === 'READY' && slot.served !== undefined && (best === undefined || Number(v) > Number(best.version))) best = slot.served;
    }
    if (best === undefined) throw new InfergateError('WK_ERR_MODEL_NOT_READY', `model '${name}' has no ready version${model.reason ? `: ${model.reason}` : ''}`, { 'Retry-After': '1' });
    return best;
  }

  /** Whether the named model (and version, if given) can take requests now. */
  isReady(name: string, version?: string): boolean {
    try {
      this.resolve(name, version);
      return true;
    } catch {
      return false;
    }
  }

  /** Every version ready, for the server's readiness and metadata. */
  servedVersions(): ServedVersion[] {
    const out: ServedVersion[] = [];
    for (const model of this.#models.values()) {
      for (const slot of model.versions.values()) if (slot.state === 'READY' && slot.served) out.push(slot.served);
    }
    return out;
  }

  /** Versions of a model known to the repository, in any state. */
  versionsOf(name: string): string[] {
    return [...(this.#models.get(name)?.versions.keys() ?? [])].sort((a, b) => Number(a) - Number(b));
  }

  /** The repository index (V2 repository extension): every model on disk or loaded, each version's state. */
  async index(): Promise<IndexEntry[]> {
    const entries: IndexEntry[] = [];
    const names = new Set([...this.#models.keys(), ...(await this.#listModelDirs())]);
    for (const name of [...names].sort()) {
      const model = this.#models.get(name);
      if (model === undefined || model.versions.size === 0) {
        entries.push({ name, version: '', state: 'UNAVAILABLE', reason: model?.reason || (model?.unloaded ? 'unloaded' : 'not loaded') });
        continue;
      }
      for (const [version, slot] of [...model.versions].sort((a, b) => Number(a[0]) - Number(b[0]))) {
        const reason = slot.reason || (model.reason ? `new files not loaded: ${model.reason}` : '');
        entries.push({ name, version, state: slot.state, reason });
      }
    }
    return entries;
  }

  /** Total requests queued across every model: reported to the gateway for load-aware balancing. */
  queueDepth(): number {
    // Read on every request (a response header): walk the slots rather than build a list.
    let depth = 0;
    for (const model of this.#models.values()) {
      for (const slot of model.versions.values()) if (slot.served !== undefined) depth += slot.served.scheduler.queueDepth;
    }
    return depth;
  }

  /** Explicit load (repository extension): loads or reloads the model; throws with the reason on failure. */
  async load(name: string): Promise<void> {
    if (!(await this.#listModelDirs()).includes(name)) throw new InfergateError('WK_ERR_MODEL_NOT_FOUND', `no model '${name}' in the repository`);
    const model = this.#models.get(name);
    if (model !== undefined) model.unloaded = false;
    await this.scan(name);
    const after = this.#models.get(name);
    const failures = [...(after?.versions.values() ?? [])].filter((v) => v.state === 'UNAVAILABLE');
    if (after?.reason) throw new InfergateError('WK_ERR_LOAD_FAILED', `failed to load '${name}': ${after.reason}`);
    if (failures.length > 0 && this.servedVersions().every((s) => s.name !== name)) {
      throw new InfergateError('WK_ERR_LOAD_FAILED', `failed to load '${name}': ${failures.map((f) => f.reason).join('; ')}`);
    }
  }

  /** Explicit unload: in-flight requests finish, then the sessions are released. */
  async unload(name: string): Promise<void> {
    const model = this.#models.get(name);
    if (model === undefined) throw new InfergateError('WK_ERR_MODEL_NOT_FOUND', `model '${name}' is not loaded`);
    model.unloaded = true;
    await Promise.all([...model.versions.keys()].map((v) => this.#unloadVersion(name, model, v)));
  }

  /** Stops polling and releases every model after its in-flight requests finish. */
  async close(): Promise<void> {
    clearInterval(this.#pollTimer);
    await this.#scanning;
    await Promise.all([...this.#models].flatMap(([name, model]) => [...model.versions.keys()].map((v) => this.#unloadVersion(name, model, v))));
  }

  async #listModelDirs(): Promise<string[]> {
    try {
      const entries = await readdir(this.root, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'build').map((e) => e.name);
    } catch {
      return [];
    }
  }

  async #scanNow(only?: string): Promise<void> {
    const onDisk = await this.#listModelDirs();
    const names = only === undefined ? new Set([...onDisk, ...this.#models.keys()]) : new Set([only]);
    await Promise.all([...names].map((name) => this.#syncModel(name, onDisk.includes(name))));
  }

  async #syncModel(name: string, exists: boolean): Promise<void> {
    let model = this.#models.get(name);
    if (model?.unloaded) return;
    const found = exists ? await this.#readVersions(name) : new Map<string, string>();
    if (found.size === 0 && model === undefined) return; // a folder with no versions: not a model (yet)
    if (model === undefined) {
      model = { versions: new Map(), unloaded: false, reason: '' };
      this.#models.set(name, model);
    }
    let config: ModelConfig;
    let configStamp: string;
    try {
      [config, configStamp] = await this.#readConfig(name);
      model.reason = '';
    } catch (err) {
      model.reason = (err as Error).message; // keep what is serving; the index shows why nothing new loads
      this.#deps.logger.error({ model: name, reason: model.reason }, 'model config rejected');
      return;
    }
    const wanted = new Set(selectVersions([...found.keys()].map(Number), config.versionPolicy).map(String));
    const work: Array<Promise<void>> = [];
    for (const version of model.versions.keys()) {
      if (!wanted.has(version)) work.push(this.#unloadVersion(name, model, version));
    }
    for (const version of wanted) {
      const fingerprint = `${found.get(version)}|${configStamp}`;
      const slot = model.versions.get(version);
      if (slot === undefined || slot.fingerprint !== fingerprint) work.push(this.#loadVersion(name, model, version, config, fingerprint));
    }
    await Promise.all(work);
    if (model.versions.size === 0 && found.size === 0) this.#models.delete(name);
  }

  /** version -> fingerprint (size and mtime of model.onnx) for every numeric folder holding one. */
  async #readVersions(name: string): Promise<Map<string, string>> {
    const versions = new Map<string, string>();
    let entries;
    try {
      entries = await readdir(join(this.root, name), { withFileTypes: true });
    } catch {
      return versions;
    }
    await Promise.all(entries.filter((e) => e.isDirectory() && /^\d{1,9}$/.test(e.name)).map(async (e) => {
      try {
        const info = await stat(join(this.root, name, e.name, 'model.onnx'));
        if (info.isFile()) versions.set(canonicalVersion(e.name), `${info.size}:${info.mtimeMs}`);
      } catch {
        // no model.onnx in this folder: not a version
      }
    }));
    return versions;
  }

  async #readConfig(name: string): Promise<[ModelConfig, string]> {
    const path = join(this.root, name, 'config.json');
    const config = await readModelConfig(path);
    const stamp = await stat(path).then((s) => `${s.size}:${s.mtimeMs}`, () => 'none');
    return [config, stamp];
  }

  async #loadVersion(name: string, model: ModelSlot, version: string, config: ModelConfig, fingerprint: string): Promise<void> {
    const previous = model.versions.get(version);
    const slot: VersionSlot = previous ?? { state: 'LOADING', reason: '', fingerprint };
    if (previous === undefined) model.versions.set(version, slot);
    const { logger, now } = this.#deps;
    const path = join(this.root, name, version, 'model.onnx');
    const started = now();
    const runners: Runner[] = [];
    try {
      const sessions = [];
      for (let i = 0; i < config.instanceCount; i++) sessions.push(await this.#deps.loadSession(path, config.session));
      runners.push(...sessions.map((s) => s.runner));
      const { inputs, outputs } = sessions[0]!;
      checkBatchable(config, inputs, outputs);
      const scheduler = new Scheduler({
        runners,
        maxBatchSize: config.maxBatchSize,
        dynamicBatching: config.dynamicBatching,
        maxQueueSize: config.maxQueueSize,
        pipelineDepth: 2,
        // A model whose runs take under a millisecond fills its session thread's ring: see SchedulerOptions.
        deepPipeline: { depth: RING_SLOTS, belowMs: FAST_RUN_MS },
        now,
        observer: this.#deps.observerFor?.(name, version),
      });
      const old = slot.served;
      const oldRunners = slot.runners;
      Object.assign(slot, { state: 'READY', reason: '', fingerprint, served: { name, version, config, inputs, outputs, scheduler }, runners });
      logger.info({ model: name, version, ms: Math.round(now() - started), instances: runners.length }, old ? 'model version reloaded' : 'model version ready');
      if (old !== undefined) void this.#release(old, oldRunners);
    } catch (err) {
      await Promise.all(runners.map((r) => r.close()));
      const reason = (err as Error).message;
      slot.fingerprint = fingerprint; // do not retry the same files on every poll
      if (slot.served !== undefined) {
        slot.reason = `reload failed, previous files still serving: ${reason}`;
        logger.error({ model: name, version, reason }, 'model version reload failed; previous version keeps serving');
      } else {
        slot.state = 'UNAVAILABLE';
        slot.reason = reason;
        logger.error({ model: name, version, reason }, 'model version failed to load');
      }
    }
  }

  async #unloadVersion(name: string, model: ModelSlot, version: string): Promise<void> {
    const slot = model.versions.get(version);
    if (slot === undefined || slot.state === 'UNLOADING') return;
    slot.state = 'UNLOADING';
    await this.#release(slot.served, slot.runners);
    if (model.versions.get(version) === slot) model.versions.delete(version);
    this.#deps.logger.info({ model: name, version }, 'model version unloaded');
  }

  async #release(served: ServedVersion | undefined, runners: Runner[] | undefined): Promise<void> {
    if (served !== undefined) await served.scheduler.drain();
    await Promise.all((runners ?? []).map((r) => r.close()));
  }
}

/** Batching splits and merges along dim 0, so every input and output must have a free first dim. */
function checkBatchable(config: ModelConfig, inputs: readonly TensorSpec[], outputs: readonly TensorSpec[]): void {
  if (config.maxBatchSize === 0) return;
  for (const spec of [...inputs, ...outputs]) {
    if (spec.shape.length === 0 || spec.shape[0] !== -1) {
      throw new Error(`maxBatchSize is ${config.maxBatchSize} but '${spec.name}' has shape [${spec.shape.join(',')}], whose first dimension is not a dynamic batch dimension`);
    }
  }
  if (inputs.length === 0) throw new Error('a model with no inputs cannot batch; set maxBatchSize to 0');
}
