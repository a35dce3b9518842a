import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    restoreMocks: true,
    setupFiles: ['test/setup.ts', 'testing/setup.ts'],
    testTimeout: 60_000,
  },
})
