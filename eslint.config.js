// ESLint, run by `pnpm test` (pnpm lint): typescript-eslint's type-aware rules, chiefly the ones
// that catch promises nobody awaits or handles, and code nothing uses. Style is prettier's job.
// A package's imports of another package are typed from that package's dist/*.d.ts, so `pnpm lint`
// builds first: against a stale dist the typed rules report assertions as unnecessary that tsc
// needs (and `eslint --fix` would remove them).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench-results/**', 'coverage/**', '**/*.fixture.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
    },
  },
  {
    // Tests may reach into loosely typed responses; sources may not.
    files: ['**/*.test.ts', '**/test-support.ts', '**/testing/**/*.ts', '**/e2e/helpers.ts', '**/crash/harness.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Config files outside every tsconfig: lint them without type information.
    files: ['**/vitest.config.ts', 'vitest.setup.ts', '**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
      },
    },
  },
);
