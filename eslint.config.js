// ESLint: strict type-checked rules, Linux snake_case naming for kernel/ and drivers/,
// camelCase elsewhere, and the layering rules of shared/docs/DESIGN.md §1.
import eslint from '@eslint/js'
import { defineConfig } from 'eslint/config'
import tseslint from 'typescript-eslint'

const camelNaming = [
  { selector: 'default', format: ['camelCase'], leadingUnderscore: 'allow' },
  { selector: 'import', format: ['camelCase', 'PascalCase'] },
  { selector: 'typeLike', format: ['PascalCase'] },
  { selector: 'variable', modifiers: ['const'], format: ['camelCase', 'UPPER_CASE', 'PascalCase'] },
  { selector: 'enumMember', format: ['UPPER_CASE'] },
  { selector: ['objectLiteralProperty', 'typeProperty', 'objectLiteralMethod'], format: null },
]
const kernelNaming = [
  { selector: 'default', format: ['camelCase', 'snake_case'], leadingUnderscore: 'allow' },
  { selector: 'import', format: ['camelCase', 'PascalCase', 'snake_case'] },
  { selector: 'typeLike', format: ['PascalCase'] },
  { selector: 'typeAlias', filter: { regex: '(_t|_direction)$', match: true }, format: ['snake_case'] },
  {
    selector: 'variable',
    modifiers: ['const'],
    format: ['camelCase', 'snake_case', 'UPPER_CASE', 'PascalCase'],
    leadingUnderscore: 'allowSingleOrDouble',
  },
  // Function-like macros keep their C names: DMA_BIT_MASK, ALIGN, READ_ONCE.
  { selector: 'function', format: ['camelCase', 'snake_case', 'UPPER_CASE'], leadingUnderscore: 'allowSingleOrDouble' },
  { selector: 'enumMember', format: ['UPPER_CASE'] },
  { selector: ['objectLiteralProperty', 'typeProperty', 'objectLiteralMethod'], format: null },
]
const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] })
const nodeModules = {
  group: ['node:*', 'fs', 'path', 'os', 'worker_threads', 'child_process'],
  message: 'kernel/ and devices/ are platform-neutral: host I/O lives in bin/ or host/',
}

export default defineConfig(
  // labs/*/skeleton: deliberately unfinished or buggy student files (docs/labs.md); tsc still checks them.
  { ignores: ['node_modules', 'dist', 'coverage', 'scratch', 'labs/*/skeleton'] },
  eslint.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-extraneous-class': 'off',
      '@typescript-eslint/no-unnecessary-type-arguments': 'off',
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/unified-signatures': 'off',
      'no-throw-literal': 'off',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/naming-convention': ['error', ...camelNaming],
    },
  },
  {
    files: ['kernel/**/*.ts', 'drivers/**/*.ts', 'test/fixtures/**/*.ts', 'docs/**/*.ts', 'labs/*/solution/**/*.ts'],
    rules: { '@typescript-eslint/naming-convention': ['error', ...kernelNaming] },
  },
  {
    // The emulator's code runs per access and per event: no pow() call hidden in `**`.
    files: ['kernel/**/*.ts', 'devices/**/*.ts', 'drivers/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "BinaryExpression[operator='**'][right.type!='Literal']:not([right.type='Identifier'][right.name=/^[A-Z][A-Z0-9_]*$/])",
          message: '2 ** x with a variable x is a pow() call (70-90 ns measured): use 1 << x, a table or a multiplication (docs/performance.md, "JavaScript costs to keep off hot paths")',
        },
      ],
    },
  },
  {
    files: ['drivers/**/*.ts'],
    rules: restrict([
      { group: ['**/devices/**', '**/devices'], message: 'drivers talk to devices only via kernel/index.ts' },
      { regex: '^\\.\\./.*kernel/(?!index\\.js$).+', message: 'drivers import only kernel/index.ts' },
    ]),
  },
  {
    files: ['devices/**/*.ts'],
    rules: restrict([
      nodeModules,
      { group: ['**/kernel/**', '**/drivers/**'], message: 'hardware knows no software: devices/ never import kernel/ or drivers/' },
    ]),
  },
  {
    files: ['kernel/**/*.ts'],
    rules: restrict([nodeModules, { group: ['**/drivers/**'], message: 'the kernel does not import drivers' }]),
  },
  {
    files: ['testing/**/*.ts'],
    rules: restrict([
      { group: ['node:*', '**/devices/**', '**/drivers/**'], message: 'testing/ runs in any vitest environment: it uses kernel/index.ts and vitest only' },
      { regex: '^\\.\\./kernel/(?!index\\.js$).+', message: 'testing/ imports only kernel/index.ts' },
    ]),
  },
  { files: ['**/*.js'], extends: [tseslint.configs.disableTypeChecked] },
)
