// The V8 flags the apps run with (`npm start`, the bench; the Dockerfile and deploy/k8s spell out the same).
// Measured with the README walkthrough and 3,000 chat requests at c=16, gateway + admin in one process: 218 MB RSS
// with V8's defaults and --enable-source-maps, 148 MB with these. Source maps kept every dependency's map (TypeORM's
// carry their TypeScript sources) on the heap: set NODE_OPTIONS=--enable-source-maps to map stack traces anyway.
// 8 MB semi-spaces (default 16) and a 1.3× old-space growth step (default up to 4×) make V8 collect garbage before
// it grows the heap: 0.8 → 0.9 s of minor GC over those 3,000 requests. A flag named in NODE_OPTIONS wins over ours.
// Issue 16 (gateway alone under the bench's load, peak VmHWM 164–175 → 144–146 MB, 5 s after 146–161 → 131 MB):
// --liftoff-only: undici parses HTTP with llhttp, a WASM module; TurboFan optimising its parser on the first
// upstream request took ~35 MB of compiler memory at once (the process's HWM 97 → 63 MB in a bare undici client),
// and Liftoff's code parsed 3,000 200-chunk SSE answers in the same CPU (0.80 vs 0.80–0.84 s). The embedded
// database runs its WASM the same way. --max-semi-space-size=4 (was 8): new space 16 → 8 MB, heap at peak 80–85 →
// 70 MB; it costs GC time: 133 → 205 ms of GC pauses per 1,000 requests of that load (about +70 µs a request).
export const APP_V8_FLAGS = ['--max-semi-space-size=4', '--heap-growing-percent=30', '--liftoff-only'];

export function appNodeFlags(env = process.env) {
  return APP_V8_FLAGS.filter((f) => !(env.NODE_OPTIONS ?? '').includes(f.split('=')[0]));
}
