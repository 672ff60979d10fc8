// deploy/ checked without Docker or a cluster (neither exists on these machines): every Kubernetes
// manifest is validated against the Kubernetes schemas (kubernetes-models' JSON-schema validators,
// plus a strict pass through their TypeScript types that rejects unknown fields, as `kubectl apply`
// does), and the manifests, compose.yaml and the Dockerfile are checked against the code: ports,
// probe paths, environment variable names, CLI flags, the gateway config they mount (parsed by the
// real schema) and the drain timings. Deliberately broken copies prove that each check can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import ts from 'typescript';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseGatewayConfig } from '../../../gateway/config/load.ts';
import { GatewayConfigSchema, type GatewayConfig } from '../../../gateway/config/schema.ts';
import { GATEWAY_USAGE, resolveGatewayConfig } from '../../../gateway/main.ts';
import { WorkerConfigSchema } from '../../../worker/config.ts';
import { WORKER_USAGE } from '../../../worker/main.ts';
import { REPO_ROOT } from '../../helpers/processes.ts';
import { SERVER_NODE_FLAGS } from '../../../shared/cli/node-flags.ts';

// YAML documents are untyped trees; `any` keeps the walking code readable, the checks do the typing.
type Doc = any;

const DEPLOY = join(REPO_ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');
const read = (path: string): string => readFileSync(path, 'utf8');

const GATEWAY_DEFAULTS = GatewayConfigSchema.parse({});
const WORKER_DEFAULTS = WorkerConfigSchema.parse({ modelsDir: '/models' });
const PROBE_PATHS = { liveness: '/v2/health/live', readiness: '/v2/health/ready' } as const;
const PACKAGE_VERSION = (JSON.parse(read(join(REPO_ROOT, 'package.json'))) as { version: string }).version;

// ---- loading -------------------------------------------------------------------------------------

interface Manifest { file: string; doc: Doc }

function parseDocs(path: string): Doc[] {
  return parseAllDocuments(read(path)).map((d, i) => {
    assert.equal(d.errors.length, 0, `${path} document ${i + 1}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS();
  }).filter((d) => d !== null && d !== undefined);
}

const kustomization: Doc = parseYaml(read(join(K8S, 'kustomization.yaml')));
const manifests: Manifest[] = (kustomization.resources as string[]).flatMap((file) => parseDocs(join(K8S, file)).map((doc) => ({ file, doc })));
const docs = manifests.map((m) => m.doc);
const find = (kind: string, name: string): Doc => {
  const found = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  assert.ok(found, `no ${kind} named ${name} under deploy/k8s`);
  return found;
};
const workloads = (): Doc[] => docs.filter((d) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(d.kind));

const gatewayDeployment = find('Deployment', 'infergate-gateway');
const workerDeployment = find('Deployment', 'infergate-worker');
const redisWorkload = find('StatefulSet', 'infergate-redis');
const container = (workload: Doc, name: string): Doc => {
  const c = (workload.spec.template.spec.containers as Doc[]).find((x) => x.name === name);
  assert.ok(c, `${workload.metadata.name} has no container ${name}`);
  return c;
};
const gatewayContainer = container(gatewayDeployment, 'gateway');
const workerContainer = container(workerDeployment, 'worker');
const configMap = find('ConfigMap', 'infergate-gateway-config');
const secret = find('Secret', 'infergate-gateway-secrets');
const compose: Doc = parseYaml(read(join(DEPLOY, 'compose.yaml')), { merge: true });

// ---- small helpers -------------------------------------------------------------------------------

/** Does a label selector ({matchLabels}) select pods with `labels`? matchExpressions are not used here. */
function selects(selector: Doc, labels: Record<string, string>): boolean {
  assert.equal(selector?.matchExpressions, undefined, 'matchExpressions are not used in deploy/k8s');
  const wanted = Object.entries((selector?.matchLabels ?? selector ?? {}) as Record<string, string>);
  return wanted.length > 0 && wanted.every(([k, v]) => labels[k] === v);
}
const podLabels = (workload: Doc): Record<string, string> => workload.spec.template.metadata.labels;

/** A named or numeric container port → its number, in `workload`'s containers. */
function containerPort(workload: Doc, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  for (const c of workload.spec.template.spec.containers as Doc[]) {
    const hit = (c.ports as Doc[] | undefined)?.find((p) => p.name === port);
    if (hit !== undefined) return hit.containerPort;
  }
  return undefined;
}
const namedPort = (c: Doc, name: string): number => {
  const p = (c.ports as Doc[]).find((x) => x.name === name);
  assert.ok(p, `container ${c.name} has no port named ${name}`);
  return p.containerPort;
};

/** The value of `--flag` in an argv array. */
function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Every `--flag` in argv appears in the command's usage text; the command is one the CLI knows. */
function checkArgs(args: readonly string[]): string[] {
  const problems: string[] = [];
  const commands = [...read(join(REPO_ROOT, 'shared/cli/main.ts')).matchAll(/^ {2}(\w+): async \(\) =>/gm)].map((m) => m[1]);
  const [command, ...rest] = args;
  if (!commands.includes(command)) problems.push(`unknown command '${command}' (known: ${commands.join(', ')})`);
  const usage = command === 'worker' ? WORKER_USAGE : command === 'gateway' ? GATEWAY_USAGE : '';
  for (const arg of rest.filter((a) => a.startsWith('--'))) {
    if (!new RegExp(`${arg}(?![\\w-])`).test(usage)) problems.push(`'${command}' has no flag ${arg}`);
  }
  return problems;
}

/** Environment variable names the code reads (gateway/, worker/, shared/: `env.X`, `process.env.X`). */
function envNamesReadByCode(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(REPO_ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|js)$/.test(entry.name)) {
        for (const m of read(join(REPO_ROOT, path)).matchAll(/\benv(?:\.([A-Z][A-Z0-9_]*)|\[['"]([A-Z][A-Z0-9_]*)['"]\])/g)) names.add((m[1] ?? m[2])!);
      }
    }
  };
  for (const dir of ['gateway', 'worker', 'shared']) walk(dir);
  return names;
}
const CODE_ENV = envNamesReadByCode();
const unknownEnv = (names: Iterable<string>): string[] => [...names].filter((n) => !CODE_ENV.has(n));

/** The NetworkPolicy rule: it selects `target` pods, and admits only `allowed` pods, only on `port`. */
function ingressOnlyFrom(policy: Doc, target: Doc, allowed: Doc, port: number): string[] {
  const problems: string[] = [];
  const spec = policy.spec ?? {};
  if (!selects(spec.podSelector, podLabels(target))) problems.push(`does not select the ${target.metadata.name} pods`);
  if (!(spec.policyTypes as string[] | undefined)?.includes('Ingress')) problems.push('policyTypes lacks Ingress');
  const rules = (spec.ingress ?? []) as Doc[];
  if (rules.length === 0) problems.push('no ingress rule');
  const others = workloads().filter((w) => w !== allowed);
  for (const [i, rule] of rules.entries()) {
    const peers = (rule.from ?? []) as Doc[];
    if (peers.length === 0) problems.push(`rule ${i}: no 'from' admits every source`);
    for (const peer of peers) {
      if (peer.namespaceSelector !== undefined || peer.ipBlock !== undefined) problems.push(`rule ${i}: admits more than pods of this namespace`);
      if (!selects(peer.podSelector, podLabels(allowed))) problems.push(`rule ${i}: a peer does not select the ${allowed.metadata.name} pods`);
      for (const other of others) if (selects(peer.podSelector, podLabels(other))) problems.push(`rule ${i}: a peer also admits ${other.metadata.name} pods`);
    }
    const ports = (rule.ports ?? []) as Doc[];
    if (ports.length === 0) problems.push(`rule ${i}: no 'ports' admits every port`);
    for (const p of ports) if (containerPort(target, p.port) !== port || (p.protocol ?? 'TCP') !== 'TCP') problems.push(`rule ${i}: port ${p.port} is not TCP ${port}`);
  }
  return problems;
}

/** The seconds of a preStop `sleep N` (exec or the sleep action). */
function preStopSleepSeconds(c: Doc): number {
  const pre = c.lifecycle?.preStop;
  if (pre?.sleep?.seconds !== undefined) return pre.sleep.seconds;
  const command = pre?.exec?.command as string[] | undefined;
  assert.ok(command?.[0] === 'sleep' && command.length === 2, `${c.name}: preStop is not a sleep: ${JSON.stringify(pre)}`);
  return Number(command[1]);
}

/** "40s", "1m30s" → seconds (compose durations). */
function composeSeconds(text: string): number {
  let total = 0;
  for (const m of String(text).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return total;
}

/** The gateway config the ConfigMap mounts: YAML text and its validated form. */
const configMapKey = (() => {
  const volume = (gatewayDeployment.spec.template.spec.volumes as Doc[]).find((v) => v.configMap?.name === configMap.metadata.name);
  assert.ok(volume, 'the gateway Deployment mounts no volume from the gateway ConfigMap');
  const mount = (gatewayContainer.volumeMounts as Doc[]).find((m) => m.name === volume.name);
  assert.ok(mount, 'the gateway container does not mount the ConfigMap volume');
  const configPath = flag(gatewayContainer.args, 'config');
  assert.ok(configPath !== undefined, 'the gateway container has no --config');
  assert.equal(posix.dirname(configPath), mount.mountPath, '--config is not inside the ConfigMap mount');
  return posix.basename(configPath);
})();
const configMapText: string = configMap.data[configMapKey];
const clusterConfig: GatewayConfig = parseGatewayConfig(parseYaml(configMapText), 'ConfigMap infergate-gateway-config');

/** Container env as the process would see it: literal values, Secret values, fieldRefs as placeholders. */
function containerEnv(c: Doc): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of (c.env ?? []) as Doc[]) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef !== undefined) {
      const ref = e.valueFrom.secretKeyRef;
      const s = find('Secret', ref.name);
      const value = s.stringData?.[ref.key] ?? (s.data?.[ref.key] !== undefined ? Buffer.from(s.data[ref.key], 'base64').toString('utf8') : undefined);
      if (value === undefined) assert.ok(ref.optional === true, `${c.name}: Secret ${ref.name} has no key ${ref.key}`);
      else env[e.name] = value;
    } else if (e.valueFrom?.fieldRef !== undefined) env[e.name] = 'pod-field-value';
    else assert.fail(`${c.name}: env ${e.name} has neither value nor a known valueFrom`);
  }
  return env;
}

/** Runs the gateway's own config resolution (file + environment) on a config text. */
async function resolveWith(configText: string, env: Record<string, string>): Promise<GatewayConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'infergate-deploy-'));
  try {
    const path = join(dir, 'gateway.yaml');
    writeFileSync(path, configText);
    return await resolveGatewayConfig({ config: path }, env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the Dockerfile ------------------------------------------------------------------------------

interface Instruction { stage: number; op: string; args: string }
const dockerfile: Instruction[] = (() => {
  const lines = read(join(DEPLOY, 'Dockerfile')).replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  let stage = -1;
  return lines.map((line) => {
    const [op, ...rest] = line.split(/\s+/);
    if (op!.toUpperCase() === 'FROM') stage += 1;
    return { stage, op: op!.toUpperCase(), args: rest.join(' ') };
  });
})();
const lastStage = Math.max(...dockerfile.map((i) => i.stage));
const runtime = dockerfile.filter((i) => i.stage === lastStage);
const runtimeOp = (op: string): Instruction[] => runtime.filter((i) => i.op === op);
const runtimeWorkdir = runtimeOp('WORKDIR').at(-1)?.args;
const exposed = runtimeOp('EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.replace(/\/tcp$/, '')));
const imageUid = Number(runtimeOp('USER').at(-1)?.args.split(':')[0]);
/** Where the runtime stage copies a build-context path (relative to the repository root) to. */
function copiedTo(source: string): string | undefined {
  for (const i of runtimeOp('COPY')) {
    const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    const dest = parts.at(-1)!;
    if (parts.slice(0, -1).includes(source) && !i.args.includes('--from=')) return posix.resolve(runtimeWorkdir ?? '/', dest);
  }
  return undefined;
}

// ---- schema validation ---------------------------------------------------------------------------

/** kubernetes-models' class for a manifest: `kubernetes-models/<apiVersion>/<Kind>`. */
async function modelFor(doc: Doc): Promise<new (data: Doc) => { validate(): void }> {
  const module = (await import(`kubernetes-models/${doc.apiVersion}/${doc.kind}`)) as Record<string, new (data: Doc) => { validate(): void }>;
  const model = module[doc.kind];
  assert.ok(model, `kubernetes-models has no ${doc.apiVersion} ${doc.kind}`);
  return model;
}
async function schemaErrors(doc: Doc): Promise<string | undefined> {
  try {
    new (await modelFor(doc))(structuredClone(doc)).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * The JSON schemas accept unknown fields (a typo like `readinesProbe` would pass and be dropped or
 * refused by the API server), so every manifest is also type-checked as an object literal against
 * kubernetes-models' TypeScript interfaces, whose excess-property check rejects unknown fields.
 * One compiler run for all of them: returns the diagnostics per input, in order.
 */
function unknownFieldErrors(inputs: readonly Doc[]): string[][] {
  const virtual = join(REPO_ROOT, 'test', 'unit', 'deploy', '__manifest_types__.ts');
  const lines: string[] = [];
  inputs.forEach((doc, i) => {
    lines.push(`import type { I${doc.kind} as T${i} } from 'kubernetes-models/${doc.apiVersion}/${doc.kind}';`);
  });
  const firstLine = lines.length;
  inputs.forEach((doc, i) => lines.push(`export const m${i}: T${i} = ${JSON.stringify(doc)};`));
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, noEmit: true, skipLibCheck: true, types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (file, language, ...rest) => (resolve(file) === virtual ? ts.createSourceFile(file, source, language) : getSourceFile(file, language, ...rest));
  host.fileExists = (file) => resolve(file) === virtual || fileExists(file);
  const program = ts.createProgram([virtual], options, host);
  const out: string[][] = inputs.map(() => []);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    const line = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    if (line >= firstLine && line - firstLine < inputs.length) out[line - firstLine]!.push(message);
    else assert.fail(`type check of the manifests failed outside a manifest: ${message}`);
  }
  return out;
}

// ==== tests =======================================================================================

test('kustomization: every listed file exists, every manifest under deploy/k8s is listed, one namespace', () => {
  const known = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'images', 'labels', 'commonAnnotations', 'configMapGenerator', 'secretGenerator', 'generatorOptions', 'patches']);
  for (const key of Object.keys(kustomization)) assert.ok(known.has(key), `kustomization.yaml: unexpected key ${key}`);
  assert.equal(kustomization.apiVersion, 'kustomize.config.k8s.io/v1beta1');
  assert.equal(kustomization.kind, 'Kustomization');
  const listed = kustomization.resources as string[];
  for (const file of listed) assert.ok(existsSync(join(K8S, file)), `kustomization lists ${file}, which does not exist`);
  for (const gen of [...(kustomization.configMapGenerator ?? []), ...(kustomization.secretGenerator ?? [])] as Doc[]) {
    for (const f of [...(gen.files ?? []), ...(gen.envs ?? [])] as string[]) assert.ok(existsSync(join(K8S, f.split('=').at(-1)!)), `generator file ${f} is missing`);
  }
  const onDisk = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
  assert.deepEqual(onDisk.filter((f) => !listed.includes(f)), [], 'manifests not listed in kustomization.yaml (kubectl apply -k would skip them)');
  assert.ok(docs.length >= 14, `only ${docs.length} manifests`);

  const namespace = find('Namespace', kustomization.namespace);
  for (const { file, doc } of manifests) {
    assert.ok(typeof doc.apiVersion === 'string' && typeof doc.kind === 'string' && typeof doc.metadata?.name === 'string', `${file}: a document lacks apiVersion, kind or metadata.name`);
    if (doc !== namespace && doc.metadata.namespace !== undefined) assert.equal(doc.metadata.namespace, kustomization.namespace, `${file}: ${doc.kind} ${doc.metadata.name} names another namespace`);
  }
  const ids = docs.map((d) => `${d.kind}/${d.metadata.name}`);
  assert.equal(new Set(ids).size, ids.length, `duplicate resources: ${ids.join(', ')}`);
  // Every kind the issue asks for is there.
  for (const kind of ['Namespace', 'StatefulSet', 'Deployment', 'Service', 'ConfigMap', 'Secret', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy']) {
    assert.ok(docs.some((d) => d.kind === kind), `no ${kind}`);
  }
});

test('every manifest validates against the Kubernetes schemas (kubernetes-models)', async () => {
  for (const { file, doc } of manifests) {
    const error = await schemaErrors(doc);
    assert.equal(error, undefined, `${file}: ${doc.kind} ${doc.metadata.name}: ${error}`);
  }
});

test('the schema check fails on broken manifests (wrong type, missing required field)', async () => {
  const wrongType = structuredClone(workerDeployment);
  wrongType.spec.template.spec.containers[0].ports[0].containerPort = '9001';
  assert.match((await schemaErrors(wrongType)) ?? 'passed', /containerPort must be integer/);
  const noSelector = structuredClone(workerDeployment);
  delete noSelector.spec.selector;
  assert.match((await schemaErrors(noSelector)) ?? 'passed', /required property 'selector'|must have required property selector/);
  const badHpa = structuredClone(find('HorizontalPodAutoscaler', 'infergate-worker'));
  badHpa.spec.minReplicas = 'two';
  assert.match((await schemaErrors(badHpa)) ?? 'passed', /minReplicas must be integer/);
});

test('no manifest has an unknown field (strict type check), and a typo is caught', () => {
  const typo = structuredClone(workerDeployment);
  typo.spec.template.spec.containers[0].readinesProbe = typo.spec.template.spec.containers[0].readinessProbe;
  const misplaced = structuredClone(find('Service', 'infergate-worker'));
  misplaced.spec.clusterIp = 'None';
  const errors = unknownFieldErrors([...docs, typo, misplaced]);
  docs.forEach((doc, i) => assert.deepEqual(errors[i], [], `${doc.kind} ${doc.metadata.name}: ${errors[i]!.join('; ')}`));
  assert.match(errors[docs.length]!.join(' '), /readinesProbe/);
  assert.match(errors[docs.length + 1]!.join(' '), /clusterIp/);
});

test('labels: workload selectors match their pods; Services, PDBs and the HPA target existing workloads', () => {
  for (const w of workloads()) assert.ok(selects(w.spec.selector, podLabels(w)), `${w.metadata.name}: selector does not match its pod labels`);
  for (const svc of docs.filter((d) => d.kind === 'Service')) {
    const targets = workloads().filter((w) => selects(svc.spec.selector, podLabels(w)));
    assert.equal(targets.length, 1, `Service ${svc.metadata.name} selects ${targets.length} workloads`);
    for (const p of svc.spec.ports as Doc[]) {
      assert.ok(containerPort(targets[0], p.targetPort ?? p.port) !== undefined, `Service ${svc.metadata.name}: targetPort ${p.targetPort} is no container port of ${targets[0].metadata.name}`);
    }
  }
  for (const pdb of docs.filter((d) => d.kind === 'PodDisruptionBudget')) {
    assert.equal(workloads().filter((w) => selects(pdb.spec.selector, podLabels(w))).length, 1, `PDB ${pdb.metadata.name} selects no single workload`);
  }
  assert.ok(selects(find('PodDisruptionBudget', 'infergate-worker').spec.selector, podLabels(workerDeployment)));
  const hpa = find('HorizontalPodAutoscaler', 'infergate-worker');
  assert.equal(hpa.apiVersion, 'autoscaling/v2');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: workerDeployment.metadata.name });
  assert.ok(hpa.spec.metrics.some((m: Doc) => m.type === 'Resource' && m.resource.name === 'cpu'), 'the HPA does not scale on CPU');
  assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas >= hpa.spec.minReplicas);
  assert.equal(workerDeployment.spec.replicas, undefined, 'the worker Deployment sets replicas, which every apply would reset under the HPA');
  assert.ok(workerContainer.resources?.requests?.cpu, 'CPU utilisation needs a CPU request on the worker');
  const pdb = find('PodDisruptionBudget', 'infergate-worker');
  assert.ok((pdb.spec.maxUnavailable ?? 0) < hpa.spec.minReplicas || (pdb.spec.minAvailable ?? 0) >= 1, 'the worker PDB allows evicting every worker');
});

test('ports agree with the code: gateway 8080/8081, worker 9001, Services target them', () => {
  assert.equal(namedPort(gatewayContainer, 'http'), GATEWAY_DEFAULTS.listen.port);
  assert.equal(namedPort(gatewayContainer, 'http'), clusterConfig.listen.port, 'the gateway container port is not the ConfigMap listen.port');
  assert.equal(namedPort(gatewayContainer, 'admin'), GATEWAY_DEFAULTS.admin.port);
  assert.equal(namedPort(gatewayContainer, 'admin'), clusterConfig.admin.port);
  assert.equal(GATEWAY_DEFAULTS.listen.port, 8080);
  assert.equal(GATEWAY_DEFAULTS.admin.port, 8081);

  assert.equal(WORKER_DEFAULTS.port, 9001);
  assert.equal(namedPort(workerContainer, 'http'), WORKER_DEFAULTS.port);
  assert.equal(Number(flag(workerContainer.args, 'port') ?? WORKER_DEFAULTS.port), namedPort(workerContainer, 'http'), 'worker --port differs from its containerPort');
  assert.equal(flag(workerContainer.args, 'host'), '0.0.0.0', 'the worker listens on 127.0.0.1 by default: unreachable from other pods');

  const gatewaySvc = find('Service', 'infergate-gateway');
  assert.equal(containerPort(gatewayDeployment, gatewaySvc.spec.ports[0].targetPort), GATEWAY_DEFAULTS.listen.port);
  assert.ok(!(gatewaySvc.spec.ports as Doc[]).some((p) => containerPort(gatewayDeployment, p.targetPort) === clusterConfig.admin.port), 'the admin port must not be in the public Service');
  const workerSvc = find('Service', 'infergate-worker');
  assert.equal(workerSvc.spec.clusterIP, 'None', 'the worker Service must be headless (one DNS record per pod)');
  assert.deepEqual((workerSvc.spec.ports as Doc[]).map((p) => [p.port, containerPort(workerDeployment, p.targetPort)]), [[WORKER_DEFAULTS.port, WORKER_DEFAULTS.port]]);
  const redisSvc = find('Service', 'infergate-redis');
  assert.equal(containerPort(redisWorkload, redisSvc.spec.ports[0].targetPort), 6379);
});

test('probes: liveness /v2/health/live and readiness /v2/health/ready on the serving port', () => {
  for (const [workload, c] of [[gatewayDeployment, gatewayContainer], [workerDeployment, workerContainer]] as const) {
    for (const [kind, path] of [['livenessProbe', PROBE_PATHS.liveness], ['readinessProbe', PROBE_PATHS.readiness]] as const) {
      const probe = c[kind];
      assert.equal(probe?.httpGet?.path, path, `${c.name} ${kind}`);
      assert.equal(containerPort(workload, probe.httpGet.port), namedPort(c, 'http'), `${c.name} ${kind} port`);
    }
  }
  for (const c of redisWorkload.spec.template.spec.containers as Doc[]) assert.ok(c.readinessProbe && c.livenessProbe, 'redis has probes');
});

test('the CLI commands and flags in the manifests exist; the image and its tag are the package\'s', () => {
  for (const c of [gatewayContainer, workerContainer]) {
    assert.deepEqual(checkArgs(c.args), [], `${c.name}: ${checkArgs(c.args).join('; ')}`);
    assert.equal(c.command, undefined, `${c.name}: command would replace the image's entrypoint`);
    assert.equal(c.image, `infergate:${PACKAGE_VERSION}`);
  }
  assert.deepEqual(checkArgs(['worker', '--models', '/m', '--bogus-flag', '1']), ["'worker' has no flag --bogus-flag"], 'the flag check can fail');
  assert.deepEqual(checkArgs(['serve']).length, 1, 'the command check can fail');
  assert.ok((kustomization.images as Doc[]).some((i) => i.name === 'infergate' && i.newTag === PACKAGE_VERSION));
  // The worker serves the models the image carries.
  assert.equal(flag(workerContainer.args, 'models'), copiedTo('models'), 'the worker --models is not where the Dockerfile puts models/');
});

test('environment: every variable the manifests and compose set is one the code reads', () => {
  for (const name of ['INFERGATE_ADMIN_TOKEN', 'INFERGATE_WORKERS', 'INFERGATE_PORT', 'INFERGATE_ADMIN_PORT', 'INFERGATE_JWT_SECRET', 'REDIS_URL', 'LOG_LEVEL', 'INFERGATE_WORKER_ID']) {
    assert.ok(CODE_ENV.has(name), `the scan of the code did not find ${name}: the scan is broken`);
  }
  const k8sNames = workloads().flatMap((w) => (w.spec.template.spec.containers as Doc[]).filter((c) => String(c.image).startsWith('infergate')).flatMap((c) => ((c.env ?? []) as Doc[]).map((e) => e.name as string)));
  assert.deepEqual(unknownEnv(k8sNames), [], 'env names in deploy/k8s that no code reads');
  const composeNames = Object.values(compose.services as Record<string, Doc>).filter((s) => String(s.image).startsWith('infergate')).flatMap((s) => Object.keys(environmentOf(s)));
  assert.deepEqual(unknownEnv(composeNames), [], 'env names in compose.yaml that no code reads');
  assert.deepEqual(unknownEnv(runtimeOp('ENV').map((i) => i.args.split(/[=\s]/)[0]!)), [], 'ENV names in the Dockerfile that no code reads');
  assert.deepEqual(unknownEnv(['INFERGATE_WORKER', 'REDIS_URL']), ['INFERGATE_WORKER'], 'the env check can fail');
  // Kubernetes' service links would inject <SERVICE>_PORT=tcp://… variables next to INFERGATE_PORT.
  for (const w of [gatewayDeployment, workerDeployment]) assert.equal(w.spec.template.spec.enableServiceLinks, false, `${w.metadata.name}: enableServiceLinks`);
  // Secrets referenced exist with their keys (optional ones may be absent).
  for (const c of [gatewayContainer, workerContainer]) containerEnv(c);
});

function environmentOf(service: Doc): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return Object.fromEntries((env as string[]).map((e) => [e.split('=')[0], e.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(env as Record<string, unknown>).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

test('the ConfigMap holds a gateway config the real schema accepts, and with the pod env it resolves as intended', async () => {
  const broken = parseYaml(configMapText) as Doc;
  broken.listen.prot = 8080;
  assert.throws(() => parseGatewayConfig(broken, 'broken'), /unknown key 'listen.prot'/, 'the schema check can fail');
  const env = containerEnv(gatewayContainer);
  const config = await resolveWith(configMapText, env);
  const redisSvc = find('Service', 'infergate-redis');
  const redis = new URL(config.redis.url ?? 'missing://');
  assert.equal(redis.hostname.split('.')[0], redisSvc.metadata.name, 'REDIS_URL does not name the Redis Service');
  assert.equal(Number(redis.port || 6379), redisSvc.spec.ports[0].port);
  assert.equal(config.admin.host, '127.0.0.1', 'the admin API should stay on the pod\'s loopback (port-forward)');
  assert.equal(config.listen.host, '0.0.0.0');
  assert.ok(env.INFERGATE_ADMIN_TOKEN !== undefined, 'no admin token');
  parseGatewayConfig({ admin: { token: env.INFERGATE_ADMIN_TOKEN } }, 'the admin token Secret'); // ≥ 16 characters
  assert.ok(config.auth.jwt.keys.some((k) => k.algorithms.includes('HS256') && k.secret === env.INFERGATE_JWT_SECRET), 'INFERGATE_JWT_SECRET did not become the HS256 key');
  assert.equal(config.balancing.strategy, 'p2c', 'in-flight counting strategies are per process: p2c suits several replicas');
});

test('the ConfigMap points the gateway at the worker pods through DNS discovery of the headless Service', () => {
  const svc = find('Service', 'infergate-worker');
  const fqdn = `${svc.metadata.name}.${kustomization.namespace}.svc.cluster.local`;
  const names = new Set([svc.metadata.name, `${svc.metadata.name}.${kustomization.namespace}`, `${svc.metadata.name}.${kustomization.namespace}.svc`, fqdn]);
  const raw = parseYaml(configMapText) as Doc;
  const dns = (raw.discovery?.dns ?? []) as Doc[];
  for (const entry of dns) {
    assert.equal(entry.name, fqdn, 'DNS discovery needs the fully qualified Service name (no search domains)');
    assert.equal(entry.port, WORKER_DEFAULTS.port);
  }
  for (const w of clusterConfig.workers) {
    const url = new URL(w.url);
    assert.ok(names.has(url.hostname), `worker ${w.url} is not the worker Service`);
    assert.equal(Number(url.port), WORKER_DEFAULTS.port);
  }
  assert.ok(dns.length > 0, 'the gateway should discover worker pods through the headless Service');
  assert.equal(svc.spec.clusterIP, 'None', 'DNS discovery needs a headless Service (one address per pod)');
});

test('drain: preStop outlasts the gateway noticing, the grace period covers preStop + drain', () => {
  const workerSleep = preStopSleepSeconds(workerContainer);
  const noticeMs = clusterConfig.health.intervalMs * clusterConfig.health.unhealthyThreshold;
  assert.ok(workerSleep * 1000 >= noticeMs, `worker preStop ${workerSleep}s < gateway health ${noticeMs} ms`);
  const grace = workerDeployment.spec.template.spec.terminationGracePeriodSeconds;
  assert.ok(grace >= WORKER_DEFAULTS.drainTimeoutMs / 1000 + workerSleep, `worker grace ${grace}s < drain ${WORKER_DEFAULTS.drainTimeoutMs / 1000}s + preStop ${workerSleep}s`);
  assert.equal(WORKER_DEFAULTS.drainTimeoutMs, 30_000);
  const gatewaySleep = preStopSleepSeconds(gatewayContainer);
  const gatewayGrace = gatewayDeployment.spec.template.spec.terminationGracePeriodSeconds;
  assert.ok(gatewayGrace >= clusterConfig.timeouts.drainMs / 1000 + gatewaySleep, `gateway grace ${gatewayGrace}s < timeouts.drainMs ${clusterConfig.timeouts.drainMs / 1000}s + preStop ${gatewaySleep}s`);
  // The rollout never takes a worker or gateway away before its replacement is ready.
  for (const w of [gatewayDeployment, workerDeployment]) assert.equal(w.spec.strategy.rollingUpdate.maxUnavailable, 0, `${w.metadata.name} maxUnavailable`);
  // compose: the same drain fits in stop_grace_period.
  for (const [name, service] of Object.entries(compose.services as Record<string, Doc>)) {
    if (service.command?.[0] === 'worker') assert.ok(composeSeconds(service.stop_grace_period) >= WORKER_DEFAULTS.drainTimeoutMs / 1000, `${name} stop_grace_period`);
  }
});

test('NetworkPolicy: only gateway pods reach the workers (worker port) and Redis', () => {
  const policies = docs.filter((d) => d.kind === 'NetworkPolicy');
  const forWorkers = policies.filter((p) => selects(p.spec.podSelector, podLabels(workerDeployment)));
  assert.equal(forWorkers.length, 1, 'exactly one NetworkPolicy selects the worker pods');
  assert.deepEqual(ingressOnlyFrom(forWorkers[0], workerDeployment, gatewayDeployment, WORKER_DEFAULTS.port), []);
  const forRedis = policies.filter((p) => selects(p.spec.podSelector, podLabels(redisWorkload)));
  assert.equal(forRedis.length, 1, 'exactly one NetworkPolicy selects the Redis pod');
  assert.deepEqual(ingressOnlyFrom(forRedis[0], redisWorkload, gatewayDeployment, 6379), []);

  // The check can fail: a rule open to every namespace, one admitting workers, one on another port.
  const open = structuredClone(forWorkers[0]);
  open.spec.ingress.push({ from: [{ namespaceSelector: {} }] });
  assert.ok(ingressOnlyFrom(open, workerDeployment, gatewayDeployment, 9001).some((p) => /more than pods|does not select/.test(p)));
  const wide = structuredClone(forWorkers[0]);
  wide.spec.ingress[0].from = [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'infergate' } } }];
  assert.ok(ingressOnlyFrom(wide, workerDeployment, gatewayDeployment, 9001).some((p) => /also admits infergate-worker/.test(p)));
  const otherPort = structuredClone(forWorkers[0]);
  otherPort.spec.ingress[0].ports = [{ protocol: 'TCP', port: 8080 }];
  assert.ok(ingressOnlyFrom(otherPort, workerDeployment, gatewayDeployment, 9001).some((p) => /port 8080/.test(p)));
});

test('hardening: non-root, no privilege escalation, capabilities dropped, read-only root, limits', () => {
  for (const w of workloads()) {
    const pod = w.spec.template.spec;
    assert.equal(pod.automountServiceAccountToken, false, `${w.metadata.name}: automountServiceAccountToken`);
    assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${w.metadata.name}: seccomp`);
    for (const c of pod.containers as Doc[]) {
      const where = `${w.metadata.name}/${c.name}`;
      const sc = c.securityContext ?? {};
      assert.ok(sc.runAsNonRoot === true || pod.securityContext?.runAsNonRoot === true, `${where}: runAsNonRoot`);
      assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
      assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${where}: capabilities`);
      assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
      for (const kind of ['requests', 'limits']) for (const r of ['cpu', 'memory']) assert.ok(c.resources?.[kind]?.[r], `${where}: resources.${kind}.${r}`);
      if (String(c.image).startsWith('infergate')) {
        // tsx caches transpiled files under os.tmpdir(): /tmp must be writable with a read-only root.
        assert.ok((c.volumeMounts as Doc[]).some((m) => m.mountPath === '/tmp'), `${where}: no writable /tmp`);
        assert.equal(pod.securityContext.runAsUser, imageUid, `${where}: runAsUser is not the image's USER`);
      }
    }
  }
  assert.ok(imageUid > 0, 'the image runs as a numeric non-root USER');
});

test('Dockerfile: entrypoint, CMD, EXPOSE and HEALTHCHECK agree with the code and the manifests', () => {
  const stages = dockerfile.filter((i) => i.op === 'FROM').map((i) => i.args);
  assert.ok(stages.length >= 2, 'multi-stage');
  assert.match(stages.at(-1)!, /^node:\$\{NODE_VERSION\}-bookworm-slim|^node:20-bookworm-slim/);
  assert.match(dockerfile.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_VERSION'))?.args ?? 'NODE_VERSION=20', /NODE_VERSION=20$/);
  const deps = dockerfile.filter((i) => i.stage < lastStage);
  assert.ok(deps.some((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args)), 'npm ci --omit=dev in the deps stage');
  assert.ok(deps.some((i) => i.op === 'COPY' && /\.npmrc/.test(i.args)), 'the deps stage copies .npmrc (skips onnxruntime-node\'s GPU download)');
  assert.ok(deps.some((i) => i.op === 'COPY' && /package-lock\.json/.test(i.args)), 'npm ci needs package-lock.json');

  const entrypoint = JSON.parse(runtimeOp('ENTRYPOINT').at(-1)!.args) as string[];
  assert.deepEqual(entrypoint, ['node', ...SERVER_NODE_FLAGS, 'shared/cli/bin.js'], 'node with the server flags of shared/cli/node-flags.ts, then the CLI');
  assert.ok(existsSync(join(REPO_ROOT, entrypoint.at(-1)!)) && copiedTo('shared') === posix.join(runtimeWorkdir!, 'shared'), 'the entrypoint script is copied');
  for (const dir of ['gateway', 'worker', 'models', 'package.json']) assert.ok(copiedTo(dir) !== undefined, `the image lacks ${dir}`);
  for (const i of runtimeOp('COPY').filter((x) => !x.args.includes('--from='))) {
    for (const source of i.args.split(/\s+/).filter((p) => !p.startsWith('--')).slice(0, -1)) assert.ok(existsSync(join(REPO_ROOT, source)), `COPY ${source}: not in the repository`);
  }
  const cmd = JSON.parse(runtimeOp('CMD').at(-1)!.args) as string[];
  assert.deepEqual(checkArgs(cmd), []);
  const configPath = flag(cmd, 'config')!;
  assert.equal(copiedTo('deploy/gateway.yaml'), configPath, 'CMD --config is not the config the image carries');
  assert.equal(configPath, flag(gatewayContainer.args, 'config'), 'Kubernetes mounts its config elsewhere than the image default');
  parseGatewayConfig(parseYaml(read(join(DEPLOY, 'gateway.yaml'))), 'deploy/gateway.yaml');

  assert.deepEqual([...exposed].sort(), [GATEWAY_DEFAULTS.listen.port, GATEWAY_DEFAULTS.admin.port, WORKER_DEFAULTS.port].sort());
  const healthcheck = runtimeOp('HEALTHCHECK').at(-1)!.args;
  const script = (JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD') + 3).trim()) as string[]).join(' ');
  assert.ok(script.includes(PROBE_PATHS.liveness), 'HEALTHCHECK path');
  const ports = [...script.matchAll(/\[(\d+(?:,\d+)*)\]/g)].flatMap((m) => m[1]!.split(',').map(Number));
  assert.deepEqual(ports.sort(), [GATEWAY_DEFAULTS.listen.port, WORKER_DEFAULTS.port].sort(), 'HEALTHCHECK ports are the two roles\' public ports');
  for (const p of ports) assert.ok(exposed.includes(p), `HEALTHCHECK port ${p} is not EXPOSEd`);
  assert.ok(!/^(0|root)\b/.test(runtimeOp('USER').at(-1)!.args), 'non-root USER');
  assert.ok(existsSync(join(DEPLOY, 'Dockerfile.dockerignore')), 'the build context excludes node_modules');
  assert.match(read(join(DEPLOY, 'Dockerfile.dockerignore')), /^\*\*\/node_modules$/m);
});

test('compose: services reference each other consistently and the gateway resolves its config from them', async () => {
  const services = compose.services as Record<string, Doc>;
  const workerNames = Object.keys(services).filter((n) => services[n].command?.[0] === 'worker');
  assert.equal(workerNames.length, 3, 'three workers');
  const gateway = services.gateway;
  assert.ok(gateway, 'a gateway service');
  const env = environmentOf(gateway);
  // Interpolate ${VAR:?…} / ${VAR:-…} as a user would with the variables set.
  const sample: Record<string, string> = { INFERGATE_ADMIN_TOKEN: 'an-admin-token-of-enough-length', INFERGATE_JWT_SECRET: '' };
  const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replace(/\$\{(\w+)(?::?[-?][^}]*)?\}/g, (_m, name: string) => sample[name] ?? '')]));
  const config = await resolveWith(read(join(DEPLOY, 'gateway.yaml')), resolved);

  const redis = new URL(config.redis.url!);
  assert.ok(services[redis.hostname], `REDIS_URL names '${redis.hostname}', not a service`);
  assert.match(String(services[redis.hostname].image), /^redis:/);
  assert.equal(Number(redis.port || 6379), 6379);
  const workerHosts = config.workers.map((w) => new URL(w.url));
  assert.deepEqual(workerHosts.map((u) => u.hostname).sort(), [...workerNames].sort(), 'INFERGATE_WORKERS lists exactly the worker services');
  for (const u of workerHosts) assert.equal(Number(u.port), Number(flag(services[u.hostname].command, 'port') ?? WORKER_DEFAULTS.port));

  for (const name of workerNames) {
    const w = services[name];
    assert.deepEqual(checkArgs(w.command), []);
    assert.equal(flag(w.command, 'host'), '0.0.0.0', `${name} must listen beyond its loopback`);
    assert.equal(Number(flag(w.command, 'port')), WORKER_DEFAULTS.port);
    const models = (w.volumes as Doc[]).find((v) => v.target === flag(w.command, 'models'));
    assert.ok(models, `${name}: --models is not a mounted volume`);
    assert.equal(models.read_only, true, `${name}: models must be read-only`);
    assert.ok(existsSync(resolve(DEPLOY, models.source)), `${name}: ${models.source} does not exist`);
    assert.ok(environmentOf(w).INFERGATE_WORKER_ID, `${name}: INFERGATE_WORKER_ID`);
  }
  assert.equal(new Set(workerNames.map((n) => JSON.stringify(services[n].volumes))).size, 1, 'the workers share one models volume');
  assert.deepEqual(checkArgs(gateway.command), []);
  assert.equal(gateway.build?.dockerfile, 'deploy/Dockerfile');
  assert.equal(resolve(DEPLOY, gateway.build.context), resolve(REPO_ROOT));
  assert.ok((gateway.ports as string[]).some((p) => p.endsWith(`:${config.listen.port}`)), 'the public port is published');
  assert.ok((gateway.ports as string[]).filter((p) => p.endsWith(`:${config.admin.port}`)).every((p) => p.startsWith('127.0.0.1:')), 'the admin port is published on the loopback only');
  // SIGTERM drain (timeouts.drainMs) fits in the stop grace period before Docker sends SIGKILL.
  assert.ok(composeSeconds(gateway.stop_grace_period) >= config.timeouts.drainMs / 1000, `gateway stop_grace_period < timeouts.drainMs ${config.timeouts.drainMs / 1000}s`);

  for (const [name, s] of Object.entries(services)) {
    for (const [dep, cond] of Object.entries((s.depends_on ?? {}) as Record<string, Doc>)) {
      assert.ok(services[dep], `${name} depends on unknown service ${dep}`);
      assert.equal(cond.condition, 'service_healthy', `${name} → ${dep}`);
      assert.ok(services[dep].healthcheck, `${dep} has no healthcheck for ${name} to wait on`);
    }
    assert.ok(s.healthcheck, `${name} has no healthcheck`);
    if (String(s.image).startsWith('infergate')) {
      assert.equal(s.image, `infergate:${PACKAGE_VERSION}`);
      const check = (s.healthcheck.test as string[]).join(' ');
      const url = /http:\/\/127\.0\.0\.1:(\d+)(\/[\w/]+)/.exec(check);
      assert.ok(url, `${name}: healthcheck URL`);
      assert.ok(Object.values(PROBE_PATHS).includes(url[2] as never), `${name}: healthcheck path ${url[2]}`);
      const port = s.command[0] === 'worker' ? Number(flag(s.command, 'port') ?? WORKER_DEFAULTS.port) : config.listen.port;
      assert.equal(Number(url[1]), port, `${name}: healthcheck port`);
      if (s.read_only === true) assert.ok((s.tmpfs as string[] | undefined)?.some((p) => p.startsWith('/tmp')), `${name}: read-only without a /tmp tmpfs`);
    }
  }
  assert.deepEqual(Object.keys(gateway.depends_on).sort(), [redis.hostname, ...workerNames].sort(), 'the gateway waits for Redis and every worker');
});
