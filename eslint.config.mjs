// Type-checked lint over the TypeScript sources: strict, no `any` (the model: mediabunny's eslint.config.mjs).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist-ts/**', 'node_modules/**', 'packages/openh264-wasm/dist/**', 'packages/openh264-wasm/.build/**', 'bin/**', '**/*.js', '*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
);
