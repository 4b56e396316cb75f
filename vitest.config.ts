import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The real cases score up to 2000 x 10000 x 784 and the float64 reference is a plain loop.
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
