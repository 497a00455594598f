// The V8 flags the apps run with (`npm start`, the bench; the Dockerfile and deploy/k8s spell out the same).
// Measured with the README walkthrough and 3,000 chat requests at c=16, gateway + admin in one process: 218 MB RSS
// with V8's defaults and --enable-source-maps, 148 MB with these. Source maps kept every dependency's map (TypeORM's
// carry their TypeScript sources) on the heap: set NODE_OPTIONS=--enable-source-maps to map stack traces anyway.
// 8 MB semi-spaces (default 16) and a 1.3× old-space growth step (default up to 4×) make V8 collect garbage before
// it grows the heap: 0.8 → 0.9 s of minor GC over those 3,000 requests. A flag named in NODE_OPTIONS wins over ours.
export const APP_V8_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=30'];

export function appNodeFlags(env = process.env) {
  return APP_V8_FLAGS.filter((f) => !(env.NODE_OPTIONS ?? '').includes(f.split('=')[0]));
}
