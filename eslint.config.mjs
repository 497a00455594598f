// Lint: typescript-eslint strict + stylistic, type-checked, over apps/, libs/, test/; plain JS rules over scripts/.
// Formatting is Prettier's (.prettierrc); eslint-config-prettier turns off the rules that would fight it.
// The import direction between apps and libs is checked by dependency-cruiser (.dependency-cruiser.cjs), not here.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', 'data/**', 'node_modules/**', 'bench/profiles/**', '.bench/**'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.strictTypeChecked, ...tseslint.configs.stylisticTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Numbers and booleans in messages and log lines are the normal case; objects, unknown and nullish stay refused.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // NestJS modules are decorated empty classes (`@Module({...}) export class XModule {}`).
      '@typescript-eslint/no-extraneous-class': ['error', { allowWithDecorator: true }],
      // Request objects (Express, Node sockets) and parsed client JSON are wider at run time than their declared types:
      // the gateway checks them defensively on purpose (a malformed request must get a 4xx, never a TypeError → 500).
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Same reason: `String(err.message)` on a driver's or Redis' error, `String(raw)` on a header, stay defensive.
      '@typescript-eslint/no-unnecessary-type-conversion': 'off',
      // `x!` states an invariant established just before (a queue's length checked before shift(), a route resolved before
      // dispatch, a row the same transaction just read): narrowing again would add branches that can't be taken.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Express middleware ends with `return next(err)`, Node callbacks with `return callback(...)`: the idiom.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // `return void this.fail(401)` = "call, then stop": the early-exit idiom of guards and strategies.
      '@typescript-eslint/no-meaningless-void-operator': 'off',
      // `'low' | 'high' | string` documents the known values of an open set (as OpenAI's own types do).
      '@typescript-eslint/no-redundant-type-constituents': 'off',
      // NestJS and class-validator declare option bags and errors as classes (NestApplicationContextOptions,
      // ValidationError); object literals are how they are meant to be passed.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      // In-memory implementations of async interfaces (limit stores, throttler storage) have nothing to await.
      '@typescript-eslint/require-await': 'off',
      // No-op implementations of an interface's optional hooks (an adapter's prepare(), a memory store's renew()).
      '@typescript-eslint/no-empty-function': ['error', { allow: ['methods', 'asyncMethods', 'overrideMethods', 'arrowFunctions'] }],
      // Rethrowing what a callback or a promise gave us (an AbortSignal's reason, a driver's error) as is.
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // An empty string is "unset" (env vars, optional fields): `x || fallback` on strings is deliberate.
      '@typescript-eslint/prefer-nullish-coalescing': ['error', { ignorePrimitives: { string: true, boolean: true } }],
      // `_`-prefixed parameters are the way to say "required by the interface, unused here".
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['test/**/*.ts', '**/*.spec.ts', '**/*.medium-spec.ts'],
    rules: {
      // Tests read JSON bodies from real HTTP responses (`any` by nature) and assert on them; typing every response
      // shape would add code, not safety, since the assertion is the check.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // A test's `.catch((e: Error) => ...)` reads the message of an error it provoked on purpose.
      '@typescript-eslint/use-unknown-in-catch-callback-variable': 'off',
      // Tests send fields OpenAI's SDK marks deprecated (max_tokens) on purpose: clients still do.
      '@typescript-eslint/no-deprecated': 'off',
      // `api<T = any>(...)`: the caller names the response body's type, or gets `any` to assert on.
      '@typescript-eslint/no-unnecessary-type-parameters': 'off',
      // Test helpers hand back closures declared with method syntax in their interfaces (`cleanups.push(x.close)`).
      '@typescript-eslint/unbound-method': 'off',
      // String-building with `+` over response fields (`any`) in assertions and fixtures.
      '@typescript-eslint/restrict-plus-operands': 'off',
    },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ['**/*.{js,cjs}'],
    languageOptions: { sourceType: 'commonjs' },
  },
  prettier,
);
