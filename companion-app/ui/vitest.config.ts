import { defineConfig } from "vitest/config";

// Unit tests (tests/unit) are plain functions; UI tests (tests/ui) start Vite and drive Debian's
// chromium with playwright-core. Files run one after another: two cores, one browser.
export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    reporters: ["default"],
  },
});
