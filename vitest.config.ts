import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/support/worker-ports.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real etcd clusters; 2 cores do not take many at once.
    maxWorkers: 2,
    fileParallelism: true,
    reporters: ['default'],
  },
});
