import * as coreV1 from 'kubernetes-models/v1';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as batchV1 from 'kubernetes-models/batch/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';

/**
 * Schema checks for rendered Kubernetes objects, offline: `kubernetes-models` (the API's OpenAPI schemas compiled
 * to validators) for types, required fields and enums, plus a strict pass for unknown fields, which those
 * schemas let through (a misspelt `livenessprobe` would be dropped by the API server without a word).
 */

/** A rendered object: YAML parsed as it is, walked by path. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered YAML: its shape is what the schema check establishes
export type K8sObject = Record<string, any> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

interface ModelClass {
  new (data: unknown): { validate(): void };
  apiVersion: string;
  kind: string;
}
interface SchemaError {
  instancePath: string;
  message?: string;
}

/** Every kind the manifests may use, by `apiVersion/kind`. Anything else is refused: it has no schema here. */
const MODELS = new Map<string, ModelClass>();
for (const mod of [coreV1, appsV1, batchV1, policyV1, autoscalingV2, networkingV1] as Record<string, unknown>[]) {
  for (const v of Object.values(mod)) {
    if (typeof v !== 'function') continue;
    const m = v as unknown as Partial<ModelClass>;
    if (typeof m.apiVersion === 'string' && typeof m.kind === 'string') MODELS.set(`${m.apiVersion}/${m.kind}`, m as ModelClass);
  }
}

function schemaErrors(model: ModelClass, obj: unknown): SchemaError[] {
  try {
    new model(obj).validate();
    return [];
  } catch (e) {
    const errors = (e as { errors?: SchemaError[] }).errors;
    if (!errors) throw e;
    return errors;
  }
}

const pointer = (path: (string | number)[]) => path.map((p) => '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('');

/**
 * A value no schema accepts (not a string, number, boolean, object, array or null): put in place of a field, it
 * draws an error at that field's path exactly when the schema knows the field. Maps (labels, data) accept any
 * key with a typed value, so their keys count as known, as they should.
 */
const PROBE = Symbol('not-a-json-value');

/** Fields the schema does not define, as JSON pointers (e.g. `/spec/template/spec/containers/0/livenessprobe`). */
export function unknownFields(obj: K8sObject): string[] {
  const model = MODELS.get(`${obj.apiVersion}/${obj.kind}`);
  if (!model) return [`${obj.apiVersion}/${obj.kind}: no schema`];
  const found: string[] = [];
  const walk = (node: unknown, path: (string | number)[]) => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, [...path, i]));
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const key of Object.keys(node)) {
      const at = [...path, key];
      const probe = structuredClone(obj);
      let parent = probe as Record<string | number, unknown>;
      for (const p of path) parent = parent[p] as Record<string | number, unknown>;
      parent[key] = PROBE;
      const where = pointer(at);
      const known = schemaErrors(model, probe).some((e) => e.instancePath === where || e.instancePath.startsWith(where + '/'));
      if (known) walk((node as Record<string, unknown>)[key], at);
      else found.push(where);
    }
  };
  walk(obj, []);
  return found;
}

/** Every schema problem of one object: its kind, types, required fields and enums, then unknown fields. */
export function schemaProblems(obj: K8sObject): string[] {
  const name = `${obj.kind}/${obj.metadata?.name ?? '?'}`;
  const model = MODELS.get(`${obj.apiVersion}/${obj.kind}`);
  if (!model) return [`${name}: ${obj.apiVersion} ${obj.kind} is not a kind these manifests may use (no schema)`];
  const errors = schemaErrors(model, obj);
  if (errors.length) return errors.map((e) => `${name}: ${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
  return unknownFields(obj).map((p) => `${name}: ${p} is not a field of ${obj.apiVersion} ${obj.kind}`);
}

/** Does a label selector (matchLabels, matchExpressions) select these labels? */
export function selects(
  selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] },
  labels: Record<string, string> = {},
): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const inValues = has && (e.values ?? []).includes(labels[e.key]);
    const ok = { In: inValues, NotIn: !inValues, Exists: has, DoesNotExist: !has }[e.operator];
    if (!ok) return false;
  }
  return true;
}
